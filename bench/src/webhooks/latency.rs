//! Latency: [`CYCLES`] × (activate, deactivate) through the API, one change
//! at a time, each made once the manager has recorded the last one's
//! deliveries (so no event waits behind another change's). An activate with
//! nothing running is one commit of two events (`activate`, `activated`),
//! a deactivate one of one (`deactivated`).
//!
//! The commit instant is bracketed. Before it: the event's `at`, the time
//! the change was decided (SQLite: this process's clock, read before the
//! transaction; PostgreSQL: the database's `clock_timestamp()` inside it,
//! same machine), truncated to the millisecond. After it: the engine
//! publishes the change right after the commit, and a task of this process
//! subscribed to the engine takes the time when it hears it, woken by the
//! same broadcast that wakes the deliverer. Arrival − publication is the
//! lower bound of the latency, arrival − `at` the upper one.

use std::time::Instant;

use anyhow::{ensure, Context};
use shared::{HistoryEvent, MaintenanceState};
use tokio::sync::mpsc;

use super::{between, report, start_manager, Receiver, PATIENCE, STORES};
use crate::replicas::{maintenance, spread, Replica};
use crate::windows::{timestamp_ns, wall_ns};

/// Activate/deactivate cycles per store: 3 events each.
const CYCLES: usize = 70;

/// One store's samples, in milliseconds.
#[derive(Default)]
struct Samples {
    /// Arrival − publication, every event.
    from_published: Vec<f64>,
    /// Arrival − `at`, every event.
    from_at: Vec<f64>,
    /// Arrival − publication of each change's first event (`activate`, `deactivated`).
    first: Vec<f64>,
    /// Arrival − publication of `activated`, the second event of the activate's commit.
    second: Vec<f64>,
    /// Publication − `at` of each change: the transaction (with its fsync on SQLite) and the truncation.
    commit: Vec<f64>,
    /// Arrival of each change's first event − arrival of the API's 200 (negative: the event came first).
    after_answer: Vec<f64>,
    /// The manager's own `latency_ms` of its last deliveries (`GET /maintenance/webhooks`).
    reported: Vec<f64>,
}

pub async fn figures() -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for store in STORES {
        runs.push((store.name(), measure(store).await.with_context(|| format!("latency on {}", store.name()))?));
    }
    println!(
        "### Latency: change committed → receiver has the event ({CYCLES} activate/deactivate cycles, {} events, \
         one change at a time, receiver healthy on 127.0.0.1)\n",
        CYCLES * 3
    );
    println!(
        "Milliseconds, p50 / p99 / max. The commit lies between the event's `at` (the deciding clock, read before \
         the commit, truncated to the ms) and the engine's publication of the change (right after the commit; \
         heard by a task of the bench woken by the same broadcast as the deliverer): arrival − publication is \
         the lower bound, arrival − `at` the upper. The receiver takes its time when the request's body is \
         read. `activated` is the second event of its commit: it waits for the first's delivery to be \
         recorded.\n"
    );
    println!(
        "| store | every event: arrival − publication (lower bound) | arrival − `at` (upper bound) | first event of \
         a change, − publication | `activated` (second of its commit), − publication | the commit: publication − \
         `at` | manager's `latency_ms` (last 20) | first event before the API's 200 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut late_heard = Vec::new();
    for (name, mut samples) in runs {
        let early = samples.after_answer.iter().filter(|&&after| after < 0.0).count();
        let negative = samples.from_published.iter().filter(|&&ms| ms < 0.0).count();
        if negative > 0 {
            late_heard.push(format!("{name}: {negative}"));
        }
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {early} of {} |",
            spread(&mut samples.from_published),
            spread(&mut samples.from_at),
            spread(&mut samples.first),
            spread(&mut samples.second),
            spread(&mut samples.commit),
            spread(&mut samples.reported),
            samples.after_answer.len()
        );
    }
    if !late_heard.is_empty() {
        println!(
            "\nEvents that arrived before the bench's task heard their publication (it was scheduled late; the \
             lower bound is negative there): {}",
            late_heard.join(", ")
        );
    }
    println!();
    Ok(())
}

async fn measure(store: crate::StoreKind) -> anyhow::Result<Samples> {
    let mut receiver = Receiver::start("127.0.0.1:0".parse()?).await?;
    let manager = start_manager(store, super::url_of(receiver.address)).await?;
    let client = reqwest::Client::new();
    // Every publication, with when it was heard (monotonic and wall clock).
    let (heard_tx, mut heard) = mpsc::unbounded_channel::<(MaintenanceState, Instant, i128)>();
    let mut changes = manager.state.engine.subscribe();
    let listener = tokio::spawn(async move {
        while let Ok(published) = changes.recv().await {
            let _ = heard_tx.send((published.status.status, Instant::now(), wall_ns()));
        }
    });
    let mut samples = Samples::default();
    let mut delivered = 0_u64;
    let mut last_id = 0_u64;
    for cycle in 0..CYCLES {
        for (verb, state, events) in [
            ("activate", MaintenanceState::Activated, &[HistoryEvent::Activate, HistoryEvent::Activated][..]),
            ("deactivate", MaintenanceState::Deactivated, &[HistoryEvent::Deactivated][..]),
        ] {
            while heard.try_recv().is_ok() {}
            maintenance(&client, &manager.base, &manager.token, verb)
                .await
                .with_context(|| format!("cycle {cycle}"))?;
            let answered = Instant::now();
            let (published_at, published_wall) = loop {
                let next = tokio::time::timeout(PATIENCE, heard.recv()).await;
                let (heard_state, at, wall) = next.context("no publication")?.context("the engine stopped")?;
                if heard_state == state {
                    break (at, wall);
                }
            };
            for (index, expected) in events.iter().enumerate() {
                let arrival = receiver.next().await.with_context(|| format!("cycle {cycle}: {verb}"))?;
                let event = arrival.event()?;
                ensure!(
                    event.event == *expected && event.id > last_id,
                    "cycle {cycle}: event {} {:?} after {last_id}, wanted {expected:?}",
                    event.id,
                    event.event
                );
                last_id = event.id;
                let from_published = between(published_at, arrival.at);
                samples.from_published.push(from_published);
                samples.from_at.push((arrival.wall_ns - timestamp_ns(&event.at)) as f64 / 1e6);
                if index == 0 {
                    samples.first.push(from_published);
                    samples.commit.push((published_wall - timestamp_ns(&event.at)) as f64 / 1e6);
                    samples.after_answer.push(between(answered, arrival.at));
                } else {
                    samples.second.push(from_published);
                }
            }
            delivered += events.len() as u64;
            await_recorded(&client, &manager, delivered).await?;
        }
    }
    let seen = report(&client, &manager).await?;
    let url = seen.webhooks.first().context("no webhook in the report")?;
    ensure!(
        url.delivered == delivered && url.backlog == 0 && url.failed == 0,
        "the report says {} delivered, {} failed, backlog {} (of {delivered})",
        url.delivered,
        url.failed,
        url.backlog
    );
    samples.reported = url.recent.iter().map(|delivery| delivery.latency_ms as f64).collect();
    // Nothing was POSTed twice.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    ensure!(receiver.arrivals.try_recv().is_err(), "an event arrived twice");
    listener.abort();
    manager.stop().await?;
    Ok(samples)
}

/// Waits until the manager has recorded `delivered` deliveries (its deliverer is idle again).
async fn await_recorded(client: &reqwest::Client, manager: &Replica, delivered: u64) -> anyhow::Result<()> {
    let give_up = Instant::now() + PATIENCE;
    loop {
        let seen = report(client, manager).await?;
        if seen.webhooks.first().is_some_and(|url| url.delivered >= delivered) {
            return Ok(());
        }
        ensure!(Instant::now() < give_up, "{delivered} deliveries never recorded: {seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

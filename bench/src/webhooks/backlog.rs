//! Backlog drain after an outage: a manager delivering to a loopback port
//! nothing listens on; [`CYCLES`] activate/deactivate cycles ([`EVENTS`]
//! events) made through the engine as fast as the store commits them, while
//! the deliverer's attempts fail (connection refused) and back off (0.5–1 s,
//! then 1–2 s, 2–4 s …); then the receiver starts on that port. Figures: the
//! wait from the receiver's start to the first arrival (the backoff left,
//! which the report's `next_attempt_at` predicts), the drain from the first
//! arrival to the last, and the receiver's start to the last arrival.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use manager::engine::{machine::Activation, Transition};
use shared::api::{API_PREFIX, TOKEN_HEADER};
use shared::Webhooks;

use super::{between, free_address, report, start_manager, url_of, Receiver, PATIENCE, STORES};
use crate::replicas::spread;
use crate::windows::{timestamp_ns, wall_ns};
use crate::workflows::manager_process::answer;

/// Activate/deactivate cycles: 3 events each.
const CYCLES: usize = 167;
/// The events made while the receiver is down.
const EVENTS: usize = CYCLES * 3;

/// One store's drain.
struct Drain {
    /// How long making the events took.
    made_in: Duration,
    /// From the first event made to the first failed attempt seen in the report (polled every 5 ms).
    failure_recorded: Duration,
    /// Failed attempts at the first event before the receiver started.
    attempts: u32,
    /// From the first event made to the receiver's start.
    outage: Duration,
    /// Milliseconds from the receiver's start to the retry the report said was next (negative: already due).
    announced: f64,
    /// From the receiver's start to the first arrival.
    wait: f64,
    /// From the first arrival to the last.
    drain: f64,
    /// Milliseconds between consecutive arrivals.
    gaps: Vec<f64>,
}

pub async fn figures() -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for store in STORES {
        runs.push((store.name(), measure(store).await.with_context(|| format!("backlog on {}", store.name()))?));
    }
    println!(
        "### Backlog drain: receiver down while {EVENTS} events are made ({CYCLES} activate/deactivate cycles), \
         then up on the same port\n"
    );
    println!(
        "The events are made through the engine, one change after the other, as fast as the store commits; \
         meanwhile every attempt is refused and backs off. The wait from the receiver's start to the first \
         arrival is the backoff left (the report's `next_attempt_at` said when the next retry was due, and the \
         deliverer sleeps until then); the drain is from the first arrival to the last, every event delivered once, in order, signed. Times in ms, \
         gaps p50 / p99 / max.\n"
    );
    println!(
        "| store | events made in | first failed attempt seen in the report | outage (first event → receiver up), \
         failed attempts | receiver up → first arrival (`next_attempt_at` said) | the retry after `next_attempt_at` \
         | first → last arrival | **drain rate** | receiver up → last arrival | gap between arrivals |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (name, mut drain) in runs {
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms, {} | {:.0} ms ({:.0} ms) | {:.0} ms | {:.0} ms | **{:.0} \
             events/s** | {:.0} ms | {} |",
            drain.made_in.as_secs_f64() * 1000.0,
            drain.failure_recorded.as_secs_f64() * 1000.0,
            drain.outage.as_secs_f64() * 1000.0,
            drain.attempts,
            drain.wait,
            drain.announced,
            drain.wait - drain.announced,
            drain.drain,
            (EVENTS - 1) as f64 / (drain.drain / 1000.0),
            drain.wait + drain.drain,
            spread(&mut drain.gaps)
        );
    }
    println!();
    Ok(())
}

async fn measure(store: crate::StoreKind) -> anyhow::Result<Drain> {
    let address = free_address()?;
    let manager = start_manager(store, url_of(address)).await?;
    let engine = manager.state.engine.clone();
    let client = reqwest::Client::new();
    let making = Instant::now();
    // When the first failed attempt shows in the report: the POST is refused
    // at once, and recording it is a write, which on SQLite takes the write
    // lock between the engine's commits.
    let watcher = {
        let (client, base, token) = (client.clone(), manager.base.clone(), manager.token.clone());
        tokio::spawn(async move {
            let url = format!("{base}{API_PREFIX}/maintenance/webhooks");
            let give_up = Instant::now() + PATIENCE;
            loop {
                let seen: Webhooks = answer!(client.get(&url).header(TOKEN_HEADER, &token).send().await?, 200)?;
                if seen.webhooks.first().is_some_and(|url| url.attempts > 0) {
                    return anyhow::Ok(making.elapsed());
                }
                ensure!(Instant::now() < give_up, "no failed attempt recorded: {seen:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    for cycle in 0..CYCLES {
        let on = engine.activate(Activation::by("admin")).await?;
        let off = engine.deactivate("admin".into()).await?;
        ensure!(matches!((on, off), (Transition::Changed(_), Transition::Changed(_))), "cycle {cycle} changed nothing");
    }
    let made_in = making.elapsed();
    // The receiver comes up after a failure was recorded.
    let failure_recorded = watcher.await??;
    let before = report(&client, &manager).await?;
    let url = before.webhooks.into_iter().next().context("no webhook in the report")?;
    ensure!(url.backlog == EVENTS as u64, "backlog {} before the receiver started, not {EVENTS}", url.backlog);
    ensure!(url.last_error.contains("could not connect"), "the attempts failed otherwise: {url:?}");

    let mut receiver = Receiver::start(address).await?;
    let (up, up_wall) = (Instant::now(), wall_ns());
    let announced = url.next_attempt_at.map_or(f64::NAN, |due| (timestamp_ns(&due) - up_wall) as f64 / 1e6);
    let mut arrivals = Vec::with_capacity(EVENTS);
    let mut last_id = 0;
    for index in 0..EVENTS {
        let arrival = receiver.next().await.with_context(|| format!("event {index} of {EVENTS}"))?;
        let event = arrival.event()?;
        ensure!(event.id > last_id, "event {} after {last_id}: out of order or twice", event.id);
        last_id = event.id;
        arrivals.push(arrival.at);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    ensure!(receiver.arrivals.try_recv().is_err(), "more than {EVENTS} POSTs: an event twice");
    let after = report(&client, &manager).await?;
    let url_after = after.webhooks.first().context("no webhook in the report")?;
    ensure!(
        url_after.backlog == 0 && url_after.delivered == EVENTS as u64,
        "after the drain: backlog {}, {} delivered",
        url_after.backlog,
        url_after.delivered
    );
    manager.stop().await?;
    let (first, last) = (arrivals[0], arrivals[EVENTS - 1]);
    ensure!(last > first, "the drain took no time");
    Ok(Drain {
        made_in,
        failure_recorded,
        attempts: url.attempts,
        outage: up.duration_since(making),
        announced,
        wait: between(up, first),
        drain: between(first, last),
        gaps: arrivals.windows(2).map(|pair| between(pair[0], pair[1])).collect(),
    })
}

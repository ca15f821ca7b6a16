//! Propagation: replicas A, B and C on one database. Each round, B and C are
//! polled back to back (a gated request, one keep-alive connection each)
//! while A is asked to activate; from the moment A's answer arrives, how
//! long until B and C answer 503. Their engines' publication of the change
//! is timed too (in this process), which separates the propagation itself
//! from the polling's resolution.

use std::time::{Duration, Instant};

use anyhow::Context;
use shared::MaintenanceState;

use super::{await_everywhere, cluster_on, ms, quantile, spread, stop_all, Replica, PATIENCE};

/// Activate/deactivate rounds.
const ROUNDS: usize = 200;
/// The spec's goal for a change to reach every replica's gate, at p99.
const GOAL_MS: f64 = 20.0;

/// What one replica (B or C) showed over the rounds, in milliseconds from
/// A's acknowledgement (negative: before it arrived).
#[derive(Default)]
struct Seen {
    /// The first 503 answer arrived.
    refused: Vec<f64>,
    /// The engine published `activated` (the gate reads that).
    applied: Vec<f64>,
}

/// On a fresh database of the bench's PostgreSQL server.
pub async fn figures() -> anyhow::Result<()> {
    figures_on(&crate::fresh_database().await?, "").await
}

/// On `database` (fresh); `server` ends the heading (which server it is on).
pub async fn figures_on(database: &str, server: &str) -> anyhow::Result<()> {
    let replicas = cluster_on(database, 3).await?;
    let client = reqwest::Client::new();
    // Each poller its own client: one keep-alive connection per replica.
    let pollers: Vec<reqwest::Client> = (1..replicas.len()).map(|_| reqwest::Client::new()).collect();
    let mut seen: Vec<Seen> = (1..replicas.len()).map(|_| Seen::default()).collect();
    let mut acknowledged = Vec::with_capacity(ROUNDS);
    let mut polls = 0_usize;
    for round in 0..ROUNDS {
        let measured = round_of(&replicas, &client, &pollers).await.with_context(|| format!("round {round}"))?;
        acknowledged.push(measured.acknowledged);
        for (replica, (refused, applied, count)) in seen.iter_mut().zip(measured.others) {
            replica.refused.push(refused);
            replica.applied.push(applied);
            polls += count;
        }
        replicas[0].maintenance(&client, "deactivate").await?;
        await_everywhere(&replicas, MaintenanceState::Deactivated).await?;
    }
    stop_all(replicas).await?;

    println!(
        "### Propagation: activate acknowledged on A → B and C answer 503 ({ROUNDS} rounds, 3 replicas on one \
         database{server})\n"
    );
    println!(
        "B and C polled with `GET /api/v3.1/executions?_size=1` and a token, back to back on one keep-alive \
         connection each ({:.0} polls per replica per round on average; a poll that passes reads the database). \
         Milliseconds from the arrival of A's 200, p50 / p99 / max:\n",
        polls as f64 / (ROUNDS * seen.len()) as f64
    );
    println!("| replica | → answers 503 | → its engine published `activated` | 503 before A's answer arrived |");
    println!("|---|---|---|---|");
    let mut all_refused = Vec::new();
    for (name, replica) in ["B", "C"].iter().zip(&mut seen) {
        all_refused.extend(&replica.refused);
        let early = replica.refused.iter().filter(|&&at| at < 0.0).count();
        println!(
            "| {name} | {} | {} | {early} of {ROUNDS} |",
            spread(&mut replica.refused),
            spread(&mut replica.applied)
        );
    }
    all_refused.sort_by(f64::total_cmp);
    let p99 = quantile(&all_refused, 0.99);
    let verdict = if p99 < GOAL_MS { "met" } else { "missed" };
    println!(
        "\nB and C together: p99 **{}** (goal < {GOAL_MS} ms: {verdict}), max {}; the activate itself (sent → \
         A's 200): {}\n",
        ms(p99),
        ms(quantile(&all_refused, 1.0)),
        spread(&mut acknowledged)
    );
    Ok(())
}

/// One round's figures, in milliseconds: the activate's own time, and for
/// each of B, C: → 503, → published, and how many polls it took.
struct Round {
    acknowledged: f64,
    others: Vec<(f64, f64, usize)>,
}

async fn round_of(
    replicas: &[Replica],
    client: &reqwest::Client,
    pollers: &[reqwest::Client],
) -> anyhow::Result<Round> {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(pollers.len());
    let mut tasks = Vec::new();
    for (replica, poller) in replicas[1..].iter().zip(pollers) {
        let mut changes = replica.state.engine.subscribe();
        let published = tokio::spawn(async move {
            loop {
                if changes.recv().await?.status.status == MaintenanceState::Activated {
                    return anyhow::Ok(Instant::now());
                }
            }
        });
        let url = format!("{}/api/v3.1/executions?_size=1", replica.base);
        let (poller, token, ready) = (poller.clone(), replica.token.clone(), ready_tx.clone());
        let refused = tokio::spawn(async move {
            let give_up = Instant::now() + PATIENCE;
            let mut polls = 0;
            loop {
                let response = poller.get(&url).header(shared::api::TOKEN_HEADER, &token).send().await?;
                let status = response.status().as_u16();
                let at = Instant::now();
                response.bytes().await?;
                polls += 1;
                match status {
                    503 => return anyhow::Ok((at, polls)),
                    200 if polls == 1 => {
                        let _ = ready.send(()).await;
                    }
                    200 => {}
                    other => anyhow::bail!("{url}: {other}"),
                }
                anyhow::ensure!(Instant::now() < give_up, "{url} never answered 503");
            }
        });
        tasks.push((refused, published));
    }
    for _ in pollers {
        tokio::time::timeout(PATIENCE, ready_rx.recv()).await.context("pollers starting")?;
    }
    let sent = Instant::now();
    replicas[0].maintenance(client, "activate").await?;
    let acknowledged = Instant::now();
    let since = |at: Instant| match at.checked_duration_since(acknowledged) {
        Some(after) => after.as_secs_f64() * 1000.0,
        None => -(acknowledged.duration_since(at).as_secs_f64() * 1000.0),
    };
    let mut others = Vec::new();
    for (refused, published) in tasks {
        let (refused_at, polls) = tokio::time::timeout(PATIENCE, refused).await.context("a 503")???;
        let published_at = tokio::time::timeout(PATIENCE, published).await.context("published")???;
        others.push((since(refused_at), since(published_at), polls));
    }
    Ok(Round { acknowledged: duration_ms(acknowledged.duration_since(sent)), others })
}

fn duration_ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

//! 3 replicas × 1 000 subscribers of `GET /api/v3.1/maintenance/events`:
//! an activate sent to one replica → each subscriber's `activated` status
//! event, on every replica. Beside it, in the same run: one SQLite manager
//! and one PostgreSQL replica with 1 000 subscribers, and one replica with
//! all 3 000. Both ends of every stream are in this process, on the same
//! cores as the replicas.

use std::time::Instant;

use anyhow::Context;
use futures_util::StreamExt;
use shared::{MaintenanceState, MaintenanceStatus};
use tokio::sync::mpsc;

use super::{cluster, maintenance, ms, quantile, stop_all, PATIENCE};
use crate::{serve_on, StoreKind};

const SUBSCRIBERS: usize = 1000;
/// Activate/deactivate rounds per set-up.
const ROUNDS: usize = 5;
/// Subscribers connecting at once (each is a token check on connect).
const CONNECTING_AT_ONCE: usize = 100;

/// A subscriber's report: its manager's index, the state it saw, when.
type Sighting = (usize, MaintenanceState, Instant);

/// A manager the subscribers connect to.
struct Target {
    base: String,
    token: String,
}

/// One manager's figures over the rounds, in milliseconds from sending the activate.
struct Arrivals {
    /// Every subscriber in every round.
    all: Vec<f64>,
    /// Each round's last subscriber.
    lasts: Vec<f64>,
}

pub async fn figures() -> anyhow::Result<()> {
    let mut rows = Vec::new();

    let sqlite = serve_on(StoreKind::Sqlite, true).await?;
    let target = Target { base: sqlite.base.clone(), token: sqlite.token.clone() };
    let arrivals = measure(&[target], SUBSCRIBERS).await?.pop().context("arrivals")?;
    rows.push(("SQLite, 1 manager × 1 000".to_owned(), arrivals));
    drop(sqlite);

    for (replicas, per_replica) in [(1, SUBSCRIBERS), (1, 3 * SUBSCRIBERS), (3, SUBSCRIBERS)] {
        let cluster = cluster(replicas).await?;
        let targets: Vec<Target> =
            cluster.iter().map(|replica| Target { base: replica.base.clone(), token: replica.token.clone() }).collect();
        let arrivals = measure(&targets, per_replica).await?;
        stop_all(cluster).await?;
        for (index, arrivals) in arrivals.into_iter().enumerate() {
            let role = match (replicas, index) {
                (1, _) => String::new(),
                (_, 0) => ", r1 (activated here)".to_owned(),
                (_, index) => format!(", r{}", index + 1),
            };
            let count = per_replica.to_string().replace("000", " 000");
            let noun = if replicas == 1 { "replica" } else { "replicas" };
            rows.push((format!("PostgreSQL, {replicas} {noun} × {count}{role}"), arrivals));
        }
    }

    println!("### Activation fan-out over replicas: subscribers of /maintenance/events, {ROUNDS} rounds per set-up\n");
    println!(
        "From sending the activate (to the first manager) to each subscriber's `activated` event; the replica \
         that activates sends it before its answer, the others when PostgreSQL's notification reaches them. \
         p50 / p99 over subscribers and rounds; the last subscriber: median of rounds, worst round:\n"
    );
    println!("| set-up, manager | p50 | p99 | last (median) | last (worst) |\n|---|---|---|---|---|");
    for (name, mut arrivals) in rows {
        arrivals.all.sort_by(f64::total_cmp);
        arrivals.lasts.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(quantile(&arrivals.all, 0.5)),
            ms(quantile(&arrivals.all, 0.99)),
            ms(quantile(&arrivals.lasts, 0.5)),
            ms(quantile(&arrivals.lasts, 1.0))
        );
    }
    println!();
    Ok(())
}

/// Connects `per_target` subscribers to each target, then activates and
/// deactivates on the first `ROUNDS` times; each target's arrivals.
async fn measure(targets: &[Target], per_target: usize) -> anyhow::Result<Vec<Arrivals>> {
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<Sighting>();
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let mut streams = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        for _ in 0..per_target / CONNECTING_AT_ONCE {
            let (ready_tx, mut ready) = mpsc::channel::<()>(CONNECTING_AT_ONCE);
            for _ in 0..CONNECTING_AT_ONCE {
                let stream =
                    Stream { client: client.clone(), manager: index, ready: ready_tx.clone(), seen: seen_tx.clone() };
                let url = format!("{}/api/v3.1/maintenance/events", target.base);
                streams.push(tokio::spawn(stream.subscribe(url, target.token.clone())));
            }
            for _ in 0..CONNECTING_AT_ONCE {
                tokio::time::timeout(PATIENCE, ready.recv()).await.context("subscribers connecting")?;
            }
        }
    }
    let total = targets.len() * per_target;
    let mut arrivals: Vec<Arrivals> = targets.iter().map(|_| Arrivals { all: Vec::new(), lasts: Vec::new() }).collect();
    let admin = reqwest::Client::new();
    let first = &targets[0];
    for _ in 0..ROUNDS {
        let sent = Instant::now();
        maintenance(&admin, &first.base, &first.token, "activate").await?;
        let times = await_state(&mut seen, MaintenanceState::Activated, total, targets.len()).await?;
        for (times, arrivals) in times.into_iter().zip(&mut arrivals) {
            let round: Vec<f64> =
                times.iter().map(|at| at.saturating_duration_since(sent).as_secs_f64() * 1000.0).collect();
            arrivals.lasts.push(round.iter().copied().fold(0.0, f64::max));
            arrivals.all.extend(round);
        }
        maintenance(&admin, &first.base, &first.token, "deactivate").await?;
        await_state(&mut seen, MaintenanceState::Deactivated, total, targets.len()).await?;
    }
    for stream in streams {
        stream.abort();
    }
    Ok(arrivals)
}

/// One subscriber of a manager's event stream.
struct Stream {
    client: reqwest::Client,
    /// The manager's index.
    manager: usize,
    /// Told once the stream's first status event (the current status) is in.
    ready: mpsc::Sender<()>,
    /// Told every later status event.
    seen: mpsc::UnboundedSender<Sighting>,
}

impl Stream {
    async fn subscribe(self, url: String, token: String) -> anyhow::Result<()> {
        let Self { client, manager, ready, seen } = self;
        let response = client.get(url).header(shared::api::TOKEN_HEADER, token).send().await?;
        anyhow::ensure!(response.status() == 200, "events: {}", response.status());
        let mut body = response.bytes_stream();
        let mut buffer = shared::sse::SseBuffer::default();
        let mut first = true;
        while let Some(chunk) = body.next().await {
            buffer.push(&chunk?);
            while let Some(event) = buffer.next_event() {
                if event.name != "status" {
                    continue;
                }
                let status: MaintenanceStatus = serde_json::from_str(&event.data)?;
                if first {
                    first = false;
                    let _ = ready.send(()).await;
                } else if seen.send((manager, status.status, Instant::now())).is_err() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// Waits until `count` subscribers have reported `state` (others ignored);
/// when each did, grouped by manager.
async fn await_state(
    seen: &mut mpsc::UnboundedReceiver<Sighting>,
    state: MaintenanceState,
    count: usize,
    managers: usize,
) -> anyhow::Result<Vec<Vec<Instant>>> {
    let mut arrivals = vec![Vec::new(); managers];
    let mut arrived = 0;
    while arrived < count {
        let (index, seen_state, at) = tokio::time::timeout(PATIENCE, seen.recv()).await?.context("an event")?;
        if seen_state == state {
            arrivals[index].push(at);
            arrived += 1;
        }
    }
    Ok(arrivals)
}

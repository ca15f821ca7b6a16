//! Admissions per second while maintenance is activated: 64 clients create
//! executions with `"queue": true`, so each is a decision and an insert (and
//! no workflow process is spawned). One manager per store; the stores take
//! turns, so the machine's noise falls on each.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::cpu::{self, CpuSeconds};
use super::{ms, quantile};
use crate::{serve_on, Served, StoreKind};

/// Concurrent clients.
const CLIENTS: usize = 64;
/// Turns per store; each store is measured for `TURNS × TURN`.
const TURNS: usize = 2;
const TURN: Duration = Duration::from_millis(2500);
/// Unmeasured load first, per store (pools fill, caches warm).
const WARM_UP: Duration = Duration::from_secs(1);

/// The admissions of one turn: when each was answered, how long it took.
#[derive(Default)]
struct Admitted {
    latencies_ms: Vec<f64>,
    elapsed: Duration,
    /// CPU time spent meanwhile, here (manager and clients) and by PostgreSQL.
    cpu: CpuSeconds,
}

pub async fn figures() -> anyhow::Result<()> {
    let stores = [StoreKind::Sqlite, StoreKind::Postgres, StoreKind::SqliteTmpfs];
    let mut served = Vec::new();
    for store in stores {
        let manager = serve_on(store, true).await?;
        manager.manager_state.engine.activate(manager::engine::machine::Activation::by("admin")).await?;
        create_for(&manager, WARM_UP).await.with_context(|| format!("warming up {}", store.name()))?;
        served.push(manager);
    }
    let ticks = cpu::ticks_per_second();
    let mut admitted: Vec<Admitted> = stores.iter().map(|_| Admitted::default()).collect();
    for _ in 0..TURNS {
        for (manager, total) in served.iter().zip(&mut admitted) {
            let before = cpu::now(ticks)?;
            let turn = create_for(manager, TURN).await?;
            let spent = cpu::now(ticks)? - before;
            total.latencies_ms.extend(turn.latencies_ms);
            total.elapsed += turn.elapsed;
            total.cpu.bench += spent.bench;
            total.cpu.postgres += spent.postgres;
        }
    }
    let database = served.iter().find_map(|manager| manager.database.clone()).context("the PostgreSQL manager")?;

    println!(
        "### Admissions while activated: POST /api/v3.1/executions with `\"queue\": true`, {CLIENTS} clients, \
         {TURNS} turns of {TURN:?} per store (the stores alternating)\n"
    );
    println!(
        "| store | admissions/s | p50 | p99 | CPU per admission: manager + clients | PostgreSQL server |\n\
         |---|---|---|---|---|---|"
    );
    for (store, total) in stores.iter().zip(&mut admitted) {
        total.latencies_ms.sort_by(f64::total_cmp);
        let count = total.latencies_ms.len() as f64;
        println!(
            "| {} | {:.0} | {} | {} | {:.0} µs | {:.0} µs |",
            store.name(),
            count / total.elapsed.as_secs_f64(),
            ms(quantile(&total.latencies_ms, 0.5)),
            ms(quantile(&total.latencies_ms, 0.99)),
            total.cpu.bench / count * 1e6,
            total.cpu.postgres / count * 1e6
        );
    }
    println!(
        "\nEach admission on PostgreSQL is one transaction: BEGIN, the decision lock (shared), the maintenance \
         row, the clock, the insert, a notification, COMMIT. pg-harness runs PostgreSQL with `fsync=off`: compare \
         it with SQLite on tmpfs for the same (no) durability, with SQLite on disk for the default.\n"
    );
    // On the PostgreSQL manager's database, which ignores the rows and
    // notifications (they name it); never deactivated, which would start
    // every queued execution.
    super::round_trips::figures(&database).await?;
    drop(served);
    Ok(())
}

/// `CLIENTS` clients create queued executions on `manager` for `duration`.
async fn create_for(manager: &Served, duration: Duration) -> anyhow::Result<Admitted> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build()?;
    let url = format!("{}/api/v3.1/executions", manager.base);
    let body = serde_json::json!({"workflow_id": "install", "deployment_id": "bench", "queue": true}).to_string();
    let started = Instant::now();
    let deadline = started + duration;
    let workers = (0..CLIENTS).map(|_| {
        let (client, url, body, token) = (client.clone(), url.clone(), body.clone(), manager.token.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header(shared::api::TOKEN_HEADER, &token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let answer = response.bytes().await?;
                if status != 201 {
                    bail!("{url}: {status}: {}", String::from_utf8_lossy(&answer));
                }
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(latencies)
        })
    });
    let mut latencies_ms = Vec::new();
    for worker in futures_util::future::join_all(workers).await {
        latencies_ms.extend(worker??);
    }
    Ok(Admitted { latencies_ms, elapsed: started.elapsed(), cpu: CpuSeconds::default() })
}

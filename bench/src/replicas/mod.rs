//! The `replicas` section (issue 13): several managers on one PostgreSQL
//! database (SPEC §8), against SQLite where the two can be compared.
//!
//! - propagation: an activate acknowledged by one replica → the others'
//!   gates answer 503 (goal: p99 < 20 ms);
//! - the gate's cost on either store (load, and instructions per request
//!   under callgrind): it reads memory only;
//! - admissions per second while activated (`"queue": true`), either store;
//! - 3 replicas × 1 000 event-stream subscribers: one activate → the last
//!   subscriber on each replica.
//!
//! The replicas run in this process (as `backend/tests/replicas.rs` runs
//! them), each with its own pool, listener and heartbeat, on a throwaway
//! PostgreSQL server of the `pg-harness` crate that ends with the bench.

mod admissions;
pub(crate) mod cpu;
mod fan_out;
mod gate;
pub(crate) mod propagation;
mod round_trips;

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use manager::config::Config;
use manager::state::AppState;
use manager::Manager;
use shared::{MaintenanceState, Role};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::PASSWORD;

/// The bound on any one wait (a round, a stream's event, a stop).
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs the section's four parts and prints their figures.
pub async fn figures() -> anyhow::Result<()> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("## Replicas on PostgreSQL (SPEC §8)\n");
    println!(
        "load average before: {} (1, 5, 15 min); PostgreSQL {} from pg-harness (a throwaway server on a Unix \
         socket, `fsync=off`); the replicas, the load generators and the server share the machine\n",
        load.join(" "),
        postgres_version().await.unwrap_or_else(|error| format!("(version unknown: {error:#})"))
    );
    propagation::figures().await?;
    gate::figures().await?;
    admissions::figures().await?;
    fan_out::figures().await?;
    Ok(())
}

async fn postgres_version() -> anyhow::Result<String> {
    let asked = tokio::task::spawn_blocking(|| pg_harness::shared().psql("postgres", "SHOW server_version")).await?;
    Ok(asked?.trim().to_owned())
}

/// One replica served in this process, with an admin's token.
pub struct Replica {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// An admin's token (minted here; valid on every replica).
    pub token: String,
    /// Its state: the engine, to see what it has applied.
    pub state: AppState,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _data: tempfile::TempDir,
}

impl Replica {
    /// Opens a replica named `id` on `database` and serves it on a free port.
    pub async fn start(database: &str, id: &str) -> anyhow::Result<Self> {
        Self::start_on(Some(database), id).await
    }

    /// Opens a manager on `database` (`None`: SQLite in a temporary data
    /// dir, and `id` is not used) and serves it on a free port, scheduler
    /// included, as the `manager` binary does.
    pub async fn start_on(database: Option<&str>, id: &str) -> anyhow::Result<Self> {
        Self::start_with(database, id, tempfile::tempdir()?, |config| config).await
    }

    /// As [`Replica::start_on`], with its data dir in `data` (which it keeps)
    /// and the configuration as `adjust` makes it (webhooks, say).
    pub async fn start_with(
        database: Option<&str>,
        id: &str,
        data: tempfile::TempDir,
        adjust: impl FnOnce(Config) -> Config,
    ) -> anyhow::Result<Self> {
        let config = adjust(replica_config(data.path(), database, id));
        let manager = Manager::open(&config).await.with_context(|| format!("opening replica {id}"))?;
        let state = manager.state().clone();
        let token = state.auth.issue_token("admin", Role::Admin).await?.value;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let server = tokio::spawn(manager.serve(listener, stop.clone()));
        Ok(Self { base, token, state, stop, server, _data: data })
    }

    /// Stops serving (streams end) and waits for the server to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        tokio::time::timeout(PATIENCE, self.server).await.context("a replica's stop")???;
        Ok(())
    }

    /// `POST /maintenance/{verb}` (activate, deactivate) on this replica.
    pub async fn maintenance(&self, client: &reqwest::Client, verb: &str) -> anyhow::Result<()> {
        maintenance(client, &self.base, &self.token, verb).await
    }
}

/// `POST /maintenance/{verb}` (activate, deactivate) on the manager at `base`.
pub async fn maintenance(client: &reqwest::Client, base: &str, token: &str, verb: &str) -> anyhow::Result<()> {
    let url = format!("{base}/api/v3.1/maintenance/{verb}");
    let response = client.post(url).header(shared::api::TOKEN_HEADER, token).send().await?;
    anyhow::ensure!(response.status() == 200, "{verb}: {}", response.status());
    response.bytes().await?;
    Ok(())
}

fn replica_config(data_dir: &Path, database: Option<&str>, id: &str) -> Config {
    Config {
        dist: "/nonexistent".into(),
        admin_password: Some(PASSWORD.into()),
        workflows: manager::workflows::EXAMPLES.into(),
        database: database.map(str::to_owned),
        replica_id: database.map(|_| id.to_owned()),
        ..Config::local(data_dir.to_owned())
    }
}

/// `n` replicas `r1`…`rn` on a fresh database, started one after the other.
pub async fn cluster(n: usize) -> anyhow::Result<Vec<Replica>> {
    cluster_on(&crate::fresh_database().await?, n).await
}

/// `n` replicas `r1`…`rn` on `database` (fresh), started one after the other.
pub async fn cluster_on(database: &str, n: usize) -> anyhow::Result<Vec<Replica>> {
    let mut replicas = Vec::with_capacity(n);
    for index in 1..=n {
        replicas.push(Replica::start(database, &format!("r{index}")).await?);
    }
    Ok(replicas)
}

/// Stops every replica.
pub async fn stop_all(replicas: Vec<Replica>) -> anyhow::Result<()> {
    for replica in replicas {
        replica.stop().await?;
    }
    Ok(())
}

/// Waits until every replica's engine has published `state`.
pub async fn await_everywhere(replicas: &[Replica], state: MaintenanceState) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while replicas.iter().any(|replica| replica.state.engine.state() != state) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "replicas did not all reach {state:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Milliseconds, as the tables print them.
pub fn ms(milliseconds: f64) -> String {
    format!("{milliseconds:.2} ms")
}

/// The `fraction` quantile (nearest rank) of `sorted`.
pub fn quantile(sorted: &[f64], fraction: f64) -> f64 {
    sorted[((sorted.len() as f64 * fraction) as usize).min(sorted.len() - 1)]
}

/// "p50 / p99 / max" of `samples` (sorted in place), in milliseconds.
pub fn spread(samples: &mut [f64]) -> String {
    samples.sort_by(f64::total_cmp);
    format!("{} / {} / {}", ms(quantile(samples, 0.5)), ms(quantile(samples, 0.99)), ms(quantile(samples, 1.0)))
}

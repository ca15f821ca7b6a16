//! The `webhooks` section (issue 16): maintenance events POSTed to a
//! receiver (SPEC §11).
//!
//! - Latency: a change committed → the receiver has its event, receiver
//!   healthy on 127.0.0.1, one change at a time.
//! - Backlog drain: the receiver down (nothing listening on its port) while
//!   500 events are made, then up on that port: how fast the backlog goes.
//!
//! Each on SQLite (data dir on disk, every commit fsync'd), SQLite on tmpfs
//! (fsync costs nothing: what the disk adds) and PostgreSQL (pg-harness,
//! `fsync=off`). The managers run in this process, served with
//! `Manager::serve` (deliverers included) as the binary serves them; the
//! receiver is an axum server in this process too, as in
//! `backend/tests/common/receiver.rs`.

mod backlog;
mod latency;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use shared::api::{API_PREFIX, TOKEN_HEADER};
use shared::webhook::SIGNATURE_HEADER;
use shared::{WebhookEvent, Webhooks};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::replicas::Replica;
use crate::windows::{load_average, wall_ns};
use crate::workflows::manager_process::answer;
use crate::StoreKind;

/// The secret the bench's managers sign with.
const SECRET: &str = "bench webhook secret";
/// The bound on any one wait (an event's arrival, a report, the drain).
const PATIENCE: Duration = Duration::from_secs(30);
/// The stores measured, in order.
const STORES: [StoreKind; 3] = [StoreKind::Sqlite, StoreKind::SqliteTmpfs, StoreKind::Postgres];

/// Runs both parts on every store and prints their figures.
pub async fn figures() -> anyhow::Result<()> {
    println!("## Webhooks (SPEC §11)\n");
    println!("load average before: {} (1, 5, 15 min)\n", load_average());
    latency::figures().await?;
    println!("load average between the two parts: {} (1, 5, 15 min)\n", load_average());
    backlog::figures().await?;
    println!("load average after: {} (1, 5, 15 min)\n", load_average());
    Ok(())
}

/// A manager on `store` delivering to `url`, served in this process, its
/// URL's cursor registered (events from now on are delivered).
async fn start_manager(store: StoreKind, url: String) -> anyhow::Result<Replica> {
    let database = match store {
        StoreKind::Postgres => Some(crate::fresh_database().await?),
        StoreKind::Sqlite | StoreKind::SqliteTmpfs => None,
    };
    let data = match store {
        StoreKind::SqliteTmpfs => tempfile::tempdir_in(crate::workflows::TMPFS)?,
        StoreKind::Sqlite | StoreKind::Postgres => tempfile::tempdir()?,
    };
    let manager = Replica::start_with(database.as_deref(), "r1", data, |config| manager::config::Config {
        webhooks: vec![url],
        webhook_secret: Some(manager::webhooks::Secret::new(SECRET)),
        ..config
    })
    .await?;
    // The deliverer registers the cursor when it starts; the report lists a URL once it has one.
    let client = reqwest::Client::new();
    let give_up = Instant::now() + PATIENCE;
    while report(&client, &manager).await?.webhooks.is_empty() {
        ensure!(Instant::now() < give_up, "the webhook's cursor was never registered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(manager)
}

/// `GET /maintenance/webhooks`.
async fn report(client: &reqwest::Client, manager: &Replica) -> anyhow::Result<Webhooks> {
    let request = client.get(format!("{}{API_PREFIX}/maintenance/webhooks", manager.base));
    answer!(request.header(TOKEN_HEADER, &manager.token).send().await?, 200)
}

/// One POST as it reached the receiver: when (taken in the handler, once
/// the body is read, before anything is parsed) and what.
struct Arrival {
    at: Instant,
    /// The wall clock then, in nanoseconds since the epoch.
    wall_ns: i128,
    body: Bytes,
    signature: String,
}

impl Arrival {
    /// The event, once its signature is checked.
    fn event(&self) -> anyhow::Result<WebhookEvent> {
        ensure!(
            self.signature == manager::webhooks::sign(SECRET.as_bytes(), &self.body),
            "a POST whose X-Manager-Signature is not the body's HMAC"
        );
        serde_json::from_slice(&self.body).context("a POST whose body is not a webhook event")
    }
}

/// A webhook receiver answering 200 at once, serving until dropped.
struct Receiver {
    address: SocketAddr,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    stop: CancellationToken,
}

impl Receiver {
    /// Serves on `address` (port 0: a free one).
    async fn start(address: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address).await.with_context(|| format!("the receiver on {address}"))?;
        let address = listener.local_addr()?;
        let (sender, arrivals) = mpsc::unbounded_channel();
        let app = axum::Router::new().route("/hook", post(receive)).with_state(sender);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await }).await
        });
        Ok(Self { address, arrivals, stop })
    }

    /// The next arrival, within [`PATIENCE`].
    async fn next(&mut self) -> anyhow::Result<Arrival> {
        let next = tokio::time::timeout(PATIENCE, self.arrivals.recv()).await;
        next.context("no webhook arrived in time")?.context("the receiver stopped")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive(State(arrivals): State<mpsc::UnboundedSender<Arrival>>, headers: HeaderMap, body: Bytes) {
    let (at, wall_ns) = (Instant::now(), wall_ns());
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let _ = arrivals.send(Arrival { at, wall_ns, body, signature });
}

/// The webhook URL of a receiver at `address`.
fn url_of(address: SocketAddr) -> String {
    format!("http://{address}/hook")
}

/// A loopback address nothing listens on (until a receiver starts there).
fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Milliseconds from `from` to `to` (negative: `to` came first).
fn between(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(after) => after.as_secs_f64() * 1000.0,
        None => -(from.duration_since(to).as_secs_f64() * 1000.0),
    }
}

//! What an admission's SQL costs PostgreSQL, without HTTP or the manager
//! around it: the transaction `engine/postgres.rs` runs for a queued create
//! (BEGIN, the decision lock shared, the maintenance row, the clock, the
//! insert, a notification, COMMIT), on as many connections as a replica's
//! pool holds, sent two ways, alternating:
//!
//! - as the manager sends it: each statement a `&str`, which tokio-postgres
//!   prepares anew (Parse/Describe, a round trip) before it runs it (Bind/
//!   Execute, another): 12 round trips;
//! - with each statement prepared once per connection: 7 round trips.
//!
//! The statements are copied from the engine; if the schema moves on, this
//! fails loudly rather than measuring something else.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_postgres::{Client, NoTls, Statement};

use super::cpu::{self, CpuSeconds};
use super::ms;

/// Connections, as in a replica's pool (`Config::pool_size`).
const CONNECTIONS: usize = 32;
const TURNS: usize = 2;
const TURN: Duration = Duration::from_millis(2500);
/// The engine's advisory lock key of maintenance decisions.
const DECISION_LOCK: i64 = 0x6d61_696e_7465_6e62;

const LOCK: &str = "SELECT pg_advisory_xact_lock_shared($1)";
const RECORD: &str =
    "SELECT status, requested_by, activation_requested_at, activated_at, reason FROM maintenance WHERE id = 1";
const CLOCK: &str = "SELECT manager_now()";
const INSERT: &str = "INSERT INTO executions (id, workflow_id, deployment_id, status, parameters, created_at, \
                      started_at, ended_at, created_by, error, owner) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// How the statements are sent.
#[derive(Clone, Copy, PartialEq)]
enum Sending {
    /// Prepared anew for every use, as the manager does.
    AsTheManager,
    /// Prepared once per connection.
    Prepared,
}

pub async fn figures(database: &str) -> anyhow::Result<()> {
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let (client, connection) = tokio_postgres::connect(database, NoTls).await.context("connecting")?;
        tokio::spawn(connection);
        let prepared = Prepared::on(&client).await?;
        clients.push(std::sync::Arc::new((client, prepared)));
    }
    let ticks = cpu::ticks_per_second();
    let ways = [Sending::AsTheManager, Sending::Prepared];
    let mut totals = [(0_usize, Duration::ZERO, CpuSeconds::default()); 2];
    for _ in 0..TURNS {
        for (way, total) in ways.iter().zip(&mut totals) {
            let before = cpu::now(ticks)?;
            let started = Instant::now();
            let deadline = started + TURN;
            let workers = clients.iter().map(|client| {
                let (client, way) = (client.clone(), *way);
                tokio::spawn(async move {
                    let mut done = 0_usize;
                    while Instant::now() < deadline {
                        admit(&client.0, &client.1, way).await?;
                        done += 1;
                    }
                    anyhow::Ok(done)
                })
            });
            for worker in futures_util::future::join_all(workers).await {
                total.0 += worker??;
            }
            total.1 += started.elapsed();
            let spent = cpu::now(ticks)? - before;
            total.2.bench += spent.bench;
            total.2.postgres += spent.postgres;
        }
    }
    drop(clients);

    println!(
        "The admission's transaction alone (tokio-postgres, {CONNECTIONS} connections, no HTTP, {TURNS} turns of \
         {TURN:?} each way, alternating):\n"
    );
    println!("| statements sent | round trips | transactions/s | mean | CPU per transaction: client | PostgreSQL |");
    println!("|---|---|---|---|---|---|");
    for ((name, trips), (count, elapsed, spent)) in
        [("as the manager sends them (`&str`: prepared on every use)", 12), ("prepared once per connection", 7)]
            .iter()
            .zip(totals)
    {
        let count = count as f64;
        println!(
            "| {name} | {trips} | {:.0} | {} | {:.0} µs | {:.0} µs |",
            count / elapsed.as_secs_f64(),
            ms(elapsed.as_secs_f64() * 1000.0 * CONNECTIONS as f64 / count),
            spent.bench / count * 1e6,
            spent.postgres / count * 1e6
        );
    }
    println!();
    Ok(())
}

/// The admission's statements, prepared on one connection.
struct Prepared {
    lock: Statement,
    record: Statement,
    clock: Statement,
    insert: Statement,
    notify: Statement,
}

impl Prepared {
    async fn on(client: &Client) -> anyhow::Result<Self> {
        Ok(Self {
            lock: client.prepare(LOCK).await?,
            record: client.prepare(RECORD).await?,
            clock: client.prepare(CLOCK).await?,
            insert: client.prepare(INSERT).await?,
            notify: client.prepare(NOTIFY).await?,
        })
    }
}

/// One queued admission's transaction, its statements sent `way`.
async fn admit(client: &Client, prepared: &Prepared, way: Sending) -> anyhow::Result<()> {
    let id = format!("round-trips-{}", NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    client.batch_execute("BEGIN").await?;
    let now: String = if way == Sending::Prepared {
        client.execute(&prepared.lock, &[&DECISION_LOCK]).await?;
        client.query_one(&prepared.record, &[]).await?;
        client.query_one(&prepared.clock, &[]).await?.get(0)
    } else {
        client.execute(LOCK, &[&DECISION_LOCK]).await?;
        client.query_one(RECORD, &[]).await?;
        client.query_one(CLOCK, &[]).await?.get(0)
    };
    let none: Option<String> = None;
    let (workflow, deployment, status, parameters, by, error) = ("install", "bench", "queued", "{}", "admin", "");
    let row: [&(dyn tokio_postgres::types::ToSql + Sync); 11] =
        [&id, &workflow, &deployment, &status, &parameters, &now, &none, &none, &by, &error, &none];
    let note = format!("bench {id}");
    if way == Sending::Prepared {
        client.execute(&prepared.insert, &row).await?;
        client.execute(&prepared.notify, &[&"manager_executions", &note]).await?;
    } else {
        client.execute(INSERT, &row).await?;
        client.execute(NOTIFY, &[&"manager_executions", &note]).await?;
    }
    client.batch_execute("COMMIT").await?;
    Ok(())
}

/// Numbers the rows this inserts (the table's key is text).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

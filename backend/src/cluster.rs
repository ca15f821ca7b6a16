//! One replica among several on one PostgreSQL database (SPEC §8): what runs
//! beside the requests.
//!
//! - **Listener**: a connection of its own that `LISTEN`s for status changes
//!   (payload: the epoch) and execution changes; each replica re-reads the
//!   status only if the epoch is above the one it published. After every
//!   (re)connect it listens first and then re-reads, so nothing committed
//!   meanwhile is missed.
//!   Output stored by another replica is announced as an empty batch ending
//!   where the stored lines end, so this replica's streams catch up from the
//!   store.
//! - **Heartbeat**: renews this replica's lease (and says which change it has
//!   applied) every third of the lease; re-reads the status too, a safety net
//!   under the notifications. A replica that cannot renew its lease for
//!   longer than the lease stops its own executions (fencing): the others
//!   are about to fail them.
//! - **Reaper**: fails the executions of replicas whose lease ran out, and
//!   completes `activating` when nothing is left. Every replica runs it; the
//!   maintenance row's lock makes each failure happen once.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_postgres::{AsyncMessage, NoTls};
use uuid::Uuid;

use crate::engine::Engine;
use crate::output::OutputBatch;
use crate::store::ledger::postgres::{EXECUTIONS_CHANNEL, STATE_CHANNEL};
use crate::store::postgres::OUTPUT_CHANNEL;
use crate::store::StoreError;

/// How often the listener checks that its connection still answers.
const LISTENER_CHECK: Duration = Duration::from_secs(5);
/// How many notifications wait to be read; past it they are dropped and
/// everything is re-read once.
const HEARD_CAPACITY: usize = 4096;
/// The longest pause between attempts to reconnect the listener.
const MAX_RECONNECT_PAUSE: Duration = Duration::from_secs(2);

/// This replica's tasks; they end when the engine is dropped.
pub struct Cluster {
    address: Mutex<String>,
    /// Whether the last database call of the heartbeat or the listener worked.
    database_up: AtomicBool,
    lease: Duration,
}

impl Cluster {
    /// Registers this replica (its first heartbeat) and starts the listener,
    /// the heartbeat and the reaper.
    pub async fn start(engine: &Arc<Engine>, lease: Duration) -> Result<Arc<Self>, StoreError> {
        let cluster = Arc::new(Self { address: Mutex::new(String::new()), database_up: AtomicBool::new(true), lease });
        let client = connect(engine).await?;
        engine.heartbeat(&client, lease, "").await?;
        tokio::spawn(listen(Arc::downgrade(engine), Arc::downgrade(&cluster)));
        tokio::spawn(beat(Arc::downgrade(engine), Arc::downgrade(&cluster), client));
        tokio::spawn(upkeep(Arc::downgrade(engine), lease));
        Ok(cluster)
    }

    /// The address this replica serves on (shown in `GET /maintenance/replicas`).
    pub fn serving_at(&self, address: SocketAddr) {
        *self.address.lock().unwrap_or_else(PoisonError::into_inner) = address.to_string();
    }

    /// The address this replica serves on ("" until it serves).
    pub fn address(&self) -> String {
        self.address.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether the database answered this replica's last call.
    pub fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Relaxed)
    }

    /// How long a lease lasts.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    fn saw_database(&self, up: bool) {
        let was = self.database_up.swap(up, Ordering::Relaxed);
        if was != up {
            if up {
                tracing::info!("the database answers again");
            } else {
                tracing::warn!("the database does not answer; the gate keeps enforcing the last state applied");
            }
        }
    }
}

/// Renews the lease every third of it, on a connection of its own and with
/// nothing else in the loop (a busy pool or a slow reap must not delay it),
/// and right after each change this replica applies, so
/// `GET /maintenance/replicas` shows who enforces it within milliseconds.
/// Once the last renewal that worked was sent longer ago than two thirds of
/// the lease, the others may soon take this replica for dead: it stops its
/// executions (fencing) and admits none until a renewal works again.
async fn beat(engine: Weak<Engine>, cluster: Weak<Cluster>, client: tokio_postgres::Client) {
    let mut client = Some(client);
    let Some(lease) = cluster.upgrade().map(|cluster| cluster.lease) else { return };
    let Some(mut applied) = engine.upgrade().map(|engine| engine.subscribe()) else { return };
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let renewed = Arc::new(Mutex::new(Instant::now()));
    tokio::spawn(fence_watch(engine.clone(), Arc::clone(&renewed), lease));
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            change = applied.recv() => if let Err(tokio::sync::broadcast::error::RecvError::Closed) = change {
                return;
            },
        }
        let (Some(engine), Some(cluster)) = (engine.upgrade(), cluster.upgrade()) else { return };
        let sent = Instant::now();
        if client.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
            client = tokio::time::timeout(lease / 3, connect(&engine)).await.ok().and_then(Result::ok);
        }
        let renewal = match &client {
            Some(client) => tokio::time::timeout(lease / 3, engine.heartbeat(client, lease, &cluster.address()))
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable("the lease renewal timed out".into()))),
            None => Err(StoreError::Unavailable("the heartbeat cannot connect".into())),
        };
        match renewal {
            Ok(()) => {
                *renewed.lock().unwrap_or_else(PoisonError::into_inner) = sent;
                engine.set_lease_held(true);
                cluster.saw_database(true);
            }
            Err(error) => {
                tracing::warn!(%error, "could not renew this replica's lease");
                // A connection that failed once is not trusted again.
                client = None;
                cluster.saw_database(false);
            }
        }
    }
}

/// Fences this replica when its last renewal that worked was sent two
/// thirds of the lease ago, on this process's monotonic clock, whatever the
/// heartbeat is doing (a renewal may hang): its programs are killed before
/// the lease runs out, so no survivor takes over work that still runs here.
async fn fence_watch(engine: Weak<Engine>, renewed: Arc<Mutex<Instant>>, lease: Duration) {
    let fence_after = lease * 2 / 3;
    loop {
        let due = *renewed.lock().unwrap_or_else(PoisonError::into_inner) + fence_after;
        tokio::time::sleep_until(due).await;
        let Some(engine) = engine.upgrade() else { return };
        let last = *renewed.lock().unwrap_or_else(PoisonError::into_inner);
        if last + fence_after <= Instant::now() {
            if engine.set_lease_held(false) {
                let stopped = engine.fence();
                tracing::error!(stopped, "lease about to run out: killed this replica's programs");
            }
            drop(engine);
            // Until a renewal works again.
            tokio::time::sleep(lease / 20).await;
        }
    }
}

/// Every third of the lease: re-reads the status (a safety net under the
/// notifications), fails what dead replicas ran, and brings this replica's
/// runners in line with the database.
async fn upkeep(engine: Weak<Engine>, lease: Duration) {
    let mut ticks = tokio::time::interval(lease / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(engine) = engine.upgrade() else { return };
        if let Err(error) = engine.resync().await {
            tracing::warn!(%error, "could not re-read the status");
        }
        match engine.reap().await {
            Ok(0) => {}
            Ok(reaped) => tracing::warn!(reaped, "failed the executions of replicas whose lease ran out"),
            Err(error) => tracing::warn!(%error, "could not check for replicas whose lease ran out"),
        }
        if let Err(error) = engine.reconcile_runners().await {
            tracing::warn!(%error, "could not check this replica's executions");
        }
    }
}

/// A connection of its own (not from the pool), within the call timeout.
async fn connect(engine: &Engine) -> Result<tokio_postgres::Client, StoreError> {
    let config =
        engine.pg().map(|pg| pg.config().clone()).ok_or_else(|| StoreError::Config("not on PostgreSQL".into()))?;
    crate::store::postgres::bounded(async {
        let (client, connection) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            // Ends when the connection does; the client then reports it closed.
            let _ = connection.await;
        });
        Ok(client)
    })
    .await
}

/// What the listener's connection hears.
enum Heard {
    State(u64),
    /// Executions changed by `replica`: these ids, or too many to list (`None`).
    Executions {
        replica: String,
        ids: Option<Vec<Uuid>>,
    },
    /// Output of execution `id` is stored up to line `end` (exclusive).
    Output {
        id: Uuid,
        end: u64,
    },
}

/// Listens for changes on a connection of its own; reconnects with backoff.
async fn listen(engine: Weak<Engine>, cluster: Weak<Cluster>) {
    let mut pause = Duration::from_millis(50);
    loop {
        let Some(config) = engine.upgrade().and_then(|engine| engine.pg().map(|pg| pg.config().clone())) else {
            return;
        };
        let (sender, mut heard) = mpsc::channel(HEARD_CAPACITY);
        // Set when notifications came faster than they were read (some were
        // dropped): the loop then re-reads everything instead.
        let overflowed = Arc::new(AtomicBool::new(false));
        let overflow = Arc::clone(&overflowed);
        let connected = async {
            let (client, mut connection) = config.connect(NoTls).await?;
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            tokio::spawn(async move {
                while let Some(Ok(message)) = messages.next().await {
                    if let AsyncMessage::Notification(note) = message {
                        let heard = match note.channel() {
                            STATE_CHANNEL => note.payload().parse().ok().map(Heard::State),
                            EXECUTIONS_CHANNEL => note.payload().split_once(' ').and_then(|(replica, ids)| {
                                let ids = match ids {
                                    "*" => None,
                                    ids => {
                                        Some(ids.split(',').map(Uuid::parse_str).collect::<Result<Vec<_>, _>>().ok()?)
                                    }
                                };
                                Some(Heard::Executions { replica: replica.to_owned(), ids })
                            }),
                            OUTPUT_CHANNEL => note.payload().split_once(' ').and_then(|(id, end)| {
                                Some(Heard::Output { id: Uuid::parse_str(id).ok()?, end: end.parse().ok()? })
                            }),
                            _ => None,
                        };
                        if let Some(heard) = heard {
                            match sender.try_send(heard) {
                                Ok(()) => {}
                                Err(mpsc::error::TrySendError::Full(_)) => overflow.store(true, Ordering::Release),
                                Err(mpsc::error::TrySendError::Closed(_)) => return,
                            }
                        }
                    }
                }
                // The connection ended: dropping `sender` tells the loop below.
            });
            client
                .batch_execute(&format!("LISTEN {STATE_CHANNEL}; LISTEN {EXECUTIONS_CHANNEL}; LISTEN {OUTPUT_CHANNEL}"))
                .await?;
            Ok::<_, tokio_postgres::Error>(client)
        };
        let client = match tokio::time::timeout(crate::store::postgres::CALL_TIMEOUT, connected).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                tracing::debug!(%error, "the listener cannot connect");
                if let Some(cluster) = cluster.upgrade() {
                    cluster.saw_database(false);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
                continue;
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
                continue;
            }
        };
        // Listening now: whatever was committed before is read here.
        let Some(this) = engine.upgrade() else { return };
        if this.resync().await.is_err() {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_RECONNECT_PAUSE);
            continue;
        }
        if let Err(error) = this.reconcile_runners().await {
            tracing::warn!(%error, "could not check this replica's executions after reconnecting");
        }
        if let Some(cluster) = cluster.upgrade() {
            cluster.saw_database(true);
        }
        pause = Duration::from_millis(50);
        let me = this.replica().unwrap_or_default().to_owned();
        drop(this);
        let mut alive = tokio::time::interval(LISTENER_CHECK);
        alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        alive.tick().await;
        loop {
            let first = tokio::select! {
                heard = heard.recv() => match heard {
                    Some(first) => first,
                    None => break,
                },
                _ = alive.tick() => {
                    // A connection that went silent (a vanished peer) is not
                    // closed for a long time: ask, and reconnect if no answer.
                    let answered = tokio::time::timeout(LISTENER_CHECK, client.simple_query("SELECT 1")).await;
                    if !matches!(answered, Ok(Ok(_))) {
                        break;
                    }
                    continue;
                }
            };
            // Everything heard so far, at once: the newest status first, each
            // execution once, each execution's output once.
            let mut epoch = None;
            // `None` once some replica changed too many to list.
            let mut executions = Some(Vec::new());
            let mut outputs = std::collections::HashMap::new();
            let mut next = Some(first);
            while let Some(heard_now) = next.take().or_else(|| heard.try_recv().ok()) {
                match heard_now {
                    Heard::State(number) => epoch = epoch.max(Some(number)),
                    Heard::Executions { replica, .. } if replica == me => {}
                    Heard::Executions { ids: None, .. } => executions = None,
                    Heard::Executions { ids: Some(ids), .. } => {
                        if let Some(executions) = &mut executions {
                            for id in ids {
                                if !executions.contains(&id) {
                                    executions.push(id);
                                }
                            }
                        }
                    }
                    Heard::Output { id, end } => {
                        let seen = outputs.entry(id).or_insert(end);
                        *seen = end.max(*seen);
                    }
                }
            }
            let Some(engine) = engine.upgrade() else { return };
            if overflowed.swap(false, Ordering::AcqRel) {
                tracing::warn!("notifications came faster than they were read; re-reading everything");
                epoch = Some(u64::MAX);
                executions = None;
            }
            if let Some(epoch) = epoch.filter(|epoch| *epoch > engine.published().epoch) {
                if let Err(error) = engine.resync().await {
                    tracing::warn!(%error, epoch, "could not read a status change");
                }
            }
            if executions.as_ref().is_none_or(|ids| !ids.is_empty()) {
                if let Err(error) = engine.executions_changed(executions).await {
                    tracing::warn!(%error, "could not read executions' changes");
                }
            }
            // No lines, numbered from the end of what is stored: a stream
            // that has not seen them catches up from the store (on the
            // replica that stored them, its streams have them already).
            for (id, end) in outputs {
                engine.output().announce(Arc::new(OutputBatch { execution_id: id, first: end, events: Vec::new() }));
            }
        }
        drop(client);
        tracing::warn!("the listener lost its connection; reconnecting");
    }
}

//! The engine (SPEC §1, §8, §10, §12): every operation on the maintenance
//! state and the executions, written once for both stores. Each one reads
//! its facts under the decision lock, lets the pure rules ([`machine`],
//! [`schedule`]) decide, commits the resulting effects through the store's
//! [`Ledger`] in the same transaction, and then publishes.
//!
//! Invariants: only this module changes the maintenance state or admits an
//! execution, and it does both inside the store's decision lock, so a
//! create-execution racing an activate either lands before it (and is a
//! remaining execution) or is refused. Every change is committed before it
//! is published, and a status is published only with an epoch above the
//! one published, so the gate and the event streams never go back. Programs
//! are started and stopped outside any lock and never inside a request's
//! answer: a replica with a free slot claims the oldest pending execution.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shared::execution::ExecutionActionRequest;
use shared::{
    ErrorCode, Execution, ExecutionAction, ExecutionStatus, MaintenanceMode, MaintenanceState, MaintenanceStatus,
    NewExecution, NewWindow, Timestamp, Window,
};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, watch, Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

pub mod machine;
pub mod schedule;

use crate::model::{MaintenanceRecord, OutputBatch};
use crate::output::OutputLog;
use crate::process::{self, ProcessEnd, ProcessIdentity};
use crate::runner::{ReportError, Reported, Reports, Request, Runner, RunnerConfig};
use crate::store::ledger::{AnyLedger, Committed, Effects, Facts, Ledger, Lock, Scope, Stored};
use crate::store::StoreError;
use crate::worker::WorkerError;
use machine::Activation;
use schedule::WindowError;

/// How many status changes a slow event subscriber may fall behind before it
/// is resynchronised with the current status.
const EVENT_BUFFER: usize = 256;
/// How long start-up waits for a killed process group of a previous run to go.
const KILLED_GROUP_WAIT: Duration = Duration::from_secs(5);
/// How often the dispatcher looks for pending executions it was not told of.
const DISPATCH_RECHECK: Duration = Duration::from_secs(2);
/// How old an execution recorded as running on this replica, but unknown to
/// its runners, must be before the reaper fails it (well past a start's
/// bounded commit).
const ORPHAN_AGE: Duration = Duration::from_secs(30);

/// Why the engine refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Maintenance mode refuses new executions (503 with this code).
    #[error("{}", shared::error::MAINTENANCE_MESSAGE)]
    Refused(ErrorCode),
    /// No execution has this id.
    #[error("Requested execution `{0}` was not found")]
    ExecutionNotFound(Uuid),
    /// The execution is already in an end state.
    #[error("Execution `{id}` has already ended ({status}); there is nothing to cancel")]
    AlreadyEnded {
        /// The execution.
        id: Uuid,
        /// Its end state.
        status: ExecutionStatus,
    },
    /// A window request was refused (400, 404, 409).
    #[error(transparent)]
    Window(#[from] WindowError),
    /// The store failed; nothing was changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The decision needs the exclusive lock (taken on the next try).
    #[error("the decision needs the exclusive lock")]
    NeedsExclusive,
}

impl From<WorkerError> for EngineError {
    fn from(error: WorkerError) -> Self {
        Self::Store(StoreError::Task(error))
    }
}

/// A status as published: its place in the order of changes, and the status.
/// Readers that combine the snapshot with the change stream use `epoch` to
/// drop anything they have already passed, so nobody ever sees a change undone.
#[derive(Debug, Clone)]
pub struct Published {
    /// The number of the change: +1 per change, persisted, so it keeps growing
    /// across restarts (each start publishes its recovered status as a change).
    pub epoch: u64,
    /// The status object.
    pub status: Arc<MaintenanceStatus>,
}

/// The result of activate/deactivate: the new status, or `Unchanged` (HTTP 304).
#[derive(Debug)]
pub enum Transition {
    /// The state changed; this is the status after the change, with its epoch.
    Changed(Published),
    /// Already in (or on the way to) the requested state.
    Unchanged,
}

/// A window request.
pub(crate) enum WindowOp {
    /// `POST /maintenance/windows`.
    Schedule(NewWindow),
    /// `POST /maintenance/windows/{id}/extend`.
    Extend(Uuid, Timestamp),
    /// `DELETE /maintenance/windows/{id}`.
    Cancel(Uuid),
}

/// An execution whose program runs here.
struct Active {
    /// What its runner is asked to do.
    requests: watch::Sender<Request>,
    /// Its slot, given back when it ends.
    _slot: OwnedSemaphorePermit,
}

/// Owns the maintenance state as published, and the programs running here.
pub struct Engine {
    ledger: AnyLedger,
    /// The state alone, for the gate: one atomic load per request.
    state_now: AtomicU8,
    runner: Runner,
    snapshot: watch::Sender<Published>,
    changes: broadcast::Sender<Published>,
    execution_changes: broadcast::Sender<Arc<Execution>>,
    /// Serializes publishing (a status is published only if newer).
    publishing: Mutex<()>,
    /// Woken whenever what the scheduler waits for may have changed.
    schedule_changed: Notify,
    /// When the published state last changed (milliseconds since 1970).
    state_since: AtomicI64,
    /// The executions whose programs run here.
    active: Mutex<HashMap<Uuid, Active>>,
    /// Free slots (`--max-running`).
    slots: Arc<Semaphore>,
    max_running: usize,
    /// Woken when executions may wait for a slot, or a slot freed.
    dispatch: Arc<Notify>,
    /// Whether this replica may start programs (its lease is held, it is not stopping).
    may_run: AtomicBool,
    /// Whether the lease is held (PostgreSQL; always on SQLite).
    lease_held: AtomicBool,
}

impl Engine {
    /// Opens the engine on `ledger`: kills what a previous run of this
    /// replica left running, fails those executions (nothing runs across a
    /// restart), completes `activating` if nothing remains, and publishes
    /// the status as a new epoch. Must be called inside a tokio runtime.
    pub async fn open(ledger: AnyLedger, runner: RunnerConfig, max_running: usize) -> Result<Arc<Self>, StoreError> {
        let leftovers = ledger.leftovers().await?;
        let mut killed = HashMap::new();
        for (id, identity) in leftovers {
            let said = match identity {
                Some((pgid, start_time)) => {
                    let identity = ProcessIdentity { pgid, start_time };
                    tokio::task::spawn_blocking(move || kill_identified(id, identity)).await.unwrap_or_default()
                }
                None => String::new(),
            };
            killed.insert(id, said);
        }
        let ids: Vec<Uuid> = killed.keys().copied().collect();
        let replica = ledger.replica().to_owned();
        let recovered = ledger
            .decide(
                Lock::Update,
                Scope { executions: ids.clone(), ..Scope::default() },
                Box::new(move |facts: &Facts| -> Result<_, StoreError> {
                    let mut effects = Effects { bump: true, ..Effects::default() };
                    for stored in &facts.executions {
                        let mut execution = stored.execution.clone();
                        if !execution.status.is_remaining() || stored.owner.as_deref() != Some(replica.as_str()) {
                            continue;
                        }
                        tracing::warn!(id = %execution.id, status = %execution.status, "marking an interrupted execution failed");
                        execution.error = format!(
                            "The manager stopped while this execution was {}; it was marked failed when the manager \
                             (replica `{replica}`) started again at {}.{}",
                            execution.status,
                            facts.now,
                            killed.get(&execution.id).map(String::as_str).unwrap_or_default()
                        );
                        execution.status = ExecutionStatus::Failed;
                        execution.ended_at = Some(facts.now);
                        effects.update.push(execution);
                    }
                    let left = facts.remaining_count.saturating_sub(effects.update.len());
                    effects.change = machine::complete(&facts.record, left, facts.now);
                    Ok(Some(((), effects)))
                }),
            )
            .await??;
        // Groups found and killed (or gone) are forgotten; the failed ones were by their update.
        ledger.forget_processes(ids).await?;
        let (epoch, status) = match recovered.and_then(|((), committed)| committed.status) {
            Some(current) => current,
            None => ledger.current().await?,
        };
        let status = Arc::new(status);
        let state_now = AtomicU8::new(state_code(&status));
        let (snapshot, _) = watch::channel(Published { epoch, status });
        let (changes, _) = broadcast::channel(EVENT_BUFFER);
        let (execution_changes, _) = broadcast::channel(EVENT_BUFFER);
        let max_running = max_running.max(1);
        Ok(Arc::new_cyclic(|engine: &std::sync::Weak<Engine>| {
            let reports: std::sync::Weak<dyn Reports> = engine.clone();
            Self {
                ledger,
                state_now,
                runner: Runner::new(reports, Handle::current(), runner),
                snapshot,
                changes,
                execution_changes,
                publishing: Mutex::new(()),
                schedule_changed: Notify::new(),
                state_since: AtomicI64::new(Timestamp::now().as_datetime().timestamp_millis()),
                active: Mutex::new(HashMap::new()),
                slots: Arc::new(Semaphore::new(max_running)),
                max_running,
                dispatch: Arc::new(Notify::new()),
                may_run: AtomicBool::new(true),
                lease_held: AtomicBool::new(true),
            }
        }))
    }

    /// Starts the dispatcher: whenever this replica has a free slot, it
    /// claims the oldest pending executions and runs them. Ends with the engine.
    pub fn spawn_dispatcher(self: &Arc<Self>) {
        let engine = Arc::downgrade(self);
        let wake = Arc::clone(&self.dispatch);
        tokio::spawn(async move {
            loop {
                let notified = wake.notified();
                tokio::pin!(notified);
                // Registered before looking: a wake during the claim is not lost.
                notified.as_mut().enable();
                let Some(this) = engine.upgrade() else { return };
                if let Err(error) = this.dispatch_now().await {
                    tracing::warn!(%error, "could not claim pending executions; trying again shortly");
                }
                drop(this);
                tokio::select! {
                    () = notified => {}
                    () = tokio::time::sleep(DISPATCH_RECHECK) => {}
                }
            }
        });
    }

    /// Claims pending executions for the free slots and runs them, until
    /// none is left or no slot is free.
    async fn dispatch_now(self: &Arc<Self>) -> Result<(), StoreError> {
        loop {
            if !self.may_start() {
                return Ok(());
            }
            let free = self.slots.available_permits();
            if free == 0 {
                return Ok(());
            }
            let Ok(permits) = Arc::clone(&self.slots).try_acquire_many_owned(u32::try_from(free).unwrap_or(u32::MAX))
            else {
                return Ok(());
            };
            let committed = self.ledger.claim(free).await?;
            let claimed = committed.executions.clone();
            let mut permits = permits;
            for execution in &claimed {
                if let Some(slot) = permits.split(1) {
                    self.run(execution, slot);
                }
            }
            drop(permits);
            self.after_commit(committed);
            if claimed.len() < free {
                return Ok(());
            }
        }
    }

    /// Whether this replica may start programs now.
    fn may_start(&self) -> bool {
        self.may_run.load(Ordering::Acquire) && self.lease_held.load(Ordering::Acquire)
    }

    /// Seconds since the published state last changed (or this process started).
    pub fn seconds_in_state(&self) -> i64 {
        let since = self.state_since.load(Ordering::Relaxed);
        (Timestamp::now().as_datetime().timestamp_millis() - since).max(0) / 1000
    }

    /// The current state, from memory (one atomic load, no I/O): the gate's read.
    pub fn state(&self) -> MaintenanceState {
        self.gate_state().0
    }

    /// The current state and mode, from memory (one atomic load, no I/O).
    pub fn gate_state(&self) -> (MaintenanceState, MaintenanceMode) {
        let code = self.state_now.load(Ordering::Acquire);
        let state = match code & 3 {
            0 => MaintenanceState::Deactivated,
            1 => MaintenanceState::Activating,
            _ => MaintenanceState::Activated,
        };
        (state, if code & 4 == 0 { MaintenanceMode::Full } else { MaintenanceMode::ReadOnly })
    }

    /// The current status object, from the in-memory snapshot.
    pub fn status(&self) -> Arc<MaintenanceStatus> {
        Arc::clone(&self.snapshot.borrow().status)
    }

    /// The current status with its epoch.
    pub fn published(&self) -> Published {
        self.snapshot.borrow().clone()
    }

    /// Every later status change, in order. Subscribe before reading
    /// [`Engine::published`] so that no change falls between the two, and
    /// drop what has an epoch not above the last one used.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.changes.subscribe()
    }

    /// Every later change of any execution (created, started, cancelling, ended), in order.
    pub fn subscribe_executions(&self) -> broadcast::Receiver<Arc<Execution>> {
        self.execution_changes.subscribe()
    }

    /// Waits until what the scheduler waits for may have changed.
    pub async fn schedule_changed(&self) {
        self.schedule_changed.notified().await;
    }

    /// This replica's name (`local` on SQLite).
    pub fn replica_name(&self) -> &str {
        self.ledger.replica()
    }

    /// This replica's name on PostgreSQL; `None` on SQLite.
    pub fn replica(&self) -> Option<&str> {
        match &self.ledger {
            AnyLedger::Postgres(ledger) => Some(ledger.replica()),
            AnyLedger::Sqlite(_) => None,
        }
    }

    /// The pool, for the cluster's own connections (PostgreSQL).
    pub(crate) fn pg(&self) -> Option<&crate::store::postgres::Pg> {
        match &self.ledger {
            AnyLedger::Postgres(ledger) => Some(ledger.pg()),
            AnyLedger::Sqlite(_) => None,
        }
    }

    /// Renews this replica's lease on `client` and says which change it
    /// has applied and where it serves (PostgreSQL).
    pub(crate) async fn heartbeat(
        &self,
        client: &tokio_postgres::Client,
        lease: Duration,
        address: &str,
    ) -> Result<(), StoreError> {
        match &self.ledger {
            AnyLedger::Postgres(ledger) => ledger.heartbeat(client, self.published().epoch, lease, address).await,
            AnyLedger::Sqlite(_) => Ok(()),
        }
    }

    /// Gives this replica's lease up (a graceful stop, PostgreSQL).
    pub async fn release_replica_id(&self) -> Result<(), StoreError> {
        match &self.ledger {
            AnyLedger::Postgres(ledger) => ledger.release_replica_id().await,
            AnyLedger::Sqlite(_) => Ok(()),
        }
    }

    /// The replicas whose lease has not run out (PostgreSQL; none on SQLite).
    pub async fn pg_replicas(&self) -> Result<Vec<shared::api::Replica>, StoreError> {
        match &self.ledger {
            AnyLedger::Postgres(ledger) => ledger.replicas().await,
            AnyLedger::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// How many programs run here, and at most.
    pub fn running(&self) -> usize {
        self.active.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// `--max-running`.
    pub fn max_running(&self) -> usize {
        self.max_running
    }

    /// Where executions' output goes (stored, then announced live).
    pub fn output(&self) -> &OutputLog {
        self.runner.output()
    }

    /// One decision: `decide` on the facts of `scope` under `lock`, its
    /// effects committed, the result published.
    async fn decide<T: Send + 'static>(
        &self,
        lock: Lock,
        scope: Scope,
        decide: impl FnOnce(&Facts) -> Result<Option<(T, Effects)>, EngineError> + Send + 'static,
    ) -> Result<Option<(T, Option<Published>, Vec<Execution>)>, EngineError> {
        let decided = self.ledger.decide(lock, scope, Box::new(decide)).await??;
        Ok(decided.map(|(value, committed)| {
            let executions = committed.executions.clone();
            let published = self.after_commit(committed);
            (value, published, executions)
        }))
    }

    /// `deactivated → activating`, and on to `activated` at once when no
    /// execution remains. `Unchanged` if already activating or activated.
    pub async fn activate(&self, activation: Activation) -> Result<Transition, EngineError> {
        let decided = self
            .decide(Lock::Update, Scope { count: true, ..Scope::default() }, move |facts| {
                Ok(machine::activate(&facts.record, facts.remaining_count, &activation, facts.now)
                    .map(|change| ((), Effects { change: Some(change), bump: true, ..Effects::default() })))
            })
            .await?;
        Ok(transition(decided))
    }

    /// Back to `deactivated` from `activating` or `activated`; the queued
    /// executions wait for a slot, in creation order. `Unchanged` if already off.
    pub async fn deactivate(&self, by: String) -> Result<Transition, EngineError> {
        let grace = self.runner.cancel_grace();
        let decided = self
            .decide(Lock::Update, Scope { windows: true, remaining: true, ..Scope::default() }, move |facts| {
                Ok(schedule::deactivate(&schedule_facts(facts, grace), &by).map(|change| ((), effects(facts, change))))
            })
            .await?;
        self.schedule_changed.notify_one();
        Ok(transition(decided))
    }

    /// Schedules window `new` by `by` (SPEC §10).
    pub async fn schedule_window(&self, new: NewWindow, by: String) -> Result<Window, EngineError> {
        self.window_request(WindowOp::Schedule(new), by).await
    }

    /// Moves the end of window `id`.
    pub async fn extend_window(&self, id: Uuid, ends_at: Timestamp, by: String) -> Result<Window, EngineError> {
        self.window_request(WindowOp::Extend(id, ends_at), by).await
    }

    /// Cancels window `id` (scheduled), or ends it (active: deactivates).
    pub async fn cancel_window(&self, id: Uuid, by: String) -> Result<Window, EngineError> {
        self.window_request(WindowOp::Cancel(id), by).await
    }

    /// A window request, decided and written in one transaction under the
    /// exclusive lock; every replica re-plans on the epoch it raises.
    async fn window_request(&self, op: WindowOp, by: String) -> Result<Window, EngineError> {
        let grace = self.runner.cancel_grace();
        let target = match &op {
            WindowOp::Schedule(_) => None,
            WindowOp::Extend(id, _) | WindowOp::Cancel(id) => Some(*id),
        };
        let scope = Scope { windows: true, remaining: true, window: target, ..Scope::default() };
        let decided = self
            .decide(Lock::Update, scope, move |facts| {
                let schedule_facts = schedule_facts(facts, grace);
                let (window, change) = match (op, &facts.window) {
                    (WindowOp::Schedule(new), _) => schedule::schedule(&schedule_facts, new, &by, Uuid::new_v4())?,
                    (WindowOp::Extend(_, ends_at), Some(window)) => {
                        schedule::extend(&schedule_facts, window, ends_at, &by)?
                    }
                    (WindowOp::Cancel(_), Some(window)) => schedule::cancel(&schedule_facts, window, &by)?,
                    (WindowOp::Extend(id, _) | WindowOp::Cancel(id), None) => {
                        return Err(WindowError::NotFound(id).into())
                    }
                };
                Ok(Some((window, effects(facts, change))))
            })
            .await?;
        self.schedule_changed.notify_one();
        decided.map(|(window, ..)| window).ok_or_else(|| StoreError::Busy.into())
    }

    /// Does what is due now (windows' notice, start, end, missed; the drain
    /// deadline's steps) and says when something is next due, by this
    /// process's clock. Every replica may call it at once: the decision lock
    /// and the state written make each step happen once. Unless `due` (woken
    /// at a time something was due), it first finds out without the lock.
    pub async fn tick(&self, due: bool) -> Result<Option<Timestamp>, EngineError> {
        let grace = self.runner.cancel_grace();
        let scope = Scope { windows: true, remaining: true, ..Scope::default() };
        if !due {
            let facts = self.ledger.peek(scope.clone()).await?;
            if schedule::tick(&schedule_facts(&facts, grace)).is_none() {
                return Ok(next_due_here(&facts.record, &facts.windows, facts.now));
            }
        }
        let decided = self
            .decide(Lock::Update, scope, move |facts| {
                let Some(change) = schedule::tick(&schedule_facts(facts, grace)) else {
                    return Ok(Some((next_due_here(&facts.record, &facts.windows, facts.now), Effects::default())));
                };
                let live: Vec<Window> = facts
                    .windows
                    .iter()
                    .map(|window| change.windows.iter().rev().find(|w| w.id == window.id).unwrap_or(window).clone())
                    .filter(|window| !window.state.is_over())
                    .collect();
                let next = next_due_here(&change.record, &live, facts.now);
                Ok(Some((next, effects(facts, change))))
            })
            .await?;
        Ok(decided.and_then(|(next, ..)| next))
    }

    /// Admits a new execution (`started` here when this replica has a free
    /// slot and none waits before it, else `pending` for the first replica
    /// with a slot), queues it (`queued`) or refuses it, according to the
    /// state at this instant. `bypass` is an admin's `X-BYPASS-MAINTENANCE`.
    pub async fn create_execution(
        self: &Arc<Self>,
        new: NewExecution,
        created_by: String,
        bypass: bool,
    ) -> Result<Execution, EngineError> {
        let slot = if self.may_start() { Arc::clone(&self.slots).try_acquire_owned().ok() } else { None };
        let has_slot = slot.is_some();
        let replica = self.ledger.replica().to_owned();
        // A bypass may start an execution during maintenance, which changes
        // the status object: it must be a change like any other.
        let lock = if bypass { Lock::Update } else { Lock::Share };
        let decided = self
            .decide(lock, Scope::default(), move |facts| {
                let status = machine::admit(facts.record.status, facts.record.mode, bypass, new.queue)
                    .map_err(EngineError::Refused)?;
                let status = if status == ExecutionStatus::Started && (!has_slot || facts.waiting) {
                    ExecutionStatus::Pending
                } else {
                    status
                };
                let mut execution = machine::new_execution(new, created_by, status, facts.now);
                if status == ExecutionStatus::Started {
                    execution.replica = replica;
                }
                let bump = facts.record.status != MaintenanceState::Deactivated && status.is_remaining();
                Ok(Some((execution.clone(), Effects { insert: Some(execution), bump, ..Effects::default() })))
            })
            .await?;
        let Some((execution, ..)) = decided else { return Err(StoreError::Busy.into()) };
        match (execution.status, slot) {
            (ExecutionStatus::Started, Some(slot)) => self.run(&execution, slot),
            (ExecutionStatus::Pending, _) => self.dispatch.notify_one(),
            _ => {}
        }
        Ok(execution)
    }

    /// Cancels or force-cancels an execution that has not ended.
    pub async fn act(&self, id: Uuid, request: ExecutionActionRequest) -> Result<Execution, EngineError> {
        self.cancel(id, request.action).await
    }

    /// Cancels or force-cancels execution `id`: a waiting one ends
    /// `cancelled` at once; a running one's program is asked to stop, on
    /// whichever replica runs it.
    pub async fn cancel(&self, id: Uuid, action: ExecutionAction) -> Result<Execution, EngineError> {
        let decided = self
            .decide(Lock::Update, Scope { executions: vec![id], ..Scope::default() }, move |facts| {
                let Some(Stored { execution, .. }) = facts.executions.first() else {
                    return Err(EngineError::ExecutionNotFound(id));
                };
                let mut execution = execution.clone();
                let was_remaining = execution.status.is_remaining();
                match machine::cancel(execution.status, action) {
                    Err(status) => return Err(EngineError::AlreadyEnded { id, status }),
                    Ok(machine::Cancel::Queued) => {
                        execution.status = ExecutionStatus::Cancelled;
                        execution.ended_at = Some(facts.now);
                    }
                    Ok(machine::Cancel::Running { status }) if status == execution.status => {
                        // Nothing to write; the runner is asked again below.
                        return Ok(Some((execution, Effects::default())));
                    }
                    Ok(machine::Cancel::Running { status }) => execution.status = status,
                }
                let mut effects = Effects {
                    bump: facts.record.status != MaintenanceState::Deactivated && was_remaining,
                    update: vec![execution.clone()],
                    ..Effects::default()
                };
                if !execution.status.is_remaining() && was_remaining {
                    // A pending one cancelled may have been the last one remaining.
                    effects.change =
                        machine::complete(&facts.record, facts.remaining_count.saturating_sub(1), facts.now);
                }
                Ok(Some((execution, effects)))
            })
            .await?;
        let Some((execution, ..)) = decided else { return Err(EngineError::ExecutionNotFound(id)) };
        self.pass_on_cancel(&execution);
        Ok(execution)
    }

    /// Records that a program ended, with the last lines of its output, in
    /// one transaction; the moment the last remaining execution ends,
    /// `activating` becomes `activated`. Only if the execution is still this
    /// replica's and running (a survivor may have failed it meanwhile).
    pub async fn finish(&self, id: Uuid, end: ProcessEnd, tail: Arc<OutputBatch>) -> Result<(), EngineError> {
        let mut lock = Lock::Share;
        loop {
            let replica = self.ledger.replica().to_owned();
            let end = end.clone();
            let scope = Scope { executions: vec![id], output: Some(Arc::clone(&tail)), ..Scope::default() };
            let decided = self
                .decide(lock, scope, move |facts| {
                    let Some(Stored { execution, owner }) = facts.executions.first() else {
                        return Ok(Some((None, Effects::default())));
                    };
                    if owner.as_deref() != Some(replica.as_str()) || !execution.status.is_remaining() {
                        // Already ended: by an earlier try whose reply was lost, or by a survivor.
                        return Ok(Some((Some(execution.clone()), Effects::default())));
                    }
                    let on = facts.record.status != MaintenanceState::Deactivated;
                    if on && lock == Lock::Share {
                        // The status object changes: its lock is the exclusive one.
                        return Err(EngineError::NeedsExclusive);
                    }
                    let mut execution = execution.clone();
                    execution.status = end.status;
                    execution.error = end.error;
                    execution.ended_at = Some(facts.now);
                    let change = machine::complete(&facts.record, facts.remaining_count.saturating_sub(1), facts.now);
                    Ok(Some((None, Effects { update: vec![execution], change, bump: on, ..Effects::default() })))
                })
                .await;
            match decided {
                Err(EngineError::NeedsExclusive) if lock == Lock::Share => lock = Lock::Update,
                Err(error) => return Err(error),
                Ok(decided) => {
                    if let Some((Some(ended), ..)) = decided {
                        // Tell this replica's streams how it ended.
                        let _ = self.execution_changes.send(Arc::new(ended));
                    }
                    break;
                }
            }
        }
        self.active.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        self.dispatch.notify_one();
        Ok(())
    }

    /// The manager is stopping: starts nothing more, ends every running
    /// execution as a cancel would, recording it `failed` with `reason`, and
    /// waits at most `within` for their ends to be recorded. Returns how
    /// many had not ended by then.
    pub async fn stop_executions(&self, reason: String, within: Duration) -> usize {
        self.may_run.store(false, Ordering::Release);
        let running = self.active_requests();
        for requests in &running {
            requests.send_replace(Request::Shutdown(reason.clone()));
        }
        if !running.is_empty() {
            tracing::info!(running = running.len(), "stopping the running executions");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = self.running();
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the runners of the executions running here are asked.
    fn active_requests(&self) -> Vec<watch::Sender<Request>> {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|active| active.requests.clone())
            .collect()
    }

    /// Runs `execution`'s program here, in `slot`.
    fn run(&self, execution: &Execution, slot: OwnedSemaphorePermit) {
        let (requests, receiver) = watch::channel(Request::Run);
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(execution.id, Active { requests, _slot: slot });
        self.runner.start(execution, receiver);
    }

    /// Publishes `status` if `epoch` is above the published one; returns what
    /// is published now.
    pub(crate) fn publish_at(&self, epoch: u64, status: MaintenanceStatus) -> Published {
        let _order = self.publishing.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.published();
        if epoch <= current.epoch {
            return current;
        }
        self.state_now.store(state_code(&status), Ordering::Release);
        if current.status.status != status.status {
            self.state_since.store(Timestamp::now().as_datetime().timestamp_millis(), Ordering::Relaxed);
        }
        let published = Published { epoch, status: Arc::new(status) };
        self.snapshot.send_replace(published.clone());
        // No subscriber is not an error.
        let _ = self.changes.send(published.clone());
        // A window written (here or elsewhere) changes the epoch too: plan again.
        self.schedule_changed.notify_one();
        published
    }

    /// Publishes what a transaction committed: its status, its executions.
    fn after_commit(&self, committed: Committed) -> Option<Published> {
        // The answer is the status of this very change, even if a later one
        // was published meanwhile.
        let published = committed.status.map(|(epoch, status)| {
            self.publish_at(epoch, status.clone());
            Published { epoch, status: Arc::new(status) }
        });
        for execution in committed.executions {
            // A cancel (a drain deadline's too) reaches the runner here at once.
            self.pass_on_cancel(&execution);
            let _ = self.execution_changes.send(Arc::new(execution));
        }
        if committed.pending {
            self.dispatch.notify_one();
        }
        published
    }

    /// Asks the local runner of `execution` (if any) to stop as its status says.
    fn pass_on_cancel(&self, execution: &Execution) {
        let request = match execution.status {
            // The drain deadline cancelled it: its force-cancel follows at the grace.
            ExecutionStatus::Cancelling if self.draining() => Request::Terminate,
            ExecutionStatus::Cancelling => Request::Cancel,
            ExecutionStatus::ForceCancelling => Request::ForceCancel,
            _ => return,
        };
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(active) = active.get(&execution.id) {
            active.requests.send_if_modified(|current| pass_on(current, request));
        }
    }

    /// Whether the published status is `activating` past its drain deadline
    /// (cancels are then the deadline's, whose force-cancel it sends itself).
    fn draining(&self) -> bool {
        let status = self.status();
        status.status == MaintenanceState::Activating
            // A second of leeway: the deadline may be the database's time.
            && status.drain_deadline_at.is_some_and(|at| at <= machine::after(Timestamp::now(), 1))
    }

    /// Stops the local runner of execution `id`, if there is one.
    fn stop_runner(&self, id: Uuid, why: &str) {
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(active) = active.get(&id) {
            active.requests.send_replace(Request::Shutdown(why.to_owned()));
        }
    }

    /// Re-reads the status and publishes it if it is newer (a notification,
    /// a reconnect, the periodic check).
    pub(crate) async fn resync(&self) -> Result<Published, StoreError> {
        let (epoch, status) = self.ledger.current().await?;
        Ok(self.publish_at(epoch, status))
    }

    /// Completes `activating` when nothing remains (after executions were
    /// failed or cancelled by something else than their ends).
    pub(crate) async fn settle(&self) -> Result<(), EngineError> {
        let facts = self.ledger.peek(Scope::default()).await?;
        if facts.record.status != MaintenanceState::Activating || facts.remaining_count > 0 {
            return Ok(());
        }
        self.decide(Lock::Update, Scope::default(), |facts| {
            Ok(machine::complete(&facts.record, facts.remaining_count, facts.now)
                .map(|change| ((), Effects { change: Some(change), bump: true, ..Effects::default() })))
        })
        .await?;
        Ok(())
    }

    /// Other replicas changed executions `ids` (`None`: too many to list):
    /// tell this replica's subscribers, pass a cancel on to the runners
    /// here, stop those that another replica ended, and claim pending ones.
    pub(crate) async fn executions_changed(&self, ids: Option<Vec<Uuid>>) -> Result<(), StoreError> {
        let AnyLedger::Postgres(ledger) = &self.ledger else { return Ok(()) };
        let ids = match ids {
            Some(ids) => ids,
            None => {
                // Too many to list: some may wait for a slot.
                self.dispatch.notify_one();
                self.active.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect()
            }
        };
        for Stored { execution, owner } in ledger.stored_many(ids).await? {
            self.reconcile(&execution, owner.as_deref());
            if execution.status == ExecutionStatus::Pending {
                self.dispatch.notify_one();
            }
            let _ = self.execution_changes.send(Arc::new(execution));
        }
        Ok(())
    }

    /// Brings this replica's runners in line with the database (after a
    /// listener reconnect, and on every beat, in case a notification was
    /// missed): a cancel stored for one is passed on; one that another
    /// replica ended, or that is no longer this replica's, is stopped.
    pub(crate) async fn reconcile_runners(&self) -> Result<(), StoreError> {
        let AnyLedger::Postgres(ledger) = &self.ledger else { return Ok(()) };
        let ids: Vec<Uuid> = self.active.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        if ids.is_empty() {
            return Ok(());
        }
        for Stored { execution, owner } in ledger.stored_many(ids).await? {
            self.reconcile(&execution, owner.as_deref());
        }
        Ok(())
    }

    fn reconcile(&self, execution: &Execution, owner: Option<&str>) {
        if execution.status.is_end() || owner.is_some_and(|owner| owner != self.ledger.replica()) {
            self.stop_runner(
                execution.id,
                "Another replica marked this execution failed; its workflow here was stopped.",
            );
        } else {
            self.pass_on_cancel(execution);
        }
    }

    /// Fails the executions of replicas whose lease ran out, and this
    /// replica's orphans, then completes `activating` if nothing is left
    /// (PostgreSQL). Returns how many executions it failed.
    pub(crate) async fn reap(&self) -> Result<usize, EngineError> {
        let AnyLedger::Postgres(ledger) = &self.ledger else { return Ok(0) };
        let running_here: Vec<Uuid> =
            self.active.lock().unwrap_or_else(PoisonError::into_inner).keys().copied().collect();
        let committed = ledger.reap(running_here, ORPHAN_AGE).await?;
        let failed = committed.executions.len();
        self.after_commit(committed);
        self.settle().await?;
        Ok(failed)
    }

    /// Records whether the lease is held; returns whether that changed.
    pub(crate) fn set_lease_held(&self, held: bool) -> bool {
        let changed = self.lease_held.swap(held, Ordering::AcqRel) != held;
        if changed && held {
            self.dispatch.notify_one();
        }
        changed
    }

    /// This replica lost its lease (no heartbeat for longer than it): a
    /// survivor may fail its executions at any moment, so it stops them
    /// itself (fencing) rather than run on unseen.
    pub(crate) fn fence(&self) -> usize {
        let active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        for active in active.values() {
            active.requests.send_replace(Request::Fence(
                "This replica lost its connection to the database for longer than its lease allows: its workflow \
                 was killed so that it does not run unseen, and the execution was marked failed."
                    .into(),
            ));
        }
        active.len()
    }
}

impl Reports for Engine {
    fn finished(&self, id: Uuid, end: ProcessEnd, tail: Arc<OutputBatch>) -> Reported<'_> {
        Box::pin(async move { self.finish(id, end, tail).await.map_err(report_error) })
    }

    fn started(&self, id: Uuid, identity: ProcessIdentity) -> Reported<'_> {
        Box::pin(async move {
            self.ledger
                .record_process(id, identity.pgid, identity.start_time)
                .await
                .map_err(EngineError::from)
                .map_err(report_error)
        })
    }
}

/// How the runner should take a failed report.
fn report_error(error: EngineError) -> ReportError {
    match error {
        EngineError::Store(StoreError::Task(WorkerError::Overloaded(..)) | StoreError::Busy) => ReportError::Busy,
        EngineError::Store(StoreError::Unstorable(detail)) => ReportError::Unstorable(detail),
        other => ReportError::Failed(other.to_string()),
    }
}

/// The effects of a change of SPEC §10: the change, the queued executions
/// released if it turns maintenance off, a new epoch; and `activated` at
/// once when the drain deadline ended the last remaining executions (the
/// pending ones it cancels end at once).
fn effects(facts: &Facts, mut change: machine::Change) -> Effects {
    let release_queued = change.deactivates(&facts.record);
    if change.record.status == MaintenanceState::Activating {
        let ended = facts
            .remaining
            .iter()
            .filter(|(id, status)| {
                *status == ExecutionStatus::Pending && (change.cancel.contains(id) || change.force_cancel.contains(id))
            })
            .count();
        let now = change.transitions.last().map_or(facts.now, |row| row.at);
        if ended > 0 {
            if let Some(completed) = machine::complete(&change.record, facts.remaining_count.saturating_sub(ended), now)
            {
                change.then(completed);
            }
        }
    }
    Effects { change: Some(change), release_queued, bump: true, ..Effects::default() }
}

/// What the rules of SPEC §10 read.
fn schedule_facts(facts: &Facts, cancel_grace: Duration) -> schedule::Facts<'_> {
    schedule::Facts {
        record: &facts.record,
        windows: &facts.windows,
        remaining: &facts.remaining,
        now: facts.now,
        cancel_grace,
    }
}

/// The answer of activate / deactivate.
fn transition(decided: Option<((), Option<Published>, Vec<Execution>)>) -> Transition {
    match decided.and_then(|((), published, _)| published) {
        Some(published) => Transition::Changed(published),
        None => Transition::Unchanged,
    }
}

/// When the scheduler is next due, as a time of this process's clock: the
/// store decided at `store_now`; the wait is the same on either clock.
fn next_due_here(record: &MaintenanceRecord, windows: &[Window], store_now: Timestamp) -> Option<Timestamp> {
    let due = schedule::next_due(record, windows, store_now)?;
    let wait = due.as_datetime().signed_duration_since(store_now.as_datetime());
    Some(Timestamp::from_datetime(Timestamp::now().as_datetime() + wait))
}

/// Kills process group `identity` of execution `id` if it is still the one
/// recorded, waiting a little for it to go; says what was done, for the error.
fn kill_identified(id: Uuid, identity: ProcessIdentity) -> String {
    let pgid = identity.pgid;
    match process::kill_group_if_same(identity) {
        Ok(true) => {
            let deadline = std::time::Instant::now() + KILLED_GROUP_WAIT;
            while !process::group_gone(pgid) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            tracing::warn!(%id, pgid, "killed the processes an interrupted execution left running");
            format!(" Its processes (group {pgid}) were still running and were killed.")
        }
        Ok(false) => String::new(),
        Err(error) => {
            tracing::error!(%id, pgid, %error, "could not check the process group of an interrupted execution");
            format!(" Its process group {pgid} could not be checked: {error}.")
        }
    }
}

/// The gate's atomic: the state in the low two bits, 4 for read-only.
fn state_code(status: &MaintenanceStatus) -> u8 {
    let state = match status.status {
        MaintenanceState::Deactivated => 0,
        MaintenanceState::Activating => 1,
        MaintenanceState::Activated => 2,
    };
    if status.mode == Some(MaintenanceMode::ReadOnly) {
        state | 4
    } else {
        state
    }
}

/// Replaces the request a runner holds with `request`, unless it holds a
/// harder one (a force-cancel or a stop is never softened); whether it changed.
fn pass_on(current: &mut Request, request: Request) -> bool {
    let softer = matches!(current, Request::ForceCancel | Request::Shutdown(_) | Request::Fence(_));
    let change = !softer && *current != request;
    if change {
        *current = request;
    }
    change
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::ledger::sqlite::SqliteLedger;
    use crate::store::{executions as execution_store, open_reader, open_writer};
    use crate::test_support::execution;

    /// `manager users …` may commit while the server starts: recovery reads,
    /// then writes, so a deferred transaction fails ("database is locked" or
    /// SQLITE_BUSY_SNAPSHOT) when that commit lands between the two.
    #[tokio::test]
    async fn recovery_waits_for_a_concurrent_writer_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(dir.path()).unwrap();
        let interrupted = execution(ExecutionStatus::Started, serde_json::json!({}));
        execution_store::insert(&conn, &interrupted).unwrap();
        let waiting = execution(ExecutionStatus::Pending, serde_json::json!({}));
        execution_store::insert(&conn, &waiting).unwrap();

        let other = open_reader(dir.path()).unwrap();
        other
            .execute_batch(
                "BEGIN IMMEDIATE; INSERT INTO users (username, role, password_hash, created_at) \
                 VALUES ('ops', 'admin', 'x', '2026-11-30T00:00:00.000Z');",
            )
            .unwrap();
        let committer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        let ledger = AnyLedger::Sqlite(SqliteLedger::new(conn, 16).unwrap());
        let engine = Engine::open(ledger, crate::test_support::runner_config(dir.path()), 4)
            .await
            .expect("recovery waits for the other writer");
        committer.join().unwrap();

        let conn = open_reader(dir.path()).unwrap();
        let failed = execution_store::get(&conn, interrupted.id).unwrap().unwrap();
        assert_eq!(failed.status, ExecutionStatus::Failed);
        assert!(failed.error.contains("manager stopped"), "{}", failed.error);
        let still = execution_store::get(&conn, waiting.id).unwrap().unwrap();
        assert_eq!(still.status, ExecutionStatus::Pending, "a pending execution never started: it waits on");
        assert_eq!(engine.published().epoch, 1);
    }
}

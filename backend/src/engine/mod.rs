//! The maintenance-mode state machine (SPEC §1) and execution admission.
//! The rules themselves are [`machine`]'s pure functions; the engine reads
//! the facts they need, writes their answer and publishes the result.
//!
//! Invariant: only this module changes the maintenance state or admits an
//! execution, and it does both under one lock (`Engine::core`), in the same
//! critical section as the SQLite commit. A create-execution racing an
//! activate therefore either lands before it (and is a remaining execution)
//! or is refused. Every change is committed before it is published, and
//! published (snapshot + event) before the lock is released, so the gate's
//! snapshot and the event stream see changes in commit order.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, TransactionBehavior};
use shared::execution::ExecutionActionRequest;
use shared::{
    ErrorCode, Execution, ExecutionAction, ExecutionStatus, MaintenanceMode, MaintenanceState, MaintenanceStatus,
    NewExecution, NewWindow, RemainingExecution, Timestamp, Window,
};
use tokio::runtime::Handle;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

pub mod machine;
pub mod postgres;
pub mod schedule;

use crate::output::{OutputBatch, OutputLog};
use crate::process::{self, ProcessEnd, ProcessIdentity};
use crate::runner::{Request, Runner, RunnerConfig};
use crate::store::maintenance::{self as maintenance_store, MaintenanceRecord};
use crate::store::{events as event_store, executions as execution_store, windows as window_store, StoreError};
use crate::worker::{Worker, WorkerError};
use machine::{Activation, Change};
use schedule::{Facts, WindowError};

/// How many status changes a slow event subscriber may fall behind before it
/// is resynchronised with the current status.
const EVENT_BUFFER: usize = 256;

/// Statuses of executions that were running when the process stopped.
const INTERRUPTED: [ExecutionStatus; 4] = ExecutionStatus::REMAINING;

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
    /// The change panicked on the engine's thread (logged). What it had
    /// committed stays committed, and whatever memory then held was published.
    #[error(transparent)]
    Task(#[from] WorkerError),
}

impl From<rusqlite::Error> for EngineError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Store(error.into())
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

/// Owns the maintenance state and the running executions.
pub struct Engine {
    ledger: Ledger,
    /// The state alone, for the gate: one atomic load per request.
    state_now: AtomicU8,
    runner: Runner,
    snapshot: watch::Sender<Published>,
    changes: broadcast::Sender<Published>,
    execution_changes: broadcast::Sender<Arc<Execution>>,
    /// Woken whenever what the scheduler waits for may have changed (a
    /// status published, a window written).
    schedule_changed: tokio::sync::Notify,
    /// When the published state last changed (milliseconds since 1970, this
    /// process's clock): the start of this process, or the change.
    state_since: std::sync::atomic::AtomicI64,
}

/// Where decisions are made and recorded.
enum Ledger {
    /// One process: the engine's lock serializes decisions, SQLite records them.
    Sqlite {
        core: Box<Mutex<Core>>,
        /// The thread every change runs on (SQLite is synchronous).
        worker: Worker,
    },
    /// Several replicas: the maintenance row's lock serializes decisions.
    Postgres(postgres::Ledger),
}

/// What the lock protects: the writing connection and the in-memory state
/// that mirrors what it has committed.
struct Core {
    conn: Connection,
    record: MaintenanceRecord,
    /// Admitted executions not yet ended, in creation order.
    active: Vec<Active>,
    /// Executions changed by the current operation (committed), to publish.
    outbox: Vec<Execution>,
    /// The windows scheduled or active, by start.
    windows: Vec<Window>,
    /// A window was written: publish a new epoch even if the status is the same
    /// (lists of windows reload on it).
    windows_changed: bool,
}

struct Active {
    execution: Execution,
    /// What the execution's runner is asked to do.
    requests: watch::Sender<Request>,
}

/// How long start-up waits for a killed process group of a previous run to go.
const KILLED_GROUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Engine {
    /// Loads the state from `conn`, recovers from an unclean stop (running
    /// executions become `failed`; `activating` with nothing left completes),
    /// and returns the engine. Must be called inside a tokio runtime.
    /// At most `capacity` operations wait for the engine's thread.
    pub fn recover(conn: Connection, capacity: usize, runner: RunnerConfig) -> Result<Arc<Self>, StoreError> {
        let mut core = Core {
            record: MaintenanceRecord::default(),
            conn,
            active: Vec::new(),
            outbox: Vec::new(),
            windows: Vec::new(),
            windows_changed: false,
        };
        let epoch = core.recover()?;
        let status = core.status();
        let worker = Worker::spawn("engine", capacity).map_err(StoreError::Thread)?;
        Ok(Self::new(Ledger::Sqlite { core: Box::new(Mutex::new(core)), worker }, epoch, status, runner))
    }

    /// Replica `replica` on the PostgreSQL database of `pg`: migrates it if
    /// needed, fails what this replica ran before it stopped, and returns the
    /// engine. Executions of a replica that stopped renewing its lease for
    /// `lease` are failed by the others (`crate::cluster`).
    pub async fn recover_postgres(
        pg: crate::store::postgres::Pg,
        replica: String,
        lease: std::time::Duration,
        runner: RunnerConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let (epoch, status) = postgres::recover(&pg, &replica).await?;
        let ledger = postgres::Ledger {
            pg,
            replica,
            lease,
            active: Mutex::new(std::collections::HashMap::new()),
            publishing: Mutex::new(()),
            lease_held: std::sync::atomic::AtomicBool::new(true),
        };
        Ok(Self::new(Ledger::Postgres(ledger), epoch, status, runner))
    }

    fn new(ledger: Ledger, epoch: u64, status: MaintenanceStatus, runner: RunnerConfig) -> Arc<Self> {
        let status = Arc::new(status);
        let state_now = AtomicU8::new(state_code(&status));
        let (snapshot, _) = watch::channel(Published { epoch, status });
        let (changes, _) = broadcast::channel(EVENT_BUFFER);
        let (execution_changes, _) = broadcast::channel(EVENT_BUFFER);
        Arc::new_cyclic(|engine| Self {
            ledger,
            state_now,
            runner: Runner::new(engine.clone(), Handle::current(), runner),
            snapshot,
            changes,
            execution_changes,
            schedule_changed: tokio::sync::Notify::new(),
            state_since: std::sync::atomic::AtomicI64::new(Timestamp::now().as_datetime().timestamp_millis()),
        })
    }

    /// Seconds since the published state last changed (or this process started).
    pub fn seconds_in_state(&self) -> i64 {
        let since = self.state_since.load(Ordering::Relaxed);
        (Timestamp::now().as_datetime().timestamp_millis() - since).max(0) / 1000
    }

    /// Notes when the state changes, for [`Engine::seconds_in_state`].
    fn note_state(&self, before: MaintenanceState, after: MaintenanceState) {
        if before != after {
            self.state_since.store(Timestamp::now().as_datetime().timestamp_millis(), Ordering::Relaxed);
        }
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

    /// The current status with its sequence number.
    pub fn published(&self) -> Published {
        self.snapshot.borrow().clone()
    }

    /// Every later status change, in order. Subscribe before reading
    /// [`Engine::published`] so that no change falls between the two, and
    /// drop what has a `seq` not above the last one used.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.changes.subscribe()
    }

    /// Every later change of any execution (created, started, cancelling, ended), in order.
    pub fn subscribe_executions(&self) -> broadcast::Receiver<Arc<Execution>> {
        self.execution_changes.subscribe()
    }

    /// `deactivated → activating`, and on to `activated` at once when no
    /// execution remains. `Unchanged` if already activating or activated.
    pub async fn activate(self: &Arc<Self>, activation: Activation) -> Result<Transition, EngineError> {
        if let Ledger::Postgres(_) = self.ledger {
            return self.pg_activate(activation).await;
        }
        self.change(move |core, _| core.activate(&activation)).await
    }

    /// Schedules window `new` by `by` (SPEC §10).
    pub async fn schedule_window(self: &Arc<Self>, new: NewWindow, by: String) -> Result<Window, EngineError> {
        self.window_request(WindowOp::Schedule(new), by).await
    }

    /// Moves the end of window `id`.
    pub async fn extend_window(
        self: &Arc<Self>,
        id: Uuid,
        ends_at: Timestamp,
        by: String,
    ) -> Result<Window, EngineError> {
        self.window_request(WindowOp::Extend(id, ends_at), by).await
    }

    /// Cancels window `id` (scheduled), or ends it (active: deactivates).
    pub async fn cancel_window(self: &Arc<Self>, id: Uuid, by: String) -> Result<Window, EngineError> {
        self.window_request(WindowOp::Cancel(id), by).await
    }

    async fn window_request(self: &Arc<Self>, op: WindowOp, by: String) -> Result<Window, EngineError> {
        let window = if let Ledger::Postgres(_) = self.ledger {
            self.pg_window(op, by).await?
        } else {
            self.with_core(move |core, runner| core.window_op(op, &by, runner)).await??
        };
        self.schedule_changed.notify_one();
        Ok(window)
    }

    /// Does what is due now (windows' notice, start, end, missed; the drain
    /// deadline's steps) and says when something is next due. On PostgreSQL
    /// every replica may call it at once: the decision lock and the state
    /// written make each step happen once. `due`: the caller woke at a time
    /// something was due (on PostgreSQL the look without the lock is skipped).
    pub async fn tick(self: &Arc<Self>, due: bool) -> Result<Option<Timestamp>, EngineError> {
        if let Ledger::Postgres(_) = self.ledger {
            return self.pg_tick(due).await;
        }
        self.with_core(move |core, runner| core.tick(runner)).await?
    }

    /// Waits until what the scheduler waits for may have changed.
    pub async fn schedule_changed(&self) {
        self.schedule_changed.notified().await;
    }

    /// Back to `deactivated` from `activating` or `activated`; starts the
    /// queued executions in creation order. `Unchanged` if already off.
    pub async fn deactivate(self: &Arc<Self>, by: String) -> Result<Transition, EngineError> {
        if let Ledger::Postgres(_) = self.ledger {
            return self.pg_deactivate(by).await;
        }
        self.change(move |core, runner| core.deactivate(by, runner)).await
    }

    /// Admits (`started`), queues (`queued`) or refuses a new execution,
    /// according to the state at this instant. `bypass` is an admin's
    /// `X-BYPASS-MAINTENANCE`.
    pub async fn create_execution(
        self: &Arc<Self>,
        new: NewExecution,
        created_by: String,
        bypass: bool,
    ) -> Result<Execution, EngineError> {
        if let Ledger::Postgres(_) = self.ledger {
            return self.pg_create(new, created_by, bypass).await;
        }
        self.with_core(move |core, runner| core.create(new, created_by, bypass, runner)).await?
    }

    /// The cancel grace (between a cancel's SIGTERM and SIGKILL).
    fn cancel_grace(&self) -> std::time::Duration {
        self.runner.cancel_grace()
    }

    /// Cancels or force-cancels an execution that has not ended.
    pub async fn act(self: &Arc<Self>, id: Uuid, request: ExecutionActionRequest) -> Result<Execution, EngineError> {
        if let Ledger::Postgres(_) = self.ledger {
            return self.pg_act(id, request.action).await;
        }
        self.with_core(move |core, _| core.act(id, request.action)).await?
    }

    /// Records that a running execution ended, with the last lines of its
    /// output, in one transaction; the moment the last remaining one ends,
    /// `activating` becomes `activated`.
    pub async fn finish(
        self: &Arc<Self>,
        id: Uuid,
        end: ProcessEnd,
        tail: Arc<OutputBatch>,
    ) -> Result<(), EngineError> {
        if let Ledger::Postgres(_) = self.ledger {
            return self.pg_finish(id, end, tail).await;
        }
        self.with_core(move |core, _| core.finish(id, end, &tail)).await?
    }

    /// Records the process group running execution `id`, for start-up after a crash.
    pub async fn record_process(self: &Arc<Self>, id: Uuid, identity: ProcessIdentity) -> Result<(), EngineError> {
        if let Ledger::Postgres(_) = self.ledger {
            return self.pg_record_process(id, identity).await;
        }
        self.with_core(move |core, _| execution_store::set_process(&core.conn, id, identity.pgid, identity.start_time))
            .await??;
        Ok(())
    }

    /// Where executions' output goes (stored, then announced live).
    pub fn output(&self) -> &OutputLog {
        self.runner.output()
    }

    /// The manager is stopping: ends every running execution as a cancel
    /// would, recording it `failed` with `reason`, and waits at most `within`
    /// for their ends to be recorded. Returns how many had not ended by then.
    pub async fn stop_executions(self: &Arc<Self>, reason: String, within: std::time::Duration) -> usize {
        let running = self.active_requests();
        for requests in &running {
            requests.send_replace(Request::Shutdown(reason.clone()));
        }
        let running = running.len();
        if running > 0 {
            tracing::info!(running, "stopping the running executions");
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = self.active_requests().len();
            if left == 0 || tokio::time::Instant::now() >= deadline {
                return left;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// How many executions run in this process.
    pub fn running(&self) -> usize {
        self.active_requests().len()
    }

    /// What the runners of the executions running here are asked.
    fn active_requests(&self) -> Vec<watch::Sender<Request>> {
        match &self.ledger {
            Ledger::Sqlite { core, .. } => {
                let core = core.lock().unwrap_or_else(PoisonError::into_inner);
                core.active.iter().map(|active| active.requests.clone()).collect()
            }
            Ledger::Postgres(_) => self.pg_active(),
        }
    }

    async fn change(
        self: &Arc<Self>,
        op: impl FnOnce(&mut Core, &Runner) -> Result<bool, StoreError> + Send + 'static,
    ) -> Result<Transition, EngineError> {
        // The status of this very change, taken under the lock: a change made
        // right after it must not show up in this answer.
        let (changed, published) = self.locked(op).await?;
        Ok(if changed? { Transition::Changed(published) } else { Transition::Unchanged })
    }

    async fn with_core<R: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&mut Core, &Runner) -> R + Send + 'static,
    ) -> Result<R, EngineError> {
        Ok(self.locked(op).await?.0)
    }

    /// Runs `op` under the lock on the engine's thread (SQLite is
    /// synchronous), then publishes the resulting status before releasing
    /// the lock.
    async fn locked<R: Send + 'static>(
        self: &Arc<Self>,
        op: impl FnOnce(&mut Core, &Runner) -> R + Send + 'static,
    ) -> Result<(R, Published), EngineError> {
        let Ledger::Sqlite { worker, .. } = &self.ledger else {
            unreachable!("the SQLite path of a PostgreSQL engine")
        };
        let engine = Arc::clone(self);
        Ok(worker
            .run(move || {
                let Ledger::Sqlite { core, .. } = &engine.ledger else { unreachable!("checked above") };
                let mut core = core.lock().unwrap_or_else(PoisonError::into_inner);
                // Publish even if `op` panics, so the gate and the event
                // stream never lag behind what memory holds; then fail the call.
                let result = panic::catch_unwind(AssertUnwindSafe(|| op(&mut core, &engine.runner)));
                let published = engine.publish(&mut core);
                match result {
                    Ok(result) => (result, published),
                    Err(panic) => panic::resume_unwind(panic),
                }
            })
            .await?)
    }

    /// Publishes what `core` now holds (if the status changed, with the next
    /// sequence number) and returns the current status.
    fn publish(&self, core: &mut Core) -> Published {
        for execution in core.outbox.drain(..) {
            // No subscriber is not an error.
            let _ = self.execution_changes.send(Arc::new(execution));
        }
        let status = core.status();
        self.state_now.store(state_code(&status), Ordering::Release);
        // Only this thread, under the core lock, replaces the snapshot, so
        // reading it, storing the epoch and replacing it cannot interleave
        // with another change; readers never wait on the store's I/O.
        let current = self.published();
        let windows_changed = std::mem::take(&mut core.windows_changed);
        if *current.status == status && !windows_changed {
            return current;
        }
        self.schedule_changed.notify_one();
        let epoch = current.epoch + 1;
        // Stored before anyone sees it, so a restart (which starts one past the
        // stored epoch) never reuses an epoch a client saw. Failing to store it
        // must not hold the change back: the gate must apply it.
        if let Err(error) = maintenance_store::save_epoch(&core.conn, epoch) {
            tracing::error!(%error, epoch, "could not store the epoch of a status change");
        }
        self.note_state(current.status.status, status.status);
        let published = Published { epoch, status: Arc::new(status) };
        self.snapshot.send_replace(published.clone());
        // No subscriber is not an error.
        let _ = self.changes.send(published.clone());
        published
    }
}

impl Core {
    fn status(&self) -> MaintenanceStatus {
        let remaining: Vec<RemainingExecution> =
            self.active.iter().map(|active| RemainingExecution::of(&active.execution)).collect();
        let upcoming = self.record.upcoming_id.and_then(|id| self.windows.iter().find(|w| w.id == id).cloned());
        self.record.status(&remaining, upcoming)
    }

    /// What the rules of SPEC §10 read, as memory holds it.
    fn remaining(&self) -> Vec<(Uuid, ExecutionStatus)> {
        self.active.iter().map(|active| (active.execution.id, active.execution.status)).collect()
    }

    /// Writes `change` in one transaction, then brings memory in line: the
    /// row, the windows, the executions the drain stops (and their programs
    /// asked to stop), the queued ones started if it deactivates.
    fn apply(&mut self, change: Change, runner: &Runner) -> Result<(), StoreError> {
        let now = change.transitions.last().map_or_else(Timestamp::now, |row| row.at);
        let deactivates = change.deactivates(&self.record);
        let tx = self.conn.transaction()?;
        maintenance_store::save_change(&tx, &change)?;
        let mut stopped = Vec::new();
        for (ids, status) in
            [(&change.cancel, ExecutionStatus::Cancelling), (&change.force_cancel, ExecutionStatus::ForceCancelling)]
        {
            for id in ids {
                if let Some(active) = self.active.iter().find(|active| active.execution.id == *id) {
                    let mut execution = active.execution.clone();
                    execution.status = status;
                    execution_store::update(&tx, &execution)?;
                    stopped.push(execution);
                }
            }
        }
        let started = if deactivates { start_queued(&tx, now)? } else { Vec::new() };
        tx.commit()?;
        self.record = change.record;
        for window in change.windows {
            self.windows.retain(|live| live.id != window.id);
            if !window.state.is_over() {
                self.windows.push(window);
            }
        }
        self.windows.sort_by_key(|window| window.starts_at);
        self.windows_changed = true;
        for execution in stopped {
            if let Some(active) = self.active.iter_mut().find(|active| active.execution.id == execution.id) {
                let request = if execution.status == ExecutionStatus::ForceCancelling {
                    Request::ForceCancel
                } else {
                    Request::Terminate
                };
                active.requests.send_if_modified(|current| pass_on(current, request));
                active.execution = execution.clone();
            }
            self.outbox.push(execution);
        }
        for execution in started {
            self.outbox.push(execution.clone());
            self.run(execution, runner);
        }
        Ok(())
    }

    fn facts<'a>(&'a self, remaining: &'a [(Uuid, ExecutionStatus)], grace: std::time::Duration) -> Facts<'a> {
        Facts { record: &self.record, windows: &self.windows, remaining, now: Timestamp::now(), cancel_grace: grace }
    }

    fn window_op(&mut self, op: WindowOp, by: &str, runner: &Runner) -> Result<Window, EngineError> {
        let remaining = self.remaining();
        let facts = self.facts(&remaining, runner.cancel_grace());
        let (window, change) = match op {
            WindowOp::Schedule(new) => schedule::schedule(&facts, new, by, Uuid::new_v4())?,
            WindowOp::Extend(id, ends_at) => {
                let window = self.window(id)?;
                schedule::extend(&facts, &window, ends_at, by)?
            }
            WindowOp::Cancel(id) => {
                let window = self.window(id)?;
                schedule::cancel(&facts, &window, by)?
            }
        };
        self.apply(change, runner)?;
        Ok(window)
    }

    /// Window `id`: from memory while it is live, else from the store.
    fn window(&self, id: Uuid) -> Result<Window, EngineError> {
        if let Some(window) = self.windows.iter().find(|window| window.id == id) {
            return Ok(window.clone());
        }
        window_store::get(&self.conn, id)?.ok_or(EngineError::Window(WindowError::NotFound(id)))
    }

    fn tick(&mut self, runner: &Runner) -> Result<Option<Timestamp>, EngineError> {
        let remaining = self.remaining();
        let facts = self.facts(&remaining, runner.cancel_grace());
        let now = facts.now;
        if let Some(change) = schedule::tick(&facts) {
            self.apply(change, runner)?;
        }
        Ok(schedule::next_due(&self.record, &self.windows, now))
    }

    /// Start-up recovery: nothing runs yet, so every execution stored as
    /// running was interrupted by the previous process's death. Returns the
    /// epoch of the recovered status: one past the last one stored.
    fn recover(&mut self) -> Result<u64, StoreError> {
        let now = Timestamp::now();
        // Immediate: this transaction reads, then writes; a deferred one would
        // fail with SQLITE_BUSY_SNAPSHOT if `manager users …` committed between.
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let interrupted = execution_store::with_status(&tx, &INTERRUPTED)?;
        for mut execution in interrupted {
            tracing::warn!(id = %execution.id, status = %execution.status, "marking an interrupted execution failed");
            let killed = kill_leftovers(&tx, execution.id)?;
            execution.error = format!(
                "The manager stopped while this execution was {}; it was marked failed when the manager started again at {now}.{killed}",
                execution.status
            );
            execution.status = ExecutionStatus::Failed;
            execution.ended_at = Some(now);
            execution_store::update(&tx, &execution)?;
        }
        let mut record = maintenance_store::load(&tx)?;
        if let Some(change) = machine::complete(&record, 0, now) {
            maintenance_store::save_change(&tx, &change)?;
            record = change.record;
        }
        self.windows = window_store::live(&tx)?;
        let epoch = maintenance_store::load_epoch(&tx)? + 1;
        maintenance_store::save_epoch(&tx, epoch)?;
        tx.commit()?;
        self.record = record;
        Ok(epoch)
    }

    fn activate(&mut self, activation: &Activation) -> Result<bool, StoreError> {
        let Some(change) = machine::activate(&self.record, self.active.len(), activation, Timestamp::now()) else {
            return Ok(false);
        };
        let tx = self.conn.transaction()?;
        maintenance_store::save_change(&tx, &change)?;
        tx.commit()?;
        self.record = change.record;
        Ok(true)
    }

    fn deactivate(&mut self, by: String, runner: &Runner) -> Result<bool, StoreError> {
        let remaining = self.remaining();
        let Some(change) = schedule::deactivate(&self.facts(&remaining, runner.cancel_grace()), &by) else {
            return Ok(false);
        };
        self.apply(change, runner)?;
        Ok(true)
    }

    fn create(
        &mut self,
        new: NewExecution,
        created_by: String,
        bypass: bool,
        runner: &Runner,
    ) -> Result<Execution, EngineError> {
        let status =
            machine::admit(self.record.status, self.record.mode, bypass, new.queue).map_err(EngineError::Refused)?;
        let execution = machine::new_execution(new, created_by, status, Timestamp::now());
        execution_store::insert(&self.conn, &execution)?;
        self.outbox.push(execution.clone());
        if status == ExecutionStatus::Started {
            self.run(execution.clone(), runner);
        }
        Ok(execution)
    }

    fn run(&mut self, execution: Execution, runner: &Runner) {
        let (requests, receiver) = watch::channel(Request::Run);
        runner.start(&execution, receiver);
        self.active.push(Active { execution, requests });
    }

    fn act(&mut self, id: Uuid, action: ExecutionAction) -> Result<Execution, EngineError> {
        let request = match action {
            ExecutionAction::Cancel => Request::Cancel,
            ExecutionAction::ForceCancel => Request::ForceCancel,
        };
        if let Some(active) = self.active.iter_mut().find(|active| active.execution.id == id) {
            let status = match machine::cancel(active.execution.status, action) {
                Ok(machine::Cancel::Running { status }) => status,
                // Running executions are neither queued nor ended.
                Ok(machine::Cancel::Queued) | Err(_) => active.execution.status,
            };
            if active.execution.status != status {
                let mut execution = active.execution.clone();
                execution.status = status;
                execution_store::update(&self.conn, &execution)?;
                self.outbox.push(execution.clone());
                active.execution = execution;
            }
            active.requests.send_if_modified(|current| pass_on(current, request));
            return Ok(active.execution.clone());
        }
        let Some(mut execution) = execution_store::get(&self.conn, id)? else {
            return Err(EngineError::ExecutionNotFound(id));
        };
        match machine::cancel(execution.status, action) {
            Err(status) => Err(EngineError::AlreadyEnded { id, status }),
            // Stored unended but not running here: queued, it never started.
            Ok(machine::Cancel::Queued | machine::Cancel::Running { .. }) => {
                execution.status = ExecutionStatus::Cancelled;
                execution.ended_at = Some(Timestamp::now());
                execution_store::update(&self.conn, &execution)?;
                self.outbox.push(execution.clone());
                Ok(execution)
            }
        }
    }

    fn finish(&mut self, id: Uuid, end: ProcessEnd, tail: &OutputBatch) -> Result<(), EngineError> {
        let Some(position) = self.active.iter().position(|active| active.execution.id == id) else {
            return Ok(());
        };
        let now = Timestamp::now();
        let mut execution = self.active[position].execution.clone();
        execution.status = end.status;
        execution.error = end.error;
        execution.ended_at = Some(now);
        let completed = machine::complete(&self.record, self.active.len() - 1, now);
        let tx = self.conn.transaction()?;
        event_store::append(&tx, id, tail.first, &tail.events)?;
        execution_store::update(&tx, &execution)?;
        if let Some(change) = &completed {
            maintenance_store::save_change(&tx, change)?;
        }
        tx.commit()?;
        self.active.remove(position);
        if let Some(change) = completed {
            self.record = change.record;
        }
        self.outbox.push(execution);
        Ok(())
    }
}

/// Kills what is left of execution `id`'s processes from a previous run
/// (after a crash the parent-death signal took only the direct child), if
/// that group is still the one recorded; says what was done, for the error.
fn kill_leftovers(conn: &Connection, id: Uuid) -> Result<String, StoreError> {
    let Some((pgid, start_time)) = execution_store::process_of(conn, id)? else {
        return Ok(String::new());
    };
    Ok(kill_identified(id, ProcessIdentity { pgid, start_time }))
}

/// Kills process group `identity` of execution `id` if it is still the one
/// recorded, waiting a little for it to go; says what was done, for the error.
fn kill_identified(id: Uuid, identity: ProcessIdentity) -> String {
    let pgid = identity.pgid;
    match process::kill_group_if_same(identity) {
        Ok(true) => {
            let deadline = std::time::Instant::now() + KILLED_GROUP_WAIT;
            while !process::group_gone(pgid) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
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

/// A window request, as both ledgers carry it out.
pub(crate) enum WindowOp {
    /// `POST /maintenance/windows`.
    Schedule(NewWindow),
    /// `POST /maintenance/windows/{id}/extend`.
    Extend(Uuid, Timestamp),
    /// `DELETE /maintenance/windows/{id}`.
    Cancel(Uuid),
}

/// Replaces the request a runner holds with `request`, unless it holds a
/// harder one (a force-cancel or a stop is never softened); whether it changed.
fn pass_on(current: &mut Request, request: Request) -> bool {
    let softer = matches!(current, Request::ForceCancel | Request::Shutdown(_));
    let change = !softer && *current != request;
    if change {
        *current = request;
    }
    change
}

/// Starts every queued execution at `now`, in creation order (maintenance mode
/// was just turned off, in the caller's transaction).
fn start_queued(conn: &Connection, now: Timestamp) -> Result<Vec<Execution>, StoreError> {
    let mut started = execution_store::with_status(conn, &[ExecutionStatus::Queued])?;
    for execution in &mut started {
        execution.status = ExecutionStatus::Started;
        execution.started_at = Some(now);
        execution_store::update(conn, execution)?;
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{open_reader, open_writer};
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
        let engine = Engine::recover(conn, 16, crate::test_support::runner_config(dir.path()))
            .expect("recovery waits for the other writer");
        committer.join().unwrap();

        let conn = open_reader(dir.path()).unwrap();
        let failed = execution_store::get(&conn, interrupted.id).unwrap().unwrap();
        assert_eq!(failed.status, ExecutionStatus::Failed);
        assert!(failed.error.contains("manager stopped"), "{}", failed.error);
        assert_eq!(engine.published().epoch, 1);
    }
}

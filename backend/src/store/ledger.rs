//! What the engine needs of a store to decide and record (SPEC §8): one
//! interface, written by each store, so that every operation of the engine
//! is written once. A decision reads its [`Facts`] under the decision lock,
//! the engine's rules turn them into [`Effects`], and the store commits
//! those in the same transaction, with one statement per kind of update,
//! raising the epoch and telling other replicas once per transaction.

use std::sync::Arc;

use shared::{Execution, ExecutionStatus, MaintenanceStatus, Timestamp, Window};
use uuid::Uuid;

pub mod postgres;
pub mod sqlite;

use super::StoreError;
use crate::model::{Change, MaintenanceRecord, OutputBatch};

/// Which decision lock a transaction takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Admissions and claims: side by side with each other, never with a change.
    Share,
    /// Changes of the status object.
    Update,
}

/// What a decision reads besides the maintenance row, the time and the counts.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Count the remaining executions even while maintenance is off (an
    /// activate needs it; while on they are always counted).
    pub count: bool,
    /// The live windows (scheduled, active).
    pub windows: bool,
    /// The remaining executions' ids and statuses, in admission order.
    pub remaining: bool,
    /// This window, whatever its state.
    pub window: Option<Uuid>,
    /// These executions, with the replicas that run them (locked on PostgreSQL).
    pub executions: Vec<Uuid>,
    /// Output lines written first, whatever is decided (an execution's last batch).
    pub output: Option<Arc<OutputBatch>>,
}

/// An execution as stored, with the replica that runs it (if it runs).
#[derive(Debug, Clone)]
pub struct Stored {
    /// The execution.
    pub execution: Execution,
    /// The replica it was claimed by (`None`: it never started, or its start was not recorded).
    pub owner: Option<String>,
}

/// What a decision is made on, read under its lock in its transaction.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The maintenance row.
    pub record: MaintenanceRecord,
    /// The time of the decision (SQLite: this process's clock; PostgreSQL: the database's).
    pub now: Timestamp,
    /// How many executions remain (pending or running anywhere): counted
    /// while maintenance is on, or when the scope asks; else 0 (an end or an
    /// admission while off must not count thousands of rows).
    pub remaining_count: usize,
    /// Whether any execution waits for a slot (`pending`).
    pub waiting: bool,
    /// The live windows, if the scope asked.
    pub windows: Vec<Window>,
    /// The remaining executions, if the scope asked.
    pub remaining: Vec<(Uuid, ExecutionStatus)>,
    /// The window the scope named, if it exists.
    pub window: Option<Window>,
    /// The executions the scope named that exist, in the scope's order.
    pub executions: Vec<Stored>,
}

/// What a decision writes. Every part is one statement (or a few), whatever
/// number of executions it touches.
#[derive(Debug, Clone, Default)]
pub struct Effects {
    /// The maintenance row, its history rows and windows; the executions its
    /// drain deadline stops (pending ones end `cancelled` at once, running
    /// ones become `cancelling` / `force_cancelling`).
    pub change: Option<Change>,
    /// A new execution (run by this replica if it is `started`).
    pub insert: Option<Execution>,
    /// New fields of executions (status, start, end, error); an end forgets the process group.
    pub update: Vec<Execution>,
    /// Every `queued` execution becomes `pending` (maintenance was turned off).
    pub release_queued: bool,
    /// The status object changed: a new epoch, published everywhere.
    pub bump: bool,
}

/// What a committed transaction leaves to do.
#[derive(Debug, Default)]
pub struct Committed {
    /// The status after it and its epoch, if it raised the epoch.
    pub status: Option<(u64, MaintenanceStatus)>,
    /// The executions it changed, as they are now.
    pub executions: Vec<Execution>,
    /// Whether executions became `pending` (replicas with a free slot claim them).
    pub pending: bool,
}

/// One decision: reads the facts, asks `decide`, writes what it answers.
/// `Ok(None)` from `decide` writes nothing (but the scope's output).
pub type Decide<T, E> = Box<dyn FnOnce(&Facts) -> Result<Option<(T, Effects)>, E> + Send>;

/// A store that decides and records (SQLite for one process, PostgreSQL for replicas).
pub(crate) trait Ledger {
    /// This replica's name (`local` on SQLite).
    fn replica(&self) -> &str;

    /// Takes `lock`, reads the facts of `scope`, asks `decide` and commits
    /// its effects, in one transaction. The outer error is the store's; the
    /// inner one is `decide`'s refusal (nothing written).
    async fn decide<T: Send + 'static, E: Send + 'static>(
        &self,
        lock: Lock,
        scope: Scope,
        decide: Decide<T, E>,
    ) -> Result<Result<Option<(T, Committed)>, E>, StoreError>;

    /// The facts of `scope` without taking the lock (to find out cheaply
    /// whether anything is due).
    async fn peek(&self, scope: Scope) -> Result<Facts, StoreError>;

    /// This replica claims at most `limit` of the oldest `pending`
    /// executions (each claimed by one replica only): they become `started`
    /// and this replica's.
    async fn claim(&self, limit: usize) -> Result<Committed, StoreError>;

    /// The status object and its epoch, as committed.
    async fn current(&self) -> Result<(u64, MaintenanceStatus), StoreError>;

    /// Records the process group running execution `id` (for a start after a crash).
    async fn record_process(&self, id: Uuid, pgid: i32, start_time: u64) -> Result<(), StoreError>;

    /// What this replica left running when it stopped (its executions still
    /// recorded as running, or ended by a survivor while their processes may
    /// live on), with their recorded process groups.
    async fn leftovers(&self) -> Result<Vec<(Uuid, Option<(i32, u64)>)>, StoreError>;

    /// Forgets the process groups of `ids` (killed, or found gone).
    async fn forget_processes(&self, ids: Vec<Uuid>) -> Result<(), StoreError>;
}

/// The store the manager runs on.
pub enum AnyLedger {
    /// One process, SQLite in the data dir.
    Sqlite(sqlite::SqliteLedger),
    /// A replica on PostgreSQL.
    Postgres(postgres::PgLedger),
}

impl Ledger for AnyLedger {
    fn replica(&self) -> &str {
        match self {
            Self::Sqlite(ledger) => ledger.replica(),
            Self::Postgres(ledger) => ledger.replica(),
        }
    }

    async fn decide<T: Send + 'static, E: Send + 'static>(
        &self,
        lock: Lock,
        scope: Scope,
        decide: Decide<T, E>,
    ) -> Result<Result<Option<(T, Committed)>, E>, StoreError> {
        match self {
            Self::Sqlite(ledger) => ledger.decide(lock, scope, decide).await,
            Self::Postgres(ledger) => ledger.decide(lock, scope, decide).await,
        }
    }

    async fn peek(&self, scope: Scope) -> Result<Facts, StoreError> {
        match self {
            Self::Sqlite(ledger) => ledger.peek(scope).await,
            Self::Postgres(ledger) => ledger.peek(scope).await,
        }
    }

    async fn claim(&self, limit: usize) -> Result<Committed, StoreError> {
        match self {
            Self::Sqlite(ledger) => ledger.claim(limit).await,
            Self::Postgres(ledger) => ledger.claim(limit).await,
        }
    }

    async fn current(&self) -> Result<(u64, MaintenanceStatus), StoreError> {
        match self {
            Self::Sqlite(ledger) => ledger.current().await,
            Self::Postgres(ledger) => ledger.current().await,
        }
    }

    async fn record_process(&self, id: Uuid, pgid: i32, start_time: u64) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(ledger) => ledger.record_process(id, pgid, start_time).await,
            Self::Postgres(ledger) => ledger.record_process(id, pgid, start_time).await,
        }
    }

    async fn leftovers(&self) -> Result<Vec<(Uuid, Option<(i32, u64)>)>, StoreError> {
        match self {
            Self::Sqlite(ledger) => ledger.leftovers().await,
            Self::Postgres(ledger) => ledger.leftovers().await,
        }
    }

    async fn forget_processes(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(ledger) => ledger.forget_processes(ids).await,
            Self::Postgres(ledger) => ledger.forget_processes(ids).await,
        }
    }
}

//! The ledger on SQLite (one process): the engine's thread and its one
//! writing connection serialize every decision, so both locks are the same;
//! each decision is one immediate transaction, fsync'd at commit.

use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use shared::{Execution, ExecutionStatus, MaintenanceStatus, RemainingExecution, Timestamp};
use uuid::Uuid;

use super::{Committed, Decide, Effects, Facts, Ledger, Lock, Scope, Stored};
use crate::store::executions::{self as execution_store, COLUMNS};
use crate::store::{events, maintenance, windows, StoreError};
use crate::worker::Worker;

/// The name of the one replica on SQLite.
pub const LOCAL: &str = "local";

/// Statuses of remaining executions.
const REMAINING: &str = "('pending', 'started', 'cancelling', 'force_cancelling')";

/// The writing connection on a thread of its own.
pub struct SqliteLedger {
    worker: Worker,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteLedger {
    /// The ledger on `conn` (the writer); at most `capacity` decisions wait for its thread.
    pub fn new(conn: Connection, capacity: usize) -> Result<Self, StoreError> {
        let worker = Worker::spawn("engine", capacity).map_err(StoreError::Thread)?;
        Ok(Self { worker, conn: Arc::new(Mutex::new(conn)) })
    }

    /// Runs `job` with the connection on the engine's thread.
    async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = Arc::clone(&self.conn);
        self.worker
            .run(move || {
                let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
                job(&mut conn)
            })
            .await?
    }
}

impl Ledger for SqliteLedger {
    async fn leftovers(&self) -> Result<Vec<(Uuid, Option<(i32, u64)>)>, StoreError> {
        // Called at start-up only: nothing runs yet, so whatever is recorded
        // as running was the previous process's.
        self.run(|conn| {
            let running = execution_store::with_status(
                conn,
                &[ExecutionStatus::Started, ExecutionStatus::Cancelling, ExecutionStatus::ForceCancelling],
            )?;
            running
                .into_iter()
                .map(|execution| Ok((execution.id, execution_store::process_of(conn, execution.id)?)))
                .collect()
        })
        .await
    }

    async fn forget_processes(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        self.run(move |conn| {
            let mut statement =
                conn.prepare_cached("UPDATE executions SET pgid = NULL, process_start = NULL WHERE id = ?1")?;
            for id in ids {
                statement.execute([id.to_string()])?;
            }
            Ok(())
        })
        .await
    }

    fn replica(&self) -> &str {
        LOCAL
    }

    async fn decide<T: Send + 'static, E: Send + 'static>(
        &self,
        _lock: Lock,
        scope: Scope,
        decide: Decide<T, E>,
    ) -> Result<Result<Option<(T, Committed)>, E>, StoreError> {
        self.run(move |conn| {
            // Immediate: it reads, then writes; a deferred one would fail with
            // SQLITE_BUSY_SNAPSHOT if `manager users …` committed between.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(batch) = &scope.output {
                events::append(&tx, batch.execution_id, batch.first, &batch.events)?;
            }
            let facts = facts(&tx, &scope)?;
            let (value, effects) = match decide(&facts) {
                Ok(Some(decided)) => decided,
                Ok(None) => {
                    tx.commit()?;
                    return Ok(Ok(None));
                }
                Err(refused) => return Ok(Err(refused)),
            };
            let committed = apply(&tx, &facts, &effects)?;
            tx.commit()?;
            Ok(Ok(Some((value, committed))))
        })
        .await
    }

    async fn peek(&self, scope: Scope) -> Result<Facts, StoreError> {
        self.run(move |conn| facts(conn, &scope)).await
    }

    async fn claim(&self, limit: usize) -> Result<Committed, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let record = maintenance::load(&tx)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let now = Timestamp::now().to_string();
            let claimed = returning(
                &tx,
                &format!(
                    "UPDATE executions SET status = 'started', started_at = ?1, replica = 'local' WHERE id IN \
                     (SELECT id FROM executions WHERE status = 'pending' ORDER BY seq LIMIT ?2) RETURNING {COLUMNS}"
                ),
                params![now, limit],
            )?;
            let status = if !claimed.is_empty() && record.status != shared::MaintenanceState::Deactivated {
                Some(bump(&tx)?)
            } else {
                None
            };
            tx.commit()?;
            Ok(Committed { status, executions: claimed, pending: false })
        })
        .await
    }

    async fn current(&self) -> Result<(u64, MaintenanceStatus), StoreError> {
        self.run(|conn| {
            let tx = conn.transaction()?;
            let current = (maintenance::load_epoch(&tx)?, status(&tx)?);
            tx.commit()?;
            Ok(current)
        })
        .await
    }

    async fn record_process(&self, id: Uuid, pgid: i32, start_time: u64) -> Result<(), StoreError> {
        self.run(move |conn| execution_store::set_process(conn, id, pgid, start_time)).await
    }
}

/// Reads the facts of `scope`.
fn facts(conn: &Connection, scope: &Scope) -> Result<Facts, StoreError> {
    let record = maintenance::load(conn)?;
    let remaining_count: i64 = if scope.count || record.status != shared::MaintenanceState::Deactivated {
        conn.prepare_cached(&format!("SELECT COUNT(*) FROM executions WHERE status IN {REMAINING}"))?
            .query_row([], |row| row.get(0))?
    } else {
        0
    };
    let waiting: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM executions WHERE status = 'pending')")?
        .query_row([], |row| row.get(0))?;
    let remaining = if scope.remaining {
        execution_store::with_status(conn, &ExecutionStatus::REMAINING)?
            .into_iter()
            .map(|execution| (execution.id, execution.status))
            .collect()
    } else {
        Vec::new()
    };
    let mut executions = Vec::new();
    for id in &scope.executions {
        if let Some(execution) = execution_store::get(conn, *id)? {
            // One process: whatever runs, runs here.
            let owner = matches!(
                execution.status,
                ExecutionStatus::Started | ExecutionStatus::Cancelling | ExecutionStatus::ForceCancelling
            )
            .then(|| LOCAL.to_owned());
            executions.push(Stored { execution, owner });
        }
    }
    Ok(Facts {
        record,
        now: Timestamp::now(),
        remaining_count: usize::try_from(remaining_count).unwrap_or_default(),
        waiting,
        windows: if scope.windows { windows::live(conn)? } else { Vec::new() },
        remaining,
        window: scope.window.map(|id| windows::get(conn, id)).transpose()?.flatten(),
        executions,
    })
}

/// Writes `effects` in the caller's transaction; the executions first, so
/// the history's reports see them as the change leaves them.
fn apply(tx: &Transaction<'_>, facts: &Facts, effects: &Effects) -> Result<Committed, StoreError> {
    let mut committed = Committed::default();
    if let Some(execution) = &effects.insert {
        execution_store::insert(tx, execution)?;
        committed.pending = execution.status == ExecutionStatus::Pending;
        committed.executions.push(execution.clone());
    }
    for execution in &effects.update {
        execution_store::update(tx, execution)?;
        if execution.status.is_end() {
            // Its processes are gone: nothing for a start after a crash to kill.
            tx.execute(
                "UPDATE executions SET pgid = NULL, process_start = NULL WHERE id = ?1",
                [execution.id.to_string()],
            )?;
        }
        committed.pending |= execution.status == ExecutionStatus::Pending;
        committed.executions.push(execution.clone());
    }
    if let Some(change) = &effects.change {
        let now = facts.now.to_string();
        for (ids, status) in [(&change.cancel, "cancelling"), (&change.force_cancel, "force_cancelling")] {
            if ids.is_empty() {
                continue;
            }
            let ids = serde_json::to_string(&ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
                .map_err(|error| StoreError::Corrupt { table: "executions", detail: error.to_string() })?;
            // A pending one never started: it ends at once.
            committed.executions.extend(returning(
                tx,
                &format!(
                    "UPDATE executions SET \
                       status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE ?1 END, \
                       ended_at = CASE WHEN status = 'pending' THEN ?2 ELSE ended_at END, \
                       error = CASE WHEN status = 'pending' THEN 'Cancelled by the drain deadline before it started.' \
                         ELSE error END \
                     WHERE id IN (SELECT value FROM json_each(?3)) AND status IN {REMAINING} RETURNING {COLUMNS}"
                ),
                params![status, now, ids],
            )?);
        }
        maintenance::save_change(tx, change)?;
    }
    if effects.release_queued {
        let released = returning(
            tx,
            &format!("UPDATE executions SET status = 'pending' WHERE status = 'queued' RETURNING {COLUMNS}"),
            [],
        )?;
        committed.pending |= !released.is_empty();
        committed.executions.extend(released);
    }
    if effects.bump {
        committed.status = Some(bump(tx)?);
    }
    Ok(committed)
}

/// Runs an `UPDATE … RETURNING {COLUMNS}`; the rows in creation order.
fn returning(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Execution>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, execution_store::raw)?;
    let mut executions = rows.map(|row| row?.parse()).collect::<Result<Vec<_>, _>>()?;
    executions.sort_by_key(|execution| execution.created_at);
    Ok(executions)
}

/// Raises the epoch and reads the status as the transaction leaves it.
fn bump(conn: &Connection) -> Result<(u64, MaintenanceStatus), StoreError> {
    conn.execute("UPDATE maintenance SET epoch = epoch + 1 WHERE id = 1", [])?;
    Ok((maintenance::load_epoch(conn)?, status(conn)?))
}

/// The status object as `conn` sees it.
fn status(conn: &Connection) -> Result<MaintenanceStatus, StoreError> {
    let record = maintenance::load(conn)?;
    let remaining: Vec<RemainingExecution> = if record.status == shared::MaintenanceState::Deactivated {
        Vec::new()
    } else {
        execution_store::with_status(conn, &ExecutionStatus::REMAINING)?.iter().map(RemainingExecution::of).collect()
    };
    let upcoming = record.upcoming_id.map(|id| windows::get(conn, id)).transpose()?.flatten();
    Ok(record.status(&remaining, upcoming))
}

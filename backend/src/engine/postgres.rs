//! The engine on PostgreSQL (SPEC §8): several replicas, one database.
//!
//! Every decision is made in a transaction that holds the decision lock (an
//! advisory transaction lock): shared when an execution is admitted
//! (admissions run side by side), exclusive for everything that changes the
//! status object (activate, deactivate, a cancel, an end, a reap). An activate therefore
//! waits for every admission in flight, and every admission after it sees
//! `activating`: none is admitted after the activate was acknowledged.
//!
//! A transaction that changes the status object raises the cluster-wide
//! epoch in the maintenance row and notifies `manager_state` with it; the
//! notification is delivered at commit. Each replica publishes a status only
//! if its epoch is above the one it last published, whether the change was
//! its own or came from the listener (`crate::cluster`), so its gate and
//! event streams never go back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use shared::{
    Execution, ExecutionAction, ExecutionStatus, MaintenanceState, MaintenanceStatus, NewExecution, RemainingExecution,
    Timestamp, Window,
};
use tokio::sync::watch;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::machine::{Activation, Change};
use super::schedule::{self, Facts, WindowError};
use super::{machine, Engine, EngineError, Published, Transition, WindowOp};
use crate::output::OutputBatch;
use crate::process::{ProcessEnd, ProcessIdentity};
use crate::runner::Request;
use crate::store::executions::COLUMNS;
use crate::store::maintenance::{MaintenanceRecord, RECORD_COLUMNS};
use crate::store::postgres::{self as store, Pg};
use crate::store::StoreError;
use crate::webhooks::outbox;

/// The statuses of executions that remain (are running somewhere), as SQL.
pub(crate) const REMAINING: &str = "('pending', 'started', 'cancelling', 'force_cancelling')";
/// How old an execution recorded as running on this replica, but unknown to
/// its runners, must be before the reaper fails it (well past a start's
/// bounded commit).
const ORPHAN_AGE: Duration = Duration::from_secs(30);
/// The notification channel of status changes; the payload is the epoch.
pub const STATE_CHANNEL: &str = "manager_state";
/// The notification channel of execution changes; the payload is
/// `<replica> <execution id>`.
pub const EXECUTIONS_CHANNEL: &str = "manager_executions";

/// What the engine keeps on PostgreSQL: the pool, who this replica is, and
/// the executions it runs.
pub(super) struct Ledger {
    pub(super) pg: Pg,
    pub(super) replica: String,
    pub(super) lease: Duration,
    /// The executions this replica runs: what each one's runner is asked to do.
    pub(super) active: Mutex<HashMap<Uuid, watch::Sender<Request>>>,
    /// Serializes publishing (a status is published only if newer).
    pub(super) publishing: Mutex<()>,
    /// Whether this replica's lease is fresh; when not, it admits nothing to run here.
    pub(super) lease_held: std::sync::atomic::AtomicBool,
}

/// Which lock a transaction takes on the maintenance decision. An advisory
/// transaction lock, not the row's own lock: the lock manager queues
/// requests in order, so an activate waiting for the admissions in flight
/// holds back the ones that come after it (a row lock would let share
/// lockers keep jumping ahead of it, and an activate under a stream of
/// creates could wait for ever).
#[derive(Clone, Copy)]
enum Lock {
    /// Admissions: side by side with each other, never with a change.
    Share,
    /// Changes of the status object.
    Update,
}

/// The advisory lock key of maintenance decisions.
const DECISION_LOCK: i64 = 0x6d61_696e_7465_6e62;

/// Takes `lock` (held to the end of the transaction), then reads the
/// maintenance row: a statement after the lock sees every change committed
/// before it was granted.
async fn lock_record(client: &impl GenericClient, lock: Lock) -> Result<MaintenanceRecord, StoreError> {
    let take = match lock {
        Lock::Share => "SELECT pg_advisory_xact_lock_shared($1)",
        Lock::Update => "SELECT pg_advisory_xact_lock($1)",
    };
    client.execute(take, &[&DECISION_LOCK]).await?;
    read_record(client).await
}

/// The maintenance row, as `client` sees it.
async fn read_record(client: &impl GenericClient) -> Result<MaintenanceRecord, StoreError> {
    let row = client.query_one(&format!("SELECT {RECORD_COLUMNS} FROM maintenance WHERE id = 1"), &[]).await?;
    store::record(&row)
}

/// What the rules of SPEC §10 read besides the row: the live windows and the
/// remaining executions.
async fn schedule_facts(
    client: &impl GenericClient,
) -> Result<(Vec<Window>, Vec<(Uuid, ExecutionStatus)>), StoreError> {
    let windows = store::live_windows(client).await?;
    let rows = client
        .query(&format!("SELECT id, status FROM executions WHERE status IN {REMAINING} ORDER BY seq"), &[])
        .await?;
    let remaining = rows
        .iter()
        .map(|row| {
            let id: &str = row.try_get(0)?;
            let status: &str = row.try_get(1)?;
            Ok((
                crate::store::parse_column("executions", "id", id, |s| Uuid::parse_str(s).ok())?,
                crate::store::parse_column("executions", "status", status, ExecutionStatus::parse)?,
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok((windows, remaining))
}

/// How many executions remain (run somewhere).
async fn remaining_count(client: &impl GenericClient) -> Result<usize, StoreError> {
    let count: i64 =
        client.query_one(&format!("SELECT COUNT(*) FROM executions WHERE status IN {REMAINING}"), &[]).await?.get(0);
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}

/// The remaining executions, as the status lists them.
async fn remaining_executions(client: &impl GenericClient) -> Result<Vec<RemainingExecution>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT id, status, deployment_id, workflow_id FROM executions WHERE status IN {REMAINING} ORDER BY seq"
            ),
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let id: &str = row.try_get(0)?;
            let status: &str = row.try_get(1)?;
            Ok(RemainingExecution {
                id: crate::store::parse_column("executions", "id", id, |s| Uuid::parse_str(s).ok())?,
                status: crate::store::parse_column("executions", "status", status, ExecutionStatus::parse)?,
                deployment_id: row.try_get(2)?,
                workflow_id: row.try_get(3)?,
            })
        })
        .collect()
}

/// The status object and its epoch, as `client` sees them (in a
/// transaction: with its own writes).
pub async fn read_status(client: &impl GenericClient) -> Result<(u64, MaintenanceStatus), StoreError> {
    let row = client.query_one(&format!("SELECT {RECORD_COLUMNS}, epoch FROM maintenance WHERE id = 1"), &[]).await?;
    let record = store::record(&row)?;
    let epoch: i64 = row.try_get("epoch")?;
    // The remaining executions are read only while maintenance is on (the status lists them only then).
    let remaining =
        if record.status == MaintenanceState::Deactivated { Vec::new() } else { remaining_executions(client).await? };
    let upcoming = match record.upcoming_id {
        Some(id) => store::get_window(client, id).await?,
        None => None,
    };
    let status = record.status(&remaining, upcoming);
    Ok((u64::try_from(epoch).unwrap_or_default(), status))
}

/// Raises the epoch, reads the status as this transaction leaves it and
/// notifies every replica (delivered at commit).
async fn bump(client: &impl GenericClient) -> Result<(u64, MaintenanceStatus), StoreError> {
    client.execute("UPDATE maintenance SET epoch = epoch + 1 WHERE id = 1", &[]).await?;
    let (epoch, status) = read_status(client).await?;
    client.execute("SELECT pg_notify($1, $2)", &[&STATE_CHANNEL, &epoch.to_string()]).await?;
    Ok((epoch, status))
}

/// Tells every replica that execution `id` changed (delivered at commit).
async fn notify_execution(client: &impl GenericClient, replica: &str, id: Uuid) -> Result<(), StoreError> {
    client.execute("SELECT pg_notify($1, $2)", &[&EXECUTIONS_CHANNEL, &format!("{replica} {id}")]).await?;
    Ok(())
}

/// Writes the maintenance row and history rows of `change`.
async fn save_change(client: &impl GenericClient, change: &machine::Change) -> Result<(), StoreError> {
    let record = &change.record;
    let (mode, deadline, stage, force_at, window_id, upcoming_id) = record.extra_values();
    let stage = i32::try_from(stage).unwrap_or_default();
    client
        .execute(
            "UPDATE maintenance SET status = $1, requested_by = $2, activation_requested_at = $3, \
             activated_at = $4, reason = $5, mode = $6, drain_deadline_at = $7, drain_stage = $8, \
             drain_force_at = $9, window_id = $10, upcoming_id = $11 WHERE id = 1",
            &[
                &record.status.as_str(),
                &record.requested_by,
                &record.activation_requested_at.map(|at| at.to_string()),
                &record.activated_at.map(|at| at.to_string()),
                &record.reason,
                &mode,
                &deadline,
                &stage,
                &force_at,
                &window_id,
                &upcoming_id,
            ],
        )
        .await?;
    let reports = if change.transitions.is_empty() {
        Vec::new()
    } else {
        outbox::reports(change, &remaining_executions(client).await?, &store::live_windows(client).await?)
    };
    for (transition, report) in change.transitions.iter().zip(&reports) {
        client
            .execute(
                "INSERT INTO maintenance_history (at, from_status, to_status, requested_by, reason, event, \
                 window_id, detail, status_after, window_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &transition.at.to_string(),
                    &transition.from.as_str(),
                    &transition.to.as_str(),
                    &transition.requested_by,
                    &transition.reason,
                    &transition.event.as_str(),
                    &transition.window_id.map(|id| id.to_string()),
                    &transition.detail,
                    &report.status,
                    &report.window,
                ],
            )
            .await?;
    }
    for window in &change.windows {
        store::save_window(client, window).await?;
    }
    Ok(())
}

/// Writes `change` (decided on `before`, at `now`) in the caller's
/// transaction, which holds the exclusive lock: the row, history and windows;
/// the executions the drain stops (their owners are told); the queued ones
/// started here if it deactivates. Returns the executions changed and,
/// of those, the ones this replica now runs.
async fn apply(
    client: &impl GenericClient,
    replica: &str,
    before: &MaintenanceRecord,
    change: &Change,
    now: Timestamp,
) -> Result<(Vec<Execution>, Vec<Execution>), StoreError> {
    save_change(client, change).await?;
    let mut changed = Vec::new();
    for (ids, status) in
        [(&change.cancel, ExecutionStatus::Cancelling), (&change.force_cancel, ExecutionStatus::ForceCancelling)]
    {
        for id in ids {
            let Some(mut execution) =
                executions_where(client, &format!("id = $1 AND status IN {REMAINING}"), &[&id.to_string()])
                    .await?
                    .into_iter()
                    .next()
            else {
                continue;
            };
            execution.status = status;
            client
                .execute("UPDATE executions SET status = $2 WHERE id = $1", &[&id.to_string(), &status.as_str()])
                .await?;
            notify_execution(client, replica, *id).await?;
            changed.push(execution);
        }
    }
    let mut started = Vec::new();
    if change.deactivates(before) {
        // This replica runs the queued executions, in creation order.
        started = executions_where(client, "status = 'queued'", &[]).await?;
        for execution in &mut started {
            execution.status = ExecutionStatus::Started;
            execution.started_at = Some(now);
            update_execution(client, execution, Some(replica)).await?;
            notify_execution(client, replica, execution.id).await?;
        }
        changed.extend(started.iter().cloned());
    }
    Ok((changed, started))
}

/// `activating → activated` at `now` if no execution remains, written in the
/// caller's transaction (which holds the exclusive lock); whether it happened.
async fn complete_if_done(
    client: &impl GenericClient,
    record: &MaintenanceRecord,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let Some(change) = machine::complete(record, remaining_count(client).await?, now) else {
        return Ok(false);
    };
    save_change(client, &change).await?;
    Ok(true)
}

/// Writes the fields that change over an execution's life (and its owner).
async fn update_execution(
    client: &impl GenericClient,
    execution: &Execution,
    owner: Option<&str>,
) -> Result<u64, StoreError> {
    Ok(client
        .execute(
            "UPDATE executions SET status = $2, started_at = $3, ended_at = $4, error = $5, owner = $6 WHERE id = $1",
            &[
                &execution.id.to_string(),
                &execution.status.as_str(),
                &execution.started_at.map(|at| at.to_string()),
                &execution.ended_at.map(|at| at.to_string()),
                &execution.error,
                &owner,
            ],
        )
        .await?)
}

/// Executions in one of `statuses` (SQL list), in creation order, locked.
async fn executions_where(
    client: &impl GenericClient,
    condition: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Execution>, StoreError> {
    let rows = client
        .query(&format!("SELECT {COLUMNS} FROM executions WHERE {condition} ORDER BY seq FOR UPDATE"), params)
        .await?;
    rows.iter().map(store::raw_execution).collect()
}

/// What a committed transaction leaves to do: the status to publish (if it
/// changed) and the executions that changed.
#[derive(Default)]
pub(super) struct Committed {
    status: Option<(u64, MaintenanceStatus)>,
    executions: Vec<Execution>,
}

impl Engine {
    fn ledger(&self) -> &Ledger {
        match &self.ledger {
            super::Ledger::Postgres(ledger) => ledger,
            super::Ledger::Sqlite { .. } => unreachable!("a PostgreSQL call on the SQLite engine"),
        }
    }

    /// Publishes `status` if `epoch` is above the published one; returns what
    /// is published now.
    pub(crate) fn publish_at(&self, epoch: u64, status: MaintenanceStatus) -> Published {
        let ledger = self.ledger();
        let _order = ledger.publishing.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.published();
        if epoch <= current.epoch {
            return current;
        }
        self.state_now.store(super::state_code(&status), std::sync::atomic::Ordering::Release);
        self.note_state(current.status.status, status.status);
        let published = Published { epoch, status: Arc::new(status) };
        self.snapshot.send_replace(published.clone());
        // No subscriber is not an error.
        let _ = self.changes.send(published.clone());
        // A window written elsewhere changes the epoch too: plan again.
        self.schedule_changed.notify_one();
        published
    }

    /// Publishes what a transaction committed: its status, its executions.
    fn after_commit(&self, committed: Committed) -> Option<Published> {
        // The answer is the status of this very change, even if the listener
        // has published a later one meanwhile.
        let published = committed.status.map(|(epoch, status)| {
            self.publish_at(epoch, status.clone());
            Published { epoch, status: Arc::new(status) }
        });
        for execution in committed.executions {
            // A cancel (a drain deadline's too) reaches the runner here at once.
            self.pass_on_cancel(&execution);
            let _ = self.execution_changes.send(Arc::new(execution));
        }
        published
    }

    /// Re-reads the status from the database and publishes it if it is newer
    /// (a notification, a reconnect, the periodic check).
    pub(crate) async fn pg_resync(&self) -> Result<Published, StoreError> {
        let (epoch, status) = self
            .ledger()
            .pg
            .with(async |client| {
                // One snapshot: the row, its epoch and the remaining executions agree.
                let tx = store::snapshot(client).await?;
                let status = read_status(&tx).await?;
                tx.commit().await?;
                Ok(status)
            })
            .await?;
        Ok(self.publish_at(epoch, status))
    }

    /// Another replica changed execution `id`: tell this replica's
    /// subscribers, and pass a cancel on to the runner if it runs here.
    pub(crate) async fn pg_execution_changed(&self, id: Uuid) -> Result<(), StoreError> {
        let Some(execution) = self.ledger().pg.execution(id).await? else { return Ok(()) };
        self.pass_on_cancel(&execution);
        if execution.status.is_end() {
            // Failed by another replica (this one was taken for dead): its
            // program must not run on unseen.
            self.stop_runner(id, "Another replica marked this execution failed; its workflow here was stopped.");
        }
        let _ = self.execution_changes.send(Arc::new(execution));
        Ok(())
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
        let active = self.ledger().active.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(requests) = active.get(&execution.id) {
            requests.send_if_modified(|current| super::pass_on(current, request));
        }
    }

    /// Whether the published status is `activating` past its drain deadline
    /// (cancels are then the deadline's, whose force-cancel it sends itself).
    fn draining(&self) -> bool {
        let status = self.status();
        status.status == MaintenanceState::Activating
            // A second of leeway: the deadline is the database's time.
            && status.drain_deadline_at.is_some_and(|at| at <= machine::after(Timestamp::now(), 1))
    }

    /// Stops the local runner of execution `id`, if there is one.
    fn stop_runner(&self, id: Uuid, why: &str) {
        let active = self.ledger().active.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(requests) = active.get(&id) {
            requests.send_replace(Request::Shutdown(why.to_owned()));
        }
    }

    /// Brings this replica's runners in line with the database (after a
    /// listener reconnect, and on every beat, in case a notification was
    /// missed): a cancel stored for one is passed on; one that another
    /// replica ended, or that is no longer this replica's, is stopped.
    pub(crate) async fn pg_reconcile_runners(&self) -> Result<(), StoreError> {
        let ids: Vec<String> =
            self.ledger().active.lock().unwrap_or_else(PoisonError::into_inner).keys().map(Uuid::to_string).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let replica = self.ledger().replica.clone();
        let rows = self
            .ledger()
            .pg
            .with(async |client| {
                let rows = client
                    .query(&format!("SELECT {COLUMNS}, owner FROM executions WHERE id = ANY($1)"), &[&ids])
                    .await?;
                rows.iter()
                    .map(|row| Ok((store::raw_execution(row)?, row.try_get::<_, Option<String>>(10)?)))
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        for (execution, owner) in rows {
            if execution.status.is_end() || owner.as_deref() != Some(replica.as_str()) {
                self.stop_runner(
                    execution.id,
                    "Another replica marked this execution failed; its workflow here was stopped.",
                );
            } else {
                self.pass_on_cancel(&execution);
            }
        }
        Ok(())
    }

    fn pg_run(self: &Arc<Self>, execution: &Execution) {
        let (requests, receiver) = watch::channel(Request::Run);
        self.ledger().active.lock().unwrap_or_else(PoisonError::into_inner).insert(execution.id, requests);
        self.runner.start(execution, receiver);
    }

    pub(super) async fn pg_activate(self: &Arc<Self>, activation: Activation) -> Result<Transition, EngineError> {
        let ledger = self.ledger();
        let committed = ledger
            .pg
            .with(async |client| {
                let tx = client.transaction().await?;
                let record = lock_record(&tx, Lock::Update).await?;
                let now = store::now(&tx).await?;
                let remaining = remaining_count(&tx).await?;
                let Some(change) = machine::activate(&record, remaining, &activation, now) else {
                    return Ok(None);
                };
                save_change(&tx, &change).await?;
                let status = bump(&tx).await?;
                tx.commit().await?;
                Ok(Some(Committed { status: Some(status), executions: Vec::new() }))
            })
            .await?;
        Ok(match committed.and_then(|committed| self.after_commit(committed)) {
            Some(published) => Transition::Changed(published),
            None => Transition::Unchanged,
        })
    }

    pub(super) async fn pg_deactivate(self: &Arc<Self>, by: String) -> Result<Transition, EngineError> {
        let changed =
            self.pg_change(None, |facts, _| Ok(schedule::deactivate(facts, &by).map(|change| ((), change)))).await?;
        Ok(match changed {
            Some(((), published)) => Transition::Changed(published),
            None => Transition::Unchanged,
        })
    }

    /// A window request, decided and written in one transaction under the
    /// exclusive lock; every replica re-plans on the epoch it raises.
    pub(super) async fn pg_window(self: &Arc<Self>, op: WindowOp, by: String) -> Result<Window, EngineError> {
        let target = match &op {
            WindowOp::Schedule(_) => None,
            WindowOp::Extend(id, _) | WindowOp::Cancel(id) => Some(*id),
        };
        let decided = self
            .pg_change(target, |facts, window| {
                let decided = match (op, window) {
                    (WindowOp::Schedule(new), _) => schedule::schedule(facts, new, &by, Uuid::new_v4()),
                    (WindowOp::Extend(_, ends_at), Some(window)) => schedule::extend(facts, window, ends_at, &by),
                    (WindowOp::Cancel(_), Some(window)) => schedule::cancel(facts, window, &by),
                    (WindowOp::Extend(id, _) | WindowOp::Cancel(id), None) => Err(WindowError::NotFound(id)),
                };
                Ok(Some(decided?))
            })
            .await?;
        Ok(decided.map(|(window, _)| window).expect("a window request always changes something"))
    }

    /// One decision of SPEC §10 in one transaction under the exclusive lock:
    /// `decide` reads the facts (and window `target`, if asked), its change is
    /// written with a new epoch, the queued executions it starts run here,
    /// and the status is published. `None`: nothing to change.
    async fn pg_change<T>(
        self: &Arc<Self>,
        target: Option<Uuid>,
        decide: impl FnOnce(&Facts, Option<&Window>) -> Result<Option<(T, Change)>, EngineError>,
    ) -> Result<Option<(T, Published)>, EngineError> {
        let ledger = self.ledger();
        let replica = ledger.replica.clone();
        let grace = self.cancel_grace();
        let decided = ledger
            .pg
            .with(async |client| {
                let tx = client.transaction().await?;
                let record = lock_record(&tx, Lock::Update).await?;
                let now = store::now(&tx).await?;
                let (windows, remaining) = schedule_facts(&tx).await?;
                let window = match target {
                    Some(id) => store::get_window(&tx, id).await?,
                    None => None,
                };
                let facts =
                    Facts { record: &record, windows: &windows, remaining: &remaining, now, cancel_grace: grace };
                let (value, change) = match decide(&facts, window.as_ref()) {
                    Ok(Some(decided)) => decided,
                    Ok(None) => return Ok(Ok(None)),
                    Err(error) => return Ok(Err(error)),
                };
                let (executions, started) = apply(&tx, &replica, &record, &change, now).await?;
                let status = bump(&tx).await?;
                tx.commit().await?;
                Ok(Ok(Some((value, Committed { status: Some(status), executions }, started))))
            })
            .await??;
        let Some((value, committed, started)) = decided else { return Ok(None) };
        for execution in &started {
            self.pg_run(execution);
        }
        Ok(self.after_commit(committed).map(|published| (value, published)))
    }

    /// [`Engine::tick`] on PostgreSQL: unless woken at a `due` time, finds out
    /// without locking whether anything is due; then decides under the
    /// exclusive lock (another replica may have done it meanwhile) and writes
    /// it. Returns when something is next due, by this replica's clock.
    pub(super) async fn pg_tick(self: &Arc<Self>, due: bool) -> Result<Option<Timestamp>, EngineError> {
        let ledger = self.ledger();
        let replica = ledger.replica.clone();
        let grace = self.cancel_grace();
        let (next, committed, started) = ledger
            .pg
            .with(async |client| {
                let peek = async |client: &tokio_postgres::Transaction<'_>| -> Result<_, StoreError> {
                    let record = read_record(client).await?;
                    let now = store::now(client).await?;
                    let (windows, remaining) = schedule_facts(client).await?;
                    Ok((record, now, windows, remaining))
                };
                if !due {
                    let tx = store::snapshot(client).await?;
                    let (record, now, windows, remaining) = peek(&tx).await?;
                    tx.commit().await?;
                    let facts =
                        Facts { record: &record, windows: &windows, remaining: &remaining, now, cancel_grace: grace };
                    if schedule::tick(&facts).is_none() {
                        return Ok((next_due_here(&record, &windows, now), None, Vec::new()));
                    }
                }
                let tx = client.transaction().await?;
                let record = lock_record(&tx, Lock::Update).await?;
                let (_, now, windows, remaining) = peek(&tx).await?;
                let facts =
                    Facts { record: &record, windows: &windows, remaining: &remaining, now, cancel_grace: grace };
                let Some(change) = schedule::tick(&facts) else {
                    tx.commit().await?;
                    return Ok((next_due_here(&record, &windows, now), None, Vec::new()));
                };
                let (executions, started) = apply(&tx, &replica, &record, &change, now).await?;
                let status = bump(&tx).await?;
                tx.commit().await?;
                let live: Vec<Window> = windows
                    .iter()
                    .map(|window| change.windows.iter().find(|w| w.id == window.id).unwrap_or(window).clone())
                    .filter(|window| !window.state.is_over())
                    .collect();
                let next = next_due_here(&change.record, &live, now);
                Ok((next, Some(Committed { status: Some(status), executions }), started))
            })
            .await?;
        for execution in &started {
            self.pg_run(execution);
        }
        if let Some(committed) = committed {
            self.after_commit(committed);
        }
        Ok(next)
    }

    pub(super) async fn pg_create(
        self: &Arc<Self>,
        new: NewExecution,
        created_by: String,
        bypass: bool,
    ) -> Result<Execution, EngineError> {
        let ledger = self.ledger();
        let replica = ledger.replica.clone();
        let (execution, committed) = ledger
            .pg
            .with(async |client| {
                let tx = client.transaction().await?;
                // A bypass may start an execution during maintenance, which
                // changes the status object: it must be a change like any other.
                let record = lock_record(&tx, if bypass { Lock::Update } else { Lock::Share }).await?;
                let status = match machine::admit(record.status, record.mode, bypass, new.queue) {
                    Ok(status) => status,
                    Err(code) => return Ok(Err(EngineError::Refused(code))),
                };
                if status == ExecutionStatus::Started && !ledger.lease_held.load(std::sync::atomic::Ordering::Acquire) {
                    // The others may be about to take this replica for dead.
                    return Err(StoreError::Unavailable("this replica's lease is not renewed".into()));
                }
                let execution = machine::new_execution(new, created_by, status, store::now(&tx).await?);
                let owner = (status == ExecutionStatus::Started).then_some(replica.as_str());
                insert_execution(&tx, &execution, owner).await?;
                notify_execution(&tx, &replica, execution.id).await?;
                let changed = status == ExecutionStatus::Started && record.status != MaintenanceState::Deactivated;
                let status = if changed { Some(bump(&tx).await?) } else { None };
                tx.commit().await?;
                Ok(Ok((execution.clone(), Committed { status, executions: vec![execution] })))
            })
            .await??;
        if execution.status == ExecutionStatus::Started {
            self.pg_run(&execution);
        }
        self.after_commit(committed);
        Ok(execution)
    }

    pub(super) async fn pg_act(self: &Arc<Self>, id: Uuid, action: ExecutionAction) -> Result<Execution, EngineError> {
        let ledger = self.ledger();
        let replica = ledger.replica.clone();
        let (execution, committed) = ledger
            .pg
            .with(async |client| {
                let tx = client.transaction().await?;
                let record = lock_record(&tx, Lock::Update).await?;
                let Some(mut execution) =
                    executions_where(&tx, "id = $1", &[&id.to_string()]).await?.into_iter().next()
                else {
                    return Ok(Err(EngineError::ExecutionNotFound(id)));
                };
                match machine::cancel(execution.status, action) {
                    Err(status) => return Ok(Err(EngineError::AlreadyEnded { id, status })),
                    Ok(machine::Cancel::Queued) => {
                        execution.status = ExecutionStatus::Cancelled;
                        execution.ended_at = Some(store::now(&tx).await?);
                        update_execution(&tx, &execution, None).await?;
                    }
                    Ok(machine::Cancel::Running { status }) => {
                        if status == execution.status {
                            // Nothing to write; the runner is asked again below.
                            return Ok(Ok((execution, Committed::default())));
                        }
                        execution.status = status;
                        tx.execute(
                            "UPDATE executions SET status = $2 WHERE id = $1",
                            &[&id.to_string(), &status.as_str()],
                        )
                        .await?;
                    }
                }
                // The owner (this replica or another) passes the cancel on.
                notify_execution(&tx, &replica, id).await?;
                let changed = record.status != MaintenanceState::Deactivated && execution.status.is_remaining();
                let status = if changed { Some(bump(&tx).await?) } else { None };
                tx.commit().await?;
                Ok(Ok((execution.clone(), Committed { status, executions: vec![execution] })))
            })
            .await??;
        self.pass_on_cancel(&execution);
        self.after_commit(committed);
        Ok(execution)
    }

    pub(super) async fn pg_finish(
        self: &Arc<Self>,
        id: Uuid,
        end: ProcessEnd,
        tail: Arc<OutputBatch>,
    ) -> Result<(), EngineError> {
        let ledger = self.ledger();
        let replica = ledger.replica.clone();
        let committed = ledger
            .pg
            .with(async |client| {
                let tx = client.transaction().await?;
                // The last lines go in this transaction, before the decision
                // lock is taken: other decisions do not wait for them.
                store::append_output(&tx, id, tail.first, &tail.events).await?;
                let record = lock_record(&tx, Lock::Update).await?;
                let now = store::now(&tx).await?;
                // Only if it is still this replica's and running: a survivor
                // may have failed it while this replica was cut off.
                let Some(mut execution) = executions_where(
                    &tx,
                    &format!("id = $1 AND owner = $2 AND status IN {REMAINING}"),
                    &[&id.to_string(), &replica],
                )
                .await?
                .into_iter()
                .next() else {
                    // Already ended: by an earlier try whose reply was lost,
                    // or by a survivor. Tell this replica's streams how.
                    let ended = store::execution(&tx, id).await?;
                    tx.commit().await?;
                    return Ok(Committed { status: None, executions: ended.into_iter().collect() });
                };
                execution.status = end.status;
                execution.error = end.error.clone();
                execution.ended_at = Some(now);
                update_execution(&tx, &execution, Some(&replica)).await?;
                notify_execution(&tx, &replica, id).await?;
                let mut status = None;
                if record.status != MaintenanceState::Deactivated {
                    if let Some(change) = machine::complete(&record, remaining_count(&tx).await?, now) {
                        save_change(&tx, &change).await?;
                    }
                    status = Some(bump(&tx).await?);
                }
                tx.commit().await?;
                Ok(Committed { status, executions: vec![execution] })
            })
            .await?;
        ledger.active.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        self.after_commit(committed);
        Ok(())
    }

    pub(super) async fn pg_record_process(&self, id: Uuid, identity: ProcessIdentity) -> Result<(), EngineError> {
        let start = i64::try_from(identity.start_time).unwrap_or(i64::MAX);
        self.ledger()
            .pg
            .with(async |client| {
                client
                    .execute(
                        "UPDATE executions SET pgid = $2, process_start = $3 WHERE id = $1",
                        &[&id.to_string(), &identity.pgid, &start],
                    )
                    .await?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Fails the executions of replicas whose lease ran out, and this
    /// replica's orphans (and completes `activating` when nothing is left). Any replica may run it; the
    /// maintenance row's lock makes each failure happen once. Returns how
    /// many executions it failed.
    pub(crate) async fn pg_reap(self: &Arc<Self>) -> Result<usize, StoreError> {
        let ledger = self.ledger();
        let replica = ledger.replica.clone();
        let lease = i64::try_from(ledger.lease.as_millis()).unwrap_or(i64::MAX);
        // Also this replica's own orphans: recorded as running here, but no
        // runner here has them (a start whose commit went through while its
        // caller gave up waiting). Only old ones: a start commits before its
        // runner is registered.
        let running_here: Vec<String> =
            ledger.active.lock().unwrap_or_else(PoisonError::into_inner).keys().map(Uuid::to_string).collect();
        let dead = format!(
            "status IN {REMAINING} AND owner IS NOT NULL AND ( \
               (owner <> $1 AND NOT EXISTS (SELECT 1 FROM replicas WHERE replicas.id = executions.owner \
                 AND replicas.last_seen > clock_timestamp() - replicas.lease_ms * interval '1 millisecond')) \
               OR (owner = $1 AND $2::bigint >= 0 AND NOT (id = ANY($3)) AND started_at < \
                 to_char((clock_timestamp() - $4::bigint * interval '1 millisecond') AT TIME ZONE 'UTC', \
                   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')))"
        );
        let orphan_age = i64::try_from(ORPHAN_AGE.as_millis()).unwrap_or(i64::MAX);
        let committed = ledger
            .pg
            .with(async |client| {
                // Most of the time there is nothing to do: find out without locking.
                let candidates: i64 = client
                    .query_one(&format!("SELECT COUNT(*) FROM executions WHERE {dead}"), &[
                        &replica,
                        &lease,
                        &running_here,
                        &orphan_age,
                    ])
                    .await?
                    .get(0);
                let stuck: bool = client
                    .query_one(
                        &format!(
                            "SELECT status = 'activating' AND NOT EXISTS \
                             (SELECT 1 FROM executions WHERE status IN {REMAINING}) FROM maintenance WHERE id = 1"
                        ),
                        &[],
                    )
                    .await?
                    .get(0);
                if candidates == 0 && !stuck {
                    return Ok(None);
                }
                let tx = client.transaction().await?;
                let record = lock_record(&tx, Lock::Update).await?;
                let now = store::now(&tx).await?;
                let mut failed = executions_where(&tx, &dead, &[&replica, &lease, &running_here, &orphan_age]).await?;
                for execution in &mut failed {
                    let owner: String = tx
                        .query_one("SELECT owner FROM executions WHERE id = $1", &[&execution.id.to_string()])
                        .await?
                        .get(0);
                    execution.error = if owner == replica {
                        tracing::warn!(id = %execution.id, "failing an execution recorded as running here that is not");
                        format!(
                            "Replica `{replica}` recorded this execution as running but runs no program for it (its \
                             start was not confirmed); it was marked failed at {now}."
                        )
                    } else {
                        tracing::warn!(id = %execution.id, %owner, "failing an execution of a replica whose lease ran out");
                        format!(
                            "The replica `{owner}` running this execution stopped renewing its lease; replica \
                             `{replica}` marked it failed at {now}."
                        )
                    };
                    execution.status = ExecutionStatus::Failed;
                    execution.ended_at = Some(now);
                    update_execution(&tx, execution, Some(&owner)).await?;
                    notify_execution(&tx, &replica, execution.id).await?;
                }
                let completed = complete_if_done(&tx, &record, now).await?;
                let status = if !failed.is_empty() || completed { Some(bump(&tx).await?) } else { None };
                tx.commit().await?;
                Ok(Some(Committed { status, executions: failed }))
            })
            .await?;
        let Some(committed) = committed else { return Ok(0) };
        let count = committed.executions.len();
        self.after_commit(committed);
        Ok(count)
    }

    /// Renews this replica's lease and says which change it has applied, on
    /// `client` (a connection of the heartbeat's own: a pool busy with
    /// requests must not delay it past the lease), within the call timeout.
    pub(crate) async fn pg_heartbeat(&self, client: &tokio_postgres::Client, address: &str) -> Result<(), StoreError> {
        let ledger = self.ledger();
        let epoch = i64::try_from(self.published().epoch).unwrap_or(i64::MAX);
        let lease = i64::try_from(ledger.lease.as_millis()).unwrap_or(i64::MAX);
        store::bounded(async {
            client
                .execute(
                    "INSERT INTO replicas (id, address, started_at, last_seen, epoch, lease_ms) \
                     VALUES ($1, $2, manager_now(), clock_timestamp(), $3, $4) \
                     ON CONFLICT (id) DO UPDATE SET last_seen = clock_timestamp(), epoch = $3, lease_ms = $4, \
                     address = CASE WHEN $2 = '' THEN replicas.address ELSE $2 END",
                    &[&ledger.replica, &address, &epoch, &lease],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// The replicas whose lease has not run out, by name, with the change
    /// each applied and how many executions each runs.
    pub async fn pg_replicas(&self) -> Result<Vec<shared::api::Replica>, StoreError> {
        self.ledger()
            .pg
            .with(async |client| {
                let rows = client
                    .query(
                        &format!(
                            "SELECT r.id, r.address, \
                             to_char(r.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), r.epoch, \
                             (SELECT COUNT(*) FROM executions e WHERE e.owner = r.id AND e.status IN {REMAINING}) \
                             FROM replicas r WHERE r.last_seen > clock_timestamp() - r.lease_ms * interval '1 millisecond' \
                             ORDER BY r.id"
                        ),
                        &[],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        let last_seen: &str = row.try_get(2)?;
                        let epoch: i64 = row.try_get(3)?;
                        let running: i64 = row.try_get(4)?;
                        Ok(shared::api::Replica {
                            id: row.try_get(0)?,
                            address: row.try_get(1)?,
                            last_seen: crate::store::parse_column("replicas", "last_seen", last_seen, |s| {
                                s.parse().ok()
                            })?,
                            epoch: u64::try_from(epoch).unwrap_or_default(),
                            running_executions: u64::try_from(running).unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .await
    }

    /// Records whether the lease is held; returns whether that changed.
    pub(crate) fn pg_set_lease_held(&self, held: bool) -> bool {
        self.ledger().lease_held.swap(held, std::sync::atomic::Ordering::AcqRel) != held
    }

    /// This replica lost its lease (no heartbeat for longer than it): a
    /// survivor may fail its executions at any moment, so it stops them
    /// itself (fencing) rather than run on unseen.
    pub(crate) fn pg_fence(&self) -> usize {
        let active = self.ledger().active.lock().unwrap_or_else(PoisonError::into_inner);
        for requests in active.values() {
            requests.send_replace(Request::Shutdown(
                "This replica lost its connection to the database for longer than its lease: its workflow was \
                 stopped so that it does not run unseen, and the execution was marked failed."
                    .into(),
            ));
        }
        active.len()
    }

    pub(super) fn pg_active(&self) -> Vec<watch::Sender<Request>> {
        self.ledger().active.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// This replica's name.
    pub fn replica(&self) -> Option<&str> {
        match &self.ledger {
            super::Ledger::Postgres(ledger) => Some(&ledger.replica),
            super::Ledger::Sqlite { .. } => None,
        }
    }

    /// The pool, for the cluster's tasks.
    pub(crate) fn pg(&self) -> Option<&Pg> {
        match &self.ledger {
            super::Ledger::Postgres(ledger) => Some(&ledger.pg),
            super::Ledger::Sqlite { .. } => None,
        }
    }
}

/// When the scheduler is next due, as a time of this replica's clock: the
/// database decided at `db_now`; the wait is the same on either clock.
fn next_due_here(record: &MaintenanceRecord, windows: &[Window], db_now: Timestamp) -> Option<Timestamp> {
    let due = schedule::next_due(record, windows, db_now)?;
    let wait = due.as_datetime().signed_duration_since(db_now.as_datetime());
    Some(Timestamp::from_datetime(Timestamp::now().as_datetime() + wait))
}

/// Inserts a new execution (owned by `owner` when it runs).
async fn insert_execution(
    client: &impl GenericClient,
    execution: &Execution,
    owner: Option<&str>,
) -> Result<(), StoreError> {
    client
        .execute(
            &format!("INSERT INTO executions ({COLUMNS}, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
            &[
                &execution.id.to_string(),
                &execution.workflow_id,
                &execution.deployment_id,
                &execution.status.as_str(),
                &serde_json::Value::Object(execution.parameters.clone()).to_string(),
                &execution.created_at.to_string(),
                &execution.started_at.map(|at| at.to_string()),
                &execution.ended_at.map(|at| at.to_string()),
                &execution.created_by,
                &execution.error,
                &owner,
            ],
        )
        .await?;
    Ok(())
}

/// Start-up of replica `replica`: migrates, fails the executions it ran
/// before it stopped (killing what is left of their processes), completes
/// `activating` if nothing remains, and returns the status to start from,
/// as a new epoch.
pub(super) async fn recover(pg: &Pg, replica: &str) -> Result<(u64, MaintenanceStatus), StoreError> {
    pg.migrate().await?;
    // Kill leftovers first (it may wait), outside any transaction.
    let leftovers: Vec<(Uuid, Option<i32>, Option<i64>)> = pg
        .with(async |client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT id, pgid, process_start FROM executions WHERE owner = $1 AND status IN {REMAINING}"
                    ),
                    &[&replica],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let id: &str = row.try_get(0)?;
                    let id = crate::store::parse_column("executions", "id", id, |s| Uuid::parse_str(s).ok())?;
                    Ok((id, row.try_get(1)?, row.try_get(2)?))
                })
                .collect::<Result<_, StoreError>>()
        })
        .await?;
    let mut killed = HashMap::new();
    for (id, pgid, start) in leftovers {
        if let (Some(pgid), Some(start)) = (pgid, start) {
            let identity = ProcessIdentity { pgid, start_time: u64::try_from(start).unwrap_or_default() };
            let said =
                tokio::task::spawn_blocking(move || super::kill_identified(id, identity)).await.unwrap_or_default();
            killed.insert(id, said);
        }
    }
    let replica = replica.to_owned();
    pg.with(async |client| {
        let tx = client.transaction().await?;
        let record = lock_record(&tx, Lock::Update).await?;
        let now: Timestamp = store::now(&tx).await?;
        let mut interrupted =
            executions_where(&tx, &format!("owner = $1 AND status IN {REMAINING}"), &[&replica]).await?;
        for execution in &mut interrupted {
            tracing::warn!(id = %execution.id, status = %execution.status, "marking an interrupted execution failed");
            execution.error = format!(
                "The manager stopped while this execution was {}; it was marked failed when the manager \
                 (replica `{replica}`) started again at {now}.{}",
                execution.status,
                killed.get(&execution.id).map(String::as_str).unwrap_or_default()
            );
            execution.status = ExecutionStatus::Failed;
            execution.ended_at = Some(now);
            update_execution(&tx, execution, Some(&replica)).await?;
            notify_execution(&tx, &replica, execution.id).await?;
        }
        complete_if_done(&tx, &record, now).await?;
        // A start is a change too (as on SQLite): a client that saw the
        // status before can tell this replica's answers are not older.
        let status = bump(&tx).await?;
        tx.commit().await?;
        Ok(status)
    })
    .await
}

//! The ledger on PostgreSQL (SPEC §8): several replicas, one database.
//!
//! Every decision is made in a transaction that holds the decision lock (an
//! advisory transaction lock): shared for admissions, claims and ends while
//! maintenance is off (they run side by side), exclusive for everything that
//! changes the status object. The lock manager queues requests in order, so
//! an activate waiting for the admissions in flight holds back the ones that
//! come after it. A transaction that changes the status object raises the
//! cluster-wide epoch and notifies `manager_state` with it (delivered at
//! commit); one that changes executions notifies `manager_executions` once.

use shared::{Execution, ExecutionStatus, MaintenanceState, MaintenanceStatus, RemainingExecution, Timestamp};
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::{Committed, Decide, Effects, Facts, Ledger, Lock, Scope, Stored};
use crate::model::{outbox, Change, MaintenanceRecord};
use crate::store::maintenance::RECORD_COLUMNS;
use crate::store::postgres::{self as store, Pg, COLUMNS};
use crate::store::{parse_column, StoreError};

/// The statuses of executions that remain (run or wait to run somewhere), as SQL.
pub const REMAINING: &str = "('pending', 'started', 'cancelling', 'force_cancelling')";
/// The notification channel of status changes; the payload is the epoch.
pub const STATE_CHANNEL: &str = "manager_state";
/// The notification channel of execution changes; the payload is
/// `<replica> <id>,<id>,…`, or `<replica> *` when too many changed to list.
pub const EXECUTIONS_CHANNEL: &str = "manager_executions";
/// The most execution ids one notification lists (payloads stay under 8000 bytes).
const LISTED_IDS: usize = 150;
/// The advisory lock key of maintenance decisions.
const DECISION_LOCK: i64 = 0x6d61_696e_7465_6e62;

/// Replica `replica`'s ledger on the database of `pg`.
pub struct PgLedger {
    pg: Pg,
    replica: String,
    /// This process among the processes that ever ran as `replica`.
    instance: String,
}

impl PgLedger {
    /// The ledger of replica `replica`.
    pub fn new(pg: Pg, replica: String) -> Self {
        Self { pg, replica, instance: Uuid::new_v4().to_string() }
    }

    /// The pool.
    pub fn pg(&self) -> &Pg {
        &self.pg
    }
}

impl PgLedger {
    /// What this replica left running (see [`Ledger::leftovers`]).
    async fn leftovers_here(&self) -> Result<Vec<(Uuid, Option<(i32, u64)>)>, StoreError> {
        let replica = self.replica.clone();
        self.pg
            .with(async |client| {
                let rows = client
                    .query(
                        &format!(
                            "SELECT id, pgid, process_start FROM executions WHERE owner = $1 \
                             AND (status IN {REMAINING} OR pgid IS NOT NULL)"
                        ),
                        &[&replica],
                    )
                    .await?;
                rows.iter()
                    .map(|row| {
                        let id: &str = row.try_get(0)?;
                        let id = parse_column("executions", "id", id, |s| Uuid::parse_str(s).ok())?;
                        let pgid: Option<i32> = row.try_get(1)?;
                        let start: Option<i64> = row.try_get(2)?;
                        Ok((id, pgid.zip(start.map(|start| u64::try_from(start).unwrap_or_default()))))
                    })
                    .collect()
            })
            .await
    }

    /// Forgets the process groups of `ids`.
    async fn forget_here(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        self.pg
            .with(async |client| {
                client
                    .execute("UPDATE executions SET pgid = NULL, process_start = NULL WHERE id = ANY($1)", &[&ids])
                    .await?;
                Ok(())
            })
            .await
    }

    /// The executions among `ids`, with their owners, as committed.
    pub async fn stored_many(&self, ids: Vec<Uuid>) -> Result<Vec<Stored>, StoreError> {
        self.pg.with(async |client| stored_in(&*client, &ids, false).await).await
    }
}

impl PgLedger {
    /// Fails, in one statement under the exclusive lock, the executions of
    /// replicas whose lease ran out (by the database clock) and this
    /// replica's orphans (recorded as running here, but not among
    /// `running_here`, and started over `orphan_age` ago: a start whose
    /// commit went through while its caller gave up). Each is failed once.
    pub async fn reap(
        &self,
        running_here: Vec<Uuid>,
        orphan_age: std::time::Duration,
    ) -> Result<Committed, StoreError> {
        let replica = self.replica.as_str();
        let running_here: Vec<String> = running_here.iter().map(Uuid::to_string).collect();
        let orphan_age = i64::try_from(orphan_age.as_millis()).unwrap_or(i64::MAX);
        let dead = format!(
            "status IN {REMAINING} AND owner IS NOT NULL AND ( \
               (owner <> $1 AND NOT EXISTS (SELECT 1 FROM replicas WHERE replicas.id = executions.owner \
                 AND replicas.last_seen > clock_timestamp() - replicas.lease_ms * interval '1 millisecond')) \
               OR (owner = $1 AND NOT (id = ANY($2)) AND started_at < \
                 to_char((clock_timestamp() - $3::bigint * interval '1 millisecond') AT TIME ZONE 'UTC', \
                   'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')))"
        );
        self.pg
            .with(async |client| {
                // Most of the time there is nothing to do: find out without locking.
                let candidates: i64 = client
                    .query_one(
                        &format!("SELECT COUNT(*) FROM executions WHERE {dead}"),
                        &[&replica, &running_here, &orphan_age],
                    )
                    .await?
                    .get(0);
                if candidates == 0 {
                    return Ok(Committed::default());
                }
                let tx = client.transaction().await?;
                take(&tx, Lock::Update).await?;
                let rows = tx
                    .query(
                        &format!(
                            "UPDATE executions SET status = 'failed', ended_at = manager_now(), error = CASE \
                               WHEN owner = $1 THEN 'Replica `' || $1 || '` recorded this execution as running but \
                                 runs no program for it (its start was not confirmed); it was marked failed at ' \
                                 || manager_now() || '.' \
                               ELSE 'The replica `' || owner || '` running this execution stopped renewing its \
                                 lease; replica `' || $1 || '` marked it failed at ' || manager_now() || '.' END \
                             WHERE {dead} RETURNING {COLUMNS}"
                        ),
                        &[&replica, &running_here, &orphan_age],
                    )
                    .await?;
                let failed = by_creation(&rows)?;
                for execution in &failed {
                    tracing::warn!(id = %execution.id, error = %execution.error, "failed an execution");
                }
                notify_executions(&tx, replica, &failed).await?;
                let record = read_record(&tx).await?;
                let status = if failed.is_empty() || record.status == MaintenanceState::Deactivated {
                    None
                } else {
                    Some(bump(&tx).await?)
                };
                tx.commit().await?;
                Ok(Committed { status, executions: failed, pending: false })
            })
            .await
    }
}

impl PgLedger {
    /// Renews this replica's lease (`lease`) and says which change it has
    /// applied (`epoch`) and where it serves, on `client` (a connection of
    /// the heartbeat's own), within the call bound.
    pub async fn heartbeat(
        &self,
        client: &tokio_postgres::Client,
        epoch: u64,
        lease: std::time::Duration,
        address: &str,
    ) -> Result<(), StoreError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        store::bounded(async {
            // Renewed only while the row is this process's, or the other
            // process's lease ran out (it is dead: this one takes over).
            let renewed = client
                .execute(
                    "INSERT INTO replicas (id, address, started_at, last_seen, epoch, lease_ms, instance, backend_pid) \
                     VALUES ($1, $2, manager_now(), clock_timestamp(), $3, $4, $5, pg_backend_pid()) \
                     ON CONFLICT (id) DO UPDATE SET last_seen = clock_timestamp(), epoch = $3, lease_ms = $4, \
                     address = CASE WHEN $2 = '' THEN replicas.address ELSE $2 END, instance = $5, \
                     backend_pid = pg_backend_pid(), \
                     started_at = CASE WHEN replicas.instance = $5 THEN replicas.started_at ELSE manager_now() END \
                     WHERE replicas.instance = $5 \
                       OR replicas.last_seen <= clock_timestamp() - replicas.lease_ms * interval '1 millisecond'",
                    &[&self.replica, &address, &epoch, &lease, &self.instance],
                )
                .await?;
            if renewed == 0 {
                return Err(StoreError::Unavailable(format!(
                    "another process renews the lease of replica `{}`",
                    self.replica
                )));
            }
            Ok(())
        })
        .await
    }

    /// Makes replica id `replica` this process's at start-up: at once if no
    /// live process holds it (none ever did, its lease ran out, or its
    /// heartbeat's connection is gone: it died); refused, naming the other
    /// process's address, if the holder keeps renewing its lease; else
    /// (the holder neither renews nor is known dead) once its lease runs out.
    pub async fn take_replica_id(
        &self,
        client: &tokio_postgres::Client,
        lease: std::time::Duration,
    ) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + lease + lease / 2;
        let mut first_seen: Option<String> = None;
        loop {
            let holder = store::bounded(async {
                Ok(client
                    .query_opt(
                        "SELECT address, last_seen::text, \
                           backend_pid IS NOT NULL AND NOT EXISTS \
                             (SELECT 1 FROM pg_stat_activity WHERE pid = replicas.backend_pid) \
                         FROM replicas WHERE id = $1 AND instance <> $2 \
                           AND last_seen > clock_timestamp() - lease_ms * interval '1 millisecond'",
                        &[&self.replica, &self.instance],
                    )
                    .await?)
            })
            .await?;
            let Some(holder) = holder else { return Ok(()) };
            let (address, last_seen, gone): (String, String, bool) =
                (holder.try_get(0)?, holder.try_get(1)?, holder.try_get(2)?);
            if gone {
                tracing::warn!(replica = %self.replica, %address, "the last process of this replica died; taking over");
                // Its lease is given up, so the heartbeat takes the row now.
                client
                    .execute(
                        "UPDATE replicas SET last_seen = '-infinity' WHERE id = $1 AND instance <> $2",
                        &[&self.replica, &self.instance],
                    )
                    .await?;
                return Ok(());
            }
            match &first_seen {
                Some(seen) if *seen != last_seen => {
                    return Err(StoreError::Config(format!(
                        "replica id `{}` is in use by a live manager at {}: give this one another --replica-id",
                        self.replica,
                        if address.is_empty() { "an address not yet known" } else { &address }
                    )));
                }
                Some(_) => {}
                None => first_seen = Some(last_seen),
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Gives the lease up at a graceful stop, so a restart takes the id at once.
    pub async fn release_replica_id(&self) -> Result<(), StoreError> {
        let (replica, instance) = (self.replica.clone(), self.instance.clone());
        self.pg
            .with(async |client| {
                client
                    .execute(
                        "UPDATE replicas SET last_seen = '-infinity', backend_pid = NULL \
                         WHERE id = $1 AND instance = $2",
                        &[&replica, &instance],
                    )
                    .await?;
                Ok(())
            })
            .await
    }

    /// The replicas whose lease has not run out, by name, with the change
    /// each applied and how many executions each runs.
    pub async fn replicas(&self) -> Result<Vec<shared::api::Replica>, StoreError> {
        self.pg
            .with(async |client| {
                let rows = client
                    .query(
                        "SELECT r.id, r.address, \
                         to_char(r.last_seen AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), r.epoch, \
                         (SELECT COUNT(*) FROM executions e WHERE e.owner = r.id \
                           AND e.status IN ('started', 'cancelling', 'force_cancelling')) \
                         FROM replicas r WHERE r.last_seen > clock_timestamp() - r.lease_ms * interval '1 millisecond' \
                         ORDER BY r.id",
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
                            last_seen: parse_column("replicas", "last_seen", last_seen, |s| s.parse().ok())?,
                            epoch: u64::try_from(epoch).unwrap_or_default(),
                            running_executions: u64::try_from(running).unwrap_or_default(),
                        })
                    })
                    .collect()
            })
            .await
    }
}

impl Ledger for PgLedger {
    fn replica(&self) -> &str {
        &self.replica
    }

    async fn decide<T: Send + 'static, E: Send + 'static>(
        &self,
        lock: Lock,
        scope: Scope,
        decide: Decide<T, E>,
    ) -> Result<Result<Option<(T, Committed)>, E>, StoreError> {
        let replica = self.replica.as_str();
        self.pg
            .with(async |client| {
                let tx = client.transaction().await?;
                // The last lines go first, before the decision lock is
                // taken: other decisions do not wait for them.
                if let Some(batch) = &scope.output {
                    store::append_output(&tx, batch.execution_id, batch.first, &batch.events).await?;
                }
                take(&tx, lock).await?;
                let facts = facts(&tx, &scope, true).await?;
                let (value, effects) = match decide(&facts) {
                    Ok(Some(decided)) => decided,
                    Ok(None) => {
                        tx.commit().await?;
                        return Ok(Ok(None));
                    }
                    Err(refused) => return Ok(Err(refused)),
                };
                let committed = apply(&tx, replica, &facts, &effects).await?;
                tx.commit().await?;
                Ok(Ok(Some((value, committed))))
            })
            .await
    }

    async fn peek(&self, scope: Scope) -> Result<Facts, StoreError> {
        self.pg
            .with(async |client| {
                // One snapshot: the row, the windows and the executions agree.
                let tx = store::snapshot(client).await?;
                let facts = facts(&tx, &scope, false).await?;
                tx.commit().await?;
                Ok(facts)
            })
            .await
    }

    async fn claim(&self, limit: usize) -> Result<Committed, StoreError> {
        let replica = self.replica.as_str();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.pg
            .with(async |client| {
                // Most of the time nothing waits: find out without a transaction.
                let waiting: bool = client
                    .query_one("SELECT EXISTS (SELECT 1 FROM executions WHERE status = 'pending')", &[])
                    .await?
                    .get(0);
                if !waiting {
                    return Ok(Committed::default());
                }
                let tx = client.transaction().await?;
                take(&tx, Lock::Share).await?;
                // Each pending execution is claimed by one replica: rows
                // another replica is claiming are skipped, and one cancelled
                // meanwhile is left alone (the status is checked again).
                let rows = tx
                    .query(
                        &format!(
                            "WITH picked AS (SELECT seq FROM executions WHERE status = 'pending' ORDER BY seq \
                               LIMIT $2 FOR UPDATE SKIP LOCKED) \
                             UPDATE executions e SET status = 'started', started_at = manager_now(), owner = $1 \
                             FROM picked WHERE e.seq = picked.seq AND e.status = 'pending' RETURNING {}",
                            prefixed("e")
                        ),
                        &[&replica, &limit],
                    )
                    .await?;
                let claimed = by_creation(&rows)?;
                if claimed.is_empty() {
                    tx.commit().await?;
                    return Ok(Committed::default());
                }
                let record = read_record(&tx).await?;
                notify_executions(&tx, replica, &claimed).await?;
                let status = if record.status == MaintenanceState::Deactivated { None } else { Some(bump(&tx).await?) };
                tx.commit().await?;
                Ok(Committed { status, executions: claimed, pending: false })
            })
            .await
    }

    async fn current(&self) -> Result<(u64, MaintenanceStatus), StoreError> {
        self.pg
            .with(async |client| {
                let tx = store::snapshot(client).await?;
                let status = read_status(&tx).await?;
                tx.commit().await?;
                Ok(status)
            })
            .await
    }

    async fn leftovers(&self) -> Result<Vec<(Uuid, Option<(i32, u64)>)>, StoreError> {
        self.leftovers_here().await
    }

    async fn forget_processes(&self, ids: Vec<Uuid>) -> Result<(), StoreError> {
        self.forget_here(ids).await
    }

    async fn record_process(&self, id: Uuid, pgid: i32, start_time: u64) -> Result<(), StoreError> {
        let start = i64::try_from(start_time).unwrap_or(i64::MAX);
        self.pg
            .with(async |client| {
                client
                    .execute(
                        "UPDATE executions SET pgid = $2, process_start = $3 WHERE id = $1",
                        &[&id.to_string(), &pgid, &start],
                    )
                    .await?;
                Ok(())
            })
            .await
    }
}

/// `COLUMNS` with each name prefixed by `alias.`.
fn prefixed(alias: &str) -> String {
    COLUMNS.split(", ").map(|column| format!("{alias}.{column}")).collect::<Vec<_>>().join(", ")
}

/// Takes `lock` (held to the end of the transaction).
async fn take(client: &impl GenericClient, lock: Lock) -> Result<(), StoreError> {
    let take = match lock {
        Lock::Share => "SELECT pg_advisory_xact_lock_shared($1)",
        Lock::Update => "SELECT pg_advisory_xact_lock($1)",
    };
    client.execute(take, &[&DECISION_LOCK]).await?;
    Ok(())
}

/// The maintenance row, as `client` sees it.
async fn read_record(client: &impl GenericClient) -> Result<MaintenanceRecord, StoreError> {
    let row = client.query_one(&format!("SELECT {RECORD_COLUMNS} FROM maintenance WHERE id = 1"), &[]).await?;
    store::record(&row)
}

/// The executions among `ids` with their owners, in the order of `ids` (`lock`: for update).
async fn stored_in(client: &impl GenericClient, ids: &[Uuid], lock: bool) -> Result<Vec<Stored>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM executions WHERE id = ANY($1){}", if lock { " FOR UPDATE" } else { "" }),
            &[&texts],
        )
        .await?;
    let mut found = rows
        .iter()
        .map(|row| Ok(Stored { execution: store::raw_execution(row)?, owner: row.try_get(10)? }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    found.sort_by_key(|stored| ids.iter().position(|id| *id == stored.execution.id));
    Ok(found)
}

/// Executions returned by an `UPDATE … RETURNING {COLUMNS}`, in creation
/// order (`RETURNING` keeps none).
fn by_creation(rows: &[tokio_postgres::Row]) -> Result<Vec<Execution>, StoreError> {
    let mut executions = rows.iter().map(store::raw_execution).collect::<Result<Vec<_>, _>>()?;
    executions.sort_by_key(|execution| execution.created_at);
    Ok(executions)
}

/// Reads the facts of `scope` (in a transaction after the lock: everything
/// committed before the lock was granted).
async fn facts(client: &impl GenericClient, scope: &Scope, lock: bool) -> Result<Facts, StoreError> {
    let row = client
        .query_one(
            &format!(
                "SELECT {RECORD_COLUMNS}, manager_now() AS now, \
                 CASE WHEN $1 OR status <> 'deactivated' \
                   THEN (SELECT COUNT(*) FROM executions WHERE status IN {REMAINING}) ELSE 0 END AS remaining, \
                 EXISTS (SELECT 1 FROM executions WHERE status = 'pending') AS waiting \
                 FROM maintenance WHERE id = 1"
            ),
            &[&scope.count],
        )
        .await?;
    let record = store::record(&row)?;
    let now: &str = row.try_get("now")?;
    let remaining_count: i64 = row.try_get("remaining")?;
    let waiting: bool = row.try_get("waiting")?;
    let remaining = if scope.remaining {
        let rows = client
            .query(&format!("SELECT id, status FROM executions WHERE status IN {REMAINING} ORDER BY seq"), &[])
            .await?;
        rows.iter()
            .map(|row| {
                let id: &str = row.try_get(0)?;
                let status: &str = row.try_get(1)?;
                Ok((
                    parse_column("executions", "id", id, |s| Uuid::parse_str(s).ok())?,
                    parse_column("executions", "status", status, ExecutionStatus::parse)?,
                ))
            })
            .collect::<Result<_, StoreError>>()?
    } else {
        Vec::new()
    };
    Ok(Facts {
        record,
        now: parse_column("clock", "manager_now()", now, |s| s.parse::<Timestamp>().ok())?,
        remaining_count: usize::try_from(remaining_count).unwrap_or_default(),
        waiting,
        windows: if scope.windows { store::live_windows(client).await? } else { Vec::new() },
        remaining,
        window: match scope.window {
            Some(id) => store::get_window(client, id).await?,
            None => None,
        },
        executions: stored_in(client, &scope.executions, lock).await?,
    })
}

/// Writes `effects` in the caller's transaction (which holds the lock); the
/// executions first, so the history's reports see them as the change leaves them.
async fn apply(
    client: &impl GenericClient,
    replica: &str,
    facts: &Facts,
    effects: &Effects,
) -> Result<Committed, StoreError> {
    let mut committed = Committed::default();
    if let Some(execution) = &effects.insert {
        insert_execution(client, execution).await?;
        committed.pending = execution.status == ExecutionStatus::Pending;
        committed.executions.push(execution.clone());
    }
    for execution in &effects.update {
        client
            .execute(
                "UPDATE executions SET status = $2, started_at = $3, ended_at = $4, error = $5, \
                 pgid = CASE WHEN $6 THEN NULL ELSE pgid END, \
                 process_start = CASE WHEN $6 THEN NULL ELSE process_start END WHERE id = $1",
                &[
                    &execution.id.to_string(),
                    &execution.status.as_str(),
                    &execution.started_at.map(|at| at.to_string()),
                    &execution.ended_at.map(|at| at.to_string()),
                    &execution.error,
                    // Its processes are gone: nothing for a start after a crash to kill.
                    &execution.status.is_end(),
                ],
            )
            .await?;
        committed.pending |= execution.status == ExecutionStatus::Pending;
        committed.executions.push(execution.clone());
    }
    if let Some(change) = &effects.change {
        committed.executions.extend(stop(client, facts.now, change).await?);
        save_change(client, change).await?;
    }
    if effects.release_queued {
        let rows = client
            .query(
                &format!("UPDATE executions SET status = 'pending' WHERE status = 'queued' RETURNING {COLUMNS}"),
                &[],
            )
            .await?;
        let released = by_creation(&rows)?;
        committed.pending |= !released.is_empty();
        committed.executions.extend(released);
    }
    notify_executions(client, replica, &committed.executions).await?;
    if effects.bump {
        committed.status = Some(bump(client).await?);
    }
    Ok(committed)
}

/// The executions the drain deadline of `change` stops, in one statement
/// each: running ones become `cancelling` / `force_cancelling` (their
/// replicas hear it), pending ones end `cancelled` at once.
async fn stop(client: &impl GenericClient, now: Timestamp, change: &Change) -> Result<Vec<Execution>, StoreError> {
    let mut stopped = Vec::new();
    for (ids, status) in [(&change.cancel, "cancelling"), (&change.force_cancel, "force_cancelling")] {
        if ids.is_empty() {
            continue;
        }
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = client
            .query(
                &format!(
                    "UPDATE executions SET \
                       status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE $1 END, \
                       ended_at = CASE WHEN status = 'pending' THEN $2 ELSE ended_at END, \
                       error = CASE WHEN status = 'pending' THEN 'Cancelled by the drain deadline before it started.' \
                         ELSE error END \
                     WHERE id = ANY($3) AND status IN {REMAINING} RETURNING {COLUMNS}"
                ),
                &[&status, &now.to_string(), &ids],
            )
            .await?;
        stopped.extend(by_creation(&rows)?);
    }
    Ok(stopped)
}

/// Tells every replica that `executions` changed (delivered at commit), in one notification.
async fn notify_executions(
    client: &impl GenericClient,
    replica: &str,
    executions: &[Execution],
) -> Result<(), StoreError> {
    if executions.is_empty() {
        return Ok(());
    }
    let payload = if executions.len() > LISTED_IDS {
        format!("{replica} *")
    } else {
        let ids: Vec<String> = executions.iter().map(|execution| execution.id.to_string()).collect();
        format!("{replica} {}", ids.join(","))
    };
    client.execute("SELECT pg_notify($1, $2)", &[&EXECUTIONS_CHANNEL, &payload]).await?;
    Ok(())
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
                id: parse_column("executions", "id", id, |s| Uuid::parse_str(s).ok())?,
                status: parse_column("executions", "status", status, ExecutionStatus::parse)?,
                deployment_id: row.try_get(2)?,
                workflow_id: row.try_get(3)?,
            })
        })
        .collect()
}

/// The status object and its epoch, as `client` sees them.
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
    Ok((u64::try_from(epoch).unwrap_or_default(), record.status(&remaining, upcoming)))
}

/// Raises the epoch, reads the status as this transaction leaves it and
/// notifies every replica (delivered at commit).
async fn bump(client: &impl GenericClient) -> Result<(u64, MaintenanceStatus), StoreError> {
    client.execute("UPDATE maintenance SET epoch = epoch + 1 WHERE id = 1", &[]).await?;
    let (epoch, status) = read_status(client).await?;
    client.execute("SELECT pg_notify($1, $2)", &[&STATE_CHANNEL, &epoch.to_string()]).await?;
    Ok((epoch, status))
}

/// Writes the maintenance row, history rows and windows of `change`.
async fn save_change(client: &impl GenericClient, change: &Change) -> Result<(), StoreError> {
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
    if !change.transitions.is_empty() {
        let reports =
            outbox::reports(change, &remaining_executions(client).await?, &store::live_windows(client).await?);
        let mut columns: [Vec<Option<String>>; 10] = Default::default();
        for (transition, report) in change.transitions.iter().zip(reports) {
            let values = [
                Some(transition.at.to_string()),
                Some(transition.from.as_str().to_owned()),
                Some(transition.to.as_str().to_owned()),
                Some(transition.requested_by.clone()),
                Some(transition.reason.clone()),
                Some(transition.event.as_str().to_owned()),
                transition.window_id.map(|id| id.to_string()),
                Some(transition.detail.clone()),
                Some(report.status),
                report.window,
            ];
            for (column, value) in columns.iter_mut().zip(values) {
                column.push(value);
            }
        }
        let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(|column| column as &(dyn ToSql + Sync)).collect();
        // One statement for all of them, in order (`seq` is commit order: the lock is exclusive).
        client
            .execute(
                "INSERT INTO maintenance_history (at, from_status, to_status, requested_by, reason, event, \
                 window_id, detail, status_after, window_after) \
                 SELECT a, f, t, r, why, e, w, d, s, wa FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                   $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) \
                   WITH ORDINALITY AS rows (a, f, t, r, why, e, w, d, s, wa, n) ORDER BY n",
                &params,
            )
            .await?;
    }
    for window in &change.windows {
        store::save_window(client, window).await?;
    }
    Ok(())
}

/// Inserts a new execution (owned by `owner` when it runs).
async fn insert_execution(client: &impl GenericClient, execution: &Execution) -> Result<(), StoreError> {
    let owner = (!execution.replica.is_empty()).then_some(execution.replica.as_str());
    client
        .execute(
            &format!("INSERT INTO executions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"),
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

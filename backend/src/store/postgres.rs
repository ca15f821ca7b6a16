//! The PostgreSQL store (SPEC §8): several replicas share one database.
//!
//! The same tables and text as the SQLite store (`migrations/postgres/`), so
//! the row parsers are shared. Connections come from a pool; every call is
//! bounded in time, and a database that cannot be reached is
//! [`StoreError::Unavailable`] (503 `database_unavailable`), never a hang.
//! The engine's transactions (admission, transitions) are in
//! `store/ledger/postgres.rs`; this module has the schema, the reads, users
//! and tokens, and output.

mod webhooks;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use shared::execution::ExecutionEvent;
use shared::{Execution, MaintenanceTransition, Role, Timestamp, Window};
use tokio_postgres::{GenericClient, NoTls, Row};
use uuid::Uuid;

use super::events::RawEvent;
use super::executions::{Listing, RawExecution};
use super::maintenance::{history_row, parse_time, MaintenanceRecord, RawRecord, HISTORY_COLUMNS};
use super::users::{TokenRecord, UserRecord};
use super::windows::{stored_seconds, RawWindow, COLUMNS as WINDOW_COLUMNS};
use super::{parse_column, StoreError};

/// The schema, in order; each runs once, in a transaction of its own.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_schema.sql"),
    include_str!("../../migrations/postgres/0002_windows.sql"),
    include_str!("../../migrations/postgres/0003_webhooks.sql"),
    include_str!("../../migrations/postgres/0004_replica_instances.sql"),
];
/// The advisory lock replicas take to migrate one at a time.
const MIGRATION_LOCK: i64 = 0x6d61_696e_7465_6e61; // "maintena"
/// The notification channel of stored output; the payload is
/// `<execution id> <number of the next line>`.
pub const OUTPUT_CHANNEL: &str = "manager_output";
/// How long a connection may take to open, and a pooled one to be checked.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a call may wait for a free pooled connection (a burst of
/// requests queues here; past it: 503 `overloaded`).
const POOL_WAIT: Duration = Duration::from_secs(8);
/// The longest a whole call may take, waiting included (then 503).
pub const CALL_BOUND: Duration = Duration::from_secs(12);
/// How long one statement may run on the server (then it is cancelled there:
/// its caller gives up at [`CALL_BOUND`]).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the server waits for the decision lock (then 503 `overloaded`).
const LOCK_TIMEOUT: Duration = Duration::from_secs(8);
/// How long the server keeps a session idle inside a transaction.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(10);

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    config: std::sync::Arc<tokio_postgres::Config>,
    /// At most this many calls wait for a connection; more are refused at
    /// once as busy (`--queue-capacity`, as SQLite's threads' queues).
    capacity: usize,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").field("dbname", &self.config.get_dbname()).finish_non_exhaustive()
    }
}

impl Pg {
    /// A pool of at most `size` connections to the database at `url` (a
    /// libpq URL or key-value string), with at most `capacity` calls waiting
    /// for one; nothing is connected yet.
    pub fn new(url: &str, size: usize, capacity: usize) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|error| StoreError::Config(format!("--database: {error}")))?;
        config.connect_timeout(CALL_TIMEOUT);
        // A peer that vanished without closing is noticed (keepalives), and
        // the server ends a session that holds a transaction open while its
        // replica hangs (so one frozen replica cannot hold every other's
        // decisions), and a lock wait ends in bounded time.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(5));
        config.keepalives_interval(Duration::from_secs(2));
        config.keepalives_retries(3);
        // Nothing runs on the server after its caller gave up: every
        // statement ends within the call's bound.
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={} -c lock_timeout={} -c statement_timeout={}",
            config.get_options().unwrap_or_default(),
            IDLE_IN_TRANSACTION.as_millis(),
            LOCK_TIMEOUT.as_millis(),
            STATEMENT_TIMEOUT.as_millis()
        );
        config.options(options.trim());
        if config.get_application_name().is_none() {
            config.application_name("manager");
        }
        let manager =
            // Verified: a connection whose call timed out is checked before it is used again.
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Verified });
        let timeouts = Timeouts { wait: Some(POOL_WAIT), create: Some(CALL_TIMEOUT), recycle: Some(CALL_TIMEOUT) };
        let pool = Pool::builder(manager)
            .max_size(size.max(2))
            .runtime(Runtime::Tokio1)
            .timeouts(timeouts)
            .build()
            .map_err(|error| StoreError::Config(error.to_string()))?;
        Ok(Self { pool, config: std::sync::Arc::new(config), capacity: capacity.max(1) })
    }

    /// Brings the schema up to date: the first replica to take the lock
    /// migrates, the others wait for it and find nothing left to do.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        // Replicas starting together wait for the first one's migration.
        client.batch_execute("SET lock_timeout = 0; SET statement_timeout = 0").await?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
        let migrated = async {
            client.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY)").await?;
            let done: i32 =
                client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
            for (index, sql) in MIGRATIONS.iter().enumerate() {
                let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
                if version <= done {
                    continue;
                }
                let tx = client.transaction().await?;
                tx.batch_execute(sql).await?;
                tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&version]).await?;
                tx.commit().await?;
                tracing::info!(version, "migrated the PostgreSQL schema");
            }
            Ok::<_, StoreError>(())
        }
        .await;
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
        client.batch_execute("RESET lock_timeout; RESET statement_timeout").await?;
        migrated
    }

    /// A connection from the pool, within [`CALL_TIMEOUT`].
    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        // (deadpool's wrapper derefs to `tokio_postgres::Client`.)
        if self.pool.status().waiting >= self.capacity {
            return Err(StoreError::Busy);
        }
        self.pool.get().await.map_err(|error| match error {
            // Every connection is busy: the database answers, this replica has too much to do.
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => StoreError::Busy,
            other => StoreError::Unavailable(other.to_string()),
        })
    }

    /// The connection settings (the listener opens a connection of its own).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// Runs `call` on a pooled connection, bounded by [`CALL_TIMEOUT`].
    pub async fn with<R>(
        &self,
        call: impl AsyncFnOnce(&mut tokio_postgres::Client) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        bounded(async {
            let mut client = self.client().await?;
            call(&mut client).await
        })
        .await
    }

    /// One execution by id.
    pub async fn execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        self.with(async |client| execution(&*client, id).await).await
    }

    /// A page of executions as `listing` asks, and how many match in all,
    /// from one snapshot.
    pub async fn executions(&self, listing: Listing) -> Result<(Vec<Execution>, u64), StoreError> {
        let offset = i64::try_from(listing.offset).unwrap_or(i64::MAX);
        let size = i64::from(listing.size);
        let order = listing.order_by();
        self.with(async |client| {
            let tx = snapshot(client).await?;
            let (total, rows) = match &listing.deployment_id {
                None => {
                    let total: i64 = tx.query_one("SELECT COUNT(*) FROM executions", &[]).await?.get(0);
                    let sql = format!("SELECT {COLUMNS} FROM executions ORDER BY {order} LIMIT $1 OFFSET $2");
                    (total, tx.query(&sql, &[&size, &offset]).await?)
                }
                Some(deployment) => {
                    let total: i64 = tx
                        .query_one("SELECT COUNT(*) FROM executions WHERE deployment_id = $1", &[deployment])
                        .await?
                        .get(0);
                    let sql = format!(
                        "SELECT {COLUMNS} FROM executions WHERE deployment_id = $3 ORDER BY {order} LIMIT $1 OFFSET $2"
                    );
                    (total, tx.query(&sql, &[&size, &offset, deployment]).await?)
                }
            };
            tx.commit().await?;
            let items = rows.iter().map(raw_execution).collect::<Result<_, _>>()?;
            Ok((items, u64::try_from(total).unwrap_or_default()))
        })
        .await
    }

    /// A page of transitions, newest first, and how many there are in all.
    pub async fn history(&self, size: u32, offset: u64) -> Result<(Vec<MaintenanceTransition>, u64), StoreError> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.with(async |client| {
            let tx = snapshot(client).await?;
            let total: i64 = tx.query_one("SELECT COUNT(*) FROM maintenance_history", &[]).await?.get(0);
            let rows = tx
                .query(
                    &format!("SELECT {HISTORY_COLUMNS} FROM maintenance_history ORDER BY seq DESC LIMIT $1 OFFSET $2"),
                    &[&i64::from(size), &offset],
                )
                .await?;
            tx.commit().await?;
            let items = rows
                .iter()
                .map(|row| {
                    history_row(
                        row.try_get(0)?,
                        row.try_get(1)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                        row.try_get(4)?,
                        row.try_get(5)?,
                        row.try_get(6)?,
                        row.try_get(7)?,
                    )
                })
                .collect::<Result<_, StoreError>>()?;
            Ok((items, u64::try_from(total).unwrap_or_default()))
        })
        .await
    }

    /// How many executions there are in each status.
    pub async fn execution_counts(&self) -> Result<Vec<(shared::ExecutionStatus, u64)>, StoreError> {
        self.with(async |client| {
            let rows = client.query("SELECT status, COUNT(*) FROM executions GROUP BY status", &[]).await?;
            rows.iter()
                .map(|row| {
                    let status: &str = row.try_get(0)?;
                    let count: i64 = row.try_get(1)?;
                    Ok((
                        parse_column("executions", "status", status, shared::ExecutionStatus::parse)?,
                        u64::try_from(count).unwrap_or_default(),
                    ))
                })
                .collect()
        })
        .await
    }

    /// A page of windows, latest start first, and how many there are in all.
    pub async fn windows(&self, size: u32, offset: u64) -> Result<(Vec<Window>, u64), StoreError> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        self.with(async |client| {
            let tx = snapshot(client).await?;
            let total: i64 = tx.query_one("SELECT COUNT(*) FROM windows", &[]).await?.get(0);
            let rows = tx
                .query(
                    &format!(
                        "SELECT {WINDOW_COLUMNS} FROM windows ORDER BY starts_at DESC, seq DESC LIMIT $1 OFFSET $2"
                    ),
                    &[&i64::from(size), &offset],
                )
                .await?;
            tx.commit().await?;
            let items = rows.iter().map(window).collect::<Result<_, StoreError>>()?;
            Ok((items, u64::try_from(total).unwrap_or_default()))
        })
        .await
    }

    /// Output lines of execution `id` from number `from` on, at most `limit`.
    pub async fn output_from(&self, id: Uuid, from: u64, limit: u32) -> Result<Vec<(u64, ExecutionEvent)>, StoreError> {
        self.with(async |client| output_from(&*client, id, from, limit).await).await
    }

    /// A page of execution `id`'s output lines and how many it has, from one
    /// snapshot; `None` if there is no such execution.
    pub async fn output_page(
        &self,
        id: Uuid,
        offset: u64,
        size: u32,
    ) -> Result<Option<(Vec<ExecutionEvent>, u64)>, StoreError> {
        self.with(async |client| {
            let tx = snapshot(client).await?;
            if execution(&tx, id).await?.is_none() {
                return Ok(None);
            }
            let total: i64 = tx
                .query_one("SELECT COUNT(*) FROM execution_events WHERE execution_id = $1", &[&id.to_string()])
                .await?
                .get(0);
            let lines = output_from(&tx, id, offset, size).await?.into_iter().map(|(_, line)| line).collect();
            tx.commit().await?;
            Ok(Some((lines, u64::try_from(total).unwrap_or_default())))
        })
        .await
    }

    /// How many output lines execution `id` has.
    pub async fn output_count(&self, id: Uuid) -> Result<u64, StoreError> {
        self.with(async |client| {
            let count: i64 = client
                .query_one("SELECT COUNT(*) FROM execution_events WHERE execution_id = $1", &[&id.to_string()])
                .await?
                .get(0);
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }

    /// Stores output lines `first`, `first + 1`, … of execution `id`.
    pub async fn append_output(&self, id: Uuid, first: u64, events: &[ExecutionEvent]) -> Result<(), StoreError> {
        self.with(async |client| append_output(&*client, id, first, events).await).await
    }

    /// How many users there are.
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        self.with(async |client| {
            let count: i64 = client.query_one("SELECT COUNT(*) FROM users", &[]).await?.get(0);
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }

    /// Adds a user; `false` if the name is taken.
    pub async fn insert_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        self.with(async |client| {
            let added = client
                .execute(
                    "INSERT INTO users (username, role, password_hash, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (username) DO NOTHING",
                    &[&user.username, &user.role.as_str(), &user.password_hash, &user.created_at.to_string()],
                )
                .await?;
            Ok(added == 1)
        })
        .await
    }

    /// One user by name.
    pub async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.with(async |client| {
            let row = client
                .query_opt(
                    "SELECT username, role, password_hash, created_at FROM users WHERE username = $1",
                    &[&username],
                )
                .await?;
            row.as_ref().map(user).transpose()
        })
        .await
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.with(async |client| {
            let rows = client
                .query("SELECT username, role, password_hash, created_at FROM users ORDER BY username", &[])
                .await?;
            rows.iter().map(user).collect()
        })
        .await
    }

    /// Removes a user and their tokens; `false` if there was none.
    pub async fn remove_user(&self, username: &str) -> Result<bool, StoreError> {
        self.with(async |client| Ok(client.execute("DELETE FROM users WHERE username = $1", &[&username]).await? == 1))
            .await
    }

    /// Sets a new password hash and revokes every token of the user; `false`
    /// if there is no such user.
    pub async fn set_password(&self, username: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.with(async |client| {
            let tx = client.transaction().await?;
            let changed = tx
                .execute("UPDATE users SET password_hash = $2 WHERE username = $1", &[&username, &password_hash])
                .await?;
            tx.execute(
                "UPDATE tokens SET revoked_at = manager_now() WHERE username = $1 AND revoked_at IS NULL",
                &[&username],
            )
            .await?;
            tx.commit().await?;
            Ok(changed == 1)
        })
        .await
    }

    /// Stores a new token with the digest of its secret.
    pub async fn insert_token(
        &self,
        id: Uuid,
        digest: &str,
        username: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.with(async |client| {
            client
                .execute(
                    "INSERT INTO tokens (id, digest, username, created_at, expires_at) \
                     VALUES ($1, $2, $3, manager_now(), $4)",
                    &[&id.to_string(), &digest, &username, &expires_at.to_string()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// The token with this id and the digest of its secret.
    pub async fn token_digest(&self, id: Uuid) -> Result<Option<(TokenRecord, String)>, StoreError> {
        self.with(async |client| {
            let row = client
                .query_opt(
                    "SELECT tokens.username, users.role, tokens.expires_at, tokens.revoked_at, tokens.digest \
                     FROM tokens JOIN users ON users.username = tokens.username WHERE tokens.id = $1",
                    &[&id.to_string()],
                )
                .await?;
            row.map(|row| {
                let role: &str = row.try_get(1)?;
                let expires_at: &str = row.try_get(2)?;
                let record = TokenRecord {
                    id,
                    username: row.try_get(0)?,
                    role: parse_column("users", "role", role, Role::parse)?,
                    expires_at: parse_column("tokens", "expires_at", expires_at, |s| s.parse().ok())?,
                    revoked_at: parse_time("tokens", row.try_get(3)?)?,
                };
                Ok((record, row.try_get(4)?))
            })
            .transpose()
        })
        .await
    }

    /// The credential-change counter.
    pub async fn credential_changes(&self) -> Result<i64, StoreError> {
        self.with(async |client| {
            Ok(client.query_one("SELECT n FROM credential_changes WHERE id = 1", &[]).await?.get(0))
        })
        .await
    }

    /// Revokes a token; `false` if there is no such token or it was already revoked.
    pub async fn revoke_token(&self, id: Uuid) -> Result<bool, StoreError> {
        self.with(async |client| {
            let changed = client
                .execute(
                    "UPDATE tokens SET revoked_at = manager_now() WHERE id = $1 AND revoked_at IS NULL",
                    &[&id.to_string()],
                )
                .await?;
            Ok(changed == 1)
        })
        .await
    }
}

/// Bounds a database call in time: past [`CALL_BOUND`] it is
/// [`StoreError::Unavailable`].
pub async fn bounded<R>(call: impl Future<Output = Result<R, StoreError>>) -> Result<R, StoreError> {
    match tokio::time::timeout(CALL_BOUND, call).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(format!("no answer within {CALL_BOUND:?}"))),
    }
}

/// A read-only transaction that sees one snapshot (a page and its total agree).
pub(crate) async fn snapshot(
    client: &mut tokio_postgres::Client,
) -> Result<tokio_postgres::Transaction<'_>, StoreError> {
    Ok(client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// The database clock, as our timestamp text.
pub async fn now(client: &impl GenericClient) -> Result<Timestamp, StoreError> {
    let text: String = client.query_one("SELECT manager_now()", &[]).await?.get(0);
    parse_column("clock", "manager_now()", &text, |s| s.parse().ok())
}

/// One execution by id.
pub async fn execution(client: &impl GenericClient, id: Uuid) -> Result<Option<Execution>, StoreError> {
    let row = client.query_opt(&format!("SELECT {COLUMNS} FROM executions WHERE id = $1"), &[&id.to_string()]).await?;
    row.as_ref().map(raw_execution).transpose()
}

/// Output lines of execution `id` from number `from` on, at most `limit`.
pub async fn output_from(
    client: &impl GenericClient,
    id: Uuid,
    from: u64,
    limit: u32,
) -> Result<Vec<(u64, ExecutionEvent)>, StoreError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let rows = client
        .query(
            "SELECT seq, at, stream, line FROM execution_events WHERE execution_id = $1 AND seq >= $2 \
             ORDER BY seq LIMIT $3",
            &[&id.to_string(), &from, &i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|row| RawEvent(row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?).parse())
        .collect()
}

/// Stores output lines (in the caller's transaction, or on their own).
pub async fn append_output(
    client: &impl GenericClient,
    id: Uuid,
    first: u64,
    events: &[ExecutionEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let first = i64::try_from(first).unwrap_or(i64::MAX);
    let (ats, streams, lines): (Vec<String>, Vec<&str>, Vec<&str>) = events
        .iter()
        .map(|event| (event.at.to_string(), event.stream.as_str(), event.line.as_str()))
        .fold((Vec::new(), Vec::new(), Vec::new()), |(mut ats, mut streams, mut lines), (at, stream, line)| {
            ats.push(at);
            streams.push(stream);
            lines.push(line);
            (ats, streams, lines)
        });
    // One statement for the whole batch. A retry of a batch whose commit
    // went through (its reply lost) stores nothing twice and succeeds.
    client
        .execute(
            "INSERT INTO execution_events (execution_id, seq, at, stream, line) \
             SELECT $1, $2 + n - 1, at, stream, line \
             FROM unnest($3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS batch (at, stream, line, n) \
             ON CONFLICT (execution_id, seq) DO NOTHING",
            &[&id.to_string(), &first, &ats, &streams, &lines],
        )
        .await?;
    // Streams of this execution on other replicas catch up from the store
    // (delivered at commit: after the lines can be read).
    let end = first.saturating_add(i64::try_from(events.len()).unwrap_or(i64::MAX));
    client.execute("SELECT pg_notify($1, $2)", &[&OUTPUT_CHANNEL, &format!("{id} {end}")]).await?;
    Ok(())
}

/// An execution's columns on PostgreSQL, in [`raw_execution`]'s order: SQLite's,
/// with the replica running it in `owner`.
pub const COLUMNS: &str =
    "id, workflow_id, deployment_id, status, parameters, created_at, started_at, ended_at, created_by, error, owner";

/// An execution row in [`COLUMNS`] order.
pub fn raw_execution(row: &Row) -> Result<Execution, StoreError> {
    let mut columns: [Option<String>; 11] = Default::default();
    for (index, column) in columns.iter_mut().enumerate() {
        *column = row.try_get(index)?;
    }
    RawExecution(columns).parse()
}

/// The maintenance row (without its epoch).
pub fn record(row: &Row) -> Result<MaintenanceRecord, StoreError> {
    RawRecord {
        status: row.try_get("status")?,
        requested_by: row.try_get("requested_by")?,
        activation_requested_at: row.try_get("activation_requested_at")?,
        activated_at: row.try_get("activated_at")?,
        reason: row.try_get("reason")?,
        mode: row.try_get("mode")?,
        drain_deadline_at: row.try_get("drain_deadline_at")?,
        drain_stage: i64::from(row.try_get::<_, i32>("drain_stage")?),
        drain_force_at: row.try_get("drain_force_at")?,
        window_id: row.try_get("window_id")?,
        upcoming_id: row.try_get("upcoming_id")?,
    }
    .parse()
}

/// A window row (columns as [`WINDOW_COLUMNS`]).
pub fn window(row: &Row) -> Result<Window, StoreError> {
    RawWindow {
        id: row.try_get(0)?,
        state: row.try_get(1)?,
        starts_at: row.try_get(2)?,
        ends_at: row.try_get(3)?,
        reason: row.try_get(4)?,
        notice_seconds: row.try_get(5)?,
        drain_deadline_seconds: row.try_get(6)?,
        mode: row.try_get(7)?,
        created_by: row.try_get(8)?,
        created_at: row.try_get(9)?,
        ended_at: row.try_get(10)?,
    }
    .parse()
}

/// Inserts `window`, or writes what changes over its life.
pub async fn save_window(client: &impl GenericClient, window: &Window) -> Result<(), StoreError> {
    client
        .execute(
            &format!(
                "INSERT INTO windows ({WINDOW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, ends_at = excluded.ends_at, \
                 ended_at = excluded.ended_at"
            ),
            &[
                &window.id.to_string(),
                &window.state.as_str(),
                &window.starts_at.to_string(),
                &window.ends_at.map(|at| at.to_string()),
                &window.reason,
                &stored_seconds(window.notice_seconds),
                &window.drain_deadline_seconds.map(stored_seconds),
                &window.mode.as_str(),
                &window.created_by,
                &window.created_at.to_string(),
                &window.ended_at.map(|at| at.to_string()),
            ],
        )
        .await?;
    Ok(())
}

/// Window `id`, whatever its state.
pub async fn get_window(client: &impl GenericClient, id: Uuid) -> Result<Option<Window>, StoreError> {
    let row =
        client.query_opt(&format!("SELECT {WINDOW_COLUMNS} FROM windows WHERE id = $1"), &[&id.to_string()]).await?;
    row.as_ref().map(window).transpose()
}

/// The windows scheduled or active, by start.
pub async fn live_windows(client: &impl GenericClient) -> Result<Vec<Window>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {WINDOW_COLUMNS} FROM windows WHERE state IN ('scheduled', 'active') ORDER BY starts_at, seq"
            ),
            &[],
        )
        .await?;
    rows.iter().map(window).collect()
}

fn user(row: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        username: row.try_get(0)?,
        role: parse_column("users", "role", row.try_get(1)?, Role::parse)?,
        password_hash: row.try_get(2)?,
        created_at: parse_column("users", "created_at", row.try_get(3)?, |s| s.parse().ok())?,
    })
}

/// Whether `error` is a wait that ran out (the decision lock, a cancelled
/// statement): the database answers, it is too busy (503 `overloaded`).
pub fn is_busy(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| matches!(db.code().code(), "55P03" | "57014"))
}

/// Whether `code` says the database cannot hold some text it was given: a
/// character the database's encoding lacks (22P05), or one no text may hold
/// (22021: U+0000, which the manager replaces or refuses before it gets here).
pub fn is_unstorable(code: &tokio_postgres::error::SqlState) -> bool {
    matches!(code.code(), "22021" | "22P05")
}

/// Whether `error` means the database could not be reached (rather than
/// refusing a statement): no connection, a closed one, or the server
/// shutting down or starting up.
pub fn is_unavailable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    if let Some(db) = error.as_db_error() {
        let code = db.code().code();
        // Connection exceptions, the server going down, a session it ended.
        return code.starts_with("08") || code.starts_with("57P") || code == "25P03";
    }
    // Not the server's answer: a socket that failed, or a connection that
    // could not be made or timed out (a value that does not convert is ours).
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    let text = error.to_string();
    text.starts_with("error connecting to server") || text.starts_with("timeout")
}

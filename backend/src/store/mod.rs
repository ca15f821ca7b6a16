//! The embedded SQLite store: one file `manager.db` in the data dir.
//!
//! The engine owns the one writing connection (so every write is serialized
//! with the state machine); reads of lists and single executions go through a
//! second connection, which WAL lets run beside the writer.

pub mod events;
pub mod executions;
pub mod ledger;
pub mod maintenance;
pub mod postgres;
pub mod users;
pub mod webhooks;
pub mod windows;

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};
use shared::execution::ExecutionEvent;
use shared::{Execution, MaintenanceTransition, Timestamp};
use uuid::Uuid;

use crate::worker::{Worker, WorkerError};

/// The database file's name inside the data dir.
pub const DB_FILE: &str = "manager.db";

static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_maintenance_and_executions.sql")),
        M::up(include_str!("../../migrations/0002_users_and_tokens.sql")),
        M::up(include_str!("../../migrations/0003_row_counts.sql")),
        M::up(include_str!("../../migrations/0004_epoch.sql")),
        M::up(include_str!("../../migrations/0005_credential_changes.sql")),
        M::up(include_str!("../../migrations/0006_executions_by_deployment.sql")),
        M::up(include_str!("../../migrations/0007_workflow_processes.sql")),
        M::up(include_str!("../../migrations/0008_windows.sql")),
        M::up(include_str!("../../migrations/0009_webhooks.sql")),
        M::up(include_str!("../../migrations/0010_execution_replica.sql")),
    ])
});

/// A failure of the store; shown to clients only as a 500 without details.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {source}")]
    DataDir {
        /// The dir.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite said no.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The first admin could not be created.
    #[error("cannot create the first admin: {0}")]
    Bootstrap(String),
    /// The thread that runs a connection's queries could not be started.
    #[error("cannot start a database thread: {0}")]
    Thread(#[source] std::io::Error),
    /// A query's job panicked on its database thread (logged).
    #[error(transparent)]
    Task(#[from] WorkerError),
    /// The database cannot be reached (503 `database_unavailable`, retry later).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Every pooled connection stayed busy for the whole wait (503 `overloaded`).
    #[error("every database connection is busy")]
    Busy,
    /// PostgreSQL refused a statement.
    #[error("database error: {0}")]
    Postgres(String),
    /// The database cannot hold some text it was given: a character its
    /// encoding lacks (PostgreSQL's SQLSTATE 22021 or 22P05). Retrying the
    /// same text fails the same way; output lines are replaced by a marker.
    #[error("the database cannot store this text: {0}")]
    Unstorable(String),
    /// The database settings are wrong (e.g. a malformed `--database` URL).
    #[error("{0}")]
    Config(String),
    /// A row holds something this version cannot read (a newer or damaged database).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Which table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        if postgres::is_unavailable(&error) {
            Self::Unavailable(error.to_string())
        } else if postgres::is_busy(&error) {
            Self::Busy
        } else if let Some(db) = error.as_db_error().filter(|db| postgres::is_unstorable(db.code())) {
            Self::Unstorable(format!("{}: {}", db.code().code(), db.message()))
        } else {
            // The server's message and detail, not just "db error".
            Self::Postgres(match error.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => error.to_string(),
            })
        }
    }
}

/// Opens (creating if needed) the database in `data_dir` and migrates it.
/// Call once per process before [`open_reader`].
pub fn open_writer(data_dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir { path: data_dir.to_owned(), source })?;
    let mut conn = open(data_dir)?;
    // WAL lets readers run beside the writer; FULL makes every acknowledged
    // commit survive a crash of the process and of the machine.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    MIGRATIONS.to_latest(&mut conn)?;
    Ok(conn)
}

/// Opens the connection programs' output is stored on. Its commits are not
/// synced to disk one by one (WAL with `synchronous=NORMAL`): a crash of the
/// process loses nothing, a power cut may lose the last lines, and a chatty
/// workflow costs a write, not an fsync, per batch. Changes that are
/// acknowledged (state, executions, users) stay on FULL connections.
pub fn open_output(data_dir: &Path) -> Result<Connection, StoreError> {
    let conn = open(data_dir)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Opens a second connection to an already migrated database, for reads.
pub fn open_reader(data_dir: &Path) -> Result<Connection, StoreError> {
    open(data_dir)
}

fn open(data_dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(data_dir.join(DB_FILE))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// A connection shared by request handlers (reads of lists and history;
/// users and tokens); its queries run one at a time on a thread of its own
/// (named `name`) so SQLite never stalls the async runtime.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    worker: Worker,
}

impl Db {
    /// Wraps a connection from [`open_reader`] and starts its thread, with
    /// room for `capacity` waiting queries.
    pub fn new(conn: Connection, name: &'static str, capacity: usize) -> Result<Self, StoreError> {
        let worker = Worker::spawn(name, capacity).map_err(StoreError::Thread)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), worker })
    }

    /// Runs `read` (which may also write users and tokens) against the database.
    pub async fn read<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = Arc::clone(&self.conn);
        self.worker.run(move || read(&conn.lock().unwrap_or_else(PoisonError::into_inner))).await?
    }

    /// Runs `write` against the database (the same thread and queue as reads).
    pub async fn write<R: Send + 'static>(
        &self,
        write: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.read(write).await
    }
}

/// Where handlers, auth and output read and write: the embedded SQLite
/// database (a connection of this role's own, on a thread of its own) or a
/// pool of connections to the PostgreSQL database several replicas share.
/// The same calls, the same answers, whichever it is.
#[derive(Clone)]
pub enum Store {
    /// The embedded default.
    Sqlite(Db),
    /// Several replicas (SPEC §8).
    Postgres(postgres::Pg),
}

impl Store {
    /// Adds a cursor after the newest event for each of `urls` that has none
    /// (on PostgreSQL, `replica` lets go of any other URL it held).
    pub async fn webhook_register(&self, urls: Vec<String>, replica: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| webhooks::register(conn, &urls)).await,
            Self::Postgres(pg) => pg.webhook_register(&urls, replica).await,
        }
    }

    /// Whether this process delivers to `url` now, its cursor and next event
    /// (on PostgreSQL: claimed or renewed for `replica` for `claim`, unless
    /// another replica's claim runs).
    pub async fn webhook_claim(
        &self,
        url: String,
        replica: &str,
        claim: std::time::Duration,
    ) -> Result<webhooks::Claim, StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| webhooks::claim(conn, &url)).await,
            Self::Postgres(pg) => pg.webhook_claim(&url, replica, claim).await,
        }
    }

    /// Renews `replica`'s claim on `url` while a post is in flight; `false`
    /// if it lost it (the post is then abandoned). Always held on SQLite.
    pub async fn webhook_renew(
        &self,
        url: String,
        replica: &str,
        claim: std::time::Duration,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(_) => Ok(true),
            Self::Postgres(pg) => pg.webhook_renew(&url, replica, claim).await,
        }
    }

    /// Records a failed attempt at event `seq` of `url`; `false` if this process no longer delivers it.
    pub async fn webhook_attempt_failed(
        &self,
        url: String,
        replica: &str,
        seq: u64,
        attempts: u32,
        next_attempt_at: Timestamp,
        error: String,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(db) => {
                db.write(move |conn| webhooks::attempt_failed(conn, &url, seq, attempts, next_attempt_at, &error)).await
            }
            Self::Postgres(pg) => {
                pg.webhook_attempt_failed(&url, replica, seq, attempts, next_attempt_at, &error).await
            }
        }
    }

    /// Records an event of `url` delivered or given up and moves its cursor
    /// past it; `false` if the cursor had moved or this process no longer delivers it.
    pub async fn webhook_finish(
        &self,
        url: String,
        replica: &str,
        delivery: shared::WebhookDelivery,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| webhooks::finish(conn, &url, &delivery)).await,
            Self::Postgres(pg) => pg.webhook_finish(&url, replica, &delivery).await,
        }
    }

    /// Gives `url` up (a graceful stop), so another replica delivers it at once.
    pub async fn webhook_release(&self, url: String, replica: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(_) => Ok(()),
            Self::Postgres(pg) => pg.webhook_release(&url, replica).await,
        }
    }

    /// Each of `urls`' (stored as the first of each pair, shown as the
    /// second) deliveries, and the newest event's id.
    pub async fn webhook_report(
        &self,
        urls: Vec<(String, String)>,
    ) -> Result<(u64, Vec<shared::WebhookView>), StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| webhooks::report(conn, &urls)).await,
            Self::Postgres(pg) => pg.webhook_report(&urls).await,
        }
    }

    /// One execution by id.
    pub async fn execution(&self, id: Uuid) -> Result<Option<Execution>, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| executions::get(conn, id)).await,
            Self::Postgres(pg) => pg.execution(id).await,
        }
    }

    /// A page of executions as `listing` asks, and how many match in all.
    pub async fn executions(&self, listing: executions::Listing) -> Result<(Vec<Execution>, u64), StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| executions::list(conn, &listing)).await,
            Self::Postgres(pg) => pg.executions(listing).await,
        }
    }

    /// A page of maintenance transitions, newest first, and how many there are.
    pub async fn history(&self, size: u32, offset: u64) -> Result<(Vec<MaintenanceTransition>, u64), StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| maintenance::history(conn, size, offset)).await,
            Self::Postgres(pg) => pg.history(size, offset).await,
        }
    }

    /// How many executions there are in each status.
    pub async fn execution_counts(&self) -> Result<Vec<(shared::ExecutionStatus, u64)>, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(executions::counts).await,
            Self::Postgres(pg) => pg.execution_counts().await,
        }
    }

    /// A page of maintenance windows, latest start first, and how many there are.
    pub async fn windows(&self, size: u32, offset: u64) -> Result<(Vec<shared::Window>, u64), StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| windows::page(conn, size, offset)).await,
            Self::Postgres(pg) => pg.windows(size, offset).await,
        }
    }

    /// Output lines of execution `id` from number `from` on, at most `limit`, with their numbers.
    pub async fn output_from(&self, id: Uuid, from: u64, limit: u32) -> Result<Vec<(u64, ExecutionEvent)>, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| events::from(conn, id, from, limit)).await,
            Self::Postgres(pg) => pg.output_from(id, from, limit).await,
        }
    }

    /// A page of execution `id`'s output lines (oldest first) and how many it
    /// has; `None` if there is no such execution.
    pub async fn output_page(
        &self,
        id: Uuid,
        offset: u64,
        size: u32,
    ) -> Result<Option<(Vec<ExecutionEvent>, u64)>, StoreError> {
        match self {
            Self::Sqlite(db) => {
                db.read(move |conn| {
                    if executions::get(conn, id)?.is_none() {
                        return Ok(None);
                    }
                    events::page(conn, id, offset, size).map(Some)
                })
                .await
            }
            Self::Postgres(pg) => pg.output_page(id, offset, size).await,
        }
    }

    /// How many output lines execution `id` has.
    pub async fn output_count(&self, id: Uuid) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| events::count(conn, id)).await,
            Self::Postgres(pg) => pg.output_count(id).await,
        }
    }

    /// Stores output lines `first`, `first + 1`, … of execution `id`.
    pub async fn append_output(
        &self,
        id: Uuid,
        first: u64,
        lines: impl AsRef<[ExecutionEvent]> + Send + 'static,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| events::append(conn, id, first, lines.as_ref())).await,
            Self::Postgres(pg) => pg.append_output(id, first, lines.as_ref()).await,
        }
    }

    /// How many users there are.
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(users::count).await,
            Self::Postgres(pg) => pg.user_count().await,
        }
    }

    /// Adds a user; `false` if the name is taken.
    pub async fn insert_user(&self, user: users::UserRecord) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| users::insert(conn, &user)).await,
            Self::Postgres(pg) => pg.insert_user(&user).await,
        }
    }

    /// One user by name.
    pub async fn user(&self, username: String) -> Result<Option<users::UserRecord>, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| users::get(conn, &username)).await,
            Self::Postgres(pg) => pg.user(&username).await,
        }
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<users::UserRecord>, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(users::list).await,
            Self::Postgres(pg) => pg.users().await,
        }
    }

    /// Removes a user and their tokens; `false` if there was none.
    pub async fn remove_user(&self, username: String) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| users::remove(conn, &username)).await,
            Self::Postgres(pg) => pg.remove_user(&username).await,
        }
    }

    /// Sets a new password hash and revokes the user's tokens; `false` if there is no such user.
    pub async fn set_password(&self, username: String, password_hash: String) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| users::set_password(conn, &username, &password_hash)).await,
            Self::Postgres(pg) => pg.set_password(&username, &password_hash).await,
        }
    }

    /// Stores a new token with the digest of its secret.
    pub async fn insert_token(
        &self,
        id: Uuid,
        digest: String,
        username: String,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(db) => {
                db.write(move |conn| users::insert_token(conn, id, &digest, &username, expires_at)).await
            }
            Self::Postgres(pg) => pg.insert_token(id, &digest, &username, expires_at).await,
        }
    }

    /// The token with this id and the digest of its secret (one query: every token-authenticated request asks).
    pub async fn token_digest(&self, id: Uuid) -> Result<Option<(users::TokenRecord, String)>, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(move |conn| users::token_digest(conn, id)).await,
            Self::Postgres(pg) => pg.token_digest(id).await,
        }
    }

    /// The credential-change counter: it grows whenever a credential stops working as it did.
    pub async fn credential_changes(&self) -> Result<i64, StoreError> {
        match self {
            Self::Sqlite(db) => db.read(users::credential_changes).await,
            Self::Postgres(pg) => pg.credential_changes().await,
        }
    }

    /// Revokes a token; `false` if there is no such token or it was already revoked.
    pub async fn revoke_token(&self, id: Uuid) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(db) => db.write(move |conn| users::revoke_token(conn, id)).await,
            Self::Postgres(pg) => pg.revoke_token(id).await,
        }
    }
}

/// Runs `read` in one read transaction, so everything it reads (a page and
/// its total) comes from one snapshot of the database.
fn in_one_snapshot<R>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> Result<R, StoreError>,
) -> Result<R, StoreError> {
    let snapshot = conn.unchecked_transaction()?;
    let result = read(&snapshot)?;
    snapshot.finish()?;
    Ok(result)
}

/// How many rows `table` holds, from the counter its triggers keep
/// (migration 0003): constant time, however many rows there are.
fn row_count(conn: &Connection, table: &'static str) -> Result<i64, StoreError> {
    Ok(conn.prepare_cached("SELECT n FROM row_counts WHERE name = ?1")?.query_row([table], |row| row.get(0))?)
}

/// Parses a column that holds one of our wire names, or says the row is corrupt.
pub(crate) fn parse_column<T>(
    table: &'static str,
    column: &str,
    text: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(text).ok_or_else(|| StoreError::Corrupt { table, detail: format!("{column} = {text:?}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        MIGRATIONS.validate().unwrap();
    }

    #[test]
    fn opening_twice_keeps_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(dir.path()).unwrap();
        conn.execute("UPDATE maintenance SET reason = 'kept'", []).unwrap();
        drop(conn);
        let conn = open_writer(dir.path()).unwrap();
        let reason: String = conn.query_row("SELECT reason FROM maintenance", [], |row| row.get(0)).unwrap();
        assert_eq!(reason, "kept");
    }

    #[test]
    fn row_counts_start_from_existing_rows_and_follow_inserts_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open(dir.path()).unwrap();
        // A database from before the counters, already holding rows.
        MIGRATIONS.to_version(&mut conn, 2).unwrap();
        let insert = |conn: &Connection, id: &str| {
            conn.execute(
                "INSERT INTO executions (id, workflow_id, deployment_id, status, parameters, created_at, created_by) \
                 VALUES (?1, 'w', 'd', 'terminated', '{}', '2026-11-26T00:00:00.000Z', 'admin')",
                [id],
            )
            .unwrap();
        };
        insert(&conn, "a");
        insert(&conn, "b");
        conn.execute(
            "INSERT INTO maintenance_history (at, from_status, to_status, requested_by) \
             VALUES ('2026-11-26T00:00:00.000Z', 'deactivated', 'activated', 'admin')",
            [],
        )
        .unwrap();

        MIGRATIONS.to_latest(&mut conn).unwrap();
        assert_eq!(row_count(&conn, "executions").unwrap(), 2);
        assert_eq!(row_count(&conn, "maintenance_history").unwrap(), 1);
        insert(&conn, "c");
        conn.execute("DELETE FROM executions WHERE id = 'a'", []).unwrap();
        conn.execute("DELETE FROM maintenance_history", []).unwrap();
        assert_eq!(row_count(&conn, "executions").unwrap(), 2);
        assert_eq!(row_count(&conn, "maintenance_history").unwrap(), 0);
        // A rolled-back insert is not counted.
        let transaction = conn.transaction().unwrap();
        insert(&transaction, "d");
        drop(transaction);
        assert_eq!(row_count(&conn, "executions").unwrap(), 2);
        let counted: i64 = conn.query_row("SELECT COUNT(*) FROM executions", [], |row| row.get(0)).unwrap();
        assert_eq!(counted, 2);
    }
}

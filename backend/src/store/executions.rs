//! The executions table.

use rusqlite::{params, Connection, OptionalExtension, Row};
use shared::{Execution, ExecutionStatus, Timestamp};
use uuid::Uuid;

use super::maintenance::parse_time;
use super::{parse_column, StoreError};

pub(crate) const COLUMNS: &str =
    "id, workflow_id, deployment_id, status, parameters, created_at, started_at, ended_at, created_by, error, replica";

/// Stores a new execution; its creation order is the insertion order.
pub fn insert(conn: &Connection, execution: &Execution) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO executions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
        params![
            execution.id.to_string(),
            execution.workflow_id,
            execution.deployment_id,
            execution.status.as_str(),
            serde_json::Value::Object(execution.parameters.clone()).to_string(),
            execution.created_at.to_string(),
            execution.started_at.map(|at| at.to_string()),
            execution.ended_at.map(|at| at.to_string()),
            execution.created_by,
            execution.error,
            (!execution.replica.is_empty()).then_some(&execution.replica),
        ],
    )?;
    Ok(())
}

/// Writes the fields that change over an execution's life.
pub fn update(conn: &Connection, execution: &Execution) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE executions SET status = ?2, started_at = ?3, ended_at = ?4, error = ?5 WHERE id = ?1",
        params![
            execution.id.to_string(),
            execution.status.as_str(),
            execution.started_at.map(|at| at.to_string()),
            execution.ended_at.map(|at| at.to_string()),
            execution.error,
        ],
    )?;
    Ok(())
}

/// Records the process group running execution `id` and its leader's start
/// time, so that start-up after a crash can kill exactly that group.
pub fn set_process(conn: &Connection, id: Uuid, pgid: i32, start_time: u64) -> Result<(), StoreError> {
    let start_time = i64::try_from(start_time).unwrap_or(i64::MAX);
    conn.execute(
        "UPDATE executions SET pgid = ?2, process_start = ?3 WHERE id = ?1",
        params![id.to_string(), pgid, start_time],
    )?;
    Ok(())
}

/// The process group recorded for execution `id` and its leader's start time, if any.
pub fn process_of(conn: &Connection, id: Uuid) -> Result<Option<(i32, u64)>, StoreError> {
    let row: Option<(Option<i32>, Option<i64>)> = conn
        .prepare_cached("SELECT pgid, process_start FROM executions WHERE id = ?1")?
        .query_row([id.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((Some(pgid), Some(start))) => Some((pgid, u64::try_from(start).unwrap_or_default())),
        _ => None,
    })
}

/// One execution by id.
pub fn get(conn: &Connection, id: Uuid) -> Result<Option<Execution>, StoreError> {
    let mut statement = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM executions WHERE id = ?1"))?;
    let row = statement.query_row([id.to_string()], raw).optional()?;
    row.map(RawExecution::parse).transpose()
}

/// A page of executions, newest first, and how many there are in all.
pub fn page(conn: &Connection, size: u32, offset: u64) -> Result<(Vec<Execution>, u64), StoreError> {
    list(conn, &Listing { size, offset, ..Listing::default() })
}

/// A field executions can be listed by (its wire name is its column's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Creation order (`created_at`; exact, by insertion).
    CreatedAt,
    /// `started_at` (not yet started first).
    StartedAt,
    /// `ended_at` (not yet ended first).
    EndedAt,
    /// `id`.
    Id,
    /// `workflow_id`.
    WorkflowId,
    /// `deployment_id`.
    DeploymentId,
    /// `status`.
    Status,
    /// `created_by`.
    CreatedBy,
}

impl SortKey {
    /// Every key, for messages.
    pub const ALL: [Self; 8] = [
        Self::CreatedAt,
        Self::StartedAt,
        Self::EndedAt,
        Self::Id,
        Self::WorkflowId,
        Self::DeploymentId,
        Self::Status,
        Self::CreatedBy,
    ];

    /// The field's name in the API (and the column's).
    pub fn name(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::StartedAt => "started_at",
            Self::EndedAt => "ended_at",
            Self::Id => "id",
            Self::WorkflowId => "workflow_id",
            Self::DeploymentId => "deployment_id",
            Self::Status => "status",
            Self::CreatedBy => "created_by",
        }
    }

    /// The key named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|key| key.name() == name)
    }

    /// Creation order is the row order; timestamps are stored as RFC 3339
    /// text with milliseconds, so their text order is their time order.
    fn column(self) -> &'static str {
        match self {
            Self::CreatedAt => "seq",
            key => key.name(),
        }
    }
}

/// Which executions to list, in which order, and which page of them.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Page size.
    pub size: u32,
    /// How many to skip.
    pub offset: u64,
    /// Sort keys, most significant first, each with `true` for descending;
    /// empty: newest first. Ties keep creation order.
    pub order: Vec<(SortKey, bool)>,
    /// Only this deployment's executions.
    pub deployment_id: Option<String>,
}

impl Listing {
    /// The `ORDER BY` list (the same SQL for both stores): the keys asked
    /// for, then creation order for ties (newest first when nothing is asked).
    pub(super) fn order_by(&self) -> String {
        let mut order: Vec<String> =
            self.order.iter().map(|(key, descending)| format!("{} {}", key.column(), direction(*descending))).collect();
        order.push(if self.order.is_empty() { "seq DESC" } else { "seq" }.to_owned());
        order.join(", ")
    }
}

/// A page of executions as `listing` asks, and how many match in all.
pub fn list(conn: &Connection, listing: &Listing) -> Result<(Vec<Execution>, u64), StoreError> {
    super::in_one_snapshot(conn, |conn| list_now(conn, listing))
}

fn list_now(conn: &Connection, listing: &Listing) -> Result<(Vec<Execution>, u64), StoreError> {
    // SQLite integers are signed; an offset beyond i64 just yields nothing.
    let offset = i64::try_from(listing.offset).unwrap_or(i64::MAX);
    let order = listing.order_by();
    let (total, rows) = match &listing.deployment_id {
        None => {
            let total = super::row_count(conn, "executions")?;
            let mut statement =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM executions ORDER BY {order} LIMIT ?1 OFFSET ?2"))?;
            let rows = statement.query_map(params![listing.size, offset], raw)?.collect::<Result<Vec<_>, _>>()?;
            (total, rows)
        }
        Some(deployment) => {
            let total: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM executions WHERE deployment_id = ?1")?
                .query_row([deployment], |row| row.get(0))?;
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM executions WHERE deployment_id = ?3 ORDER BY {order} LIMIT ?1 OFFSET ?2"
            ))?;
            let rows =
                statement.query_map(params![listing.size, offset, deployment], raw)?.collect::<Result<Vec<_>, _>>()?;
            (total, rows)
        }
    };
    let items = rows.into_iter().map(RawExecution::parse).collect::<Result<_, _>>()?;
    Ok((items, u64::try_from(total).unwrap_or_default()))
}

fn direction(descending: bool) -> &'static str {
    if descending {
        "DESC"
    } else {
        "ASC"
    }
}

/// Every execution whose status is one of `statuses`, in creation order.
pub fn with_status(conn: &Connection, statuses: &[ExecutionStatus]) -> Result<Vec<Execution>, StoreError> {
    let names: Vec<String> = statuses.iter().map(|status| format!("'{}'", status.as_str())).collect();
    let mut statement =
        conn.prepare(&format!("SELECT {COLUMNS} FROM executions WHERE status IN ({}) ORDER BY seq", names.join(", ")))?;
    let rows = statement.query_map([], raw)?;
    rows.map(|row| row?.parse()).collect()
}

/// The columns as text, before parsing (parsing errors are ours, not SQLite's).
pub(super) struct RawExecution(pub(super) [Option<String>; 11]);

pub(super) fn raw(row: &Row<'_>) -> rusqlite::Result<RawExecution> {
    let mut columns: [Option<String>; 11] = Default::default();
    for (index, column) in columns.iter_mut().enumerate() {
        *column = row.get(index)?;
    }
    Ok(RawExecution(columns))
}

impl RawExecution {
    pub(super) fn parse(self) -> Result<Execution, StoreError> {
        const TABLE: &str = "executions";
        let [id, workflow_id, deployment_id, status, parameters, created_at, started_at, ended_at, created_by, error, replica] =
            self.0;
        let text = |value: Option<String>| value.unwrap_or_default();
        let parameters = match serde_json::from_str(&text(parameters)) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(StoreError::Corrupt { table: TABLE, detail: "parameters is not a JSON object".into() }),
        };
        Ok(Execution {
            id: parse_column(TABLE, "id", &text(id), |s| Uuid::parse_str(s).ok())?,
            workflow_id: text(workflow_id),
            deployment_id: text(deployment_id),
            status: parse_column(TABLE, "status", &text(status), ExecutionStatus::parse)?,
            parameters,
            created_at: parse_column(TABLE, "created_at", &text(created_at), |s| s.parse::<Timestamp>().ok())?,
            started_at: parse_time(TABLE, started_at)?,
            ended_at: parse_time(TABLE, ended_at)?,
            created_by: text(created_by),
            error: text(error),
            replica: text(replica),
        })
    }
}

/// How many executions there are in each status (statuses without any left out).
pub fn counts(conn: &Connection) -> Result<Vec<(ExecutionStatus, u64)>, StoreError> {
    let mut statement = conn.prepare_cached("SELECT status, COUNT(*) FROM executions GROUP BY status")?;
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
    rows.map(|row| {
        let (status, count) = row?;
        Ok((
            super::parse_column("executions", "status", &status, ExecutionStatus::parse)?,
            u64::try_from(count).unwrap_or_default(),
        ))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_writer;

    fn execution(status: ExecutionStatus) -> Execution {
        crate::test_support::execution(status, serde_json::json!({"duration_seconds": 1.5}))
    }

    #[test]
    fn executions_round_trip_and_page_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(dir.path()).unwrap();
        let first = execution(ExecutionStatus::Queued);
        let mut second = execution(ExecutionStatus::Started);
        insert(&conn, &first).unwrap();
        insert(&conn, &second).unwrap();

        second.status = ExecutionStatus::Terminated;
        second.ended_at = Some(Timestamp::now());
        update(&conn, &second).unwrap();
        assert_eq!(get(&conn, second.id).unwrap(), Some(second.clone()));
        assert_eq!(get(&conn, Uuid::new_v4()).unwrap(), None);

        let (items, total) = page(&conn, 10, 0).unwrap();
        assert_eq!(total, 2);
        assert_eq!(items, vec![second.clone(), first.clone()]);
        let (items, _) = page(&conn, 1, 1).unwrap();
        assert_eq!(items, vec![first.clone()]);

        assert_eq!(with_status(&conn, &[ExecutionStatus::Queued]).unwrap(), vec![first]);
    }

    /// The total and the items of a page come from one snapshot, even while
    /// another connection keeps inserting.
    #[test]
    fn a_page_and_its_total_agree_while_rows_are_inserted() {
        let dir = tempfile::tempdir().unwrap();
        let writer = open_writer(dir.path()).unwrap();
        writer.pragma_update(None, "synchronous", "OFF").unwrap();
        let reader = crate::store::open_reader(dir.path()).unwrap();
        let inserter = std::thread::spawn(move || {
            for _ in 0..2000 {
                insert(&writer, &execution(ExecutionStatus::Terminated)).unwrap();
            }
        });
        let mut pages = 0;
        loop {
            let inserting = !inserter.is_finished();
            let (items, total) = page(&reader, 1000, 0).unwrap();
            assert_eq!(items.len() as u64, total.min(1000), "page {pages}");
            pages += 1;
            if !inserting {
                break;
            }
        }
        inserter.join().unwrap();
    }
}

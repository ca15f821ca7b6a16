//! The maintenance row and its history.

use rusqlite::{params, Connection, OptionalExtension};
use shared::{
    ExecutionStatus, HistoryEvent, MaintenanceMode, MaintenanceState, MaintenanceTransition, RemainingExecution,
    Timestamp,
};
use uuid::Uuid;

use super::{parse_column, StoreError};
use crate::model::{outbox, Change};
pub use crate::model::{DrainStage, MaintenanceRecord};

/// The maintenance row's columns, in the order [`RawRecord`] reads them.
pub const RECORD_COLUMNS: &str = "status, requested_by, activation_requested_at, activated_at, reason, mode, \
     drain_deadline_at, drain_stage, drain_force_at, window_id, upcoming_id";

/// The maintenance row as both stores read it (text columns), before parsing.
pub struct RawRecord {
    /// `status`.
    pub status: String,
    /// `requested_by`.
    pub requested_by: String,
    /// `activation_requested_at`.
    pub activation_requested_at: Option<String>,
    /// `activated_at`.
    pub activated_at: Option<String>,
    /// `reason`.
    pub reason: String,
    /// `mode`.
    pub mode: String,
    /// `drain_deadline_at`.
    pub drain_deadline_at: Option<String>,
    /// `drain_stage`.
    pub drain_stage: i64,
    /// `drain_force_at`.
    pub drain_force_at: Option<String>,
    /// `window_id`.
    pub window_id: Option<String>,
    /// `upcoming_id`.
    pub upcoming_id: Option<String>,
}

impl RawRecord {
    /// Parses the row.
    pub fn parse(self) -> Result<MaintenanceRecord, StoreError> {
        const TABLE: &str = "maintenance";
        let id = |column, text: Option<String>| {
            text.map(|text| parse_column(TABLE, column, &text, |s| Uuid::parse_str(s).ok())).transpose()
        };
        Ok(MaintenanceRecord {
            status: parse_column(TABLE, "status", &self.status, MaintenanceState::parse)?,
            requested_by: self.requested_by,
            activation_requested_at: parse_time(TABLE, self.activation_requested_at)?,
            activated_at: parse_time(TABLE, self.activated_at)?,
            reason: self.reason,
            mode: parse_column(TABLE, "mode", &self.mode, MaintenanceMode::parse)?,
            drain_deadline_at: parse_time(TABLE, self.drain_deadline_at)?,
            drain_stage: DrainStage::from_code(self.drain_stage).ok_or_else(|| StoreError::Corrupt {
                table: TABLE,
                detail: format!("drain_stage = {}", self.drain_stage),
            })?,
            drain_force_at: parse_time(TABLE, self.drain_force_at)?,
            window_id: id("window_id", self.window_id)?,
            upcoming_id: id("upcoming_id", self.upcoming_id)?,
        })
    }
}

/// The history table's columns, in the order [`history_row`] reads them.
pub const HISTORY_COLUMNS: &str = "at, from_status, to_status, requested_by, reason, event, window_id, detail";

/// A history row from its stored text.
#[allow(clippy::too_many_arguments)]
pub fn history_row(
    at: &str,
    from: &str,
    to: &str,
    requested_by: String,
    reason: String,
    event: &str,
    window_id: Option<&str>,
    detail: String,
) -> Result<MaintenanceTransition, StoreError> {
    const TABLE: &str = "maintenance_history";
    Ok(MaintenanceTransition {
        at: parse_column(TABLE, "at", at, |s| s.parse().ok())?,
        from: parse_column(TABLE, "from_status", from, MaintenanceState::parse)?,
        to: parse_column(TABLE, "to_status", to, MaintenanceState::parse)?,
        requested_by,
        reason,
        event: parse_column(TABLE, "event", event, HistoryEvent::parse)?,
        window_id: window_id.map(|id| parse_column(TABLE, "window_id", id, |s| Uuid::parse_str(s).ok())).transpose()?,
        detail,
    })
}

/// Reads the maintenance row.
pub fn load(conn: &Connection) -> Result<MaintenanceRecord, StoreError> {
    let raw = conn
        .query_row(&format!("SELECT {RECORD_COLUMNS} FROM maintenance WHERE id = 1"), [], |row| {
            Ok(RawRecord {
                status: row.get(0)?,
                requested_by: row.get(1)?,
                activation_requested_at: row.get(2)?,
                activated_at: row.get(3)?,
                reason: row.get(4)?,
                mode: row.get(5)?,
                drain_deadline_at: row.get(6)?,
                drain_stage: row.get(7)?,
                drain_force_at: row.get(8)?,
                window_id: row.get(9)?,
                upcoming_id: row.get(10)?,
            })
        })
        .optional()?;
    let Some(raw) = raw else {
        return Err(StoreError::Corrupt { table: "maintenance", detail: "the row is missing".into() });
    };
    raw.parse()
}

/// The epoch of the last published status change (migration 0004).
pub fn load_epoch(conn: &Connection) -> Result<u64, StoreError> {
    let epoch: i64 = conn.query_row("SELECT epoch FROM maintenance WHERE id = 1", [], |row| row.get(0))?;
    u64::try_from(epoch).map_err(|_| StoreError::Corrupt { table: "maintenance", detail: format!("epoch = {epoch}") })
}

/// Records `epoch` as the last published status change.
pub fn save_epoch(conn: &Connection, epoch: u64) -> Result<(), StoreError> {
    let epoch = i64::try_from(epoch)
        .map_err(|_| StoreError::Corrupt { table: "maintenance", detail: format!("epoch {epoch} overflows") })?;
    conn.execute("UPDATE maintenance SET epoch = ?1 WHERE id = 1", [epoch])?;
    Ok(())
}

/// Writes a change the state machine decided: the maintenance row as it
/// becomes and the history rows that lead to it, in order. Call inside a
/// transaction so all land or none does.
pub fn save_change(conn: &Connection, change: &Change) -> Result<(), StoreError> {
    let record = &change.record;
    let (mode, deadline, stage, force_at, window_id, upcoming_id) = record.extra_values();
    conn.execute(
        "UPDATE maintenance SET status = ?1, requested_by = ?2, activation_requested_at = ?3, \
         activated_at = ?4, reason = ?5, mode = ?6, drain_deadline_at = ?7, drain_stage = ?8, \
         drain_force_at = ?9, window_id = ?10, upcoming_id = ?11 WHERE id = 1",
        params![
            record.status.as_str(),
            record.requested_by,
            record.activation_requested_at.map(|at| at.to_string()),
            record.activated_at.map(|at| at.to_string()),
            record.reason,
            mode,
            deadline,
            stage,
            force_at,
            window_id,
            upcoming_id,
        ],
    )?;
    let reports = if change.transitions.is_empty() {
        Vec::new()
    } else {
        let remaining = super::executions::with_status(conn, &ExecutionStatus::REMAINING)?;
        let remaining: Vec<RemainingExecution> = remaining.iter().map(RemainingExecution::of).collect();
        outbox::reports(change, &remaining, &super::windows::live(conn)?)
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO maintenance_history (at, from_status, to_status, requested_by, reason, event, window_id, detail, \
         status_after, window_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for (transition, report) in change.transitions.iter().zip(&reports) {
        insert.execute(params![
            transition.at.to_string(),
            transition.from.as_str(),
            transition.to.as_str(),
            transition.requested_by,
            transition.reason,
            transition.event.as_str(),
            transition.window_id.map(|id| id.to_string()),
            transition.detail,
            report.status,
            report.window,
        ])?;
    }
    for window in &change.windows {
        super::windows::save(conn, window)?;
    }
    Ok(())
}

/// A page of transitions, newest first, and how many there are in all.
pub fn history(conn: &Connection, size: u32, offset: u64) -> Result<(Vec<MaintenanceTransition>, u64), StoreError> {
    super::in_one_snapshot(conn, |conn| history_now(conn, size, offset))
}

fn history_now(conn: &Connection, size: u32, offset: u64) -> Result<(Vec<MaintenanceTransition>, u64), StoreError> {
    let total = super::row_count(conn, "maintenance_history")?;
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {HISTORY_COLUMNS} FROM maintenance_history ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = statement.query_map(params![size, offset], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, String>(5)?,
            row.get::<_, Option<String>>(6)?,
            row.get::<_, String>(7)?,
        ))
    })?;
    rows.map(|row| {
        let (at, from, to, requested_by, reason, event, window_id, detail) = row?;
        history_row(&at, &from, &to, requested_by, reason, &event, window_id.as_deref(), detail)
    })
    .collect::<Result<Vec<_>, _>>()
    .map(|items| (items, u64::try_from(total).unwrap_or_default()))
}

/// Parses an optional timestamp column.
pub(super) fn parse_time(table: &'static str, text: Option<String>) -> Result<Option<Timestamp>, StoreError> {
    text.map(|text| parse_column(table, "timestamp", &text, |s| s.parse().ok())).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_writer;

    #[test]
    fn a_saved_transition_reads_back_with_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_writer(dir.path()).unwrap();
        assert_eq!(load(&conn).unwrap(), MaintenanceRecord::default());

        let at = Timestamp::now();
        let record = MaintenanceRecord {
            status: MaintenanceState::Activating,
            requested_by: "admin".into(),
            activation_requested_at: Some(at),
            activated_at: None,
            reason: "upgrade".into(),
            ..MaintenanceRecord::default()
        };
        let transition = MaintenanceTransition {
            at,
            from: MaintenanceState::Deactivated,
            to: MaintenanceState::Activating,
            requested_by: "admin".into(),
            reason: "upgrade".into(),
            event: shared::HistoryEvent::Activate,
            window_id: None,
            detail: String::new(),
        };
        let tx = conn.transaction().unwrap();
        save_change(
            &tx,
            &Change { record: record.clone(), transitions: vec![transition.clone()], ..Change::default() },
        )
        .unwrap();
        tx.commit().unwrap();

        assert_eq!(load(&conn).unwrap(), record);
        assert_eq!(history(&conn, 10, 0).unwrap(), (vec![transition], 1));
        assert_eq!(history(&conn, 10, 1).unwrap(), (vec![], 1));
    }
}

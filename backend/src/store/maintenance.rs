//! The maintenance row and its history.

use rusqlite::{params, Connection, OptionalExtension};
use shared::{MaintenanceState, MaintenanceTransition, Timestamp};

use super::{parse_column, StoreError};
use crate::engine::machine::Change;

/// The persisted part of the maintenance status (everything but the
/// remaining executions, which are derived from the executions table).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MaintenanceRecord {
    /// The state.
    pub status: MaintenanceState,
    /// Who requested activation.
    pub requested_by: String,
    /// When activation was requested.
    pub activation_requested_at: Option<Timestamp>,
    /// When `activated` was reached.
    pub activated_at: Option<Timestamp>,
    /// The reason given on activation.
    pub reason: String,
}

/// Reads the maintenance row.
pub fn load(conn: &Connection) -> Result<MaintenanceRecord, StoreError> {
    let row = conn
        .query_row(
            "SELECT status, requested_by, activation_requested_at, activated_at, reason FROM maintenance WHERE id = 1",
            [],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, String>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((status, requested_by, requested_at, activated_at, reason)) = row else {
        return Err(StoreError::Corrupt { table: "maintenance", detail: "the row is missing".into() });
    };
    Ok(MaintenanceRecord {
        status: parse_column("maintenance", "status", &status, MaintenanceState::parse)?,
        requested_by,
        activation_requested_at: parse_time("maintenance", requested_at)?,
        activated_at: parse_time("maintenance", activated_at)?,
        reason,
    })
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
    conn.execute(
        "UPDATE maintenance SET status = ?1, requested_by = ?2, activation_requested_at = ?3, \
         activated_at = ?4, reason = ?5 WHERE id = 1",
        params![
            record.status.as_str(),
            record.requested_by,
            record.activation_requested_at.map(|at| at.to_string()),
            record.activated_at.map(|at| at.to_string()),
            record.reason,
        ],
    )?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO maintenance_history (at, from_status, to_status, requested_by, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for transition in &change.transitions {
        insert.execute(params![
            transition.at.to_string(),
            transition.from.as_str(),
            transition.to.as_str(),
            transition.requested_by,
            transition.reason,
        ])?;
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
    let mut statement = conn.prepare_cached(
        "SELECT at, from_status, to_status, requested_by, reason FROM maintenance_history \
         ORDER BY seq DESC LIMIT ?1 OFFSET ?2",
    )?;
    let rows = statement.query_map(params![size, offset], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (at, from, to, requested_by, reason) = row?;
        Ok(MaintenanceTransition {
            at: parse_column("maintenance_history", "at", &at, |s| s.parse().ok())?,
            from: parse_column("maintenance_history", "from_status", &from, MaintenanceState::parse)?,
            to: parse_column("maintenance_history", "to_status", &to, MaintenanceState::parse)?,
            requested_by,
            reason,
            event: shared::HistoryEvent::of_transition(MaintenanceState::parse(&to).unwrap_or_default()),
            window_id: None,
            detail: String::new(),
        })
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
        save_change(&tx, &Change { record: record.clone(), transitions: vec![transition.clone()] }).unwrap();
        tx.commit().unwrap();

        assert_eq!(load(&conn).unwrap(), record);
        assert_eq!(history(&conn, 10, 0).unwrap(), (vec![transition], 1));
        assert_eq!(history(&conn, 10, 1).unwrap(), (vec![], 1));
    }
}

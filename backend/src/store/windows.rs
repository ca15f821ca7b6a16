//! Maintenance windows (SPEC §10): the rows both stores keep, and their
//! SQLite queries. Timestamps are RFC 3339 text of one width, so text order
//! is time order in both stores.

use rusqlite::{params, Connection, OptionalExtension, Row};
use shared::{MaintenanceMode, Window, WindowState};
use uuid::Uuid;

use super::maintenance::parse_time;
use super::{parse_column, StoreError};

/// The windows table's columns, in the order [`RawWindow`] reads them.
pub const COLUMNS: &str =
    "id, state, starts_at, ends_at, reason, notice_seconds, drain_deadline_seconds, mode, created_by, created_at, ended_at";

/// A window row as both stores read it, before parsing.
pub struct RawWindow {
    /// `id`.
    pub id: String,
    /// `state`.
    pub state: String,
    /// `starts_at`.
    pub starts_at: String,
    /// `ends_at`.
    pub ends_at: Option<String>,
    /// `reason`.
    pub reason: String,
    /// `notice_seconds`.
    pub notice_seconds: i64,
    /// `drain_deadline_seconds`.
    pub drain_deadline_seconds: Option<i64>,
    /// `mode`.
    pub mode: String,
    /// `created_by`.
    pub created_by: String,
    /// `created_at`.
    pub created_at: String,
    /// `ended_at`.
    pub ended_at: Option<String>,
}

impl RawWindow {
    /// Parses the row.
    pub fn parse(self) -> Result<Window, StoreError> {
        const TABLE: &str = "windows";
        let seconds = |column, value: i64| {
            u64::try_from(value)
                .map_err(|_| StoreError::Corrupt { table: TABLE, detail: format!("{column} = {value}") })
        };
        Ok(Window {
            id: parse_column(TABLE, "id", &self.id, |s| Uuid::parse_str(s).ok())?,
            state: parse_column(TABLE, "state", &self.state, WindowState::parse)?,
            starts_at: parse_column(TABLE, "starts_at", &self.starts_at, |s| s.parse().ok())?,
            ends_at: parse_time(TABLE, self.ends_at)?,
            reason: self.reason,
            notice_seconds: seconds("notice_seconds", self.notice_seconds)?,
            drain_deadline_seconds: self
                .drain_deadline_seconds
                .map(|value| seconds("drain_deadline_seconds", value))
                .transpose()?,
            mode: parse_column(TABLE, "mode", &self.mode, MaintenanceMode::parse)?,
            created_by: self.created_by,
            created_at: parse_column(TABLE, "created_at", &self.created_at, |s| s.parse().ok())?,
            ended_at: parse_time(TABLE, self.ended_at)?,
        })
    }
}

/// A number of seconds as the stores keep it.
pub fn stored_seconds(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

fn raw(row: &Row) -> rusqlite::Result<RawWindow> {
    Ok(RawWindow {
        id: row.get(0)?,
        state: row.get(1)?,
        starts_at: row.get(2)?,
        ends_at: row.get(3)?,
        reason: row.get(4)?,
        notice_seconds: row.get(5)?,
        drain_deadline_seconds: row.get(6)?,
        mode: row.get(7)?,
        created_by: row.get(8)?,
        created_at: row.get(9)?,
        ended_at: row.get(10)?,
    })
}

/// Inserts `window`, or writes what changes over its life (state, end, ended_at).
pub fn save(conn: &Connection, window: &Window) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO windows ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, ends_at = excluded.ends_at, \
         ended_at = excluded.ended_at"
    ))?
    .execute(params![
        window.id.to_string(),
        window.state.as_str(),
        window.starts_at.to_string(),
        window.ends_at.map(|at| at.to_string()),
        window.reason,
        stored_seconds(window.notice_seconds),
        window.drain_deadline_seconds.map(stored_seconds),
        window.mode.as_str(),
        window.created_by,
        window.created_at.to_string(),
        window.ended_at.map(|at| at.to_string()),
    ])?;
    Ok(())
}

/// Window `id`, whatever its state.
pub fn get(conn: &Connection, id: Uuid) -> Result<Option<Window>, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM windows WHERE id = ?1"))?
        .query_row([id.to_string()], raw)
        .optional()?
        .map(RawWindow::parse)
        .transpose()
}

/// The windows still to come or running (`scheduled`, `active`), by start.
pub fn live(conn: &Connection) -> Result<Vec<Window>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM windows WHERE state IN ('scheduled', 'active') ORDER BY starts_at, seq"
    ))?;
    let rows = statement.query_map([], raw)?;
    rows.map(|row| row?.parse()).collect()
}

/// A page of windows, latest start first, and how many there are in all.
pub fn page(conn: &Connection, size: u32, offset: u64) -> Result<(Vec<Window>, u64), StoreError> {
    super::in_one_snapshot(conn, |conn| {
        let total = super::row_count(conn, "windows")?;
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM windows ORDER BY starts_at DESC, seq DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = statement.query_map(params![size, offset], raw)?;
        let items = rows.map(|row| row?.parse()).collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, u64::try_from(total).unwrap_or_default()))
    })
}

//! The `execution_events` table: every line an execution's program wrote,
//! numbered from 0 per execution (SPEC §9).

use rusqlite::{params, Connection, Row};
use shared::execution::{ExecutionEvent, OutputStream};
use shared::Timestamp;
use uuid::Uuid;

use super::{parse_column, StoreError};

const TABLE: &str = "execution_events";

/// Stores `events` as numbers `first`, `first + 1`, … of execution `id`, in
/// the caller's transaction (or as one of its own when there is none).
pub fn append(conn: &Connection, id: Uuid, first: u64, events: &[ExecutionEvent]) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let tx = if conn.is_autocommit() { Some(conn.unchecked_transaction()?) } else { None };
    {
        let mut insert = conn.prepare_cached(
            "INSERT INTO execution_events (execution_id, seq, at, stream, line) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let id = id.to_string();
        for (offset, event) in events.iter().enumerate() {
            let seq = i64::try_from(first + offset as u64).unwrap_or(i64::MAX);
            insert.execute(params![id, seq, event.at.to_string(), event.stream.as_str(), event.line])?;
        }
    }
    if let Some(tx) = tx {
        tx.commit()?;
    }
    Ok(())
}

/// Events of execution `id` from number `from` on, at most `limit`, oldest first, with their numbers.
pub fn from(conn: &Connection, id: Uuid, from: u64, limit: u32) -> Result<Vec<(u64, ExecutionEvent)>, StoreError> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let mut statement = conn.prepare_cached(
        "SELECT seq, at, stream, line FROM execution_events WHERE execution_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3",
    )?;
    let rows = statement.query_map(params![id.to_string(), from, limit], raw)?;
    rows.map(|row| row?.parse()).collect()
}

/// How many events execution `id` has.
pub fn count(conn: &Connection, id: Uuid) -> Result<u64, StoreError> {
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM execution_events WHERE execution_id = ?1")?
        .query_row([id.to_string()], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or_default())
}

/// A page of execution `id`'s events (oldest first) and how many it has, from one snapshot.
pub fn page(conn: &Connection, id: Uuid, offset: u64, size: u32) -> Result<(Vec<ExecutionEvent>, u64), StoreError> {
    super::in_one_snapshot(conn, |conn| {
        let total = count(conn, id)?;
        let events = from(conn, id, offset, size)?.into_iter().map(|(_, event)| event).collect();
        Ok((events, total))
    })
}

pub(super) struct RawEvent(pub(super) i64, pub(super) String, pub(super) String, pub(super) String);

fn raw(row: &Row<'_>) -> rusqlite::Result<RawEvent> {
    Ok(RawEvent(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

impl RawEvent {
    pub(super) fn parse(self) -> Result<(u64, ExecutionEvent), StoreError> {
        let RawEvent(seq, at, stream, line) = self;
        let seq = parse_column(TABLE, "seq", &seq.to_string(), |text| text.parse::<u64>().ok())?;
        let event = ExecutionEvent {
            at: parse_column(TABLE, "at", &at, |text| text.parse::<Timestamp>().ok())?,
            stream: parse_column(TABLE, "stream", &stream, OutputStream::parse)?,
            line,
        };
        Ok((seq, event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_writer;

    fn event(line: &str) -> ExecutionEvent {
        ExecutionEvent { at: Timestamp::now(), stream: OutputStream::Stdout, line: line.into() }
    }

    #[test]
    fn events_are_stored_in_batches_and_read_in_order_and_in_pages() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(dir.path()).unwrap();
        let id = Uuid::new_v4();
        append(&conn, id, 0, &[event("a"), event("b")]).unwrap();
        append(&conn, id, 2, &[event("c")]).unwrap();
        append(&conn, Uuid::new_v4(), 0, &[event("other")]).unwrap();
        let (page_two, total) = page(&conn, id, 1, 5).unwrap();
        assert_eq!(total, 3);
        assert_eq!(page_two.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        let numbered = from(&conn, id, 2, 10).unwrap();
        assert_eq!(numbered.len(), 1);
        assert_eq!(numbered[0].0, 2);
        assert!(append(&conn, id, 2, &[event("again")]).is_err(), "a number is stored once");
    }
}

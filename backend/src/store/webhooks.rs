//! Webhook cursors and deliveries (SPEC §11) on SQLite; PostgreSQL's are in
//! `postgres/webhooks.rs`, with the same tables and answers.

use rusqlite::{params, Connection, OptionalExtension};
use shared::{DeliveryOutcome, HistoryEvent, Timestamp, WebhookDelivery, WebhookView};

use super::{parse_column, StoreError};
use crate::model::outbox::StoredEvent;

/// How many deliveries each URL keeps.
pub const KEPT_DELIVERIES: u64 = 100;
/// How many deliveries `GET /maintenance/webhooks` shows per URL.
pub const SHOWN_DELIVERIES: u32 = 20;

/// A URL's cursor: the last event delivered or given up, and the attempts at the next.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The last event delivered or given up.
    pub delivered_seq: u64,
    /// Failed attempts at the next event.
    pub attempts: u32,
    /// When the next attempt is due, after a failed one.
    pub next_attempt_at: Option<Timestamp>,
}

/// What a deliverer may do now for a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process delivers: the cursor and the next event, if any.
    Mine {
        /// Where the URL stands.
        cursor: Cursor,
        /// The next event to deliver.
        next: Option<StoredEvent>,
        /// The replica this claim took the URL from, if it just changed hands (`""`: none held it).
        taken_from: Option<String>,
    },
    /// Another replica holds the URL (PostgreSQL).
    Theirs {
        /// Which.
        owner: String,
    },
    /// Another call is claiming it this instant (PostgreSQL): ask again shortly.
    Busy,
}

/// Adds a cursor for each of `urls` that has none, after the newest event:
/// a new receiver gets what happens from now on, not the whole history.
pub fn register(conn: &Connection, urls: &[String]) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO webhooks (url, delivered_seq) \
         SELECT ?1, COALESCE(MAX(seq), 0) FROM maintenance_history WHERE true ON CONFLICT (url) DO NOTHING",
    )?;
    for url in urls {
        insert.execute([url])?;
    }
    Ok(())
}

/// The cursor of `url` and its next event (a cursor lost since start-up is made again, after the newest event).
pub fn claim(conn: &Connection, url: &str) -> Result<Claim, StoreError> {
    let cursor = match cursor(conn, url)? {
        Some(cursor) => cursor,
        None => {
            register(conn, &[url.to_owned()])?;
            cursor(conn, url)?.unwrap_or_default()
        }
    };
    let next = conn
        .query_row(
            "SELECT seq, event, at, status_after, window_after FROM maintenance_history \
             WHERE seq > ?1 AND status_after IS NOT NULL ORDER BY seq LIMIT 1",
            [i64::try_from(cursor.delivered_seq).unwrap_or(i64::MAX)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
        )
        .optional()?
        .map(|(seq, event, at, status, window): (i64, String, String, Option<String>, Option<String>)| {
            stored_event(seq, &event, &at, status, window)
        })
        .transpose()?;
    Ok(Claim::Mine { cursor, next, taken_from: None })
}

fn cursor(conn: &Connection, url: &str) -> Result<Option<Cursor>, StoreError> {
    conn.query_row("SELECT delivered_seq, attempts, next_attempt_at FROM webhooks WHERE url = ?1", [url], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, Option<String>>(2)?))
    })
    .optional()?
    .map(|(seq, attempts, next)| raw_cursor(seq, attempts, next))
    .transpose()
}

/// A cursor from its stored values.
pub fn raw_cursor(seq: i64, attempts: i64, next_attempt_at: Option<String>) -> Result<Cursor, StoreError> {
    Ok(Cursor {
        delivered_seq: u64::try_from(seq).unwrap_or_default(),
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: super::maintenance::parse_time("webhooks", next_attempt_at)?,
    })
}

/// A history row as the event it is.
pub fn stored_event(
    seq: i64,
    event: &str,
    at: &str,
    status: Option<String>,
    window: Option<String>,
) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        seq: u64::try_from(seq).unwrap_or_default(),
        event: parse_column("maintenance_history", "event", event, HistoryEvent::parse)?,
        at: parse_column("maintenance_history", "at", at, |s| s.parse().ok())?,
        status,
        window,
    })
}

/// Records a failed attempt at event `seq`: the count, when to try again and why.
pub fn attempt_failed(
    conn: &Connection,
    url: &str,
    seq: u64,
    attempts: u32,
    next_attempt_at: Timestamp,
    error: &str,
) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "UPDATE webhooks SET attempts = ?3, next_attempt_at = ?4, last_error = ?5 \
         WHERE url = ?1 AND delivered_seq < ?2",
        params![url, i64::try_from(seq).unwrap_or(i64::MAX), attempts, next_attempt_at.to_string(), error],
    )?;
    Ok(changed == 1)
}

/// Records event `delivery.event_id` as delivered or given up and moves the
/// cursor past it, in one transaction; `false` if the cursor had moved already.
pub fn finish(conn: &Connection, url: &str, delivery: &WebhookDelivery) -> Result<bool, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let delivered = delivery.outcome == DeliveryOutcome::Delivered;
    let seq = i64::try_from(delivery.event_id).unwrap_or(i64::MAX);
    let changed = tx.execute(
        "UPDATE webhooks SET delivered_seq = ?2, attempts = 0, next_attempt_at = NULL, last_error = ?3, \
         delivered = delivered + ?4, failed = failed + ?5 WHERE url = ?1 AND delivered_seq < ?2",
        params![url, seq, delivery.error, i64::from(delivered), i64::from(!delivered)],
    )?;
    if changed == 0 {
        return Ok(false);
    }
    tx.execute(
        "INSERT INTO webhook_deliveries (url, event_seq, event, outcome, at, attempts, status_code, error, latency_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            url,
            seq,
            delivery.event.as_str(),
            delivery.outcome.as_str(),
            delivery.at.to_string(),
            delivery.attempts,
            delivery.status_code,
            delivery.error,
            i64::try_from(delivery.latency_ms).unwrap_or(i64::MAX),
        ],
    )?;
    tx.execute(
        "DELETE FROM webhook_deliveries WHERE url = ?1 AND seq <= \
         (SELECT seq FROM webhook_deliveries WHERE url = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)",
        params![url, i64::try_from(KEPT_DELIVERIES).unwrap_or(i64::MAX)],
    )?;
    tx.commit()?;
    Ok(true)
}

/// What `GET /maintenance/webhooks` shows of `urls` (stored as `keys`), and the newest event's id.
pub fn report(conn: &Connection, urls: &[(String, String)]) -> Result<(u64, Vec<WebhookView>), StoreError> {
    super::in_one_snapshot(conn, |conn| {
        let last: i64 =
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM maintenance_history", [], |row| row.get(0))?;
        let mut views = Vec::new();
        for (key, shown) in urls {
            let row = conn
                .query_row(
                    "SELECT delivered_seq, attempts, next_attempt_at, last_error, delivered, failed FROM webhooks \
                     WHERE url = ?1",
                    [key],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Option<String>>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, i64>(5)?,
                        ))
                    },
                )
                .optional()?;
            let (seq, attempts, next, last_error, delivered, failed) = row.unwrap_or((0, 0, None, String::new(), 0, 0));
            let cursor = raw_cursor(seq, attempts, next)?;
            let backlog: i64 = conn.query_row(
                "SELECT COUNT(*) FROM maintenance_history WHERE seq > ?1 AND status_after IS NOT NULL",
                [seq],
                |row| row.get(0),
            )?;
            let mut recent = conn.prepare_cached(
                "SELECT event_seq, event, outcome, at, attempts, status_code, error, latency_ms \
                 FROM webhook_deliveries WHERE url = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let recent = recent
                .query_map(params![key, SHOWN_DELIVERIES], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, String>(3)?,
                        row.get::<_, i64>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                        row.get::<_, String>(6)?,
                        row.get::<_, i64>(7)?,
                    ))
                })?
                .map(|row| {
                    let (seq, event, outcome, at, attempts, code, error, latency) = row?;
                    delivery_row(seq, &event, &outcome, &at, attempts, code, error, latency)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            views.push(view(shown.clone(), cursor, backlog, last_error, delivered, failed, String::new(), recent));
        }
        Ok((u64::try_from(last).unwrap_or_default(), views))
    })
}

/// A URL's view from its stored values.
#[allow(clippy::too_many_arguments)]
pub fn view(
    url: String,
    cursor: Cursor,
    backlog: i64,
    last_error: String,
    delivered: i64,
    failed: i64,
    delivering_replica: String,
    recent: Vec<WebhookDelivery>,
) -> WebhookView {
    WebhookView {
        url,
        delivered_through: cursor.delivered_seq,
        backlog: u64::try_from(backlog).unwrap_or_default(),
        delivered: u64::try_from(delivered).unwrap_or_default(),
        failed: u64::try_from(failed).unwrap_or_default(),
        attempts: cursor.attempts,
        next_attempt_at: cursor.next_attempt_at,
        last_error,
        delivering_replica,
        recent,
    }
}

/// A delivery from its stored values.
#[allow(clippy::too_many_arguments)]
pub fn delivery_row(
    seq: i64,
    event: &str,
    outcome: &str,
    at: &str,
    attempts: i64,
    status_code: Option<i64>,
    error: String,
    latency_ms: i64,
) -> Result<WebhookDelivery, StoreError> {
    const TABLE: &str = "webhook_deliveries";
    Ok(WebhookDelivery {
        event_id: u64::try_from(seq).unwrap_or_default(),
        event: parse_column(TABLE, "event", event, HistoryEvent::parse)?,
        outcome: parse_column(TABLE, "outcome", outcome, DeliveryOutcome::parse)?,
        at: parse_column(TABLE, "at", at, |s| s.parse().ok())?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        status_code: status_code.and_then(|code| u16::try_from(code).ok()),
        error,
        latency_ms: u64::try_from(latency_ms).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(event_id: u64, outcome: DeliveryOutcome) -> WebhookDelivery {
        WebhookDelivery {
            event_id,
            event: HistoryEvent::Activate,
            outcome,
            at: Timestamp::now(),
            attempts: 1,
            status_code: Some(200),
            error: String::new(),
            latency_ms: 5,
        }
    }

    #[test]
    fn a_cursor_starts_after_the_newest_event_and_moves_once_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open_writer(dir.path()).unwrap();
        conn.execute(
            "INSERT INTO maintenance_history (at, from_status, to_status, requested_by, event, status_after) \
             VALUES ('2026-11-30T12:00:00.000Z', 'deactivated', 'activating', 'a', 'activate', '{}')",
            [],
        )
        .unwrap();
        register(&conn, &["http://h/a".to_owned()]).unwrap();
        register(&conn, &["http://h/a".to_owned()]).unwrap();
        let Claim::Mine { cursor, next, .. } = claim(&conn, "http://h/a").unwrap() else { panic!("no owners here") };
        assert_eq!((cursor.delivered_seq, next), (1, None), "the old event is not the new URL's");
        conn.execute(
            "INSERT INTO maintenance_history (at, from_status, to_status, requested_by, event, status_after) \
             VALUES ('2026-11-30T12:00:01.000Z', 'activating', 'activated', 'a', 'activated', '{}')",
            [],
        )
        .unwrap();
        let Claim::Mine { next: Some(next), .. } = claim(&conn, "http://h/a").unwrap() else { panic!("an event") };
        assert_eq!((next.seq, next.event), (2, HistoryEvent::Activated));
        assert!(attempt_failed(&conn, "http://h/a", 2, 1, Timestamp::now(), "down").unwrap());
        assert!(finish(&conn, "http://h/a", &delivery(2, DeliveryOutcome::Delivered)).unwrap());
        assert!(!finish(&conn, "http://h/a", &delivery(2, DeliveryOutcome::Delivered)).unwrap(), "once");
        let (last, views) = report(&conn, &[("http://h/a".to_owned(), "shown".to_owned())]).unwrap();
        assert_eq!((last, views[0].backlog, views[0].delivered, views[0].attempts), (2, 0, 1, 0));
        assert_eq!(views[0].url, "shown");
        assert_eq!(views[0].recent.len(), 1);
    }
}

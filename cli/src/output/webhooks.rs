//! `cfy maintenance-mode webhooks` (SPEC §11): each URL's counts in the
//! look of `status` (tab-separated rows, only what applies), then its recent
//! deliveries as a Cloudify table, in the look of `history`.

use serde_json::{Map, Value};
use shared::{WebhookDelivery, WebhookView, Webhooks};

use super::TEXT_WIDTH;
use crate::table;

/// Deliveries shown per URL unless `--recent` says otherwise.
pub const DEFAULT_RECENT: usize = 10;
/// What the command prints when the manager has no `--webhook`.
pub const NO_WEBHOOKS: &str = "No webhooks are configured.";

/// Columns of the deliveries table; `-v` adds `error`.
const COLUMNS: [&str; 8] = ["id", "event", "outcome", "at", "attempts", "http", "latency", "error"];

/// `cfy maintenance-mode webhooks`: a block per URL, in the manager's order,
/// each with at most `recent` of its deliveries (none: no table).
pub fn webhooks_lines(answer: &Webhooks, recent: usize, verbose: bool) -> Vec<String> {
    if answer.webhooks.is_empty() {
        return vec![NO_WEBHOOKS.to_owned()];
    }
    answer.webhooks.iter().flat_map(|webhook| webhook_block(webhook, recent, verbose)).collect()
}

/// One URL: an empty line, `Webhook URL:`, its rows (only those that apply);
/// then, unless `recent` is 0, the table and `Showing X of Y recent deliveries`.
fn webhook_block(webhook: &WebhookView, recent: usize, verbose: bool) -> Vec<String> {
    let backlog = match webhook.backlog {
        0 => events(0),
        waiting => format!("{} (after event {})", events(waiting), webhook.delivered_through),
    };
    let fields = [
        ("Backlog", backlog),
        ("Delivered", events(webhook.delivered)),
        ("Failed", events(webhook.failed)),
        ("Next Attempt", next_attempt(webhook)),
        ("Delivering Replica", webhook.delivering_replica.clone()),
    ];
    let mut lines = vec![String::new(), format!("Webhook {}:", webhook.url)];
    lines.extend(
        fields.iter().filter(|(_, value)| !value.is_empty()).map(|(name, value)| format!("\t{name}:\t{value}")),
    );
    if recent == 0 {
        return lines;
    }
    let shown = &webhook.recent[..recent.min(webhook.recent.len())];
    let columns = if verbose { &COLUMNS[..] } else { &COLUMNS[..COLUMNS.len() - 1] };
    let rows: Vec<Map<String, Value>> = shown.iter().map(delivery_row).collect();
    lines.extend(table::print_data(columns, &[], &rows, "Recent deliveries:", Some(TEXT_WIDTH)));
    lines.push(format!("Showing {} of {} recent deliveries", shown.len(), webhook.recent.len()));
    lines
}

/// `0 events`, `1 event`, `12 events`.
fn events(count: u64) -> String {
    match count {
        1 => "1 event".to_owned(),
        count => format!("{count} events"),
    }
}

/// Empty unless an attempt failed: when the next one is due, which attempt
/// it will be, and why the last one failed.
fn next_attempt(webhook: &WebhookView) -> String {
    if webhook.attempts == 0 {
        return String::new();
    }
    let at = webhook.next_attempt_at.map_or_else(|| "not scheduled".to_owned(), |at| at.to_string());
    let error =
        if webhook.last_error.is_empty() { String::new() } else { format!("; last error: {}", webhook.last_error) };
    format!("{at} (attempt {}{error})", u64::from(webhook.attempts) + 1)
}

/// A delivery as the table's cells read it (`null`: a blank cell).
fn delivery_row(delivery: &WebhookDelivery) -> Map<String, Value> {
    let mut row = Map::new();
    row.insert("id".into(), delivery.event_id.into());
    row.insert("event".into(), delivery.event.as_str().into());
    row.insert("outcome".into(), delivery.outcome.as_str().into());
    row.insert("at".into(), delivery.at.to_string().into());
    row.insert("attempts".into(), delivery.attempts.into());
    row.insert("http".into(), delivery.status_code.map_or(Value::Null, Value::from));
    row.insert("latency".into(), latency(delivery.latency_ms).into());
    row.insert("error".into(), delivery.error.clone().into());
    row
}

/// From the event to its delivery: `12 ms` under 10 s, `42 s` under an
/// hour, then `2 h 5 min` (a delivery retried for hours).
pub fn latency(milliseconds: u64) -> String {
    match milliseconds {
        0..10_000 => format!("{milliseconds} ms"),
        10_000..3_600_000 => format!("{} s", milliseconds / 1000),
        _ => format!("{} h {} min", milliseconds / 3_600_000, milliseconds % 3_600_000 / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::{DeliveryOutcome, HistoryEvent};

    fn delivery(event_id: u64, event: HistoryEvent, latency_ms: u64) -> WebhookDelivery {
        WebhookDelivery {
            event_id,
            event,
            outcome: DeliveryOutcome::Delivered,
            at: "2026-11-30T12:00:00.125Z".parse().unwrap(),
            attempts: 1,
            status_code: Some(204),
            error: String::new(),
            latency_ms,
        }
    }

    fn healthy() -> WebhookView {
        WebhookView {
            url: "https://receiver.example/hook".into(),
            delivered_through: 12,
            backlog: 0,
            delivered: 12,
            failed: 0,
            attempts: 0,
            next_attempt_at: None,
            last_error: String::new(),
            delivering_replica: String::new(),
            recent: vec![delivery(12, HistoryEvent::Activated, 12), delivery(11, HistoryEvent::Activate, 8)],
        }
    }

    fn answer(webhooks: Vec<WebhookView>) -> Webhooks {
        Webhooks { last_event_id: 12, webhooks }
    }

    const RULE: &str = "+----+-----------+-----------+--------------------------+----------+------+---------+";
    const HEADER: &str = "| id |   event   |  outcome  |            at            | attempts | http | latency |";

    #[test]
    fn no_webhook_is_one_line() {
        assert_eq!(webhooks_lines(&answer(vec![]), DEFAULT_RECENT, false), [NO_WEBHOOKS]);
        assert_eq!(NO_WEBHOOKS, "No webhooks are configured.");
    }

    #[test]
    fn a_healthy_webhook_shows_its_counts_then_its_deliveries_newest_first() {
        assert_eq!(
            webhooks_lines(&answer(vec![healthy()]), DEFAULT_RECENT, false),
            [
                "",
                "Webhook https://receiver.example/hook:",
                "\tBacklog:\t0 events",
                "\tDelivered:\t12 events",
                "\tFailed:\t0 events",
                "",
                "Recent deliveries:",
                RULE,
                HEADER,
                RULE,
                "| 12 | activated | delivered | 2026-11-30 12:00:00.125  |    1     | 204  |  12 ms  |",
                "| 11 |  activate | delivered | 2026-11-30 12:00:00.125  |    1     | 204  |   8 ms  |",
                RULE,
                "",
                "Showing 2 of 2 recent deliveries",
            ]
        );
    }

    #[test]
    fn a_failing_webhook_shows_its_backlog_next_attempt_and_replica() {
        let mut failing = healthy();
        failing.backlog = 2;
        failing.delivered_through = 10;
        failing.delivered = 1;
        failing.failed = 1;
        failing.attempts = 2;
        failing.next_attempt_at = Some("2026-11-30T12:00:05.000Z".parse().unwrap());
        failing.last_error = "connection refused".into();
        failing.delivering_replica = "host:3000".into();
        let lines = webhooks_lines(&answer(vec![failing.clone()]), 0, false);
        assert_eq!(
            lines,
            [
                "",
                "Webhook https://receiver.example/hook:",
                "\tBacklog:\t2 events (after event 10)",
                "\tDelivered:\t1 event",
                "\tFailed:\t1 event",
                "\tNext Attempt:\t2026-11-30T12:00:05.000Z (attempt 3; last error: connection refused)",
                "\tDelivering Replica:\thost:3000",
            ]
        );

        failing.next_attempt_at = None;
        failing.last_error = String::new();
        assert_eq!(webhooks_lines(&answer(vec![failing]), 0, false)[5], "\tNext Attempt:\tnot scheduled (attempt 3)");
    }

    #[test]
    fn recent_limits_the_rows_and_verbose_adds_the_error_column() {
        let mut webhook = healthy();
        webhook.recent[0].outcome = DeliveryOutcome::Failed;
        webhook.recent[0].status_code = None;
        webhook.recent[0].attempts = 30;
        webhook.recent[0].latency_ms = 86_400_000;
        webhook.recent[0].error = "connection refused".into();
        let one = webhooks_lines(&answer(vec![webhook.clone()]), 1, false);
        assert_eq!(
            one[7..],
            [
                "+----+-----------+---------+--------------------------+----------+------+------------+",
                "| id |   event   | outcome |            at            | attempts | http |  latency   |",
                "+----+-----------+---------+--------------------------+----------+------+------------+",
                "| 12 | activated |  failed | 2026-11-30 12:00:00.125  |    30    |      | 24 h 0 min |",
                "+----+-----------+---------+--------------------------+----------+------+------------+",
                "",
                "Showing 1 of 2 recent deliveries",
            ]
        );
        let verbose = webhooks_lines(&answer(vec![webhook]), DEFAULT_RECENT, true);
        let rule = "+----+-----------+-----------+--------------------------+----------+------+------------+--------------------+";
        assert_eq!(
            verbose[7..],
            [
                rule,
                "| id |   event   |  outcome  |            at            | attempts | http |  latency   |       error        |",
                rule,
                "| 12 | activated |   failed  | 2026-11-30 12:00:00.125  |    30    |      | 24 h 0 min | connection refused |",
                "| 11 |  activate | delivered | 2026-11-30 12:00:00.125  |    1     | 204  |    8 ms    |                    |",
                rule,
                "",
                "Showing 2 of 2 recent deliveries",
            ]
        );
    }

    #[test]
    fn a_webhook_without_deliveries_has_an_empty_table_and_each_url_its_block() {
        let mut quiet = healthy();
        quiet.url = "http://second.example/".into();
        quiet.delivered = 0;
        quiet.recent.clear();
        let lines = webhooks_lines(&answer(vec![healthy(), quiet]), DEFAULT_RECENT, false);
        let second = lines.iter().position(|line| line == "Webhook http://second.example/:").unwrap();
        assert_eq!(lines[second - 2..second], ["Showing 2 of 2 recent deliveries", ""]);
        assert_eq!(
            lines[second + 4..],
            [
                "",
                "Recent deliveries:",
                "+----+-------+---------+----+----------+------+---------+",
                "| id | event | outcome | at | attempts | http | latency |",
                "+----+-------+---------+----+----------+------+---------+",
                "+----+-------+---------+----+----------+------+---------+",
                "",
                "Showing 0 of 0 recent deliveries",
            ]
        );
    }

    #[test]
    fn latency_reads_in_the_unit_that_fits() {
        assert_eq!(latency(0), "0 ms");
        assert_eq!(latency(9_999), "9999 ms");
        assert_eq!(latency(10_000), "10 s");
        assert_eq!(latency(3_599_999), "3599 s");
        assert_eq!(latency(3_600_000), "1 h 0 min");
        assert_eq!(latency(7_530_000), "2 h 5 min");
    }
}

//! Webhooks (SPEC §11), on the History page: each configured URL's backlog,
//! deliveries and failures, the attempt it is retrying, and its recent
//! deliveries. Read when the page opens, on every change the panel shows, on
//! every stream open, and every few seconds: a retry or a late delivery is no
//! change of the status, so the event stream says nothing of it. Answers are
//! taken in the order they were asked for. Admins only: hidden, without an
//! error, when the manager refuses the read (403).
//!
//! Read as JSON and shown as escaped markup, like the audit: typed rows (the
//! history's event names, outcomes, times) would only be turned back into
//! text, at a cost of kilobytes of wasm.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use serde_json::Value;

use crate::api;
use crate::clock;
use crate::markup;
use crate::session::Session;
use crate::task::Latest;

/// The section's start: constant markup.
const TITLE: &str = r#"<section class="card" aria-labelledby="webhooks-title"><h2 id="webhooks-title">Webhooks</h2><div id="webhooks">"#;

/// The section after a failed read: the error in words, until the next read
/// (without the last list under it: that cost the panel 160 bytes).
const FAILED: &str = r#"<section class="card" aria-labelledby="webhooks-title"><h2 id="webhooks-title">Webhooks</h2><p class="error" role="alert">{}</p></section>"#;

/// How often the deliveries are read while the page is open.
const EVERY: Duration = Duration::from_secs(5);

/// What the section says when no URL is configured.
const NONE: &str = r#"<p class="muted">No webhooks are configured.</p>"#;

/// A URL's recent deliveries: the table's start, labelled with the URL, and its head row.
const HEAD: &str = r#"<div class="scroll"><table aria-label="Recent deliveries to {}"><thead><tr><th>Event id</th><th>Event</th><th>Outcome</th><th>At</th><th>Attempts</th><th>HTTP status</th><th>Latency</th></tr></thead><tbody>"#;

/// The Webhooks section, read on demand (the page's reads) and every few
/// seconds until the calling component is gone.
#[derive(Clone)]
pub struct Webhooks(Rc<Reads>);

struct Reads {
    /// The section as markup; empty until the first answer and while the manager refuses (403).
    section: RwSignal<String>,
    /// What `section` was last set to.
    shown: RefCell<String>,
    latest: Latest,
    session: Session,
}

impl Webhooks {
    /// Shows the section in `section`, read every few seconds from now.
    pub fn watch(section: RwSignal<String>) -> Self {
        let session = expect_context::<Session>();
        let reads = Reads { section, shown: RefCell::default(), latest: Latest::default(), session };
        let webhooks = Self(Rc::new(reads));
        let every = webhooks.clone();
        if let Ok(interval) = set_interval_with_handle(move || every.read(), EVERY) {
            on_cleanup(move || interval.clear());
        }
        webhooks
    }

    /// Reads the deliveries once. (Once the component is gone, nothing calls
    /// this; an answer in flight then sets nothing.)
    pub fn read(&self) {
        let (reads, number) = (self.0.clone(), self.0.latest.ask());
        spawn_local(async move {
            let answer = api::webhooks(&reads.session.token).await;
            // An answer overtaken by a later read is dropped, its error too.
            if !reads.latest.is_last(number) {
                return;
            }
            let mut html = String::new();
            match answer {
                // Only admins' pages read it; one whose role was taken away meanwhile sees it go.
                Err(error) if error.is_forbidden() => {}
                Err(error) => markup::fill(&mut html, FAILED, &[&reads.session.explain(&error)]),
                Ok(answer) => urls(&mut html, &answer, &clock::local_text),
            }
            // Unchanged, the section stays as it is: the reader's place in it (a scrolled table,
            // a selection) and an error's alert are not redone every few seconds.
            if *reads.shown.borrow() != html {
                reads.section.try_set(html.clone());
                reads.shown.replace(html);
            }
        });
    }
}

/// A number field of an item read as JSON, as text (`0` if it has none).
fn number(item: &Value, name: &str) -> String {
    item[name].as_u64().unwrap_or_default().to_string()
}

/// Each URL (`shared::Webhooks` as JSON): its counts, the event it is retrying
/// and why, the replica delivering to it, and its recent deliveries, newest first.
fn urls(html: &mut String, answer: &Value, time: &dyn Fn(&str) -> String) {
    html.push_str(TITLE);
    let webhooks = answer["webhooks"].as_array().map_or(&[][..], Vec::as_slice);
    if webhooks.is_empty() {
        html.push_str(NONE);
    }
    for webhook in webhooks {
        let text = |name| api::text(webhook, name);
        let url = text("url");
        markup::fill(
            html,
            "<div class=\"webhook\" data-url=\"{}\"><h3>{}</h3><p>Backlog {} · delivered {} · failed {}</p>",
            &[url, url, &number(webhook, "backlog"), &number(webhook, "delivered"), &number(webhook, "failed")],
        );
        let attempts = number(webhook, "attempts");
        if attempts != "0" {
            let template = "<p class=\"note\">Retrying: {} failed attempt(s), the last: {}.";
            markup::fill(html, template, &[&attempts, text("last_error")]);
            let next = api::text(webhook, "next_attempt_at");
            if !next.is_empty() {
                markup::fill(html, " Next attempt {}.", &[&time(next)]);
            }
            html.push_str("</p>");
        }
        let replica = text("delivering_replica");
        if !replica.is_empty() {
            markup::fill(html, "<p>Delivered by replica {}</p>", &[replica]);
        }
        markup::fill(html, HEAD, &[url]);
        for delivery in webhook["recent"].as_array().map_or(&[][..], Vec::as_slice) {
            let text = |name| api::text(delivery, name);
            let (event, outcome, error) = (text("event"), text("outcome"), text("error"));
            // No status when no answer came back (null).
            let status = delivery["status_code"].as_u64().map(|code| code.to_string()).unwrap_or_default();
            markup::fill(
                html,
                "<tr data-outcome=\"{}\"><td>{}</td><td>{}</td><td>{}{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ms</td></tr>",
                &[
                    outcome,
                    &number(delivery, "event_id"),
                    event,
                    outcome,
                    if error.is_empty() { "" } else { ": " },
                    error,
                    &time(text("at")),
                    &number(delivery, "attempts"),
                    &status,
                    &number(delivery, "latency_ms"),
                ],
            );
        }
        html.push_str("</tbody></table></div></div>");
    }
    html.push_str("</div></section>");
}

#[cfg(test)]
mod tests {
    use shared::{DeliveryOutcome, HistoryEvent, WebhookDelivery, WebhookView, Webhooks};

    use super::*;

    fn delivery(event_id: u64, event: HistoryEvent, outcome: DeliveryOutcome) -> WebhookDelivery {
        WebhookDelivery {
            event_id,
            event,
            outcome,
            at: "2030-01-01T08:00:00.000Z".parse().expect("a timestamp"),
            attempts: 1,
            status_code: Some(204),
            error: String::new(),
            latency_ms: 12,
        }
    }

    fn url(url: &str) -> WebhookView {
        WebhookView {
            url: url.into(),
            delivered_through: 0,
            backlog: 0,
            delivered: 0,
            failed: 0,
            attempts: 0,
            next_attempt_at: None,
            last_error: String::new(),
            delivering_replica: String::new(),
            recent: Vec::new(),
        }
    }

    /// The answer as the manager sends it, shown with `[time]` for each local time.
    fn shown(webhooks: Vec<WebhookView>) -> String {
        let answer = serde_json::to_value(Webhooks { last_event_id: 9, webhooks }).expect("JSON");
        let mut html = String::new();
        urls(&mut html, &answer, &|at| format!("[{at}]"));
        html
    }

    #[test]
    fn each_url_shows_its_counts_and_its_recent_deliveries_newest_first() {
        let failed = WebhookDelivery {
            attempts: 30,
            status_code: None,
            error: "connection refused".into(),
            latency_ms: 86_400_000,
            ..delivery(6, HistoryEvent::Deactivated, DeliveryOutcome::Failed)
        };
        let view = WebhookView {
            delivered_through: 8,
            backlog: 1,
            delivered: 7,
            failed: 1,
            recent: vec![delivery(8, HistoryEvent::Activate, DeliveryOutcome::Delivered), failed],
            ..url("http://127.0.0.1:9000/hook")
        };
        let html = shown(vec![view, url("https://example.com/<b>")]);
        assert!(
            html.starts_with(
                "<section class=\"card\" aria-labelledby=\"webhooks-title\"><h2 id=\"webhooks-title\">Webhooks</h2>\
                 <div id=\"webhooks\"><div class=\"webhook\" data-url=\"http://127.0.0.1:9000/hook\"><h3>\
                 http://127.0.0.1:9000/hook</h3><p>Backlog 1 · delivered 7 · failed 1</p><div class=\"scroll\">\
                 <table aria-label=\"Recent deliveries to http://127.0.0.1:9000/hook\"><thead>"
            ),
            "{html}"
        );
        assert!(
            html.contains(
                "<tr data-outcome=\"delivered\"><td>8</td><td>activate</td>\
                 <td>delivered</td><td>[2030-01-01T08:00:00.000Z]</td><td>1</td><td>204</td><td>12 ms</td></tr>\
                 <tr data-outcome=\"failed\"><td>6</td><td>deactivated</td>\
                 <td>failed: connection refused</td><td>[2030-01-01T08:00:00.000Z]</td><td>30</td><td></td>\
                 <td>86400000 ms</td></tr></tbody></table></div></div>"
            ),
            "{html}"
        );
        assert!(!html.contains("Next attempt") && !html.contains("replica"), "{html}");
        assert!(
            html.ends_with(
                "<div class=\"webhook\" data-url=\"https://example.com/&lt;b&gt;\"><h3>\
                 https://example.com/&lt;b&gt;</h3><p>Backlog 0 · delivered 0 · failed 0</p><div class=\"scroll\">\
                 <table aria-label=\"Recent deliveries to https://example.com/&lt;b&gt;\"><thead><tr><th>Event id</th>\
                 <th>Event</th><th>Outcome</th><th>At</th><th>Attempts</th><th>HTTP status</th><th>Latency</th></tr>\
                 </thead><tbody></tbody></table></div></div></div></section>"
            ),
            "{html}"
        );
    }

    #[test]
    fn a_url_being_retried_says_why_and_when_next_and_who_delivers() {
        let view = WebhookView {
            delivered_through: 4,
            backlog: 2,
            attempts: 3,
            next_attempt_at: Some("2030-01-01T08:00:04.000Z".parse().expect("a timestamp")),
            last_error: "HTTP 500 <oops>".into(),
            delivering_replica: "replica-2".into(),
            ..url("http://hooks.example/a")
        };
        let html = shown(vec![view]);
        assert!(
            html.contains(
                "<p>Backlog 2 · delivered 0 · failed 0</p><p class=\"note\">Retrying: 3 failed attempt(s), the last: \
                 HTTP 500 &lt;oops&gt;. Next attempt [2030-01-01T08:00:04.000Z].</p>\
                 <p>Delivered by replica replica-2</p>"
            ),
            "{html}"
        );
        let view = WebhookView { attempts: 1, last_error: "timed out".into(), ..url("http://hooks.example/b") };
        assert!(shown(vec![view]).contains("1 failed attempt(s), the last: timed out.</p>"));
    }

    #[test]
    fn without_urls_the_section_says_none_are_configured() {
        let none = format!("{TITLE}{NONE}</div></section>");
        assert_eq!(shown(Vec::new()), none);
        let mut html = String::new();
        urls(&mut html, &serde_json::json!({}), &|at| at.into());
        assert_eq!(html, none);
    }
}

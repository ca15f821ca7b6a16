//! The History page (SPEC §10): a picture of the last 30 days (windows and
//! the periods maintenance mode was on), then the audit, 50 rows a page,
//! newest first. Both are read again for every change the panel shows.
//! Admins also see the webhooks' deliveries (`webhooks.rs`).
//!
//! The audit is read as JSON values and shown as text: typed rows (eleven
//! event names, optional ids) would only be turned back into text, at a
//! cost of kilobytes of wasm.

use leptos::prelude::*;
use serde_json::Value;
use wasm_bindgen::JsCast;

use crate::api;
use crate::clock::{self, DAY};
use crate::components::webhooks::Webhooks;
use crate::live::Live;
use crate::markup;
use crate::session::Session;
use crate::task::{Latest, Task};
use crate::timeline::{self, Bar};

/// Rows per page of the audit.
const PAGE: u64 = 50;

/// The audit's head row: constant markup.
const HEAD: &str = r#"<table id="history"><thead><tr><th>When</th><th>Who</th><th>From → to</th><th>Event</th><th>Reason</th><th>Detail</th></tr></thead><tbody>"#;

/// The picture's key: constant markup.
const KEY: &str = r#"<p class="muted" aria-hidden="true">Windows: <span class="key scheduled"></span>scheduled <span class="key active"></span>active <span class="key ended"></span>ended <span class="key cancelled"></span>cancelled <span class="key missed"></span>missed · <span class="key on"></span>maintenance mode on</p>"#;

/// The History page.
#[component]
pub fn HistoryPage() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = StoredValue::new(expect_context::<Session>());
    let offset = RwSignal::new(0u64);
    // The audit page with its pager, and the picture with its key, as markup.
    let (audit, picture) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    // The webhooks' section, as markup: admins only.
    let hooks = RwSignal::new(String::new());
    let webhooks = expect_context::<Session>().is_admin.then(|| Webhooks::watch(hooks));
    let latest = Latest::default();
    let load = Task::new();
    Effect::new(move |_| {
        live.epoch();
        live.reloads.track();
        let offset = offset.get();
        // Read with the rest (and on its own every few seconds): a page turn reads it too, which is harmless.
        if let Some(webhooks) = &webhooks {
            webhooks.read();
        }
        let Some(session) = session.try_get_value() else { return };
        let (latest, number) = (latest.clone(), latest.ask());
        load.run(async move {
            let explain = |error| session.explain(&error);
            let page = api::history(&session.token, PAGE, offset).await.map_err(explain)?;
            let windows = api::windows(&session.token).await.map_err(explain)?;
            let recent = api::history(&session.token, 1000, 0).await.map_err(explain)?;
            if latest.is_last(number) {
                let total = page["metadata"]["pagination"]["total"].as_u64().unwrap_or_default();
                let mut html = rows(api::items(&page), &clock::local_text);
                html.push_str(&pager(offset, total));
                audit.try_set(html);
                let mut html = recent_picture(api::items(&windows), api::items(&recent));
                html.push_str(KEY);
                picture.try_set(html);
            }
            Ok(String::new())
        });
    });
    // Previous and Next carry the offset of their page.
    let turn = move |event: leptos::ev::MouseEvent| {
        let button = event.target().and_then(|target| target.dyn_into::<web_sys::Element>().ok());
        if let Some(to) = button.and_then(|button| button.get_attribute("data-offset")?.parse().ok()) {
            offset.set(to);
        }
    };
    view! {
        {move || load.error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
        <section class="card" aria-labelledby="timeline-title">
            <h2 id="timeline-title">"The last 30 days"</h2>
            <div id="timeline" inner_html=move || picture.get()></div>
        </section>
        <section class="card" aria-labelledby="history-title">
            <h2 id="history-title">"History"</h2>
            <div class="scroll" on:click=turn inner_html=move || audit.get()></div>
        </section>
        <div inner_html=move || hooks.get()></div>
    }
}

/// Which rows are shown, with Previous and Next (each carrying its page's offset).
fn pager(offset: u64, total: u64) -> String {
    if total == 0 {
        return "<p class=\"muted\">No history yet.</p>".into();
    }
    let (first, last) = (offset + 1, (offset + PAGE).min(total));
    let button = |id: &str, to: u64, disabled: bool, label: &str| {
        let disabled = if disabled { " disabled" } else { "" };
        format!("<button id=\"history-{id}\" class=\"secondary\" data-offset=\"{to}\"{disabled}>{label}</button>")
    };
    format!(
        "<p class=\"pager\">{}<span id=\"history-rows\">Rows {first}–{last} of {total}</span>{}</p>",
        button("previous", offset.saturating_sub(PAGE), offset == 0, "Previous"),
        button("next", offset + PAGE, last >= total, "Next"),
    )
}

/// The audit page as a table: who, when, from → to, event, reason, detail.
fn rows(transitions: &[Value], time: &dyn Fn(&str) -> String) -> String {
    let mut html = String::from(HEAD);
    for row in transitions {
        let text = |name| api::text(row, name);
        let (from, to, event) = (text("from"), text("to"), markup::escape(text("event")));
        html.push_str(&format!("<tr data-event=\"{event}\">"));
        markup::cell(&mut html, &time(text("at")));
        markup::cell(&mut html, text("requested_by"));
        markup::cell(&mut html, &if from == to { from.to_owned() } else { format!("{from} → {to}") });
        markup::cell(&mut html, &event);
        markup::cell(&mut html, text("reason"));
        markup::cell(&mut html, text("detail"));
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    html
}

/// The picture of the last 30 days: each window from its start to its end
/// (or now), each period maintenance mode was on, a tick at each local midnight.
fn recent_picture(windows: &[Value], rows: &[Value]) -> String {
    let now = clock::now();
    let from = now - 30 * DAY;
    let mut bars = Vec::new();
    for window in windows {
        let field = |name| api::text(window, name);
        // The state as the picture's class: one of the five, whatever the manager sent.
        let state = ["scheduled", "active", "ended", "cancelled"]
            .into_iter()
            .find(|state| *state == field("state"))
            .unwrap_or("missed");
        let planned_end = match field("ends_at") {
            "" => None,
            end => Some(end),
        };
        // An ended window ends when it did (it may have been ended early); an open one, now.
        let end = match (state, field("ended_at")) {
            ("ended", ended) if !ended.is_empty() => Some(ended),
            _ => planned_end,
        };
        let mut words = format!(
            "Window {state}: {} to {}, by {}",
            clock::local_text(field("starts_at")),
            planned_end.map_or_else(|| "no end set".into(), clock::local_text),
            field("created_by")
        );
        if !field("reason").is_empty() {
            words.push_str(": ");
            words.push_str(field("reason"));
        }
        let (start, end) = (clock::parse(field("starts_at")), end.map_or(now, clock::parse));
        bars.push(Bar { from: start, to: end, period: false, state, words });
    }
    let on = |row: &Value, name: &'static str| !matches!(api::text(row, name), "deactivated" | "");
    let changes: Vec<_> =
        rows.iter().map(|row| (clock::parse(api::text(row, "at")), on(row, "from"), on(row, "to"))).collect();
    for (start, end) in timeline::periods(&changes) {
        let words = format!(
            "Maintenance mode on: {} to {}",
            start.map_or_else(|| "before the oldest row read".into(), clock::local),
            end.map_or_else(|| "now".into(), clock::local)
        );
        bars.push(Bar { from: start.unwrap_or(from), to: end.unwrap_or(now), period: true, state: "on", words });
    }
    let midnight = clock::midnight();
    let ticks: Vec<_> = (0..=30)
        .map(|day| {
            let at = midnight - day * DAY;
            (at, if day % 7 == 0 { clock::local_date(at) } else { String::new() })
        })
        .collect();
    timeline::picture(&bars, &ticks, from, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_rows_say_who_when_what_and_escape_the_managers_text() {
        let page = serde_json::json!({"items": [
            {"at": "2030-01-01T08:00:00.000Z", "from": "deactivated", "to": "activating", "requested_by": "admin",
             "reason": "<b>upgrade</b>", "event": "activate", "window_id": null, "detail": ""},
            {"at": "2030-01-01T07:00:00.000Z", "from": "deactivated", "to": "deactivated", "requested_by": "ops",
             "reason": "", "event": "window_scheduled", "window_id": null, "detail": "ends 10:00"},
        ]});
        let html = rows(api::items(&page), &|at| format!("[{at}]"));
        assert!(html.starts_with("<table id=\"history\"><thead>"), "{html}");
        assert!(
            html.contains(
                "<tr data-event=\"activate\"><td>[2030-01-01T08:00:00.000Z]</td><td>admin</td>\
                 <td>deactivated → activating</td><td>activate</td><td>&lt;b&gt;upgrade&lt;/b&gt;</td><td></td></tr>"
            ),
            "{html}"
        );
        assert!(html.contains("<td>ops</td><td>deactivated</td><td>window_scheduled</td><td></td><td>ends 10:00</td>"));
        assert_eq!(rows(api::items(&serde_json::json!({})), &|at| at.to_owned()), format!("{HEAD}</tbody></table>"));
    }

    #[test]
    fn the_pager_says_which_rows_are_shown_and_offers_the_pages_around() {
        assert_eq!(
            pager(0, 120),
            "<p class=\"pager\"><button id=\"history-previous\" class=\"secondary\" data-offset=\"0\" disabled>\
             Previous</button><span id=\"history-rows\">Rows 1–50 of 120</span><button id=\"history-next\" \
             class=\"secondary\" data-offset=\"50\">Next</button></p>"
        );
        let last = pager(100, 120);
        assert!(last.contains("Rows 101–120 of 120") && last.contains(r#"data-offset="50">Previous"#), "{last}");
        assert!(last.contains(r#"data-offset="150" disabled>Next"#), "{last}");
        assert_eq!(pager(0, 0), "<p class=\"muted\">No history yet.</p>");
    }
}

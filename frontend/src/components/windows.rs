//! Maintenance windows (SPEC §10): the Schedule form (admins) and the list,
//! newest start first, with Extend and Cancel (admins). The list is read
//! again for every change the panel shows (a window's notice, start or end
//! is one), on every stream open, and after each action here.
//!
//! The form's fields and the list's rows are markup written once (the list:
//! again after each read), read and answered through one listener each:
//! a view per field and per row would cost the panel kilobytes of wasm.

use leptos::ev::{MouseEvent, SubmitEvent};
use leptos::prelude::*;
use serde_json::Value;
use shared::{ExtendWindow, MaintenanceMode, NewWindow};
use uuid::Uuid;
use wasm_bindgen::JsCast;
use web_sys::Element;

use crate::api::{self, WindowChange};
use crate::clock;
use crate::form;
use crate::live::Live;
use crate::markup;
use crate::session::Session;
use crate::task::{Latest, Task};

/// The class of a row's Cancel (or End now) button.
const CANCEL: &str = "secondary cancel";

/// The Schedule form's fields: constant markup, no user text.
const SCHEDULE_FIELDS: &str = r#"<h2>Schedule a maintenance window</h2><label>Start (local time) <input id="window-start" name="starts_at" type="datetime-local" required></label><label>End (local time, optional) <input id="window-end" name="ends_at" type="datetime-local"></label><label>Reason <input id="window-reason" name="reason" maxlength="1000"></label><label>Notice in minutes <input id="window-notice" name="notice_minutes" type="number" min="0" max="43200" value="60"></label><label>Drain deadline in seconds (optional) <input id="window-drain" name="drain_deadline" type="number" min="1" max="604800"></label><label class="check"><input id="window-read-only" name="read_only" type="checkbox"> Read-only: reads still pass</label><button id="schedule">Schedule</button>"#;

/// The list's head row: constant markup.
const HEAD: &str = r#"<table id="windows"><thead><tr><th>State</th><th>Start</th><th>End</th><th>Reason</th><th>Mode</th><th>By</th><th><span class="visually-hidden">Actions</span></th></tr></thead><tbody>"#;

/// The Schedule form (admins) and the windows list.
#[component]
pub fn Windows() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = StoredValue::new(expect_context::<Session>());
    let is_admin = expect_context::<Session>().is_admin;
    // The list as markup.
    let list = RwSignal::new(String::new());
    let latest = Latest::default();
    let load = Task::new();
    Effect::new(move |_| {
        live.epoch();
        live.reloads.track();
        let Some(session) = session.try_get_value() else { return };
        let (latest, number) = (latest.clone(), latest.ask());
        load.run(async move {
            let answer = api::windows(&session.token).await.map_err(|error| session.explain(&error))?;
            if latest.is_last(number) {
                list.try_set(rows(api::items(&answer), is_admin, &clock::local_text));
            }
            Ok(String::new())
        });
    });
    // Schedule, Extend and Cancel: each answer in words above the list; a change reads the list again.
    let act = Task::new();
    let run = move |change: Result<WindowChange, &'static str>| {
        let Some(session) = session.try_get_value() else { return };
        act.run(async move {
            let window = api::change_window(&session.token, &change?).await.map_err(|error| session.explain(&error))?;
            live.reloads.notify();
            let field = |name| api::text(&window, name);
            let end = match field("ends_at") {
                "" => "no end set".into(),
                end => clock::local_text(end),
            };
            Ok(format!("The window from {} to {end} is {}.", clock::local_text(field("starts_at")), field("state")))
        });
    };
    let schedule = move |event: SubmitEvent| {
        event.prevent_default();
        if let Some(data) = form::data(&event) {
            run(new_window(&data).map(WindowChange::Schedule));
        }
    };
    let cancel = move |event: MouseEvent| {
        let Some(button) = event.target().and_then(|target| target.dyn_into::<Element>().ok()) else { return };
        if let Some(id) = window_id(&button).filter(|_| button.class_name() == CANCEL) {
            run(Ok(WindowChange::Cancel(id)));
        }
    };
    let extend = move |event: SubmitEvent| {
        event.prevent_default();
        let Some(form) = event.target().and_then(|target| target.dyn_into::<Element>().ok()) else { return };
        let ends_at = form::data(&event).and_then(|data| clock::utc(&form::text(data.get("ends_at"))));
        if let Some(id) = window_id(&form) {
            run(ends_at.map(|ends_at| WindowChange::Extend(id, ExtendWindow { ends_at })).ok_or(NOT_A_TIME));
        }
    };
    view! {
        {is_admin.then(|| view! {
            <form class="card schedule" aria-label="Schedule a maintenance window" on:submit=schedule
                inner_html=SCHEDULE_FIELDS></form>
        })}
        <section class="card" aria-labelledby="windows-title">
            <h2 id="windows-title">"Maintenance windows"</h2>
            {move || load.error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || act.outcome().map(|said| {
                let (class, text) = match said {
                    Ok(text) => ("ok", text),
                    Err(text) => ("error", text),
                };
                view! { <p class=class role="alert">{text}</p> }
            })}
            <div class="scroll" on:click=cancel on:submit=extend inner_html=move || list.get()></div>
        </section>
    }
}

/// What the panel says when a time input holds no date and time.
const NOT_A_TIME: &str = "The new end is not a date and time.";

/// The window the Schedule form asks for: local times as UTC, the notice in seconds.
fn new_window(data: &web_sys::FormData) -> Result<NewWindow, &'static str> {
    let field = |name| form::text(data.get(name));
    let ends = field("ends_at");
    let starts_at = clock::utc(&field("starts_at")).ok_or("The start is not a date and time.")?;
    let ends_at = clock::utc(&ends);
    if ends_at.is_none() && !ends.is_empty() {
        return Err("The end is not a date and time.");
    }
    Ok(NewWindow {
        starts_at,
        ends_at,
        reason: field("reason"),
        notice_seconds: form::number(data.get("notice_minutes")).map(|minutes| minutes.saturating_mul(60)),
        drain_deadline_seconds: form::number(data.get("drain_deadline")),
        mode: data.has("read_only").then_some(MaintenanceMode::ReadOnly),
    })
}

/// The window a row's button or form belongs to (its `data-id`).
fn window_id(element: &Element) -> Option<Uuid> {
    Uuid::try_parse(&element.get_attribute("data-id")?).ok()
}

/// The list as a table, newest start first as the manager lists them; an
/// admin gets Extend and Cancel (End now, for the active one) on those not over.
fn rows(windows: &[Value], admin: bool, time: &dyn Fn(&str) -> String) -> String {
    if windows.is_empty() {
        return "<p class=\"muted\">No windows yet.</p>".into();
    }
    let mut html = String::from(HEAD);
    for window in windows {
        let field = |name| api::text(window, name);
        let (id, state) = (markup::escape(field("id")), markup::escape(field("state")));
        html.push_str(&format!(
            "<tr data-window-id=\"{id}\" data-state=\"{state}\"><td><span class=\"badge window-{state}\">{state}</span></td>"
        ));
        let start = time(field("starts_at"));
        markup::cell(&mut html, &start);
        markup::cell(&mut html, &Some(field("ends_at")).filter(|end| !end.is_empty()).map_or_else(|| "—".into(), time));
        for name in ["reason", "mode", "created_by"] {
            markup::cell(&mut html, field(name));
        }
        html.push_str("<td>");
        let stop = match field("state") {
            "scheduled" => "Cancel",
            "active" => "End now",
            _ => "",
        };
        if admin && !stop.is_empty() {
            // Named for the window's start: the rows' controls differ for screen readers too.
            let start = markup::escape(&start);
            html.push_str(&format!(
                "<form class=\"actions\" data-id=\"{id}\">\
                 <input type=\"datetime-local\" name=\"ends_at\" required \
                 aria-label=\"New end (local time) of the window from {start}\">\
                 <button class=\"secondary extend\" aria-label=\"Extend the window from {start}\">Extend</button>\
                 <button type=\"button\" class=\"{CANCEL}\" data-id=\"{id}\" \
                 aria-label=\"{stop} the window from {start}\">{stop}</button></form>"
            ));
        }
        html.push_str("</td></tr>");
    }
    html.push_str("</tbody></table>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(id: u128, state: &str, reason: &str) -> Value {
        serde_json::json!({
            "id": Uuid::from_u128(id), "state": state, "starts_at": "2030-01-01T08:00:00.000Z", "ends_at": "",
            "reason": reason, "notice_seconds": 3600, "drain_deadline_seconds": null, "mode": "read_only",
            "created_by": "admin", "created_at": "2029-12-31T08:00:00.000Z", "ended_at": "",
        })
    }

    #[test]
    fn rows_escape_the_reason_and_offer_actions_to_admins_on_windows_not_over() {
        let list =
            [window(1, "scheduled", "<script>x</script>"), window(2, "active", "now"), window(3, "ended", "done")];
        let time = |at: &str| format!("[{at}]");
        let html = rows(&list, true, &time);
        assert!(html.contains("<td>&lt;script&gt;x&lt;/script&gt;</td>"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert_eq!(html.matches("<tr data-window-id").count(), 3);
        assert_eq!(html.matches(r#"class="secondary extend""#).count(), 2, "not on the ended one: {html}");
        assert!(html.contains(">Cancel</button>") && html.contains(">End now</button>"), "{html}");
        assert!(html.contains("<td>[2030-01-01T08:00:00.000Z]</td><td>—</td>"), "{html}");
        assert!(html.contains("<td>read_only</td><td>admin</td>"), "{html}");
        let html = rows(&list, false, &time);
        assert!(!html.contains("<form"), "no actions for a user: {html}");
        assert_eq!(rows(&[], true, &time), "<p class=\"muted\">No windows yet.</p>");
    }
}

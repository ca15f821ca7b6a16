//! The status card: every field of the status object (SPEC §2, §7, §10).

use std::time::Duration;

use leptos::prelude::*;
use shared::{MaintenanceMode, MaintenanceState, MaintenanceStatus, Timestamp};

use crate::clock;
use crate::components::replicas::Replicas;
use crate::live::local_time;

/// Shows one status object, and how many replicas enforce it.
#[component]
pub fn StatusCard(status: MaintenanceStatus, replicas: Replicas) -> impl IntoView {
    let state = status.status;
    let shown = |value: String| if value.is_empty() { "—".to_owned() } else { value };
    let time = |at: Option<Timestamp>| {
        at.map(|at| view! { <time datetime=at.to_string() title=at.to_string()>{local_time(&at)}</time> }.into_any())
            .unwrap_or_else(|| "—".into_any())
    };
    view! {
        <section class="card" aria-label="Maintenance mode status">
            <h2>
                "Status: "
                <span class=format!("state state-{}", state.as_str()) data-state=state.as_str()>
                    {state.as_str()}
                </span>
            </h2>
            {(state == MaintenanceState::Activating)
                .then(|| view! { <progress class="waiting" aria-label="Waiting for executions to finish"></progress> })}
            <dl>
                <dt>"Requested by"</dt>
                <dd>{shown(status.requested_by)}</dd>
                <dt>"Activated at"</dt>
                <dd>{time(status.activated_at)}</dd>
                <dt>"Activation requested at"</dt>
                <dd>{time(status.activation_requested_at)}</dd>
                <dt>"Remaining executions"</dt>
                <dd id="remaining-count">{status.remaining_executions.len()}</dd>
                <dt>"Reason"</dt>
                <dd id="status-reason">{shown(status.reason)}</dd>
                {status.mode.map(|mode| view! {
                    <dt>"Mode"</dt>
                    <dd id="status-mode" data-mode=mode.as_str()>
                        {if mode == MaintenanceMode::ReadOnly { "read-only: reads still pass" } else { "full" }}
                    </dd>
                })}
                {status.drain_deadline_at.map(|at| view! {
                    <dt>"Drain deadline"</dt>
                    <dd id="drain-deadline">
                        {time(Some(at))}
                        {(state == MaintenanceState::Activating).then(|| countdown(clock::millis(&at)))}
                    </dd>
                })}
                {replicas.line()}
            </dl>
        </section>
    }
}

/// "Drain deadline in 1 min 23 s", ticking each second while the card
/// (remade for every status) shows `activating`. The interval writes the
/// text itself: a signal and a reactive text cost the panel more wasm.
fn countdown(deadline: i64) -> impl IntoView {
    let tick = move || {
        if let Some(shown) = document().get_element_by_id("drain-countdown") {
            shown.set_text_content(Some(&left(deadline - clock::now())));
        }
    };
    if let Ok(interval) = set_interval_with_handle(tick, Duration::from_secs(1)) {
        on_cleanup(move || interval.clear());
    }
    view! { <span id="drain-countdown" class="countdown" role="timer">{left(deadline - clock::now())}</span> }
}

/// The countdown's words, `ms` before the deadline.
fn left(ms: i64) -> String {
    if ms > 0 {
        format!("Drain deadline in {}", clock::duration(ms))
    } else {
        "Drain deadline passed: remaining executions are being cancelled".into()
    }
}

//! The status card: every field of the status object (SPEC §2, §7).

use leptos::prelude::*;
use shared::{MaintenanceState, MaintenanceStatus, Timestamp};

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
                {replicas.line()}
            </dl>
        </section>
    }
}

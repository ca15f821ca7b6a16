//! The status card: every field of the status object (SPEC §2, §7).

use leptos::prelude::*;
use shared::{MaintenanceState, MaintenanceStatus};

/// Shows one status object.
#[component]
pub fn StatusCard(status: MaintenanceStatus) -> impl IntoView {
    let state = status.status;
    let shown = |value: String| if value.is_empty() { "—".to_owned() } else { value };
    let time = |at: Option<shared::Timestamp>| at.map(|at| at.to_string()).unwrap_or_default();
    let remaining = status.remaining_executions.len();
    view! {
        <section class="card" aria-label="Maintenance mode status">
            <h2>
                "Status: "
                <span class=format!("state state-{}", state.as_str()) data-state=state.as_str()>
                    {state.as_str()}
                </span>
            </h2>
            <dl>
                <dt>"Requested by"</dt>
                <dd>{shown(status.requested_by)}</dd>
                <dt>"Activation requested at"</dt>
                <dd>{shown(time(status.activation_requested_at))}</dd>
                <dt>"Activated at"</dt>
                <dd>{shown(time(status.activated_at))}</dd>
                <dt>"Reason"</dt>
                <dd>{shown(status.reason)}</dd>
                <dt>"Remaining executions"</dt>
                <dd>{remaining}</dd>
            </dl>
            {(state == MaintenanceState::Activating)
                .then(|| view! { <p class="note">"Waiting for the remaining executions to finish."</p> })}
        </section>
    }
}

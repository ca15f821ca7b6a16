//! The banner on every page while maintenance mode is on or coming.

use leptos::prelude::*;
use shared::MaintenanceState;

use crate::live::{local_time, Live};

/// Amber while activating (with the remaining count), red while activated
/// (reason, who, since when in local time), nothing when off.
#[component]
pub fn Banner() -> impl IntoView {
    let live = expect_context::<Live>();
    move || {
        let status = live.status()?;
        let (class, text) = match status.status {
            MaintenanceState::Deactivated => return None,
            MaintenanceState::Activating => {
                let count = status.remaining_executions.len();
                let executions = if count == 1 { "1 execution".to_owned() } else { format!("{count} executions") };
                ("banner amber", format!("Entering maintenance mode — {executions} still running"))
            }
            MaintenanceState::Activated => {
                let reason = if status.reason.is_empty() { String::new() } else { format!(": {}", status.reason) };
                let since = status.activated_at.as_ref().map(local_time).unwrap_or_default();
                (
                    "banner red",
                    format!("Maintenance mode is on{reason} — requested by {} — since {since}", status.requested_by),
                )
            }
        };
        Some(view! {
            <div id="banner" class=class role="status" data-state=status.status.as_str()>
                {text}
            </div>
        })
    }
}

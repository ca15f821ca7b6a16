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
                let plural = if count == 1 { "" } else { "s" };
                ("banner amber", format!("Entering maintenance mode — {count} execution{plural} still running"))
            }
            MaintenanceState::Activated => {
                let colon = if status.reason.is_empty() { "" } else { ": " };
                let since = status.activated_at.as_ref().map(local_time).unwrap_or_default();
                let (reason, by) = (&status.reason, &status.requested_by);
                ("banner red", format!("Maintenance mode is on{colon}{reason} — requested by {by} — since {since}"))
            }
        };
        Some(view! {
            <div id="banner" class=class role="status" data-state=status.status.as_str()>
                {text}
            </div>
        })
    }
}

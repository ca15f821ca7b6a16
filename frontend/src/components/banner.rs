//! The banners on every page while maintenance mode is on or coming.

use leptos::prelude::*;
use shared::{MaintenanceState, WindowState};

use crate::live::{local_time, Live};

/// Amber while activating (with the remaining count), red while activated
/// (reason, who, since when in local time), nothing when off; above them, a
/// notice while a scheduled window is in its notice period (SPEC §10).
#[component]
pub fn Banner() -> impl IntoView {
    let live = expect_context::<Live>();
    let notice = move || {
        let window = live.with_status(|status| status?.upcoming.clone())?;
        if window.state != WindowState::Scheduled {
            return None;
        }
        let mut text = format!("Maintenance is scheduled from {}", local_time(&window.starts_at));
        match &window.ends_at {
            Some(end) => text.push_str(&format!(" to {}", local_time(end))),
            None => text.push_str(" until an admin ends it"),
        }
        if !window.reason.is_empty() {
            text.push_str(": ");
            text.push_str(&window.reason);
        }
        Some(view! { <div id="notice" class="banner notice" role="status">{text}</div> })
    };
    let banner = move || {
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
    };
    (notice, banner)
}

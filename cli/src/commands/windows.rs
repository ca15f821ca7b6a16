//! `cfy maintenance-mode schedule | windows | cancel-window` (SPEC §10).

use shared::api::ListResponse;
use shared::window::{NewWindow, Window};
use shared::MaintenanceMode;

use super::{print, print_json};
use crate::args::Schedule;
use crate::client::{CliError, Client, Outcome};
use crate::{output, time_arg};

/// Windows fetched per request (the API's largest page).
const PAGE: usize = 1000;

/// `schedule`: reads the times (a bad one is a usage error naming its flag),
/// then `POST /maintenance/windows`.
pub async fn schedule(client: &Client, schedule: Schedule) -> Result<(), CliError> {
    let now = chrono::Utc::now();
    let read = |flag: &str, text: &str| {
        time_arg::parse(text, now, &chrono::Local).map_err(|error| CliError::Usage(format!("Invalid {flag}: {error}")))
    };
    let starts_at = read("--start", &schedule.start)?;
    let ends_at = schedule.end.as_deref().map(|end| read("--end", end)).transpose()?;
    let new = NewWindow {
        starts_at,
        ends_at,
        reason: schedule.reason.unwrap_or_default(),
        notice_seconds: schedule.notice,
        drain_deadline_seconds: schedule.drain_deadline,
        mode: schedule.read_only.then_some(MaintenanceMode::ReadOnly),
    };
    let window: Window = match client.post("/maintenance/windows", Some(&new)).await? {
        Outcome::Done(window) => window,
        Outcome::Unchanged => return Err(not_modified()),
    };
    if schedule.json {
        return print_json(&window);
    }
    println!("{}", output::window_scheduled(&window));
    Ok(())
}

/// `windows`: every window, all pages, newest start first.
pub async fn list(client: &Client, json: bool) -> Result<(), CliError> {
    let mut windows: Vec<Window> = Vec::new();
    let total = loop {
        let page: ListResponse<Window> =
            client.get(&format!("/maintenance/windows?_size={PAGE}&_offset={}", windows.len())).await?;
        let total = page.metadata.pagination.total;
        let last = page.items.len() < PAGE;
        windows.extend(page.items);
        if last || windows.len() as u64 >= total {
            break total;
        }
    };
    if json {
        return print_json(&windows);
    }
    print(output::windows_table(&windows, total));
    Ok(())
}

/// `cancel-window ID`: `DELETE /maintenance/windows/ID`; the manager's 404 or
/// 409 message is the error.
pub async fn cancel(client: &Client, id: uuid::Uuid, json: bool) -> Result<(), CliError> {
    let window: Window = client.delete(&format!("/maintenance/windows/{id}")).await?;
    if json {
        return print_json(&window);
    }
    println!("{}", output::window_cancelled(&window));
    Ok(())
}

fn not_modified() -> CliError {
    CliError::Usage("The manager answered 304 Not Modified to a request that changes things".into())
}

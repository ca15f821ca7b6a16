//! `cfy maintenance-mode activate | deactivate | status | history | webhooks`; the
//! windows' commands are in `windows.rs`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use shared::api::ListResponse;
use shared::{ActivateRequest, MaintenanceState, MaintenanceStatus, MaintenanceTransition, Webhooks};
use tokio::time::Instant;

use super::{print, print_json, windows};
use crate::args::MaintenanceMode;
use crate::client::{CliError, Client, Outcome};
use crate::output;

/// How often `--wait` polls when the event stream is unavailable.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Runs one `maintenance-mode` command.
pub async fn run(client: &Client, command: MaintenanceMode, verbose: u8) -> Result<(), CliError> {
    match command {
        MaintenanceMode::Activate { wait, timeout, reason, drain_deadline, read_only } => {
            let request = ActivateRequest {
                reason,
                drain_deadline_seconds: drain_deadline,
                mode: read_only.then_some(shared::MaintenanceMode::ReadOnly),
            };
            activate(client, wait, timeout, request).await
        }
        MaintenanceMode::Deactivate => {
            println!("Turning off maintenance mode...");
            match client.post::<(), MaintenanceStatus>("/maintenance/deactivate", None).await? {
                Outcome::Done(_) => println!("Maintenance mode is off."),
                Outcome::Unchanged => println!("Maintenance mode is already off."),
            }
            Ok(())
        }
        MaintenanceMode::Status { json } => {
            let status: MaintenanceStatus = client.get("/maintenance").await?;
            if json {
                return print_json(&status);
            }
            print(output::status_lines(&status, verbose >= 1));
            Ok(())
        }
        MaintenanceMode::Schedule(schedule) => windows::schedule(client, schedule).await,
        MaintenanceMode::Windows { json } => windows::list(client, json).await,
        MaintenanceMode::CancelWindow { id, json } => windows::cancel(client, id, json).await,
        MaintenanceMode::History { json, size } => {
            let history: ListResponse<MaintenanceTransition> =
                client.get(&format!("/maintenance/history?_size={size}")).await?;
            if json {
                return print_json(&history.items);
            }
            print(output::history_table(&history.items, history.metadata.pagination.total));
            Ok(())
        }
        MaintenanceMode::Webhooks { json, recent } => {
            let webhooks: Webhooks = client.get("/maintenance/webhooks").await?;
            if json {
                return print_json(&webhooks);
            }
            print(output::webhooks_lines(&webhooks, recent, verbose >= 1));
            Ok(())
        }
    }
}

async fn activate(client: &Client, wait: bool, timeout: Option<u64>, request: ActivateRequest) -> Result<(), CliError> {
    if timeout.is_some() && !wait {
        return Err(CliError::Usage("'--timeout' was used without '--wait'.".into()));
    }
    println!("Entering maintenance mode...");
    // No options, no body: the request the reference client sends.
    let body = (request != ActivateRequest::default()).then_some(request);
    let already = match client.post::<_, MaintenanceStatus>("/maintenance/activate", body.as_ref()).await? {
        Outcome::Done(_) => false,
        Outcome::Unchanged => {
            let status: MaintenanceStatus = client.get("/maintenance").await?;
            println!("{}", output::already_active(&status));
            true
        }
    };
    if !wait {
        if !already {
            // The reference ends the hint with its own "\n": an empty line follows.
            println!("{}", output::RUN_STATUS_HINT);
            println!();
        }
        return Ok(());
    }
    println!("{}", output::WILL_ENTER);
    println!();
    let deadline = timeout.filter(|seconds| *seconds > 0).map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let progress = Progress::new();
    let waited = match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, until_activated(client, &progress))
            .await
            .unwrap_or(Err(CliError::WaitTimeout)),
        None => until_activated(client, &progress).await,
    };
    progress.finish();
    waited?;
    println!("Manager is in maintenance mode.");
    println!("While in maintenance mode most requests will be blocked.");
    Ok(())
}

/// Follows the event stream until `activated` (reacting at once); if the
/// stream cannot be had or breaks, polls every second instead.
async fn until_activated(client: &Client, progress: &Progress) -> Result<(), CliError> {
    match client.status_events().await {
        Ok(mut events) => {
            while let Some(status) = events.next().await {
                if arrived(&status, progress)? {
                    return Ok(());
                }
            }
        }
        // Credentials or the like: polling would fail the same way.
        Err(error @ CliError::Api(_)) => return Err(error),
        Err(_) => {}
    }
    progress.note("The event stream is unavailable; checking every second instead.");
    loop {
        let status: MaintenanceStatus = client.get("/maintenance").await?;
        if arrived(&status, progress)? {
            return Ok(());
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn arrived(status: &MaintenanceStatus, progress: &Progress) -> Result<bool, CliError> {
    match status.status {
        MaintenanceState::Activated => Ok(true),
        MaintenanceState::Activating => {
            progress.remaining(status.remaining_executions.len());
            Ok(false)
        }
        MaintenanceState::Deactivated => {
            Err(CliError::Usage("Maintenance mode was turned off while waiting for it to be activated.".into()))
        }
    }
}

/// Shows the remaining executions while waiting, on stderr (stdout keeps the
/// reference output): a spinner on a terminal, a line per change otherwise.
struct Progress {
    spinner: Option<ProgressBar>,
    last: std::cell::Cell<Option<usize>>,
}

impl Progress {
    fn new() -> Self {
        let spinner = std::io::stderr().is_terminal().then(|| {
            let spinner = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                spinner.set_style(style);
            }
            spinner.enable_steady_tick(Duration::from_millis(120));
            spinner
        });
        Self { spinner, last: std::cell::Cell::new(None) }
    }

    fn remaining(&self, count: usize) {
        if self.last.replace(Some(count)) == Some(count) {
            return;
        }
        let message = format!("Waiting for {} to finish", output::executions_count(count));
        match &self.spinner {
            Some(spinner) => spinner.set_message(message),
            None => eprintln!("{message}..."),
        }
    }

    fn note(&self, message: &str) {
        match &self.spinner {
            Some(spinner) => spinner.println(message),
            None => eprintln!("{message}"),
        }
    }

    fn finish(&self) {
        if let Some(spinner) = &self.spinner {
            spinner.finish_and_clear();
        }
    }
}

//! One function per subcommand; each prints its lines and returns an error
//! for `main` to print.

pub mod events;
pub mod executions;
pub mod maintenance_mode;
pub mod status;
pub mod windows;
pub mod workflows;

use crate::args::{Cli, Command};
use crate::client::{CliError, Client};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let mut global = cli.global;
    if cli.password.is_some() {
        global.password = cli.password;
    }
    let client = Client::new(&global)?;
    match cli.command {
        Command::MaintenanceMode(command) => maintenance_mode::run(&client, command, global.verbose).await,
        Command::Executions(command) => executions::run(&client, command).await,
        Command::Workflows(command) => workflows::run(&client, command).await,
        Command::Events(command) => events::run(&client, command).await,
        Command::Status { json } => status::run(&client, json).await,
    }
}

/// Prints lines to stdout.
fn print(lines: impl IntoIterator<Item = String>) {
    for line in lines {
        println!("{line}");
    }
}

/// Prints a value as pretty JSON (for `--json`).
fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|error| CliError::Usage(error.to_string()))?;
    println!("{text}");
    Ok(())
}

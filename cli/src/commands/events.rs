//! `cfy events list ID [--tail]`: an execution's events as Cloudify's client
//! prints them (its workflow's steps and its program's lines).

use serde_json::{Map, Value};
use shared::api::ListResponse;
use shared::ErrorCode;

use super::executions::follow;
use super::print;
use crate::args::Events;
use crate::client::{CliError, Client};
use crate::output;

/// Runs one `events` command.
pub async fn run(client: &Client, command: Events) -> Result<(), CliError> {
    match command {
        Events::List { execution, execution_option, tail, offset, size } => {
            if execution_option.is_some() {
                println!("{}", output::EXECUTION_OPTION_DEPRECATED);
            }
            let Some(id) = execution.or(execution_option) else {
                return Err(CliError::Usage("Provide one of the following: Execution ID or Execution Group ID".into()));
            };
            println!("Listing events for execution id {id} [include_logs=True]");
            let not_found = || CliError::Usage(format!("Execution {id} not found"));
            let execution: Map<String, Value> = match client.get(&format!("/executions/{id}")).await {
                Err(CliError::Api(error)) if error.error_code == ErrorCode::NotFound => return Err(not_found()),
                other => other?,
            };
            if tail {
                // As Cloudify's client: an execution that already ended is not replayed.
                return follow(client, execution, None, false).await;
            }
            let path = format!(
                "/events?execution_id={id}&_offset={offset}&_size={size}&_sort=reported_timestamp\
                 &type=cloudify_event&type=cloudify_log"
            );
            let page: ListResponse<Map<String, Value>> = client.get(&path).await?;
            let shown = page.items.iter().filter_map(output::event_line).collect::<Vec<_>>();
            print(shown);
            println!();
            println!("Showing {} of {} events", page.items.len(), page.metadata.pagination.total);
            println!("{}", output::DEBUG_HINT);
        }
    }
    Ok(())
}

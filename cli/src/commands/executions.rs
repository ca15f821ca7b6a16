//! `cfy executions list | get | start | cancel`.

use shared::api::ListResponse;
use shared::execution::{ExecutionActionRequest, ExecutionParameters};
use shared::{Execution, ExecutionAction, ExecutionStatus, NewExecution};

use super::{print, print_json};
use crate::args::Executions;
use crate::client::{CliError, Client, Outcome};
use crate::output;

/// Runs one `executions` command.
pub async fn run(client: &Client, command: Executions) -> Result<(), CliError> {
    match command {
        Executions::List { json } => {
            let list: ListResponse<Execution> = client.get("/executions").await?;
            if json {
                return print_json(&list);
            }
            print(output::executions_table(&list.items));
        }
        Executions::Get { id, json } => {
            let execution: Execution = client.get(&format!("/executions/{id}")).await?;
            if json {
                return print_json(&execution);
            }
            print(output::execution_lines(&execution));
        }
        Executions::Start { workflow, deployment, duration, queue } => {
            let new = NewExecution {
                workflow_id: workflow,
                deployment_id: deployment,
                parameters: ExecutionParameters { duration_seconds: duration, ..Default::default() },
                queue,
            };
            let execution: Execution = done(client.post("/executions", Some(&new)).await?)?;
            if execution.status == ExecutionStatus::Queued {
                println!(
                    "Execution `{}` was queued: the manager is in maintenance mode, and it will start when \
                     maintenance mode is turned off.",
                    execution.id
                );
            } else {
                println!(
                    "Executing workflow `{}` on deployment `{}`: execution `{}` started.",
                    execution.workflow_id, execution.deployment_id, execution.id
                );
            }
        }
        Executions::Cancel { id, force } => {
            let action = if force { ExecutionAction::ForceCancel } else { ExecutionAction::Cancel };
            let request = ExecutionActionRequest { action };
            let _: Execution = done(client.post(&format!("/executions/{id}"), Some(&request)).await?)?;
            let what = if force { "force-cancel" } else { "cancel" };
            println!("A {what} request for execution {id} has been sent. To track the execution's status, use:");
            println!("cfy executions get {id}");
        }
    }
    Ok(())
}

fn done<T>(outcome: Outcome<T>) -> Result<T, CliError> {
    match outcome {
        Outcome::Done(value) => Ok(value),
        Outcome::Unchanged => {
            Err(CliError::Usage("The manager answered 304 Not Modified to a request that changes things".into()))
        }
    }
}

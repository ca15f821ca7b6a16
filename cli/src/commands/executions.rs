//! `cfy executions list | get | start | cancel`, printing what Cloudify's own
//! client prints for the same command.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use shared::api::ListResponse;
use shared::execution::{ExecutionActionRequest, ExecutionParameters};
use shared::{ErrorCode, ExecutionAction, NewExecution};

use super::print;
use crate::args::Executions;
use crate::client::{CliError, Client, Outcome};
use crate::output;

/// How often `start` looks at the execution and its events (Cloudify's client: every second).
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);
/// Events fetched per request while following.
const EVENTS_BATCH: usize = 100;

/// Runs one `executions` command.
pub async fn run(client: &Client, command: Executions) -> Result<(), CliError> {
    match command {
        Executions::List { deployment, sort_by, descending, offset, size, json } => {
            let direction = if descending { "-" } else { "" };
            let mut query = format!("_sort={direction}{}&_offset={offset}&_size={size}", encode(&sort_by));
            if let Some(deployment) = &deployment {
                query.push_str(&format!("&deployment_id={}", encode(deployment)));
            }
            if !json {
                println!("{}", output::listing(deployment.as_deref()));
            }
            let list: ListResponse<Map<String, Value>> = client.get(&format!("/executions?{query}")).await?;
            if json {
                print(output::executions_json(&list.items));
                return Ok(());
            }
            print(output::executions_table(&list.items, list.metadata.pagination.total));
        }
        Executions::Get { id, json } => {
            if !json {
                println!("Retrieving execution {id}");
            }
            let execution: Map<String, Value> = match client.get(&format!("/executions/{id}")).await {
                Err(CliError::Api(error)) if error.error_code == ErrorCode::NotFound => {
                    return Err(CliError::Usage(format!("Execution {id} not found")));
                }
                other => other?,
            };
            if json {
                println!("{}", output::execution_json(&execution));
                return Ok(());
            }
            print(output::execution_lines(&execution));
        }
        Executions::Start { workflow, deployment, parameters, duration, queue, timeout } => {
            let new = NewExecution {
                workflow_id: workflow.clone(),
                deployment_id: deployment.clone(),
                parameters: parameters_from(&parameters, duration)?,
                queue,
            };
            println!("{}", output::executing(&workflow, &deployment, timeout));
            let execution: Map<String, Value> = done(client.post("/executions", Some(&new)).await?)?;
            if text(&execution, "status") == "queued" {
                println!("{}", output::QUEUED);
                return Ok(());
            }
            follow(client, execution, Some(timeout), true).await?;
        }
        Executions::Cancel { id, force, kill } => {
            let (before, after) = output::cancelling(&id.to_string(), force, kill);
            println!("{before}");
            let action = if force || kill { ExecutionAction::ForceCancel } else { ExecutionAction::Cancel };
            let request = ExecutionActionRequest { action };
            let _: Map<String, Value> = done(client.post(&format!("/executions/{id}"), Some(&request)).await?)?;
            print(after);
        }
    }
    Ok(())
}

/// Prints the execution's events until it ends (or `timeout` seconds pass),
/// then how it ended, as Cloudify's client does: for `executions start`
/// (`started`) with the hint to list its events, for `events list --tail`
/// without. An execution that had already ended is not replayed (neither is
/// it by Cloudify's client).
pub async fn follow(
    client: &Client,
    mut execution: Map<String, Value>,
    timeout: Option<u64>,
    started: bool,
) -> Result<(), CliError> {
    let id = text(&execution, "id").to_owned();
    let workflow = text(&execution, "workflow_id").to_owned();
    let deployment = text(&execution, "deployment_id").to_owned();
    let deadline = timeout.map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let mut printed = 0;
    if !is_end(text(&execution, "status")) {
        loop {
            let ended = is_end(text(&execution, "status"));
            printed += print_new_events(client, &id, printed).await?;
            if ended {
                break;
            }
            if let (Some(deadline), Some(timeout)) = (deadline, timeout) {
                if Instant::now() >= deadline {
                    print(output::start_timed_out(&workflow, &deployment, &id, timeout));
                    return Err(CliError::Reported);
                }
            }
            tokio::time::sleep(FOLLOW_INTERVAL).await;
            execution = client.get(&format!("/executions/{id}")).await?;
        }
    }
    let error = text(&execution, "error");
    if !started {
        if error.is_empty() {
            println!("Finished executing workflow {workflow} on deployment {deployment}");
            return Ok(());
        }
        println!("Execution of workflow {workflow} for deployment {deployment} failed. [error={error}]");
        return Err(CliError::Reported);
    }
    if error.is_empty() {
        print(output::finished(&workflow, &deployment, &id));
        return Ok(());
    }
    let ignore_failure = execution
        .get("parameters")
        .and_then(|parameters| parameters.get("ignore_failure"))
        .is_some_and(|value| crate::table::python_str(value).eq_ignore_ascii_case("true"));
    print(output::failed(&workflow, &deployment, &id, error, ignore_failure));
    Err(CliError::Reported)
}

/// Prints the events after the first `seen`, in batches; returns how many it printed.
async fn print_new_events(client: &Client, id: &str, seen: usize) -> Result<usize, CliError> {
    let mut fetched = 0;
    loop {
        let path = format!(
            "/events?execution_id={id}&_offset={}&_size={EVENTS_BATCH}&_sort=reported_timestamp\
             &type=cloudify_event&type=cloudify_log",
            seen + fetched
        );
        let batch: ListResponse<Map<String, Value>> = client.get(&path).await?;
        fetched += batch.items.len();
        print(batch.items.iter().filter_map(output::event_line));
        if batch.items.len() < EVENTS_BATCH {
            return Ok(fetched);
        }
    }
}

/// The workflow parameters of `-p` (each `KEY=VALUE;KEY=VALUE` or a JSON
/// object, later ones winning, values as text like Cloudify's client sends
/// them) and `--duration`.
fn parameters_from(given: &[String], duration: Option<f64>) -> Result<ExecutionParameters, CliError> {
    let mut other = Map::new();
    for text in given {
        if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text) {
            other.extend(object);
            continue;
        }
        for pair in text.split(';').map(str::trim).filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                CliError::Usage(format!(
                    "Invalid input format: {text}, the expected format is: 'key1=value1;key2=value2'"
                ))
            })?;
            other.insert(key.trim().to_owned(), Value::String(value.trim().to_owned()));
        }
    }
    if duration.is_some() && other.contains_key("duration_seconds") {
        return Err(CliError::Usage("Give the duration once: --duration or -p duration_seconds=…".into()));
    }
    Ok(ExecutionParameters { duration_seconds: duration, other })
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> &'a str {
    object.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn is_end(status: &str) -> bool {
    matches!(status, "terminated" | "failed" | "cancelled")
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            byte => format!("%{byte:02X}"),
        })
        .collect()
}

fn done<T>(outcome: Outcome<T>) -> Result<T, CliError> {
    match outcome {
        Outcome::Done(value) => Ok(value),
        Outcome::Unchanged => {
            Err(CliError::Usage("The manager answered 304 Not Modified to a request that changes things".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_like_cloudifys_client() {
        let given = ["duration_seconds=1; retries = 3".to_owned(), r#"{"nested": {"a": 1}}"#.to_owned()];
        let parameters = parameters_from(&given, None).unwrap();
        assert_eq!(parameters.other["duration_seconds"], "1");
        assert_eq!(parameters.other["retries"], "3");
        assert_eq!(parameters.other["nested"]["a"], 1);
        assert!(parameters_from(&["novalue".to_owned()], None).is_err());
        assert!(parameters_from(&["duration_seconds=1".to_owned()], Some(2.0)).is_err());
        assert_eq!(parameters_from(&[], Some(2.0)).unwrap().duration_seconds, Some(2.0));
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("web app&x=1"), "web%20app%26x%3D1");
    }
}

//! No process of an execution outlives its manager (SPEC §9), with the real
//! binary: after SIGKILL, start-up kills what the crash left (a background
//! grandchild the parent-death signal did not reach) and records the
//! execution `failed`; on SIGTERM the manager ends its workflows itself.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{alive, wait_gone, write_workflow, ManagerProcess, PATIENCE};
use serde_json::json;
use shared::execution::ExecutionEvent;
use shared::{Execution, ExecutionStatus};

/// A workflow that starts a long background `sleep`, prints its pid, then waits.
const FORKING: &str = "#!/bin/sh\nsleep 1000 &\necho \"$!\"\necho ready\nwait\n";

fn workflows() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_workflow(dir.path(), "forking", FORKING);
    dir
}

fn start(data: &Path, workflows: &Path) -> ManagerProcess {
    let workflows = workflows.to_str().unwrap();
    ManagerProcess::start_with_env(data, &[("MANAGER_WORKFLOWS", workflows), ("MANAGER_CANCEL_GRACE_SECONDS", "1")])
}

/// Starts `forking` and returns it with its background grandchild's pid.
async fn start_forking(manager: &ManagerProcess) -> (Execution, i32) {
    let body = json!({"workflow_id": "forking", "deployment_id": "web"});
    let response = manager.api.post("/executions", Some(body)).await;
    assert_eq!(response.status(), 201);
    let execution: Execution = response.json().await.unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let page: shared::api::ListResponse<ExecutionEvent> =
            manager.api.get(&format!("/executions/{}/events", execution.id)).await.json().await.unwrap();
        if page.items.iter().any(|event| event.line == "ready") {
            let grandchild = page.items[0].line.parse().expect("the background pid");
            assert!(alive(grandchild));
            return (execution, grandchild);
        }
        assert!(tokio::time::Instant::now() < deadline, "the workflow never got ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_crash_start_up_kills_what_was_left_and_fails_the_execution() {
    let data = tempfile::tempdir().unwrap();
    let workflows = workflows();
    let manager = start(data.path(), workflows.path()).signed_in().await;
    let (execution, grandchild) = start_forking(&manager).await;
    manager.kill();
    // The crash took the direct child (parent-death signal), not its background job.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alive(grandchild), "the background job survives the crash, as it would in production");

    let restarted = start(data.path(), workflows.path()).signed_in().await;
    wait_gone(grandchild).await;
    let failed = restarted.api.execution(execution.id).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert!(failed.error.contains("The manager stopped while this execution was started"), "{}", failed.error);
    assert!(failed.error.contains("were still running and were killed"), "{}", failed.error);
    restarted.terminate();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_stop_ends_the_workflows_and_records_why() {
    let data = tempfile::tempdir().unwrap();
    let workflows = workflows();
    let manager = start(data.path(), workflows.path()).signed_in().await;
    let (execution, grandchild) = start_forking(&manager).await;
    assert!(manager.terminate().success(), "a clean exit");
    wait_gone(grandchild).await;

    let restarted = start(data.path(), workflows.path()).signed_in().await;
    let failed = restarted.api.execution(execution.id).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert_eq!(
        failed.error,
        "The manager was stopped while this execution was running: its workflow was terminated and the execution \
         marked failed."
    );
    restarted.terminate();
}

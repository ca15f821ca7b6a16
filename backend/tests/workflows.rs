//! Executions run workflow programs (SPEC §9), over real HTTP against a real
//! manager, each test with a workflow directory of its own: exit codes and
//! signals, cancel and force-cancel of real process groups, output stored,
//! paged, capped and live, parameters as data, and the catalog.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{alive, assert_error, wait_gone, write_workflow, Events, TestApp, PATIENCE};
use serde_json::{json, Value};
use shared::api::ListResponse;
use shared::execution::{ExecutionEvent, OutputStream};
use shared::{ErrorCode, Execution, ExecutionStatus, MaintenanceState};
use tempfile::TempDir;

/// Writes an executable `#!/bin/sh` workflow `name` into `dir`.
fn workflow(dir: &Path, name: &str, body: &str) {
    write_workflow(dir, name, &format!("#!/bin/sh\n{body}\n"));
}

/// A manager over a fresh workflow directory holding `workflows` (name, body).
async fn manager_with(workflows: &[(&str, &str)], grace_seconds: u64) -> (TestApp, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in workflows {
        workflow(dir.path(), name, body);
    }
    (TestApp::spawn_with_workflows(dir.path(), grace_seconds).await, dir)
}

async fn start(app: &TestApp, workflow: &str, parameters: Value) -> Execution {
    let body = json!({"workflow_id": workflow, "deployment_id": "web", "parameters": parameters});
    let response = app.api.post("/executions", Some(body)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    response.json().await.unwrap()
}

async fn output(app: &TestApp, id: uuid::Uuid, query: &str) -> ListResponse<ExecutionEvent> {
    let response = app.api.get(&format!("/executions/{id}/events?{query}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn lines(app: &TestApp, id: uuid::Uuid) -> Vec<String> {
    output(app, id, "").await.items.into_iter().map(|event| event.line).collect()
}

/// Waits until the program has written `line` (it is stored within a flush).
async fn wait_for_line(app: &TestApp, id: uuid::Uuid, line: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !lines(app, id).await.iter().any(|written| written == line) {
        assert!(tokio::time::Instant::now() < deadline, "never wrote {line:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_and_signals_decide_the_end() {
    let (app, _dir) = manager_with(&[("ok", "echo fine"), ("three", "exit 3"), ("killed", "kill -KILL $$")], 1).await;
    let ok = start(&app, "ok", json!({})).await;
    let three = start(&app, "three", json!({})).await;
    let killed = start(&app, "killed", json!({})).await;
    let ok = app.api.wait_for_end(ok.id).await;
    assert_eq!((ok.status, ok.error.as_str()), (ExecutionStatus::Terminated, ""));
    let three = app.api.wait_for_end(three.id).await;
    assert_eq!((three.status, three.error.as_str()), (ExecutionStatus::Failed, "exited with status 3"));
    let killed = app.api.wait_for_end(killed.id).await;
    assert_eq!(killed.status, ExecutionStatus::Failed);
    assert!(killed.error.starts_with("killed by signal 9"), "{}", killed.error);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_terms_the_group_and_the_trap_runs_and_force_cancel_kills_grandchildren() {
    let (app, _dir) = manager_with(
        &[
            ("trapping", "trap 'echo trapped; exit 0' TERM\necho ready\nwhile :; do sleep 0.05; done"),
            ("stubborn", "trap '' TERM\necho ready\nwhile :; do sleep 0.05; done"),
            ("forking", "sleep 1000 &\necho \"$!\"\necho ready\nwait"),
        ],
        1,
    )
    .await;
    // A clean exit from the TERM trap is still `cancelled`, and the trap ran.
    let trapping = start(&app, "trapping", json!({})).await;
    wait_for_line(&app, trapping.id, "ready").await;
    assert_eq!(app.api.cancel(trapping.id).await.status, ExecutionStatus::Cancelling);
    let trapping = app.api.wait_for_end(trapping.id).await;
    assert_eq!(trapping.status, ExecutionStatus::Cancelled);
    assert!(lines(&app, trapping.id).await.contains(&"trapped".to_owned()));

    // A program that ignores TERM is killed when the grace (1 s) is over.
    let stubborn = start(&app, "stubborn", json!({})).await;
    wait_for_line(&app, stubborn.id, "ready").await;
    let cancelled_at = std::time::Instant::now();
    app.api.cancel(stubborn.id).await;
    let stubborn = app.api.wait_for_end(stubborn.id).await;
    assert_eq!(stubborn.status, ExecutionStatus::Cancelled);
    assert!(cancelled_at.elapsed() >= Duration::from_millis(900), "killed before the grace was over");

    // Force-cancel takes the whole group, the background `sleep` included.
    let forking = start(&app, "forking", json!({})).await;
    wait_for_line(&app, forking.id, "ready").await;
    let grandchild: i32 = lines(&app, forking.id).await[0].parse().unwrap();
    assert!(alive(grandchild));
    app.api.force_cancel(forking.id).await;
    assert_eq!(app.api.wait_for_end(forking.id).await.status, ExecutionStatus::Cancelled);
    wait_gone(grandchild).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn output_from_both_streams_is_stored_in_order_paged_capped_and_live() {
    let (app, _dir) = manager_with(
        &[
            ("both", "echo one\nsleep 0.1\necho two >&2\nsleep 0.1\necho three"),
            ("chatty", "i=0\nwhile [ $i -lt 10005 ]; do echo \"line $i\"; i=$((i+1)); done"),
            ("waiting", "echo first\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done"),
        ],
        1,
    )
    .await;
    let both = start(&app, "both", json!({})).await;
    app.api.wait_for_end(both.id).await;
    let page = output(&app, both.id, "").await;
    let got: Vec<(OutputStream, &str)> = page.items.iter().map(|e| (e.stream, e.line.as_str())).collect();
    assert_eq!(got, [(OutputStream::Stdout, "one"), (OutputStream::Stderr, "two"), (OutputStream::Stdout, "three")]);
    let second = output(&app, both.id, "_offset=1&_size=1").await;
    assert_eq!(second.items[0].line, "two");
    assert_eq!(second.metadata.pagination.total, 3);

    // Beyond 10 000 lines, one marker says how much was dropped.
    let chatty = start(&app, "chatty", json!({})).await;
    assert_eq!(app.api.wait_for_end(chatty.id).await.status, ExecutionStatus::Terminated);
    let last = output(&app, chatty.id, "_offset=9999&_size=10").await;
    assert_eq!(last.metadata.pagination.total, 10_001);
    assert_eq!(last.items[0].line, "line 9999");
    assert_eq!(last.items[1].stream, OutputStream::Manager);
    assert!(last.items[1].line.starts_with("output truncated: 5 more lines"), "{}", last.items[1].line);

    // Live: a line reaches the stream while the program still runs, then `end` comes.
    let waiting = start(&app, "waiting", json!({})).await;
    let stream = app.api.get(&format!("/executions/{}/events/stream", waiting.id)).await;
    let mut events = Events::from_response(stream);
    let first = tokio::time::timeout(PATIENCE, events.next_any()).await.unwrap().unwrap();
    assert_eq!((first.name.as_str(), first.id.as_deref()), ("line", Some("0")));
    assert_eq!(serde_json::from_str::<ExecutionEvent>(&first.data).unwrap().line, "first");
    assert!(!app.api.execution(waiting.id).await.status.is_end(), "the line came while it ran");
    app.api.cancel(waiting.id).await;
    let end = loop {
        let event = tokio::time::timeout(PATIENCE, events.next_any()).await.unwrap().expect("an `end` event");
        if event.name != "line" {
            break event;
        }
    };
    assert_eq!(end.name, "end");
    assert_eq!(serde_json::from_str::<Execution>(&end.data).unwrap().status, ExecutionStatus::Cancelled);
    assert!(tokio::time::timeout(PATIENCE, events.next_any()).await.unwrap().is_none(), "the stream ends");

    // A stream opened later replays from where it is asked, then ends at once.
    let replay = app.api.get(&format!("/executions/{}/events/stream?from=1", both.id)).await;
    let mut replay = Events::from_response(replay);
    let line = tokio::time::timeout(PATIENCE, replay.next_any()).await.unwrap().unwrap();
    assert_eq!(
        (line.id.as_deref(), serde_json::from_str::<ExecutionEvent>(&line.data).unwrap().line.as_str()),
        (Some("1"), "two")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parameters_reach_the_program_as_data_and_nothing_secret_does() {
    let marker = std::env::temp_dir().join(format!("pwned-{}", uuid::Uuid::new_v4()));
    let hostile = format!("$(touch {}); \"; rm -rf", marker.display());
    let (app, _dir) = manager_with(
        &[("show", "cat\nprintf '%s\\n' \"$EXECUTION_PARAMETERS\"\nenv | cut -d= -f1 | sort | tr '\\n' ' '")],
        1,
    )
    .await;
    let execution = start(&app, "show", json!({"text": hostile})).await;
    assert_eq!(app.api.wait_for_end(execution.id).await.status, ExecutionStatus::Terminated);
    let written = lines(&app, execution.id).await;
    let from_stdin: Value = serde_json::from_str(&written[0]).unwrap();
    assert_eq!(from_stdin["text"], hostile.as_str());
    let from_env: Value = serde_json::from_str(&written[1]).unwrap();
    assert_eq!(from_env["text"], hostile.as_str());
    assert!(!marker.exists(), "the parameter ran as a command");
    let names: Vec<&str> = written[2].split_whitespace().collect();
    for name in ["DEPLOYMENT_ID", "EXECUTION_ID", "EXECUTION_PARAMETERS", "WORKFLOW_ID"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(!names.iter().any(|name| name.starts_with("MANAGER_")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn activation_waits_for_the_program_and_follows_its_exit() {
    let (app, _dir) = manager_with(&[("short", "sleep 0.3")], 1).await;
    let execution = start(&app, "short", json!({})).await;
    let activating = app.api.activate(None).await;
    assert_eq!(activating.status, MaintenanceState::Activating);
    let activated = app.api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
    let ended = app.api.execution(execution.id).await;
    assert_eq!(ended.status, ExecutionStatus::Terminated);
    assert_eq!(activated.activated_at, ended.ended_at, "activated in the transaction that recorded the exit");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_catalog_is_the_directory_as_it_is_now() {
    let (app, dir) =
        manager_with(&[("deploy.sh", "# Deploys everything.\necho deployed"), ("backup", "exit 0")], 1).await;
    std::fs::write(dir.path().join("notes.txt"), "not executable").unwrap();
    let catalog: Value = app.api.get("/workflows").await.json().await.unwrap();
    assert_eq!(
        catalog["items"],
        json!([{"id": "backup", "description": ""}, {"id": "deploy", "description": "Deploys everything."}])
    );
    let unknown = app.api.post("/executions", Some(json!({"workflow_id": "notes", "deployment_id": "web"}))).await;
    let error = assert_error(unknown, 400, ErrorCode::UnknownWorkflow).await;
    assert!(error.message.contains("`notes`"), "{}", error.message);

    // Removed while the manager runs: gone from the catalog at once.
    std::fs::remove_file(dir.path().join("backup")).unwrap();
    let gone = app.api.post("/executions", Some(json!({"workflow_id": "backup", "deployment_id": "web"}))).await;
    assert_error(gone, 400, ErrorCode::UnknownWorkflow).await;
    let deploy = start(&app, "deploy", json!({})).await;
    assert_eq!(app.api.wait_for_end(deploy.id).await.status, ExecutionStatus::Terminated);
    assert_eq!(lines(&app, deploy.id).await, ["deployed"]);
}

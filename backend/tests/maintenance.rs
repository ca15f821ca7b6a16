//! The state machine of SPEC §1 over real HTTP.

mod common;

use common::{assert_error, TestApp, LONG};
use serde_json::json;
use shared::{ErrorCode, ExecutionStatus, MaintenanceState};

#[tokio::test(flavor = "multi_thread")]
async fn activate_with_no_executions_is_activated_at_once_with_both_timestamps() {
    let app = TestApp::spawn().await;
    let status = app.api.activate(Some("upgrade to 7.1")).await;
    assert_eq!(status.status, MaintenanceState::Activated);
    assert_eq!(status.requested_by, "admin");
    assert_eq!(status.reason, "upgrade to 7.1");
    let requested = status.activation_requested_at.expect("activation_requested_at");
    assert_eq!(status.activated_at, Some(requested));
    assert!(status.remaining_executions.is_empty());
    assert_eq!(app.api.status().await, status);
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_with_running_execution_waits_then_activates_the_moment_it_ends() {
    let app = TestApp::spawn().await;
    let mut events = app.api.events().await;
    assert_eq!(events.next().await.status, MaintenanceState::Deactivated);

    // Long enough that the activate surely lands first, even on a loaded machine.
    let execution = app.api.start(3.0).await;
    let status = app.api.activate(None).await;
    assert_eq!(status.status, MaintenanceState::Activating);
    assert_eq!(status.activated_at, None);
    assert!(status.activation_requested_at.is_some());
    assert_eq!(status.remaining_executions.len(), 1);
    assert_eq!(status.remaining_executions[0].id, execution.id);
    assert_eq!(status.remaining_executions[0].status, ExecutionStatus::Started);
    assert_eq!(status.remaining_executions[0].workflow_id, "install");
    assert_eq!(status.remaining_executions[0].deployment_id, "web");

    let activating = events.next().await;
    assert_eq!(activating, status, "first change event is the activate response's status");
    let activated = events.next().await;
    assert_eq!(activated.status, MaintenanceState::Activated);
    assert!(activated.remaining_executions.is_empty());

    // Event-driven: activated at the very instant the last execution ended.
    let ended = app.api.execution(execution.id).await;
    assert_eq!(ended.status, ExecutionStatus::Terminated);
    assert_eq!(activated.activated_at, ended.ended_at);
    assert_eq!(app.api.status().await, activated);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_the_last_remaining_execution_completes_activation() {
    let app = TestApp::spawn().await;
    let first = app.api.start(LONG).await;
    let second = app.api.start(LONG).await;
    let status = app.api.activate(None).await;
    assert_eq!(status.remaining_executions.len(), 2);

    let mut events = app.api.events().await;
    events.next().await;
    let cancelling = app.api.cancel(first.id).await;
    assert_eq!(cancelling.status, ExecutionStatus::Cancelling);
    let forced = app.api.post(&format!("/executions/{}", second.id), Some(json!({"action": "force-cancel"}))).await;
    assert_eq!(forced.status(), 200);

    let activated = app.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
    assert!(activated.remaining_executions.is_empty());
    for id in [first.id, second.id] {
        assert_eq!(app.api.execution(id).await.status, ExecutionStatus::Cancelled);
    }
    // Each change was an event: fewer remaining, then activated.
    let mut seen = Vec::new();
    while seen.last() != Some(&MaintenanceState::Activated) {
        let event = events.next().await;
        seen.push(event.status);
    }
    assert_eq!(seen.first(), Some(&MaintenanceState::Activating));
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_activate_and_deactivate_answer_304_without_a_body() {
    let app = TestApp::spawn().await;
    let off = app.api.post("/maintenance/deactivate", None).await;
    assert_eq!(off.status(), 304);
    assert!(off.bytes().await.unwrap().is_empty());

    app.api.start(LONG).await;
    app.api.activate(None).await;
    let again = app.api.post("/maintenance/activate", None).await;
    assert_eq!(again.status(), 304, "while activating");
    assert!(again.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_body_is_optional_empty_or_null() {
    for body in ["", "null", "{}", "  "] {
        let app = TestApp::spawn().await;
        let response = app.api.request(reqwest::Method::POST, "/maintenance/activate").body(body).send().await.unwrap();
        assert_eq!(response.status(), 200, "body {body:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_activate_while_activated_is_304_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let first = app.api.activate(Some("first")).await;
    let again = app.api.post("/maintenance/activate", Some(json!({"reason": "second"}))).await;
    assert_eq!(again.status(), 304);
    assert_eq!(app.api.status().await, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivate_works_from_activating_and_clears_the_status() {
    let app = TestApp::spawn().await;
    let execution = app.api.start(LONG).await;
    assert_eq!(app.api.activate(Some("r")).await.status, MaintenanceState::Activating);
    let status = app.api.deactivate().await;
    assert_eq!(status.status, MaintenanceState::Deactivated);
    assert_eq!(status.requested_by, "");
    assert_eq!(status.reason, "");
    assert_eq!(status.activated_at, None);
    assert_eq!(status.activation_requested_at, None);
    assert!(status.remaining_executions.is_empty());
    // The execution keeps running and the gate is open again.
    assert_eq!(app.api.execution(execution.id).await.status, ExecutionStatus::Started);
    app.api.start(LONG).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queued_executions_start_on_deactivate_in_creation_order() {
    let app = TestApp::spawn().await;
    app.api.activate(None).await;
    let mut queued = Vec::new();
    for _ in 0..5 {
        let response = app.api.create(LONG, true).await;
        assert_eq!(response.status(), 201);
        let execution: shared::Execution = response.json().await.unwrap();
        assert_eq!(execution.status, ExecutionStatus::Queued);
        assert_eq!(execution.started_at, None);
        queued.push(execution);
    }
    // Queued executions do not hold up activation and are not remaining.
    assert!(app.api.status().await.remaining_executions.is_empty());
    let refused = app.api.create(LONG, false).await;
    assert_error(refused, 503, ErrorCode::MaintenanceModeActive).await;

    app.api.deactivate().await;
    let mut started = Vec::new();
    for execution in &queued {
        let now = app.api.wait_for_execution(execution.id, ExecutionStatus::Started).await;
        started.push(now.started_at.expect("started_at"));
    }
    assert!(started.windows(2).all(|pair| pair[0] <= pair[1]), "started in creation order: {started:?}");

    // The list is newest first, so the queued ones appear in reverse creation order.
    let list: serde_json::Value = app.api.get("/executions").await.json().await.unwrap();
    let ids: Vec<String> =
        list["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = queued.iter().rev().map(|e| e.id.to_string()).collect();
    assert_eq!(ids, expected);
    assert_eq!(list["metadata"]["pagination"]["total"], 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn queue_while_activating_stores_queued_and_does_not_delay_activation() {
    let app = TestApp::spawn().await;
    let running = app.api.start(LONG).await;
    app.api.activate(None).await;
    let queued: shared::Execution = app.api.create(LONG, true).await.json().await.unwrap();
    assert_eq!(queued.status, ExecutionStatus::Queued);
    let status = app.api.status().await;
    assert_eq!(status.remaining_executions.len(), 1);
    assert_eq!(status.remaining_executions[0].id, running.id);

    // A queued execution can be cancelled without ever starting.
    let cancelled = app.api.cancel(queued.id).await;
    assert_eq!(cancelled.status, ExecutionStatus::Cancelled);
    assert_eq!(cancelled.started_at, None);
    app.api.cancel(running.id).await;
    app.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
    app.api.deactivate().await;
    assert_eq!(app.api.execution(queued.id).await.status, ExecutionStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_records_every_transition_with_who_and_why() {
    let app = TestApp::spawn().await;
    app.api.activate(Some("kernel upgrade")).await;
    app.api.deactivate().await;
    let history: serde_json::Value = app.api.get("/maintenance/history").await.json().await.unwrap();
    assert_eq!(history["metadata"]["pagination"]["total"], 3);
    let items = history["items"].as_array().unwrap();
    // Newest first.
    let steps: Vec<(String, String, String)> = items
        .iter()
        .rev()
        .map(|t| {
            (t["from"].as_str().unwrap().into(), t["to"].as_str().unwrap().into(), t["reason"].as_str().unwrap().into())
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            ("deactivated".into(), "activating".into(), "kernel upgrade".into()),
            ("activating".into(), "activated".into(), "kernel upgrade".into()),
            ("activated".into(), "deactivated".into(), String::new()),
        ]
    );
    assert!(items.iter().all(|t| t["requested_by"] == "admin"));
    let page: serde_json::Value = app.api.get("/maintenance/history?_size=1&_offset=1").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["to"], "activated");
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_run_for_their_duration_and_end_terminated() {
    let app = TestApp::spawn().await;
    let execution = app.api.start(0.2).await;
    assert_eq!(execution.status, ExecutionStatus::Started);
    assert_eq!(execution.created_by, "admin");
    let ended = app.api.wait_for_end(execution.id).await;
    assert_eq!(ended.status, ExecutionStatus::Terminated);
    let ran = ended.ended_at.unwrap().as_datetime() - ended.started_at.unwrap().as_datetime();
    assert!(ran >= chrono::Duration::milliseconds(200), "ran only {ran}");
    let again = app.api.post(&format!("/executions/{}", execution.id), Some(json!({"action": "cancel"}))).await;
    assert_error(again, 409, ErrorCode::Conflict).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn event_stream_reports_each_execution_change() {
    let app = TestApp::spawn().await;
    let mut events = app.api.events().await;
    let execution = app.api.start(LONG).await;
    let created = events.next_execution().await;
    assert_eq!((created.id, created.status), (execution.id, ExecutionStatus::Started));
    // It shows the replica running it (SPEC §12): the one process is `local`.
    let replica = if common::on_postgres() { common::TEST_REPLICA } else { "local" };
    assert_eq!((execution.replica.as_str(), created.replica.as_str()), (replica, replica));
    app.api.cancel(execution.id).await;
    assert_eq!(events.next_execution().await.status, ExecutionStatus::Cancelling);
    let ended = events.next_execution().await;
    assert_eq!(ended.status, ExecutionStatus::Cancelled);
    assert_eq!(ended, app.api.execution(execution.id).await);
    // Queued executions wait for a slot on deactivate, then start: an event each.
    app.api.activate(None).await;
    let queued: shared::Execution = app.api.create(LONG, true).await.json().await.unwrap();
    assert_eq!(events.next_execution().await.status, ExecutionStatus::Queued);
    app.api.deactivate().await;
    let released = events.next_execution().await;
    assert_eq!((released.id, released.status), (queued.id, ExecutionStatus::Pending));
    let started = events.next_execution().await;
    assert_eq!((started.id, started.status), (queued.id, ExecutionStatus::Started));
}

#[tokio::test(flavor = "multi_thread")]
async fn event_stream_ends_on_graceful_shutdown() {
    let app = TestApp::spawn().await;
    let mut events = app.api.events().await;
    events.next().await;
    let _data_dir = app.stop().await;
    assert!(events.next_or_end().await.is_none());
}

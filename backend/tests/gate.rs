//! Every row of SPEC §3 over real HTTP: what is blocked, with which code,
//! `Retry-After` and no traceback; what is allow-listed; the admin bypass.

mod common;

use common::{assert_error, Api, TestApp, LONG};
use reqwest::Method;
use serde_json::{json, Value};
use shared::{ErrorCode, MaintenanceState};

async fn send(api: &Api, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = api.request(method, path);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("request")
}

async fn assert_refused(response: reqwest::Response, code: ErrorCode) {
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = assert_error(response, 503, code).await;
    assert_eq!(body.message, shared::error::MAINTENANCE_MESSAGE);
    let seconds: u32 = retry_after.expect("Retry-After header").parse().expect("Retry-After in seconds");
    assert!(seconds > 0);
}

fn new_execution(queue: bool) -> Value {
    json!({"workflow_id": "install", "deployment_id": "web", "parameters": {"duration_seconds": LONG}, "queue": queue})
}

#[tokio::test(flavor = "multi_thread")]
async fn deactivated_gates_nothing() {
    let app = TestApp::spawn().await;
    let execution = app.api.start(LONG).await;
    assert_eq!(app.api.get("/executions").await.status(), 200);
    assert_eq!(app.api.get(&format!("/executions/{}", execution.id)).await.status(), 200);
    // Unknown routes are plain 404s, not 503s.
    assert_error(app.api.get("/deployments").await, 404, ErrorCode::NotFound).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn activating_refuses_new_executions_but_not_reads_queueing_or_cancels() {
    let app = TestApp::spawn().await;
    let running = app.api.start(LONG).await;
    assert_eq!(app.api.activate(None).await.status, MaintenanceState::Activating);
    let one = format!("/executions/{}", running.id);

    assert_refused(
        send(&app.api, Method::POST, "/executions", Some(new_execution(false))).await,
        ErrorCode::EnteringMaintenanceMode,
    )
    .await;
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        assert_refused(send(&app.api, method.clone(), &one, None).await, ErrorCode::EnteringMaintenanceMode).await;
        assert_refused(send(&app.api, method, "/executions", None).await, ErrorCode::EnteringMaintenanceMode).await;
    }

    // Reads, queueing and the allow-list pass.
    assert_eq!(app.api.get("/executions").await.status(), 200);
    assert_eq!(app.api.get(&one).await.status(), 200);
    assert_eq!(send(&app.api, Method::POST, "/executions", Some(new_execution(true))).await.status(), 201);
    assert_eq!(app.api.get("/version").await.status(), 200);
    // A cancel of a remaining execution passes and lets activation complete.
    assert_eq!(app.api.post(&one, Some(json!({"action": "cancel"}))).await.status(), 200);
    app.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn activated_refuses_everything_but_the_allow_list() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<html>panel</html>").unwrap();
    let app = TestApp::spawn_with_dist(dist.path()).await;
    let queued_before: shared::Execution = {
        app.api.activate(None).await;
        let response = send(&app.api, Method::POST, "/executions", Some(new_execution(true))).await;
        assert_eq!(response.status(), 201, "queue: true is stored, not refused");
        response.json().await.unwrap()
    };
    let one = format!("/executions/{}", queued_before.id);

    for (method, path, body) in [
        (Method::GET, "/executions", None),
        (Method::GET, one.as_str(), None),
        (Method::POST, "/executions", Some(new_execution(false))),
        (Method::DELETE, one.as_str(), None),
        (Method::PUT, "/executions", None),
        (Method::GET, "/deployments", None),
        (Method::GET, "/blueprints/x", None),
        (Method::POST, "/snapshots", Some(json!({}))),
    ] {
        let response = send(&app.api, method.clone(), path, body).await;
        assert_refused(response, ErrorCode::MaintenanceModeActive).await;
    }

    // The allow-list: maintenance*, tokens, version, status, ok, openapi.json, cancels, the panel.
    assert_eq!(app.api.get("/maintenance").await.status(), 200);
    assert_eq!(app.api.get("/maintenance/history").await.status(), 200);
    let events = app.api.events().await;
    drop(events);
    let tokens = app.api.post("/tokens", Some(json!({}))).await;
    assert_ne!(tokens.status(), 503, "/tokens is allow-listed");
    for path in ["/version", "/status", "/ok", "/openapi.json"] {
        assert_eq!(app.api.get(path).await.status(), 200, "{path}");
    }
    let status: Value = app.api.get("/status").await.json().await.unwrap();
    assert_eq!(status["maintenance"], "activated");
    let cancelled = app.api.post(&one, Some(json!({"action": "cancel"}))).await;
    assert_eq!(cancelled.status(), 200, "cancel actions pass");
    for path in ["/", "/maintenance", "/executions"] {
        let page = app.api.http.get(format!("{}{path}", app.api.base)).send().await.unwrap();
        assert_eq!(page.status(), 200, "panel {path}");
        assert_eq!(page.text().await.unwrap(), "<html>panel</html>");
    }
    // Deactivate is allow-listed, and opens the gate.
    app.api.deactivate().await;
    assert_eq!(app.api.get("/executions").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_bypass_header_passes_the_gate() {
    let app = TestApp::spawn().await;
    app.api.activate(None).await;
    let bypassing =
        |method: Method, path: &str| app.api.request(method, path).header(shared::api::BYPASS_HEADER, "true");
    let list = bypassing(Method::GET, "/executions").send().await.unwrap();
    assert_eq!(list.status(), 200);
    let created = bypassing(Method::POST, "/executions").json(&new_execution(false)).send().await.unwrap();
    assert_eq!(created.status(), 201, "an admin may run an execution during maintenance");
    let execution: shared::Execution = created.json().await.unwrap();
    assert_eq!(execution.status, shared::ExecutionStatus::Started);
    // Only the literal "true" bypasses.
    let other =
        app.api.request(Method::GET, "/executions").header(shared::api::BYPASS_HEADER, "yes").send().await.unwrap();
    assert_refused(other, ErrorCode::MaintenanceModeActive).await;
}

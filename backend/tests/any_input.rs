//! SPEC §8, "at scale and with any input": text from outside is stored
//! faithfully or refused, never a 500 and never a wedge. Programs' output with
//! NUL bytes and invalid UTF-8, NUL in request fields and credentials, and
//! unknown query parameters and body fields on every route of the OpenAPI
//! document. Run on both stores (`MANAGER_TEST_STORE=postgres`).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{assert_error, on_postgres, write_workflow, TestApp, ADMIN_PASSWORD, PATIENCE};
use reqwest::Method;
use serde_json::{json, Value};
use shared::api::ListResponse;
use shared::execution::{ExecutionEvent, OutputStream, UNSTORABLE_MARKER};
use shared::{ErrorCode, Execution, ExecutionStatus, MaintenanceState};
use tempfile::TempDir;

/// A workflow that writes `output` (a `printf` format: octal escapes are
/// bytes), waits until the file `release` exists, then writes `last` and exits 0.
fn gated_workflow(dir: &Path, name: &str, output: &str, release: &Path, last: &str) {
    let program = format!(
        "#!/bin/sh\nprintf '{output}'\nwhile [ ! -e '{}' ]; do sleep 0.05; done\nprintf '{last}'\n",
        release.display()
    );
    write_workflow(dir, name, &program);
}

async fn start(app: &TestApp, workflow: &str) -> Execution {
    let body = json!({"workflow_id": workflow, "deployment_id": "web"});
    let response = app.api.post("/executions", Some(body)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    response.json().await.unwrap()
}

/// Execution `id`'s output, read in any maintenance state (the admin's bypass).
async fn output(app: &TestApp, id: uuid::Uuid) -> Vec<ExecutionEvent> {
    let request = app.api.request(Method::GET, &format!("/executions/{id}/events"));
    let response = request.header(shared::api::BYPASS_HEADER, "true").send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<ListResponse<ExecutionEvent>>().await.unwrap().items
}

/// Waits until `count` lines of execution `id` are stored.
async fn wait_for_lines(app: &TestApp, id: uuid::Uuid, count: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let stored = output(app, id).await;
        if stored.len() >= count {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {stored:?} stored; the output is wedged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `workflow` while maintenance mode is activated: it must end
/// `terminated` and the manager become `activated`. Returns its output.
async fn run_through_an_activation(app: &TestApp, workflow: &str, release: &Path, early: usize) -> Vec<ExecutionEvent> {
    let execution = start(app, workflow).await;
    // The lines written before the gate are stored while it runs (a flush of their own)…
    wait_for_lines(app, execution.id, early).await;
    let activating = app.api.activate(Some("any input")).await;
    assert_eq!(activating.status, MaintenanceState::Activating);
    assert_eq!(activating.remaining_executions.len(), 1);
    // …and the last ones with its end.
    std::fs::write(release, "").unwrap();
    let ended = app.api.wait_for_end(execution.id).await;
    assert_eq!((ended.status, ended.error.as_str()), (ExecutionStatus::Terminated, ""));
    app.api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
    output(app, execution.id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn nul_bytes_and_invalid_utf8_in_output_become_replacement_characters_and_the_end_is_recorded() {
    let workflows = TempDir::new().unwrap();
    let release = workflows.path().join("release");
    // NUL bytes, a byte that is never UTF-8, a character cut short; the same at the end.
    gated_workflow(workflows.path(), "binary", r"a\000b\nc\377d\ne\303\n", &release, r"\000\000tail\377\n");
    let app = TestApp::spawn_with_workflows(workflows.path(), 1).await;
    let events = run_through_an_activation(&app, "binary", &release, 3).await;
    let lines: Vec<&str> = events.iter().map(|event| event.line.as_str()).collect();
    assert_eq!(lines, ["a\u{FFFD}b", "c\u{FFFD}d", "e\u{FFFD}", "\u{FFFD}\u{FFFD}tail\u{FFFD}"]);
    assert!(events.iter().all(|event| event.stream == OutputStream::Stdout));
}

/// A PostgreSQL database in WIN1252 cannot hold most characters: lines with
/// them become markers (in a batch while the program runs, and in the last
/// batch, stored with the end), the others are kept, and the end is recorded.
/// SQLite and UTF-8 databases hold them all: there they are kept as written.
#[tokio::test(flavor = "multi_thread")]
async fn a_line_the_database_cannot_hold_becomes_a_marker_and_the_end_is_still_recorded() {
    let workflows = TempDir::new().unwrap();
    let release = workflows.path().join("release");
    gated_workflow(
        workflows.path(),
        "emoji",
        r"before\nrocket \360\237\232\200\ncaf\303\251\n",
        &release,
        r"last \342\234\223\n",
    );
    let data_dir = TempDir::new().unwrap();
    let win1252 = on_postgres().then(|| {
        let server = pg_harness::shared();
        let name = format!("win1252_{}", std::process::id());
        server
            .psql(
                "postgres",
                &format!("CREATE DATABASE {name} ENCODING 'WIN1252' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"),
            )
            .expect("a WIN1252 database");
        server.url(&name)
    });
    let stored_as_is = win1252.is_none();
    let config = manager::config::Config {
        workflows: workflows.path().to_owned(),
        cancel_grace_seconds: 1,
        ..TestApp::config_on(data_dir.path(), win1252)
    };
    let app = TestApp::spawn_config(data_dir, config).await;
    let events = run_through_an_activation(&app, "emoji", &release, 3).await;
    let lines: Vec<(OutputStream, &str)> = events.iter().map(|event| (event.stream, event.line.as_str())).collect();
    if stored_as_is {
        let stdout = OutputStream::Stdout;
        assert_eq!(lines, [(stdout, "before"), (stdout, "rocket 🚀"), (stdout, "café"), (stdout, "last ✓")]);
    } else {
        let (stdout, manager) = (OutputStream::Stdout, OutputStream::Manager);
        assert_eq!(
            lines,
            [(stdout, "before"), (manager, UNSTORABLE_MARKER), (stdout, "café"), (manager, UNSTORABLE_MARKER)]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_request_field_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let future = "2099-01-01T00:00:00Z";
    let cases = [
        ("/executions", json!({"workflow_id": "install", "deployment_id": "web\u{0}"}), "deployment_id"),
        ("/executions", json!({"workflow_id": "inst\u{0}all", "deployment_id": "web"}), "workflow_id"),
        (
            "/executions",
            json!({"workflow_id": "install", "deployment_id": "web", "parameters": {"list": ["ok", "\u{0}"]}}),
            "parameters.list[1]",
        ),
        ("/maintenance/activate", json!({"reason": "upgrade\u{0}"}), "reason"),
        ("/maintenance/windows", json!({"starts_at": future, "reason": "\u{0}"}), "reason"),
    ];
    for (path, body, field) in cases {
        let error = assert_error(app.api.post(path, Some(body.clone())).await, 400, ErrorCode::BadRequest).await;
        assert!(
            error.message.starts_with(&format!("{field}: must not contain a NUL")),
            "{path} {body}: {}",
            error.message
        );
    }
    for (query, parameter) in [("deployment_id=web%00", "deployment_id"), ("_sort=%00id", "_sort")] {
        let response = app.api.get(&format!("/executions?{query}")).await;
        let error = assert_error(response, 400, ErrorCode::BadRequest).await;
        assert!(error.message.starts_with(&format!("{parameter}: must not contain a NUL")), "{}", error.message);
    }
    // Nothing was stored or changed.
    let executions: ListResponse<Value> = app.api.get("/executions").await.json().await.unwrap();
    assert_eq!(executions.metadata.pagination.total, 0);
    assert_eq!(app.api.status().await.status, MaintenanceState::Deactivated);
    let windows: ListResponse<Value> = app.api.get("/maintenance/windows").await.json().await.unwrap();
    assert_eq!(windows.metadata.pagination.total, 0);
}

/// A NUL in a user name or a password is a wrong sign-in: 401, and counted
/// by the sign-in limiter like any other (the sixth try is 429).
#[tokio::test(flavor = "multi_thread")]
async fn a_nul_in_a_user_name_or_password_is_a_wrong_sign_in_and_counted() {
    let app = TestApp::spawn().await;
    let sign_in = |username: &'static str, password: String| {
        let request = app.api.http.post(app.api.url("/tokens")).basic_auth(username, Some(password));
        async move { request.send().await.unwrap() }
    };
    let with_nul = format!("{ADMIN_PASSWORD}\0");
    for (username, password) in [("admin\0", ADMIN_PASSWORD.to_owned()), ("admin", with_nul)] {
        for _ in 0..manager::auth::limiter::MAX_FAILURES {
            assert_error(sign_in(username, password.clone()).await, 401, ErrorCode::Unauthorized).await;
        }
        // Counted: this user name from this address is now locked out, even with the right password.
        assert_error(sign_in(username, ADMIN_PASSWORD.to_owned()).await, 429, ErrorCode::TooManyRequests).await;
    }
    // The same with Basic credentials on any other route.
    let response = app.api.http.get(app.api.url("/maintenance")).basic_auth("ad\0min", Some("x")).send().await.unwrap();
    assert_error(response, 401, ErrorCode::Unauthorized).await;
}

/// `POST /tokens` used to ignore any body: it takes what Cloudify's client
/// sends (`cfy tokens create`) when it changes nothing here, and refuses the rest by name.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_request_takes_cloudifys_description_and_refuses_an_expiry() {
    let app = TestApp::spawn().await;
    let create = |body: Value| {
        let request = app.api.http.post(app.api.url("/tokens")).basic_auth("admin", Some(ADMIN_PASSWORD));
        async move { request.json(&body).send().await.unwrap() }
    };
    assert_eq!(create(json!({})).await.status(), 200);
    assert_eq!(create(json!({"description": "ci", "expiration_date": null})).await.status(), 200);
    let error = assert_error(create(json!({"expiration_date": "+10h"})).await, 400, ErrorCode::BadRequest).await;
    assert!(error.message.contains("expiration_date"), "{}", error.message);
}

/// Valid bodies for each request body schema of the document, by name.
fn valid_body(schema: &str) -> Value {
    match schema {
        "ActivateRequest" => json!({"reason": "walk"}),
        "NewWindow" => json!({"starts_at": "2099-01-01T00:00:00Z"}),
        "ExtendWindow" => json!({"ends_at": "2099-01-02T00:00:00Z"}),
        "CreateExecution" => json!({"workflow_id": "install", "deployment_id": "walk"}),
        "ExecutionActionRequest" => json!({"action": "cancel"}),
        "TokenRequest" => json!({}),
        other => panic!("no valid body for the schema {other}: add one here"),
    }
}

/// The first `$ref` schema name in a request body's schema.
fn schema_name(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(fields) => fields
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.rsplit('/').next())
            .map(str::to_owned)
            .or_else(|| fields.values().find_map(schema_name)),
        Value::Array(items) => items.iter().find_map(schema_name),
        _ => None,
    }
}

/// Every operation of the OpenAPI document refuses a query parameter it does
/// not take, and every operation that takes a body (or could be sent one: POST,
/// DELETE) refuses a field it does not take: 400 naming it, before anything is done.
#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_an_unknown_query_parameter_and_body_field_by_name() {
    let app = TestApp::spawn().await;
    let document: Value = app.api.get("/openapi.json").await.json().await.unwrap();
    let paths = document["paths"].as_object().expect("paths");
    let (mut operations, mut with_body, mut without_body) = (0, 0, 0);
    for (template, item) in paths {
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else { continue };
            operations += 1;
            let path = template.replace("{id}", &uuid::Uuid::new_v4().to_string());
            assert!(!path.contains('{'), "a path parameter this test does not fill: {template}");
            let mut query = Vec::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "query" && parameter["required"] == true {
                    query.push(format!("{}={}", parameter["name"].as_str().unwrap(), uuid::Uuid::new_v4()));
                }
            }
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let send = |query: String, body: Option<Value>| {
                // The document's paths include the API prefix.
                let url = format!("{}{path}?{query}", app.api.base);
                let request = app.api.http.request(method.clone(), url).basic_auth("admin", Some(ADMIN_PASSWORD));
                let request = match body {
                    Some(body) => request.json(&body),
                    None => request,
                };
                async move { request.send().await.unwrap() }
            };

            let mut extra = query.clone();
            extra.push("unexpected_parameter=1".into());
            let response = send(extra.join("&"), None).await;
            let error = assert_error(response, 400, ErrorCode::BadRequest).await;
            assert!(error.message.contains("unexpected_parameter"), "{method} {template}: {}", error.message);

            if method == Method::GET {
                continue;
            }
            let mut body = match schema_name(&operation["requestBody"]) {
                Some(schema) => {
                    with_body += 1;
                    valid_body(&schema)
                }
                None => {
                    without_body += 1;
                    json!({})
                }
            };
            body["unexpected_field"] = json!(1);
            let response = send(query.join("&"), Some(body)).await;
            let error = assert_error(response, 400, ErrorCode::BadRequest).await;
            assert!(error.message.contains("unexpected_field"), "{method} {template}: {}", error.message);
        }
    }
    // Not vacuous: every route was walked (29 operations in 26 paths today).
    assert_eq!(operations, 29, "operations in the document");
    assert_eq!((with_body, without_body), (6, 3), "POST/DELETE operations with and without a body");
    // Nothing was done.
    assert_eq!(app.api.status().await.status, MaintenanceState::Deactivated);
}

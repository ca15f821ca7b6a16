//! Bad input gets the documented 4xx JSON error, never a 500 or a panic (SPEC §4).

mod common;

use common::{assert_error, TestApp};
use reqwest::Method;
use shared::ErrorCode;

#[tokio::test(flavor = "multi_thread")]
async fn malformed_missing_and_mistyped_bodies_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let uuid = uuid::Uuid::new_v4();
    let one = format!("/executions/{uuid}");
    let cases: Vec<(&str, &str, Option<&str>)> = vec![
        ("/executions", "{not json", Some("not valid JSON")),
        ("/executions", "", Some("missing")),
        ("/executions", "[]", None),
        ("/executions", "null", None),
        ("/executions", r#"{"deployment_id":"web"}"#, Some("workflow_id")),
        ("/executions", r#"{"workflow_id":7,"deployment_id":"web"}"#, Some("workflow_id")),
        ("/executions", r#"{"workflow_id":"i","deployment_id":"web","parameters":[1]}"#, Some("parameters")),
        ("/executions", r#"{"workflow_id":"i","deployment_id":"web","queue":"yes"}"#, Some("queue")),
        ("/executions", r#"{"workflow_id":"","deployment_id":"web"}"#, Some("workflow_id")),
        ("/executions", r#"{"workflow_id":"i","deployment_id":"web","extra":1}"#, Some("extra")),
        (one.as_str(), r#"{"action":"resume"}"#, Some("action")),
        (one.as_str(), r#"{}"#, Some("action")),
        (one.as_str(), "cancel", Some("not valid JSON")),
        ("/executions/not-a-uuid", r#"{"action":"cancel"}"#, Some("not-a-uuid")),
        ("/maintenance/activate", r#"{"reason":42}"#, Some("reason")),
        ("/maintenance/activate", r#"{"reason":"x","why":"y"}"#, Some("why")),
        ("/maintenance/activate", "{", Some("not valid JSON")),
    ];
    for (path, body, mentions) in cases {
        let response = app.api.request(Method::POST, path).body(body).send().await.unwrap();
        let error = assert_error(response, 400, ErrorCode::BadRequest).await;
        if let Some(word) = mentions {
            assert!(error.message.contains(word), "POST {path} {body:?}: {:?} should mention {word:?}", error.message);
        }
    }
    let reason = "x".repeat(1001);
    let response = app.api.post("/maintenance/activate", Some(serde_json::json!({"reason": reason}))).await;
    assert_error(response, 400, ErrorCode::BadRequest).await;
    assert_eq!(app.api.status().await.status, shared::MaintenanceState::Deactivated, "nothing changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_ids_methods_and_queries_get_json_errors() {
    let app = TestApp::spawn().await;
    let missing = uuid::Uuid::new_v4();
    assert_error(app.api.get("/nothing-here").await, 404, ErrorCode::NotFound).await;
    assert_error(app.api.get("/executions/a/b/c").await, 404, ErrorCode::NotFound).await;
    let other_version = app.api.http.get(format!("{}/api/v2/maintenance", app.api.base)).send().await.unwrap();
    assert_error(other_version, 404, ErrorCode::NotFound).await;
    assert_error(app.api.get(&format!("/executions/{missing}")).await, 404, ErrorCode::NotFound).await;
    let cancel_missing =
        app.api.post(&format!("/executions/{missing}"), Some(serde_json::json!({"action": "cancel"}))).await;
    assert_error(cancel_missing, 404, ErrorCode::NotFound).await;
    assert_error(app.api.get("/executions/zzz").await, 400, ErrorCode::BadRequest).await;
    // Not UTF-8 once percent-decoded.
    assert_error(app.api.get("/executions/%FF").await, 400, ErrorCode::BadRequest).await;
    let not_utf8 = app.api.request(Method::DELETE, "/tokens/%FF%FE").send().await.unwrap();
    assert_error(not_utf8, 400, ErrorCode::BadRequest).await;
    let wrong_method = app.api.request(Method::DELETE, "/maintenance").send().await.unwrap();
    assert_error(wrong_method, 405, ErrorCode::MethodNotAllowed).await;
    let wrong_method = app.api.request(Method::GET, "/maintenance/activate").send().await.unwrap();
    assert_error(wrong_method, 405, ErrorCode::MethodNotAllowed).await;
    for query in ["_size=0", "_size=1001", "_size=abc", "_offset=-1"] {
        assert_error(app.api.get(&format!("/executions?{query}")).await, 400, ErrorCode::BadRequest).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_bodies_are_413() {
    let app = TestApp::spawn().await;
    let huge = format!(r#"{{"workflow_id":"{}","deployment_id":"web"}}"#, "a".repeat(2 * 1024 * 1024));
    // The server answers before reading the body and closes the connection, so
    // each request needs a fresh one (a pooled one may already be closing).
    let unpooled = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for path in ["/executions", "/maintenance/activate"] {
        let token = app.api.token.clone().unwrap();
        let response = unpooled
            .post(app.api.url(path))
            .header(shared::api::TOKEN_HEADER, token)
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_error(response, 413, ErrorCode::PayloadTooLarge).await;
    }
    // Just under the limit is judged on its content, not its size.
    let long_id = format!(r#"{{"workflow_id":"{}","deployment_id":"web"}}"#, "a".repeat(40_000));
    let response = app.api.request(Method::POST, "/executions").body(long_id).send().await.unwrap();
    let error = assert_error(response, 400, ErrorCode::BadRequest).await;
    assert!(error.message.contains("workflow_id"), "{}", error.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_parses_and_lists_every_route() {
    let app = TestApp::spawn().await;
    let response = app.api.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let document: serde_json::Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v3.1/maintenance", &["get"][..]),
        ("/api/v3.1/maintenance/activate", &["post"]),
        ("/api/v3.1/maintenance/deactivate", &["post"]),
        ("/api/v3.1/maintenance/events", &["get"]),
        ("/api/v3.1/maintenance/history", &["get"]),
        ("/api/v3.1/executions", &["get", "post"]),
        ("/api/v3.1/executions/{id}", &["get", "post"]),
        ("/api/v3.1/version", &["get"]),
        ("/api/v3.1/status", &["get"]),
        ("/api/v3.1/ok", &["get"]),
        ("/api/v3.1/openapi.json", &["get"]),
        ("/api/v3.1/provider/context", &["get"]),
        ("/api/v3.1/managers", &["get"]),
        ("/api/v3.1/brokers", &["get"]),
        ("/api/v3.1/db-nodes", &["get"]),
        ("/api/v3.1/events", &["get"]),
    ] {
        for method in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} missing from the document"
            );
        }
    }
    let schemas = document["components"]["schemas"].as_object().unwrap();
    for schema in ["MaintenanceStatus", "Execution", "ExecutionView", "CreateExecution", "ApiError", "ErrorCode"] {
        assert!(schemas.contains_key(schema), "schema {schema}");
    }
}

//! Property: whatever is thrown at the router — any method, path, headers,
//! body — the answer is never a 5xx or a panic, and every error is the JSON
//! error body. In-process (no sockets), many cases per run.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use manager::config::Config;
use manager::Manager;
use proptest::prelude::*;
use shared::{ApiError, ErrorCode, Role};
use tower::ServiceExt;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
    _data: tempfile::TempDir,
}

/// One manager for all cases (its state drifts as cases run, which is the point).
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let data = tempfile::tempdir().unwrap();
        let (router, token) = runtime.block_on(async {
            let config = Config {
                dist: "/nonexistent".into(),
                admin_password: Some("fuzzing password".into()),
                workflows: manager::workflows::EXAMPLES.into(),
                ..Config::local(data.path().to_owned())
            };
            let manager = Manager::open(&config).await.unwrap();
            let token = manager.state().auth.issue_token("admin", Role::Admin).await.unwrap().value;
            (manager.router(), token)
        });
        Fixture { runtime, router, token, _data: data }
    })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::PATCH),
        Just(Method::DELETE),
        Just(Method::HEAD),
        Just(Method::OPTIONS),
        "[A-Z]{1,8}".prop_filter_map("valid method", |m| Method::from_bytes(m.as_bytes()).ok()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("maintenance".to_owned()),
        Just("activate".to_owned()),
        Just("deactivate".to_owned()),
        Just("events".to_owned()),
        Just("history".to_owned()),
        Just("executions".to_owned()),
        Just("tokens".to_owned()),
        Just("version".to_owned()),
        Just("openapi.json".to_owned()),
        Just(uuid::Uuid::nil().to_string()),
        Just("%FF%FE".to_owned()),
        "[a-zA-Z0-9%._~-]{0,12}",
    ];
    let prefix = prop_oneof![Just("/api/v3.1"), Just("/api"), Just("/api/v2"), Just("")];
    (prefix, prop::collection::vec(segment, 0..4), prop::option::of("[a-z_=&0-9%]{0,20}")).prop_map(
        |(prefix, segments, query)| {
            let mut path = format!("{prefix}/{}", segments.join("/"));
            if let Some(query) = query {
                path = format!("{path}?{query}");
            }
            path
        },
    )
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..200),
        Just(br#"{"workflow_id":"install","deployment_id":"d","parameters":{"duration_seconds":0.01}}"#.to_vec()),
        Just(br#"{"workflow_id":"install","deployment_id":"d","queue":true}"#.to_vec()),
        Just(br#"{"action":"cancel"}"#.to_vec()),
        Just(br#"{"reason":"fuzz"}"#.to_vec()),
        "\\{\"[a-z_]{1,15}\":(1|\"x\"|null|\\[\\]|\\{\\}|-1e999|true)\\}".prop_map(String::into_bytes),
    ]
}

#[derive(Debug, Clone)]
enum Credentials {
    None,
    Token,
    BadToken(String),
    Basic(String),
}

fn credentials() -> impl Strategy<Value = Credentials> {
    prop_oneof![
        Just(Credentials::None),
        Just(Credentials::Token),
        "[ -~]{0,40}".prop_map(Credentials::BadToken),
        "[ -~]{0,40}".prop_map(Credentials::Basic),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn never_a_5xx_and_errors_are_json(
        method in method(),
        path in path(),
        body in body(),
        credentials in credentials(),
        bypass in any::<bool>(),
        json_type in any::<bool>(),
    ) {
        let fixture = fixture();
        let mut request = Request::builder().method(method.clone()).uri(&path);
        request = match &credentials {
            Credentials::None => request,
            Credentials::Token => request.header("Authentication-Token", &fixture.token),
            Credentials::BadToken(value) => request.header("Authentication-Token", value.as_str()),
            Credentials::Basic(value) => request.header("Authorization", format!("Basic {value}")),
        };
        if bypass {
            request = request.header("X-BYPASS-MAINTENANCE", "true");
        }
        if json_type {
            request = request.header("Content-Type", "application/json");
        }
        let Ok(request) = request.body(Body::from(body.clone())) else {
            // Not a valid HTTP request at all (e.g. a header value with control characters).
            return Ok(());
        };
        let (status, content_type, bytes) = fixture.runtime.block_on(async {
            let response = fixture.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
            // An event stream never ends: its headers are the answer.
            let bytes = if content_type.as_deref() == Some("text/event-stream") {
                Vec::new()
            } else {
                response.into_body().collect().await.unwrap().to_bytes().to_vec()
            };
            (status, content_type, bytes)
        });
        // A 5xx only as the product working: maintenance refusing (the fixture's
        // state drifts, and a case may have turned maintenance on) or a full queue.
        // (A HEAD answer has no body to name the code: its status must do.)
        if status.is_server_error() && !(method == Method::HEAD && status.as_u16() == 503) {
            let code = serde_json::from_slice::<ApiError>(&bytes).map(|error| error.error_code);
            prop_assert!(
                status.as_u16() == 503 && matches!(code, Ok(ErrorCode::MaintenanceModeActive | ErrorCode::EnteringMaintenanceMode | ErrorCode::Overloaded)),
                "{method} {path} -> {status}: {}", String::from_utf8_lossy(&bytes)
            );
        }
        // HEAD answers carry no body by definition.
        if (status.is_client_error() || status.is_server_error()) && method != Method::HEAD {
            prop_assert_eq!(content_type.as_deref(), Some("application/json"), "{} {} -> {}", method, path, status);
            let parsed = serde_json::from_slice::<ApiError>(&bytes);
            prop_assert!(parsed.is_ok(), "{method} {path} -> {status}: not an error body: {}", String::from_utf8_lossy(&bytes));
        }
    }
}

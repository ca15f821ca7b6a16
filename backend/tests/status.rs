//! `GET /status` (SPEC §13): each of the manager's services in Cloudify's
//! shape, true of this manager. On the store `MANAGER_TEST_STORE` names; the
//! PostgreSQL outage test runs on a server of its own whatever it says.

mod common;

use std::time::{Duration, Instant};

use common::receiver::{free_address, url_of, SECRET};
use common::{on_postgres, Api, TestApp, LONG, PATIENCE};
use manager::config::Config;
use manager::services::{CLUSTER, POSTGRESQL, REST_SERVICE, SQLITE, WEBHOOK_DELIVERY, WORKFLOW_RUNNER};
use manager::webhooks::Secret;
use serde_json::{json, Value};
use shared::api::ServerStatus;
use shared::cloudify::services::ServiceState;

async fn status(api: &Api) -> ServerStatus {
    let response = reqwest::get(api.url("/status")).await.expect("GET /status");
    assert_eq!(response.status(), 200);
    response.json().await.expect("a status body")
}

fn names(status: &ServerStatus) -> Vec<&str> {
    status.services.0.iter().map(|(name, _)| name.as_str()).collect()
}

fn state(status: &ServerStatus, name: &str) -> ServiceState {
    status.services.get(name).unwrap_or_else(|| panic!("no {name} in {status:?}")).status
}

fn extra(status: &ServerStatus, name: &str, key: &str) -> Value {
    status.services.get(name).and_then(|service| service.extra_info.get(key)).cloned().unwrap_or(Value::Null)
}

async fn wait_until<F: AsyncFn() -> bool>(what: &str, condition: F) {
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_lists_the_rest_service_the_database_and_the_workflow_runner_with_its_running_count() {
    let app = TestApp::spawn().await;
    let now = status(&app.api).await;
    let (database, cluster) = if on_postgres() { (POSTGRESQL, vec![CLUSTER]) } else { (SQLITE, vec![]) };
    let mut expected = vec![REST_SERVICE, database, WORKFLOW_RUNNER];
    expected.extend(cluster);
    assert_eq!(names(&now), expected);
    for (name, service) in &now.services.0 {
        assert_eq!(service.status, ServiceState::Active, "{name}: {service:?}");
    }
    assert_eq!(now.services.get(database).unwrap().is_remote, on_postgres());
    assert_eq!(extra(&now, REST_SERVICE, "version"), json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(extra(&now, WORKFLOW_RUNNER, "running"), json!(0));
    assert_eq!(extra(&now, WORKFLOW_RUNNER, "workflows"), json!(5), "the shipped examples");
    if on_postgres() {
        assert_eq!(extra(&now, CLUSTER, "replicas_alive"), json!(1));
    }

    // Cloudify's field names on the wire, as its client reads them.
    let raw: Value = reqwest::get(app.api.url("/status")).await.unwrap().json().await.unwrap();
    assert_eq!(raw["services"][WORKFLOW_RUNNER]["status"], "Active");
    assert!(raw["services"][REST_SERVICE]["extra_info"].is_object());

    let execution = app.api.start(LONG).await;
    assert_eq!(extra(&status(&app.api).await, WORKFLOW_RUNNER, "running"), json!(1));
    app.api.force_cancel(execution.id).await;
    app.api.wait_for_end(execution.id).await;
    assert_eq!(extra(&status(&app.api).await, WORKFLOW_RUNNER, "running"), json!(0));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_readable_workflows_directory_the_runner_is_inactive_and_says_why() {
    let app = TestApp::spawn_with_workflows(std::path::Path::new("/nonexistent-workflows"), 1).await;
    let now = status(&app.api).await;
    assert_eq!(state(&now, WORKFLOW_RUNNER), ServiceState::Inactive);
    let error = extra(&now, WORKFLOW_RUNNER, "error");
    assert!(error.as_str().unwrap_or_default().contains("/nonexistent-workflows"), "{error}");
    assert_eq!(state(&now, REST_SERVICE), ServiceState::Active);
    app.stop().await;
}

/// With `--webhook`, delivery is a service; its backlog is what waits for a
/// receiver that is down.
#[tokio::test(flavor = "multi_thread")]
async fn webhook_delivery_reports_its_backlog() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        webhooks: vec![url_of(free_address())],
        webhook_secret: Some(Secret::new(SECRET)),
        ..TestApp::config(data_dir.path())
    };
    let app = TestApp::spawn_config(data_dir, config).await;
    let now = status(&app.api).await;
    assert_eq!(state(&now, WEBHOOK_DELIVERY), ServiceState::Active);
    assert_eq!(
        (extra(&now, WEBHOOK_DELIVERY, "webhooks"), extra(&now, WEBHOOK_DELIVERY, "backlog")),
        (json!(1), json!(0))
    );
    app.api.activate(None).await;
    app.api.deactivate().await;
    // activate, activated, deactivated: none can be delivered.
    wait_until("the backlog of three events and a failed attempt", async || {
        let now = status(&app.api).await;
        extra(&now, WEBHOOK_DELIVERY, "backlog") == json!(3) && extra(&now, WEBHOOK_DELIVERY, "failing") == json!(1)
    })
    .await;
    assert_eq!(state(&status(&app.api).await, WEBHOOK_DELIVERY), ServiceState::Active);
    app.stop().await;
}

/// SPEC §8 + §13: while PostgreSQL is stopped `GET /status` still answers,
/// the database (and what needs it) `Inactive`; `Active` again once it is back.
#[tokio::test(flavor = "multi_thread")]
async fn the_database_is_inactive_while_postgresql_is_stopped_and_active_again_after() {
    let server = pg_harness::PgServer::start().expect("a PostgreSQL server of this test's own");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        webhooks: vec![url_of(free_address())],
        webhook_secret: Some(Secret::new(SECRET)),
        ..TestApp::config_on(data_dir.path(), Some(server.fresh_database().expect("database")))
    };
    let app = TestApp::spawn_config(data_dir, config).await;
    let before = status(&app.api).await;
    assert_eq!(names(&before), [REST_SERVICE, POSTGRESQL, WORKFLOW_RUNNER, WEBHOOK_DELIVERY, CLUSTER]);
    assert!(before.services.0.iter().all(|(_, service)| service.status == ServiceState::Active), "{before:?}");

    server.stop().expect("stop PostgreSQL");
    wait_until("PostgreSQL to be reported inactive", async || {
        state(&status(&app.api).await, POSTGRESQL) == ServiceState::Inactive
    })
    .await;
    let started = Instant::now();
    let down = status(&app.api).await;
    assert!(started.elapsed() < Duration::from_secs(10), "answered in bounded time");
    assert_eq!(down.database, "unavailable");
    for (name, expected) in [
        (REST_SERVICE, ServiceState::Active),
        (POSTGRESQL, ServiceState::Inactive),
        (WORKFLOW_RUNNER, ServiceState::Active),
        (WEBHOOK_DELIVERY, ServiceState::Inactive),
        (CLUSTER, ServiceState::Inactive),
    ] {
        assert_eq!(state(&down, name), expected, "{name}: {down:?}");
    }
    assert_eq!(extra(&down, POSTGRESQL, "error"), json!("the database does not answer"));

    server.start_again().expect("start PostgreSQL again");
    wait_until("every service to be active again", async || {
        let now = status(&app.api).await;
        now.database == "available" && now.services.0.iter().all(|(_, service)| service.status == ServiceState::Active)
    })
    .await;
    app.stop().await;
}

//! `GET /metrics` (SPEC §11) over real HTTP: the Prometheus text a scraper
//! reads, parsed by a Prometheus text parser, moving as the manager is driven.

mod common;

use common::{TestApp, LONG};
use prometheus_parse::{Sample, Scrape, Value};

async fn scrape(app: &TestApp) -> Scrape {
    // No credentials: the test manager listens on loopback.
    let response = reqwest::get(format!("{}/metrics", app.api.base)).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.unwrap();
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text")
}

fn value(scrape: &Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    let sample: &Sample = scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == metric && label.is_none_or(|(name, value)| sample.labels.get(name) == Some(value))
        })
        .unwrap_or_else(|| panic!("no {metric} {label:?} in {:#?}", scrape.samples));
    match sample.value {
        Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => value,
        ref other => panic!("{metric}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_move_as_the_manager_is_driven() {
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;
    assert_eq!(value(&before, "manager_maintenance_state", Some(("state", "deactivated"))), 1.0);
    assert_eq!(value(&before, "manager_maintenance_state", Some(("state", "activated"))), 0.0);
    assert_eq!(value(&before, "manager_executions", Some(("status", "started"))), 0.0);
    assert_eq!(value(&before, "manager_database_up", None), 1.0);
    let epoch = value(&before, "manager_maintenance_epoch", None);

    let running = app.api.start(LONG).await;
    let mut events = app.api.events().await;
    events.next().await;
    let during = scrape(&app).await;
    assert_eq!(value(&during, "manager_executions", Some(("status", "started"))), 1.0);
    assert_eq!(value(&during, "manager_running_processes", None), 1.0);
    assert_eq!(value(&during, "manager_sse_subscribers", None), 1.0);

    let activating = app.api.post("/maintenance/activate", Some(serde_json::json!({"mode": "read_only"}))).await;
    assert_eq!(activating.status(), 200);
    let refused = app.api.create(1.0, false).await;
    assert_eq!(refused.status(), 503);
    app.api.force_cancel(running.id).await;
    app.api.wait_for_status(|status| status.status == shared::MaintenanceState::Activated).await;
    let refused =
        app.api.request(reqwest::Method::DELETE, &format!("/executions/{}", running.id)).send().await.unwrap();
    assert_eq!(refused.status(), 503);

    let after = scrape(&app).await;
    assert_eq!(value(&after, "manager_maintenance_state", Some(("state", "activated"))), 1.0);
    assert_eq!(value(&after, "manager_maintenance_mode", Some(("mode", "read_only"))), 1.0);
    assert!(value(&after, "manager_maintenance_epoch", None) > epoch);
    assert!(value(&after, "manager_maintenance_state_seconds", None) < 60.0);
    assert_eq!(value(&after, "manager_gate_refusals_total", Some(("code", "entering_maintenance_mode"))), 1.0);
    assert_eq!(value(&after, "manager_gate_refusals_total", Some(("code", "maintenance_mode_read_only"))), 1.0);
    assert_eq!(value(&after, "manager_executions", Some(("status", "cancelled"))), 1.0);
    assert_eq!(value(&after, "manager_running_processes", None), 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_the_gate_while_maintenance_is_on() {
    let app = TestApp::spawn().await;
    app.api.activate(None).await;
    assert_eq!(value(&scrape(&app).await, "manager_maintenance_state", Some(("state", "activated"))), 1.0);
}

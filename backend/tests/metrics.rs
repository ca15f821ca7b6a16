//! `GET /metrics` (SPEC §11) over real HTTP: the Prometheus text a scraper
//! reads, parsed by a Prometheus text parser, moving as the manager is driven.

mod common;

use common::metrics::{scrape, value};
use common::{TestApp, LONG};

#[tokio::test(flavor = "multi_thread")]
async fn metrics_parse_and_move_as_the_manager_is_driven() {
    let app = TestApp::spawn().await;
    let before = scrape(&app.api).await;
    assert_eq!(value(&before, "manager_maintenance_state", Some(("state", "deactivated"))), 1.0);
    assert_eq!(value(&before, "manager_maintenance_state", Some(("state", "activated"))), 0.0);
    assert_eq!(value(&before, "manager_executions", Some(("status", "started"))), 0.0);
    assert_eq!(value(&before, "manager_database_up", None), 1.0);
    let epoch = value(&before, "manager_maintenance_epoch", None);

    let running = app.api.start(LONG).await;
    let mut events = app.api.events().await;
    events.next().await;
    let during = scrape(&app.api).await;
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

    let after = scrape(&app.api).await;
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
    assert_eq!(value(&scrape(&app.api).await, "manager_maintenance_state", Some(("state", "activated"))), 1.0);
}

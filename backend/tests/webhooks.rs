//! Webhooks (SPEC §11) over real HTTP: a real receiver on 127.0.0.1 gets
//! every maintenance event, signed, in order, at least once; through an
//! outage, a SIGKILL and a slow receiver. On the store `MANAGER_TEST_STORE`
//! names (the replicas' test is in replicas.rs).

mod common;

use std::time::{Duration, Instant};

use common::receiver::{assert_in_order_once, free_address, summary, url_of, Receiver, SECRET};
use common::{write_workflow, Api, ManagerProcess, TestApp, LONG, PATIENCE};
use manager::config::Config;
use manager::webhooks::Secret;
use serde_json::{json, Value};
use shared::{
    DeliveryOutcome, ExecutionStatus, HistoryEvent, MaintenanceState, Timestamp, WebhookEvent, Webhooks, WindowState,
};

/// A manager delivering to `urls`, running the workflows in `workflows` (if any) with a 1 s cancel grace.
async fn spawn(urls: &[String], workflows: Option<&std::path::Path>) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let base = TestApp::config(data_dir.path());
    let config = Config {
        webhooks: urls.to_vec(),
        webhook_secret: Some(Secret::new(SECRET)),
        workflows: workflows.map_or(base.workflows.clone(), std::path::Path::to_owned),
        cancel_grace_seconds: 1,
        ..base
    };
    TestApp::spawn_config(data_dir, config).await
}

fn in_millis(millis: i64) -> Timestamp {
    Timestamp::from_datetime(Timestamp::now().as_datetime() + chrono::TimeDelta::milliseconds(millis))
}

async fn report(api: &Api) -> Webhooks {
    let response = api.get("/maintenance/webhooks").await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("webhooks JSON")
}

fn events(of: &[WebhookEvent]) -> Vec<HistoryEvent> {
    of.iter().map(|event| event.event).collect()
}

/// Every kind of event, from an admin and from windows, arrives once,
/// signed, in the order of the history, each with the status right after it.
#[tokio::test(flavor = "multi_thread")]
async fn every_event_arrives_signed_in_order_with_the_status_right_after_it() {
    let receiver = Receiver::start().await;
    let workflows = tempfile::tempdir().unwrap();
    write_workflow(workflows.path(), "stubborn", "#!/bin/sh\ntrap '' TERM\necho ready\nwhile :; do sleep 0.05; done\n");
    let app = spawn(&[receiver.url()], Some(workflows.path())).await;
    let api = &app.api;

    // activate with an execution remaining; the drain deadline's two steps; activated.
    let response = api.post("/executions", Some(json!({"workflow_id": "stubborn", "deployment_id": "web"}))).await;
    assert_eq!(response.status(), 201);
    let execution: shared::Execution = response.json().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let lines: Value = api.get(&format!("/executions/{}/events", execution.id)).await.json().await.unwrap();
        if lines["items"].as_array().is_some_and(|items| items.iter().any(|item| item["line"] == "ready")) {
            break;
        }
        assert!(Instant::now() < deadline, "the workflow never said it was ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = api.post("/maintenance/activate", Some(json!({"drain_deadline_seconds": 1, "reason": "db"}))).await;
    assert_eq!(response.status(), 200);
    api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
    api.deactivate().await;

    // A window scheduled, extended, started (activate, activated), ended (deactivated); another cancelled.
    let window = |body: Value| async move {
        let response = api.post("/maintenance/windows", Some(body)).await;
        assert_eq!(response.status(), 201);
        response.json::<shared::Window>().await.unwrap()
    };
    let later = window(json!({"starts_at": in_millis(3_600_000), "ends_at": in_millis(7_200_000)})).await;
    assert_eq!(
        api.request(reqwest::Method::DELETE, &format!("/maintenance/windows/{}", later.id))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let soon = window(json!({"starts_at": in_millis(6_000), "ends_at": in_millis(7_000), "reason": "upgrade"})).await;
    let response =
        api.post(&format!("/maintenance/windows/{}/extend", soon.id), Some(json!({"ends_at": in_millis(7_500)}))).await;
    assert_eq!(response.status(), 200);

    use HistoryEvent::*;
    let expected = [
        Activate,
        DrainCancel,
        DrainForceCancel,
        Activated,
        Deactivated,
        WindowScheduled,
        WindowCancelled,
        WindowScheduled,
        WindowExtended,
        WindowStarted,
        Activate,
        Activated,
        WindowEnded,
        Deactivated,
    ];
    let got = receiver.wait_for(PATIENCE, |got| got.len() >= expected.len()).await;
    let now = settled(api).await;
    let got_all: Vec<WebhookEvent> = receiver.received().iter().map(common::receiver::Received::event).collect();
    assert_eq!(got_all.len(), expected.len(), "nothing more, nothing twice: {:?}", summary(&got_all));
    assert_eq!(events(&got), expected, "{:?}", summary(&got));
    assert_in_order_once(&got);

    // Each carries the status right after it.
    assert_eq!(got[0].status.status, MaintenanceState::Activating);
    assert_eq!(got[0].status.reason, "db");
    assert_eq!(got[0].status.remaining_executions.len(), 1, "the execution keeps it activating");
    assert_eq!(got[0].status.remaining_executions[0].status, ExecutionStatus::Started);
    assert_eq!(got[1].status.remaining_executions[0].status, ExecutionStatus::Cancelling);
    assert_eq!(got[2].status.remaining_executions[0].status, ExecutionStatus::ForceCancelling);
    assert_eq!(got[3].status.status, MaintenanceState::Activated);
    assert!(got[3].status.remaining_executions.is_empty());
    assert_eq!(got[4].status.status, MaintenanceState::Deactivated);
    assert!(got[..5].iter().all(|event| event.window.is_none()));
    let windows: Vec<_> = got[5..].iter().map(|event| event.window.as_ref().map(|w| (w.id, w.state))).collect();
    assert_eq!(windows[1], Some((later.id, WindowState::Cancelled)));
    assert_eq!(windows[2], Some((soon.id, WindowState::Scheduled)));
    assert_eq!(windows[4], Some((soon.id, WindowState::Active)));
    assert_eq!(windows[7], Some((soon.id, WindowState::Ended)));
    assert_eq!(
        got[10..].iter().map(|event| event.status.status).collect::<Vec<_>>(),
        [
            MaintenanceState::Activating,
            MaintenanceState::Activated,
            MaintenanceState::Activated,
            MaintenanceState::Deactivated
        ]
    );
    assert_eq!(got[10].status.reason, "upgrade");

    // The ids are the history's rows; the report says all was delivered.
    let history: shared::api::ListResponse<shared::MaintenanceTransition> =
        api.get("/maintenance/history?_size=100").await.json().await.unwrap();
    assert_eq!(history.items.len(), expected.len());
    assert_eq!(now.last_event_id, got.last().unwrap().id);
    let url = &now.webhooks[0];
    assert_eq!((url.url.as_str(), url.backlog, url.delivered, url.failed), (receiver.url().as_str(), 0, 14, 0));
    assert_eq!(url.delivered_through, now.last_event_id);
    assert_eq!(url.recent[0].event_id, now.last_event_id, "newest first");
    assert!(url.recent.iter().all(|d| d.outcome == DeliveryOutcome::Delivered && d.status_code == Some(200)));
}

/// A receiver that is down (connection refused) for 5 s gets everything,
/// in order and once, when it comes up; meanwhile the report shows the
/// failed attempts, and retries began within a second.
#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_down_for_five_seconds_gets_everything_in_order_when_it_comes_back() {
    let address = free_address();
    let app = spawn(&[url_of(address)], None).await;
    for _ in 0..3 {
        app.api.activate(None).await;
        app.api.deactivate().await;
    }
    let first_failure = Instant::now();
    let deadline = first_failure + PATIENCE;
    let failing = loop {
        let report = report(&app.api).await;
        if report.webhooks[0].attempts >= 2 {
            break report;
        }
        assert!(Instant::now() < deadline, "no retry: {report:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let url = &failing.webhooks[0];
    assert_eq!(url.backlog, 9, "{url:?}");
    let hook = format!("1:http://{address}");
    assert_eq!(metric(&app.api, "manager_webhook_backlog", &hook).await, 9.0);
    assert!(metric(&app.api, "manager_webhook_failing_attempts", &hook).await >= 2.0);
    assert_eq!(metric(&app.api, "manager_webhook_delivered_total", &hook).await, 0.0);
    assert!(url.last_error.contains("could not connect"), "{}", url.last_error);
    assert!(url.next_attempt_at.is_some());
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(first_failure.elapsed())).await;

    let receiver = Receiver::start_on(address, Duration::ZERO).await;
    let got = receiver.wait_for(Duration::from_secs(60), |got| got.len() >= 9).await;
    use HistoryEvent::*;
    assert_eq!(events(&got), [Activate, Activated, Deactivated].repeat(3));
    assert_in_order_once(&got);
    let after = settled(&app.api).await;
    let url = &after.webhooks[0];
    assert_eq!((url.backlog, url.delivered, url.attempts, url.last_error.as_str()), (0, 9, 0, ""));
    assert!(url.recent.last().unwrap().attempts >= 2, "the first event needed retries: {:?}", url.recent);
    assert_eq!(metric(&app.api, "manager_webhook_backlog", &hook).await, 0.0);
    assert_eq!(metric(&app.api, "manager_webhook_failing_attempts", &hook).await, 0.0);
    assert_eq!(metric(&app.api, "manager_webhook_delivered_total", &hook).await, 9.0);
    assert_eq!(metric(&app.api, "manager_webhook_failed_total", &hook).await, 0.0);
}

/// The report once every webhook's backlog is empty (a delivery is recorded
/// just after the receiver's answer).
async fn settled(api: &Api) -> Webhooks {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = report(api).await;
        if now.webhooks.iter().all(|url| url.backlog == 0) {
            return now;
        }
        assert!(Instant::now() < deadline, "a backlog stays: {now:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The value of the `/metrics` series `name` for webhook `label`.
async fn metric(api: &Api, name: &str, label: &str) -> f64 {
    common::metrics::value(&common::metrics::scrape(api).await, name, Some(("webhook", label)))
}

/// SIGKILL with undelivered events (and a window the manager is down
/// through): after a restart, all of them arrive, in order, window_missed
/// included.
#[tokio::test(flavor = "multi_thread")]
async fn events_undelivered_at_a_sigkill_are_delivered_after_the_restart() {
    let address = free_address();
    let data_dir = tempfile::tempdir().unwrap();
    let env = [("MANAGER_WEBHOOKS", url_of(address)), ("MANAGER_WEBHOOK_SECRET", SECRET.to_owned())];
    let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
    let manager = ManagerProcess::start_with_env(data_dir.path(), &env).signed_in().await;
    manager.api.activate(Some("before the crash")).await;
    let response = manager
        .api
        .post("/maintenance/windows", Some(json!({"starts_at": in_millis(3_000), "ends_at": in_millis(4_000)})))
        .await;
    assert_eq!(response.status(), 201);
    manager.kill();
    // Down through the whole window.
    tokio::time::sleep(Duration::from_millis(4_500)).await;

    let receiver = Receiver::start_on(address, Duration::ZERO).await;
    let manager = ManagerProcess::start_with_env(data_dir.path(), &env).signed_in().await;
    use HistoryEvent::*;
    let got = receiver.wait_for(PATIENCE, |got| got.len() >= 4).await;
    assert_eq!(events(&got), [Activate, Activated, WindowScheduled, WindowMissed], "{:?}", summary(&got));
    assert_in_order_once(&got);
    assert_eq!(got[0].status.reason, "before the crash");
    assert_eq!(got[3].window.as_ref().map(|w| w.state), Some(WindowState::Missed));
    drop(manager);
}

/// A receiver taking 20 s per request (the 10 s, doubled so a loaded
/// machine cannot make it look fast) holds back neither the gate, the API
/// nor another URL: while its first request is still open, the other URL
/// has every event and the API has answered each change.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_receiver_delays_neither_the_gate_nor_the_api_nor_another_url() {
    let slow = Receiver::start_on("127.0.0.1:0".parse().unwrap(), Duration::from_secs(20)).await;
    let fast = Receiver::start().await;
    let app = spawn(&[slow.url(), fast.url()], None).await;
    app.api.activate(None).await;
    slow.wait_for(PATIENCE, |got| !got.is_empty()).await;

    // The slow receiver holds its first request; everything else goes on.
    let status = app.api.deactivate().await;
    assert_eq!(status.status, MaintenanceState::Deactivated);
    assert_eq!(app.api.create(LONG, false).await.status(), 201, "the gate admits at once");
    app.api.activate(None).await;
    let got = fast.wait_for_count(4).await;
    use HistoryEvent::*;
    assert_eq!(events(&got), [Activate, Activated, Deactivated, Activate]);
    // The fast URL's last delivery is recorded just after its answer.
    let deadline = Instant::now() + PATIENCE;
    let now = loop {
        let now = report(&app.api).await;
        if now.webhooks[1].backlog == 0 || Instant::now() > deadline {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((now.webhooks[0].backlog, now.webhooks[1].backlog), (4, 0));
    assert_eq!(slow.answered(), 0, "all of that happened while the slow receiver's first request was open");
    assert_eq!(slow.received().len(), 1, "one request at a time, in order");
}

/// `GET /maintenance/webhooks` is for admins; without webhooks it lists none.
#[tokio::test(flavor = "multi_thread")]
async fn the_webhooks_report_is_for_admins_and_empty_without_webhooks() {
    let app = TestApp::spawn().await;
    assert!(report(&app.api).await.webhooks.is_empty());
    app.api.activate(None).await;
    assert_eq!(report(&app.api).await.last_event_id, 2, "activate and activated are events 1 and 2");
    let anonymous = reqwest::get(app.api.url("/maintenance/webhooks")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// Bad configuration is refused at start-up with a message naming the flag.
#[test]
fn bad_webhook_configuration_is_refused_at_start_up() {
    for (env, says) in [
        (vec![("MANAGER_WEBHOOKS", "ftp://127.0.0.1/x"), ("MANAGER_WEBHOOK_SECRET", "s")], "http:// or https://"),
        (vec![("MANAGER_WEBHOOKS", "http://127.0.0.1:9/x")], "needs --webhook-secret"),
    ] {
        let data_dir = tempfile::tempdir().unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_manager"));
        command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(data_dir.path()).env_remove("MANAGER_DATABASE_URL");
        for (key, value) in env {
            command.env(key, value);
        }
        let output = command.output().expect("run manager");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says) && stderr.contains("--webhook"), "{stderr}");
    }
}

/// A redirect is an answer that is not 2xx: not followed (the event is not
/// posted where it points), retried as a failure, said in the report.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_is_not_followed_and_counts_as_a_failed_attempt() {
    let target = Receiver::start().await;
    let location = target.url();
    let redirector = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let location = location.clone();
            async move { (axum::http::StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, location)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    let app = spawn(&[url_of(address)], None).await;
    app.api.activate(None).await;
    let deadline = Instant::now() + PATIENCE;
    let url = loop {
        let url = report(&app.api).await.webhooks.remove(0);
        if url.attempts >= 2 {
            break url;
        }
        assert!(Instant::now() < deadline, "no failed attempts: {url:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(url.last_error.contains("307") && url.last_error.contains("not followed"), "{}", url.last_error);
    assert_eq!((url.delivered, url.backlog), (0, 2));
    assert!(target.received().is_empty(), "the redirect was followed");
}

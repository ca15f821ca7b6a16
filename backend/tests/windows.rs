//! Maintenance windows, drain deadlines and read-only mode (SPEC §10) over
//! real HTTP, on the store `MANAGER_TEST_STORE` names.

mod common;

use std::time::Duration;

use common::{assert_error, write_workflow, Api, ManagerProcess, TestApp, LONG, PATIENCE};
use reqwest::Method;
use serde_json::{json, Value};
use shared::api::ListResponse;
use shared::{
    ErrorCode, ExecutionStatus, HistoryEvent, MaintenanceMode, MaintenanceState, MaintenanceTransition, Timestamp,
    Window, WindowState,
};

/// `now` plus `millis`, as the API takes times.
fn in_millis(millis: i64) -> Timestamp {
    Timestamp::from_datetime(Timestamp::now().as_datetime() + chrono::TimeDelta::milliseconds(millis))
}

async fn schedule(api: &Api, body: Value) -> Window {
    let response = api.post("/maintenance/windows", Some(body)).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    response.json().await.expect("window JSON")
}

async fn windows(api: &Api) -> Vec<Window> {
    let list: ListResponse<Window> = api.get("/maintenance/windows").await.json().await.expect("windows JSON");
    list.items
}

async fn history(api: &Api) -> Vec<MaintenanceTransition> {
    let list: ListResponse<MaintenanceTransition> =
        api.get("/maintenance/history?_size=1000").await.json().await.expect("history JSON");
    let mut rows = list.items;
    rows.reverse();
    rows
}

/// The history's events, oldest first.
async fn events_of(api: &Api) -> Vec<HistoryEvent> {
    history(api).await.iter().map(|row| row.event).collect()
}

async fn window(api: &Api, id: uuid::Uuid) -> Window {
    windows(api).await.into_iter().find(|window| window.id == id).expect("the window is listed")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_is_announced_at_its_notice_starts_and_ends_by_itself_and_the_stream_shows_each_step() {
    let app = TestApp::spawn().await;
    let mut events = app.api.events().await;
    assert_eq!(events.next().await.upcoming, None);

    let starts_at = in_millis(4_000);
    let ends_at = in_millis(5_500);
    let window = schedule(
        &app.api,
        json!({"starts_at": starts_at, "ends_at": ends_at, "reason": "upgrade to 7.1", "notice_seconds": 2}),
    )
    .await;
    assert_eq!((window.state, window.notice_seconds, window.created_by.as_str()), (WindowState::Scheduled, 2, "admin"));

    // Each step is an event of the stream, in order.
    let mut noticed = None;
    let mut activated = None;
    loop {
        let status = events.next().await;
        if let (None, Some(upcoming), MaintenanceState::Deactivated) = (noticed, &status.upcoming, status.status) {
            noticed = Some(Timestamp::now());
            assert_eq!((upcoming.id, upcoming.state), (window.id, WindowState::Scheduled));
        }
        if status.status == MaintenanceState::Activated {
            assert!(noticed.is_some(), "the notice came before the start");
            assert_eq!(status.requested_by, "admin", "the window's author");
            assert_eq!(status.reason, "upgrade to 7.1");
            assert_eq!(status.mode, Some(MaintenanceMode::Full));
            assert_eq!(status.upcoming.as_ref().map(|w| (w.id, w.state)), Some((window.id, WindowState::Active)));
            let requested = status.activation_requested_at.expect("activation time");
            assert!(requested >= starts_at, "{requested} is not before {starts_at}");
            activated = Some(status);
        } else if activated.is_some() && status.status == MaintenanceState::Deactivated {
            assert_eq!(status.upcoming, None);
            assert_eq!(status.mode, None);
            break;
        }
    }
    let noticed = noticed.unwrap();
    assert!(noticed >= Timestamp::from_datetime(starts_at.as_datetime() - chrono::TimeDelta::milliseconds(2_100)));

    let ended = window_state(&app.api, window.id).await;
    assert_eq!(ended.state, WindowState::Ended);
    assert!(ended.ended_at.expect("ended_at") >= ends_at);
    assert_eq!(
        events_of(&app.api).await,
        [
            HistoryEvent::WindowScheduled,
            HistoryEvent::WindowStarted,
            HistoryEvent::Activate,
            HistoryEvent::Activated,
            HistoryEvent::WindowEnded,
            HistoryEvent::Deactivated,
        ]
    );
    assert!(history(&app.api).await.iter().all(|row| row.window_id == Some(window.id)));
}

async fn window_state(api: &Api, id: uuid::Uuid) -> Window {
    window(api, id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manager_down_across_the_start_activates_once_when_it_starts_inside_the_window() {
    let data_dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(data_dir.path()).signed_in().await;
    let starts_at = in_millis(4_000);
    let window = schedule(&manager.api, json!({"starts_at": starts_at, "ends_at": in_millis(600_000)})).await;
    assert!(manager.terminate().success());
    assert!(Timestamp::now() < starts_at, "stopped before the start (else this tests nothing)");
    while Timestamp::now() <= starts_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let manager = ManagerProcess::start(data_dir.path()).signed_in().await;
    let status = manager.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
    assert_eq!(status.upcoming.map(|w| w.id), Some(window.id));
    assert!(manager.terminate().success());
    // And a second start inside the window does not start it again.
    let manager = ManagerProcess::start(data_dir.path()).signed_in().await;
    assert_eq!(manager.api.status().await.status, MaintenanceState::Activated);
    let events = events_of(&manager.api).await;
    let starts = events.iter().filter(|event| **event == HistoryEvent::WindowStarted).count();
    let activates = events.iter().filter(|event| **event == HistoryEvent::Activate).count();
    assert_eq!((starts, activates), (1, 1), "{events:?}");
    assert_eq!(window_state(&manager.api, window.id).await.state, WindowState::Active);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manager_down_for_the_whole_window_marks_it_missed_and_never_activates() {
    let data_dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(data_dir.path()).signed_in().await;
    let starts_at = in_millis(4_000);
    let ends_at = in_millis(5_000);
    let window = schedule(&manager.api, json!({"starts_at": starts_at, "ends_at": ends_at})).await;
    assert!(manager.terminate().success());
    assert!(Timestamp::now() < starts_at, "stopped before the start (else this tests nothing)");
    while Timestamp::now() <= ends_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let manager = ManagerProcess::start(data_dir.path()).signed_in().await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while window_state(&manager.api, window.id).await.state == WindowState::Scheduled {
        assert!(tokio::time::Instant::now() < deadline, "never marked missed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(window_state(&manager.api, window.id).await.state, WindowState::Missed);
    assert_eq!(manager.api.status().await.status, MaintenanceState::Deactivated);
    assert_eq!(events_of(&manager.api).await, [HistoryEvent::WindowScheduled, HistoryEvent::WindowMissed]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drain_deadline_cancels_then_force_cancels_a_workflow_that_ignores_sigterm_then_activates() {
    let workflows = tempfile::tempdir().unwrap();
    write_workflow(workflows.path(), "stubborn", "#!/bin/sh\ntrap '' TERM\necho ready\nwhile :; do sleep 0.05; done\n");
    let app = TestApp::spawn_with_workflows(workflows.path(), 1).await;
    let response = app.api.post("/executions", Some(json!({"workflow_id": "stubborn", "deployment_id": "web"}))).await;
    assert_eq!(response.status(), 201);
    let execution: shared::Execution = response.json().await.unwrap();
    // Its trap is set once it says so: a SIGTERM before would end it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let lines: Value = app.api.get(&format!("/executions/{}/events", execution.id)).await.json().await.unwrap();
        if lines["items"].as_array().is_some_and(|items| items.iter().any(|item| item["line"] == "ready")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the workflow never said it was ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let response = app.api.post("/maintenance/activate", Some(json!({"drain_deadline_seconds": 1}))).await;
    assert_eq!(response.status(), 200);
    let status: shared::MaintenanceStatus = response.json().await.unwrap();
    assert_eq!(status.status, MaintenanceState::Activating);
    let requested = status.activation_requested_at.unwrap();
    let deadline = status.drain_deadline_at.expect("drain_deadline_at");
    assert_eq!(deadline.as_datetime() - requested.as_datetime(), chrono::TimeDelta::seconds(1));

    let activated = app.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
    assert!(activated.remaining_executions.is_empty());
    assert_eq!(app.api.execution(execution.id).await.status, ExecutionStatus::Cancelled);
    let rows = history(&app.api).await;
    let steps: Vec<_> = rows.iter().map(|row| row.event).collect();
    assert_eq!(
        steps,
        [HistoryEvent::Activate, HistoryEvent::DrainCancel, HistoryEvent::DrainForceCancel, HistoryEvent::Activated]
    );
    assert_eq!(rows[1].detail, format!("cancelled 1 execution: {}", execution.id));
    assert_eq!(rows[2].detail, format!("force-cancelled 1 execution: {}", execution.id));
    assert!(rows[1].at >= deadline, "cancelled at the deadline, not before");
    let grace = rows[2].at.as_datetime() - rows[1].at.as_datetime();
    assert!(grace >= chrono::TimeDelta::seconds(1), "force-cancelled after the grace: {grace}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_drain_deadline_or_mode_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    for (body, field) in [
        (json!({"drain_deadline_seconds": 0}), "drain_deadline_seconds"),
        (json!({"drain_deadline_seconds": 604_801}), "drain_deadline_seconds"),
        (json!({"drain_deadline_seconds": "soon"}), "drain_deadline_seconds"),
        (json!({"mode": "readonly"}), "mode"),
    ] {
        let error =
            assert_error(app.api.post("/maintenance/activate", Some(body)).await, 400, ErrorCode::BadRequest).await;
        assert!(error.message.contains(field), "{}", error.message);
    }
    assert_eq!(app.api.status().await.status, MaintenanceState::Deactivated);
}

/// Every (mode, method, route) row of the gate's table once activated, over real HTTP:
/// a refusal is that 503; a pass reaches the handler (whatever it answers, never that 503).
/// `POST /executions` passes the gate and the engine refuses it, with the same code.
#[tokio::test(flavor = "multi_thread")]
async fn read_only_lets_reads_through_and_refuses_the_rest_as_read_only() {
    let app = TestApp::spawn().await;
    let id = "/executions/6b4f4d0e-2b8a-4e4b-9a57-1d1d2b3c4d5e";
    let routes = ["/maintenance", "/executions", id, "/deployments"];
    let methods = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    #[rustfmt::skip]
    let table = [
        //          GET     HEAD    POST    PUT     PATCH   DELETE
        ("full",      ["PAAA", "PAAA", "PAPA", "PAAA", "PAAA", "PAAA"]),
        ("read_only", ["PPPP", "PPPP", "PRPR", "PRRR", "PRRR", "PRRR"]),
    ];
    for (mode, row) in table {
        let status = app.api.post("/maintenance/activate", Some(json!({"mode": mode}))).await;
        assert_eq!(status.status(), 200);
        let status: shared::MaintenanceStatus = status.json().await.unwrap();
        assert_eq!(
            (status.status, status.mode.map(MaintenanceMode::as_str)),
            (MaintenanceState::Activated, Some(mode))
        );
        for (method, cells) in methods.iter().zip(row) {
            for (route, cell) in routes.iter().zip(cells.chars()) {
                let body = (*route == "/executions" && *method == Method::POST)
                    .then(|| json!({"workflow_id": "install", "deployment_id": "web"}))
                    .or_else(|| (*route == id && *method == Method::POST).then(|| json!({"action": "cancel"})));
                let mut request = app.api.request(method.clone(), route);
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let response = request.send().await.unwrap();
                let what = format!("{mode} {method} {route}");
                match cell {
                    'P' => assert_ne!(response.status(), 503, "{what} passes"),
                    code => {
                        let code = if code == 'A' {
                            ErrorCode::MaintenanceModeActive
                        } else {
                            ErrorCode::MaintenanceModeReadOnly
                        };
                        assert_eq!(response.status(), 503, "{what}");
                        assert!(response.headers().contains_key("retry-after"), "{what}");
                        if *method != Method::HEAD {
                            assert_error(response, 503, code).await;
                        }
                    }
                }
            }
        }
        assert_eq!(app.api.deactivate().await.status, MaintenanceState::Deactivated);
    }
    // Read-only while activating is the same as full: only execution changes wait.
    let running = app.api.start(LONG).await;
    let response = app.api.post("/maintenance/activate", Some(json!({"mode": "read_only"}))).await;
    assert_eq!(response.status(), 200);
    let create = app.api.create(1.0, false).await;
    assert_error(create, 503, ErrorCode::EnteringMaintenanceMode).await;
    assert_eq!(app.api.get("/executions").await.status(), 200);
    app.api.force_cancel(running.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn window_requests_are_validated_field_by_field_before_overlaps_are_refused() {
    let app = TestApp::spawn().await;
    let first = schedule(&app.api, json!({"starts_at": in_millis(3_600_000), "ends_at": in_millis(7_200_000)})).await;
    let post = |body: Value| app.api.post("/maintenance/windows", Some(body));

    let error = assert_error(post(json!({"starts_at": in_millis(-1_000)})).await, 400, ErrorCode::BadRequest).await;
    assert!(error.message.starts_with("starts_at"), "{}", error.message);
    // Bad and overlapping: the 400 wins.
    let overlapping_and_backwards = json!({"starts_at": in_millis(5_000_000), "ends_at": in_millis(4_000_000)});
    let error = assert_error(post(overlapping_and_backwards).await, 400, ErrorCode::BadRequest).await;
    assert!(error.message.starts_with("ends_at"), "{}", error.message);
    for unreadable in ["tomorrow", "9999-12-31T23:30:00-01:00"] {
        let error = assert_error(post(json!({"starts_at": unreadable})).await, 400, ErrorCode::BadRequest).await;
        assert!(error.message.contains("starts_at"), "{unreadable}: {}", error.message);
    }
    let error =
        assert_error(post(json!({"starts_at": in_millis(9_000_000), "notice": 5})).await, 400, ErrorCode::BadRequest)
            .await;
    assert!(error.message.contains("notice"), "{}", error.message);
    assert_error(post(json!({"ends_at": in_millis(9_000_000)})).await, 400, ErrorCode::BadRequest).await;

    let error =
        assert_error(post(json!({"starts_at": in_millis(7_000_000)})).await, 409, ErrorCode::WindowOverlaps).await;
    assert!(error.message.contains(&first.id.to_string()), "{}", error.message);

    // A user may read windows, not schedule them.
    common::users(
        app.data_dir.path(),
        manager::users::UsersCommand::Add { name: "viewer".into(), role: shared::Role::User, password_stdin: true },
        "viewer password\n",
    )
    .unwrap();
    let viewer = app.api.signed_in("viewer", "viewer password").await;
    assert_eq!(windows(&viewer).await.len(), 1);
    let refused = viewer.post("/maintenance/windows", Some(json!({"starts_at": in_millis(9_000_000)}))).await;
    assert_error(refused, 403, ErrorCode::Forbidden).await;
    assert_eq!(windows(&app.api).await.len(), 1, "nothing refused was stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn extend_cancel_and_a_manual_deactivate_change_windows_as_asked() {
    let app = TestApp::spawn().await;
    let later = schedule(&app.api, json!({"starts_at": in_millis(3_600_000), "ends_at": in_millis(7_200_000)})).await;

    // Extend: a later end; one that would overlap another window is 409; an unknown id 404.
    let next = schedule(&app.api, json!({"starts_at": in_millis(10_800_000)})).await;
    let new_end = in_millis(9_000_000);
    let response =
        app.api.post(&format!("/maintenance/windows/{}/extend", later.id), Some(json!({"ends_at": new_end}))).await;
    assert_eq!(response.status(), 200);
    let extended: Window = response.json().await.unwrap();
    assert_eq!(extended.ends_at, Some(new_end));
    let overlap = app
        .api
        .post(&format!("/maintenance/windows/{}/extend", later.id), Some(json!({"ends_at": in_millis(11_000_000)})))
        .await;
    assert_error(overlap, 409, ErrorCode::WindowOverlaps).await;
    let unknown = app
        .api
        .post(&format!("/maintenance/windows/{}/extend", uuid::Uuid::new_v4()), Some(json!({"ends_at": new_end})))
        .await;
    assert_error(unknown, 404, ErrorCode::NotFound).await;

    // Cancel a scheduled window; cancelling it again is 409.
    let cancel = |id: uuid::Uuid| app.api.request(Method::DELETE, &format!("/maintenance/windows/{id}")).send();
    let cancelled: Window = cancel(next.id).await.unwrap().json().await.unwrap();
    assert_eq!(cancelled.state, WindowState::Cancelled);
    assert_error(cancel(next.id).await.unwrap(), 409, ErrorCode::Conflict).await;

    // An active window: a manual deactivate ends it early.
    let soon =
        schedule(&app.api, json!({"starts_at": in_millis(2_000), "ends_at": in_millis(1_800_000), "reason": "now"}))
            .await;
    app.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
    assert_eq!(window_state(&app.api, soon.id).await.state, WindowState::Active);
    let off = app.api.deactivate().await;
    assert_eq!(off.upcoming.map(|w| w.id), Some(later.id), "the next window's notice (the default hour) has begun");
    let ended = window_state(&app.api, soon.id).await;
    assert_eq!(ended.state, WindowState::Ended);
    let rows = history(&app.api).await;
    let last: Vec<_> = rows.iter().rev().take(2).map(|row| (row.event, row.window_id)).collect();
    assert_eq!(last, [(HistoryEvent::Deactivated, Some(soon.id)), (HistoryEvent::WindowEnded, Some(soon.id))]);

    // And DELETE on an active window ends it, turning maintenance off.
    let again = schedule(&app.api, json!({"starts_at": in_millis(2_000), "ends_at": in_millis(1_800_000)})).await;
    app.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
    let ended: Window = cancel(again.id).await.unwrap().json().await.unwrap();
    assert_eq!(ended.state, WindowState::Ended);
    assert_eq!(app.api.status().await.status, MaintenanceState::Deactivated);
    assert_eq!(window_state(&app.api, later.id).await.state, WindowState::Scheduled, "the others are untouched");
}

/// Each change is one epoch: a deactivate, then a window scheduled, are two
/// (a window written must not publish its status twice).
#[tokio::test(flavor = "multi_thread")]
async fn each_change_publishes_one_epoch() {
    let app = TestApp::spawn().await;
    app.api.activate(None).await;
    let (deactivated, _) = common::epoch_and_status(app.api.post("/maintenance/deactivate", None).await).await;
    schedule(&app.api, json!({"starts_at": in_millis(86_400_000), "notice_seconds": 0})).await;
    let (scheduled, _) = app.api.status_with_epoch().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (later, _) = app.api.status_with_epoch().await;
    assert_eq!((scheduled, later), (deactivated + 1, deactivated + 1));
}

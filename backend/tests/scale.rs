//! At scale (SPEC §8 "At scale and with any input", §12 "Capacity and the
//! work queue"), over real HTTP against a real manager on either store:
//! thousands of executions queued during maintenance are released by one
//! change that answers at once, then run at most `--max-running` at a time,
//! each exactly once; a drain deadline over running and pending executions
//! commits at once.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::metrics::{scrape, value};
use common::{write_workflow, Api, TestApp};
use futures_util::StreamExt;
use manager::config::Config;
use serde_json::json;
use shared::{Execution, ExecutionStatus, MaintenanceState};
use tempfile::TempDir;

/// How many executions wait out maintenance.
const QUEUED: usize = 10_000;
/// How many in the variants (a window's end, three replicas): the same code
/// paths as `QUEUED`, at a size a CI run can afford twice.
const SOME: usize = 3_000;
/// `--max-running` in these tests: small, so the queue is what runs them.
const MAX_RUNNING: u32 = 8;
/// How many requests are in flight at once while queueing.
const CLIENTS: usize = 16;
/// How long all of them may take to run on a loaded 2-core machine.
const ALL_DONE: Duration = Duration::from_secs(900);

/// A manager whose one workflow `quick` appends its execution id to `ran`
/// (one short write: lines from concurrent programs never interleave) and exits.
async fn manager(workflows: &TempDir, ran: &Path) -> TestApp {
    write_workflow(workflows.path(), "quick", &format!("#!/bin/sh\necho \"$EXECUTION_ID\" >> '{}'\n", ran.display()));
    write_workflow(workflows.path(), "long", "#!/bin/sh\necho started\nwhile :; do sleep 0.1; done\n");
    let data_dir = tempfile::tempdir().expect("temp dir");
    let config = Config {
        workflows: workflows.path().to_owned(),
        max_running: MAX_RUNNING,
        cancel_grace_seconds: 2,
        ..TestApp::config(data_dir.path())
    };
    TestApp::spawn_config(data_dir, config).await
}

/// Queues `count` executions of `workflow` (maintenance is on), `CLIENTS` at a time.
async fn queue(api: &Api, workflow: &str, count: usize) -> Vec<Execution> {
    futures_util::stream::iter(0..count)
        .map(|n| {
            let api = api.clone();
            let workflow = workflow.to_owned();
            async move {
                let body = json!({"workflow_id": workflow, "deployment_id": format!("d{n}"), "queue": true});
                let response = api.post("/executions", Some(body)).await;
                assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
                let execution: Execution = response.json().await.expect("execution JSON");
                assert_eq!(execution.status, ExecutionStatus::Queued);
                execution
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await
}

/// Scrapes `/metrics` until `terminated` executions are stored, checking at
/// every scrape that at most `MAX_RUNNING` programs run; returns the most seen.
async fn run_to_the_end(api: &Api, terminated: usize) -> f64 {
    run_to_the_end_on(std::slice::from_ref(api), terminated).await
}

/// [`run_to_the_end`] on replicas: each runs at most `MAX_RUNNING` programs.
async fn run_to_the_end_on(apis: &[Api], terminated: usize) -> f64 {
    let deadline = tokio::time::Instant::now() + ALL_DONE;
    let mut most = 0.0_f64;
    loop {
        let mut done = 0.0;
        for api in apis {
            let scrape = scrape(api).await;
            let running = value(&scrape, "manager_running_processes", None);
            assert!(
                running <= f64::from(MAX_RUNNING),
                "{running} programs ran at once, over --max-running {MAX_RUNNING}"
            );
            most = most.max(running);
            done = value(&scrape, "manager_executions", Some(("status", "terminated")));
        }
        if done >= terminated as f64 {
            assert_eq!(done, terminated as f64, "more ended than were admitted");
            return most;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {done} of {terminated} ended in {ALL_DONE:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Every admitted execution ran exactly once: the ids the programs wrote are
/// the admitted ones, each once.
fn ran_once_each(ran: &Path, admitted: &[Execution]) {
    let text = std::fs::read_to_string(ran).expect("the programs' log");
    let lines: Vec<&str> = text.lines().collect();
    let distinct: HashSet<&str> = lines.iter().copied().collect();
    assert_eq!(distinct.len(), lines.len(), "some execution ran twice");
    let expected: HashSet<String> = admitted.iter().map(|execution| execution.id.to_string()).collect();
    let ran: HashSet<String> = distinct.iter().map(|id| (*id).to_owned()).collect();
    assert_eq!(ran.len(), expected.len(), "ran {} of {} executions", ran.len(), expected.len());
    assert!(ran == expected, "the programs that ran are not the admitted executions");
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_queued_executions_are_released_at_once_and_each_runs_once_within_max_running() {
    let workflows = tempfile::tempdir().unwrap();
    let ran = workflows.path().join("ran.log");
    let app = manager(&workflows, &ran).await;
    app.api.activate(Some("upgrade")).await;
    let admitted = queue(&app.api, "quick", QUEUED).await;

    // One change releases them all; the programs start after the answer.
    let status = app.api.deactivate().await;
    assert_eq!(status.status, MaintenanceState::Deactivated);
    let most = run_to_the_end(&app.api, QUEUED).await;
    assert!(most >= 1.0, "no scrape saw a program running");
    ran_once_each(&ran, &admitted);
    // None is left waiting, running or failed.
    let scrape = scrape(&app.api).await;
    for status in ["pending", "started", "queued", "failed", "cancelled"] {
        let left = scrape
            .samples
            .iter()
            .find(|sample| sample.metric == "manager_executions" && sample.labels.get("status") == Some(status));
        assert!(
            left.is_none_or(|sample| matches!(sample.value, prometheus_parse::Value::Gauge(0.0))),
            "{status}: {left:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_s_end_releases_thousands_of_queued_executions() {
    let workflows = tempfile::tempdir().unwrap();
    let ran = workflows.path().join("ran.log");
    let app = manager(&workflows, &ran).await;
    // A window that starts in two seconds and would last an hour…
    let starts = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let window: shared::Window = {
        let body = json!({"starts_at": shared::Timestamp::from_datetime(starts), "ends_at":
            shared::Timestamp::from_datetime(starts + chrono::TimeDelta::hours(1)), "reason": "upgrade", "notice_seconds": 0});
        let response = app.api.post("/maintenance/windows", Some(body)).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
        response.json().await.unwrap()
    };
    app.api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
    let admitted = queue(&app.api, "quick", SOME).await;
    // …moved to end in a second: its end deactivates and releases them.
    let ends = shared::Timestamp::from_datetime(chrono::Utc::now() + chrono::TimeDelta::seconds(1));
    let response =
        app.api.post(&format!("/maintenance/windows/{}/extend", window.id), Some(json!({"ends_at": ends}))).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
    app.api.wait_for_status(|status| status.status == MaintenanceState::Deactivated).await;
    run_to_the_end(&app.api, SOME).await;
    ran_once_each(&ran, &admitted);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drain_deadline_over_running_and_thousands_pending_commits_at_once() {
    let workflows = tempfile::tempdir().unwrap();
    let ran = workflows.path().join("ran.log");
    let app = manager(&workflows, &ran).await;
    let running = 3 * MAX_RUNNING as usize;
    let pending = 5_000;
    // More than the slots: MAX_RUNNING run, the rest wait `pending`.
    let admitted: Vec<Execution> = futures_util::stream::iter(0..running + pending)
        .map(|n| {
            let api = app.api.clone();
            async move {
                let body = json!({"workflow_id": "long", "deployment_id": format!("d{n}")});
                let response = api.post("/executions", Some(body)).await;
                assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
                response.json::<Execution>().await.expect("execution JSON")
            }
        })
        .buffer_unordered(CLIENTS)
        .collect()
        .await;
    let started = admitted.iter().filter(|execution| execution.status == ExecutionStatus::Started).count();
    assert!(started <= MAX_RUNNING as usize, "{started} started at admission");
    let response =
        app.api.post("/maintenance/activate", Some(json!({"reason": "upgrade", "drain_deadline_seconds": 1}))).await;
    assert_eq!(response.status(), 200);
    // At the deadline every remaining execution is stopped in one change:
    // the pending ones end at once, the running ones when their programs go.
    app.api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
    let status = app.api.status().await;
    assert!(status.remaining_executions.is_empty());
    let scrape = scrape(&app.api).await;
    let cancelled = value(&scrape, "manager_executions", Some(("status", "cancelled")));
    assert_eq!(cancelled, (running + pending) as f64, "every one ended cancelled");
    let sample = app.api.execution(admitted[admitted.len() - 1].id).await;
    assert_eq!(sample.status, ExecutionStatus::Cancelled);
}

/// Three replicas on one PostgreSQL database share the work queue: every
/// execution is claimed by one replica and runs once, each replica within
/// its `--max-running`, and each shows the replica that ran it.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_claim_each_released_execution_once_within_their_slots() {
    let url = pg_harness::shared().fresh_database().expect("a fresh PostgreSQL database");
    let workflows = tempfile::tempdir().unwrap();
    let ran = workflows.path().join("ran.log");
    write_workflow(workflows.path(), "quick", &format!("#!/bin/sh\necho \"$EXECUTION_ID\" >> '{}'\n", ran.display()));
    let mut replicas = Vec::new();
    for name in ["r1", "r2", "r3"] {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = Config {
            workflows: workflows.path().to_owned(),
            max_running: MAX_RUNNING,
            ..TestApp::config_on(data_dir.path(), Some(url.clone()))
        };
        let config = Config { replica_id: Some(name.to_owned()), ..config };
        replicas.push(TestApp::spawn_config(data_dir, config).await);
    }
    let apis: Vec<Api> = replicas.iter().map(|replica| replica.api.clone()).collect();
    apis[0].activate(Some("upgrade")).await;
    let admitted = queue(&apis[1], "quick", SOME).await;
    apis[2].deactivate().await;
    let most = run_to_the_end_on(&apis, SOME).await;
    assert!(most >= 1.0, "no scrape saw a program running");
    ran_once_each(&ran, &admitted);
    // Each shows who ran it; the work was shared.
    let mut by_replica = std::collections::HashMap::<String, usize>::new();
    for execution in admitted.iter().step_by(SOME / 100) {
        let execution = apis[0].execution(execution.id).await;
        assert_eq!(execution.status, ExecutionStatus::Terminated);
        *by_replica.entry(execution.replica).or_default() += 1;
    }
    assert!(by_replica.keys().all(|replica| ["r1", "r2", "r3"].contains(&replica.as_str())), "{by_replica:?}");
    assert!(by_replica.len() >= 2, "one replica ran everything: {by_replica:?}");
    for replica in replicas {
        replica.stop().await;
    }
}

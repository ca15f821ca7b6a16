//! Durability with real process restarts (SPEC §1): acknowledged transitions,
//! timestamps, history and executions survive SIGTERM and SIGKILL; running
//! executions of a dead process become `failed` and `activating` completes.

mod common;

use common::{ManagerProcess, LONG};
use shared::api::ListResponse;
use shared::{ExecutionStatus, MaintenanceState, MaintenanceTransition};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_while_activating_fails_the_running_execution_and_completes_activation() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(data.path()).signed_in().await;
    let finished = manager.api.start(0.05).await;
    manager.api.wait_for_end(finished.id).await;
    let running = manager.api.start(LONG).await;
    let activating = manager.api.activate(Some("db upgrade")).await;
    assert_eq!(activating.status, MaintenanceState::Activating);
    assert_eq!(activating.remaining_executions.len(), 1);
    assert_eq!(activating.remaining_executions[0].id, running.id);
    manager.kill();

    let manager = ManagerProcess::start(data.path()).signed_in().await;
    let status = manager.api.status().await;
    assert_eq!(status.status, MaintenanceState::Activated, "activating completes once the dead run is failed");
    assert_eq!(status.activation_requested_at, activating.activation_requested_at);
    assert_eq!(status.requested_by, "admin");
    assert_eq!(status.reason, "db upgrade");
    assert!(status.activated_at.is_some());

    let failed = manager.api.execution(running.id).await;
    assert_eq!(failed.status, ExecutionStatus::Failed);
    assert!(failed.error.contains("manager stopped"), "error says why: {:?}", failed.error);
    assert_eq!(failed.ended_at, status.activated_at);
    assert_eq!(manager.api.execution(finished.id).await.status, ExecutionStatus::Terminated);

    let history: ListResponse<MaintenanceTransition> =
        manager.api.get("/maintenance/history").await.json().await.unwrap();
    let history: Vec<_> = history.items.into_iter().rev().collect();
    let steps: Vec<_> = history.iter().map(|t| (t.from, t.to)).collect();
    assert_eq!(
        steps,
        [
            (MaintenanceState::Deactivated, MaintenanceState::Activating),
            (MaintenanceState::Activating, MaintenanceState::Activated)
        ]
    );
    assert_eq!(history[0].at, activating.activation_requested_at.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_right_after_an_acknowledged_activate_keeps_it() {
    let data = tempfile::tempdir().unwrap();
    for round in 0..5 {
        let manager = ManagerProcess::start(data.path()).signed_in().await;
        let acknowledged = manager.api.activate(Some(&format!("round {round}"))).await;
        manager.kill();

        let manager = ManagerProcess::start(data.path()).signed_in().await;
        assert_eq!(manager.api.status().await, acknowledged, "round {round}");
        let off = manager.api.deactivate().await;
        manager.kill();

        let manager = ManagerProcess::start(data.path()).signed_in().await;
        assert_eq!(manager.api.status().await, off, "round {round}");
        manager.kill();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn status_answers_and_events_carry_the_epoch_and_it_grows_across_restarts() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(data.path()).signed_in().await;
    let mut events = manager.api.events().await;
    let (first, status) = manager.api.status_with_epoch().await;
    assert_eq!(events.next_with_epoch().await, (first, status), "the event's id is the answer's epoch");

    let response = manager.api.post("/maintenance/activate", None).await;
    let (activated, status) = common::epoch_and_status(response).await;
    assert_eq!(activated, first + 1);
    assert_eq!(events.next_with_epoch().await, (activated, status.clone()));
    assert_eq!(manager.api.status_with_epoch().await, (activated, status));
    manager.kill();

    // A client that saw `activated` must be able to tell that the restarted
    // manager's answers are newer: the epoch never starts over.
    let manager = ManagerProcess::start(data.path()).signed_in().await;
    let mut events = manager.api.events().await;
    let (restarted, status) = manager.api.status_with_epoch().await;
    assert!(restarted > activated, "{restarted} after {activated}");
    assert_eq!(events.next_with_epoch().await, (restarted, status));
    let (deactivated, _) = common::epoch_and_status(manager.api.post("/maintenance/deactivate", None).await).await;
    assert_eq!(deactivated, restarted + 1);
    assert_eq!(events.next_with_epoch().await.0, deactivated);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_gracefully_and_everything_survives_the_restart() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(data.path()).signed_in().await;
    let activated = manager.api.activate(Some("maintenance window")).await;
    let queued: shared::Execution = manager.api.create(LONG, true).await.json().await.unwrap();
    assert_eq!(queued.status, ExecutionStatus::Queued);
    // An open event stream must not hold up the shutdown.
    let mut events = manager.api.events().await;
    events.next().await;
    let exit = manager.terminate();
    assert!(exit.success(), "exit status {exit}");
    assert!(events.next_or_end().await.is_none(), "the stream ended");

    let manager = ManagerProcess::start(data.path()).signed_in().await;
    assert_eq!(manager.api.status().await, activated);
    let still = manager.api.execution(queued.id).await;
    assert_eq!(still.status, ExecutionStatus::Queued, "queued executions wait through restarts");
    assert_eq!(still.created_at, queued.created_at);

    // Released by the deactivate, it starts as soon as a slot takes it.
    manager.api.deactivate().await;
    manager.api.wait_for_execution(queued.id, ExecutionStatus::Started).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn starting_on_an_unwritable_data_dir_fails_with_a_clear_message() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_manager"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(file.path().join("data"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("opening data dir"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_range_token_lifetime_is_refused_at_start_up() {
    let data = tempfile::tempdir().unwrap();
    for (flag, env) in [(Some("--token-ttl-seconds=9000000000000"), None), (None, Some("99999999999999999"))] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_manager"));
        command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(data.path()).args(flag);
        if let Some(value) = env {
            command.env("MANAGER_TOKEN_TTL_SECONDS", value);
        }
        // A manager that accepted the value would serve forever: give it a bound.
        let mut child = command.stderr(std::process::Stdio::piped()).spawn().unwrap();
        let deadline = std::time::Instant::now() + common::PATIENCE;
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                child.kill().unwrap();
                panic!("the manager started with {flag:?} {env:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--token-ttl-seconds") && stderr.contains("to 31536000 (a year)"), "{stderr}");
    }
}

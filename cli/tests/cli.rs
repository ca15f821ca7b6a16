//! The real `cfy` binary against a real manager on 127.0.0.1:0: the exact
//! lines of SPEC §6, exit codes, and errors a person can act on.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use shared::{Execution, MaintenanceState, MaintenanceStatus};

#[tokio::test(flavor = "multi_thread")]
async fn status_prints_the_reference_lines_in_all_three_states() {
    let manager = TestManager::spawn().await;
    let off = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&off);
    assert_eq!(stdout(&off), "\nMaintenance Mode Status:\n\tStatus:\tdeactivated\n\n");

    let execution = manager.start(LONG).await;
    manager.api_post("/maintenance/activate", json!({})).await;
    let status = manager.status().await;
    let requested = status.activation_requested_at.unwrap();
    let activating = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&activating);
    assert_eq!(
        stdout(&activating),
        format!(
            "\nMaintenance Mode Status:\n\tStatus:\tactivating\n\tRequested By:\tadmin\n\
             \tActivation Requested At:\t{requested}\n\n\
             Cloudify Manager currently has one running or pending execution. Waiting for it to finish before entering maintenance mode.\n"
        )
    );
    let verbose = stdout(&manager.cfy(&["maintenance-mode", "status", "-v"]).await);
    assert!(verbose.contains("Remaining executions:"), "{verbose}");
    assert!(verbose.contains(&execution.id.to_string()) && verbose.contains("| started |"), "{verbose}");

    manager.api_post(&format!("/executions/{}", execution.id), json!({"action": "cancel"})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while manager.status().await.status != MaintenanceState::Activated {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let activated_at = manager.status().await.activated_at.unwrap();
    let on = manager.cfy(&["maintenance-mode", "status"]).await;
    assert_success(&on);
    assert_eq!(
        stdout(&on),
        format!(
            "\nMaintenance Mode Status:\n\tStatus:\tactivated\n\tRequested By:\tadmin\n\tActivated At:\t{activated_at}\n\
             \tActivation Requested At:\t{requested}\n\n\
             INFO - Cloudify Manager is currently in maintenance mode. Most requests will be blocked.\n\n"
        )
    );
    let json: MaintenanceStatus =
        serde_json::from_str(&stdout(&manager.cfy(&["maintenance-mode", "status", "--json"]).await)).unwrap();
    assert_eq!(json.status, MaintenanceState::Activated);
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_without_wait_then_304_then_deactivate_twice() {
    let manager = TestManager::spawn().await;
    let activate = manager.cfy(&["maintenance-mode", "activate", "--reason", "kernel upgrade"]).await;
    assert_success(&activate);
    assert_eq!(
        stdout(&activate),
        "Entering maintenance mode...\nRun 'cfy maintenance-mode status' to check the maintenance mode's status.\n\n"
    );
    let status = manager.status().await;
    assert_eq!((status.status, status.reason.as_str()), (MaintenanceState::Activated, "kernel upgrade"));

    let again = manager.cfy(&["maintenance-mode", "activate"]).await;
    assert_success(&again);
    assert_eq!(
        stdout(&again),
        format!(
            "Entering maintenance mode...\nMaintenance mode is already on: the manager has been in maintenance mode since {}.\n",
            status.activated_at.unwrap()
        )
    );

    let off = manager.cfy(&["maintenance-mode", "deactivate"]).await;
    assert_success(&off);
    assert_eq!(stdout(&off), "Turning off maintenance mode...\nMaintenance mode is off.\n");
    let off_again = manager.cfy(&["maintenance-mode", "deactivate"]).await;
    assert_success(&off_again);
    assert_eq!(stdout(&off_again), "Turning off maintenance mode...\nMaintenance mode is already off.\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_wait_returns_once_the_running_execution_ends() {
    let manager = TestManager::spawn().await;
    // Long enough that cfy surely activates first, even on a loaded machine.
    let execution = manager.start(4.0).await;
    let wait = manager.cfy(&["maintenance-mode", "activate", "--wait", "--timeout", "60"]).await;
    assert_success(&wait);
    assert_eq!(
        stdout(&wait),
        "Entering maintenance mode...\n\
         Cloudify manager will enter Maintenance mode once there are no running or pending executions...\n\n\
         Manager is in maintenance mode.\nWhile in maintenance mode most requests will be blocked.\n"
    );
    // It followed the remaining count on stderr while it waited.
    assert!(stderr(&wait).contains("Waiting for one running or pending execution to finish"), "{}", stderr(&wait));
    let status = manager.status().await;
    assert_eq!(status.status, MaintenanceState::Activated);
    let url = format!("{}/api/v3.1/executions/{}", manager.url, execution.id);
    let ended: Execution = manager
        .http
        .get(url)
        .basic_auth("admin", Some(PASSWORD))
        .header("X-BYPASS-MAINTENANCE", "true")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status.activated_at, ended.ended_at, "cfy returned after the execution's end, not before");
}

#[tokio::test(flavor = "multi_thread")]
async fn activate_wait_timeout_expires_with_the_reference_message() {
    let manager = TestManager::spawn().await;
    manager.start(LONG).await;
    let timed_out = manager.cfy(&["maintenance-mode", "activate", "--wait", "--timeout", "1"]).await;
    assert_failure(
        &timed_out,
        "Timed out while entering maintenance mode. Note that the manager is still entering maintenance mode in the \
         background. You can run 'cfy maintenance-mode status' to check the status.",
    );
    assert_eq!(
        stdout(&timed_out),
        "Entering maintenance mode...\n\
         Cloudify manager will enter Maintenance mode once there are no running or pending executions...\n\n"
    );
    assert_eq!(manager.status().await.status, MaintenanceState::Activating);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_without_wait_is_refused_before_anything_is_sent() {
    let manager = TestManager::spawn().await;
    let output = manager.cfy(&["maintenance-mode", "activate", "--timeout", "5"]).await;
    assert_failure(&output, "'--timeout' was used without '--wait'.");
    assert_eq!(stdout(&output), "");
    assert_eq!(manager.status().await.status, MaintenanceState::Deactivated);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_and_unreachable_manager_are_one_clear_line() {
    let manager = TestManager::spawn().await;
    let wrong = run_cfy(&manager.url, "not the password", &["maintenance-mode", "status"]).await;
    assert_failure(&wrong, "Wrong username or password");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let nowhere = format!("http://127.0.0.1:{port}");
    let unreachable = run_cfy(&nowhere, PASSWORD, &["maintenance-mode", "status"]).await;
    assert_failure(&unreachable, &format!("Cannot reach the manager at {nowhere}"));
    assert_eq!(stderr(&unreachable).lines().count(), 1, "{}", stderr(&unreachable));
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_start_follows_to_the_end_list_get_cancel_and_queue_during_maintenance() {
    let manager = TestManager::spawn().await;
    let started = manager.cfy(&["executions", "start", "install", "-d", "web", "-p", "duration_seconds=0.2"]).await;
    assert_success(&started);
    let lines: Vec<String> = stdout(&started).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "Executing workflow `install` on deployment `web` [timeout=900 seconds]");
    assert!(lines[1].ends_with("  CFY <web> Starting 'install' workflow execution"), "{lines:?}");
    // The program's own lines, as Cloudify logs, in the order it wrote them.
    let logged: Vec<&str> =
        lines[2..].iter().filter_map(|line| line.split_once("  LOG <web> INFO: ")).map(|(_, text)| text).collect();
    assert_eq!(logged.len(), 8, "{lines:?}");
    assert_eq!(logged[2], "install: step 1/5 create resources");
    assert_eq!(logged[7], "install: done");
    let n = lines.len();
    assert!(lines[n - 3].ends_with("  CFY <web> 'install' workflow execution succeeded"), "{lines:?}");
    assert_eq!(lines[n - 2], "Finished executing workflow install on deployment web");
    let finished = lines[n - 1].split(' ').nth(5).unwrap().to_owned();

    let running = manager.start(LONG).await;
    let id = running.id.to_string();
    let list = stdout(&manager.cfy(&["executions", "list"]).await);
    assert!(list.starts_with("Listing all executions...\n\nExecutions:\n"), "{list}");
    assert!(list.contains(&id) && list.contains("| completed |") && list.contains("|  started  |"), "{list}");
    assert!(list.ends_with("\nShowing 2 of 2 executions\n"), "{list}");
    assert!(list.find(&finished) < list.find(&id), "oldest first, as Cloudify's client sorts: {list}");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&manager.cfy(&["executions", "list", "--descending", "--json"]).await)).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    let get = stdout(&manager.cfy(&["executions", "get", &id]).await);
    assert!(get.starts_with(&format!("Retrieving execution {id}\n\nExecution:\n")), "{get}");
    assert!(get.ends_with("Execution Parameters:\n\tduration_seconds:     600.0\n\n"), "{get}");

    let cancel = manager.cfy(&["executions", "cancel", &id]).await;
    assert_success(&cancel);
    assert_eq!(
        stdout(&cancel),
        format!("Cancelling execution {id}\nA cancel request for execution {id} has been sent. To track the execution's status, use:\ncfy executions get {id}\n")
    );

    let waiting = manager.start(LONG).await;
    let timed_out =
        manager.cfy(&["executions", "start", "install", "-d", "web", "--duration", "600", "--timeout", "0"]).await;
    assert_eq!(timed_out.status.code(), Some(1));
    assert_eq!(stderr(&timed_out), "", "the reason is on stdout, as Cloudify's client prints it");
    assert!(stdout(&timed_out).contains("was instructed to wait up to 0 seconds for its completion."));
    let still_running = stdout(&timed_out).split("cfy executions cancel ").nth(1).unwrap()[..36].to_owned();
    for id in [waiting.id.to_string(), still_running] {
        manager.api_post(&format!("/executions/{id}"), json!({"action": "force-cancel"})).await;
    }

    manager.api_post("/maintenance/activate", json!({})).await;
    let refused = manager.cfy(&["executions", "start", "install", "-d", "web"]).await;
    assert_failure(&refused, "Your request was rejected since the manager is currently in maintenance mode");
    let queued = manager.cfy(&["executions", "start", "install", "-d", "web", "--queue"]).await;
    assert_success(&queued);
    assert!(stdout(&queued).ends_with("\nExecution is being queued. It will automatically start when possible.\n"));
    let gated = manager.cfy(&["executions", "list"]).await;
    assert_failure(&gated, "maintenance mode");
    let bad_id = manager.cfy(&["executions", "get", "not-a-uuid"]).await;
    assert_eq!(bad_id.status.code(), Some(2), "clap rejects it before any request");
}

#[tokio::test(flavor = "multi_thread")]
async fn start_refuses_bad_parameters_naming_them() {
    let manager = TestManager::spawn().await;
    let catalog = manager.cfy(&["workflows", "list"]).await;
    assert_success(&catalog);
    assert!(stdout(&catalog).starts_with("Listing workflows...\n\nWorkflows:\n"), "{}", stdout(&catalog));
    assert!(stdout(&catalog).contains("|  install  |   Installs a deployment:"), "{}", stdout(&catalog));
    assert!(stdout(&catalog).ends_with("\nShowing 5 workflows\n"));
    let unknown = manager.cfy(&["executions", "start", "deploy-everything", "-d", "web"]).await;
    assert_failure(&unknown, "Workflow `deploy-everything` is not in the catalog");
    let malformed = manager.cfy(&["executions", "start", "install", "-d", "web", "-p", "novalue"]).await;
    assert_failure(&malformed, "the expected format is: 'key1=value1;key2=value2'");
}

#[tokio::test(flavor = "multi_thread")]
async fn very_verbose_logs_each_request_to_stderr() {
    let manager = TestManager::spawn().await;
    let output = manager.cfy(&["maintenance-mode", "status", "-vvv"]).await;
    assert_success(&output);
    assert!(
        stderr(&output).contains(&format!("GET {}/api/v3.1/maintenance -> 200 OK", manager.url)),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("Maintenance Mode Status:"));
}

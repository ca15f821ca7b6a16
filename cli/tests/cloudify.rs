//! Cloudify's own client (PyPI `cloudify` 7.0.5, installed by `scripts/setup`
//! into `.venv-cloudify`) against a real manager on 127.0.0.1:0: `profiles
//! use`, `maintenance-mode`, `executions`. Where our `cfy` has the same
//! command, both must print the same lines; `-vvv` shows no request answered
//! 404 or 5xx in these flows.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use common::*;
use serde_json::json;
use shared::MaintenanceState;
use tempfile::TempDir;

/// Cloudify's `cfy`, with a home of its own (profiles live in `~/.cloudify`).
struct Cloudify {
    program: PathBuf,
    home: TempDir,
    port: u16,
}

impl Cloudify {
    fn new(manager: &TestManager) -> Self {
        let program = std::env::var_os("CLOUDIFY_CFY")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-cloudify/bin/cfy"));
        assert!(
            program.is_file(),
            "Cloudify's client is missing at {}: run scripts/setup (it installs cloudify==7.0.5 there)",
            program.display()
        );
        let port = manager.url.rsplit(':').next().and_then(|port| port.parse().ok()).expect("a port");
        Self { program, home: tempfile::tempdir().unwrap(), port }
    }

    /// A client with a profile for this manager, made the way a new user makes it.
    async fn with_profile(manager: &TestManager) -> Self {
        let cloudify = Self::new(manager);
        let made = cloudify.profiles_use(&["-u", "admin", "-p", PASSWORD, "-t", "default_tenant"]).await;
        assert_success(&made);
        cloudify
    }

    async fn profiles_use(&self, options: &[&str]) -> Output {
        let port = self.port.to_string();
        let mut args = vec!["profiles", "use", "127.0.0.1", "--rest-port", &port];
        args.extend_from_slice(options);
        self.run(&args).await
    }

    async fn run(&self, args: &[&str]) -> Output {
        let mut command = std::process::Command::new(&self.program);
        command.args(args).env("HOME", self.home.path()).env_remove("CFY_MANAGER").env_remove("CFY_PASSWORD");
        let mut command = assert_cmd::Command::from_std(command);
        command.timeout(Duration::from_secs(120));
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    /// Runs `args` with `-vvv` and checks every HTTP answer it logged; returns stdout without the log.
    async fn run_checking_answers(&self, args: &[&str]) -> String {
        let mut verbose = args.to_vec();
        verbose.push("-vvv");
        let output = self.run(&verbose).await;
        let text = stdout(&output);
        let answers: Vec<&str> = text.lines().filter(|line| line.starts_with("reply:")).collect();
        assert!(!answers.is_empty(), "no HTTP answers logged for {args:?}:\n{text}");
        for answer in &answers {
            let status = answer.split('"').nth(1).unwrap_or_default();
            assert!(!status.starts_with("404") && !status.starts_with('5'), "{args:?} was answered {status}:\n{text}");
        }
        text
    }
}

/// Ids and times differ between two runs of the same command; the rest must not.
fn normalized(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive([' ', '\n', '\'', '`', '|', ',']) {
        let (body, end) = word.split_at(word.len() - word.chars().last().map_or(0, char::len_utf8));
        let (body, end) = if matches!(end, " " | "\n" | "'" | "`" | "|" | ",") { (body, end) } else { (word, "") };
        let is_id = body.len() == 36 && uuid::Uuid::parse_str(body).is_ok();
        let is_time = body.len() >= 10 && body.as_bytes()[4] == b'-' && body.as_bytes()[7] == b'-'
            || body.len() >= 8 && body.as_bytes()[2] == b':' && body.as_bytes()[5] == b':';
        out.push_str(if is_id {
            "<id>"
        } else if is_time {
            "<time>"
        } else {
            body
        });
        out.push_str(end);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_use_succeeds_against_the_manager_and_says_why_when_it_cannot() {
    let manager = TestManager::spawn().await;
    let cloudify = Cloudify::new(&manager);
    let made = cloudify.profiles_use(&["-u", "admin", "-p", PASSWORD, "-t", "default_tenant"]).await;
    assert_success(&made);
    let port = cloudify.port;
    assert_eq!(
        stdout(&made),
        format!(
            "Initializing local profile ...\nInitialization completed successfully\n\
             Attempting to connect to 127.0.0.1 through port {port}, using http (SSL mode: False)...\n\
             Using manager 127.0.0.1 with port {port}\nInitializing profile 127.0.0.1...\n\
             Initialization completed successfully\n"
        ),
        "no warning about old managers or missing cluster nodes"
    );
    let version = cloudify.run(&["--version"]).await;
    assert_success(&version);
    assert_eq!(
        stdout(&version),
        format!(
            "Community edition\n\nCloudify CLI 7.0.5\nCloudify Manager {} [ip=127.0.0.1]\n\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    // The same in a fresh home, logging every request: none is answered 404 or 5xx.
    let fresh = Cloudify::new(&manager);
    let log = fresh
        .run_checking_answers(&[
            "profiles",
            "use",
            "127.0.0.1",
            "--rest-port",
            &port.to_string(),
            "-u",
            "admin",
            "-p",
            PASSWORD,
            "-t",
            "default_tenant",
        ])
        .await;
    for path in ["/status", "/provider/context", "/managers", "/brokers", "/db-nodes"] {
        assert!(log.contains(&format!("/api/v3.1{path}")), "{path} not asked:\n{log}");
    }

    let wrong_tenant = Cloudify::new(&manager).profiles_use(&["-u", "admin", "-p", PASSWORD, "-t", "other"]).await;
    assert!(!wrong_tenant.status.success());
    assert!(
        stdout(&wrong_tenant)
            .contains("404: Tenant `other` does not exist; this manager has one tenant, `default_tenant`"),
        "{}",
        stdout(&wrong_tenant)
    );
    let wrong_password =
        Cloudify::new(&manager).profiles_use(&["-u", "admin", "-p", "wrong", "-t", "default_tenant"]).await;
    assert!(!wrong_password.status.success());
    assert!(stdout(&wrong_password).contains("401: Wrong username or password"), "{}", stdout(&wrong_password));
}

const ACTIVATE: &str =
    "Entering maintenance mode...\nRun 'cfy maintenance-mode status' to check the maintenance mode's status.\n\n";
const ACTIVATE_WAIT: &str = "Entering maintenance mode...\n\
    Cloudify manager will enter Maintenance mode once there are no running or pending executions...\n\n\
    Manager is in maintenance mode.\nWhile in maintenance mode most requests will be blocked.\n";
const DEACTIVATE: &str = "Turning off maintenance mode...\nMaintenance mode is off.\n";

/// Both succeeded and printed the same.
fn assert_same(command: &[&str], theirs: &Output, ours: &Output) {
    assert_success(theirs);
    assert_success(ours);
    // The one known difference: Cloudify's client prints every non-empty
    // field of the status, so the mode of SPEC §10 (`full` while on) too;
    // ours keeps the reference output and prints the mode only when it is
    // not the default (`Mode: read_only`).
    let theirs = stdout(theirs);
    let on = theirs.contains("\tStatus:\tactivat");
    assert_eq!(theirs.contains(MODE_FULL), on, "{command:?}: Cloudify's client shows the mode while on:\n{theirs}");
    assert_eq!(theirs.replace(MODE_FULL, ""), stdout(ours), "{command:?}");
}

/// The row Cloudify's client adds while maintenance mode is on in full mode.
const MODE_FULL: &str = "\tMode:\tfull\n";

fn assert_prints(output: &Output, expected: &str) {
    assert_success(output);
    assert_eq!(stdout(output), expected);
}

async fn wait_for(manager: &TestManager, state: MaintenanceState) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while manager.status().await.status != state {
        assert!(tokio::time::Instant::now() < deadline, "never {state}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn cancel(manager: &TestManager, id: impl std::fmt::Display) {
    let response = manager.api_post(&format!("/executions/{id}"), json!({"action": "force-cancel"})).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_mode_from_cloudifys_client_prints_what_ours_prints() {
    let manager = TestManager::spawn().await;
    let cloudify = Cloudify::with_profile(&manager).await;
    let status = ["maintenance-mode", "status"];
    let status_verbose = ["maintenance-mode", "status", "-v"];
    let activate = ["maintenance-mode", "activate"];
    let deactivate = ["maintenance-mode", "deactivate"];
    assert_same(&status, &cloudify.run(&status).await, &manager.cfy(&status).await);

    // Activating, with one execution running: the same status, plain and verbose.
    let running = manager.start(LONG).await;
    assert_prints(&cloudify.run(&activate).await, ACTIVATE);
    assert_same(&status, &cloudify.run(&status).await, &manager.cfy(&status).await);
    let theirs = cloudify.run(&status_verbose).await;
    assert_same(&status_verbose, &theirs, &manager.cfy(&status_verbose).await);
    assert!(stdout(&theirs).contains("Remaining executions:") && stdout(&theirs).contains(&running.id.to_string()));
    cloudify.run_checking_answers(&status_verbose).await;

    // Off, and on again with a wait that runs out: the reference's words, exit 1.
    assert_prints(&cloudify.run(&deactivate).await, DEACTIVATE);
    let theirs = cloudify.run(&["maintenance-mode", "activate", "--wait", "--timeout", "1"]).await;
    assert_eq!(theirs.status.code(), Some(1), "{}", stdout(&theirs));
    assert!(
        stdout(&theirs).contains(
            "Timed out while entering maintenance mode. Note that the manager is still entering maintenance mode \
             in the background. You can run 'cfy maintenance-mode status' to check the status."
        ),
        "{}",
        stdout(&theirs)
    );
    assert_prints(&manager.cfy(&deactivate).await, DEACTIVATE);
    assert_prints(&manager.cfy(&activate).await, ACTIVATE);
    assert_prints(&manager.cfy(&deactivate).await, DEACTIVATE);

    // A wait that succeeds, from each client: the last execution ends while it waits.
    cancel(&manager, running.id).await;
    let wait = ["maintenance-mode", "activate", "--wait", "--timeout", "60"];
    for client in ["theirs", "ours"] {
        let running = manager.start(LONG).await;
        let waiting = async {
            if client == "theirs" {
                cloudify.run(&wait).await
            } else {
                manager.cfy(&wait).await
            }
        };
        let ending = async {
            wait_for(&manager, MaintenanceState::Activating).await;
            cancel(&manager, running.id).await;
        };
        let (output, ()) = tokio::join!(waiting, ending);
        assert_prints(&output, ACTIVATE_WAIT);
        let theirs = cloudify.run(&status_verbose).await;
        assert_same(&status_verbose, &theirs, &manager.cfy(&status_verbose).await);
        assert!(stdout(&theirs).contains("INFO - Cloudify Manager is currently in maintenance mode."));

        // While activated, the gate refuses the rest, with the same words to both.
        let list = ["executions", "list"];
        let theirs = cloudify.run(&list).await;
        assert_eq!(theirs.status.code(), Some(1));
        assert!(stdout(&theirs).contains(shared::error::MAINTENANCE_MESSAGE), "{}", stdout(&theirs));
        assert_failure(&manager.cfy(&list).await, shared::error::MAINTENANCE_MESSAGE);

        let log = cloudify.run_checking_answers(&deactivate).await;
        assert!(log.contains("Maintenance mode is off."), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_from_cloudifys_client_print_what_ours_prints() {
    let manager = TestManager::spawn().await;
    let cloudify = Cloudify::with_profile(&manager).await;

    // Start and follow to the end: the same lines but for the id and the times.
    let start = ["executions", "start", "install", "-d", "web", "-p", "duration_seconds=0.2"];
    let theirs = cloudify.run(&start).await;
    let ours = manager.cfy(&start).await;
    assert_success(&theirs);
    assert_success(&ours);
    assert_eq!(normalized(&stdout(&theirs)), normalized(&stdout(&ours)));
    assert!(stdout(&theirs).contains("CFY <web> 'install' workflow execution succeeded"), "{}", stdout(&theirs));
    let log = cloudify.run_checking_answers(&start).await;
    assert!(log.contains("/api/v3.1/events"), "the client follows the events:\n{log}");

    // Lists and one execution: the same tables, whatever the order asked;
    // wide characters, long cells and date-like text as Cloudify's tables show them.
    let running = manager.start(LONG).await.id.to_string();
    let other = manager.start(LONG).await;
    let odd = "部署 e\u{301}tage alpha--beta 2024-02-30-Tokyo a\u{a0}very long deployment name indeed";
    for (workflow, deployment) in [("upgrade", "db"), ("heal", odd)] {
        let response = manager
            .http
            .post(format!("{}/api/v3.1/executions", manager.url))
            .basic_auth("admin", Some(PASSWORD))
            .json(&json!({"workflow_id": workflow, "deployment_id": deployment,
                          "parameters": {"duration_seconds": 600, "nested": {"a": [1, 2.5, null]}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    let odd_id = manager
        .http
        .get(format!("{}/api/v3.1/executions?deployment_id={}", manager.url, urlencode(odd)))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for list in [
        &["executions", "list"][..],
        &["executions", "list", "--descending"],
        &["executions", "list", "-d", "web", "--sort-by", "workflow_id"],
        &["executions", "list", "--sort-by", "deployment_id", "--descending", "-o", "1", "-s", "2"],
        &["executions", "list", "--json"],
        &["executions", "get", &running],
        &["executions", "get", &odd_id],
        &["executions", "get", &odd_id, "--json"],
    ] {
        assert_same(list, &cloudify.run(list).await, &manager.cfy(list).await);
        // (With --json the client logs nothing, requests included.)
        if !list.contains(&"--json") {
            cloudify.run_checking_answers(list).await;
        }
    }
    let missing = "0b6e3f1c-0000-4000-8000-000000000000";
    let theirs = cloudify.run(&["executions", "get", missing]).await;
    assert!(stdout(&theirs).ends_with(&format!("Execution {missing} not found\n")), "{}", stdout(&theirs));
    assert_failure(&manager.cfy(&["executions", "get", missing]).await, &format!("Execution {missing} not found"));

    // Cancel, each client its own execution: the same lines but for the id.
    let theirs = cloudify.run(&["executions", "cancel", &running]).await;
    let other = other.id.to_string();
    let ours = manager.cfy(&["executions", "cancel", "--force", &other]).await;
    assert_success(&theirs);
    assert_success(&ours);
    assert_eq!(normalized(&stdout(&theirs)).replacen("Cancelling", "Force-cancelling", 1), normalized(&stdout(&ours)));
    for cancelled in [&running, &other] {
        // The program takes a moment to go: compare the ended execution.
        manager.wait_for_end(cancelled).await;
        let get = ["executions", "get", cancelled.as_str()];
        assert_same(&get, &cloudify.run(&get).await, &manager.cfy(&get).await);
    }

    // Queued during maintenance: the same line, and the gate refuses without --queue.
    manager.api_post("/maintenance/activate", json!({})).await;
    let queue = ["executions", "start", "install", "-d", "web", "--queue"];
    assert_same(&queue, &cloudify.run(&queue).await, &manager.cfy(&queue).await);
    let refused = cloudify.run(&start).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("entering_maintenance_mode")
            || stdout(&refused).contains(shared::error::MAINTENANCE_MESSAGE),
        "{}",
        stdout(&refused)
    );
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (byte as char).to_string(),
            byte => format!("%{byte:02X}"),
        })
        .collect()
}

#[test]
fn normalizing_hides_ids_and_times_only() {
    let line = "2026-11-30 10:55:25.413  CFY <web> started 8da2816b-9d39-434c-bac6-343f18b50cf5 'x'";
    assert_eq!(normalized(line), "<time> <time>  CFY <web> started <id> 'x'");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_from_cloudifys_client_print_what_ours_prints() {
    let manager = TestManager::spawn().await;
    let cloudify = Cloudify::with_profile(&manager).await;
    let done = manager.start(0.2).await.id.to_string();
    manager.wait_for_end(&done).await;
    for list in [
        &["events", "list", &done][..],
        &["events", "list", "-e", &done],
        &["events", "list", &done, "-o", "2", "-s", "3"],
        &["events", "list", &done, "--tail"],
    ] {
        assert_same(list, &cloudify.run(list).await, &manager.cfy(list).await);
    }
    cloudify.run_checking_answers(&["events", "list", &done]).await;

    // Both follow one running execution to its end and print the same story.
    // Long enough that Cloudify's client (a Python start-up of seconds on a
    // loaded machine) begins following while it still runs.
    let running = manager.start(6.0).await.id.to_string();
    let tail = ["events", "list", running.as_str(), "--tail"];
    let (theirs, ours) = tokio::join!(cloudify.run(&tail), manager.cfy(&tail));
    assert_same(&tail, &theirs, &ours);
    let printed = stdout(&ours);
    assert!(
        printed.contains("install: step 5/5 report")
            && printed.ends_with("Finished executing workflow install on deployment web\n"),
        "{printed}"
    );

    let missing = "0b6e3f1c-0000-4000-8000-000000000000";
    let theirs = cloudify.run(&["events", "list", missing]).await;
    assert!(!theirs.status.success());
    assert!(
        stdout(&theirs).contains(&format!("404: Requested execution `{missing}` was not found")),
        "{}",
        stdout(&theirs)
    );
    assert_failure(&manager.cfy(&["events", "list", missing]).await, &format!("Execution {missing} not found"));
}

/// SPEC §13: Cloudify's client over HTTPS, trusting the test's CA as `profiles use --ssl --rest-certificate` says.
#[tokio::test(flavor = "multi_thread")]
async fn cloudifys_client_works_over_https_with_ssl_and_rest_certificate() {
    let ca = tls::TestCa::new("Cloudify test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, ca_file) =
        (dir.path().join("manager.crt"), dir.path().join("manager.key"), dir.path().join("ca.pem"));
    ca.issue(1).write(&cert, &key);
    ca.write(&ca_file);
    let manager = TestManager::spawn_with(|config| {
        config.tls_cert = Some(cert.clone());
        config.tls_key = Some(key.clone());
    })
    .await;
    let ca_path = ca_file.to_str().unwrap();
    let cloudify = Cloudify::new(&manager);
    let made = cloudify
        .profiles_use(&["--ssl", "--rest-certificate", ca_path, "-u", "admin", "-p", PASSWORD, "-t", "default_tenant"])
        .await;
    assert_success(&made);
    let port = cloudify.port;
    assert!(
        stdout(&made).contains(&format!(
            "Attempting to connect to 127.0.0.1 through port {port}, using https (SSL mode: True)...\n\
             Using manager 127.0.0.1 with port {port}\n"
        )),
        "{}",
        stdout(&made)
    );

    let ours = |args: &'static [&'static str]| {
        let mut all = vec!["--ssl", "--rest-certificate", ca_path];
        all.extend_from_slice(args);
        let url = manager.url.clone();
        async move { run_cfy(&url, PASSWORD, &all).await }
    };
    let status = ["maintenance-mode", "status"];
    assert_same(&status, &cloudify.run(&status).await, &ours(&["maintenance-mode", "status"]).await);
    assert_prints(&cloudify.run(&["maintenance-mode", "activate"]).await, ACTIVATE);
    assert_same(&status, &cloudify.run(&status).await, &ours(&["maintenance-mode", "status"]).await);
    assert_prints(&cloudify.run(&["maintenance-mode", "deactivate"]).await, DEACTIVATE);
    // Cloudify's `cfy status` over HTTPS too (it reads the services of GET /status).
    assert_success(&cloudify.run(&["status"]).await);
}

/// `cfy status` (SPEC §13): Cloudify's client reads the services of
/// `GET /status` and prints the table ours prints, also in maintenance.
#[tokio::test(flavor = "multi_thread")]
async fn status_from_cloudifys_client_prints_the_services_as_ours_does() {
    let manager = TestManager::spawn().await;
    let cloudify = Cloudify::with_profile(&manager).await;
    let status = ["status"];
    let theirs = cloudify.run(&status).await;
    assert_same(&status, &theirs, &manager.cfy(&status).await);
    for service in ["Manager Rest-Service", "SQLite", "Workflow Runner"] {
        assert!(stdout(&theirs).contains(&format!("| {service:<30} | Active |")), "{}", stdout(&theirs));
    }
    cloudify.run_checking_answers(&status).await;

    // Its JSON is the manager's answer.
    let theirs = cloudify.run(&["status", "--json"]).await;
    assert_success(&theirs);
    let theirs: serde_json::Value = serde_json::from_str(&stdout(&theirs)).expect("JSON from Cloudify's client");
    let ours: serde_json::Value = manager.api_get("/status").await.json().await.unwrap();
    assert_eq!(theirs["services"], ours["services"]);

    manager.api_post("/maintenance/activate", json!({})).await;
    wait_for(&manager, MaintenanceState::Activated).await;
    let theirs = cloudify.run(&status).await;
    assert_same(&status, &theirs, &manager.cfy(&status).await);
    assert!(stdout(&theirs).ends_with("Maintenance mode is activated.\n\n"), "{}", stdout(&theirs));
}

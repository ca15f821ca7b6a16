//! Real programs: each test writes little `#!/bin/sh` workflows into a
//! temporary directory (which is also the data dir) and runs them. Waits are
//! bounded but generous, and assertions are on outcomes, never on speed, so a
//! loaded machine makes the tests slower, not red.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;
use tokio::time::timeout;

use super::*;
use crate::workflows::Catalog;

/// The most any single wait in these tests may take before the test fails.
const LIMIT: Duration = Duration::from_secs(30);

struct Fixture {
    dir: TempDir,
}

impl Fixture {
    fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// Writes an executable `#!/bin/sh` program `name` with `body`.
    fn workflow(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write workflow");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn launch(&self, program: PathBuf, parameters: serde_json::Value) -> Launch {
        Launch {
            execution_id: Uuid::new_v4(),
            workflow_id: "install".into(),
            deployment_id: "web".into(),
            program,
            parameters: parameters.as_object().cloned().expect("an object"),
            data_dir: self.dir.path().join("data"),
            cancel_grace: DEFAULT_CANCEL_GRACE,
        }
    }

    /// Runs `body` to its end and returns the end and every output line.
    async fn run(&self, body: &str) -> (ProcessEnd, Vec<OutputLine>) {
        let launch = self.launch(self.workflow("flow", body), json!({}));
        run(launch).await
    }
}

/// Runs `launch` to its end, collecting its output.
async fn run(launch: Launch) -> (ProcessEnd, Vec<OutputLine>) {
    let (running, mut lines) = start(launch, 64);
    let collect = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(line) = lines.recv().await {
            all.push(line);
        }
        all
    });
    let end = timeout(LIMIT, running.wait()).await.expect("the program ends");
    let lines = timeout(LIMIT, collect).await.expect("the output ends").expect("collector");
    (end, lines)
}

fn start(launch: Launch, capacity: usize) -> (RunningProcess, mpsc::Receiver<OutputLine>) {
    let (sender, receiver) = mpsc::channel(capacity);
    (spawn(launch, sender).expect("spawn"), receiver)
}

/// Reads lines until one equals `wanted` (the program is then past that point).
async fn wait_for_line(lines: &mut mpsc::Receiver<OutputLine>, wanted: &str) -> Vec<OutputLine> {
    let mut seen = Vec::new();
    let found = timeout(LIMIT, async {
        while let Some(line) = lines.recv().await {
            let done = line.line == wanted;
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no line {wanted:?} in {seen:?}");
    seen
}

fn texts(lines: &[OutputLine], stream: Stream) -> Vec<&str> {
    lines.iter().filter(|line| line.stream == stream).map(|line| line.line.as_str()).collect()
}

fn failed(error: &str) -> ProcessEnd {
    ProcessEnd { status: ExecutionStatus::Failed, error: error.into() }
}

fn ended(status: ExecutionStatus) -> ProcessEnd {
    ProcessEnd { status, error: String::new() }
}

/// True once `pid` has ended: no such process, or a zombie waiting to be reaped.
fn process_gone(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

async fn wait_process_gone(pid: i32) -> bool {
    timeout(LIMIT, async {
        while !process_gone(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

fn read_pid(path: &Path) -> i32 {
    fs::read_to_string(path).expect("pid file").trim().parse().expect("a pid")
}

#[tokio::test]
async fn exit_0_is_terminated_and_a_late_cancel_is_refused() {
    let fixture = Fixture::new();
    let launch = fixture.launch(fixture.workflow("flow", "echo hello"), json!({}));
    let (running, _lines) = start(launch, 64);
    let control = running.control();
    let end = timeout(LIMIT, running.wait()).await.expect("ends");
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    assert!(!control.cancel(), "a cancel after the end must not count");
    assert!(!control.force_cancel());
}

#[tokio::test]
async fn another_exit_status_is_failed_naming_it() {
    let (end, _) = Fixture::new().run("exit 3").await;
    assert_eq!(end, failed("exited with status 3"));
}

#[tokio::test]
async fn a_signal_not_sent_by_a_cancel_is_failed_naming_it() {
    let (end, _) = Fixture::new().run("kill -KILL $$").await;
    assert_eq!(end, failed("killed by signal 9 (SIGKILL)"));
}

#[tokio::test]
async fn cancel_sends_term_and_a_clean_exit_from_the_trap_is_cancelled() {
    let fixture = Fixture::new();
    let program =
        fixture.workflow("flow", "trap 'echo trapped > marker; exit 0' TERM\necho ready\nwhile :; do sleep 0.1; done");
    let (running, mut lines) = start(fixture.launch(program, json!({})), 64);
    wait_for_line(&mut lines, "ready").await;
    assert!(running.control().cancel());
    let work_dir = running.work_dir().to_owned();
    let end = timeout(LIMIT, running.wait()).await.expect("ends");
    assert_eq!(end, ended(ExecutionStatus::Cancelled));
    assert_eq!(fs::read_to_string(work_dir.join("marker")).expect("the trap ran"), "trapped\n");
}

#[tokio::test]
async fn a_program_that_ignores_term_is_killed_after_the_grace() {
    let fixture = Fixture::new();
    let program = fixture.workflow("flow", "trap '' TERM\necho ready\nwhile :; do sleep 0.1; done");
    let mut launch = fixture.launch(program, json!({}));
    launch.cancel_grace = Duration::from_millis(300);
    let (running, mut lines) = start(launch, 64);
    wait_for_line(&mut lines, "ready").await;
    let pgid = running.identity().pgid;
    assert!(running.control().cancel());
    let end = timeout(LIMIT, running.wait()).await.expect("SIGKILL after the grace ends it");
    assert_eq!(end, ended(ExecutionStatus::Cancelled));
    assert!(wait_group_gone(pgid, LIMIT).await);
}

#[tokio::test]
async fn force_cancel_kills_the_whole_group_at_once() {
    let fixture = Fixture::new();
    let program = fixture.workflow("flow", "sleep 1000 &\necho $! > grandchild\necho ready\nwait");
    let (running, mut lines) = start(fixture.launch(program, json!({})), 64);
    wait_for_line(&mut lines, "ready").await;
    let grandchild = read_pid(&running.work_dir().join("grandchild"));
    assert!(!process_gone(grandchild));
    assert!(running.control().force_cancel());
    let end = timeout(LIMIT, running.wait()).await.expect("ends");
    assert_eq!(end, ended(ExecutionStatus::Cancelled));
    assert!(wait_process_gone(grandchild).await, "the grandchild survived");
}

#[tokio::test]
async fn background_processes_left_behind_by_a_clean_exit_are_killed() {
    let fixture = Fixture::new();
    let program = fixture.workflow("flow", "sleep 1000 >/dev/null 2>&1 &\necho $! > background\nexit 0");
    let launch = fixture.launch(program, json!({}));
    let background = launch.data_dir.join("executions").join(launch.execution_id.to_string()).join("background");
    let (end, _) = run(launch).await;
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    assert!(wait_process_gone(read_pid(&background)).await, "the background process survived");
}

#[tokio::test]
async fn shutdown_ends_the_program_as_a_cancel_but_records_failed_with_the_reason() {
    let fixture = Fixture::new();
    let program = fixture.workflow("flow", "trap 'exit 0' TERM\necho ready\nwhile :; do sleep 0.1; done");
    let (running, mut lines) = start(fixture.launch(program, json!({})), 64);
    wait_for_line(&mut lines, "ready").await;
    let control = running.control();
    assert!(control.shutdown("the manager is stopping"));
    assert!(control.shutdown("a second reason is ignored"));
    let end = timeout(LIMIT, running.wait()).await.expect("ends");
    assert_eq!(end, failed("the manager is stopping"));
}

#[tokio::test]
async fn both_streams_arrive_with_their_stream_in_order() {
    let (end, lines) =
        Fixture::new().run("echo out1\necho err1 >&2\necho out2\necho err2 >&2\nprintf 'no newline'").await;
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    assert_eq!(texts(&lines, Stream::Stdout), ["out1", "out2", "no newline"]);
    assert_eq!(texts(&lines, Stream::Stderr), ["err1", "err2"]);
}

#[tokio::test]
async fn a_long_output_arrives_complete_through_a_small_channel() {
    let fixture = Fixture::new();
    let launch = fixture.launch(fixture.workflow("flow", "seq 1 20000\nseq 1 5000 >&2"), json!({}));
    let (running, mut lines) = start(launch, 4);
    let mut all = Vec::new();
    let read_all = async {
        while let Some(line) = lines.recv().await {
            all.push(line);
        }
    };
    let (end, ()) = timeout(LIMIT, async { tokio::join!(running.wait(), read_all) }).await.expect("ends");
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    let expected = |count: usize| (1..=count).map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(texts(&all, Stream::Stdout), expected(20_000));
    assert_eq!(texts(&all, Stream::Stderr), expected(5_000));
}

#[tokio::test]
async fn the_program_gets_its_parameters_ids_and_nothing_else_from_the_environment() {
    let fixture = Fixture::new();
    let program = fixture.workflow(
        "flow",
        "IFS= read -r stdin\nprintf 'stdin:%s\\n' \"$stdin\"\nprintf 'pwd:%s\\n' \"$(pwd -P)\"\n\
         tr '\\0' '\\n' < /proc/$$/environ | sed 's/^/env:/'",
    );
    let launch = fixture.launch(program, json!({"duration_seconds": 0.5, "name": "web \"1\""}));
    let execution_id = launch.execution_id;
    let (end, lines) = run(launch).await;
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    let parameters = r#"{"duration_seconds":0.5,"name":"web \"1\""}"#;
    let work_dir = fixture.dir.path().join(format!("data/executions/{execution_id}"));
    let stdout = texts(&lines, Stream::Stdout);
    let real_work_dir = fs::canonicalize(&work_dir).expect("work dir");
    assert_eq!(stdout[..2], [format!("stdin:{parameters}"), format!("pwd:{}", real_work_dir.display())]);
    let mut environment: Vec<&str> = stdout[2..].iter().map(|line| line.strip_prefix("env:").expect("env")).collect();
    environment.sort_unstable();
    let mut expected = vec![
        "DEPLOYMENT_ID=web".to_owned(),
        format!("EXECUTION_ID={execution_id}"),
        format!("EXECUTION_PARAMETERS={parameters}"),
        format!("HOME={}", work_dir.display()),
        "LANG=C.UTF-8".to_owned(),
        format!("PATH={PROGRAM_PATH}"),
        "WORKFLOW_ID=install".to_owned(),
    ];
    expected.sort_unstable();
    assert_eq!(environment, expected);
}

#[tokio::test]
async fn parameters_and_ids_reach_the_program_as_data_never_as_shell_code() {
    let fixture = Fixture::new();
    let marker = std::env::temp_dir().join(format!("pwned-{}", Uuid::new_v4()));
    let attack = format!("$(touch {}); \"; rm -rf `touch {}`", marker.display(), marker.display());
    let program = fixture.workflow(
        "flow",
        "printf '%s\\n' \"$EXECUTION_PARAMETERS\"\nprintf '%s\\n' \"$DEPLOYMENT_ID\"\nIFS= read -r stdin\nprintf '%s\\n' \"$stdin\"",
    );
    let mut launch = fixture.launch(program, json!({ "note": attack }));
    launch.deployment_id = attack.clone();
    let (end, lines) = run(launch).await;
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    let json = json!({ "note": attack }).to_string();
    assert_eq!(texts(&lines, Stream::Stdout), [json.as_str(), attack.as_str(), json.as_str()]);
    assert!(!marker.exists(), "a parameter ran as a command");
}

#[tokio::test]
async fn each_execution_gets_a_fresh_working_directory() {
    let fixture = Fixture::new();
    let launch = fixture.launch(fixture.workflow("flow", "true"), json!({}));
    let (end, _) = run(launch.clone()).await;
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    let (sender, _receiver) = mpsc::channel(1);
    let error = spawn(launch, sender).expect_err("the same id again");
    assert!(matches!(&error, SpawnError::WorkDir { source, .. } if source.kind() == io::ErrorKind::AlreadyExists));
}

#[tokio::test]
async fn a_program_that_cannot_start_is_an_error_and_leaves_no_directory() {
    let fixture = Fixture::new();
    let launch = fixture.launch(fixture.dir.path().join("missing"), json!({}));
    let work_dir = launch.data_dir.join("executions").join(launch.execution_id.to_string());
    let (sender, _receiver) = mpsc::channel(1);
    let error = spawn(launch, sender).expect_err("no such program");
    assert!(matches!(&error, SpawnError::Start { source, .. } if source.kind() == io::ErrorKind::NotFound));
    assert!(!work_dir.exists());
}

#[tokio::test]
async fn kill_group_if_same_kills_a_live_group_and_spares_a_different_one() {
    let fixture = Fixture::new();
    let program = fixture.workflow("flow", "echo ready\nwhile :; do sleep 0.1; done");
    let (running, mut lines) = start(fixture.launch(program, json!({})), 64);
    wait_for_line(&mut lines, "ready").await;
    let identity = running.identity();

    let stranger = ProcessIdentity { start_time: identity.start_time + 1, ..identity };
    assert!(!kill_group_if_same(stranger).expect("examined"));
    assert!(!wait_group_gone(identity.pgid, Duration::from_millis(200)).await, "a different start time was killed");

    assert!(kill_group_if_same(identity).expect("examined"));
    assert!(wait_group_gone(identity.pgid, LIMIT).await);
    // Nobody asked for it: to the supervisor this is a stranger's SIGKILL.
    let end = timeout(LIMIT, running.wait()).await.expect("ends");
    assert_eq!(end, failed("killed by signal 9 (SIGKILL)"));
}

#[tokio::test]
async fn kill_group_if_same_finds_the_group_after_its_leader_died() {
    // What a crash leaves: the leader killed by its parent-death signal, its
    // background processes still running in its group.
    let fixture = Fixture::new();
    let program = fixture.workflow("leader", "sleep 1000 >/dev/null 2>&1 &\necho $!");
    let mut command = std::process::Command::new(program);
    command.stdout(Stdio::piped());
    // SAFETY: only a raw system call between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            setsid()?;
            Ok(())
        });
    }
    let leader = command.spawn().expect("spawn");
    let identity = ProcessIdentity::of_leader(i32::try_from(leader.id()).expect("pid")).expect("identity");
    let output = leader.wait_with_output().expect("the leader exits");
    let orphan: i32 = String::from_utf8_lossy(&output.stdout).trim().parse().expect("a pid");
    assert!(!process_gone(orphan));

    assert!(kill_group_if_same(identity).expect("examined"));
    assert!(wait_process_gone(orphan).await, "the orphan survived");
    assert!(wait_group_gone(identity.pgid, LIMIT).await);
    assert!(!kill_group_if_same(identity).expect("examined"), "nothing is left to kill");
}

#[tokio::test]
async fn the_shipped_install_workflow_runs_with_progress() {
    let fixture = Fixture::new();
    let catalog = Catalog::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../workflows"));
    let program = catalog.find("install").expect("catalog").expect("install is shipped");
    let launch = fixture.launch(program, json!({"duration_seconds": "0.2"}));
    let (end, lines) = run(launch).await;
    assert_eq!(end, ended(ExecutionStatus::Terminated));
    let stdout = texts(&lines, Stream::Stdout);
    assert!(stdout.iter().any(|line| line.starts_with("install: step 1/5")), "{stdout:?}");
    assert_eq!(stdout.last(), Some(&"install: done"));
}

#[test]
fn ends_map_as_the_spec_says() {
    let exited = |code: i32| Ok(ExitStatus::from_raw(code << 8));
    let killed = |signal: i32| Ok(ExitStatus::from_raw(signal));
    let none = Requests::default();
    let cancel = Requests { cancel: true, ..Requests::default() };
    let force = Requests { force: true, ..Requests::default() };
    let shutdown = Requests { cancel: true, shutdown: Some("stopping".into()), ..Requests::default() };

    assert_eq!(end_of(&exited(0), &none), ended(ExecutionStatus::Terminated));
    assert_eq!(end_of(&exited(3), &none), failed("exited with status 3"));
    assert_eq!(end_of(&exited(143), &none), failed("exited with status 143"));
    assert_eq!(end_of(&killed(15), &none), failed("killed by signal 15 (SIGTERM)"));
    assert_eq!(end_of(&killed(40), &none), failed("killed by signal 40"));
    for exit in [exited(0), exited(1), killed(9)] {
        assert_eq!(end_of(&exit, &cancel), ended(ExecutionStatus::Cancelled));
        assert_eq!(end_of(&exit, &force), ended(ExecutionStatus::Cancelled));
        assert_eq!(end_of(&exit, &shutdown), failed("stopping"));
    }
    let lost = Err(io::Error::from(io::ErrorKind::Other));
    assert!(end_of(&lost, &none).error.starts_with("cannot wait for the program"));
}

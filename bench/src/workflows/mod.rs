//! The `workflows` section (issue 14): executions run real programs. The
//! release `manager` runs as a child process over a temporary workflows
//! directory of small `#!/bin/sh` programs, each printing the wall clock
//! (`date +%s%N`) at the moment that matters; the bench compares that with
//! its own wall clock taken just before its request (same machine, same
//! clock). Every loop is bounded in count and time; each manager is stopped
//! with SIGTERM and must exit cleanly, and is killed if the bench is.

mod chatty;
mod latency;
pub(crate) mod manager_process;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use shared::Timestamp;

use self::latency::ACTIVATIONS;
use self::manager_process::ManagerProcess;
use super::ms;

/// Concurrent chatty executions, tried in order until a run ends within
/// [`chatty::BOUND`]; all but the first give up early when clearly hopeless.
const CHATTY_COUNTS: [usize; 5] = [500, 100, 50, 20, 10];
/// The bound on any one wait of a sample (a start, an end, an event).
const PATIENCE: Duration = Duration::from_secs(30);
/// Where a data dir on tmpfs goes (fsync costs nothing there).
pub const TMPFS: &str = "/dev/shm";

/// The programs, by workflow id. Each prints the wall clock in nanoseconds
/// at the moment measured, with `date` (an exec of its own, which the floor
/// measured alongside accounts for).
fn programs() -> Vec<(&'static str, String)> {
    vec![
        // Its first action.
        ("first-line", "date +%s%N\n".to_owned()),
        // In its TERM trap; `wait` returns at once on a trapped signal.
        ("term-trap", "trap 'date +%s%N; exit 0' TERM\necho ready\nsleep 600 &\nwait\n".to_owned()),
        // Its last action, after running long enough for an activate to find it.
        ("last-line", "sleep 0.3\ndate +%s%N\n".to_owned()),
        // About 1 000 lines a second: a burst of 1 000, then a second's sleep.
        (
            "chatty",
            format!(
                "awk 'BEGIN {{ for (i = 0; i < {}; i++) {{ print \"line \" i; \
                 if (i % 1000 == 999) {{ fflush(); system(\"sleep 1\") }} }} }}'\n",
                chatty::LINES
            ),
        ),
    ]
}

/// Runs the section; SIGINT or SIGTERM (a `timeout`) ends it early, and the
/// managers and their programs with it.
pub async fn figures(root: &Path) -> anyhow::Result<()> {
    crate::until_interrupted(measure(root)).await
}

async fn measure(root: &Path) -> anyhow::Result<()> {
    let binary = root.join("target/release/manager");
    if !binary.is_file() {
        bail!("build the release binaries first: cargo build --release -p manager");
    }
    let workflows = tempfile::tempdir()?;
    for (name, body) in programs() {
        let path = workflows.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    let disk = std::env::temp_dir();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("## Workflows are programs (release `manager` as a child process, `#!/bin/sh` programs)\n");
    println!(
        "load average before: {} (1, 5, 15 min); data dirs in {} ({})\n",
        load.join(" "),
        disk.display(),
        file_system(&disk)
    );

    let manager = ManagerProcess::start(&binary, workflows.path(), &disk).await?;
    let floor = latency::start_floor(&workflows.path().join("first-line"))?;
    let starts = latency::start_latency(&manager).await?;
    let cancels = latency::cancel_latency(&manager).await?;
    // The same activation rounds with the data dir on tmpfs, alternating,
    // show what the disk (the commit's fsync) adds.
    let on_tmpfs = if Path::new(TMPFS).is_dir() {
        Some(ManagerProcess::start(&binary, workflows.path(), Path::new(TMPFS)).await?)
    } else {
        None
    };
    let mut managers = vec![&manager];
    managers.extend(&on_tmpfs);
    let activations = latency::exit_to_activated(&managers).await?;
    let mut complaints = manager.complaints();
    let stopped = manager.stop().await?;
    if let Some(other) = on_tmpfs {
        complaints = format!("{complaints} (on tmpfs: {})", other.complaints());
        other.stop().await?;
    }

    let mut rows: Vec<(String, &[f64], &str)> = vec![
        ("start: POST /executions sent → the program's first `date`".into(), &starts.reached, "—"),
        ("floor: the same program spawned by the bench (fork, exec sh, exec date)".into(), &floor, "—"),
        ("POST /executions answered (201)".into(), &starts.answered, "—"),
        ("cancel: POST cancel sent → the TERM trap's `date`".into(), &cancels.reached, "—"),
        ("POST cancel answered".into(), &cancels.answered, "—"),
    ];
    let names = [file_system(&disk), "tmpfs".to_owned()];
    for (name, side) in names.iter().zip(&activations) {
        rows.push((format!("exit (the last `date`) → `activated_at`, data dir on {name}"), &side.recorded, "< 10 ms"));
        rows.push((
            format!("exit → a client of /maintenance/events has `activated`, data dir on {name}"),
            &side.seen,
            "< 10 ms",
        ));
        rows.push((format!("a 4 KiB write + fdatasync after each round, data dir on {name}"), &side.fsync, "—"));
    }
    println!("| from → to | samples | p50 / p99 / max | goal |\n|---|---|---|---|");
    for (name, samples, goal) in &rows {
        println!("| {name} | {} | {} | {goal} |", samples.len(), spread(samples));
    }
    let equal: Vec<String> = activations.iter().map(|side| format!("{}/{}", side.equal, side.recorded.len())).collect();
    let skipped: Vec<String> = activations.iter().map(|side| side.skipped.to_string()).collect();
    println!(
        "\nActivation rounds ({ACTIVATIONS} per manager) alternate between the managers, {} first. `activated_at` is \
         truncated to the millisecond (the true delay is up to 1 ms more); it equalled the execution's `ended_at` in \
         {} rounds; rounds skipped because the program ended before the activate: {}. Unexpected ends: {} of the \
         starts, {} of the cancels. Manager warnings/errors: {complaints}. Stopped by SIGTERM in {}.\n",
        names[0],
        equal.join(" and "),
        skipped.join(" and "),
        starts.unexpected,
        cancels.unexpected,
        ms(stopped),
    );

    for (attempt, count) in CHATTY_COUNTS.into_iter().enumerate() {
        let run = chatty::run(&binary, workflows.path(), &disk, count, attempt > 0).await?;
        run.print();
        if run.finished {
            break;
        }
        println!("{count} concurrent executions did not all end: trying fewer\n");
    }
    Ok(())
}

/// The file system type of `dir` (`ext4`, `tmpfs`…), from `df`.
pub(crate) fn file_system(dir: &Path) -> String {
    std::process::Command::new("df")
        .arg("--output=fstype")
        .arg(dir)
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok()?.lines().nth(1).map(|line| line.trim().to_owned()))
        .unwrap_or_else(|| "an unknown file system".to_owned())
}

/// The wall clock in nanoseconds since the Unix epoch, as `date +%s%N` prints it.
fn wall_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as i128)
}

/// A manager's timestamp (milliseconds, truncated) in nanoseconds since the epoch.
fn timestamp_ns(at: &Timestamp) -> i128 {
    i128::from(at.as_datetime().timestamp_millis()) * 1_000_000
}

/// Reads a line a program printed with `date +%s%N`.
fn printed_ns(line: &str) -> anyhow::Result<i128> {
    line.trim().parse().with_context(|| format!("not a `date +%s%N` line: {line:?}"))
}

fn ns_to_ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

/// "p50 …, p99 …, max …" of millisecond samples (may be negative).
fn spread(samples: &[f64]) -> String {
    let mut samples = samples.to_vec();
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    format!("p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms", at(0.5), at(0.99), samples[samples.len() - 1])
}

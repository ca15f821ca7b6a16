//! Idle cost: the release `manager` as a child process (SQLite, then
//! PostgreSQL), one window scheduled a day ahead, then nothing. After
//! [`SETTLE`], what it costs over the idle period: CPU time (`utime +
//! stime` of `/proc/PID/stat`, in clock ticks; and the scheduler's own
//! nanosecond count, `/proc/PID/task/*/schedstat`) and context switches
//! (voluntary + involuntary, summed over `/proc/PID/task/*/status`), that is
//! how often its threads wake.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use shared::{Timestamp, Window};

use crate::replicas::cpu;
use crate::workflows::manager_process::{answer, parse_stat, ManagerProcess};
use crate::Options;

/// From scheduling the window to the start of the measurement: tokio's
/// blocking threads (the sign-in's password check) end after 10 s idle, and
/// the server closes the bench's idle keep-alive connection after its
/// request-head timeout (10 s). Neither is the idle manager's own doing.
const SETTLE: Duration = Duration::from_secs(12);

/// One thread's counters at one moment.
#[derive(Debug, Clone)]
struct ThreadSample {
    name: String,
    voluntary: u64,
    involuntary: u64,
    /// Nanoseconds on a CPU (`schedstat`'s first field).
    run_ns: u64,
}

/// The manager's counters at one moment.
struct Sample {
    /// `utime + stime` of the whole process (threads that ended included), in clock ticks.
    ticks: f64,
    threads: HashMap<u32, ThreadSample>,
}

impl Sample {
    fn take(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let (_, user, system, _, _) = parse_stat(&stat)?;
        let mut threads = HashMap::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let task = task?;
            let Some(tid) = task.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
            // A thread may end between the listing and the reading.
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
            let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
            let field = |name: &str| -> Option<&str> {
                status.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(':')).map(str::trim)
            };
            let number = |name: &str| -> anyhow::Result<u64> {
                field(name).and_then(|value| value.parse().ok()).with_context(|| format!("{name} in {pid}'s status"))
            };
            threads.insert(
                tid,
                ThreadSample {
                    name: field("Name").unwrap_or_default().to_owned(),
                    voluntary: number("voluntary_ctxt_switches")?,
                    involuntary: number("nonvoluntary_ctxt_switches")?,
                    run_ns: schedstat.split_whitespace().next().and_then(|ns| ns.parse().ok()).unwrap_or(0),
                },
            );
        }
        Ok(Self { ticks: user + system, threads })
    }
}

/// What one idle period cost.
struct Idle {
    name: String,
    /// `utime + stime`, in ms (10 ms resolution).
    cpu_ms: f64,
    /// The same from `schedstat`, threads alive at both ends (and new ones), in ms.
    run_ms: f64,
    voluntary: u64,
    involuntary: u64,
    /// Context switches by thread name (threads of one name added up), most first.
    by_thread: Vec<(String, u64)>,
    /// Threads at the start and at the end; threads that ended meanwhile (their last switches are not counted).
    threads: (usize, usize, usize),
    /// CPU ms of the PostgreSQL server (all its processes) over the same period.
    postgres_ms: f64,
}

pub async fn figures(binary: &Path, options: Options) -> anyhow::Result<()> {
    let ticks_per_second = cpu::ticks_per_second();
    let workflows = Path::new(manager::workflows::EXAMPLES);
    let disk = std::env::temp_dir();
    let mut rows = Vec::new();

    let sqlite = ManagerProcess::start(binary, workflows, &disk).await?;
    rows.push(idle("SQLite".into(), &sqlite, options.idle, ticks_per_second).await?);
    let mut complaints = vec![format!("SQLite: {}", sqlite.complaints())];
    sqlite.stop().await?;

    let database = crate::fresh_database().await?;
    let lease = options.lease_seconds.to_string();
    let arguments: Vec<String> = ["--database", &database, "--replica-id", "idle", "--lease-seconds", &lease]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let postgres = ManagerProcess::start_with(binary, workflows, &disk, &arguments).await?;
    let name = format!("PostgreSQL, `--lease-seconds {lease}`");
    rows.push(idle(name, &postgres, options.idle, ticks_per_second).await?);
    complaints.push(format!("PostgreSQL: {}", postgres.complaints()));
    postgres.stop().await?;

    let seconds = options.idle.as_secs_f64();
    println!(
        "### Idle cost: the release `manager` (child process) with one window a day ahead, {seconds:.0} s idle \
         (after {} s settling)\n",
        SETTLE.as_secs()
    );
    println!(
        "| manager | CPU: utime + stime | CPU: schedstat | context switches (voluntary + involuntary) | per second \
         | PostgreSQL server CPU meanwhile | threads |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in &rows {
        let switches = row.voluntary + row.involuntary;
        println!(
            "| {} | {:.0} ms | {:.2} ms | {switches} ({} + {}) | {:.2} | {:.0} ms | {} |",
            row.name,
            row.cpu_ms,
            row.run_ms,
            row.voluntary,
            row.involuntary,
            switches as f64 / seconds,
            row.postgres_ms,
            if row.threads.2 == 0 {
                format!("{}", row.threads.1)
            } else {
                format!("{} → {}, {} ended meanwhile", row.threads.0, row.threads.1, row.threads.2)
            }
        );
    }
    println!();
    for row in &rows {
        let threads: Vec<String> = row.by_thread.iter().map(|(name, count)| format!("`{name}` {count}")).collect();
        println!(
            "- {}: switches by thread: {}",
            row.name,
            if threads.is_empty() { "none".to_owned() } else { threads.join(", ") }
        );
    }
    println!(
        "\nutime + stime count clock ticks ({:.0} ms each); schedstat counts nanoseconds. The PostgreSQL server \
         column is the whole server (postmaster, background processes, backends), also while the SQLite manager \
         is measured: its own idle cost. Manager warnings/errors: {}.\n",
        1000.0 / ticks_per_second,
        complaints.join("; ")
    );
    Ok(())
}

/// Schedules a window a day ahead on `manager`, lets it settle, then
/// measures `period` of idleness.
async fn idle(name: String, manager: &ManagerProcess, period: Duration, ticks_per_second: f64) -> anyhow::Result<Idle> {
    let starts_at = Timestamp::from_datetime(Timestamp::now().as_datetime() + Duration::from_secs(24 * 3600));
    let ends_at = Timestamp::from_datetime(starts_at.as_datetime() + Duration::from_secs(3600));
    let body = json!({"starts_at": starts_at, "ends_at": ends_at, "reason": "bench: idle"});
    let _: Window = answer!(manager.post("/maintenance/windows").json(&body).send().await?, 201)?;
    tokio::time::sleep(SETTLE).await;

    let pid = manager.pid();
    let postgres_before = cpu::now(ticks_per_second)?.postgres;
    let before = Sample::take(pid)?;
    tokio::time::sleep(period).await;
    let after = Sample::take(pid)?;
    let postgres_after = cpu::now(ticks_per_second)?.postgres;

    let mut idle = Idle {
        name,
        cpu_ms: (after.ticks - before.ticks) * 1000.0 / ticks_per_second,
        run_ms: 0.0,
        voluntary: 0,
        involuntary: 0,
        by_thread: Vec::new(),
        threads: (
            before.threads.len(),
            after.threads.len(),
            before.threads.keys().filter(|tid| !after.threads.contains_key(tid)).count(),
        ),
        postgres_ms: (postgres_after - postgres_before) * 1000.0,
    };
    let mut by_thread: HashMap<String, u64> = HashMap::new();
    for (tid, now) in &after.threads {
        // A thread that started meanwhile counts from zero.
        let then = before.threads.get(tid).cloned().unwrap_or(ThreadSample {
            run_ns: 0,
            voluntary: 0,
            involuntary: 0,
            ..now.clone()
        });
        let (voluntary, involuntary) = (now.voluntary - then.voluntary, now.involuntary - then.involuntary);
        idle.voluntary += voluntary;
        idle.involuntary += involuntary;
        idle.run_ms += (now.run_ns - then.run_ns) as f64 / 1e6;
        if voluntary + involuntary > 0 {
            *by_thread.entry(now.name.clone()).or_default() += voluntary + involuntary;
        }
    }
    idle.by_thread = by_thread.into_iter().collect();
    idle.by_thread.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(idle)
}

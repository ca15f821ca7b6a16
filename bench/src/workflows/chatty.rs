//! Many executions writing output at once: started together on a fresh
//! manager, waited for (bounded), then every stored line counted.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures_util::StreamExt;
use shared::api::ListResponse;
use shared::execution::OutputStream;
use shared::{Execution, ExecutionStatus};

use super::manager_process::{answer, ManagerProcess, ThreadCpu};
use super::{ms, timestamp_ns, wall_ns};

/// Lines each chatty program prints (below the 10 000-line cap: none may be dropped).
pub const LINES: u64 = 5_000;
/// How long a run may take before it counts as too much for the machine.
pub const BOUND: Duration = Duration::from_secs(300);
/// Executions read back line by line after a run.
const READ_IN_FULL: usize = 5;
/// How often a run that may give up early projects its end…
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// …from this many of its executions' stored lines.
const SAMPLED: usize = 10;

/// What one run measured.
pub struct ChattyRun {
    count: usize,
    /// Whether every execution ended within [`BOUND`].
    pub finished: bool,
    ended: usize,
    created_in: Duration,
    create_retries: usize,
    wall: Duration,
    observed: Duration,
    /// Set when the run gave up early: how long it would have taken at its rate.
    projected: Option<Duration>,
    written: u64,
    cpu_user: f64,
    cpu_system: f64,
    children_cpu: f64,
    threads: Vec<ThreadCpu>,
    rss_before: f64,
    hwm: f64,
    rss_after: f64,
    stored: u64,
    not_terminated: Vec<String>,
    checked_in_full: usize,
    complaints: String,
    stopped: Duration,
}

/// Starts `count` chatty executions at once on a fresh manager (data dir in
/// `data_parent`) and waits (bounded) for all to end. With `give_up_early`,
/// a run that would clearly not end within twice the bound (projected every
/// minute from a sample of its executions' stored lines) stops at once.
pub async fn run(
    binary: &Path,
    workflows: &Path,
    data_parent: &Path,
    count: usize,
    give_up_early: bool,
) -> anyhow::Result<ChattyRun> {
    let ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok()?.trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    let manager = ManagerProcess::start(binary, workflows, data_parent).await?;
    let rss_before = manager.memory_mib("VmRSS")?;
    let (user_before, system_before, children_before) = manager.cpu_seconds(ticks)?;
    let threads_before = manager.thread_cpu(ticks)?;
    let written_before = manager.written_bytes()?;
    let sent = wall_ns();
    let started = Instant::now();
    let creates = futures_util::future::join_all((0..count).map(|_| manager.create("chatty"))).await;
    let created_in = started.elapsed();
    let mut ids = Vec::with_capacity(count);
    let mut create_retries = 0;
    for created in creates {
        let (execution, retries) = created?;
        ids.push(execution.id);
        create_retries += retries;
    }

    // One list request four times a second: light next to the load measured.
    let mut executions: Vec<Execution>;
    let mut projected = None;
    let mut next_check = CHECK_EVERY;
    let finished = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let page: ListResponse<Execution> = answer!(manager.get("/executions?_size=1000").send().await?, 200)?;
        executions = page.items;
        if executions.iter().filter(|execution| execution.status.is_end()).count() == count {
            break true;
        }
        if started.elapsed() > BOUND {
            break false;
        }
        if give_up_early && started.elapsed() >= next_check {
            next_check += CHECK_EVERY;
            let (mut stored, mut sampled) = (0, 0);
            for &id in ids.iter().step_by((count / SAMPLED).max(1)) {
                stored += manager.events(id, 0, 1).await?.metadata.pagination.total;
                sampled += LINES;
            }
            let share = stored as f64 / sampled as f64;
            let at_this_rate = started.elapsed().as_secs_f64() / share.max(1e-6);
            if at_this_rate > 2.0 * BOUND.as_secs_f64() {
                projected = Some(Duration::from_secs_f64(at_this_rate.min(1e6)));
                break false;
            }
        }
    };
    let observed = started.elapsed();
    let (user_after, system_after, children_after) = manager.cpu_seconds(ticks)?;
    let mut threads = manager.thread_cpu(ticks)?;
    for thread in &mut threads {
        if let Some(before) = threads_before.iter().find(|before| before.name == thread.name) {
            thread.user -= before.user;
            thread.system -= before.system;
        }
    }
    threads.sort_by(|a, b| (b.user + b.system).total_cmp(&(a.user + a.system)));
    let written = manager.written_bytes()? - written_before;
    let hwm = manager.memory_mib("VmHWM")?;
    let rss_after = manager.memory_mib("VmRSS")?;
    let ended: Vec<&Execution> = executions.iter().filter(|execution| execution.status.is_end()).collect();
    let last_end = ended.iter().filter_map(|execution| execution.ended_at.as_ref()).map(timestamp_ns).max();
    let wall = Duration::from_nanos(u64::try_from(last_end.unwrap_or(sent) - sent).unwrap_or(0));
    let not_terminated = ended
        .iter()
        .filter(|execution| execution.status != ExecutionStatus::Terminated)
        .take(5)
        .map(|execution| format!("{} {} {}", execution.id, execution.status.as_str(), execution.error))
        .collect();

    // Lines stored: the page totals, 16 requests at a time.
    let client = &manager;
    let totals = futures_util::stream::iter(ids.iter().copied())
        .map(|id| async move { anyhow::Ok(client.events(id, 0, 1).await?.metadata.pagination.total) })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let mut stored = 0;
    for total in totals {
        stored += total?;
    }
    // A few read back in full: every line there, in order, from stdout.
    let mut checked_in_full = 0;
    for &id in ids.iter().take(if finished { READ_IN_FULL } else { 0 }) {
        let mut next = 0;
        while next < LINES {
            let page = manager.events(id, next, 1000).await?;
            ensure!(!page.items.is_empty(), "execution {id}: output ends at line {next}");
            for event in &page.items {
                ensure!(
                    event.line == format!("line {next}") && event.stream == OutputStream::Stdout,
                    "execution {id}: line {next} is {:?} on {:?}",
                    event.line,
                    event.stream
                );
                next += 1;
            }
        }
        checked_in_full += 1;
    }
    let complaints = manager.complaints();
    let stopped = manager.stop().await?;
    Ok(ChattyRun {
        count,
        finished,
        ended: ended.len(),
        created_in,
        create_retries,
        wall,
        observed,
        projected,
        written,
        cpu_user: user_after - user_before,
        cpu_system: system_after - system_before,
        children_cpu: children_after - children_before,
        threads,
        rss_before,
        hwm,
        rss_after,
        stored,
        not_terminated,
        checked_in_full,
        complaints,
        stopped,
    })
}

impl ChattyRun {
    /// The run as a Markdown table.
    pub fn print(&self) {
        let count = self.count;
        let expected = count as u64 * LINES;
        let wall = self.wall.as_secs_f64();
        let observed = self.observed.as_secs_f64();
        let cpu = self.cpu_user + self.cpu_system;
        println!("### {count} concurrent chatty executions ({LINES} lines each, ~1 000 a second)\n");
        println!("| figure | measured |\n|---|---|");
        let threads: Vec<String> = self
            .threads
            .iter()
            .filter(|thread| thread.user + thread.system >= 0.05)
            .map(|thread| format!("{} {:.1} + {:.1}", thread.name, thread.user, thread.system))
            .collect();
        let rate_over = if self.finished { wall } else { observed };
        let rows = [
            (
                "all ended",
                if self.finished {
                    "yes".to_owned()
                } else if let Some(projected) = self.projected {
                    format!(
                        "no: {} of {count}; given up after {observed:.0} s, as at its rate it would take ~{:.0} min",
                        self.ended,
                        projected.as_secs_f64() / 60.0
                    )
                } else {
                    format!("no: {} of {count} within the bound of {:?}", self.ended, BOUND)
                },
            ),
            (
                "wall time, first POST sent → last `ended_at`",
                if self.finished {
                    format!("{wall:.1} s (one program alone: ~5 s)")
                } else {
                    format!("more than {observed:.0} s (one program alone: ~5 s)")
                },
            ),
            (
                "lines stored per second",
                format!("{:.0} (the programs write up to {} a second)", self.stored as f64 / rate_over, count * 1000),
            ),
            ("the creates answered", format!("in {} ({} retries after 503)", ms(self.created_in), self.create_retries)),
            (
                "manager CPU, user + system",
                format!(
                    "{:.1} + {:.1} s over {observed:.1} s = {:.0} % of one core (the programs: {:.1} s)",
                    self.cpu_user,
                    self.cpu_system,
                    100.0 * cpu / observed,
                    self.children_cpu
                ),
            ),
            ("manager CPU by thread, user + system s", threads.join(", ")),
            (
                "written to storage by the manager (/proc io `write_bytes`)",
                format!(
                    "{:.0} MiB, {:.1} KiB per stored line",
                    self.written as f64 / 1048576.0,
                    self.written as f64 / 1024.0 / self.stored.max(1) as f64
                ),
            ),
            (
                "manager RSS",
                format!(
                    "{:.1} MiB before, peak (VmHWM) {:.1} MiB, {:.1} MiB after",
                    self.rss_before, self.hwm, self.rss_after
                ),
            ),
            (
                "lines expected / stored",
                if self.finished {
                    format!("{expected} / {} ({} lost)", self.stored, expected as i128 - self.stored as i128)
                } else {
                    format!("{expected} / {} when it stopped (the rest not written yet)", self.stored)
                },
            ),
            (
                "ended other than `terminated`",
                match self.not_terminated.len() {
                    0 => "none".to_owned(),
                    n => format!("{n}: {}", self.not_terminated.join(", ")),
                },
            ),
            ("read back line by line, all in order", format!("{} executions", self.checked_in_full)),
            ("manager warnings/errors", self.complaints.clone()),
            ("stopped by SIGTERM in", ms(self.stopped)),
        ];
        for (name, value) in rows {
            println!("| {name} | {value} |");
        }
        println!();
    }
}

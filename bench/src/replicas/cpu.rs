//! CPU time of this process (the managers and the load generator) and of
//! the PostgreSQL server (its postmaster and every backend), from `/proc`:
//! where an admission's time goes.

use std::process::Command;

use crate::workflows::manager_process::parse_stat;

/// CPU seconds so far: this process, and the PostgreSQL server.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSeconds {
    pub bench: f64,
    pub postgres: f64,
}

impl std::ops::Sub for CpuSeconds {
    type Output = Self;

    fn sub(self, earlier: Self) -> Self {
        Self { bench: self.bench - earlier.bench, postgres: self.postgres - earlier.postgres }
    }
}

/// Reads the clock-tick rate once (`getconf CLK_TCK`, 100 on Linux).
pub fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok()?.trim().parse::<f64>().ok())
        .unwrap_or(100.0)
}

/// This process's CPU time and the server's: its postmaster (with the
/// backends it has reaped) and the processes whose parent it is.
pub fn now(ticks_per_second: f64) -> anyhow::Result<CpuSeconds> {
    let (_, user, system, _, _) = parse_stat(&std::fs::read_to_string("/proc/self/stat")?)?;
    let bench = (user + system) / ticks_per_second;
    let postgres = match pg_harness::shared().pid() {
        Some(postmaster) => server_seconds(postmaster, ticks_per_second)?,
        None => 0.0,
    };
    Ok(CpuSeconds { bench, postgres })
}

/// CPU seconds of the PostgreSQL server whose postmaster is `postmaster`:
/// its own, its reaped backends', and its live children's.
pub fn server_seconds(postmaster: u32, ticks_per_second: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{postmaster}/stat"))?;
    let (_, user, system, children_user, children_system) = parse_stat(&stat)?;
    let mut ticks = user + system + children_user + children_system;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        // Backends come and go: one that ended meanwhile is skipped.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if parent(&stat) == Some(postmaster) {
            ticks += parse_stat(&stat).map_or(0.0, |(_, user, system, _, _)| user + system);
        }
    }
    Ok(ticks / ticks_per_second)
}

/// The parent pid of a `/proc/<pid>/stat` line (field 4).
fn parent(stat: &str) -> Option<u32> {
    stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?.parse().ok()
}

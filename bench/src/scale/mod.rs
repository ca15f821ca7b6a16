//! The `scale` section (issue 22; SPEC §8 "At scale and with any input",
//! §12 "Capacity and the work queue"), on both stores in one run: SQLite on
//! disk, and PostgreSQL with `fsync=off` (pg-harness's default) and with
//! PostgreSQL's own defaults (`fsync=on`, a second server).
//!
//! - Propagation at the machine's own load (the replicas section's
//!   measurement, `replicas/propagation.rs`, on either PostgreSQL server),
//!   with the load average beside it; first, before this section loads the
//!   machine itself.
//! - Releases ([`release`]): 10 000 executions queued during maintenance,
//!   one deactivate, programs at `--max-running 64` per process: the
//!   deactivate's answer (goal: under 2 s), the time to the last end, and
//!   the ends recorded per second (derived from the same run), on SQLite (one
//!   process) and PostgreSQL with one and with three replica processes.

mod release;

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use pg_harness::{Durability, PgServer};

use self::release::{Release, QUEUED, RUN_BOUND};
use crate::replicas::propagation;
use crate::windows::load_average;
use crate::workflows::file_system;

/// `--max-running` of every manager here (the default).
pub const MAX_RUNNING: u32 = 64;
/// The goal for the deactivate's answer, in milliseconds (SPEC §8: "well under 2 s").
const ANSWER_GOAL_MS: f64 = 2000.0;

/// Where a setup keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// SQLite in a data dir on disk.
    Sqlite,
    /// A fresh database on the bench's PostgreSQL server of this durability.
    Postgres(Durability),
}

impl Store {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres(Durability::Off) => "PostgreSQL, `fsync=off`",
            Self::Postgres(Durability::Durable) => "PostgreSQL, `fsync=on`",
        }
    }
}

/// A store and how many manager processes share it.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub store: Store,
    pub replicas: usize,
}

/// The releases measured, in this order.
const SETUPS: [Setup; 5] = [
    Setup { store: Store::Sqlite, replicas: 1 },
    Setup { store: Store::Postgres(Durability::Off), replicas: 1 },
    Setup { store: Store::Postgres(Durability::Off), replicas: 3 },
    Setup { store: Store::Postgres(Durability::Durable), replicas: 1 },
    Setup { store: Store::Postgres(Durability::Durable), replicas: 3 },
];

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
    // Started before anything is measured: initdb and a start cost a few seconds.
    let durable = tokio::task::spawn_blocking(|| PgServer::start_with(Durability::Durable))
        .await?
        .context("starting a PostgreSQL server with fsync=on (pg-harness)")?;
    let durable = Arc::new(durable);
    let fresh_durable = || {
        let durable = Arc::clone(&durable);
        async move {
            let created = tokio::task::spawn_blocking(move || durable.fresh_database()).await;
            created?.context("a fresh database with fsync=on")
        }
    };
    // Also starts the fsync=off server (pg-harness's shared one).
    let database = crate::fresh_database().await?;
    let settings = "SELECT current_setting('server_version') || ': fsync=' || current_setting('fsync') || \
                    ', synchronous_commit=' || current_setting('synchronous_commit') || ', full_page_writes=' || \
                    current_setting('full_page_writes')";
    let off_settings = tokio::task::spawn_blocking(move || pg_harness::shared().psql("postgres", settings));
    let off_settings = off_settings.await??;
    let durable_settings = {
        let durable = Arc::clone(&durable);
        tokio::task::spawn_blocking(move || durable.psql("postgres", settings)).await??
    };
    let disk = std::env::temp_dir();

    println!("## Scale (issue 22: SPEC §8 \"At scale\", §12 \"Capacity and the work queue\")\n");
    println!(
        "load average before: {} (1, 5, 15 min); data dirs (SQLite's, the programs' working dirs, PostgreSQL's) \
         in {} ({}); two throwaway PostgreSQL servers from pg-harness on Unix sockets: PostgreSQL {}, and \
         PostgreSQL {}\n",
        load_average(),
        disk.display(),
        file_system(&disk),
        off_settings.trim(),
        durable_settings.trim()
    );

    println!("load average before the propagation (fsync=off): {} (1, 5, 15 min)\n", load_average());
    propagation::figures_on(&database, ", PostgreSQL with `fsync=off`").await?;
    println!("load average before the propagation (fsync=on): {} (1, 5, 15 min)\n", load_average());
    propagation::figures_on(&fresh_durable().await?, ", PostgreSQL with `fsync=on`").await?;

    let mut releases = Vec::new();
    for setup in SETUPS {
        let (database, postmaster) = match setup.store {
            Store::Sqlite => (None, None),
            Store::Postgres(Durability::Off) => (Some(crate::fresh_database().await?), pg_harness::shared().pid()),
            Store::Postgres(Durability::Durable) => (Some(fresh_durable().await?), durable.pid()),
        };
        let name = format!("{} × {}", setup.store.name(), setup.replicas);
        let release =
            release::run(&binary, setup, database.as_deref(), postmaster).await.with_context(|| name.clone())?;
        releases.push((setup, release));
    }
    print_releases(&releases);
    println!("load average after: {} (1, 5, 15 min)\n", load_average());
    // The server's stop waits for its exit: not on a runtime thread.
    tokio::task::spawn_blocking(move || drop(durable)).await?;
    Ok(())
}

fn print_releases(releases: &[(Setup, Release)]) {
    let count = thousands(QUEUED);
    println!(
        "### Releasing {count} queued executions with one deactivate, `--max-running {MAX_RUNNING}` per process\n"
    );
    println!(
        "Each run: fresh data, the release `manager` as child processes (one per replica), maintenance activated, \
         {count} executions of `quick` (a `#!/bin/sh` program that appends its id to its replica's log and exits) \
         admitted with `\"queue\": true` by 64 clients spread over the replicas, then `POST \
         /maintenance/deactivate` to the first. Its answer is timed by the bench; the ends are the stored \
         `ended_at` (milliseconds) against the bench's clock when it sent the deactivate. **Ends/s** is derived \
         from the same run: executions ended ÷ (last `ended_at` − first `ended_at`). \"Ran\" is each replica's \
         log: how many programs it ran, and the most `manager_running_processes` seen at a poll (every 200 ms). \
         CPU per execution from `/proc`, from the deactivate to the last end: the managers (user + system), \
         their programs (reaped children), the PostgreSQL server (postmaster and backends).\n"
    );
    println!(
        "| store × processes | queueing (admissions/s) | deactivate answered | → first end | → last end | ends/s | \
         ran: per replica (most at once) | CPU per execution: managers + programs + PostgreSQL | load (1 min) \
         before |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (setup, release) in releases {
        let seconds = |ms: Option<f64>| ms.map_or("—".to_owned(), |ms| format!("{:.2} s", ms / 1000.0));
        let ended = release.terminated + release.failed_or_cancelled;
        let rate = match (release.first_end_ms, release.last_end_ms) {
            (Some(first), Some(last)) if last > first => format!("{:.0}", ended as f64 / ((last - first) / 1000.0)),
            _ => "—".to_owned(),
        };
        let ran: Vec<String> =
            release.per_replica.iter().map(|(ran, most)| format!("{} ({most:.0})", thousands(*ran))).collect();
        let per_execution = |seconds: f64| seconds / ended.max(1) as f64 * 1000.0;
        let (manager, programs, postgres) = (
            per_execution(release.manager_cpu),
            per_execution(release.programs_cpu),
            per_execution(release.postgres_cpu),
        );
        let postgres = match setup.store {
            Store::Sqlite => String::new(),
            Store::Postgres(_) => format!(" + {postgres:.2}"),
        };
        println!(
            "| {} × {} | {:.1} s ({:.0}/s) | **{:.0} ms** | {} | {} | **{rate}** | {} | {manager:.2} + {programs:.2}\
             {postgres} = {:.2} ms | {} |",
            setup.store.name(),
            setup.replicas,
            release.queued_in.as_secs_f64(),
            QUEUED as f64 / release.queued_in.as_secs_f64(),
            release.answered.as_secs_f64() * 1000.0,
            seconds(release.first_end_ms),
            seconds(release.last_end_ms),
            ran.join(" + "),
            per_execution(release.manager_cpu + release.programs_cpu + release.postgres_cpu),
            release.load_before
        );
    }
    println!();
    for (setup, release) in releases {
        let name = format!("{} × {}", setup.store.name(), setup.replicas);
        let answer_ms = release.answered.as_secs_f64() * 1000.0;
        let verdict = if answer_ms < ANSWER_GOAL_MS { "met" } else { "missed" };
        let mut notes = vec![format!("deactivate answered in {answer_ms:.0} ms (goal < 2 s: {verdict})")];
        if !release.finished() {
            notes.push(format!(
                "only {} of {count} ended within {RUN_BOUND:?} of the deactivate",
                thousands(release.terminated + release.failed_or_cancelled)
            ));
        }
        if release.failed_or_cancelled > 0 {
            notes.push(format!("{} ended failed or cancelled", release.failed_or_cancelled));
        }
        let ran: usize = release.per_replica.iter().map(|(ran, _)| ran).sum();
        notes.push(format!(
            "programs run: {} ({} twice); admissions answered 503 and sent again: {}",
            thousands(ran),
            release.ran_twice,
            release.retries
        ));
        let complaints: Vec<String> = release
            .complaints
            .iter()
            .enumerate()
            .map(|(index, complaints)| format!("r{}: {complaints}", index + 1))
            .collect();
        notes.push(format!("manager warnings/errors: {}", complaints.join(", ")));
        println!("- {name}: {}", notes.join("; "));
    }
    println!();
}

/// `10000` → `10 000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(digit);
    }
    out
}

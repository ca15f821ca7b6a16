//! `cargo run --release -p bench`: the manager's figures for BENCHMARKS.md.
//! Everything runs on loopback; every loop is bounded in count and time.
//! `bench callgrind-gate …` is the child the replicas section runs under
//! valgrind (see `callgrind.rs`). Options go among the section names:
//! `--idle-seconds N` (the windows section's idle measurement, default 60)
//! and `--lease-seconds N` (the lease of its idle PostgreSQL manager, default 10).
//! Comparisons (gate vs no gate) alternate their runs in one process so that
//! machine noise falls on both sides.

mod callgrind;
mod replicas;
mod scale;
mod tls;
mod webhooks;
mod windows;
mod workflows;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use manager::config::Config;
use manager::Manager;
use shared::{MaintenanceState, MaintenanceStatus, Role};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const PASSWORD: &str = "benchmark password";
/// Concurrent connections of the load generator.
const CONNECTIONS: usize = 64;
/// How long one load run lasts.
const RUN: Duration = Duration::from_secs(3);
/// Alternating with/without-gate pairs.
const PAIRS: usize = 5;
/// The panel's target (issue 11, item 14): wasm and JS together, gzipped, in bytes (150 KB, not KiB).
const PANEL_GZIP_TARGET: u64 = 150_000;
/// What `bench` can be told to run alone.
const SECTIONS: [&str; 11] =
    ["gate", "status", "fan-out", "processes", "panel", "workflows", "replicas", "windows", "webhooks", "tls", "scale"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The child that `valgrind` runs for the replicas section: one thread, no load generator.
    if args.first().map(String::as_str) == Some(callgrind::SUBCOMMAND) {
        return callgrind::answer_in_process(&args[1..]);
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(sections(args))
}

/// What can be set on the command line besides the sections.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// How long the windows section watches an idle manager.
    idle: Duration,
    /// `--lease-seconds` of the windows section's idle manager on PostgreSQL.
    lease_seconds: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self { idle: Duration::from_secs(60), lease_seconds: 10 }
    }
}

/// Splits the arguments into section names and [`Options`]
/// (`--name value` or `--name=value`).
fn parse_arguments(args: Vec<String>) -> anyhow::Result<(Vec<String>, Options)> {
    let mut options = Options::default();
    let mut sections = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            sections.push(arg);
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => (flag.to_owned(), args.next().with_context(|| format!("--{flag} needs a value"))?),
        };
        let seconds: u64 = value.parse().with_context(|| format!("--{name} {value:?}: a whole number of seconds"))?;
        match name.as_str() {
            "idle-seconds" if seconds > 0 => options.idle = Duration::from_secs(seconds),
            "lease-seconds" if seconds >= 2 => options.lease_seconds = seconds,
            "idle-seconds" | "lease-seconds" => bail!("--{name} {seconds}: too small"),
            _ => bail!("unknown option --{name}; the options are --idle-seconds and --lease-seconds"),
        }
    }
    Ok((sections, options))
}

/// Runs a section's `measure` until it ends, or until SIGINT or SIGTERM (its
/// manager processes then stop with their guards): sections that start
/// processes of their own end with the bench.
async fn until_interrupted(measure: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        done = measure => done,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}

async fn sections(args: Vec<String>) -> anyhow::Result<()> {
    let (only, options) = parse_arguments(args)?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // The fan-outs hold thousands of streams, both ends in this process.
    manager::server::raise_open_file_limit()?;
    println!("# manager benchmarks ({} cores)\n", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    // `bench [section…]` runs only the named sections; no argument runs all.
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if let Some(unknown) = only.iter().find(|o| !SECTIONS.contains(&o.as_str())) {
        bail!("unknown section {unknown:?}; the sections are {}", SECTIONS.join(", "));
    }
    if wanted("gate") {
        gate_overhead().await?;
    }
    if wanted("status") {
        status_cost().await?;
    }
    if wanted("fan-out") {
        fan_out().await?;
    }
    if wanted("processes") {
        process_figures(&root)?;
    }
    if wanted("panel") {
        panel_size(&root)?;
    }
    if wanted("workflows") {
        workflows::figures(&root).await?;
    }
    if wanted("replicas") {
        replicas::figures().await?;
    }
    if wanted("windows") {
        windows::figures(&root, options).await?;
    }
    if wanted("webhooks") {
        webhooks::figures().await?;
    }
    if wanted("tls") {
        tls::figures().await?;
    }
    if wanted("scale") {
        scale::figures(&root).await?;
    }
    Ok(())
}

/// A manager served in this process; `gated: false` drops only the gate layer.
struct Served {
    base: String,
    token: String,
    manager_state: manager::state::AppState,
    /// Its PostgreSQL database's URL (`None` on SQLite).
    database: Option<String>,
    _data: tempfile::TempDir,
    _stop: tokio_util::sync::DropGuard,
}

async fn serve(gated: bool) -> anyhow::Result<Served> {
    serve_on(StoreKind::Sqlite, gated).await
}

/// Where a manager served by the bench keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    /// SQLite in a temporary data dir on disk: every commit fsync'd.
    Sqlite,
    /// SQLite with its data dir on tmpfs, where fsync costs nothing.
    SqliteTmpfs,
    /// A fresh database on the bench's own PostgreSQL server (pg-harness,
    /// which runs it with `fsync=off`).
    Postgres,
}

impl StoreKind {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::SqliteTmpfs => "SQLite on tmpfs",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// A fresh database on the PostgreSQL server the bench starts on first use
/// (it ends with the bench's process).
async fn fresh_database() -> anyhow::Result<String> {
    let created = tokio::task::spawn_blocking(|| pg_harness::shared().fresh_database()).await;
    created.context("starting PostgreSQL (pg-harness)")?.context("a fresh PostgreSQL database")
}

async fn serve_on(store: StoreKind, gated: bool) -> anyhow::Result<Served> {
    serve_over(store, gated, None).await
}

/// [`serve_on`], over HTTPS with `tls` (the production accept loop's TLS).
async fn serve_over(store: StoreKind, gated: bool, tls: Option<manager::tls::TlsFiles>) -> anyhow::Result<Served> {
    let data = match store {
        StoreKind::SqliteTmpfs => tempfile::tempdir_in(workflows::TMPFS)?,
        StoreKind::Sqlite | StoreKind::Postgres => tempfile::tempdir()?,
    };
    let database = match store {
        StoreKind::Postgres => Some(fresh_database().await?),
        StoreKind::Sqlite | StoreKind::SqliteTmpfs => None,
    };
    let config = Config {
        dist: "/nonexistent".into(),
        admin_password: Some(PASSWORD.into()),
        workflows: manager::workflows::EXAMPLES.into(),
        replica_id: database.is_some().then(|| "bench".to_owned()),
        database: database.clone(),
        tls_cert: tls.as_ref().map(|files| files.cert.clone()),
        tls_key: tls.as_ref().map(|files| files.key.clone()),
        ..Config::local(data.path().to_owned())
    };
    let manager = Manager::open(&config).await?;
    let tls = manager.tls().map(|certificates| certificates.acceptor());
    let state = manager.state().clone();
    let token = state.auth.issue_token("admin", Role::Admin).await?.value;
    let router = if gated {
        manager::router(state.clone(), Path::new("/nonexistent"))
    } else {
        manager::router_without_gate(state.clone(), Path::new("/nonexistent"))
    };
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base = format!("{scheme}://{}", listener.local_addr()?);
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    // The production accept loop (request-head timeout, connection shedding).
    tokio::spawn(manager::server::serve(listener, router, config.connection_limits(), tls, shutdown));
    drop(manager);
    Ok(Served { base, token, manager_state: state, database, _data: data, _stop: stop.drop_guard() })
}

/// Requests per second and latency percentiles of one load run.
struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `CONNECTIONS` workers hammer `url` for `RUN`.
async fn load(url: &str, token: Option<&str>) -> anyhow::Result<Load> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build()?;
    load_with(&client, url, token).await
}

/// [`load`] with a client of the caller's (HTTPS, HTTP/2).
async fn load_with(client: &reqwest::Client, url: &str, token: Option<&str>) -> anyhow::Result<Load> {
    let deadline = Instant::now() + RUN;
    let started = Instant::now();
    let workers = (0..CONNECTIONS).map(|_| {
        let client = client.clone();
        let url = url.to_owned();
        let token = token.map(str::to_owned);
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let mut request = client.get(&url);
                if let Some(token) = &token {
                    request = request.header(shared::api::TOKEN_HEADER, token);
                }
                let sent = Instant::now();
                let response = request.send().await?;
                if !response.status().is_success() {
                    bail!("{url}: {}", response.status());
                }
                response.bytes().await?;
                latencies.push(sent.elapsed());
            }
            Ok(latencies)
        })
    });
    let mut latencies = Vec::new();
    for worker in futures_util::future::join_all(workers).await {
        latencies.extend(worker??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Load { per_second: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.50), p99: at(0.99) })
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

async fn gate_overhead() -> anyhow::Result<()> {
    let gated = serve(true).await?;
    let ungated = serve(false).await?;
    let path = "/api/v3.1/version";
    // Warm both, then alternate: A B A B A B.
    load(&format!("{}{path}", gated.base), None).await?;
    load(&format!("{}{path}", ungated.base), None).await?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        with.push(load(&format!("{}{path}", gated.base), None).await?);
        without.push(load(&format!("{}{path}", ungated.base), None).await?);
    }
    let mut ratios: Vec<f64> = with.iter().zip(&without).map(|(a, b)| a.per_second / b.per_second).collect();
    ratios.sort_by(f64::total_cmp);
    let (with, without) = (Summary::of(&with), Summary::of(&without));
    println!("## Gate overhead: GET {path}, {CONNECTIONS} connections, {PAIRS} alternating pairs of {RUN:?} runs\n");
    println!("| router | requests/s | p50 | p99 |\n|---|---|---|---|");
    for (name, summary) in [("with the gate", &with), ("without the gate", &without)] {
        println!("| {name} | {:.0} | {} | {} |", summary.per_second, ms(summary.p50), ms(summary.p99));
    }
    println!(
        "\nratio (with / without): **{:.3}** overall; per pair {:.3} to {:.3}, median {:.3} (target ≥ 0.97)\n",
        with.per_second / without.per_second,
        ratios[0],
        ratios[ratios.len() - 1],
        ratios[ratios.len() / 2]
    );
    Ok(())
}

async fn status_cost() -> anyhow::Result<()> {
    // Two managers: one stays empty, the other gets 10 000 finished
    // executions; runs alternate between them so machine noise falls on both.
    let empty = serve(true).await?;
    let filled = serve(true).await?;
    let engine = filled.manager_state.engine.clone();
    let client = reqwest::Client::new();
    let start = |duration: f64| {
        let client = client.clone();
        let url = format!("{}/api/v3.1/executions", filled.base);
        let token = filled.token.clone();
        async move {
            let body = serde_json::json!({"workflow_id": "install", "deployment_id": "d", "parameters": {"duration_seconds": duration}});
            let response = client.post(url).header(shared::api::TOKEN_HEADER, token).json(&body).send().await?;
            anyhow::ensure!(response.status() == 201, "create: {}", response.status());
            anyhow::Ok(())
        }
    };
    let filling = Instant::now();
    for chunk in 0..100 {
        let creates = (0..100).map(|_| start(0.0));
        for result in futures_util::future::join_all(creates).await {
            result.with_context(|| format!("chunk {chunk}"))?;
        }
    }
    let fill_time = filling.elapsed();
    let empty_url = format!("{}/api/v3.1/maintenance", empty.base);
    let filled_url = format!("{}/api/v3.1/maintenance", filled.base);
    let alternate = || async {
        let (mut on_empty, mut on_filled) = (Vec::new(), Vec::new());
        for _ in 0..PAIRS {
            on_empty.push(load(&empty_url, Some(&empty.token)).await?);
            on_filled.push(load(&filled_url, Some(&filled.token)).await?);
        }
        anyhow::Ok((Summary::of(&on_empty), Summary::of(&on_filled)))
    };
    load(&empty_url, Some(&empty.token)).await?;
    load(&filled_url, Some(&filled.token)).await?;
    let (empty_first, stored) = alternate().await?;
    for _ in 0..10 {
        start(3600.0).await?;
    }
    engine.activate(manager::engine::machine::Activation::by("admin")).await?;
    let remaining = engine.status().remaining_executions.len();
    let (empty_second, activating) = alternate().await?;

    println!(
        "## GET /maintenance (token auth), {CONNECTIONS} connections, {PAIRS} alternating pairs of {RUN:?} runs \
         per comparison\n"
    );
    println!("| store | requests/s | p50 | p99 |\n|---|---|---|---|");
    for (name, summary) in [
        ("empty, deactivated".to_owned(), &empty_first),
        ("10 000 finished, deactivated".to_owned(), &stored),
        (format!("10 000 finished + {remaining} running, activating"), &activating),
    ] {
        println!("| {name} | {:.0} | {} | {} |", summary.per_second, ms(summary.p50), ms(summary.p99));
    }
    println!(
        "\nratio (10 000 finished / empty): **{:.2}** (the status never reads the executions); with 10 remaining \
         executions to serialize, against the empty one measured alongside: {:.2}. 10 000 executions created in \
         {:.1} s ({:.0}/s, each an fsync'd commit)\n",
        stored.per_second / empty_first.per_second,
        activating.per_second / empty_second.per_second,
        fill_time.as_secs_f64(),
        10_000.0 / fill_time.as_secs_f64()
    );
    Ok(())
}

/// Mean throughput and median percentiles over several load runs.
struct Summary {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

impl Summary {
    fn of(runs: &[Load]) -> Self {
        let median = |pick: fn(&Load) -> Duration| {
            let mut values: Vec<Duration> = runs.iter().map(pick).collect();
            values.sort();
            values[values.len() / 2]
        };
        Self {
            per_second: runs.iter().map(|r| r.per_second).sum::<f64>() / runs.len() as f64,
            p50: median(|r| r.p50),
            p99: median(|r| r.p99),
        }
    }
}

async fn fan_out() -> anyhow::Result<()> {
    const SUBSCRIBERS: usize = 1000;
    let served = Arc::new(serve(true).await?);
    let engine = served.manager_state.engine.clone();
    let force_cancel = shared::execution::ExecutionActionRequest { action: shared::ExecutionAction::ForceCancel };
    let long_execution = || {
        serde_json::from_value::<shared::NewExecution>(
            serde_json::json!({"workflow_id": "install", "deployment_id": "d", "parameters": {"duration_seconds": 3600}}),
        )
    };

    // activating -> activated in the engine, before any subscriber connects:
    // from force-cancelling the one remaining execution (a commit, the
    // runner's wake-up, then the commit that ends it and activates) to an
    // in-process subscriber of the engine seeing `activated`.
    let mut in_engine = Vec::new();
    for _ in 0..20 {
        let execution = engine.create_execution(long_execution()?, "admin".into(), false).await?;
        engine.activate(manager::engine::machine::Activation::by("admin")).await?;
        let mut changes = engine.subscribe();
        let watcher = tokio::spawn(async move {
            loop {
                if changes.recv().await?.status.status == MaintenanceState::Activated {
                    return anyhow::Ok(Instant::now());
                }
            }
        });
        let cancelled = Instant::now();
        engine.act(execution.id, force_cancel).await?;
        let activated = tokio::time::timeout(Duration::from_secs(30), watcher).await.context("activated")???;
        in_engine.push(activated.saturating_duration_since(cancelled));
        engine.deactivate("admin".into()).await?;
    }

    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(SUBSCRIBERS);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::channel::<(MaintenanceState, Instant)>(SUBSCRIBERS * 4);
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    for _ in 0..SUBSCRIBERS {
        let (client, served, ready, seen) = (client.clone(), served.clone(), ready_tx.clone(), seen_tx.clone());
        tokio::spawn(async move {
            let url = format!("{}/api/v3.1/maintenance/events", served.base);
            let response = client.get(url).header(shared::api::TOKEN_HEADER, &served.token).send().await?;
            let mut body = response.bytes_stream();
            let mut buffer = shared::sse::SseBuffer::default();
            let mut first = true;
            while let Some(chunk) = body.next().await {
                buffer.push(&chunk?);
                while let Some(event) = buffer.next_event() {
                    if event.name != "status" {
                        continue;
                    }
                    let status: MaintenanceStatus = serde_json::from_str(&event.data)?;
                    if first {
                        first = false;
                        let _ = ready.send(()).await;
                    } else {
                        let _ = seen.send((status.status, Instant::now())).await;
                    }
                }
            }
            anyhow::Ok(())
        });
    }
    for _ in 0..SUBSCRIBERS {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await.context("subscribers connecting")?;
    }
    // Activate with nothing running: every subscriber gets `activated`.
    // Events are published before the response is written, so the clock starts
    // when the request is sent.
    let sent = Instant::now();
    let acknowledged = {
        let response = client
            .post(format!("{}/api/v3.1/maintenance/activate", served.base))
            .header(shared::api::TOKEN_HEADER, &served.token)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 200);
        Instant::now()
    };
    let mut delays = Vec::new();
    while delays.len() < SUBSCRIBERS {
        let (state, at) = tokio::time::timeout(Duration::from_secs(30), seen_rx.recv()).await?.context("event")?;
        if state == MaintenanceState::Activated {
            delays.push(at.saturating_duration_since(sent));
        }
    }
    delays.sort();
    println!("## Activation fan-out: {SUBSCRIBERS} SSE subscribers\n");
    println!(
        "from sending the activate request to each subscriber's `activated` event: p50 {}, p99 {}, last {} \
         (target p99 < 50 ms); the activate response itself took {}\n",
        ms(delays[SUBSCRIBERS / 2]),
        ms(delays[SUBSCRIBERS * 99 / 100]),
        ms(delays[SUBSCRIBERS - 1]),
        ms(acknowledged.duration_since(sent))
    );
    engine.deactivate("admin".into()).await?;
    while seen_rx.try_recv().is_ok() {}

    // activating -> activated after the last execution ends: cancel it and time
    // the event at the first and at the last of the subscribers. Each round
    // starts once every subscriber has seen `activating` (otherwise the
    // activating fan-out still in progress would be timed too).
    let (mut first, mut last) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let execution = engine.create_execution(long_execution()?, "admin".into(), false).await?;
        engine.activate(manager::engine::machine::Activation::by("admin")).await?;
        await_states(&mut seen_rx, MaintenanceState::Activating, SUBSCRIBERS).await?;
        let cancelled = Instant::now();
        engine.act(execution.id, force_cancel).await?;
        let arrivals = await_states(&mut seen_rx, MaintenanceState::Activated, SUBSCRIBERS).await?;
        first.push(arrivals[0].saturating_duration_since(cancelled));
        last.push(arrivals[SUBSCRIBERS - 1].saturating_duration_since(cancelled));
        engine.deactivate("admin".into()).await?;
        await_states(&mut seen_rx, MaintenanceState::Deactivated, SUBSCRIBERS).await?;
    }
    println!(
        "from force-cancelling the last execution to `activated` (target < 10 ms; the transition is in the same \
         commit as the execution's end; 20 samples each): in the engine (no subscribers) {}; with 1 000 \
         subscribers (their clients parse the streams on the same cores), at the first {}; at the last {}\n",
        spread(&mut in_engine),
        spread(&mut first),
        spread(&mut last)
    );
    Ok(())
}

/// "p50 …, p90 …, max …" of `samples` (sorted in place).
fn spread(samples: &mut [Duration]) -> String {
    samples.sort();
    let at = |fraction: f64| ms(samples[((samples.len() as f64 * fraction) as usize).min(samples.len() - 1)]);
    format!("p50 {}, p90 {}, max {}", at(0.5), at(0.9), at(1.0))
}

/// Waits until `count` subscribers have reported `state` (ignoring other
/// states) and returns when each did, earliest first.
async fn await_states(
    seen: &mut tokio::sync::mpsc::Receiver<(MaintenanceState, Instant)>,
    state: MaintenanceState,
    count: usize,
) -> anyhow::Result<Vec<Instant>> {
    let mut arrivals = Vec::with_capacity(count);
    while arrivals.len() < count {
        let (seen_state, at) = tokio::time::timeout(Duration::from_secs(30), seen.recv()).await?.context("event")?;
        if seen_state == state {
            arrivals.push(at);
        }
    }
    // A subscriber can be preempted between taking its time and sending it.
    arrivals.sort();
    Ok(arrivals)
}

fn process_figures(root: &Path) -> anyhow::Result<()> {
    let binary = |name: &str| root.join("target/release").join(name);
    if !binary("manager").is_file() || !binary("cfy").is_file() {
        bail!("build the release binaries first: cargo build --release -p manager -p cfy");
    }
    let data = tempfile::tempdir()?;
    let mut startups = Vec::new();
    let mut rss_kib = 0;
    let mut address = String::new();
    let mut child = None;
    for round in 0..5 {
        let started = Instant::now();
        let mut process = Command::new(binary("manager"))
            .args(["--bind", "127.0.0.1:0", "--dist", "/nonexistent", "--data-dir"])
            .arg(data.path())
            .env("MANAGER_ADMIN_PASSWORD", PASSWORD)
            .env("MANAGER_WORKFLOWS", manager::workflows::EXAMPLES)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = process.stderr.take().context("stderr")?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let listening = loop {
            let line = lines.next().context("manager exited")??;
            if let Some((_, rest)) = line.split_once("listening on http://") {
                break rest.split_whitespace().next().unwrap_or_default().to_owned();
            }
        };
        startups.push(started.elapsed());
        std::thread::spawn(move || lines.for_each(drop));
        if round < 4 {
            process.kill()?;
            process.wait()?;
        } else {
            std::thread::sleep(Duration::from_secs(1));
            let status = std::fs::read_to_string(format!("/proc/{}/status", process.id()))?;
            rss_kib = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            address = listening;
            child = Some(process);
        }
    }
    startups.sort();
    let mut cli = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let output = Command::new(binary("cfy"))
            .args(["maintenance-mode", "status"])
            .env("CFY_MANAGER", format!("http://{address}"))
            .env("CFY_PASSWORD", PASSWORD)
            .output()?;
        anyhow::ensure!(output.status.success(), "cfy: {}", String::from_utf8_lossy(&output.stderr));
        cli.push(started.elapsed());
    }
    cli.sort();
    if let Some(mut process) = child {
        process.kill()?;
        process.wait()?;
    }
    println!("## Processes (release builds)\n");
    println!("- `manager` start-up to listening (existing data dir, 5 starts): median {}", ms(startups[2]));
    println!("- `manager` idle RSS 1 s after start: {:.1} MiB", rss_kib as f64 / 1024.0);
    println!(
        "- `cfy maintenance-mode status` wall time (10 runs, includes one argon2 password check on the server): median {}\n",
        ms(cli[5])
    );
    Ok(())
}

fn panel_size(root: &Path) -> anyhow::Result<()> {
    let dist = root.join("dist");
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(&dist).context("dist/: run scripts/build-panel first")? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_owned();
        if ext == "wasm" || ext == "js" {
            let output = Command::new("gzip").arg("-9c").arg(&path).output()?;
            if !output.status.success() {
                bail!("gzip {}: {}", path.display(), output.status);
            }
            sizes.push((ext, std::fs::metadata(&path)?.len(), output.stdout.len() as u64));
        }
    }
    sizes.sort();
    if !["js", "wasm"].iter().all(|ext| sizes.iter().any(|(e, ..)| e == ext)) {
        bail!("dist/ has no panel build (a .wasm and a .js): run scripts/build-panel first");
    }
    let kib = |bytes: u64| bytes as f64 / 1024.0;
    println!("## Admin panel (release build in dist/, gzip -9)\n");
    for (ext, raw, gzipped) in &sizes {
        println!("- {ext}: {raw} bytes ({:.1} KiB), {gzipped} bytes ({:.1} KiB) gzipped", kib(*raw), kib(*gzipped));
    }
    let total: u64 = sizes.iter().map(|(_, _, gzipped)| gzipped).sum();
    let verdict = if total <= PANEL_GZIP_TARGET { "within" } else { "over" };
    println!(
        "- wasm + js gzipped: **{total} bytes** ({:.1} KB, {:.1} KiB): {verdict} the target of {PANEL_GZIP_TARGET} bytes (150 KB)\n",
        total as f64 / 1000.0,
        kib(total)
    );
    Ok(())
}

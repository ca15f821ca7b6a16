//! Instructions per request under `valgrind --tool=callgrind`, a figure the
//! machine's load does not change. The bench runs itself as a child under
//! valgrind:
//!
//! `bench callgrind-gate --store sqlite|postgres --gate on|off|refusing --requests N`
//!
//! opens a manager on that store (one tokio thread), then answers N requests
//! through its router in process (no sockets, no load generator) inside
//! [`answer_requests`], which callgrind's `--toggle-collect` counts alone.
//! `--gate refusing` activates maintenance and sends a gated request with a
//! token: the gate's 503.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use axum::body::Body;
use axum::http::Request;
use manager::config::Config;
use manager::Manager;
use shared::Role;
use tower::ServiceExt;

use crate::{StoreKind, PASSWORD};

/// The first argument that makes `bench` this child.
pub const SUBCOMMAND: &str = "callgrind-gate";
/// The function callgrind counts (`--toggle-collect`).
const COUNTED: &str = "*answer_requests*";
/// The bound on one run under valgrind (the manager opens ~50 times slower).
const BOUND: Duration = Duration::from_secs(600);

/// What the child answers.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// `GET /api/v3.1/version`, deactivated, through the router with or without the gate.
    Version { gated: bool },
    /// `GET /api/v3.1/executions` with a token while activated: the gate's 503.
    Refused,
}

impl Probe {
    fn gate_argument(self) -> &'static str {
        match self {
            Self::Version { gated: true } => "on",
            Self::Version { gated: false } => "off",
            Self::Refused => "refusing",
        }
    }
}

/// Whether `valgrind` is on `PATH`.
pub fn valgrind_found() -> bool {
    Command::new("valgrind").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Runs this bench as the child under callgrind and returns the instructions
/// counted per request.
pub async fn instructions_per_request(store: StoreKind, probe: Probe, requests: usize) -> anyhow::Result<f64> {
    tokio::task::spawn_blocking(move || run_child(store, probe, requests)).await?
}

fn run_child(store: StoreKind, probe: Probe, requests: usize) -> anyhow::Result<f64> {
    let scratch = tempfile::tempdir()?;
    let log = scratch.path().join("valgrind.log");
    let store_argument = match store {
        StoreKind::Postgres => "postgres",
        StoreKind::Sqlite | StoreKind::SqliteTmpfs => "sqlite",
    };
    let mut child = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--toggle-collect={COUNTED}"))
        .arg(format!("--callgrind-out-file={}", scratch.path().join("callgrind.out").display()))
        .arg(format!("--log-file={}", log.display()))
        .arg(std::env::current_exe()?)
        .args([SUBCOMMAND, "--store", store_argument, "--gate", probe.gate_argument(), "--requests"])
        .arg(requests.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("valgrind")?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > BOUND {
            child.kill()?;
            child.wait()?;
            bail!("callgrind ran longer than {BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&log).context("valgrind's log")?;
    ensure!(status.success(), "the callgrind child failed ({status}):\n{log}");
    collected(&log)
        .map(|instructions| instructions as f64 / requests as f64)
        .with_context(|| format!("no `Collected :` line in valgrind's log:\n{log}"))
}

/// The instructions callgrind counted: its log's `Collected : N` line.
fn collected(log: &str) -> Option<u64> {
    log.lines().find_map(|line| line.split_once("Collected :")?.1.trim().parse().ok())
}

/// The child: `callgrind-gate --store … --gate … --requests N`.
pub fn answer_in_process(args: &[String]) -> anyhow::Result<()> {
    let mut store = StoreKind::Sqlite;
    let mut probe = Probe::Version { gated: true };
    let mut requests = 2000_usize;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().with_context(|| format!("{flag} needs a value"))?;
        match (flag.as_str(), value.as_str()) {
            ("--store", "sqlite") => store = StoreKind::Sqlite,
            ("--store", "postgres") => store = StoreKind::Postgres,
            ("--gate", "on") => probe = Probe::Version { gated: true },
            ("--gate", "off") => probe = Probe::Version { gated: false },
            ("--gate", "refusing") => probe = Probe::Refused,
            ("--requests", count) => requests = count.parse().context("--requests")?,
            _ => bail!(
                "usage: bench {SUBCOMMAND} --store sqlite|postgres --gate on|off|refusing --requests N \
                 (not {flag} {value})"
            ),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let data = tempfile::tempdir()?;
    let (router, token, _manager) = runtime.block_on(open(store, probe, data.path()))?;
    answer_requests(&runtime, &router, probe, &token, requests)?;
    println!("{requests} requests answered");
    Ok(())
}

/// A manager on `store`, in the state `probe` needs; its router and a token.
async fn open(store: StoreKind, probe: Probe, data: &Path) -> anyhow::Result<(axum::Router, String, Manager)> {
    let database = match store {
        StoreKind::Postgres => Some(pg_harness::shared().fresh_database()?),
        StoreKind::Sqlite | StoreKind::SqliteTmpfs => None,
    };
    let config = Config {
        dist: "/nonexistent".into(),
        admin_password: Some(PASSWORD.into()),
        workflows: manager::workflows::EXAMPLES.into(),
        replica_id: database.is_some().then(|| "callgrind".to_owned()),
        database,
        // No heartbeat inside the counted loop.
        lease_seconds: 3600,
        ..Config::local(data.to_owned())
    };
    let manager = Manager::open(&config).await?;
    let state = manager.state().clone();
    let token = state.auth.issue_token("admin", Role::Admin).await?.value;
    if matches!(probe, Probe::Refused) {
        state.engine.activate(manager::engine::machine::Activation::by("admin")).await?;
    }
    let dist = Path::new("/nonexistent");
    let router = match probe {
        Probe::Version { gated: false } => manager::router_without_gate(state, dist),
        Probe::Version { gated: true } | Probe::Refused => manager::router(state, dist),
    };
    Ok((router, token, manager))
}

/// What callgrind counts: `requests` requests through `router`, each answer
/// read to its end. Not inlined, so `--toggle-collect` finds it.
#[inline(never)]
fn answer_requests(
    runtime: &tokio::runtime::Runtime,
    router: &axum::Router,
    probe: Probe,
    token: &str,
    requests: usize,
) -> anyhow::Result<()> {
    runtime.block_on(async {
        for _ in 0..requests {
            let (request, expected) = match probe {
                Probe::Version { .. } => (Request::get("/api/v3.1/version").body(Body::empty())?, 200),
                Probe::Refused => (
                    Request::get("/api/v3.1/executions").header(shared::api::TOKEN_HEADER, token).body(Body::empty())?,
                    503,
                ),
            };
            let response = router.clone().oneshot(request).await?;
            ensure!(response.status() == expected, "{probe:?}: {}", response.status());
            axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        }
        anyhow::Ok(())
    })
}

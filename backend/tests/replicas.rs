//! SPEC §8: several replicas on one PostgreSQL database act as one manager.
//! Real replicas (each its own pool, listener and heartbeat) on a real,
//! throwaway PostgreSQL server (pg-harness), over real HTTP. These run on
//! PostgreSQL whatever `MANAGER_TEST_STORE` says.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{assert_error, Api, ManagerProcess, ADMIN_PASSWORD, LONG, PATIENCE};
use futures_util::future::join_all;
use manager::config::Config;
use manager::Manager;
use shared::{ErrorCode, MaintenanceState};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// One replica running inside the test process.
struct Replica {
    api: Api,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _data_dir: TempDir,
}

impl Replica {
    async fn start(url: &str, id: &str) -> Self {
        Self::start_with_lease(url, id, 10).await
    }

    async fn start_with_lease(url: &str, id: &str, lease_seconds: u64) -> Self {
        Self::start_with(url, id, |config| Config { lease_seconds, ..config }).await
    }

    async fn start_with(url: &str, id: &str, adjust: impl FnOnce(Config) -> Config) -> Self {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let config = adjust(config(data_dir.path(), url, id));
        let manager = Manager::open(&config).await.expect("open replica");
        let listener = TcpListener::bind(&config.bind).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(manager.serve(listener, shutdown.clone()));
        let api = Api::anonymous(address).signed_in("admin", ADMIN_PASSWORD).await;
        Self { api, shutdown, server, _data_dir: data_dir }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.server).await.expect("graceful stop").unwrap().unwrap();
    }
}

fn config(data_dir: &Path, url: &str, id: &str) -> Config {
    Config {
        dist: "/nonexistent-dist".into(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        workflows: manager::workflows::EXAMPLES.into(),
        database: Some(url.to_owned()),
        replica_id: Some(id.to_owned()),
        // Long enough that a loaded 2-core machine renews it in time; the
        // tests of dead replicas set their own.
        lease_seconds: 10,
        ..Config::local(data_dir.to_owned())
    }
}

/// `n` replicas `r1`…`rn` on a fresh database, started one after the other.
async fn cluster(n: usize) -> (String, Vec<Replica>) {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let mut replicas = Vec::new();
    for index in 1..=n {
        replicas.push(Replica::start(&url, &format!("r{index}")).await);
    }
    (url, replicas)
}

async fn wait_until<F: AsyncFn() -> bool>(what: &str, condition: F) {
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Replicas starting together on an empty database: the schema is made
/// once (under the migration lock), the first admin once, and all serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_on_an_empty_database_migrate_once_and_all_serve() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let replicas = join_all((1..=3).map(|index| {
        let url = url.clone();
        async move { Replica::start(&url, &format!("r{index}")).await }
    }))
    .await;
    for replica in &replicas {
        assert_eq!(replica.api.status().await.status, MaintenanceState::Deactivated);
    }
    // postgresql://postgres@/NAME?host=…
    let database = url.split_once("@/").and_then(|(_, rest)| rest.split('?').next()).expect("database name");
    let server = pg_harness::shared();
    // One row per migration: each ran once.
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().count();
    assert_eq!(server.psql(database, "SELECT COUNT(*) FROM schema_migrations").unwrap().trim(), migrations.to_string());
    assert_eq!(server.psql(database, "SELECT COUNT(*) FROM users").unwrap().trim(), "1");
    let listed = replicas[0].api.get("/maintenance/replicas").await;
    assert_eq!(listed.status(), 200);
    let listed: shared::api::ReplicasResponse = listed.json().await.unwrap();
    let ids: Vec<_> = listed.items.iter().map(|replica| replica.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2", "r3"]);
    for replica in replicas {
        replica.stop().await;
    }
}

/// One manager whichever replica answers: a token minted on one works on
/// all; revoking it on one ends its event streams on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tokens_made_on_one_replica_work_on_all_and_revocation_ends_streams_everywhere() {
    let (_, replicas) = cluster(3).await;
    let token = replicas[0].api.token.clone().expect("token");
    let mut streams = Vec::new();
    for replica in &replicas {
        let api = Api { token: Some(token.clone()), ..replica.api.clone() };
        assert_eq!(api.get("/maintenance").await.status(), 200, "the token works on every replica");
        let mut stream = api.events().await;
        stream.next().await;
        streams.push(stream);
    }
    let id = token.split('.').next().unwrap();
    let revoke = replicas[2].api.request(reqwest::Method::DELETE, &format!("/tokens/{id}")).send().await.unwrap();
    assert_eq!(revoke.status(), 204);
    for (index, stream) in streams.iter_mut().enumerate() {
        let ended = tokio::time::timeout(PATIENCE, async { while stream.next_any().await.is_some() {} }).await;
        assert!(ended.is_ok(), "replica r{}'s stream did not end", index + 1);
    }
    for replica in &replicas {
        let api = Api { token: Some(token.clone()), ..replica.api.clone() };
        assert_eq!(api.get("/maintenance").await.status(), 401);
    }
    for replica in replicas {
        replica.stop().await;
    }
}

/// An activate on one replica is applied by the others at once: they refuse
/// new executions, and their event streams send it with the same `id:`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_activate_on_one_replica_reaches_the_others_with_the_same_epoch() {
    let (_, replicas) = cluster(3).await;
    let mut streams = Vec::new();
    for replica in &replicas[1..] {
        let mut stream = replica.api.events().await;
        stream.next().await;
        streams.push(stream);
    }
    let response = replicas[0].api.post("/maintenance/activate", None).await;
    assert_eq!(response.status(), 200);
    let epoch: u64 = response.headers()[shared::api::EPOCH_HEADER].to_str().unwrap().parse().unwrap();
    let acknowledged = Instant::now();
    for replica in &replicas[1..] {
        // Applied within the SPEC's 100 ms (the bench measures it; here the
        // loaded CI machine only has to apply it, and never go back).
        wait_until("the activate to reach another replica", async || {
            replica.api.create(LONG, false).await.status() == 503
        })
        .await;
    }
    println!("applied on r2 and r3 within {:?} of the acknowledgement", acknowledged.elapsed());
    for stream in &mut streams {
        let (id, status) = stream.next_with_epoch().await;
        assert_eq!(id, epoch, "the same epoch on every replica");
        assert_eq!(status.status, MaintenanceState::Activated);
    }
    for replica in replicas {
        replica.stop().await;
    }
}

/// Creates spread over three replicas race an activate on one: none is
/// admitted after the activate's acknowledgement; every admitted one is a
/// remaining execution of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn creates_on_three_replicas_racing_an_activate_are_admitted_only_before_it() {
    const ROUNDS: usize = 20;
    const CREATES_PER_ROUND: usize = 200;
    let (_, replicas) = cluster(3).await;
    let (mut admitted_total, mut refused_total) = (0, 0);
    for round in 0..ROUNDS {
        let creates: Vec<_> = (0..CREATES_PER_ROUND)
            .map(|n| {
                let api = replicas[n % replicas.len()].api.clone();
                tokio::spawn(async move {
                    // Spread over ~100 ms, so that they straddle the activate
                    // (a burst would queue every create for the pool ahead of it).
                    tokio::time::sleep(Duration::from_micros(500 * n as u64)).await;
                    let response = api.create(LONG, false).await;
                    match response.status().as_u16() {
                        201 => Ok(response.json::<shared::Execution>().await.unwrap().id),
                        503 => Err(response.json::<shared::ApiError>().await.unwrap().error_code),
                        other => panic!("unexpected status {other}"),
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let activated = replicas[round % replicas.len()].api.activate(None).await;
        let remaining: HashSet<Uuid> = activated.remaining_executions.iter().map(|e| e.id).collect();
        let refusal = match activated.status {
            MaintenanceState::Activating => ErrorCode::EnteringMaintenanceMode,
            _ => ErrorCode::MaintenanceModeActive,
        };
        let mut admitted = Vec::new();
        for outcome in join_all(creates).await {
            match outcome.unwrap() {
                Ok(id) => admitted.push(id),
                Err(code) => {
                    assert_eq!(code, refusal, "round {round}");
                    refused_total += 1;
                }
            }
        }
        for id in &admitted {
            assert!(remaining.contains(id), "round {round}: {id} got 201 but is not a remaining execution");
        }
        assert_eq!(remaining.len(), admitted.len(), "round {round}: remaining holds exactly the admitted");
        admitted_total += admitted.len();
        let api = &replicas[0].api;
        for id in &admitted {
            let response =
                api.post(&format!("/executions/{id}"), Some(serde_json::json!({"action": "force-cancel"}))).await;
            if response.status() != 200 {
                let execution = api.execution(*id).await;
                panic!("round {round}: force-cancel {id}: {} ({:?})", response.status(), execution);
            }
        }
        api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
        api.deactivate().await;
    }
    println!("admitted {admitted_total}, refused {refused_total} over {ROUNDS} rounds on 3 replicas");
    assert!(refused_total > 0, "no create was ever refused: the test raced nothing");
    assert!(admitted_total > 0, "no create was ever admitted: the test raced nothing");
    for replica in replicas {
        replica.stop().await;
    }
}

/// The last executions end at the same moment on two replicas: `activated`
/// happens once (one history row, one event per subscriber).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_finishers_on_two_replicas_activate_exactly_once() {
    let (_, replicas) = cluster(2).await;
    for round in 0..5 {
        let first = replicas[0].api.create(1.0, false).await;
        let second = replicas[1].api.create(1.0, false).await;
        assert_eq!((first.status().as_u16(), second.status().as_u16()), (201, 201));
        let mut streams = Vec::new();
        for replica in &replicas {
            let mut stream = replica.api.events().await;
            stream.next().await;
            streams.push(stream);
        }
        assert_eq!(replicas[0].api.activate(None).await.status, MaintenanceState::Activating);
        for stream in &mut streams {
            let mut activated = 0;
            // Until the stream has shown `activated`, then a little longer for a second one.
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                let wait =
                    if activated > 0 { Duration::from_millis(500) } else { deadline - tokio::time::Instant::now() };
                match tokio::time::timeout(wait, stream.next_or_end()).await {
                    Ok(Some(status)) if status.status == MaintenanceState::Activated => activated += 1,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
            assert_eq!(activated, 1, "round {round}: one `activated` event per subscriber");
        }
        let history: shared::api::ListResponse<shared::MaintenanceTransition> =
            replicas[1].api.get("/maintenance/history?_size=1000").await.json().await.unwrap();
        let activations = history.items.iter().filter(|step| step.to == MaintenanceState::Activated).count();
        assert_eq!(activations, round + 1, "round {round}: one history row per activation");
        replicas[1].api.deactivate().await;
    }
    for replica in replicas {
        replica.stop().await;
    }
}

/// An execution runs on replica A; its output streams live on replica B
/// (lines stored on A reach B's stream while the program runs), and a
/// cancel sent to B stops the program on A.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn output_streams_live_on_another_replica_and_a_cancel_there_reaches_the_owner() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let workflows = tempfile::tempdir().unwrap();
    let flag = workflows.path().join("go");
    common::write_workflow(
        workflows.path(),
        "waiting.sh",
        &format!(
            "while [ ! -e '{}' ]; do sleep 0.02; done\necho first\ntrap 'exit 0' TERM\nwhile :; do sleep 0.05; done",
            flag.display()
        ),
    );
    let with_workflows = |config: Config| Config { workflows: workflows.path().to_owned(), ..config };
    let a = Replica::start_with(&url, "a", with_workflows).await;
    let b = Replica::start_with(&url, "b", with_workflows).await;
    let created =
        a.api.post("/executions", Some(serde_json::json!({"workflow_id": "waiting", "deployment_id": "web"}))).await;
    assert_eq!(created.status(), 201);
    let execution: shared::Execution = created.json().await.unwrap();
    // Open on B before any line exists: the line must come live, not from the first read.
    let stream = b.api.get(&format!("/executions/{}/events/stream", execution.id)).await;
    let mut events = common::Events::from_response(stream);
    std::fs::write(&flag, "").unwrap();
    let first = tokio::time::timeout(PATIENCE, events.next_any()).await.expect("a line in time").expect("a line");
    assert_eq!((first.name.as_str(), first.id.as_deref()), ("line", Some("0")));
    assert!(!b.api.execution(execution.id).await.status.is_end(), "the line came while it ran");

    assert_eq!(b.api.cancel(execution.id).await.status, shared::ExecutionStatus::Cancelling);
    let end = loop {
        let event = tokio::time::timeout(PATIENCE, events.next_any()).await.expect("in time").expect("an `end`");
        if event.name != "line" {
            break event;
        }
    };
    assert_eq!(end.name, "end");
    let ended: shared::Execution = serde_json::from_str(&end.data).unwrap();
    assert_eq!(ended.status, shared::ExecutionStatus::Cancelled, "{}", ended.error);
    a.stop().await;
    b.stop().await;
}

/// An execution recorded as running on a replica that runs no program for
/// it (its start's commit went through while the replica stopped waiting)
/// does not stay `started` for ever: the replica's reaper fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_execution_recorded_as_running_here_that_is_not_is_failed() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let a = Replica::start_with_lease(&url, "a", 3).await;
    let database = url.split_once("@/").and_then(|(_, rest)| rest.split('?').next()).expect("database name");
    let id = Uuid::new_v4();
    pg_harness::shared()
        .psql(
            database,
            &format!(
                "INSERT INTO executions (id, workflow_id, deployment_id, status, parameters, created_at, started_at, \
                 created_by, owner) VALUES ('{id}', 'install', 'web', 'started', '{{}}', \
                 '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 'admin', 'a')"
            ),
        )
        .expect("insert");
    wait_until("the orphan to be failed", async || a.api.execution(id).await.status.is_end()).await;
    let failed = a.api.execution(id).await;
    assert_eq!(failed.status, shared::ExecutionStatus::Failed);
    assert!(failed.error.contains("runs no program for it"), "{}", failed.error);
    a.stop().await;
}

/// A replica as a process of its own (to SIGKILL it), with a 2 s lease.
async fn replica_process(data_dir: &Path, url: &str, id: &str) -> ManagerProcess {
    ManagerProcess::start_with_env(
        data_dir,
        &[("MANAGER_DATABASE_URL", url), ("MANAGER_REPLICA_ID", id), ("MANAGER_LEASE_SECONDS", "2")],
    )
    .signed_in()
    .await
}

/// SIGKILL the replica running the last remaining execution: once its lease
/// runs out a survivor fails that execution (naming the dead replica) and
/// the manager becomes `activated`, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_survivor_fails_a_dead_replicas_executions_after_its_lease_and_activation_completes() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica_process(dir_a.path(), &url, "a").await;
    let b = replica_process(dir_b.path(), &url, "b").await;
    let on_a = a.api.start(LONG).await;
    let on_b = b.api.start(LONG).await;
    assert_eq!(b.api.activate(None).await.remaining_executions.len(), 2);
    b.api.force_cancel(on_b.id).await;
    b.api.wait_for_end(on_b.id).await;
    assert_eq!(b.api.status().await.status, MaintenanceState::Activating, "a's execution remains");

    let killed = Instant::now();
    a.kill();
    let status = b.api.wait_for_status(|status| status.status == MaintenanceState::Activated).await;
    println!("activated {:?} after the SIGKILL (lease 2 s)", killed.elapsed());
    assert!(killed.elapsed() >= Duration::from_secs(1), "failed before the lease could run out");
    assert!(status.remaining_executions.is_empty());
    let failed = b.api.execution(on_a.id).await;
    assert_eq!(failed.status, shared::ExecutionStatus::Failed);
    assert!(failed.error.contains("replica `a`"), "{}", failed.error);
    let history: shared::api::ListResponse<shared::MaintenanceTransition> =
        b.api.get("/maintenance/history").await.json().await.unwrap();
    assert_eq!(history.items.iter().filter(|step| step.to == MaintenanceState::Activated).count(), 1);
}

/// A replica that restarts (same name) fails its own interrupted executions
/// at once, and only those: another replica's execution keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_replica_fails_only_its_own_executions() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica_process(dir_a.path(), &url, "a").await;
    let b = replica_process(dir_b.path(), &url, "b").await;
    let on_a = a.api.start(LONG).await;
    let on_b = b.api.start(LONG).await;
    a.kill();
    let a = replica_process(dir_a.path(), &url, "a").await;
    let failed = a.api.execution(on_a.id).await;
    assert_eq!(failed.status, shared::ExecutionStatus::Failed);
    assert!(failed.error.contains("replica `a`"), "{}", failed.error);
    // Well past b's lease: b renews it, so its execution is untouched.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(a.api.execution(on_b.id).await.status, shared::ExecutionStatus::Started);
    b.api.force_cancel(on_b.id).await;
    b.api.wait_for_end(on_b.id).await;
}

/// PostgreSQL stops for a few seconds: each replica's gate keeps enforcing
/// what it last applied and public routes answer; what needs the database
/// gets 503 `database_unavailable` with `Retry-After` in bounded time (never
/// a 500); nothing acknowledged is lost; replicas recover by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_database_is_down_replicas_enforce_the_last_state_and_answer_503() {
    let server = pg_harness::PgServer::start().expect("a PostgreSQL server of this test's own");
    let url = server.fresh_database().expect("database");
    let a = Replica::start(&url, "a").await;
    let b = Replica::start(&url, "b").await;
    let activated = a.api.activate(Some("before the outage")).await;
    assert_eq!(activated.status, MaintenanceState::Activated);
    wait_until("b to apply the activate", async || b.api.status().await.status == MaintenanceState::Activated).await;

    // Load on both replicas through the outage: reads, queued creates (admitted
    // while activated), the status. Never a 500; every 201 stays.
    let load = CancellationToken::new();
    let loaders: Vec<_> = [&a, &b]
        .into_iter()
        .flat_map(|replica| [replica.api.clone(), replica.api.clone()])
        .map(|api| {
            let load = load.clone();
            tokio::spawn(async move {
                let (mut statuses, mut acknowledged) = (Vec::new(), Vec::new());
                while !load.is_cancelled() {
                    let created = api.create(1.0, true).await;
                    statuses.push(created.status().as_u16());
                    if created.status() == 201 {
                        acknowledged.push(created.json::<shared::Execution>().await.unwrap().id);
                    }
                    statuses.push(api.get("/maintenance").await.status().as_u16());
                    statuses.push(api.get("/maintenance/history").await.status().as_u16());
                }
                (statuses, acknowledged)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.stop().expect("stop PostgreSQL");
    for replica in [&a, &b] {
        // The gate: memory only.
        assert_error(replica.api.get("/executions").await, 503, ErrorCode::MaintenanceModeActive).await;
        // Public routes.
        assert_eq!(replica.api.get("/version").await.status(), 200);
        wait_until("/status to say the database is unavailable", async || {
            let status: shared::api::ServerStatus = replica.api.get("/status").await.json().await.unwrap();
            status.database == "unavailable"
        })
        .await;
        // What needs the database: 503 + Retry-After, within the bounded call time.
        for request in [
            replica.api.request(reqwest::Method::GET, "/maintenance/history"),
            replica.api.request(reqwest::Method::POST, "/maintenance/deactivate"),
            replica.api.http.post(replica.api.url("/tokens")).basic_auth("admin", Some(ADMIN_PASSWORD)),
        ] {
            let started = Instant::now();
            let response = request.send().await.unwrap();
            assert!(started.elapsed() < Duration::from_secs(10), "answered in bounded time");
            assert!(response.headers().contains_key("retry-after"));
            assert_error(response, 503, ErrorCode::DatabaseUnavailable).await;
        }
        // The metrics still answer (what needs the database left out), and say it is down.
        let metrics = reqwest::get(format!("{}/metrics", replica.api.base)).await.unwrap();
        assert_eq!(metrics.status(), 200);
        let text = metrics.text().await.unwrap();
        assert!(
            text.contains("manager_database_up 0") && text.contains("manager_maintenance_state{state=\"activated\"} 1"),
            "{text}"
        );
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    server.start_again().expect("start PostgreSQL again");
    wait_until("a to reach the database again", async || a.api.get("/maintenance/history").await.status() == 200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    load.cancel();
    let (mut statuses, mut acknowledged) = (Vec::new(), Vec::new());
    for loader in loaders {
        let (mine, ids) = loader.await.unwrap();
        statuses.extend(mine);
        acknowledged.extend(ids);
    }
    assert!(statuses.iter().all(|status| *status < 500 || *status == 503), "only 503s: {statuses:?}");
    assert!(statuses.contains(&503), "the outage was seen");
    assert!(!acknowledged.is_empty(), "creates were acknowledged");
    for id in &acknowledged {
        assert_eq!(b.api.execution(*id).await.status, shared::ExecutionStatus::Queued, "acknowledged {id} was kept");
    }
    println!("{} requests under the outage, {} creates acknowledged and kept", statuses.len(), acknowledged.len());
    // Nothing acknowledged was lost; the refused deactivate did not happen.
    let history: shared::api::ListResponse<shared::MaintenanceTransition> =
        a.api.get("/maintenance/history").await.json().await.unwrap();
    assert_eq!(history.items.len(), 2, "activating and activated, nothing else");
    assert_eq!(history.items[0].reason, "before the outage");
    // They agree again: a change on one reaches the other.
    wait_until("b to reach the database again", async || b.api.get("/maintenance/history").await.status() == 200).await;
    assert_eq!(b.api.deactivate().await.status, MaintenanceState::Deactivated);
    wait_until("a to apply b's deactivate", async || a.api.status().await.status == MaintenanceState::Deactivated)
        .await;
    for replica in [&a, &b] {
        wait_until("/status to say the database is available", async || {
            let status: shared::api::ServerStatus = replica.api.get("/status").await.json().await.unwrap();
            status.database == "available"
        })
        .await;
    }
    a.stop().await;
    b.stop().await;
}

/// SPEC §10 across replicas: every replica's scheduler wakes for a window's
/// start and end, the database decides once. One window row, one start, one
/// activation, one end in the history; every replica shows each step, and the
/// drain deadline's steps happen once too.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_start_and_end_a_window_exactly_once() {
    let (_url, replicas) = cluster(3).await;
    let at = |millis: i64| {
        shared::Timestamp::from_datetime(
            shared::Timestamp::now().as_datetime() + chrono::TimeDelta::milliseconds(millis),
        )
    };
    let execution = replicas[2].api.start(LONG).await;
    let response = replicas[0]
        .api
        .post(
            "/maintenance/windows",
            Some(serde_json::json!({"starts_at": at(1_500), "ends_at": at(4_500), "notice_seconds": 1,
                "drain_deadline_seconds": 1})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let window: shared::Window = response.json().await.unwrap();

    for replica in &replicas {
        replica.api.wait_for_status(|s| s.status == MaintenanceState::Activated).await;
    }
    assert_eq!(replicas[0].api.execution(execution.id).await.status, shared::ExecutionStatus::Cancelled);
    for replica in &replicas {
        replica.api.wait_for_status(|s| s.status == MaintenanceState::Deactivated && s.upcoming.is_none()).await;
    }
    let history: shared::api::ListResponse<shared::MaintenanceTransition> =
        replicas[1].api.get("/maintenance/history?_size=100").await.json().await.unwrap();
    let mut events: Vec<_> = history.items.iter().map(|row| row.event).collect();
    events.reverse();
    use shared::HistoryEvent::*;
    assert_eq!(events, [WindowScheduled, WindowStarted, Activate, DrainCancel, Activated, WindowEnded, Deactivated]);
    assert!(history.items.iter().all(|row| row.window_id == Some(window.id)));
    for replica in replicas {
        replica.stop().await;
    }
}

/// SPEC §11's propagation metric: every live replica appears in `/metrics`
/// with the changes it has yet to apply, as this replica sees it.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_name_every_live_replica_with_its_epoch_lag() {
    let (_url, replicas) = cluster(3).await;
    replicas[0].api.activate(None).await;
    let deadline = Instant::now() + PATIENCE;
    loop {
        let scrape = common::metrics::scrape(&replicas[1].api).await;
        let lags: Vec<(String, f64)> = scrape
            .samples
            .iter()
            .filter(|sample| sample.metric == "manager_replica_epoch_lag")
            .filter_map(|sample| match sample.value {
                prometheus_parse::Value::Gauge(lag) => Some((sample.labels.get("replica")?.to_owned(), lag)),
                _ => None,
            })
            .collect();
        let mut names: Vec<&str> = lags.iter().map(|(name, _)| name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["r1", "r2", "r3"], "{:?}", scrape.samples);
        // Each renews its lease (and says its epoch) after applying a change.
        if lags.iter().all(|(_, lag)| *lag == 0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "lags never reached 0: {lags:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for replica in replicas {
        replica.stop().await;
    }
}

/// SPEC §11 with replicas: three replicas deliver each event once per URL
/// (one replica holds each URL while its lease lives); SIGKILL the one
/// delivering and a survivor takes the URL over after its lease, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_deliver_each_event_once_per_url_and_a_survivor_takes_over() {
    use common::receiver::{assert_in_order_once, summary, Receiver, SECRET};
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let hooks = format!("{},{}", a.url(), b.url());
    let dirs: Vec<TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut replicas = Vec::new();
    for (index, dir) in dirs.iter().enumerate() {
        let env = [
            ("MANAGER_DATABASE_URL", url.as_str()),
            ("MANAGER_REPLICA_ID", &format!("r{}", index + 1)),
            // Long enough that a loaded machine renews every claim in time.
            ("MANAGER_LEASE_SECONDS", "4"),
            ("MANAGER_WEBHOOKS", hooks.as_str()),
            ("MANAGER_WEBHOOK_SECRET", SECRET),
        ];
        replicas.push(Some(ManagerProcess::start_with_env(dir.path(), &env).signed_in().await));
    }
    let apis: Vec<Api> = replicas.iter().map(|replica| replica.as_ref().expect("started").api.clone()).collect();
    let api = |index: usize| apis[index].clone();
    for index in 0..3 {
        api(index).activate(None).await;
        api(index).deactivate().await;
    }
    use shared::HistoryEvent::{Activate, Activated, Deactivated};
    for receiver in [&a, &b] {
        let got = receiver.wait_for_count(9).await;
        assert_eq!(got.iter().map(|e| e.event).collect::<Vec<_>>(), [Activate, Activated, Deactivated].repeat(3));
    }
    // Time for a second delivery, if any replica were to make one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for receiver in [&a, &b] {
        let got: Vec<_> = receiver.received().iter().map(common::receiver::Received::event).collect();
        assert_eq!(got.len(), 9, "each event once per URL: {:?}", summary(&got));
        assert_in_order_once(&got);
    }

    let report: shared::Webhooks = api(0).get("/maintenance/webhooks").await.json().await.unwrap();
    let holder = report.webhooks[0].delivering_replica.clone();
    assert!(["r1", "r2", "r3"].contains(&holder.as_str()), "{report:?}");
    let index = holder[1..].parse::<usize>().unwrap() - 1;
    replicas[index].take().unwrap().kill();
    let survivor = (index + 1) % 3;
    api(survivor).activate(Some("after the kill")).await;
    api(survivor).deactivate().await;
    let got = a.wait_for(LONG_PATIENCE, |got| got.len() >= 12).await;
    assert_in_order_once(&got);
    assert_eq!(got[9].status.reason, "after the kill");
    let deadline = Instant::now() + PATIENCE;
    let report = loop {
        let report: shared::Webhooks = api(survivor).get("/maintenance/webhooks").await.json().await.unwrap();
        if report.webhooks[0].backlog == 0 || Instant::now() > deadline {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let now = &report.webhooks[0];
    assert!(!now.delivering_replica.is_empty() && now.delivering_replica != holder, "{now:?}");
    assert_eq!((now.backlog, now.delivered), (0, 12));
    b.wait_for_count(12).await;
}

/// Longer than a lease and a recheck on a loaded machine.
const LONG_PATIENCE: Duration = Duration::from_secs(40);

/// A replica that comes back (same name, SIGKILLed) without a URL in its
/// configuration no longer holds that URL: a replica that has it delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_restarted_without_a_webhook_lets_another_deliver_it() {
    use common::receiver::{assert_in_order_once, Receiver, SECRET};
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let receiver = Receiver::start().await;
    let hook = receiver.url();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let with_hook = |id: &'static str| {
        vec![
            ("MANAGER_DATABASE_URL", url.clone()),
            ("MANAGER_REPLICA_ID", id.to_owned()),
            ("MANAGER_LEASE_SECONDS", "4".to_owned()),
            ("MANAGER_WEBHOOKS", hook.clone()),
            ("MANAGER_WEBHOOK_SECRET", SECRET.to_owned()),
        ]
    };
    let start = |dir: &Path, env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(key, value)| (*key, value.as_str())).collect();
        ManagerProcess::start_with_env(dir, &env)
    };
    let a = start(dir_a.path(), &with_hook("a")).signed_in().await;
    a.api.activate(None).await;
    receiver.wait_for_count(2).await;
    let report: shared::Webhooks = a.api.get("/maintenance/webhooks").await.json().await.unwrap();
    assert_eq!(report.webhooks[0].delivering_replica, "a");

    a.kill();
    let without_hook: Vec<(&str, String)> =
        with_hook("a").into_iter().filter(|(key, _)| !key.contains("WEBHOOK")).collect();
    let a = start(dir_a.path(), &without_hook).signed_in().await;
    let b = start(dir_b.path(), &with_hook("b")).signed_in().await;
    a.api.deactivate().await;
    let got = receiver.wait_for(LONG_PATIENCE, |got| got.len() >= 3).await;
    assert_in_order_once(&got);
    assert_eq!(got[2].event, shared::HistoryEvent::Deactivated);
    let report: shared::Webhooks = b.api.get("/maintenance/webhooks").await.json().await.unwrap();
    assert_eq!(report.webhooks[0].delivering_replica, "b");
    drop((a, b));
}

/// A replica process running the workflows in `workflows`, with a 2 s lease.
async fn replica_running(data_dir: &Path, url: &str, id: &str, workflows: &Path) -> ManagerProcess {
    let workflows = workflows.to_str().expect("a UTF-8 path");
    ManagerProcess::start_with_env(
        data_dir,
        &[
            ("MANAGER_DATABASE_URL", url),
            ("MANAGER_REPLICA_ID", id),
            ("MANAGER_LEASE_SECONDS", "2"),
            ("MANAGER_WORKFLOWS", workflows),
        ],
    )
    .signed_in()
    .await
}

/// The first line execution `id` wrote, once it has.
async fn first_line(api: &Api, id: Uuid) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let page: shared::api::ListResponse<shared::execution::ExecutionEvent> =
            api.get(&format!("/executions/{id}/events")).await.json().await.expect("events JSON");
        if let Some(event) = page.items.first() {
            return event.line.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} wrote nothing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until execution `id` ended, as `api` reads it.
async fn ended(api: &Api, id: Uuid) -> shared::Execution {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let execution = api.execution(id).await;
        if execution.status.is_end() {
            return execution;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} is still {}", execution.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SPEC §8: a second live process with a replica's id would fail and kill
/// that replica's work at its start; it refuses to start instead, naming
/// the id and the other's address, and the first one's work runs on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_process_with_a_live_replicas_id_refuses_to_start_naming_it() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica_process(dir_a.path(), &url, "twin").await;
    let running = a.api.start(LONG).await;
    let address = a.api.base.trim_start_matches("http://").to_owned();

    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_manager"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir_b.path())
        .env("MANAGER_DATABASE_URL", &url)
        .env("MANAGER_REPLICA_ID", "twin")
        .env("MANAGER_LEASE_SECONDS", "2")
        .env("MANAGER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the second process");
    let deadline = Instant::now() + PATIENCE;
    let exit = loop {
        if let Some(exit) = second.try_wait().expect("wait") {
            break exit;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("the second process with a live replica's id started");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().expect("stderr"), &mut stderr).unwrap();
    assert!(!exit.success(), "{stderr}");
    assert!(stderr.contains("replica id `twin` is in use"), "{stderr}");
    assert!(stderr.contains(&address), "names the other's address {address}: {stderr}");
    // The live replica's work was neither failed nor killed.
    assert_eq!(a.api.execution(running.id).await.status, shared::ExecutionStatus::Started);
    assert_eq!(a.api.get("/maintenance/replicas").await.status(), 200);
}

/// SPEC §8: a replica restarted after a crash kills what its programs left
/// running even when a survivor already failed those executions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_restarted_after_a_survivor_reaped_its_execution_kills_the_leftover_group() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let workflows = tempfile::tempdir().unwrap();
    common::write_workflow(workflows.path(), "forking", "#!/bin/sh\nsleep 1000 &\necho \"$!\"\nwait\n");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica_running(dir_a.path(), &url, "a", workflows.path()).await;
    let b = replica_running(dir_b.path(), &url, "b", workflows.path()).await;
    let response =
        a.api.post("/executions", Some(serde_json::json!({"workflow_id": "forking", "deployment_id": "d"}))).await;
    assert_eq!(response.status(), 201);
    let execution: shared::Execution = response.json().await.unwrap();
    assert_eq!(execution.status, shared::ExecutionStatus::Started, "runs on a");
    let grandchild: i32 = first_line(&a.api, execution.id).await.parse().expect("the sleep's pid");

    a.kill();
    let failed = ended(&b.api, execution.id).await;
    assert_eq!(failed.status, shared::ExecutionStatus::Failed);
    assert!(failed.error.contains("`a`"), "{}", failed.error);
    assert!(common::alive(grandchild), "the grandchild outlived its replica (the test needs it to)");

    let _a = replica_running(dir_a.path(), &url, "a", workflows.path()).await;
    common::wait_gone(grandchild).await;
    b.terminate();
}

/// A TCP proxy to a PostgreSQL server's unix socket, whose connections can
/// all be cut at once (a replica's link to the database lost).
struct Proxy {
    port: u16,
    tasks: tokio::task::JoinSet<()>,
}

impl Proxy {
    async fn start(socket: std::path::PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("address").port();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            // Links end with this task (aborted: every socket closes).
            while let Ok((mut client, _)) = listener.accept().await {
                let socket = socket.clone();
                links.spawn(async move {
                    if let Ok(mut server) = tokio::net::UnixStream::connect(&socket).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self { port, tasks }
    }

    /// Closes every connection and refuses new ones.
    async fn cut(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// SPEC §8: a replica cut off from the database kills its programs
/// (SIGKILL, no grace) before its lease runs out; survivors fail the
/// execution only after that, so nothing runs unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_cut_off_from_the_database_kills_its_program_before_survivors_take_it_over() {
    let url = pg_harness::shared().fresh_database().expect("fresh database");
    let socket_dir = url.rsplit_once("?host=").expect("a socket URL").1.to_owned();
    let database = url.split_once("@/").expect("a database").1.split('?').next().expect("a name").to_owned();
    let socket = std::fs::read_dir(&socket_dir)
        .expect("the socket dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(".s.PGSQL.") && !name.ends_with(".lock"))
        })
        .expect("the server's socket");
    let proxy = Proxy::start(socket).await;
    let proxied = format!("postgresql://postgres@127.0.0.1:{}/{database}", proxy.port);

    let workflows = tempfile::tempdir().unwrap();
    let beats = workflows.path().join("beats");
    // Writes the time every 50 ms until it dies; a SIGTERM would say so.
    common::write_workflow(
        workflows.path(),
        "beating",
        &format!(
            "#!/bin/sh\ntrap 'echo term >> {beats}; exit 0' TERM\necho started\nwhile :; do date +%s.%N >> {beats}; sleep 0.05; done\n",
            beats = beats.display()
        ),
    );
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica_running(dir_a.path(), &proxied, "a", workflows.path()).await;
    let b = replica_running(dir_b.path(), &url, "b", workflows.path()).await;
    let response =
        a.api.post("/executions", Some(serde_json::json!({"workflow_id": "beating", "deployment_id": "d"}))).await;
    assert_eq!(response.status(), 201);
    let execution: shared::Execution = response.json().await.unwrap();
    assert_eq!(execution.status, shared::ExecutionStatus::Started, "runs on a");
    assert_eq!(first_line(&a.api, execution.id).await, "started");

    proxy.cut().await;
    let failed = ended(&b.api, execution.id).await;
    assert_eq!(failed.status, shared::ExecutionStatus::Failed);
    assert!(failed.error.contains("`a`") && failed.error.contains("lease"), "{}", failed.error);
    let marked = failed.ended_at.expect("ended_at").as_datetime();
    // The program's last sign of life came before the survivor's mark, and
    // it was killed, not asked to stop.
    let text = std::fs::read_to_string(&beats).expect("the beats file");
    assert!(!text.contains("term"), "the fenced program got a SIGTERM, not a SIGKILL");
    let last: f64 = text.lines().last().expect("a beat").parse().expect("a time");
    let last = chrono::DateTime::from_timestamp_micros((last * 1e6) as i64).expect("a time");
    assert!(last < marked, "the program still ran at {last} after the survivor marked it failed at {marked}");
    // Nothing beats any more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(std::fs::read_to_string(&beats).unwrap(), text, "the program runs on");
    a.kill();
    b.terminate();
}

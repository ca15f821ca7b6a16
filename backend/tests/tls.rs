//! TLS (SPEC §13) against the real `manager` binary: HTTPS verified against
//! the test's own CA, HTTP/2 and HTTP/1.1 by ALPN, SIGHUP swapping the pair
//! for new connections while open ones keep working, a bad pair kept out
//! with the reason in the log, the flags refused one without the other, and
//! handshakes held to the request-head timeout and shed like idle
//! connections.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::{presented, Leaf, TestCa};
use common::{Api, ManagerProcess, ADMIN_PASSWORD, PATIENCE};
use reqwest::Version;
use shared::MaintenanceState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where the manager reads its pair, and the pair's first version written there.
struct PairFiles {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl PairFiles {
    fn with(leaf: &Leaf) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Self { cert: dir.path().join("manager.crt"), key: dir.path().join("manager.key"), _dir: dir };
        leaf.write(&files.cert, &files.key);
        files
    }

    /// The environment that makes the manager serve this pair.
    fn env(&self) -> [(&'static str, String); 2] {
        [("MANAGER_TLS_CERT", path(&self.cert)), ("MANAGER_TLS_KEY", path(&self.key))]
    }
}

fn path(path: &Path) -> String {
    path.to_str().expect("a UTF-8 temp path").to_owned()
}

/// Starts the manager with `env` (pairs of name and value) added.
fn start(data: &Path, env: &[(&str, String)]) -> ManagerProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    ManagerProcess::start_with_env(data, &env)
}

fn hang_up(manager: &ManagerProcess) {
    let sent = Command::new("kill").args(["-HUP", &manager.pid().to_string()]).status().expect("kill -HUP");
    assert!(sent.success());
}

/// The next log line that contains `needle` (others are skipped).
fn log_line_with(manager: &ManagerProcess, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match manager.log.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no log line with {needle:?} within {PATIENCE:?}"),
        }
    }
}

/// `GET /version` over a connection of its own; the certificate presented.
async fn certificate_of_a_new_connection(ca: &TestCa, base: &str) -> Vec<u8> {
    let client = ca.client().pool_max_idle_per_host(0).build().unwrap();
    let response = client.get(format!("{base}/api/v3.1/version")).send().await.expect("HTTPS request");
    assert_eq!(response.status(), 200);
    presented(&response)
}

#[tokio::test(flavor = "multi_thread")]
async fn https_by_alpn_and_sighup_serves_a_new_pair_to_new_connections_and_keeps_open_ones() {
    let ca = TestCa::new("manager test CA");
    let first = ca.issue(1);
    let files = PairFiles::with(&first);
    let data = tempfile::tempdir().unwrap();
    // Held connections must outlive the test's steps, however slow the machine.
    let mut env = files.env().to_vec();
    env.push(("MANAGER_REQUEST_HEAD_TIMEOUT_SECONDS", "300".to_owned()));
    let manager = start(data.path(), &env);
    let base = manager.api.base.clone();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let version = format!("{base}/api/v3.1/version");

    // HTTP/2 for a client that offers it, verified against the test's CA alone.
    let held = ca.client().build().unwrap();
    let response = held.get(&version).send().await.expect("HTTPS request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2, "h2 chosen by ALPN");
    assert_eq!(presented(&response), first.der);
    // HTTP/1.1 for a client that offers only that.
    let http1 = ca.client().http1_only().build().unwrap();
    let response = http1.get(&version).send().await.expect("HTTPS request");
    assert_eq!((response.status().as_u16(), response.version()), (200, Version::HTTP_11));
    // The certificate is really checked: a client trusting another CA is refused.
    let stranger = TestCa::new("another CA").client().build().unwrap();
    assert!(stranger.get(&version).send().await.is_err(), "a certificate from an untrusted CA was accepted");
    // And plain HTTP on the HTTPS port gets no answer.
    let plain = reqwest::Client::new().get(version.replacen("https://", "http://", 1)).send().await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // An event stream opened before the reload, over HTTP/1.1.
    let admin = Api { base: base.clone(), http: http1.clone(), token: None }.signed_in("admin", ADMIN_PASSWORD).await;
    let mut events = admin.events().await;
    assert_eq!(events.next().await.status, MaintenanceState::Deactivated);

    // SIGHUP with a new pair in the files.
    let second = ca.issue(2);
    second.write(&files.cert, &files.key);
    hang_up(&manager);
    let reloaded = log_line_with(&manager, "SIGHUP");
    assert!(reloaded.contains("INFO") && reloaded.contains("reloaded"), "{reloaded}");
    assert!(
        reloaded.contains(&manager::tls::fingerprint(&second.der)),
        "the log names the new certificate: {reloaded}"
    );
    assert_eq!(certificate_of_a_new_connection(&ca, &base).await, second.der, "a new connection gets the new pair");
    // The HTTP/2 connection opened before still answers, on the session it made.
    let response = held.get(&version).send().await.expect("the held connection still works");
    assert_eq!((response.status().as_u16(), response.version()), (200, Version::HTTP_2));
    assert_eq!(presented(&response), first.der, "the same connection as before the reload");
    // So does the event stream.
    let fresh = Api { base: base.clone(), http: ca.client().build().unwrap(), token: None };
    let fresh = fresh.signed_in("admin", ADMIN_PASSWORD).await;
    fresh.activate(Some("after the reload")).await;
    while events.next().await.status != MaintenanceState::Activated {}
    fresh.deactivate().await;
    assert_eq!(events.next().await.status, MaintenanceState::Deactivated);

    // Bad pairs: each keeps the second pair in force, the log says why at error level, naming the file.
    let third = ca.issue(3);
    let key = path(&files.key);
    let cert = path(&files.cert);
    type Spoil<'a> = Box<dyn Fn() + 'a>;
    let bad: [(&str, Spoil, Vec<String>); 3] = [
        (
            "a certificate with another's key",
            Box::new(|| std::fs::write(&files.cert, &third.cert_pem).unwrap()),
            vec![format!("--tls-key {key}"), format!("--tls-cert {cert}"), "cannot serve the certificate".into()],
        ),
        (
            "a key that cannot be read",
            Box::new(|| std::fs::remove_file(&files.key).unwrap()),
            vec![format!("cannot read --tls-key {key}")],
        ),
        (
            "a certificate that is not PEM",
            Box::new(|| {
                third.write(&files.cert, &files.key);
                std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
            }),
            vec![format!("--tls-cert {cert} holds no certificate in PEM")],
        ),
    ];
    for (what, spoil, reasons) in bad {
        spoil();
        hang_up(&manager);
        let refused = log_line_with(&manager, "SIGHUP");
        assert!(refused.contains("ERROR"), "{what}: {refused}");
        assert!(refused.contains("still serving the previous certificate"), "{what}: {refused}");
        for reason in reasons {
            assert!(refused.contains(&reason), "{what}: the log should say {reason:?}: {refused}");
        }
        assert_eq!(certificate_of_a_new_connection(&ca, &base).await, second.der, "{what}: the second pair stays");
    }
    assert_eq!(held.get(&version).send().await.expect("still open").status(), 200);

    // Fixed files and one more SIGHUP: the third pair.
    third.write(&files.cert, &files.key);
    hang_up(&manager);
    assert!(log_line_with(&manager, "SIGHUP").contains("reloaded"));
    assert_eq!(certificate_of_a_new_connection(&ca, &base).await, third.der);
    drop(events);
    assert!(manager.terminate().success(), "a graceful stop over TLS");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tls_flag_without_the_other_or_a_bad_pair_stops_the_start_naming_the_flag() {
    let ca = TestCa::new("manager test CA");
    let files = PairFiles::with(&ca.issue(1));
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_manager"));
        command.args(["--bind", "127.0.0.1:0", "--data-dir"]).arg(data.path()).args(args);
        command.env_remove("MANAGER_TLS_CERT").env_remove("MANAGER_TLS_KEY").envs(env.iter().copied());
        let output = command.output().expect("run manager");
        assert!(!output.status.success(), "{args:?} {env:?} started");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let cert = path(&files.cert);
    let key = path(&files.key);
    let refused = run(&["--tls-cert", &cert], &[]);
    assert!(refused.contains("--tls-key"), "{refused}");
    let refused = run(&[], &[("MANAGER_TLS_KEY", &key)]);
    assert!(refused.contains("--tls-cert"), "{refused}");
    let missing = files.cert.with_file_name("missing.crt");
    let refused = run(&["--tls-cert", &path(&missing), "--tls-key", &key], &[]);
    assert!(refused.contains(&format!("cannot read --tls-cert {}", path(&missing))), "{refused}");
    let refused = run(&["--tls-cert", &key, "--tls-key", &key], &[]);
    assert!(refused.contains(&format!("--tls-cert {key} holds no certificate")), "{refused}");
    assert!(!refused.contains("panicked"), "{refused}");
}

/// Reads until the server closes the connection; how long that took, or
/// `None` if it was still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buffer = [0_u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// A connection that starts a TLS handshake (a record header and one byte of
/// a ClientHello) and then says nothing.
async fn stuck_in_handshake(address: &str) -> TcpStream {
    let connect = tokio::time::timeout(PATIENCE, TcpStream::connect(address)).await;
    let mut stream = connect.expect("connected in time").expect("connect");
    stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.expect("write");
    stream
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_stuck_in_the_tls_handshake_is_closed_after_the_head_timeout() {
    let ca = TestCa::new("manager test CA");
    let files = PairFiles::with(&ca.issue(1));
    let data = tempfile::tempdir().unwrap();
    let mut env = files.env().to_vec();
    env.push(("MANAGER_REQUEST_HEAD_TIMEOUT_SECONDS", "1".to_owned()));
    let manager = start(data.path(), &env);
    let address = manager.api.base.trim_start_matches("https://").to_owned();
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut stuck = stuck_in_handshake(&address).await;
    for (what, stream) in [("silent", &mut silent), ("mid-handshake", &mut stuck)] {
        let closed = closed_within(stream, PATIENCE).await;
        assert!(closed.is_some_and(|after| after < Duration::from_secs(10)), "the {what} connection: {closed:?}");
    }
    // The bound counts from the connection's start: a handshake that ends in
    // time still needs a request within it.
    let response = ca.client().build().unwrap().get(format!("{}/api/v3.1/ok", manager.api.base)).send().await;
    assert_eq!(response.expect("HTTPS").status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_stalled_tls_handshakes_does_not_lock_the_admin_out() {
    let ca = TestCa::new("manager test CA");
    let files = PairFiles::with(&ca.issue(1));
    let data = tempfile::tempdir().unwrap();
    // 256 files in all; 400 stalled handshakes with the default 10 s head
    // timeout, so none of them times out during the test: only shedding can
    // make room.
    let env = files.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let manager = ManagerProcess::start_with_open_files(data.path(), 256, 256, &env);
    let address = manager.api.base.trim_start_matches("https://").to_owned();
    let mut flood = Vec::new();
    for _ in 0..400 {
        flood.push(stuck_in_handshake(&address).await);
    }

    let http = ca.client().pool_max_idle_per_host(0).timeout(PATIENCE).build().unwrap();
    let admin = Api { http, ..manager.api.clone() }.signed_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(admin.post("/maintenance/activate", None).await.status(), 200);
    assert_eq!(admin.post("/maintenance/deactivate", None).await.status(), 200);
    let first = closed_within(&mut flood[0], Duration::from_millis(100)).await;
    assert!(first.is_some(), "the oldest stalled handshake was shed");
    let log = manager.drain_log(Duration::from_millis(200));
    assert!(!log.iter().any(|line| line.contains("panicked")), "{log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_never_kills_the_manager_and_a_stop_right_after_one_is_graceful() {
    // Without TLS there is nothing to reload, but SIGHUP's default action
    // (terminate) must not apply either.
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(data.path()).signed_in().await;
    hang_up(&manager);
    assert!(log_line_with(&manager, "SIGHUP").contains("nothing to reload"));
    assert_eq!(manager.api.get("/maintenance").await.status(), 200);
    // A reload and a stop at once: the stop wins, gracefully.
    let ca = TestCa::new("manager test CA");
    let files = PairFiles::with(&ca.issue(1));
    drop(manager);
    let manager = start(data.path(), &files.env());
    hang_up(&manager);
    let status = manager.terminate();
    assert!(status.success(), "{status:?}");
}

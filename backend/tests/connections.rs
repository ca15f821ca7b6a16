//! Connections cannot exhaust the manager (slowloris): a request head must
//! arrive within `--request-head-timeout-seconds`, idle keep-alive
//! connections are closed after as long, the soft open-file limit is raised
//! to the hard one, and near the limit idle connections are shed so that an
//! admin can still get in. Real sockets against the real binary.

mod common;

use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, ADMIN_PASSWORD, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// A connection that sends half a request head and then nothing.
async fn half_open(address: &str) -> TcpStream {
    let connect = tokio::time::timeout(PATIENCE, TcpStream::connect(address)).await;
    let mut stream = connect.expect("connected in time").expect("connect");
    stream.write_all(b"GET /api/v3.1/maintenance HTTP/1.1\r\nHost: manager\r\n").await.expect("write");
    stream
}

fn address(manager: &ManagerProcess) -> String {
    manager.api.base.trim_start_matches("http://").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn half_open_and_idle_connections_are_closed_after_the_head_timeout() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start_with_env(data.path(), &[("MANAGER_REQUEST_HEAD_TIMEOUT_SECONDS", "1")]);
    let address = address(&manager);
    let mut slow = half_open(&address).await;

    // A keep-alive connection that was answered once and then sits idle.
    let mut idle = TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /api/v3.1/ok HTTP/1.1\r\nHost: manager\r\n\r\n").await.unwrap();
    let mut answer = vec![0_u8; 1024];
    let read = idle.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));

    let slow_closed = closed_within(&mut slow, PATIENCE).await.expect("the half-open connection was closed");
    let idle_closed = closed_within(&mut idle, PATIENCE).await.expect("the idle connection was closed");
    assert!(slow_closed < Duration::from_secs(10), "closed after {slow_closed:?}");
    assert!(idle_closed < Duration::from_secs(10), "closed after {idle_closed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start_with_open_files(data.path(), 256, 2048, &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", manager.pid())).unwrap();
    let line = limits.lines().find(|line| line.starts_with("Max open files")).unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["2048", "2048"], "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_half_open_connections_does_not_lock_the_admin_out() {
    let data = tempfile::tempdir().unwrap();
    // 256 files in all; the flood holds 400 half-open connections, with the
    // default 10 s head timeout, so none of them times out during the test.
    let manager = ManagerProcess::start_with_open_files(data.path(), 256, 256, &[]);
    let address = address(&manager);
    let mut flood = Vec::new();
    for _ in 0..400 {
        flood.push(half_open(&address).await);
    }

    // A fresh connection for each request, as a new client would open.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(PATIENCE).build().unwrap();
    let admin = Api { http, ..manager.api.clone() }.signed_in("admin", ADMIN_PASSWORD).await;
    let activated = admin.post("/maintenance/activate", None).await;
    assert_eq!(activated.status(), 200);
    let deactivated = admin.post("/maintenance/deactivate", None).await;
    assert_eq!(deactivated.status(), 200);

    // The oldest half-open connections were the ones let go.
    let first = closed_within(&mut flood[0], Duration::from_millis(100)).await;
    assert!(first.is_some(), "the oldest half-open connection was shed");
    let log = manager.drain_log(Duration::from_millis(200));
    assert!(!log.iter().any(|line| line.contains("panicked")), "{log:?}");
}

//! systemd's notify protocol (SPEC §13): the real binary with a unix datagram
//! socket of the test's own as `NOTIFY_SOCKET`, as systemd would give it to a
//! `Type=notify` unit. On the store `MANAGER_TEST_STORE` names.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{test_database, ADMIN_PASSWORD, PATIENCE, TEST_REPLICA};

/// The messages systemd would receive, one string per datagram.
fn listen(socket: UnixDatagram) -> mpsc::Receiver<String> {
    let (send, messages) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buffer = vec![0; 4096];
        while let Ok(length) = socket.recv(&mut buffer) {
            if send.send(String::from_utf8_lossy(&buffer[..length]).into_owned()).is_err() {
                break;
            }
        }
    });
    messages
}

/// The next message, within [`PATIENCE`].
fn next(messages: &mpsc::Receiver<String>, what: &str) -> String {
    messages.recv_timeout(PATIENCE).unwrap_or_else(|_| panic!("no message from the manager: waiting for {what}"))
}

#[test]
fn ready_once_the_port_accepts_watchdog_at_half_the_interval_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    let messages = listen(socket);
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).expect("the data dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_manager"));
    command
        .args(["--bind", "127.0.0.1:0", "--dist", "/nonexistent-dist", "--data-dir"])
        .arg(&data_dir)
        .env("NOTIFY_SOCKET", &path)
        // WatchdogSec=400ms: a ping every 200 ms.
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env("MANAGER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("MANAGER_WORKFLOWS", manager::workflows::EXAMPLES)
        .env("MANAGER_REPLICA_ID", TEST_REPLICA)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = test_database(&data_dir) {
        command.env("MANAGER_DATABASE_URL", url);
    }
    let mut child = command.spawn().expect("spawn manager");

    // The first message is READY=1 with the address; a connection made at
    // once is accepted and answered.
    let ready = next(&messages, "READY=1");
    let lines: Vec<&str> = ready.lines().collect();
    assert!(lines.contains(&"READY=1"), "{ready:?}");
    let address: SocketAddr = lines
        .iter()
        .find_map(|line| line.strip_prefix("STATUS=listening on "))
        .unwrap_or_else(|| panic!("no address in {ready:?}"))
        .parse()
        .expect("an address");
    let mut stream = TcpStream::connect(address).expect("the port accepts once READY=1 is sent");
    stream.set_read_timeout(Some(PATIENCE)).expect("a read timeout");
    stream.write_all(b"GET /api/v3.1/ok HTTP/1.1\r\nHost: manager\r\nConnection: close\r\n\r\n").expect("a request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n") && answer.ends_with("OK"), "{answer}");

    // WATCHDOG=1, again and again (no timing asserted: the machine may be loaded).
    let mut pings = 0;
    let deadline = Instant::now() + PATIENCE;
    while pings < 2 {
        assert!(Instant::now() < deadline, "fewer than 2 WATCHDOG=1 within {PATIENCE:?}");
        let message = next(&messages, "WATCHDOG=1");
        assert!(!message.contains("STOPPING=1"), "{message:?}");
        pings += usize::from(message.lines().any(|line| line == "WATCHDOG=1"));
    }

    // SIGTERM: STOPPING=1, then a clean exit.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill -TERM").success());
    loop {
        let message = next(&messages, "STOPPING=1");
        if message.lines().any(|line| line == "STOPPING=1") {
            break;
        }
        assert!(message.lines().all(|line| line == "WATCHDOG=1"), "only pings meanwhile: {message:?}");
    }
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

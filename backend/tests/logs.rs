//! Logs (SPEC §13): `--log-format json` writes one JSON object a line, with
//! time, level, message, fields and the request id; `X-Request-Id` is taken
//! from the request when sane, made otherwise, echoed in the answer and on
//! every log line of the request. The real binary, on the store
//! `MANAGER_TEST_STORE` names.

mod common;

use std::process::Command;

use common::binary::Binary;
use common::ADMIN_PASSWORD;
use serde_json::Value;

/// The binary with `args`, without a panel.
fn start(args: &[&str]) -> Binary {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut command = Binary::command(data_dir.path());
    command.args(["--dist", "/nonexistent-dist"]).args(args);
    Binary::start(command, data_dir)
}

/// `POST path` as the first admin, with `request_id` if given; the answer's status and `X-Request-Id`.
async fn post(base: &str, path: &str, request_id: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/api/v3.1{path}"))
        .basic_auth("admin", Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({}));
    if let Some(id) = request_id {
        request = request.header("X-Request-Id", id);
    }
    let response = request.send().await.expect("an answer");
    let id = response.headers().get("x-request-id").expect("X-Request-Id in every answer").to_str().unwrap();
    (response.status().as_u16(), id.to_owned())
}

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

/// The JSON lines whose message is `message`.
fn with_message<'a>(lines: &'a [Value], message: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["fields"]["message"] == message).collect()
}

/// The request ids of a line's spans.
fn request_ids(line: &Value) -> Vec<&str> {
    line["spans"].as_array().into_iter().flatten().filter_map(|span| span["request_id"].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_a_line_and_carry_each_requests_id() {
    let manager = start(&["--log-format", "json"]);
    let base = manager.base.clone();

    // Taken from the request and echoed.
    let (status, sent) = post(&base, "/tokens", Some("test-request-42")).await;
    assert_eq!((status, sent.as_str()), (200, "test-request-42"));
    // Made when there is none, and when the one sent is not sane.
    let (status, made) = post(&base, "/maintenance/activate", None).await;
    assert_eq!(status, 200);
    assert!(is_uuid(&made), "{made}");
    let too_long = "x".repeat(manager::request_id::MAX_LEN + 1);
    for insane in ["two words", too_long.as_str()] {
        let (_, replaced) = post(&base, "/tokens", Some(insane)).await;
        assert!(is_uuid(&replaced), "{insane:?} was answered with {replaced:?}");
    }
    let (status, deactivated) = post(&base, "/maintenance/deactivate", None).await;
    assert_eq!(status, 200);
    assert_ne!(made, deactivated, "a new id for each request");
    // Refused by the gate's neighbours too: every answer has one.
    let (status, refused) = post(&base, "/no-such-route", None).await;
    assert_eq!(status, 404);
    assert!(is_uuid(&refused));

    let text = manager.stop();
    let lines: Vec<Value> = text
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}")))
        .collect();
    for line in &lines {
        let time = line["timestamp"].as_str().unwrap_or_else(|| panic!("no timestamp: {line}"));
        chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|error| panic!("{time}: {error}"));
        assert!(["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&line["level"].as_str().unwrap_or_default()));
        assert!(line["fields"]["message"].is_string(), "no message: {line}");
    }
    let issued = with_message(&lines, "token issued");
    assert_eq!(issued.len(), 3, "{text:#?}");
    assert_eq!(request_ids(issued[0]), ["test-request-42"]);
    assert_eq!(issued[0]["fields"]["username"], "admin", "the event's own fields");
    for line in &issued[1..] {
        assert!(request_ids(line).iter().all(|id| is_uuid(id)), "{line}");
    }
    let activated = with_message(&lines, "maintenance mode activation requested");
    assert_eq!(request_ids(activated[0]), [made.as_str()]);
    let off = with_message(&lines, "maintenance mode deactivated");
    assert_eq!(request_ids(off[0]), [deactivated.as_str()]);
    // Lines outside any request have no request id.
    let listening = lines.iter().find(|line| line["fields"]["message"].as_str().unwrap().starts_with("listening on"));
    assert!(request_ids(listening.expect("the listening line")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_name_the_request_id_on_the_lines_of_its_request() {
    let manager = start(&[]);
    let (_, sent) = post(&manager.base, "/tokens", Some("text-request-7")).await;
    assert_eq!(sent, "text-request-7");
    let lines = manager.stop();
    let issued = lines.iter().find(|line| line.contains("token issued")).expect("the token's line");
    assert!(issued.contains("request_id=text-request-7"), "{issued}");
    assert!(serde_json::from_str::<Value>(issued).is_err(), "text by default: {issued}");
}

/// A manager that cannot start says why in a JSON line too (a collector reads nothing else).
#[test]
fn with_json_logs_a_start_up_refusal_is_a_json_line() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_manager"))
        .args(["--log-format", "json", "--bind", "127.0.0.1:0", "--webhook", "http://127.0.0.1:9/hook", "--data-dir"])
        .arg(data_dir.path())
        .env_remove("MANAGER_WEBHOOK_SECRET")
        .env_remove("MANAGER_DATABASE_URL")
        .output()
        .expect("run manager");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<Value> =
        stderr.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"))).collect();
    let last = lines.last().expect("a line");
    assert_eq!(last["level"], "ERROR");
    assert!(last["fields"]["error"].as_str().unwrap_or_default().contains("--webhook-secret"), "{last}");
}

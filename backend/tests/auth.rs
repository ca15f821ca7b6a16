//! Users, roles, tokens and the bypass over real HTTP (SPEC §2–4): every
//! route × {no credentials, bad password, expired token, revoked token, user,
//! admin}; the bootstrap password; secrets never in logs or responses.

mod common;

use std::time::Duration;

use common::{assert_error, Api, ManagerProcess, TestApp, ADMIN_PASSWORD, LONG};
use manager::users::UsersCommand;
use reqwest::Method;
use serde_json::json;
use shared::{ErrorCode, MaintenanceState, Role, TokenResponse};

const USER_PASSWORD: &str = "user password 1";

fn add_user(data_dir: &std::path::Path, name: &str, role: Role, password: &str) {
    let command = UsersCommand::Add { name: name.into(), role, password_stdin: true };
    common::users(data_dir, command, &format!("{password}\n")).expect("add user");
}

/// What a route needs.
#[derive(Clone, Copy, PartialEq)]
enum Needs {
    Nothing,
    User,
    Admin,
}

#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    BadPassword,
    RevokedToken,
    User,
    Admin,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_for_every_kind_of_caller() {
    let app = TestApp::spawn().await;
    add_user(app.data_dir.path(), "alice", Role::User, USER_PASSWORD);
    let anonymous = Api { token: None, ..app.api.clone() };
    let user = anonymous.signed_in("alice", USER_PASSWORD).await;
    let admin = app.api.clone();

    // A revoked token (revoked by its owner), and an expired one from a manager whose tokens live 1 s.
    let revoked = anonymous.signed_in("alice", USER_PASSWORD).await;
    let revoked_id = token_id(&revoked);
    assert_eq!(revoked.request(Method::DELETE, &format!("/tokens/{revoked_id}")).send().await.unwrap().status(), 204);

    let routes_with = |one: String| -> Vec<(Method, String, Option<serde_json::Value>, Needs)> {
        vec![
            (Method::GET, "/maintenance".into(), None, Needs::User),
            (Method::GET, "/maintenance/history".into(), None, Needs::User),
            (Method::GET, "/maintenance/events".into(), None, Needs::User),
            (Method::POST, "/maintenance/activate".into(), Some(json!({})), Needs::Admin),
            (Method::POST, "/maintenance/deactivate".into(), None, Needs::Admin),
            (Method::GET, "/executions".into(), None, Needs::User),
            (
                Method::POST,
                "/executions".into(),
                Some(json!({"workflow_id": "install", "deployment_id": "d"})),
                Needs::User,
            ),
            (Method::GET, one.clone(), None, Needs::User),
            (Method::POST, one, Some(json!({"action": "cancel"})), Needs::User),
            (Method::GET, "/version".into(), None, Needs::Nothing),
            (Method::GET, "/status".into(), None, Needs::Nothing),
            (Method::GET, "/ok".into(), None, Needs::Nothing),
            (Method::GET, "/openapi.json".into(), None, Needs::Nothing),
        ]
    };
    for caller in [Caller::Anonymous, Caller::BadPassword, Caller::RevokedToken, Caller::User, Caller::Admin] {
        // A running execution per caller, so each may cancel one.
        let routes = routes_with(format!("/executions/{}", admin.start(LONG).await.id));
        for (index, (method, path, body, needs)) in routes.iter().enumerate() {
            // A name per route, so the failed-sign-in limiter (tested below) stays out of this.
            let stranger = format!("stranger{index}");
            let mut request = match caller {
                Caller::Anonymous => anonymous.request(method.clone(), path),
                Caller::BadPassword => anonymous.request(method.clone(), path).basic_auth(&stranger, Some("wrong")),
                Caller::RevokedToken => revoked.request(method.clone(), path),
                Caller::User => user.request(method.clone(), path),
                Caller::Admin => admin.request(method.clone(), path),
            };
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let what = format!("{caller:?} {method} {path}");
            match (needs, caller) {
                (Needs::Nothing, _) => assert_eq!(response.status(), 200, "{what}"),
                (_, Caller::Anonymous | Caller::BadPassword | Caller::RevokedToken) => {
                    assert_error(response, 401, ErrorCode::Unauthorized).await;
                }
                (Needs::Admin, Caller::User) => {
                    assert_error(response, 403, ErrorCode::Forbidden).await;
                }
                (Needs::User | Needs::Admin, Caller::User | Caller::Admin) => {
                    assert!(response.status().is_success(), "{what}: {}", response.status());
                }
            }
        }
    }

    let short = TestApp::spawn_with(std::path::Path::new("/nonexistent"), 1).await;
    // An open event stream ends when its token expires.
    let mut events = short.api.events().await;
    events.next().await;
    assert!(events.next_or_end().await.is_none(), "the stream ended at the token's expiry");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (method, path, _, needs) in &routes_with(format!("/executions/{}", uuid::Uuid::new_v4())) {
        let response = short.api.request(method.clone(), path).send().await.unwrap();
        if *needs == Needs::Nothing {
            assert_eq!(response.status(), 200);
        } else {
            let error = assert_error(response, 401, ErrorCode::Unauthorized).await;
            assert!(error.message.contains("expired"), "{method} {path}: {}", error.message);
        }
    }
}

fn token_id(api: &Api) -> String {
    let value = api.token.as_deref().unwrap();
    let simple = value.split('.').next().unwrap();
    uuid::Uuid::parse_str(simple).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_come_only_from_passwords_and_can_be_revoked_by_owner_or_admin() {
    let app = TestApp::spawn().await;
    add_user(app.data_dir.path(), "alice", Role::User, USER_PASSWORD);
    add_user(app.data_dir.path(), "bob", Role::User, USER_PASSWORD);
    let anonymous = Api { token: None, ..app.api.clone() };

    let response =
        anonymous.request(Method::POST, "/tokens").basic_auth("alice", Some(USER_PASSWORD)).send().await.unwrap();
    let token: TokenResponse = response.json().await.unwrap();
    assert_eq!((token.username.as_str(), token.role), ("alice", Role::User));
    let lifetime = token.expires_at.as_datetime() - chrono::Utc::now();
    assert!(lifetime > chrono::Duration::hours(9) && lifetime <= chrono::Duration::hours(10), "{lifetime}");

    // A token cannot mint a token.
    let alice = anonymous.signed_in("alice", USER_PASSWORD).await;
    assert_error(alice.post("/tokens", None).await, 401, ErrorCode::Unauthorized).await;

    // Bob may not revoke Alice's token; an admin may.
    let bob = anonymous.signed_in("bob", USER_PASSWORD).await;
    let path = format!("/tokens/{}", token_id(&alice));
    assert_error(bob.request(Method::DELETE, &path).send().await.unwrap(), 403, ErrorCode::Forbidden).await;
    assert_eq!(alice.get("/maintenance").await.status(), 200);
    assert_eq!(app.api.request(Method::DELETE, &path).send().await.unwrap().status(), 204);
    let error = assert_error(alice.get("/maintenance").await, 401, ErrorCode::Unauthorized).await;
    assert!(error.message.contains("revoked"), "{}", error.message);
    let missing = format!("/tokens/{}", uuid::Uuid::new_v4());
    assert_error(app.api.request(Method::DELETE, &missing).send().await.unwrap(), 404, ErrorCode::NotFound).await;

    // Two sets of credentials are refused, even when one of them is valid.
    for path in ["/maintenance", "/tokens"] {
        let method = if path == "/tokens" { Method::POST } else { Method::GET };
        let both = app.api.request(method, path).basic_auth("admin", Some("not the password")).send().await.unwrap();
        let error = assert_error(both, 401, ErrorCode::Unauthorized).await;
        assert!(error.message.contains("not both"), "{}", error.message);
    }

    // Garbage tokens are plain 401s.
    for garbage in ["", "x", "nodot", "00000000000000000000000000000000.x", &format!("{}.wrong", token_id(&bob))] {
        let response = anonymous
            .request(Method::GET, "/maintenance")
            .header("Authentication-Token", garbage)
            .send()
            .await
            .unwrap();
        assert_error(response, 401, ErrorCode::Unauthorized).await;
    }

    // A password change (operator command, server running) revokes the user's tokens.
    let command = UsersCommand::SetPassword { name: "bob".into(), password_stdin: true };
    common::users(app.data_dir.path(), command, "a brand new password\n").unwrap();
    assert_error(bob.get("/maintenance").await, 401, ErrorCode::Unauthorized).await;
    anonymous.signed_in("bob", "a brand new password").await;
    // Removing a user ends their access at once.
    common::users(app.data_dir.path(), UsersCommand::Remove { name: "bob".into() }, "").unwrap();
    let gone = anonymous
        .request(Method::POST, "/tokens")
        .basic_auth("bob", Some("a brand new password"))
        .send()
        .await
        .unwrap();
    assert_error(gone, 401, ErrorCode::Unauthorized).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn requested_by_and_created_by_are_the_real_callers() {
    let app = TestApp::spawn().await;
    add_user(app.data_dir.path(), "ops", Role::Admin, "ops password 1");
    add_user(app.data_dir.path(), "alice", Role::User, USER_PASSWORD);
    let anonymous = Api { token: None, ..app.api.clone() };
    let ops = anonymous.signed_in("ops", "ops password 1").await;
    let alice = anonymous.signed_in("alice", USER_PASSWORD).await;

    let execution = alice.start(LONG).await;
    assert_eq!(execution.created_by, "alice");
    let status = ops.activate(Some("ops did it")).await;
    assert_eq!(status.requested_by, "ops");
    let history: shared::api::ListResponse<shared::MaintenanceTransition> =
        alice.get("/maintenance/history").await.json().await.unwrap();
    assert!(!history.items.is_empty() && history.items.iter().all(|t| t.requested_by == "ops"));
    // Basic auth works on every route too.
    let basic =
        anonymous.request(Method::GET, "/maintenance").basic_auth("alice", Some(USER_PASSWORD)).send().await.unwrap();
    assert_eq!(basic.json::<shared::MaintenanceStatus>().await.unwrap().status, MaintenanceState::Activating);
    alice.cancel(execution.id).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bypass_header_counts_for_admins_only() {
    let app = TestApp::spawn().await;
    add_user(app.data_dir.path(), "alice", Role::User, USER_PASSWORD);
    let alice = Api { token: None, ..app.api.clone() }.signed_in("alice", USER_PASSWORD).await;
    app.api.activate(None).await;
    let bypass = |api: &Api| api.request(Method::GET, "/executions").header(shared::api::BYPASS_HEADER, "true").send();
    assert_eq!(bypass(&app.api).await.unwrap().status(), 200, "admin passes");
    assert_error(bypass(&alice).await.unwrap(), 503, ErrorCode::MaintenanceModeActive).await;
    let create = alice
        .request(Method::POST, "/executions")
        .header(shared::api::BYPASS_HEADER, "true")
        .json(&json!({"workflow_id": "install", "deployment_id": "d"}))
        .send()
        .await
        .unwrap();
    assert_error(create, 503, ErrorCode::MaintenanceModeActive).await;
    let anonymous = Api { token: None, ..app.api.clone() };
    assert_error(bypass(&anonymous).await.unwrap(), 503, ErrorCode::MaintenanceModeActive).await;

    // A wrong password with the bypass header is one failed sign-in, not two:
    // the limiter still allows MAX_FAILURES - 1 of them before refusing.
    add_user(app.data_dir.path(), "bob", Role::Admin, USER_PASSWORD);
    let wrong = || {
        anonymous
            .request(Method::GET, "/maintenance")
            .header(shared::api::BYPASS_HEADER, "true")
            .basic_auth("bob", Some("wrong password"))
            .send()
    };
    for _ in 1..manager::auth::limiter::MAX_FAILURES {
        assert_error(wrong().await.unwrap(), 401, ErrorCode::Unauthorized).await;
    }
    let right =
        anonymous.request(Method::GET, "/maintenance").basic_auth("bob", Some(USER_PASSWORD)).send().await.unwrap();
    assert_eq!(
        right.status(),
        200,
        "bob is not locked out after {} failures",
        manager::auth::limiter::MAX_FAILURES - 1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bypass_header_matters_only_where_the_gate_would_refuse_and_credentials_are_checked_once() {
    let app = TestApp::spawn().await;
    let anonymous = Api { token: None, ..app.api.clone() };
    let bypassing = |method: Method, path: &str, password: &str| {
        anonymous
            .request(method, path)
            .header(shared::api::BYPASS_HEADER, "true")
            .basic_auth("admin", Some(password.to_owned()))
            .send()
    };
    for state in ["deactivated", "activated"] {
        if state == "activated" {
            app.api.activate(None).await;
        }
        // Public routes stay public, whatever the header carries.
        for path in ["/version", "/ok", "/status"] {
            let response = bypassing(Method::GET, path, "wrong password").await.unwrap();
            assert_eq!(response.status(), 200, "{path} while {state}");
        }
        // Signing in with the header runs the password check once, not twice.
        let checks = app.state.auth.password_checks();
        let token = bypassing(Method::POST, "/tokens", ADMIN_PASSWORD).await.unwrap();
        assert_eq!(token.status(), 200, "while {state}");
        assert_eq!(app.state.auth.password_checks() - checks, 1, "password checks for one sign-in while {state}");
    }
    // Where the gate refuses, the header needs valid credentials.
    assert_error(bypassing(Method::GET, "/executions", "wrong password").await.unwrap(), 401, ErrorCode::Unauthorized)
        .await;
    let checks = app.state.auth.password_checks();
    assert_eq!(bypassing(Method::GET, "/executions", ADMIN_PASSWORD).await.unwrap().status(), 200);
    assert_eq!(app.state.auth.password_checks() - checks, 1, "the gate's check serves the handler too");
}

/// Waits for the server to end `events`; fails if it sends a status instead
/// or is still open after `within`.
async fn assert_ends_within(events: &mut common::Events, within: Duration, what: &str) {
    match tokio::time::timeout(within, events.next_or_end()).await {
        Ok(None) => {}
        Ok(Some(status)) => panic!("{what}: the stream sent {status:?} instead of ending"),
        Err(_) => panic!("{what}: the stream was still open after {within:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn overlong_usernames_are_refused_before_any_password_check() {
    let app = TestApp::spawn().await;
    let anonymous = Api { token: None, ..app.api.clone() };
    let checks = app.state.auth.password_checks();
    let long = "x".repeat(8 * 1024);
    for _ in 0..20 {
        let answer = anonymous.request(Method::POST, "/tokens").basic_auth(&long, Some("whatever")).send().await;
        assert_error(answer.unwrap(), 401, ErrorCode::Unauthorized).await;
    }
    assert_eq!(app.state.auth.password_checks(), checks, "nothing was hashed (or remembered) for them");
    // Not counted as failures either: the longest possible name still signs in.
    let longest = "a".repeat(manager::auth::MAX_USERNAME_BYTES);
    add_user(app.data_dir.path(), &longest, Role::User, USER_PASSWORD);
    anonymous.signed_in(&longest, USER_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn open_event_streams_end_within_a_second_when_their_credentials_stop_working() {
    let app = TestApp::spawn().await;
    for name in ["alice", "bob", "carol"] {
        add_user(app.data_dir.path(), name, Role::User, USER_PASSWORD);
    }
    let anonymous = Api { token: None, ..app.api.clone() };
    let alice = anonymous.signed_in("alice", USER_PASSWORD).await;
    let carol = anonymous.signed_in("carol", USER_PASSWORD).await;
    let bob = anonymous.signed_in("bob", USER_PASSWORD).await;
    let url = app.api.url("/maintenance/events");
    let open = |request: reqwest::RequestBuilder| async move {
        let mut events = common::Events::from_response(request.send().await.unwrap());
        events.next().await; // the current status: the stream is live
        events
    };
    let query = |api: &Api| app.api.http.get(format!("{url}?token={}", api.token.as_deref().unwrap()));
    let mut alice_by_token = open(query(&alice)).await;
    let mut alice_by_password = open(app.api.http.get(&url).basic_auth("alice", Some(USER_PASSWORD))).await;
    let mut carol_by_token = open(carol.request(Method::GET, "/maintenance/events")).await;
    let mut bob_by_token = open(query(&bob)).await;

    // Revoking a token ends the streams opened with it, and only those.
    let revoke = alice.request(Method::DELETE, &format!("/tokens/{}", token_id(&alice))).send().await.unwrap();
    assert_eq!(revoke.status(), 204);
    assert_ends_within(&mut alice_by_token, Duration::from_secs(1), "revoked token").await;

    // A new password (set by the operator command, another connection) ends
    // the streams signed in with the old one.
    let set = UsersCommand::SetPassword { name: "alice".into(), password_stdin: true };
    common::users(app.data_dir.path(), set, "a brand new password\n").unwrap();
    assert_ends_within(&mut alice_by_password, Duration::from_secs(1), "changed password").await;

    // Removing a user ends their streams.
    common::users(app.data_dir.path(), UsersCommand::Remove { name: "carol".into() }, "").unwrap();
    assert_ends_within(&mut carol_by_token, Duration::from_secs(1), "removed user").await;

    // Everyone else's stream goes on.
    let activated = app.api.activate(None).await;
    assert_eq!(bob_by_token.next().await, activated);
}

#[tokio::test(flavor = "multi_thread")]
async fn event_stream_takes_a_token_in_the_query_and_no_other_route_does() {
    let app = TestApp::spawn().await;
    let token = app.api.token.clone().unwrap();
    let url = format!("{}?token={token}", app.api.url("/maintenance/events"));
    assert_eq!(app.api.http.get(url).send().await.unwrap().status(), 200);
    let bad = format!("{}?token=nope", app.api.url("/maintenance/events"));
    assert_error(app.api.http.get(bad).send().await.unwrap(), 401, ErrorCode::Unauthorized).await;
    let elsewhere = format!("{}?token={token}", app.api.url("/maintenance"));
    assert_error(app.api.http.get(elsewhere).send().await.unwrap(), 401, ErrorCode::Unauthorized).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failed_sign_ins_are_limited_per_user_and_address() {
    let app = TestApp::spawn().await;
    add_user(app.data_dir.path(), "alice", Role::User, USER_PASSWORD);
    let anonymous = Api { token: None, ..app.api.clone() };
    let sign_in = |user: &'static str, password: &'static str| {
        anonymous.request(Method::POST, "/tokens").basic_auth(user, Some(password)).send()
    };
    for _ in 0..manager::auth::limiter::MAX_FAILURES {
        assert_error(sign_in("alice", "wrong").await.unwrap(), 401, ErrorCode::Unauthorized).await;
    }
    // Now even the right password waits, with Retry-After.
    let limited = sign_in("alice", USER_PASSWORD).await.unwrap();
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= manager::auth::limiter::LOCKOUT.as_secs());
    assert_error(limited, 429, ErrorCode::TooManyRequests).await;
    // Other users, and existing tokens, are unaffected.
    assert_eq!(sign_in("admin", ADMIN_PASSWORD).await.unwrap().status(), 200);
    assert_eq!(app.api.get("/maintenance").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_wrong_passwords_is_checked_one_per_core_and_then_limited() {
    let app = TestApp::spawn().await;
    add_user(app.data_dir.path(), "alice", Role::User, USER_PASSWORD);
    let anonymous = Api { token: None, ..app.api.clone() };
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get()) as u32;
    let burst = manager::auth::limiter::MAX_FAILURES + cores + 20;
    let answers = futures_util::future::join_all(
        (0..burst).map(|_| anonymous.request(Method::POST, "/tokens").basic_auth("alice", Some("wrong")).send()),
    )
    .await;
    let (mut checked, mut limited) = (0, 0);
    for answer in answers {
        match answer.unwrap().status().as_u16() {
            401 => checked += 1,
            429 => limited += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // All arrive before the first check ends; the ones that waited for a
    // check are refused once the failures already recorded reach the limit.
    assert!(
        checked <= manager::auth::limiter::MAX_FAILURES + cores,
        "{checked} passwords checked, {limited} refused; at most {} should be checked",
        manager::auth::limiter::MAX_FAILURES + cores
    );
    assert_eq!(checked + limited, burst);
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_generates_an_admin_password_once_and_secrets_never_reach_logs() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start_with_env(data.path(), &[("MANAGER_ADMIN_PASSWORD", ""), ("RUST_LOG", "debug")]);
    let line = manager.startup_log.iter().find(|line| line.contains("generated password")).expect("the password line");
    let password = line.split("generated password: ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert!(password.len() >= 20, "strong: {password}");

    let api = manager.api.signed_in("admin", &password).await;
    let wrong = manager
        .api
        .request(Method::POST, "/tokens")
        .basic_auth("admin", Some("a wrong guess 123"))
        .send()
        .await
        .unwrap();
    let wrong_body = wrong.text().await.unwrap();
    assert!(!wrong_body.contains("a wrong guess 123"));
    let token = api.token.clone().unwrap();
    let events = api.http.get(format!("{}?token={token}", api.url("/maintenance/events"))).send().await.unwrap();
    assert_eq!(events.status(), 200);
    drop(events);
    api.activate(None).await;
    let log: Vec<String> = manager.drain_log(Duration::from_millis(500));
    let secret = token.split('.').nth(1).unwrap();
    let shown = log.iter().filter(|line| line.contains(&password)).count();
    assert_eq!(shown, 1, "the generated password is logged exactly once, at creation");
    for line in &log {
        assert!(!line.contains(secret), "token in log: {line}");
        assert!(!line.contains("a wrong guess 123"), "failed password in log: {line}");
    }
    assert!(log.iter().any(|line| line.contains("token issued")), "the log was captured: {log:?}");
    manager.kill();

    // The second start finds the admin and prints no password.
    let manager = ManagerProcess::start_with_env(data.path(), &[("MANAGER_ADMIN_PASSWORD", "")]);
    assert!(manager.startup_log.iter().all(|line| !line.contains("password:")), "{:?}", manager.startup_log);
    manager.api.signed_in("admin", &password).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_password_from_the_environment_is_used_and_not_logged() {
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(data.path());
    assert!(manager.startup_log.iter().all(|line| !line.contains(ADMIN_PASSWORD)));
    assert!(manager.startup_log.iter().any(|line| line.contains("MANAGER_ADMIN_PASSWORD")));
    manager.signed_in().await;
}

#[test]
fn operators_manage_users_with_the_manager_binary_reading_passwords_from_stdin() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let data = tempfile::tempdir().unwrap();
    let manager = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_manager"))
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A command refused on its arguments exits without reading: a closed pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    };
    let added = manager(&["users", "add", "carol", "--role", "admin", "--password-stdin"], "carol's password\n");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert_eq!(String::from_utf8_lossy(&added.stdout).trim(), "User `carol` added with role admin.");
    let listed = manager(&["users", "list"], "");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("carol"));
    let no_flag = manager(&["users", "add", "dave", "--role", "user"], "dave's password\n");
    assert!(!no_flag.status.success());
    assert!(String::from_utf8_lossy(&no_flag.stderr).contains("--password-stdin"));
    let bad_role = manager(&["users", "add", "dave", "--role", "root", "--password-stdin"], "dave's password\n");
    assert!(!bad_role.status.success());
}

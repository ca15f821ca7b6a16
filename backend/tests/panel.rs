//! The manager serves the built admin panel from `--dist` with an SPA
//! fallback, beside (never instead of) the API.

mod common;

use std::process::Command;
use std::time::Duration;

use common::binary::Binary;
use common::{assert_error, ManagerProcess, TestApp};
use shared::ErrorCode;

#[tokio::test(flavor = "multi_thread")]
async fn serves_files_and_falls_back_to_index_for_panel_routes_only() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<!DOCTYPE html><title>panel</title>").unwrap();
    std::fs::write(dist.path().join("app.js"), "console.log('panel')").unwrap();
    let app = TestApp::spawn_with_dist(dist.path()).await;
    let get = |path: &str| app.api.http.get(format!("{}{path}", app.api.base)).send();

    let script = get("/app.js").await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().contains("javascript"));
    assert_eq!(script.text().await.unwrap(), "console.log('panel')");
    for route in ["/", "/index.html", "/maintenance", "/executions/123"] {
        let page = get(route).await.unwrap();
        assert_eq!(page.status(), 200, "{route}");
        assert!(page.text().await.unwrap().contains("<title>panel</title>"), "{route}");
    }
    // API paths never fall back to the page.
    assert_error(get("/api/v3.1/no-such-thing").await.unwrap(), 404, ErrorCode::NotFound).await;
    assert_error(get("/api/anything").await.unwrap(), 404, ErrorCode::NotFound).await;
}

/// A file the manager cannot read is its own fault, not the client's: 500
/// `internal_error` without details (they go to the log), never 400.
#[tokio::test(flavor = "multi_thread")]
async fn a_panel_file_that_cannot_be_read_is_an_internal_error() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(dist.path().join("index.html"), "<!DOCTYPE html><title>panel</title>").unwrap();
    // Opening a symlink loop fails with ELOOP: an I/O error that is not "not found"
    // (and, unlike permissions, one that root gets too).
    std::os::unix::fs::symlink("loop.js", dist.path().join("loop.js")).unwrap();
    let app = TestApp::spawn_with_dist(dist.path()).await;
    let response = app.api.http.get(format!("{}/loop.js", app.api.base)).send().await.unwrap();
    let error = assert_error(response, 500, ErrorCode::InternalError).await;
    assert!(!error.message.contains("loop"), "no detail for the client: {}", error.message);
}

/// Headless Chromium loads the release build of the panel (trunk output) from
/// a real manager and renders it: a signed-out visitor gets the sign-in form.
/// Needs the build: `scripts/test` builds it and sets `PANEL_DIST`.
#[tokio::test(flavor = "multi_thread")]
async fn built_panel_renders_the_sign_in_form_in_a_real_browser() {
    let Some(dist) = std::env::var_os("PANEL_DIST") else {
        eprintln!("PANEL_DIST not set: run scripts/test to build the panel and run this test");
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start_with_dist(data.path(), std::path::Path::new(&dist));

    let profile = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking({
        let url = format!("{}/", manager.api.base);
        let profile = profile.path().to_owned();
        move || {
            Command::new(std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into()))
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .arg(url)
                .output()
        }
    });
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("chromium in time")
        .unwrap()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains(r#"aria-label="Sign in""#), "the page shows the sign-in form; DOM:\n{dom}");
    assert!(dom.contains(r#"id="password""#), "with a password field; DOM:\n{dom}");
}

/// The panel's wasm and js stay within 172 000 bytes gzipped (BENCHMARKS.md;
/// 150 000 until issue 15's windows and History page, 170 000 until issue
/// 16's webhooks on it), measured as
/// `scripts/bench panel` does: `gzip -9c` of each.
/// Needs the build: `scripts/test` builds it and sets `PANEL_DIST`.
#[test]
fn built_panel_stays_within_172_000_bytes_gzipped() {
    let Some(dist) = std::env::var_os("PANEL_DIST") else {
        eprintln!("PANEL_DIST not set: run scripts/test to build the panel and run this test");
        return;
    };
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(&dist).expect("PANEL_DIST is a directory") {
        let path = entry.unwrap().path();
        if matches!(path.extension().and_then(|ext| ext.to_str()), Some("wasm" | "js")) {
            let gzip = Command::new("gzip").arg("-9c").arg(&path).output().expect("run gzip");
            assert!(gzip.status.success(), "gzip {}", path.display());
            sizes.push((path, gzip.stdout.len()));
        }
    }
    assert_eq!(sizes.len(), 2, "one .wasm and one .js in the build: {sizes:?}");
    let total: usize = sizes.iter().map(|(_, size)| size).sum();
    assert!(total <= 172_000, "the panel is {total} bytes gzipped, over 172 000: {sizes:?}");
}

/// SPEC §13, one file to deploy: started in an empty directory without
/// `--dist`, the binary serves the panel built into it (release builds embed
/// `dist/`; a debug build, as here, reads the `dist/` it was built beside),
/// under the policy that allows its inline loader, with the wasm's type, an
/// ETag that makes a repeated request 304, and the SPA fallback.
/// Needs the build: `scripts/test` builds it and sets `PANEL_DIST`.
#[tokio::test(flavor = "multi_thread")]
async fn without_dist_the_binary_serves_the_panel_built_into_it() {
    let Some(dist) = std::env::var_os("PANEL_DIST") else {
        eprintln!("PANEL_DIST not set: run scripts/test to build the panel and run this test");
        return;
    };
    assert!(manager::panel::Panel::embedded(), "PANEL_DIST is set but this build carries no panel (dist/)");
    let dist = std::path::PathBuf::from(dist);
    let index = std::fs::read_to_string(dist.join("index.html")).expect("the built index.html");
    let wasm = std::fs::read_dir(&dist)
        .expect("PANEL_DIST")
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .expect("a .wasm in the build");
    let empty = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut command = Binary::command(data.path());
    command.current_dir(empty.path());
    let manager = Binary::start(command, data);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", manager.base));

    let page = get("/").send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert_eq!(policy, manager::security_headers::content_security_policy(Some(&index)));
    assert!(policy.contains("'sha256-"), "the inline loader is allowed by its hash: {policy}");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.text().await.unwrap(), index);

    let name = wasm.file_name().unwrap().to_str().unwrap();
    let file = get(&format!("/{name}")).send().await.unwrap();
    assert_eq!(file.status(), 200);
    assert_eq!(file.headers()["content-type"], "application/wasm");
    assert!(file.headers().contains_key("last-modified"));
    let etag = file.headers()["etag"].clone();
    assert_eq!(file.bytes().await.unwrap().len(), std::fs::metadata(&wasm).unwrap().len() as usize);
    let again = get(&format!("/{name}")).header("if-none-match", etag.clone()).send().await.unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    let head = http.head(format!("{}/{name}", manager.base)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "application/wasm");

    // The panel routes itself; the API never falls back to it.
    let route = get("/executions/123").send().await.unwrap();
    assert_eq!(route.status(), 200);
    assert_eq!(route.text().await.unwrap(), index);
    assert_error(get("/api/v3.1/no-such-thing").send().await.unwrap(), 404, ErrorCode::NotFound).await;
    let post = http.post(format!("{}/", manager.base)).send().await.unwrap();
    assert_error(post, 405, ErrorCode::MethodNotAllowed).await;
    let log = manager.stop();
    assert!(log.iter().any(|line| line.contains("the admin panel built into this binary")), "{log:#?}");
}

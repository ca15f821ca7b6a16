//! The admin panel end to end: the release build (`PANEL_DIST`, built by
//! `scripts/test`) served by a real manager on 127.0.0.1:0, driven in headless
//! Chromium through chromedriver (fantoccini). Screenshots of each state go to
//! `target/screenshots/`.

mod common;

use std::future::Future;
use std::net::TcpListener;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::binary::Binary;
use common::receiver::{self, Receiver};
use common::{Api, TestApp, PATIENCE};
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use futures_util::FutureExt;
use manager::config::Config;
use manager::users::UsersCommand;
use manager::webhooks::Secret;
use manager::Manager;
use serde_json::json;
use shared::{HistoryEvent, Role};
use tokio_util::sync::CancellationToken;

type Result<T = ()> = std::result::Result<T, CmdError>;

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
    profiles: tempfile::TempDir,
}

impl Driver {
    /// chromedriver, and the Chromium it starts, in the time zone `zone`
    /// (the `TZ` variable: the browser's local time), or in the machine's.
    fn start(zone: Option<&str>) -> Self {
        // The workspace build enables two rustls providers; fantoccini needs a default.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let mut command = Command::new(driver);
        if let Some(zone) = zone {
            command.env("TZ", zone);
        }
        let child = command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (scripts/setup installs it)");
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, url: format!("http://127.0.0.1:{port}"), profiles: tempfile::tempdir().unwrap() }
    }

    /// A new headless Chromium session with its own fresh profile.
    async fn session(&self) -> Client {
        let profile = tempfile::tempdir_in(self.profiles.path()).unwrap().keep();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1100,800",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        ClientBuilder::rustls()
            .expect("rustls")
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a browser test: skipped without a built panel; every session is
/// closed before chromedriver stops, even when the test fails.
async fn browser_test<F, Fut>(test: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = Result>,
{
    browser_test_with_token_ttl(36_000, test).await;
}

/// [`browser_test`] with a manager whose tokens live `token_ttl_seconds`.
async fn browser_test_with_token_ttl<F, Fut>(token_ttl_seconds: u64, test: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = Result>,
{
    browser_test_on(|dist| async move { TestApp::spawn_with(&dist, token_ttl_seconds).await }, test).await;
}

/// [`browser_test`] with the manager `spawn` makes for the panel in its directory.
async fn browser_test_on<S, SFut, F, Fut>(spawn: S, test: F)
where
    S: FnOnce(PathBuf) -> SFut,
    SFut: Future<Output = TestApp>,
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = Result>,
{
    browser_test_in(None, spawn, test).await;
}

/// [`browser_test`] with browsers whose local time is the time zone `zone` (e.g. `Asia/Kolkata`).
async fn browser_test_in_zone<F, Fut>(zone: &str, test: F)
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = Result>,
{
    browser_test_in(Some(zone), |dist| async move { TestApp::spawn_with(&dist, 36_000).await }, test).await;
}

async fn browser_test_in<S, SFut, F, Fut>(zone: Option<&str>, spawn: S, test: F)
where
    S: FnOnce(PathBuf) -> SFut,
    SFut: Future<Output = TestApp>,
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = Result>,
{
    let Some(dist) = std::env::var_os("PANEL_DIST") else {
        eprintln!("PANEL_DIST not set: run scripts/test to build the panel and run the browser tests");
        return;
    };
    let driver = Driver::start(zone);
    let app = spawn(PathBuf::from(dist)).await;
    let sessions = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::<Client>::new()));
    let browser = Browser { driver: &driver as *const Driver, app, sessions: sessions.clone() };
    let outcome = AssertUnwindSafe(test(browser)).catch_unwind().await;
    for client in sessions.lock().await.drain(..) {
        let _ = client.close().await;
    }
    drop(driver);
    match outcome {
        Ok(result) => result.expect("browser command failed"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// What a browser test gets: the manager and a way to open browsers.
struct Browser {
    driver: *const Driver,
    app: TestApp,
    sessions: std::sync::Arc<tokio::sync::Mutex<Vec<Client>>>,
}

// The driver outlives the test future (browser_test drops it after awaiting).
unsafe impl Send for Browser {}

impl Browser {
    /// A new browser on the panel's sign-in page.
    async fn open(&self) -> Result<Client> {
        // SAFETY: see the impl Send note: the driver lives until the test ends.
        let driver = unsafe { &*self.driver };
        let client = driver.session().await;
        self.sessions.lock().await.push(client.clone());
        client.goto(&format!("{}/", self.app.api.base)).await?;
        client.wait().at_most(PATIENCE).for_element(Locator::Id("username")).await?;
        Ok(client)
    }

    /// A new browser, signed in to the panel as `username`.
    async fn signed_in(&self, username: &str, password: &str) -> Result<Client> {
        let client = self.open().await?;
        sign_in(&client, username, password).await?;
        Ok(client)
    }
}

/// Fills in and sends the sign-in form; waits until the panel is live.
async fn sign_in(client: &Client, username: &str, password: &str) -> Result {
    client.wait().at_most(PATIENCE).for_element(Locator::Id("username")).await?.send_keys(username).await?;
    client.find(Locator::Id("password")).await?.send_keys(password).await?;
    client.find(Locator::Id("sign-in")).await?.click().await?;
    wait_attr(client, "#connection", "data-state", "live").await
}

/// Waits until the element's text contains `text`.
async fn wait_text(client: &Client, css: &str, text: &str) -> Result<String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if let Ok(shown) = element.text().await {
                if shown.contains(text) {
                    return Ok(shown);
                }
            }
        }
        assert!(Instant::now() < deadline, "{css} never showed {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the element's text is `text`.
async fn wait_exact_text(client: &Client, css: &str, text: &str) -> Result {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if element.text().await.ok().as_deref() == Some(text) {
                return Ok(());
            }
        }
        assert!(Instant::now() < deadline, "{css} never showed exactly {text:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the element's attribute equals `value`.
async fn wait_attr(client: &Client, css: &str, attribute: &str, value: &str) -> Result {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if element.attr(attribute).await.ok().flatten().as_deref() == Some(value) {
                return Ok(());
            }
        }
        assert!(Instant::now() < deadline, "{css} never had {attribute}={value:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until nothing matches `css`.
async fn wait_gone(client: &Client, css: &str) -> Result {
    let deadline = Instant::now() + PATIENCE;
    while client.find(Locator::Css(css)).await.is_ok() {
        assert!(Instant::now() < deadline, "{css} never went away");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn click(client: &Client, css: &str) -> Result {
    client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await?.click().await
}

/// Saves a screenshot as `target/screenshots/NAME.png`.
async fn screenshot(client: &Client, name: &str) -> Result {
    let png = client.screenshot().await?;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    Ok(())
}

/// Holds back the browser's fetches of `method` to URLs containing `path`
/// until [`release_fetches`]: with `before_sending` the request waits before
/// it reaches the manager; otherwise the manager answers at once and the
/// answer waits before the panel sees it. This makes a race deterministic:
/// the test makes the newer change happen in between.
async fn hold_fetches(client: &Client, method: &str, path: &str, before_sending: bool) -> Result {
    client
        .execute(
            "const [method, path, beforeSending] = arguments;
             window.__realFetch = window.__realFetch || window.fetch;
             const real = window.__realFetch;
             let release;
             const released = new Promise(resolve => { release = resolve; });
             window.__held = { caught: 0, answered: 0, release };
             window.fetch = async (input, init) => {
               const url = typeof input === 'string' ? input : input.url;
               const verb = ((init && init.method) || (typeof input === 'string' ? 'GET' : input.method)).toUpperCase();
               if (verb !== method || !url.includes(path)) return real.call(window, input, init);
               if (beforeSending) {
                 window.__held.caught += 1;
                 await released;
                 const late = await real.call(window, input, init);
                 window.__held.answered += 1;
                 return late;
               }
               const answer = await real.call(window, input, init);
               window.__held.caught += 1;
               await released;
               return answer;
             };
             return null;",
            vec![json!(method), json!(path), json!(before_sending)],
        )
        .await?;
    Ok(())
}

/// Waits until a held fetch was caught (and, unless held before sending, answered).
async fn wait_held(client: &Client) -> Result {
    wait_held_count(client, "caught", "the panel never made the held request").await
}

/// Waits until a fetch held before sending has been answered by the manager.
async fn wait_answered(client: &Client) -> Result {
    wait_held_count(client, "answered", "the held request was never answered").await
}

async fn wait_held_count(client: &Client, counter: &str, never: &str) -> Result {
    let deadline = Instant::now() + PATIENCE;
    while client.execute(&format!("return window.__held.{counter};"), vec![]).await? == json!(0) {
        assert!(Instant::now() < deadline, "{never}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Lets the held fetches go.
async fn release_fetches(client: &Client) -> Result {
    client.execute("window.__held.release(); return null;", vec![]).await?;
    Ok(())
}

/// Records what the page reports as an error: `console.error`, and errors and
/// promise rejections nobody handled (a Rust panic in the panel traps the
/// wasm: `RuntimeError: unreachable`, thrown out of the task that panicked).
async fn record_console_errors(client: &Client) -> Result {
    client
        .execute(
            "window.__consoleErrors = [];
             const original = console.error;
             console.error = (...parts) => { window.__consoleErrors.push(parts.join(' ')); original.apply(console, parts); };
             window.addEventListener('error', (event) => window.__consoleErrors.push('error: ' + event.message));
             window.addEventListener('unhandledrejection',
                 (event) => window.__consoleErrors.push('unhandled rejection: ' + event.reason));
             return null;",
            vec![],
        )
        .await?;
    Ok(())
}

async fn assert_no_console_errors(client: &Client) -> Result {
    let errors = client.execute("return window.__consoleErrors;", vec![]).await?;
    assert_eq!(errors, json!([]), "the panel reported errors (a panic stops it)");
    Ok(())
}

/// Waits until the element exists and is not disabled.
async fn wait_enabled(client: &Client, css: &str) -> Result {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = client.find(Locator::Css(css)).await {
            if element.attr("disabled").await?.is_none() {
                return Ok(());
            }
        }
        assert!(Instant::now() < deadline, "{css} never became enabled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Marks the page so a later check can prove it was never reloaded.
async fn mark_page(client: &Client) -> Result {
    client.execute("window.__notReloaded = true; return null;", vec![]).await?;
    Ok(())
}

async fn assert_not_reloaded(client: &Client) -> Result {
    let marked = client.execute("return window.__notReloaded === true;", vec![]).await?;
    assert_eq!(marked, json!(true), "the page was reloaded");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_activates_sees_banners_live_cancels_and_deactivates_without_a_reload() {
    browser_test(|browser| async move {
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        mark_page(&admin).await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;
        assert!(admin.find(Locator::Id("banner")).await.is_err(), "no banner while off");
        screenshot(&admin, "1-deactivated").await?;

        // Activate with no executions: straight to the red banner.
        admin.find(Locator::Id("reason")).await?.send_keys("kernel upgrade").await?;
        click(&admin, "#activate").await?;
        let confirm = wait_text(&admin, ".confirm", "New executions will be refused").await?;
        assert!(confirm.contains("503"), "{confirm}");
        click(&admin, "#confirm-activate").await?;
        wait_attr(&admin, "#banner", "data-state", "activated").await?;
        let banner = wait_text(&admin, "#banner", "kernel upgrade").await?;
        assert!(banner.contains("requested by admin"), "{banner}");
        wait_text(&admin, "#status-reason", "kernel upgrade").await?;
        screenshot(&admin, "2-activated").await?;
        click(&admin, "#deactivate").await?;
        wait_gone(&admin, "#banner").await?;

        // Start an execution from the executions page.
        click(&admin, "#nav-executions").await?;
        admin.wait().at_most(PATIENCE).for_element(Locator::Css("#workflow option[value='install']")).await?;
        admin.find(Locator::Id("workflow")).await?.select_by_value("install").await?;
        admin.find(Locator::Id("deployment")).await?.send_keys("web").await?;
        // The first parameter row is `duration_seconds`.
        let duration = admin.find(Locator::Css("input[name='parameter-value']")).await?;
        duration.clear().await?;
        duration.send_keys("600").await?;
        click(&admin, "#start").await?;
        wait_attr(&admin, "tbody tr .badge", "data-status", "started").await?;
        screenshot(&admin, "3-executions").await?;

        // Activate: amber banner with the count, the execution listed with Cancel.
        click(&admin, "#nav-maintenance").await?;
        click(&admin, "#activate").await?;
        click(&admin, "#confirm-activate").await?;
        wait_attr(&admin, "#banner", "data-state", "activating").await?;
        wait_text(&admin, "#banner", "1 execution still running").await?;
        wait_text(&admin, "#remaining-count", "1").await?;
        screenshot(&admin, "4-activating").await?;

        // Cancel it from the panel: red banner, no reload.
        click(&admin, "tr[data-execution-id] button.cancel").await?;
        wait_attr(&admin, "#banner", "data-state", "activated").await?;
        wait_gone(&admin, "tr[data-execution-id]").await?;
        click(&admin, "#deactivate").await?;
        wait_gone(&admin, "#banner").await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;
        assert_not_reloaded(&admin).await?;

        // The executions page shows the cancelled execution, updated live.
        click(&admin, "#nav-executions").await?;
        wait_attr(&admin, "tbody tr .badge", "data-status", "cancelled").await?;

        // At phone width the page still works: the banner and the controls are there.
        browser.app.api.activate(Some("phone check")).await;
        admin.set_window_size(390, 844).await?;
        click(&admin, "#nav-maintenance").await?;
        wait_text(&admin, "#banner", "phone check").await?;
        admin.find(Locator::Id("deactivate")).await?;
        screenshot(&admin, "8-phone").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_browser_sees_the_first_ones_change_live() {
    browser_test(|browser| async move {
        let first = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        let second = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        mark_page(&second).await?;
        click(&first, "#activate").await?;
        click(&first, "#confirm-activate").await?;
        wait_attr(&second, "#banner", "data-state", "activated").await?;
        assert_not_reloaded(&second).await?;
        click(&first, "#deactivate").await?;
        wait_gone(&second, "#banner").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_sees_no_admin_buttons_and_the_api_refuses_if_forced() {
    browser_test(|browser| async move {
        let command = UsersCommand::Add { name: "alice".into(), role: Role::User, password_stdin: true };
        common::users(browser.app.data_dir.path(), command, "alice's password\n").unwrap();
        let alice = browser.signed_in("alice", "alice's password").await?;
        wait_attr(&alice, ".state", "data-state", "deactivated").await?;
        assert!(alice.find(Locator::Id("activate")).await.is_err(), "no activate button for a user");
        assert!(alice.find(Locator::Id("deactivate")).await.is_err());
        let forced = alice
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const token = JSON.parse(sessionStorage.getItem('manager.session')).value;
                 fetch('/api/v3.1/maintenance/activate', {method: 'POST', headers: {'Authentication-Token': token}})
                   .then(r => r.json().then(body => done([r.status, body.error_code])));",
                vec![],
            )
            .await?;
        assert_eq!(forced, json!([403, "forbidden"]));
        screenshot(&alice, "5-user").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_shown_in_words_and_a_lost_stream_says_reconnecting() {
    browser_test(|browser| async move {
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        // A refused start (maintenance on) shows the API's message.
        browser.app.api.activate(None).await;
        wait_attr(&admin, "#banner", "data-state", "activated").await?;
        click(&admin, "#nav-executions").await?;
        wait_text(&admin, "p.error", "maintenance mode").await?;
        // The gate refuses the catalog too: it says so, and the workflow is typed.
        wait_text(&admin, "form.start p.error", "The catalog of workflows cannot be read").await?;
        admin.find(Locator::Css("input#workflow")).await?.send_keys("install").await?;
        admin.find(Locator::Id("deployment")).await?.send_keys("web").await?;
        click(&admin, "#start").await?;
        wait_text(
            &admin,
            "#start ~ p.error",
            "Your request was rejected since the manager is currently in maintenance mode",
        )
        .await?;
        screenshot(&admin, "6-error").await?;
        // Queued, it is taken.
        click(&admin, "#queue").await?;
        click(&admin, "#start").await?;
        wait_text(&admin, "#start ~ p.ok", "is queued").await?;
        wait_attr(&admin, "tbody tr .badge", "data-status", "queued").await?;

        // Sign-in with a wrong password says so.
        let other = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        click(&other, "#sign-out").await?;
        other.wait().at_most(PATIENCE).for_element(Locator::Id("username")).await?.send_keys("admin").await?;
        other.find(Locator::Id("password")).await?.send_keys("wrong password").await?;
        click(&other, "#sign-in").await?;
        wait_text(&other, "form.login .error", "Wrong username or password").await?;

        // The manager goes away: the header says the live stream is reconnecting.
        let Browser { app, .. } = browser;
        let _data_dir = app.stop().await;
        wait_attr(&admin, "#connection", "data-state", "reconnecting").await?;
        wait_text(&admin, "#connection", "reconnecting").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_returns_to_sign_in_with_the_reason() {
    browser_test_with_token_ttl(3, |browser| async move {
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        // The stream ends at the token's expiry; its reconnect is refused; the panel signs out.
        admin.wait().at_most(PATIENCE).for_element(Locator::Css("form.login")).await?;
        wait_text(&admin, "form.login .error", "expired").await?;
        screenshot(&admin, "7-expired").await?;
        Ok(())
    })
    .await;
}

/// A manager started again on a stopped one's data dir and address: what a
/// browser sees as a manager restart.
struct Restarted {
    shutdown: CancellationToken,
    _data_dir: tempfile::TempDir,
}

impl Restarted {
    async fn start(address: &str, data_dir: tempfile::TempDir) -> Self {
        let dist = std::env::var_os("PANEL_DIST").expect("PANEL_DIST");
        let config = Config {
            bind: address.to_owned(),
            dist: dist.into(),
            admin_password: Some(common::ADMIN_PASSWORD.into()),
            workflows: manager::workflows::EXAMPLES.into(),
            database: common::test_database(data_dir.path()),
            replica_id: Some(common::TEST_REPLICA.into()),
            ..Config::local(data_dir.path().to_owned())
        };
        let manager = Manager::open(&config).await.expect("reopen the manager");
        let listener = tokio::net::TcpListener::bind(address).await.expect("the same address again");
        let shutdown = CancellationToken::new();
        tokio::spawn(manager.serve(listener, shutdown.clone()));
        Self { shutdown, _data_dir: data_dir }
    }
}

impl Drop for Restarted {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The token the panel holds in its session storage.
async fn panel_token(client: &Client) -> Result<String> {
    let token = client
        .execute("const s = sessionStorage.getItem('manager.session'); return s && JSON.parse(s).value;", vec![])
        .await?;
    Ok(token.as_str().expect("a signed-in panel holds a token").to_owned())
}

/// Runs axe-core (WCAG 2 A/AA and best practices) on the page as it is and
/// fails listing every violation: rule, impact, elements.
async fn assert_accessible(client: &Client, what: &str) -> Result {
    let loaded = client.execute("return typeof window.axe === 'object';", vec![]).await?;
    if loaded != json!(true) {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../node_modules/axe-core/axe.min.js");
        let axe = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} ({e}): run scripts/setup (npm ci installs axe-core)", path.display()));
        // WebDriver runs this as a function body: axe puts itself on `window`.
        client.execute(&format!("{axe}\nreturn null;"), vec![]).await?;
    }
    let outcome = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const only = { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] };
             axe.run(document, { runOnly: only })
               .then(results => done({
                 passed: results.passes.length,
                 violations: results.violations.map(v => ({
                   id: v.id, impact: v.impact, targets: v.nodes.map(n => n.target.join(' ')),
                 })),
               }))
               .catch(error => done({ passed: 0, violations: [{ id: 'axe failed to run', impact: String(error) }] }));",
            vec![],
        )
        .await?;
    let violations = &outcome["violations"];
    assert_eq!(*violations, json!([]), "axe-core found violations on {what}:\n{violations:#}");
    assert!(outcome["passed"].as_u64() > Some(10), "axe-core checked next to nothing on {what}: {outcome}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_panel_works_under_strict_security_headers() {
    browser_test(|browser| async move {
        for path in ["/", "/api/v3.1/version"] {
            let response = browser.app.api.http.get(format!("{}{path}", browser.app.api.base)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let header = |name: &str| {
                let value = response.headers().get(name).unwrap_or_else(|| panic!("{path} lacks {name}"));
                value.to_str().unwrap().to_owned()
            };
            let policy = header("content-security-policy");
            assert!(policy.starts_with("default-src 'self';"), "{path}: {policy}");
            assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
            assert!(policy.contains("'wasm-unsafe-eval'") && policy.contains("'sha256-"), "{path}: {policy}");
            assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
            assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
            assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        }
        // Under that policy the wasm loads, signs in and goes live, styled.
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;
        let background = admin.execute("return getComputedStyle(document.body).backgroundColor;", vec![]).await?;
        assert_eq!(background, json!("rgb(246, 247, 249)"), "the panel's stylesheet applies");
        Ok(())
    })
    .await;
}

/// SPEC §13, one file to deploy: the binary started in an empty directory
/// without `--dist` serves the panel built into it, and in Chromium it signs
/// in and goes live under the strict policy.
#[tokio::test(flavor = "multi_thread")]
async fn the_panel_built_into_the_binary_works_from_an_empty_directory() {
    if std::env::var_os("PANEL_DIST").is_none() {
        eprintln!("PANEL_DIST not set: run scripts/test to build the panel and run the browser tests");
        return;
    }
    assert!(manager::panel::Panel::embedded(), "PANEL_DIST is set but this build carries no panel (dist/)");
    let empty = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut command = Binary::command(data.path());
    command.current_dir(empty.path());
    let manager = Binary::start(command, data);
    let driver = Driver::start(None);
    let client = driver.session().await;
    let outcome = AssertUnwindSafe(async {
        client.goto(&format!("{}/", manager.base)).await?;
        sign_in(&client, "admin", common::ADMIN_PASSWORD).await?;
        wait_attr(&client, ".state", "data-state", "deactivated").await
    })
    .catch_unwind()
    .await;
    let _ = client.close().await;
    drop(driver);
    match outcome {
        Ok(result) => result.expect("browser command failed"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
    manager.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_activate_answer_does_not_undo_the_newer_activated_event() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let execution = api.start(common::LONG).await;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;
        // The answer to the panel's activate ("activating, 1 running") is held
        // back until the execution has ended and `activated` has arrived live.
        hold_fetches(&admin, "POST", "/maintenance/activate", false).await?;
        click(&admin, "#activate").await?;
        click(&admin, "#confirm-activate").await?;
        wait_held(&admin).await?;
        wait_attr(&admin, "#banner", "data-state", "activating").await?;
        api.cancel(execution.id).await;
        wait_attr(&admin, "#banner", "data-state", "activated").await?;
        release_fetches(&admin).await?;
        // The panel has taken the answer once its button is no longer busy.
        wait_enabled(&admin, "#deactivate").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let banner = admin.find(Locator::Id("banner")).await?;
        assert_eq!(banner.attr("data-state").await?.as_deref(), Some("activated"), "{}", banner.text().await?);
        wait_attr(&admin, ".state", "data-state", "activated").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_manager_restart_the_browsers_own_reconnect_reloads_the_list() {
    browser_test(|browser| async move {
        let execution = browser.app.api.start(common::LONG).await;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        click(&admin, "#nav-executions").await?;
        let badge = format!("tr[data-execution-id='{}'] .badge", execution.id);
        wait_attr(&admin, &badge, "data-status", "started").await?;
        mark_page(&admin).await?;
        // The manager stops and starts again on the same address: the browser's
        // EventSource reconnects by itself. The execution that was running is
        // marked failed at start-up, before any stream is open (no event).
        let Browser { app, .. } = browser;
        let address = app.api.base.trim_start_matches("http://").to_owned();
        let data_dir = app.stop().await;
        wait_attr(&admin, "#connection", "data-state", "reconnecting").await?;
        let _restarted = Restarted::start(&address, data_dir).await;
        wait_attr(&admin, "#connection", "data-state", "live").await?;
        wait_attr(&admin, &badge, "data-status", "failed").await?;
        assert_not_reloaded(&admin).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_list_answer_does_not_overwrite_a_newer_execution_event() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let older = api.start(common::LONG).await;
        let newer = api.start(common::LONG).await;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        // The list (both `started`) is answered, then held while `newer` is cancelled.
        hold_fetches(&admin, "GET", "/api/v3.1/executions", false).await?;
        click(&admin, "#nav-executions").await?;
        wait_held(&admin).await?;
        api.cancel(newer.id).await;
        let newer_badge = format!("tr[data-execution-id='{}'] .badge", newer.id);
        wait_attr(&admin, &newer_badge, "data-status", "cancelled").await?;
        release_fetches(&admin).await?;
        // The list has been taken once its other row is shown.
        wait_attr(&admin, &format!("tr[data-execution-id='{}'] .badge", older.id), "data-status", "started").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let shown = admin.find(Locator::Css(&newer_badge)).await?.attr("data-status").await?;
        assert_eq!(shown.as_deref(), Some("cancelled"), "the older list answer moved the execution back");
        let rows = admin.find_all(Locator::Css("tbody tr[data-execution-id]")).await?;
        assert_eq!(rows.len(), 2, "one row per execution");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_answered_after_the_row_is_gone_does_not_stop_the_panel() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let execution = api.start(common::LONG).await;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        record_console_errors(&admin).await?;
        click(&admin, "#nav-executions").await?;
        let badge = format!("tr[data-execution-id='{}'] .badge", execution.id);
        wait_attr(&admin, &badge, "data-status", "started").await?;
        // Cancel is clicked just as the execution ends: the request is held
        // until the end has replaced the row's buttons, then answered 409.
        hold_fetches(&admin, "POST", &format!("/executions/{}", execution.id), true).await?;
        click(&admin, &format!("tr[data-execution-id='{}'] button.cancel", execution.id)).await?;
        wait_held(&admin).await?;
        api.cancel(execution.id).await;
        wait_attr(&admin, &badge, "data-status", "cancelled").await?;
        wait_gone(&admin, &format!("tr[data-execution-id='{}'] button.cancel", execution.id)).await?;
        release_fetches(&admin).await?;
        wait_answered(&admin).await?;
        // The panel reads the 409 in the next moments; then it must still work.
        tokio::time::sleep(Duration::from_millis(500)).await;
        api.activate(Some("still alive")).await;
        wait_text(&admin, "#banner", "still alive").await?;
        assert_no_console_errors(&admin).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_out_revokes_the_token() {
    browser_test(|browser| async move {
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        let token = panel_token(&admin).await?;
        click(&admin, "#sign-out").await?;
        admin.wait().at_most(PATIENCE).for_element(Locator::Id("username")).await?;
        let kept = admin.execute("return sessionStorage.getItem('manager.session');", vec![]).await?;
        assert_eq!(kept, json!(null), "the panel forgot the token");
        let old = Api { token: Some(token), ..browser.app.api.clone() };
        common::assert_error(old.get("/maintenance").await, 401, shared::ErrorCode::Unauthorized).await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_and_state_passes_axe() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let admin = browser.open().await?;
        assert_accessible(&admin, "the sign-in page").await?;
        admin.find(Locator::Id("username")).await?.send_keys("admin").await?;
        admin.find(Locator::Id("password")).await?.send_keys("wrong password").await?;
        click(&admin, "#sign-in").await?;
        wait_text(&admin, "form.login .error", "Wrong username or password").await?;
        assert_accessible(&admin, "the sign-in page with an error").await?;
        for field in ["username", "password"] {
            admin.find(Locator::Id(field)).await?.clear().await?;
        }
        sign_in(&admin, "admin", common::ADMIN_PASSWORD).await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;
        assert_accessible(&admin, "the maintenance page, deactivated").await?;
        click(&admin, "#activate").await?;
        wait_text(&admin, ".confirm", "Activate maintenance mode?").await?;
        assert_accessible(&admin, "the activation confirmation").await?;
        click(&admin, "#cancel-activate").await?;

        let execution = api.start(common::LONG).await;
        api.activate(Some("axe")).await;
        wait_attr(&admin, "#banner", "data-state", "activating").await?;
        wait_attr(&admin, "tr[data-execution-id] .badge", "data-status", "started").await?;
        assert_accessible(&admin, "the maintenance page, activating").await?;

        click(&admin, "#nav-executions").await?;
        wait_attr(&admin, &format!("tr[data-execution-id='{}'] .badge", execution.id), "data-status", "started")
            .await?;
        assert_accessible(&admin, "the executions page").await?;
        api.cancel(execution.id).await;
        wait_attr(&admin, "#banner", "data-state", "activated").await?;
        admin.find(Locator::Id("deployment")).await?.send_keys("web").await?;
        click(&admin, "#start").await?;
        wait_text(&admin, "#start ~ p.error", "maintenance mode").await?;
        assert_accessible(&admin, "the executions page, activated, with an error").await?;

        click(&admin, "#nav-maintenance").await?;
        wait_attr(&admin, ".state", "data-state", "activated").await?;
        assert_accessible(&admin, "the maintenance page, activated").await?;
        Ok(())
    })
    .await;
}

/// The lines the execution's page shows in its output log, in order.
async fn output_lines(client: &Client) -> Result<Vec<String>> {
    let lines = client
        .execute("return [...document.querySelectorAll('#output > div')].map(d => d.textContent);", vec![])
        .await?;
    Ok(serde_json::from_value(lines).expect("a list of lines"))
}

/// Every line the manager stored for the execution, as the page should show them.
async fn stored_lines(api: &Api, id: uuid::Uuid) -> Vec<String> {
    let page: serde_json::Value = api.get(&format!("/executions/{id}/events")).await.json().await.unwrap();
    let items = page["items"].as_array().expect("items").iter();
    items
        .map(|event| match event["stream"].as_str() {
            Some("stdout") => event["line"].as_str().unwrap().to_owned(),
            stream => format!("{}{}", stream.unwrap(), event["line"].as_str().unwrap()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_started_from_the_catalog_shows_its_output_live_and_ends_cancelled() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        record_console_errors(&admin).await?;
        mark_page(&admin).await?;
        click(&admin, "#nav-executions").await?;
        assert_eq!(admin.current_url().await?.path(), "/executions");

        // The catalog, with each workflow's description; parameters as rows.
        let option = "#workflow option[value='upgrade']";
        let upgrade = admin.wait().at_most(PATIENCE).for_element(Locator::Css(option)).await?;
        let text = upgrade.text().await?;
        assert!(text.starts_with("upgrade — Upgrades a deployment"), "{text}");
        admin.find(Locator::Id("workflow")).await?.select_by_value("upgrade").await?;
        admin.find(Locator::Id("deployment")).await?.send_keys("web").await?;
        let names = admin.find_all(Locator::Css("input[name='parameter-name']")).await?;
        assert_eq!(names.len(), 1, "one row to begin with");
        assert_eq!(names[0].prop("value").await?.as_deref(), Some("duration_seconds"));
        let duration = admin.find(Locator::Css("input[name='parameter-value']")).await?;
        duration.clear().await?;
        duration.send_keys("20").await?;
        click(&admin, "#add-parameter").await?;
        click(&admin, "#add-parameter").await?;
        let names = admin.find_all(Locator::Css("input[name='parameter-name']")).await?;
        let values = admin.find_all(Locator::Css("input[name='parameter-value']")).await?;
        assert_eq!((names.len(), values.len()), (3, 3));
        names[1].send_keys("note").await?;
        values[1].send_keys("from the panel").await?;
        names[2].send_keys("dropped").await?;
        values[2].send_keys("again").await?;
        admin.find_all(Locator::Css(".parameter button.remove")).await?[2].click().await?;
        assert_eq!(admin.find_all(Locator::Css(".parameter")).await?.len(), 2, "the third row is gone");
        assert_accessible(&admin, "the start form with parameter rows").await?;
        click(&admin, "#start").await?;
        wait_text(&admin, "form.start p.ok", "Execution").await?;

        // Sent as Cloudify's `-p KEY=VALUE` sends them: text.
        let row = admin.wait().at_most(PATIENCE).for_element(Locator::Css("tbody tr[data-execution-id]")).await?;
        let id: uuid::Uuid = row.attr("data-execution-id").await?.expect("an id").parse().unwrap();
        let execution = api.execution(id).await;
        assert_eq!(execution.workflow_id, "upgrade");
        assert_eq!(
            serde_json::Value::Object(execution.parameters),
            json!({"duration_seconds": "20", "note": "from the panel"})
        );

        // Its page, from its row: the fields, then the output as it is written.
        click(&admin, &format!("tr[data-execution-id='{id}'] a")).await?;
        assert_eq!(admin.current_url().await?.path(), format!("/executions/{id}"));
        wait_attr(&admin, "#execution-status", "data-status", "started").await?;
        wait_text(&admin, "section[aria-label='Execution'] dl", "note = from the panel").await?;
        wait_text(&admin, "#output", "upgrade: step 1/5").await?;
        assert!(!admin.find(Locator::Id("output")).await?.text().await?.contains("step 2/5"), "a step takes 4 s");
        wait_text(&admin, "#output", "upgrade: step 2/5").await?;

        // Cancel: the program writes to stderr, marked in words; the page shows the end.
        click(&admin, "section[aria-label='Execution'] button.cancel").await?;
        wait_attr(&admin, "#execution-status", "data-status", "cancelled").await?;
        wait_text(&admin, "#output .stderr", "upgrade: stopped by a cancel").await?;
        let tag = admin.find(Locator::Css("#output .stderr .tag")).await?.text().await?;
        assert_eq!(tag, "stderr");
        wait_gone(&admin, "section[aria-label='Execution'] button.cancel").await?;
        // Each stored line once, in order.
        assert_eq!(output_lines(&admin).await?, stored_lines(api, id).await);
        assert_accessible(&admin, "the execution page, cancelled").await?;
        screenshot(&admin, "9-execution").await?;

        // Back to the list, still without a reload.
        admin.back().await?;
        admin.wait().at_most(PATIENCE).for_element(Locator::Id("start")).await?;
        assert_eq!(admin.current_url().await?.path(), "/executions");
        wait_attr(&admin, &format!("tr[data-execution-id='{id}'] .badge"), "data-status", "cancelled").await?;
        assert_not_reloaded(&admin).await?;
        assert_no_console_errors(&admin).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_execution_page_opens_from_the_remaining_executions_and_resumes_after_a_restart() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let execution = api.start(common::LONG).await;
        api.activate(Some("restart")).await;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        wait_attr(&admin, "#banner", "data-state", "activating").await?;
        click(
            &admin,
            &format!("section[aria-label='Remaining executions'] tr[data-execution-id='{}'] a", execution.id),
        )
        .await?;
        assert_eq!(admin.current_url().await?.path(), format!("/executions/{}", execution.id));
        wait_attr(&admin, "#execution-status", "data-status", "started").await?;
        wait_text(&admin, "#output", "install: step 1/5").await?;
        mark_page(&admin).await?;

        // The manager stops (its executions end `failed`) and starts again,
        // `activated` (its last remaining execution has ended): the gate
        // refuses the output stream, and the page says so.
        let Browser { app, .. } = browser;
        let address = app.api.base.trim_start_matches("http://").to_owned();
        let api = app.api.clone();
        let data_dir = app.stop().await;
        let _restarted = Restarted::start(&address, data_dir).await;
        wait_attr(&admin, "#banner", "data-state", "activated").await?;
        wait_text(&admin, "section[aria-label='Execution'] p.error", "maintenance mode").await?;
        assert_accessible(&admin, "the execution page, refused by the gate").await?;
        // Once maintenance mode is off the page connects again by itself and
        // resumes the output after the last line it had: each line once.
        api.deactivate().await;
        wait_attr(&admin, "#execution-status", "data-status", "failed").await?;
        wait_gone(&admin, "section[aria-label='Execution'] p.error").await?;
        wait_text(&admin, "section[aria-label='Execution'] dl", "The manager was stopped").await?;
        let stored = stored_lines(&api, execution.id).await;
        let deadline = Instant::now() + PATIENCE;
        while output_lines(&admin).await? != stored {
            assert!(Instant::now() < deadline, "{:?} is not {stored:?}", output_lines(&admin).await?);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_not_reloaded(&admin).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_page_opened_by_its_address_after_sign_in() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let execution = api.start(0.2).await;
        let admin = browser.open().await?;
        admin.goto(&format!("{}/executions/{}", api.base, execution.id)).await?;
        sign_in(&admin, "admin", common::ADMIN_PASSWORD).await?;
        wait_attr(&admin, "#execution-status", "data-status", "terminated").await?;
        wait_text(&admin, "#output", "install: done").await?;
        assert!(admin.find(Locator::Css("#output .stderr")).await.is_err(), "nothing on stderr");
        assert_eq!(output_lines(&admin).await?, stored_lines(api, execution.id).await);
        // An execution that does not exist: said in words.
        admin.goto(&format!("{}/executions/{}", api.base, uuid::Uuid::nil())).await?;
        wait_text(&admin, "section[aria-label='Execution'] p.error", "not found").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_output_follows_the_newest_line_only_while_the_reader_is_at_the_bottom() {
    // A workflow that writes a screenful at once, then more after a pause.
    let workflows = tempfile::tempdir().unwrap();
    let noisy = workflows.path().join("noisy");
    std::fs::write(
        &noisy,
        "#!/bin/sh\n# Writes many lines.\n\
         i=0; while [ $i -lt 100 ]; do echo \"line $i\"; i=$((i + 1)); done\n\
         sleep 4\n\
         while [ $i -lt 200 ]; do echo \"line $i\"; i=$((i + 1)); done\n\
         sleep 600\n",
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&noisy).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&noisy, permissions).unwrap();
    let path = workflows.path().to_owned();
    browser_test_on(
        |dist| async move { TestApp::spawn_with_dist_and_workflows(&dist, &path).await },
        |browser| async move {
            let api = &browser.app.api;
            let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
            let body = json!({"workflow_id": "noisy", "deployment_id": "web"});
            let started: shared::Execution = api.post("/executions", Some(body)).await.json().await.unwrap();
            admin.goto(&format!("{}/executions/{}", api.base, started.id)).await?;
            wait_text(&admin, "#output", "line 99").await?;
            let position = "const o = document.getElementById('output');
                            return [o.scrollTop, o.scrollHeight - o.clientHeight];";
            let at = admin.execute(position, vec![]).await?;
            assert!(at[1].as_f64() > Some(0.0), "the log scrolls: {at}");
            assert!((at[0].as_f64().unwrap() - at[1].as_f64().unwrap()).abs() < 2.0, "at the newest line: {at}");
            // The reader scrolls up: new lines do not move the log.
            admin.execute("document.getElementById('output').scrollTop = 0; return null;", vec![]).await?;
            wait_text(&admin, "#output", "line 199").await?;
            let at = admin.execute(position, vec![]).await?;
            assert_eq!(at[0], json!(0), "the log stayed where the reader was: {at}");
            api.cancel(started.id).await;
            wait_attr(&admin, "#execution-status", "data-status", "cancelled").await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_catalog_is_said_and_the_workflow_can_be_typed() {
    let workflows = tempfile::tempdir().unwrap();
    let path = workflows.path().to_owned();
    browser_test_on(
        |dist| async move { TestApp::spawn_with_dist_and_workflows(&dist, &path).await },
        |browser| async move {
            let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
            click(&admin, "#nav-executions").await?;
            wait_text(&admin, "form.start p.error", "The manager has no workflows").await?;
            admin.find(Locator::Css("input#workflow")).await?.send_keys("install").await?;
            admin.find(Locator::Id("deployment")).await?.send_keys("web").await?;
            click(&admin, "#start").await?;
            wait_text(&admin, "#start ~ p.error", "install").await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_output_shows_the_managers_marker_in_words() {
    // More lines than the manager keeps: the last stored line is its marker.
    let workflows = tempfile::tempdir().unwrap();
    let flood = workflows.path().join("flood");
    std::fs::write(&flood, "#!/bin/sh\n# Writes more lines than are kept.\nseq 0 10049 | sed 's/^/line /'\n").unwrap();
    let mut permissions = std::fs::metadata(&flood).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&flood, permissions).unwrap();
    let path = workflows.path().to_owned();
    browser_test_on(
        |dist| async move { TestApp::spawn_with_dist_and_workflows(&dist, &path).await },
        |browser| async move {
            let api = &browser.app.api;
            let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
            let body = json!({"workflow_id": "flood", "deployment_id": "web"});
            let started: shared::Execution = api.post("/executions", Some(body)).await.json().await.unwrap();
            let opened = Instant::now();
            admin.goto(&format!("{}/executions/{}", api.base, started.id)).await?;
            wait_attr(&admin, "#execution-status", "data-status", "terminated").await?;
            let marker = wait_text(&admin, "#output .manager", "output truncated").await?;
            // Once per line, reading the layout to follow the newest line took most of a minute.
            let took = opened.elapsed();
            assert!(took < Duration::from_secs(15), "10 000 lines took {took:?} to show");
            assert!(marker.starts_with("manager"), "tagged in words: {marker}");
            let count = admin.execute("return document.querySelectorAll('#output > div').length;", vec![]).await?;
            assert_eq!(count, json!(10_001), "every kept line once, then the marker");
            let at = admin
                .execute("const o = document.getElementById('output'); return o.scrollHeight - o.clientHeight - o.scrollTop;", vec![])
                .await?;
            assert!(at.as_f64() < Some(2.0), "the newest line in view: {at}");
            assert_accessible(&admin, "the execution page with a truncated output").await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_status_card_says_how_many_replicas_enforce_it() {
    browser_test(|browser| async move {
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        wait_exact_text(&admin, "#replicas", "1 of 1 replicas enforcing").await?;
        // After a change the one replica has applied it too.
        browser.app.api.activate(Some("one replica")).await;
        wait_text(&admin, "#status-reason", "one replica").await?;
        wait_exact_text(&admin, "#replicas", "1 of 1 replicas enforcing").await?;
        Ok(())
    })
    .await;
}

/// Counts the browser's fetches to URLs containing `path` (from now on) and
/// can hold new ones back before they are sent ([`hold_counted`]): a test
/// then knows that every answer the panel has was made before a change.
async fn count_fetches(client: &Client, path: &str) -> Result {
    client
        .execute(
            "const [path] = arguments;
             const real = window.fetch;
             const counted = window.__counted = { sent: 0, inflight: 0, hold: null, release: null };
             window.fetch = async (input, init) => {
               const url = typeof input === 'string' ? input : input.url;
               if (!url.includes(path)) return real.call(window, input, init);
               if (counted.hold) await counted.hold;
               counted.sent += 1;
               counted.inflight += 1;
               try { return await real.call(window, input, init); }
               finally { counted.inflight -= 1; }
             };
             return null;",
            vec![json!(path)],
        )
        .await?;
    Ok(())
}

/// How many counted fetches have been sent.
async fn counted_sent(client: &Client) -> Result<u64> {
    let sent = client.execute("return window.__counted.sent;", vec![]).await?;
    Ok(sent.as_u64().expect("a count"))
}

/// Holds new counted fetches back and waits until those sent are answered.
async fn hold_counted(client: &Client) -> Result {
    client
        .execute(
            "const counted = window.__counted;
             counted.hold = new Promise(resolve => { counted.release = resolve; });
             return null;",
            vec![],
        )
        .await?;
    let deadline = Instant::now() + PATIENCE;
    while client.execute("return window.__counted.inflight;", vec![]).await? != json!(0) {
        assert!(Instant::now() < deadline, "a counted fetch was never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Lets the held counted fetches go, and the next ones through.
async fn release_counted(client: &Client) -> Result {
    client.execute("const c = window.__counted; c.hold = null; c.release(); return null;", vec![]).await?;
    Ok(())
}

/// Two replicas on one PostgreSQL database (SPEC §8): the panel on replica
/// one counts both, follows a change made through replica two live, names
/// the replicas that have not applied it yet, and counts both again.
#[tokio::test(flavor = "multi_thread")]
async fn the_panel_on_one_replica_follows_a_change_made_on_another_and_counts_both_enforcing() {
    let url = pg_harness::shared().fresh_database().expect("a fresh PostgreSQL database");
    let first_url = url.clone();
    browser_test_on(
        |dist| async move {
            let data_dir = tempfile::tempdir().unwrap();
            let config =
                Config { dist, replica_id: Some("r1".into()), ..TestApp::config_on(data_dir.path(), Some(first_url)) };
            TestApp::spawn_config(data_dir, config).await
        },
        |browser| async move {
            let data_dir = tempfile::tempdir().unwrap();
            let config = Config { replica_id: Some("r2".into()), ..TestApp::config_on(data_dir.path(), Some(url)) };
            let second = TestApp::spawn_config(data_dir, config).await;
            let addresses = [&browser.app.api.base, &second.api.base].map(|base| base.replace("http://", ""));

            let admin = browser.open().await?;
            count_fetches(&admin, "/maintenance/replicas").await?;
            record_console_errors(&admin).await?;
            sign_in(&admin, "admin", common::ADMIN_PASSWORD).await?;
            mark_page(&admin).await?;
            wait_attr(&admin, ".state", "data-state", "deactivated").await?;
            wait_exact_text(&admin, "#replicas", "2 of 2 replicas enforcing").await?;

            // Once both replicas have said where they serve, the panel reads
            // the list again; then its reads are held back, so the list it
            // shows after the change was read before it.
            let api = &browser.app.api;
            let deadline = Instant::now() + PATIENCE;
            loop {
                let listed: shared::api::ReplicasResponse =
                    api.get("/maintenance/replicas").await.json().await.unwrap();
                let serving: Vec<_> = listed.items.iter().map(|replica| replica.address.clone()).collect();
                if serving == addresses {
                    break;
                }
                assert!(Instant::now() < deadline, "the replicas list {listed:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let sent = counted_sent(&admin).await?;
            let deadline = Instant::now() + PATIENCE;
            while counted_sent(&admin).await? <= sent {
                assert!(Instant::now() < deadline, "the panel did not read the replicas again");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            hold_counted(&admin).await?;

            // Activated through replica two: replica one's panel shows it live.
            second.api.activate(Some("from replica two")).await;
            wait_attr(&admin, "#banner", "data-state", "activated").await?;
            wait_text(&admin, "#status-reason", "from replica two").await?;
            let lagging =
                format!("0 of 2 replicas enforcing — not yet: r1 at {}, r2 at {}", addresses[0], addresses[1]);
            wait_exact_text(&admin, "#replicas", &lagging).await?;
            screenshot(&admin, "10-replicas-not-yet").await?;
            assert_accessible(&admin, "the maintenance page, replicas not yet enforcing").await?;

            // The replicas have applied it (each renewed its row): both enforce it.
            release_counted(&admin).await?;
            wait_exact_text(&admin, "#replicas", "2 of 2 replicas enforcing").await?;
            screenshot(&admin, "11-replicas").await?;
            assert_accessible(&admin, "the maintenance page, two replicas enforcing").await?;
            assert_not_reloaded(&admin).await?;
            assert_no_console_errors(&admin).await?;
            second.stop().await;
            Ok(())
        },
    )
    .await;
}

/// The time `ms` milliseconds from now, as the API writes times (UTC, milliseconds, `Z`).
fn from_now(ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(ms)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `POST /maintenance/windows` with `body`: the window scheduled (201).
async fn schedule(api: &Api, body: serde_json::Value) -> serde_json::Value {
    let response = api.post("/maintenance/windows", Some(body)).await;
    assert_eq!(response.status(), 201, "schedule a window");
    response.json().await.expect("a window")
}

/// The window `id` as `GET /maintenance/windows` lists it.
async fn listed_window(api: &Api, id: &serde_json::Value) -> serde_json::Value {
    let list: serde_json::Value = api.get("/maintenance/windows").await.json().await.expect("a list");
    let items = list["items"].as_array().expect("items");
    items.iter().find(|window| window["id"] == *id).cloned().unwrap_or_else(|| panic!("{id} is not listed: {list}"))
}

/// Waits until the manager lists window `id` in `state`.
async fn wait_window_state(api: &Api, id: &serde_json::Value, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let window = listed_window(api, id).await;
        if window["state"] == state {
            return window;
        }
        assert!(Instant::now() < deadline, "window {id} never became {state}: {window}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sets an input's value as a person picking it would (e.g. a `datetime-local`'s
/// `2030-01-01T10:00`, whose typed form depends on the browser's locale).
async fn set_value(client: &Client, css: &str, value: &str) -> Result {
    client.wait().at_most(PATIENCE).for_element(Locator::Css(css)).await?;
    client
        .execute(
            "const input = document.querySelector(arguments[0]);
             input.value = arguments[1];
             input.dispatchEvent(new Event('input', { bubbles: true }));
             return input.value;",
            vec![json!(css), json!(value)],
        )
        .await?;
    Ok(())
}

/// `at` (as the API writes it) in the browser's local time, as the browser writes it.
async fn browser_local_time(client: &Client, at: &serde_json::Value) -> Result<String> {
    let local = client.execute("return new Date(arguments[0]).toLocaleString();", vec![at.clone()]).await?;
    Ok(local.as_str().expect("a string").to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_windows_notice_shows_live_in_local_time_then_its_maintenance_and_a_cancel_takes_it_away() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        mark_page(&admin).await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;
        // It starts in 5 s with 3 s of notice: the notice period begins in 2 s.
        let window = schedule(
            api,
            json!({"starts_at": from_now(5_000), "ends_at": from_now(9_000), "notice_seconds": 3, "reason": "kernel patch"}),
        )
        .await;
        assert!(admin.find(Locator::Id("notice")).await.is_err(), "no notice before the notice period");
        let notice = wait_text(&admin, "#notice", "kernel patch").await?;
        let (start, end) =
            (browser_local_time(&admin, &window["starts_at"]).await?, browser_local_time(&admin, &window["ends_at"]).await?);
        assert!(notice.contains(&format!("Maintenance is scheduled from {start} to {end}")), "{notice}");
        assert_eq!(admin.find(Locator::Id("notice")).await?.attr("role").await?.as_deref(), Some("status"));
        assert!(admin.find(Locator::Id("banner")).await.is_err(), "maintenance mode is not on yet");

        // At its start the manager activates: the red banner; the notice goes.
        wait_attr(&admin, "#banner", "data-state", "activated").await?;
        wait_text(&admin, "#banner", "kernel patch").await?;
        wait_gone(&admin, "#notice").await?;
        // At its end it deactivates.
        wait_gone(&admin, "#banner").await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;

        // A window in its notice period at once (no end) goes away live when cancelled.
        let later = schedule(
            api,
            json!({"starts_at": from_now(3_600_000), "notice_seconds": 7200, "reason": "database upgrade"}),
        )
        .await;
        let notice = wait_text(&admin, "#notice", "database upgrade").await?;
        assert!(notice.contains("until an admin ends it"), "{notice}");
        let id = later["id"].as_str().expect("an id");
        let cancelled = api.request(reqwest::Method::DELETE, &format!("/maintenance/windows/{id}")).send().await.unwrap();
        assert_eq!(cancelled.status(), 200, "cancel the window");
        wait_gone(&admin, "#notice").await?;
        assert_not_reloaded(&admin).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_form_sends_local_times_as_utc_and_the_list_extends_and_cancels() {
    // India is UTC+05:30 all year: a local time differs from UTC, and no DST moves it.
    browser_test_in_zone("Asia/Kolkata", |browser| async move {
        let api = &browser.app.api;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        let offset = admin.execute("return new Date(2030, 0, 1).getTimezoneOffset();", vec![]).await?;
        assert_eq!(offset, json!(-330), "Chromium's local time is India's (TZ)");
        wait_text(&admin, "section[aria-labelledby='windows-title']", "No windows yet.").await?;

        // The day after tomorrow, 10:00 to 12:30 local time: 04:30 to 07:00 UTC.
        let day = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d").to_string();
        set_value(&admin, "#window-start", &format!("{day}T10:00")).await?;
        set_value(&admin, "#window-end", &format!("{day}T12:30")).await?;
        admin.find(Locator::Id("window-reason")).await?.send_keys("disk swap").await?;
        let notice = admin.find(Locator::Id("window-notice")).await?;
        notice.clear().await?;
        notice.send_keys("30").await?;
        click(&admin, "#window-read-only").await?;
        click(&admin, "#schedule").await?;
        let row = "#windows tr[data-state='scheduled']";
        wait_text(&admin, row, "disk swap").await?;
        let list: serde_json::Value = api.get("/maintenance/windows").await.json().await.unwrap();
        let window = list["items"][0].clone();
        assert_eq!(window["starts_at"], format!("{day}T04:30:00.000Z"), "{window}");
        assert_eq!(window["ends_at"], format!("{day}T07:00:00.000Z"), "{window}");
        assert_eq!(window["notice_seconds"], 1800, "{window}");
        assert_eq!(window["mode"], "read_only", "{window}");
        assert_eq!(window["created_by"], "admin", "{window}");
        // The list shows them in local time.
        let shown = wait_text(&admin, row, &browser_local_time(&admin, &window["starts_at"]).await?).await?;
        assert!(shown.contains(&browser_local_time(&admin, &window["ends_at"]).await?), "{shown}");
        assert!(shown.contains("read_only") && shown.contains("admin"), "{shown}");
        wait_text(&admin, "section[aria-labelledby='windows-title'] p.ok", "is scheduled").await?;
        // The replicas line catches up with the change within its 5 s re-read.
        wait_exact_text(&admin, "#replicas", "1 of 1 replicas enforcing").await?;
        // Tall enough for the form and the list together.
        admin.set_window_size(1100, 1400).await?;
        screenshot(&admin, "11-windows").await?;
        admin.set_window_size(1100, 800).await?;

        // The same window again overlaps it: the manager's 409 in words.
        let overlap = api.post(
            "/maintenance/windows",
            Some(json!({"starts_at": window["starts_at"], "ends_at": window["ends_at"]})),
        );
        let refused = common::assert_error(overlap.await, 409, shared::ErrorCode::WindowOverlaps).await;
        click(&admin, "#schedule").await?;
        wait_exact_text(&admin, "section[aria-labelledby='windows-title'] p.error", &refused.message).await?;
        // A start in the past: a 400 naming the field.
        set_value(&admin, "#window-start", "2001-01-01T10:00").await?;
        click(&admin, "#schedule").await?;
        wait_text(&admin, "section[aria-labelledby='windows-title'] p.error", "starts_at").await?;

        // Extend it in its row to 14:00 local time: 08:30 UTC.
        set_value(&admin, &format!("{row} input[name='ends_at']"), &format!("{day}T14:00")).await?;
        click(&admin, &format!("{row} button.extend")).await?;
        wait_text(&admin, "section[aria-labelledby='windows-title'] p.ok", "is scheduled").await?;
        let extended = listed_window(api, &window["id"]).await;
        assert_eq!(extended["ends_at"], format!("{day}T08:30:00.000Z"), "{extended}");
        wait_text(&admin, row, &browser_local_time(&admin, &extended["ends_at"]).await?).await?;

        // Cancel it in its row: cancelled, and no more buttons.
        click(&admin, &format!("{row} button.cancel")).await?;
        wait_attr(&admin, "#windows tr[data-window-id]", "data-state", "cancelled").await?;
        assert!(admin.find(Locator::Css("#windows button")).await.is_err(), "nothing to do on a cancelled window");
        assert_eq!(listed_window(api, &window["id"]).await["state"], "cancelled");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_page_draws_the_last_30_days_and_pages_the_audit_live() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        // 25 manual activations (50 rows), then a short window that comes and goes.
        for round in 0..25 {
            api.activate(Some(&format!("round {round}"))).await;
            api.deactivate().await;
        }
        let window = schedule(
            api,
            json!({"starts_at": from_now(1_500), "ends_at": from_now(3_000), "notice_seconds": 1, "reason": "short window"}),
        )
        .await;
        wait_window_state(api, &window["id"], "ended").await;
        let history: serde_json::Value = api.get("/maintenance/history?_size=1").await.json().await.unwrap();
        let total = history["metadata"]["pagination"]["total"].as_u64().expect("a total");
        assert!(total > 50, "more than a page: {history}");

        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        record_console_errors(&admin).await?;
        mark_page(&admin).await?;
        click(&admin, "#nav-history").await?;
        wait_attr(&admin, "#nav-history", "aria-current", "page").await?;
        // The picture: a bar for the window, with its tooltip, and the periods maintenance mode was on.
        let bar = "#timeline svg rect[data-state='ended']";
        admin.wait().at_most(PATIENCE).for_element(Locator::Css(bar)).await?;
        let tooltip = admin.find(Locator::Css(&format!("{bar} title"))).await?.html(true).await?;
        assert!(tooltip.contains("Window ended") && tooltip.contains("short window"), "{tooltip}");
        let periods = admin.find_all(Locator::Css("#timeline svg rect[data-state='on']")).await?;
        assert_eq!(periods.len(), 26, "25 activations and the window's");
        let svg = admin.find(Locator::Css("#timeline svg")).await?;
        assert_eq!(svg.attr("role").await?.as_deref(), Some("img"));
        let label = svg.attr("aria-label").await?.unwrap_or_default();
        assert!(label.contains("1 window(s) and 26 period(s)"), "{label}");
        let listed = admin.find(Locator::Css("#timeline ul")).await?.html(true).await?;
        assert!(listed.contains("short window") && listed.matches("<li>").count() == 27, "{listed}");

        // The audit, newest first, 50 rows a page.
        wait_text(&admin, "#history-rows", &format!("Rows 1–50 of {total}")).await?;
        let rows = admin.find_all(Locator::Css("#history tbody tr")).await?;
        assert_eq!(rows.len(), 50);
        assert_eq!(rows[0].attr("data-event").await?.as_deref(), history["items"][0]["event"].as_str());
        let newest = rows[0].text().await?;
        let when = browser_local_time(&admin, &history["items"][0]["at"]).await?;
        assert!(newest.contains(&when) && newest.contains("admin"), "{newest}");
        screenshot(&admin, "12-history").await?;
        click(&admin, "#history-next").await?;
        wait_text(&admin, "#history-rows", &format!("Rows 51–{total} of {total}")).await?;
        assert_eq!(admin.find_all(Locator::Css("#history tbody tr")).await?.len() as u64, total - 50);
        click(&admin, "#history-previous").await?;
        wait_text(&admin, "#history-rows", "Rows 1–50").await?;

        // A change arrives live: its row on top, no reload.
        api.activate(Some("live row")).await;
        wait_text(&admin, "#history tbody tr:first-child", "live row").await?;
        let now: serde_json::Value = api.get("/maintenance/history?_size=1").await.json().await.unwrap();
        wait_text(&admin, "#history-rows", &format!("of {}", now["metadata"]["pagination"]["total"])).await?;
        assert_not_reloaded(&admin).await?;
        assert_no_console_errors(&admin).await?;
        Ok(())
    })
    .await;
}

/// The rows of the Webhooks section's tables: each row's outcome, then its cells' text.
async fn delivery_rows(client: &Client) -> Result<Vec<Vec<String>>> {
    let rows = client
        .execute(
            "return [...document.querySelectorAll('#webhooks tbody tr')]
               .map(row => [row.dataset.outcome, ...[...row.cells].map(cell => cell.textContent)]);",
            vec![],
        )
        .await?;
    Ok(serde_json::from_value(rows).expect("rows of text"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_page_shows_a_webhooks_deliveries_to_admins_only() {
    let receiver = Receiver::start().await;
    let (url, receiver) = (receiver.url(), &receiver);
    let hook = url.clone();
    let spawn = move |dist| async move {
        let data_dir = tempfile::tempdir().unwrap();
        let webhook_secret = Some(Secret::new(receiver::SECRET));
        let config = Config { dist, webhooks: vec![hook], webhook_secret, ..TestApp::config(data_dir.path()) };
        TestApp::spawn_config(data_dir, config).await
    };
    browser_test_on(spawn, |browser| async move {
        let api = &browser.app.api;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        record_console_errors(&admin).await?;
        mark_page(&admin).await?;
        click(&admin, "#nav-history").await?;
        wait_text(&admin, &format!("#webhooks [data-url='{url}'] h3"), &url).await?;

        // Activated: the receiver gets the event, and the page shows it delivered, live.
        api.activate(Some("webhooks")).await;
        let deadline = Instant::now() + PATIENCE;
        let delivery = loop {
            let answer: serde_json::Value = api.get("/maintenance/webhooks").await.json().await.unwrap();
            let recent = answer["webhooks"][0]["recent"].as_array().cloned().unwrap_or_default();
            if let Some(delivery) = recent.into_iter().find(|delivery| delivery["event"] == "activate") {
                break delivery;
            }
            assert!(Instant::now() < deadline, "activate never delivered: {answer}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(delivery["outcome"], "delivered", "{delivery}");
        let id = delivery["event_id"].clone();
        let received: Vec<_> = receiver.received().iter().map(|received| received.event()).collect();
        let sent = received.iter().any(|event| json!(event.id) == id && event.event == HistoryEvent::Activate);
        assert!(sent, "the receiver got event {id}: {:?}", receiver::summary(&received));
        let expected = vec![
            "delivered".to_owned(),
            id.to_string(),
            "activate".into(),
            "delivered".into(),
            browser_local_time(&admin, &delivery["at"]).await?,
            delivery["attempts"].to_string(),
            delivery["status_code"].to_string(),
            format!("{} ms", delivery["latency_ms"]),
        ];
        let deadline = Instant::now() + PATIENCE;
        while !delivery_rows(&admin).await?.contains(&expected) {
            assert!(Instant::now() < deadline, "no row {expected:?} in {:?}", delivery_rows(&admin).await?);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let counts = admin.find(Locator::Css(&format!("#webhooks [data-url='{url}'] p"))).await?.text().await?;
        assert!(counts.starts_with("Backlog ") && counts.ends_with(" failed 0"), "{counts}");
        admin.execute("document.getElementById('webhooks-title').scrollIntoView(); return null;", vec![]).await?;
        screenshot(&admin, "13-webhooks").await?;
        assert_accessible(&admin, "the history page with a webhook's deliveries").await?;
        assert_not_reloaded(&admin).await?;
        assert_no_console_errors(&admin).await?;

        // A user's History page has no Webhooks section.
        let command = UsersCommand::Add { name: "alice".into(), role: Role::User, password_stdin: true };
        common::users(browser.app.data_dir.path(), command, "alice's password\n").unwrap();
        let alice = browser.signed_in("alice", "alice's password").await?;
        click(&alice, "#nav-history").await?;
        wait_text(&alice, "#history-rows", "Rows 1–").await?;
        assert!(alice.find(Locator::Id("webhooks-title")).await.is_err(), "no Webhooks section for a user");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn activating_with_a_drain_deadline_read_only_counts_down_live() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let execution = api.start(common::LONG).await;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        wait_attr(&admin, ".state", "data-state", "deactivated").await?;
        admin.find(Locator::Id("reason")).await?.send_keys("drain").await?;
        admin.find(Locator::Id("drain-deadline-input")).await?.send_keys("120").await?;
        click(&admin, "#read-only").await?;
        click(&admin, "#activate").await?;
        let confirm = wait_text(&admin, ".confirm", "after 2 min 0 s are cancelled").await?;
        assert!(confirm.contains("read-only"), "{confirm}");
        click(&admin, "#confirm-activate").await?;
        wait_attr(&admin, "#banner", "data-state", "activating").await?;
        wait_attr(&admin, "#status-mode", "data-mode", "read_only").await?;
        let status = api.status().await;
        assert_eq!(status.mode, Some(shared::MaintenanceMode::ReadOnly));
        let deadline = status.drain_deadline_at.expect("a drain deadline");
        let left = deadline.as_datetime() - chrono::Utc::now();
        assert!((110..=120).contains(&left.num_seconds()), "{left}");
        // It ticks each second.
        let first = wait_text(&admin, "#drain-countdown", "Drain deadline in 1 min ").await?;
        let deadline_at = Instant::now() + PATIENCE;
        while admin.find(Locator::Id("drain-countdown")).await?.text().await? == first {
            assert!(Instant::now() < deadline_at, "the countdown stays at {first:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Deactivated, the countdown and the mode go.
        click(&admin, "#deactivate").await?;
        wait_gone(&admin, "#drain-countdown").await?;
        wait_gone(&admin, "#status-mode").await?;
        api.cancel(execution.id).await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_windows_notice_schedule_form_and_history_pass_axe() {
    browser_test(|browser| async move {
        let api = &browser.app.api;
        let (start, end) = (from_now(3_600_000), from_now(7_200_000));
        schedule(
            api,
            json!({"starts_at": start, "ends_at": end, "notice_seconds": 7200, "reason": "database upgrade"}),
        )
        .await;
        schedule(api, json!({"starts_at": from_now(10_800_000), "reason": "network maintenance"})).await;
        api.activate(Some("a period")).await;
        api.deactivate().await;
        let admin = browser.signed_in("admin", common::ADMIN_PASSWORD).await?;
        wait_text(&admin, "#notice", "database upgrade").await?;
        wait_text(&admin, "#windows", "network maintenance").await?;
        wait_exact_text(&admin, "#replicas", "1 of 1 replicas enforcing").await?;
        screenshot(&admin, "10-notice").await?;
        assert_accessible(&admin, "the maintenance page with a notice, the schedule form and the windows list").await?;
        set_value(&admin, "#window-start", "2001-01-01T10:00").await?;
        click(&admin, "#schedule").await?;
        wait_text(&admin, "section[aria-labelledby='windows-title'] p.error", "starts_at").await?;
        assert_accessible(&admin, "the schedule form with an error").await?;
        click(&admin, "#nav-history").await?;
        admin.wait().at_most(PATIENCE).for_element(Locator::Css("#timeline svg rect[data-state='on']")).await?;
        wait_text(&admin, "#history-rows", "Rows 1–").await?;
        wait_text(&admin, "#webhooks", "No webhooks are configured.").await?;
        assert_accessible(&admin, "the history page").await?;
        Ok(())
    })
    .await;
}

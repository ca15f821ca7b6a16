//! The deliverers: one task per URL in every process, each on its own, so a
//! slow or dead receiver holds back only its own URL (never the gate, the
//! API or another URL). Each round asks the store whether this process
//! delivers the URL now and what comes next; the store's answer, not a
//! timer, decides who posts. A task sleeps until a status is published (every
//! event raises the epoch), its retry is due, or a lease's time has passed.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{redirect, Url};
use shared::webhook::{EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER};
use shared::{DeliveryOutcome, Timestamp, WebhookDelivery};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::outbox::StoredEvent;
use super::{backoff, Settings, GIVE_UP_AFTER};
use crate::engine::Published;
use crate::store::webhooks::Claim;
use crate::store::{Store, StoreError};

/// How long a receiver may take to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole attempt may take, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer's body kept for the error shown (it is not read further).
const SHOWN_BODY: usize = 200;
/// How soon a claim that met another replica's claim in progress is tried again.
const BUSY_RETRY: Duration = Duration::from_millis(200);

/// What the deliverers need.
#[derive(Clone)]
pub struct Deliverers {
    /// Where the cursors and events are.
    pub store: Store,
    /// This process's name among replicas (PostgreSQL); unused on SQLite.
    pub replica: String,
    /// The URLs and the secret.
    pub settings: Arc<Settings>,
    /// How long a claim on a URL lasts (PostgreSQL: the replicas' lease);
    /// renewed every third of it while this process works on the URL, looked
    /// at again every half of it while another replica holds it. On SQLite,
    /// how often an idle deliverer looks for events it was not woken for.
    pub claim: Duration,
}

impl Deliverers {
    /// Starts one task per URL (their cursors registered by `Manager::open`);
    /// they end, giving their URL up, when `shutdown` fires.
    pub fn spawn(
        self,
        changes: impl Fn() -> broadcast::Receiver<Published>,
        shutdown: CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let client = match reqwest::Client::builder()
            .redirect(redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("manager/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "cannot build the webhooks' HTTP client: no webhook will be delivered");
                return Vec::new();
            }
        };
        let urls = self.settings.urls.clone();
        urls.into_iter()
            .enumerate()
            .map(|(index, url)| {
                let label = self.settings.label(index);
                let task = Task { url, label, client: client.clone(), shared: self.clone() };
                tokio::spawn(task.run(changes(), shutdown.clone()))
            })
            .collect()
    }
}

struct Task {
    url: Url,
    /// How logs name the URL (its path and query may hold a secret).
    label: String,
    client: reqwest::Client,
    shared: Deliverers,
}

/// What one attempt came to.
struct Attempt {
    status_code: Option<u16>,
    error: Option<String>,
}

impl Task {
    fn key(&self) -> String {
        self.url.as_str().to_owned()
    }

    async fn run(self, mut changes: broadcast::Receiver<Published>, shutdown: CancellationToken) {
        let mut store_failures = 0u32;
        loop {
            // A post in flight when the manager stops is abandoned: not
            // recorded, it is posted again later (at least once).
            let round = tokio::select! {
                () = shutdown.cancelled() => break,
                round = self.round() => round,
            };
            let wait = match round {
                Ok(Some(wait)) => {
                    store_failures = 0;
                    wait
                }
                Ok(None) => {
                    store_failures = 0;
                    continue;
                }
                Err(error) => {
                    store_failures += 1;
                    if store_failures == 1 || store_failures.is_multiple_of(10) {
                        tracing::warn!(webhook = %self.label, %error, failures = store_failures, "webhook delivery waits for the database");
                    }
                    Wait::For(backoff(store_failures, random()))
                }
            };
            let sleep = match wait {
                Wait::Event => self.shared.claim / 3,
                Wait::For(duration) => duration,
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(sleep) => {}
                changed = changes.recv(), if matches!(wait, Wait::Event) => {
                    if matches!(changed, Err(broadcast::error::RecvError::Closed)) {
                        break;
                    }
                }
            }
            // The next round covers every change published so far.
            while matches!(changes.try_recv(), Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_))) {}
        }
        if let Err(error) = self.shared.store.webhook_release(self.key(), &self.shared.replica).await {
            tracing::warn!(webhook = %self.label, %error, "could not give the webhook up on stopping; another replica takes it when the claim lapses");
        }
    }

    /// One step: deliver the next event if this process may and it is due.
    /// `None`: go on at once; `Some(wait)`: wait first.
    async fn round(&self) -> Result<Option<Wait>, StoreError> {
        let store = &self.shared.store;
        let replica = self.shared.replica.as_str();
        let (cursor, next) = match store.webhook_claim(self.key(), replica, self.shared.claim).await? {
            Claim::Theirs { .. } => return Ok(Some(Wait::For(self.shared.claim / 2))),
            Claim::Busy => return Ok(Some(Wait::For(BUSY_RETRY))),
            Claim::Mine { cursor, next, taken_from } => {
                if let Some(previous) = taken_from {
                    tracing::info!(webhook = %self.label, replica, previous, "this replica delivers the webhook now");
                }
                (cursor, next)
            }
        };
        let Some(event) = next else { return Ok(Some(Wait::Event)) };
        if let Some(due) = cursor.next_attempt_at {
            let left = millis_between(Timestamp::now(), due);
            if left > 0 {
                // Claimed again (so renewed) every third of the claim while the retry waits.
                return Ok(Some(Wait::For(Duration::from_millis(left).min(self.shared.claim / 3))));
            }
        }
        let attempts = cursor.attempts.saturating_add(1);
        let attempt = match event.body() {
            // The claim is renewed while the receiver takes its time; if it
            // cannot be, another replica may take the URL: the post is
            // abandoned (not recorded) and whoever holds the URL posts it again.
            Ok(body) => tokio::select! {
                attempt = self.post(&event, body) => attempt,
                lost = self.hold() => {
                    tracing::warn!(webhook = %self.label, id = event.seq, reason = %lost, "webhook post abandoned");
                    return Ok(Some(Wait::For(self.shared.claim / 2)));
                }
            },
            Err(error) => {
                Attempt { status_code: None, error: Some(format!("the stored event cannot be read: {error}")) }
            }
        };
        let now = Timestamp::now();
        let latency_ms = millis_between(event.at, now);
        let Some(error) = attempt.error else {
            tracing::debug!(webhook = %self.label, id = event.seq, event = %event.event.as_str(), latency_ms, "webhook delivered");
            let delivered =
                delivery(&event, DeliveryOutcome::Delivered, now, attempts, attempt.status_code, "", latency_ms);
            store.webhook_finish(self.key(), replica, delivered).await?;
            return Ok(None);
        };
        if latency_ms >= u64::try_from(GIVE_UP_AFTER.as_millis()).unwrap_or(u64::MAX) {
            tracing::error!(webhook = %self.label, id = event.seq, attempts, %error, "webhook event given up after 24 hours of failed attempts");
            let failed =
                delivery(&event, DeliveryOutcome::Failed, now, attempts, attempt.status_code, &error, latency_ms);
            store.webhook_finish(self.key(), replica, failed).await?;
            return Ok(None);
        }
        let wait = backoff(attempts, random());
        if attempts == 1 || attempts.is_multiple_of(10) {
            tracing::warn!(webhook = %self.label, id = event.seq, attempts, %error, retry_in = ?wait, "webhook delivery failed; retrying");
        }
        let next = Timestamp::from_datetime(
            now.as_datetime() + chrono::TimeDelta::milliseconds(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
        );
        store.webhook_attempt_failed(self.key(), replica, event.seq, attempts, next, error).await?;
        // Until the time recorded, not the whole backoff after the write (on
        // SQLite it can wait for the engine's commits).
        Ok(Some(Wait::For(Duration::from_millis(millis_between(Timestamp::now(), next)).min(self.shared.claim / 3))))
    }

    /// Renews the claim every third of its length; returns why once it cannot.
    async fn hold(&self) -> String {
        loop {
            tokio::time::sleep(self.shared.claim / 3).await;
            match self.shared.store.webhook_renew(self.key(), &self.shared.replica, self.shared.claim).await {
                Ok(true) => {}
                Ok(false) => return "another replica took the URL".to_owned(),
                Err(error) => return format!("the claim could not be renewed: {error}"),
            }
        }
    }

    async fn post(&self, event: &StoredEvent, body: Vec<u8>) -> Attempt {
        let signature = self.shared.settings.sign(&body);
        let sent = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_HEADER, event.event.as_str())
            .header(EVENT_ID_HEADER, event.seq.to_string())
            .body(body)
            .send()
            .await;
        match sent {
            Err(error) => Attempt { status_code: None, error: Some(describe(&error)) },
            Ok(response) if response.status().is_success() => {
                Attempt { status_code: Some(response.status().as_u16()), error: None }
            }
            Ok(mut response) => {
                let status = response.status();
                let error = if status.is_redirection() {
                    let to = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
                    format!("HTTP {status}: redirect to {} not followed", shown_text(to.unwrap_or("?")))
                } else {
                    // Only the start of the answer is read: a receiver cannot make this process hold much.
                    let mut start = Vec::new();
                    while start.len() < SHOWN_BODY {
                        match response.chunk().await {
                            Ok(Some(chunk)) => start.extend_from_slice(&chunk),
                            _ => break,
                        }
                    }
                    let text = shown_text(&String::from_utf8_lossy(&start));
                    if text.trim().is_empty() {
                        format!("HTTP {status}")
                    } else {
                        format!("HTTP {status}: {}", text.trim())
                    }
                };
                Attempt { status_code: Some(status.as_u16()), error: Some(error) }
            }
        }
    }
}

/// What a task waits for before its next round.
#[derive(Debug, Clone, Copy)]
enum Wait {
    /// A new event (a published status), or the recheck interval.
    Event,
    /// This long (a retry's backoff, another replica's URL, the database).
    For(Duration),
}

fn delivery(
    event: &StoredEvent,
    outcome: DeliveryOutcome,
    at: Timestamp,
    attempts: u32,
    status_code: Option<u16>,
    error: &str,
    latency_ms: u64,
) -> WebhookDelivery {
    let error = error.to_owned();
    WebhookDelivery { event_id: event.seq, event: event.event, outcome, at, attempts, status_code, error, latency_ms }
}

/// Why a request failed, in words (reqwest's own text says little).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A receiver's text as the report and the log show it: at most [`SHOWN_BODY`] characters, no control characters.
fn shown_text(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(SHOWN_BODY).collect()
}

/// Milliseconds from `from` to `to` (0 if `to` is not later).
fn millis_between(from: Timestamp, to: Timestamp) -> u64 {
    u64::try_from((to.as_datetime() - from.as_datetime()).num_milliseconds()).unwrap_or(0)
}

fn random() -> u64 {
    getrandom::u64().unwrap_or_default()
}

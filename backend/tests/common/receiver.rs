//! A webhook receiver on 127.0.0.1 (SPEC §11): records every POST it gets,
//! answers 200 (after a delay, if slow), and checks nothing itself: the
//! tests check signatures and order.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use hmac::{Hmac, KeyInit, Mac};
use shared::webhook::{EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER};
use shared::WebhookEvent;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::PATIENCE;

/// The secret every test manager signs with.
pub const SECRET: &str = "webhook secret for tests";

/// One POST as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Vec<u8>,
    pub signature: String,
    pub event_header: String,
    pub id_header: String,
    pub arrived: Instant,
}

impl Received {
    /// The body, after checking its signature (HMAC-SHA256 with [`SECRET`])
    /// and that the headers name the body's event and id.
    pub fn event(&self) -> WebhookEvent {
        let hex = self.signature.strip_prefix("sha256=").expect("X-Manager-Signature: sha256=<hex>");
        let signature: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex signature"))
            .collect();
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&self.body);
        mac.verify_slice(&signature).expect("the signature is the body's HMAC-SHA256 with the secret");
        let event: WebhookEvent = serde_json::from_slice(&self.body).expect("the body is a webhook event");
        assert_eq!(self.event_header, event.event.as_str());
        assert_eq!(self.id_header, event.id.to_string());
        event
    }
}

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    answered: usize,
}

/// A receiver serving in the background until dropped or stopped.
pub struct Receiver {
    pub address: SocketAddr,
    log: Arc<Mutex<Log>>,
    stop: CancellationToken,
}

impl Receiver {
    /// Answers 200 at once, on a free port.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), Duration::ZERO).await
    }

    /// Answers 200 after `delay`, on `address` (a port chosen with [`free_address`]).
    pub async fn start_on(address: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind(address).await.expect("bind the receiver");
        let address = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let app = axum::Router::new().route("/hook", post(receive)).with_state((Arc::clone(&log), delay));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { stopped.cancelled().await }).await
        });
        Self { address, log, stop }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        url_of(self.address)
    }

    /// What arrived so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).received.clone()
    }

    /// How many requests were answered (a slow receiver answers after its delay).
    pub fn answered(&self) -> usize {
        self.log.lock().unwrap_or_else(PoisonError::into_inner).answered
    }

    /// The events received, once `done` holds of them (within `patience`).
    pub async fn wait_for(&self, patience: Duration, done: impl Fn(&[WebhookEvent]) -> bool) -> Vec<WebhookEvent> {
        let deadline = Instant::now() + patience;
        loop {
            let events: Vec<WebhookEvent> = self.received().iter().map(Received::event).collect();
            if done(&events) {
                return events;
            }
            assert!(Instant::now() < deadline, "timed out; the receiver has {:?}", summary(&events));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The events received once there are `n`.
    pub async fn wait_for_count(&self, n: usize) -> Vec<WebhookEvent> {
        self.wait_for(PATIENCE, |events| events.len() >= n).await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn receive(
    State((log, delay)): State<(Arc<Mutex<Log>>, Duration)>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let received = Received {
        body: body.to_vec(),
        signature: header(SIGNATURE_HEADER),
        event_header: header(EVENT_HEADER),
        id_header: header(EVENT_ID_HEADER),
        arrived: Instant::now(),
    };
    log.lock().unwrap_or_else(PoisonError::into_inner).received.push(received);
    tokio::time::sleep(delay).await;
    log.lock().unwrap_or_else(PoisonError::into_inner).answered += 1;
    "ok"
}

/// A loopback address nothing listens on (until a receiver starts there).
pub fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// The webhook URL of a receiver at `address`.
pub fn url_of(address: SocketAddr) -> String {
    format!("http://{address}/hook")
}

/// Ids and events, for messages.
pub fn summary(events: &[WebhookEvent]) -> Vec<(u64, &'static str)> {
    events.iter().map(|event| (event.id, event.event.as_str())).collect()
}

/// Asserts `events` are in increasing id order with no id twice.
pub fn assert_in_order_once(events: &[WebhookEvent]) {
    assert!(events.windows(2).all(|pair| pair[0].id < pair[1].id), "out of order or twice: {:?}", summary(events));
}

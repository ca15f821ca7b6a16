//! Accepting connections without letting them exhaust the manager: hyper's
//! HTTP/1 and HTTP/2 server with a bound on how long a request head may take
//! (which also bounds how long a keep-alive connection may sit idle), and
//! shedding of idle connections when open files run short, so that a flood
//! of half-open connections (slowloris) cannot lock an admin out.
//!
//! A connection is *idle* while no request on it is being answered: it has
//! not sent a whole request head yet, or is waiting between requests. Busy
//! connections (a request in progress, an open event stream) are never shed:
//! a connection is either shed or starts a request, atomically.
//!
//! hyper's head timeout starts only once it knows the protocol, which takes
//! the first bytes; a connection that has not started a request within the
//! same bound (silent, stuck in a TLS handshake or in an HTTP/2 preface) is
//! closed here. With TLS the handshake is part of that bound, and a
//! connection still in it is idle: it counts, and is shed like any other.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::error::AppError;

/// File descriptors kept back from connections: the database files, logs,
/// and whatever else the process opens.
const RESERVED_FILES: u64 = 64;

/// How long a graceful stop waits for requests in progress (a client that
/// stopped reading an event stream must not hold the manager up forever).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// [`Connection::in_flight`] of a shed connection: no request may start on it.
const SHED: usize = usize::MAX;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a client may take to send a request head, counted from the
    /// connection's start or the end of its previous response.
    pub request_head_timeout: Duration,
    /// Open connections above which idle ones are shed.
    pub max_connections: usize,
}

impl Limits {
    /// Limits for this process: at most `max_connections`, and no more than
    /// the open-file limit allows, less a reserve.
    pub fn for_this_process(request_head_timeout: Duration, max_connections: usize) -> Self {
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        let by_files = usize::try_from(files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
        Self { request_head_timeout, max_connections: max_connections.min(by_files) }
    }
}

/// Raises the soft open-file limit to the hard one (the common default soft
/// limit of 1 024 is far below what a server with event streams needs);
/// returns the limit now in force.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if soft < hard {
        rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
    }
    Ok(hard.max(soft))
}

/// Serves `router` on `listener` (over TLS with `tls`) until `shutdown`
/// fires, then stops accepting and waits for the requests in progress
/// (streams end by themselves on the same signal).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut http = Builder::new(TokioExecutor::new());
    http.http1().timer(TokioTimer::new()).header_read_timeout(limits.request_head_timeout).keep_alive(true);
    http.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(20)));
    let http = Arc::new(http);
    let graceful = GracefulShutdown::new();
    let connections = Connections::default();
    let mut overloaded_since_log = 0_u64;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if is_out_of_files(&error) => {
                // Free idle connections and try again shortly, rather than spin.
                let shed = connections.shed_idle(connections.len().saturating_sub(1) / 10 + 1);
                overloaded_since_log += 1;
                if overloaded_since_log == 1 || overloaded_since_log.is_multiple_of(1000) {
                    tracing::warn!(%error, shed, open = connections.len(), "out of open files; shedding idle connections");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        overloaded_since_log = 0;
        if connections.len() >= limits.max_connections {
            let shed = connections.shed_idle(limits.max_connections / 10 + 1);
            tracing::debug!(shed, open = connections.len(), "at the connection limit; shed idle connections");
            if shed == 0 {
                // Every connection is busy: refuse this one rather than eat
                // the files the database and the panel need.
                drop(stream);
                continue;
            }
        }
        let connection = connections.open();
        // The address this client reached us on (an interface's, even on a wildcard bind).
        let local = stream.local_addr().ok().map(LocalAddr);
        let service = ConnectionService { router: router.clone(), peer, local, connection: Arc::clone(&connection) };
        let http = Arc::clone(&http);
        let watcher = graceful.watcher();
        let head_deadline = Instant::now() + limits.request_head_timeout;
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let serving = async {
                match tls {
                    None => serve_http(stream, &http, service, watcher).await,
                    Some(acceptor) => {
                        let handshake = tokio::select! {
                            handshake = acceptor.accept(stream) => handshake,
                            // Nothing to finish yet: a stop does not wait for it.
                            () = shutdown.cancelled() => return,
                        };
                        match handshake {
                            Ok(stream) => serve_http(stream, &http, service, watcher).await,
                            Err(error) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        }
                    }
                }
            };
            tokio::select! {
                () = serving => {}
                // Shed: dropping the connection closes its socket.
                () = connection.shed.cancelled() => {}
                () = unless_a_request_started(&connection, head_deadline) => {}
            }
            connection.close();
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still in progress after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    Ok(())
}

/// HTTP/1.1 or HTTP/2 (hyper reads which from the first bytes; over TLS the
/// client says which by ALPN first) until the connection ends.
async fn serve_http<S>(
    stream: S,
    http: &Builder<TokioExecutor>,
    service: ConnectionService,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(service);
    let serving = watcher.watch(http.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned());
    // Errors are clients going away or timing out: nothing to report.
    let _ = serving.await;
}

/// Completes at `deadline` if no request has started on `connection` by
/// then; otherwise never.
async fn unless_a_request_started(connection: &Connection, deadline: Instant) {
    tokio::time::sleep_until(deadline).await;
    if connection.started_one.load(Ordering::Acquire) {
        std::future::pending::<()>().await;
    }
}

/// EMFILE (this process) or ENFILE (the whole system): no file descriptor left.
fn is_out_of_files(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// The open connections, to find idle ones to shed.
#[derive(Clone, Default)]
struct Connections {
    inner: Arc<Mutex<HashMap<u64, Arc<Connection>>>>,
    /// Connection ids, and the logical clock of [`Connection::idle_since`].
    next_id: Arc<AtomicU64>,
}

/// One open connection.
struct Connection {
    id: u64,
    /// Requests being answered on it (a response body still being sent
    /// counts), or [`SHED`].
    in_flight: AtomicUsize,
    /// Whether a request has ever started on it.
    started_one: AtomicBool,
    /// When it last went idle (its start, or the end of a response), on the
    /// logical clock [`Connections::tick`]: enough to tell older from newer.
    idle_since: AtomicU64,
    /// Fired to close it.
    shed: CancellationToken,
    registry: Connections,
}

impl Connections {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn len(&self) -> usize {
        self.map().len()
    }

    fn tick(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn open(&self) -> Arc<Connection> {
        let id = self.tick();
        let connection = Arc::new(Connection {
            id,
            in_flight: AtomicUsize::new(0),
            started_one: AtomicBool::new(false),
            idle_since: AtomicU64::new(id),
            shed: CancellationToken::new(),
            registry: self.clone(),
        });
        self.map().insert(id, Arc::clone(&connection));
        connection
    }

    /// Closes up to `wanted` idle connections, those idle longest first;
    /// returns how many it closed.
    fn shed_idle(&self, wanted: usize) -> usize {
        let mut idle: Vec<(u64, Arc<Connection>)> = self
            .map()
            .values()
            .filter(|connection| connection.in_flight.load(Ordering::Acquire) == 0)
            .map(|connection| (connection.idle_since.load(Ordering::Relaxed), Arc::clone(connection)))
            .collect();
        idle.sort_unstable_by_key(|(since, _)| *since);
        let mut map = self.map();
        let mut shed = 0;
        for (_, connection) in idle {
            if shed == wanted {
                break;
            }
            // A request that started since the look above keeps it.
            if connection.in_flight.compare_exchange(0, SHED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                connection.shed.cancel();
                map.remove(&connection.id);
                shed += 1;
            }
        }
        shed
    }
}

impl Connection {
    fn close(&self) {
        self.registry.map().remove(&self.id);
    }

    /// Marks a request in progress; `None` if the connection was shed.
    fn request_started(self: &Arc<Self>) -> Option<InFlight> {
        let mut now = self.in_flight.load(Ordering::Acquire);
        loop {
            if now == SHED {
                return None;
            }
            match self.in_flight.compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => now = actual,
            }
        }
        self.started_one.store(true, Ordering::Release);
        Some(InFlight(Arc::clone(self)))
    }
}

/// A request in progress on a connection; its end (the response body sent or
/// dropped) makes the connection idle again.
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let connection = &self.0;
        connection.idle_since.store(connection.registry.tick(), Ordering::Relaxed);
        connection.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The address of our end of a request's connection (a request extension):
/// what the manager tells Cloudify's client it is reachable on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr(pub SocketAddr);

/// The router for one connection: adds the peer address (for the sign-in
/// limiter) and marks the connection busy until the response is sent.
#[derive(Clone)]
struct ConnectionService {
    router: Router,
    peer: SocketAddr,
    local: Option<LocalAddr>,
    connection: Arc<Connection>,
}

impl tower::Service<hyper::Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<Incoming>) -> Self::Future {
        let Some(in_flight) = self.connection.request_started() else {
            // Shed an instant ago: the socket is closing anyway.
            let mut refused = AppError::Overloaded.into_response();
            refused.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return Box::pin(std::future::ready(Ok(refused)));
        };
        let mut request: Request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(local) = self.local {
            request.extensions_mut().insert(local);
        }
        let router = self.router.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await?;
            Ok(response.map(|body| Body::new(Tracked { body, _in_flight: in_flight })))
        })
    }
}

/// A response body that keeps its connection marked busy until it is done.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shedding_takes_idle_connections_longest_idle_first_and_never_busy_ones() {
        let connections = Connections::default();
        let oldest = connections.open();
        let busy = connections.open();
        let _request = busy.request_started().unwrap();
        let newer = connections.open();
        let newest = connections.open();
        // `oldest` answers a request: it becomes the most recently idle.
        drop(oldest.request_started());
        assert!(newest.request_started().is_some_and(|request| {
            drop(request);
            true
        }));
        // `newest` answered one too, after `oldest`: now `newer` is the longest idle.

        assert_eq!(connections.shed_idle(2), 2);
        assert!(newer.shed.is_cancelled() && oldest.shed.is_cancelled());
        assert!(!newest.shed.is_cancelled() && !busy.shed.is_cancelled());
        assert!(oldest.request_started().is_none(), "no request starts on a shed connection");
        assert_eq!(connections.len(), 2);
        assert_eq!(connections.shed_idle(5), 1, "only `newest` is idle");
        assert!(!busy.shed.is_cancelled());
    }
}

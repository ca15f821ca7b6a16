//! The manager server: the maintenance-mode gate, workflow executions, the
//! REST API and the admin panel's files. `main.rs` reads the configuration and
//! calls [`Manager::open`] and [`Manager::serve`]; tests do the same on port 0.
//! See ARCHITECTURE.md for the map and the invariants.

pub mod auth;
pub mod cluster;
pub mod config;
pub mod engine;
pub mod error;
pub mod events;
pub mod gate;
pub mod metrics;
pub mod model;
pub mod output;
pub mod panel;
pub mod process;
pub mod request_id;
pub mod routes;
pub mod runner;
pub mod scheduler;
pub mod security_headers;
pub mod server;
pub mod services;
pub mod state;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod users;
pub mod webhooks;
pub mod worker;
pub mod workflows;

#[cfg(test)]
mod test_support;

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::auth::Auth;
use crate::config::Config;
use crate::engine::Engine;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::ledger::postgres::PgLedger;
use crate::store::ledger::sqlite::SqliteLedger;
use crate::store::ledger::AnyLedger;
use crate::store::{Db, Store, StoreError};

/// The largest request body accepted (bigger ones get 413).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A manager opened on its data dir, ready to serve.
pub struct Manager {
    state: AppState,
    router: Router,
    limits: server::Limits,
    cancel_grace: std::time::Duration,
    deliverers: Option<webhooks::deliver::Deliverers>,
    tls: Option<Arc<tls::Certificates>>,
}

/// On SQLite, three times how often an idle webhook deliverer looks for events it was not woken for (it always is).
const SQLITE_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

impl Manager {
    /// Opens the store (SQLite in `config.data_dir`, or the PostgreSQL
    /// database of `--database`), recovers from an unclean stop and builds
    /// the router. Must be called inside a tokio runtime.
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        let webhooks = config.webhooks().map_err(StoreError::Config)?.map(Arc::new);
        let tls = config.tls().map_err(|error| StoreError::Config(error.to_string()))?;
        let capacity = config.queue_capacity();
        let catalog = workflows::Catalog::new(&config.workflows);
        match catalog.list() {
            Ok(found) if found.is_empty() => {
                tracing::warn!(dir = %config.workflows.display(), "no workflows there (executable files): no execution can start")
            }
            Ok(found) => tracing::info!(dir = %config.workflows.display(), workflows = found.len(), "workflow catalog"),
            Err(error) => tracing::error!(%error, "no execution can start until the workflows directory can be read"),
        }
        let runner = |output| runner::RunnerConfig {
            catalog: catalog.clone(),
            data_dir: config.data_dir.clone(),
            cancel_grace: config.cancel_grace(),
            output,
        };
        let (engine, reader, auth_store, cluster, webhook_store) = match &config.database {
            None => {
                let writer = store::open_writer(&config.data_dir)?;
                auth::bootstrap_sqlite(&writer, config.admin_password.as_deref())?;
                let reader = Store::Sqlite(Db::new(store::open_reader(&config.data_dir)?, "reader", capacity)?);
                let auth_store = Store::Sqlite(Db::new(store::open_reader(&config.data_dir)?, "auth", capacity)?);
                let output = Store::Sqlite(Db::new(store::open_output(&config.data_dir)?, "output", capacity)?);
                let ledger = AnyLedger::Sqlite(SqliteLedger::new(writer, capacity)?);
                let engine = Engine::open(ledger, runner(output::OutputLog::new(output)), config.max_running()).await?;
                let webhook_store = match webhooks {
                    Some(_) => {
                        Some(Store::Sqlite(Db::new(store::open_reader(&config.data_dir)?, "webhooks", capacity)?))
                    }
                    None => None,
                };
                (engine, reader, auth_store, None, webhook_store)
            }
            Some(url) => {
                let pg = store::postgres::Pg::new(url, config.pool_size(), capacity)?;
                let replica = config.replica_id();
                pg.migrate().await?;
                let ledger = PgLedger::new(pg.clone(), replica.clone());
                // Before anything of this replica's is recovered: a second
                // live process with its id must not fail or kill its work.
                ledger.take_replica_id(&*pg.client().await?, config.lease()).await?;
                let ledger = AnyLedger::Postgres(ledger);
                let engine = Engine::open(
                    ledger,
                    runner(output::OutputLog::new(Store::Postgres(pg.clone()))),
                    config.max_running(),
                )
                .await?;
                let store = Store::Postgres(pg);
                auth::bootstrap(&store, config.admin_password.as_deref()).await?;
                tracing::info!(%replica, "replica on PostgreSQL");
                let cluster = cluster::Cluster::start(&engine, config.lease()).await?;
                (engine, store.clone(), store.clone(), Some(cluster), Some(store))
            }
        };
        let auth = Arc::new(Auth::new(auth_store, config.token_ttl()));
        auth::revocation::watch(Arc::downgrade(&auth));
        let state = AppState {
            engine,
            reader,
            auth,
            catalog,
            shutdown: CancellationToken::new(),
            cluster,
            metrics: Arc::default(),
            metrics_open: config.metrics_open(),
            webhooks: webhooks.clone(),
        };
        let deliverers = match webhooks.zip(webhook_store) {
            Some((settings, store)) => {
                // Registered before anything is served: a new URL gets every
                // event from this start on.
                let urls = settings.keys().into_iter().map(|(key, _)| key).collect();
                store.webhook_register(urls, &config.replica_id()).await?;
                Some(webhooks::deliver::Deliverers {
                    store,
                    replica: config.replica_id(),
                    settings,
                    claim: if config.database.is_some() { config.lease() } else { SQLITE_RECHECK },
                })
            }
            None => None,
        };
        let router = router(state.clone(), &config.dist);
        Ok(Self {
            state,
            router,
            limits: config.connection_limits(),
            cancel_grace: config.cancel_grace(),
            deliverers,
            tls,
        })
    }

    /// The certificate and key served with `--tls-cert` and `--tls-key`
    /// (`None`: plain HTTP), to re-read them on SIGHUP.
    pub fn tls(&self) -> Option<Arc<tls::Certificates>> {
        self.tls.clone()
    }

    /// The shared state (tests look at the engine directly).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The whole HTTP surface, for in-process requests (property tests).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Serves on `listener` (over TLS with `--tls-cert`) until `shutdown`
    /// fires, then stops accepting, ends event streams and waits for
    /// in-flight requests. Connections are bounded as [`server`] says,
    /// within this process's open-file limit.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
        if let Some(cluster) = &self.state.cluster {
            cluster.serving_at(listener.local_addr()?);
        }
        scheduler::spawn(Arc::clone(&self.state.engine), shutdown.clone());
        self.state.engine.spawn_dispatcher();
        let deliverers = match self.deliverers {
            Some(deliverers) => {
                let engine = Arc::clone(&self.state.engine);
                deliverers.spawn(move || engine.subscribe(), shutdown.clone())
            }
            None => Vec::new(),
        };
        let streams = self.state.shutdown.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            streams.cancel();
        });
        let tls = self.tls.as_ref().map(tls::Certificates::acceptor);
        let served = server::serve(listener, self.router, self.limits, tls, shutdown).await;
        // No workflow outlives its manager (SPEC §9): end them as a cancel
        // would, and record them failed with the reason.
        let reason = "The manager was stopped while this execution was running: its workflow was terminated \
                      and the execution marked failed."
            .to_owned();
        let left = self.state.engine.stop_executions(reason, self.cancel_grace + STOP_MARGIN).await;
        if left > 0 {
            tracing::error!(left, "some executions did not end in time; their processes die with the manager");
        }
        // A restart of this replica takes its id at once.
        if let Err(error) = self.state.engine.release_replica_id().await {
            tracing::warn!(%error, "could not give this replica's lease up; a restart waits for it to run out");
        }
        // The deliverers give their URLs up, so another replica takes them at once.
        if tokio::time::timeout(STOP_MARGIN, futures_util::future::join_all(deliverers)).await.is_err() {
            tracing::warn!("webhook deliverers did not stop in time; another replica takes their URLs after the lease");
        }
        served
    }
}

/// Time for stopped executions' ends to be recorded, beyond the cancel grace.
const STOP_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The whole HTTP surface: API (gated), then the admin panel with an SPA fallback.
pub fn router(state: AppState, dist: &Path) -> Router {
    build_router(state, dist, true)
}

/// The same surface without the maintenance gate. Only for measuring what the
/// gate costs (the `bench` tool); never serve this.
#[doc(hidden)]
pub fn router_without_gate(state: AppState, dist: &Path) -> Router {
    build_router(state, dist, false)
}

fn build_router(state: AppState, dist: &Path, gated: bool) -> Router {
    let (api, _) = routes::api_routes().split_for_parts();
    let panel = panel::Panel::locate(dist);
    match &panel {
        panel::Panel::Dir(..) => tracing::info!(dist = %dist.display(), "serving the admin panel from --dist"),
        panel::Panel::Embedded => tracing::info!(
            dist = %dist.display(),
            "serving the admin panel built into this binary (no index.html in --dist)"
        ),
        panel::Panel::Missing => tracing::warn!(
            dist = %dist.display(),
            "no admin panel in --dist nor in this binary (run `scripts/build-panel`); serving the API only"
        ),
    }
    let index_html = panel.index_html();
    let router = api
        // Cloudify's client asks for the version outside the versioned prefix.
        .route("/api/version", get(routes::system::version))
        // Outside the API: never gated (the gate passes what is not under /api/).
        .route("/metrics", get(metrics::scrape))
        .layer(axum::middleware::from_fn(routes::tenant::check))
        .route("/api", any(routes::not_found))
        .route("/api/{*rest}", any(routes::not_found))
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(move |request: Request| panel.clone().serve(request));
    let router = if gated { router.layer(gate::GateLayer::new(state.clone())) } else { router };
    // Outside the gate, so its refusals are counted too.
    let router = router.layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_refusals));
    router
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panic_response))
        // A 503 from the gate is the product working; real faults are logged as errors where they happen.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_id::span)
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(security_headers::layer(index_html.as_deref()))
        // Outermost, so every answer carries its X-Request-Id.
        .layer(request_id::layers())
        .layer(axum::middleware::map_request(request_id::keep_sane))
        .with_state(state)
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a handler panicked");
    AppError::Internal(format!("panic: {detail}")).into_response()
}

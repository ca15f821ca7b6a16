//! `GET /metrics` (SPEC §11): what operators scrape, in the text format of
//! the Prometheus project's own client (`prometheus-client`, OpenMetrics),
//! never gated; open on a loopback bind or with `--metrics-public`, otherwise
//! for admins only. Counters live here between scrapes; everything else is
//! read from the engine and the store at the scrape, so it is never stale.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use shared::{ErrorCode, ExecutionStatus, MaintenanceMode, MaintenanceState};

use crate::error::AppError;
use crate::state::AppState;

/// The content type of the text `prometheus-client` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What is counted between scrapes.
#[derive(Default)]
pub struct Metrics {
    /// Requests refused by maintenance mode (the gate, or the engine's admission), by code.
    refusals: Family<Labels, Counter>,
    /// Open `GET /maintenance/events` streams.
    sse_subscribers: Gauge,
}

/// One open event stream, counted until it is dropped.
pub struct OpenStream(Gauge);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Counts a status event stream as open until the guard is dropped.
    pub fn stream_opened(&self) -> OpenStream {
        self.sse_subscribers.inc();
        OpenStream(self.sse_subscribers.clone())
    }
}

/// A series' one label: its name and value (`code="maintenance_mode_active"`).
type Labels = Vec<(&'static str, String)>;

fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

/// A maintenance refusal, as its response carries it to [`count_refusals`].
#[derive(Debug, Clone, Copy)]
pub struct Refused(pub ErrorCode);

/// Counts the responses that carry a [`Refused`]: one place, whichever part refused.
pub async fn count_refusals(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(Refused(code)) = response.extensions().get::<Refused>() {
        state.metrics.refusals.get_or_create(&label("code", code.as_str())).inc();
    }
    response
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>, parts: Parts) -> Result<Response, AppError> {
    if !state.metrics_open {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip());
        let user = state.auth.authenticate(&parts.headers, peer).await?;
        if !user.is_admin() {
            return Err(AppError::Forbidden("Only admins may read the metrics on this bind".into()));
        }
    }
    let text = render(&state).await?;
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// The metrics as text, read now.
async fn render(state: &AppState) -> Result<String, AppError> {
    let engine = &state.engine;
    let mut registry = Registry::with_prefix("manager");
    let (now_state, now_mode) = engine.gate_state();

    let states = Family::<Labels, Gauge>::default();
    for each in [MaintenanceState::Deactivated, MaintenanceState::Activating, MaintenanceState::Activated] {
        let labels = label("state", each.as_str());
        states.get_or_create(&labels).set(i64::from(each == now_state));
    }
    registry.register("maintenance_state", "1 for the current maintenance state, 0 for the others", states);

    let modes = Family::<Labels, Gauge>::default();
    let on = now_state != MaintenanceState::Deactivated;
    for each in [MaintenanceMode::Full, MaintenanceMode::ReadOnly] {
        let labels = label("mode", each.as_str());
        modes.get_or_create(&labels).set(i64::from(on && each == now_mode));
    }
    registry.register("maintenance_mode", "1 for the mode of maintenance while it is on (0 while off)", modes);

    let epoch = Gauge::<i64>::default();
    epoch.set(i64::try_from(engine.published().epoch).unwrap_or(i64::MAX));
    registry.register("maintenance_epoch", "The number of the last status change applied here", epoch);

    let since = Gauge::<i64>::default();
    since.set(engine.seconds_in_state());
    registry.register("maintenance_state_seconds", "Seconds since the maintenance state last changed", since);

    registry.register(
        "gate_refusals",
        "Requests refused by maintenance mode, by error code",
        state.metrics.refusals.clone(),
    );

    // What needs the database is left out while it cannot be read (metrics
    // matter most then); `database_up` says so.
    let counts = state.reader.execution_counts().await;
    let answered = counts.is_ok();
    let database_up = Gauge::<i64>::default();
    database_up.set(i64::from(counts.is_ok()));
    registry.register("database_up", "1 if the database answered this scrape, 0 if not", database_up);
    match counts {
        Ok(counts) => {
            let executions = Family::<Labels, Gauge>::default();
            // Every status, 0 when there is none: a series that vanishes reads as "no data".
            for status in ExecutionStatus::ALL {
                let count = counts.iter().find(|(counted, _)| *counted == status).map_or(0, |(_, count)| *count);
                let labels = label("status", status.as_str());
                executions.get_or_create(&labels).set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            registry.register("executions", "Executions stored, by status", executions);
        }
        Err(error) => tracing::debug!(%error, "metrics without the executions: the database did not answer"),
    }

    if let Some(webhooks) = state.webhooks.as_deref().filter(|_| answered) {
        match state.reader.webhook_report(webhooks.keys()).await {
            Ok((_, views)) => register_webhooks(&mut registry, webhooks, &views),
            Err(error) => tracing::debug!(%error, "metrics without the webhooks: the database did not answer"),
        }
    }

    let running = Gauge::<i64>::default();
    running.set(i64::try_from(engine.running()).unwrap_or(i64::MAX));
    registry.register("running_processes", "Workflow programs this process runs", running);

    registry.register(
        "sse_subscribers",
        "Open streams of maintenance status events (GET /maintenance/events)",
        state.metrics.sse_subscribers.clone(),
    );

    let replicas = match state.cluster {
        Some(_) => engine.pg_replicas().await.ok(),
        None => None,
    };
    if let Some(replicas) = replicas {
        let lag = Family::<Labels, Gauge>::default();
        let newest = engine.published().epoch;
        for replica in replicas {
            let labels = label("replica", replica.id);
            lag.get_or_create(&labels).set(i64::try_from(newest.saturating_sub(replica.epoch)).unwrap_or(i64::MAX));
        }
        registry.register(
            "replica_epoch_lag",
            "Status changes a live replica has yet to apply, as this replica sees it (its last lease renewal)",
            lag,
        );
    }

    let mut text = String::new();
    encode(&mut text, &registry).map_err(|error| AppError::Internal(format!("encoding the metrics: {error}")))?;
    Ok(text)
}

/// Each webhook's backlog, failing attempts, deliveries and events given up,
/// labelled with its URL without password or query (which may hold a secret).
fn register_webhooks(registry: &mut Registry, webhooks: &crate::webhooks::Settings, views: &[shared::WebhookView]) {
    let backlog = Family::<Labels, Gauge>::default();
    let attempts = Family::<Labels, Gauge>::default();
    let delivered = Family::<Labels, Counter>::default();
    let failed = Family::<Labels, Counter>::default();
    for (url, view) in webhooks.urls.iter().zip(views) {
        let mut shown = url.clone();
        shown.set_query(None);
        let labels = label("url", crate::webhooks::redact(&shown));
        backlog.get_or_create(&labels).set(i64::try_from(view.backlog).unwrap_or(i64::MAX));
        attempts.get_or_create(&labels).set(i64::from(view.attempts));
        delivered.get_or_create(&labels).inc_by(view.delivered);
        failed.get_or_create(&labels).inc_by(view.failed);
    }
    registry.register("webhook_backlog", "Events waiting to be delivered to a webhook", backlog);
    registry.register("webhook_failing_attempts", "Failed attempts so far at a webhook's next event", attempts);
    registry.register("webhook_delivered", "Events a webhook acknowledged (2xx)", delivered);
    registry.register("webhook_failed", "Events given up after 24 hours of failed attempts", failed);
}

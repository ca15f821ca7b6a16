//! `GET /maintenance/events`: Server-Sent Events with the full status object,
//! once on connect and then once per change, in commit order (`status`); also
//! each execution as it changes (`execution`), so pages stay live.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use shared::MaintenanceStatus;
use tokio_stream::wrappers::BroadcastStream;

use crate::auth::{CurrentUser, StreamUser};
use crate::error::AppError;
use crate::routes::query::CloudifyQuery;
use crate::state::AppState;

/// How often an idle stream sends a comment, so proxies keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// When an event stream of `user` must end: on shutdown (so graceful
/// shutdown does not wait for idle clients), when its token expires (the
/// client's reconnect is then refused with 401), and when its credentials
/// stop working (revoked, new password, user removed).
pub fn stream_end(state: &AppState, user: CurrentUser) -> impl Future<Output = ()> + Send + 'static {
    let expiry = user.expires_at.map(|at| (at.as_datetime() - chrono::Utc::now()).to_std().unwrap_or_default());
    let expired = async move {
        match expiry {
            Some(left) => tokio::time::sleep(left).await,
            None => std::future::pending().await,
        }
    };
    let revoked = Arc::clone(&state.auth).until_revoked(user);
    let shutdown = state.shutdown.clone().cancelled_owned();
    async move {
        tokio::select! {
            () = expired => {}
            () = revoked => {}
            () = shutdown => {}
        }
    }
}

/// Streams `status` events.
#[utoipa::path(
    get,
    path = "/maintenance/events",
    tag = "maintenance",
    responses(
        (status = 200, description = "`status` events, each with the full status object as data (first the current one, then one per change); `execution` events with an execution each time one changes; `executions-lagged` if this client fell behind on those", content_type = "text/event-stream", body = MaintenanceStatus),
        (status = 401, body = shared::ApiError),
    ),
    params(("token" = Option<String>, Query, description = "A token, for clients that cannot send headers (browser EventSource)")),
    security(("basic" = []), ("token" = []), ("token_query" = [])),
)]
pub async fn events(
    State(state): State<AppState>,
    StreamUser(user): StreamUser,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    // `token` was read by `StreamUser`; nothing else is taken.
    CloudifyQuery::parse(raw.as_deref())?.finish(|name, _| name == "token")?;
    let engine = Arc::clone(&state.engine);
    // Subscribe before reading the current status so no change falls between.
    let changes = BroadcastStream::new(engine.subscribe());
    let execution_changes = BroadcastStream::new(engine.subscribe_executions());
    let current = engine.published();
    let statuses = stream::once(async move { current }).chain(changes.map(move |change| {
        // A subscriber that fell behind is resynchronised with the current status.
        change.unwrap_or_else(|_lagged| engine.published())
    }));
    // Changes already covered (by the snapshot sent first, or by a resync) are
    // dropped by their sequence number, so a client never sees one undone.
    let mut last: Option<u64> = None;
    let status_events = statuses.filter_map(move |published| {
        let fresh = last.is_none_or(|last| published.epoch > last);
        if fresh {
            last = Some(published.epoch);
        }
        let event = fresh
            .then(|| {
                Event::default().event("status").id(published.epoch.to_string()).json_data(&*published.status).ok()
            })
            .flatten();
        std::future::ready(event)
    });
    // A subscriber that fell behind on executions is told to reload them.
    let execution_events = execution_changes.filter_map(|change| {
        std::future::ready(match change {
            Ok(execution) => Event::default().event("execution").json_data(&*execution).ok(),
            Err(_lagged) => Some(Event::default().event("executions-lagged").data("reload the list")),
        })
    });
    // Counted open for as long as the stream lives (the guard goes with it).
    let open = state.metrics.stream_opened();
    let events = stream::select(status_events, execution_events)
        .map(move |event| {
            let _open = &open;
            Ok(event)
        })
        .take_until(stream_end(&state, user));
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

//! `/maintenance`: status, activate, deactivate, history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use shared::api::{ListResponse, Replica, ReplicasResponse, EPOCH_HEADER};
use shared::{ActivateRequest, MaintenanceStatus, MaintenanceTransition};

use crate::auth::{AdminUser, CurrentUser};
use crate::engine::machine::Activation;
use crate::engine::{EngineError, Published, Transition};
use crate::error::{AppError, NoBody, OptionalJson};
use crate::routes::query::NoQuery;
use crate::routes::{list_response, ListQuery};
use crate::server::LocalAddr;
use crate::state::AppState;

/// The longest activation reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

impl IntoResponse for Published {
    /// The status as JSON with its epoch in [`EPOCH_HEADER`].
    fn into_response(self) -> Response {
        ([(EPOCH_HEADER, self.epoch.to_string())], Json(&*self.status)).into_response()
    }
}

impl IntoResponse for Transition {
    fn into_response(self) -> Response {
        match self {
            Self::Changed(published) => published.into_response(),
            Self::Unchanged => StatusCode::NOT_MODIFIED.into_response(),
        }
    }
}

/// The maintenance-mode status.
#[utoipa::path(get, path = "/maintenance", tag = "maintenance",
    responses((status = 200, body = MaintenanceStatus, headers(("X-Maintenance-Epoch" = u64, description = "The epoch of this status: the number of the change that made it (the `id:` of its `status` event); keep the status with the highest epoch"))),
              (status = 401, body = shared::ApiError)))]
pub async fn status(State(state): State<AppState>, _user: CurrentUser, _query: NoQuery) -> Published {
    state.engine.published()
}

/// Starts maintenance mode: no new executions; `activated` once none remain.
#[utoipa::path(post, path = "/maintenance/activate", tag = "maintenance",
    request_body(content = Option<ActivateRequest>, description = "Optional; the reason is shown to everyone; `mode` `read_only` lets reads through; `drain_deadline_seconds` cancels what still runs after that long"),
    responses(
        (status = 200, body = MaintenanceStatus, description = "Now activating (executions remain) or activated",
         headers(("X-Maintenance-Epoch" = u64, description = "The epoch of this status: the number of the change that made it (the `id:` of its `status` event); keep the status with the highest epoch"))),
        (status = 304, description = "Already activating or activated"),
        (status = 400, body = shared::ApiError), (status = 401, body = shared::ApiError),
        (status = 403, body = shared::ApiError),
    ))]
pub async fn activate(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    _query: NoQuery,
    OptionalJson(request): OptionalJson<ActivateRequest>,
) -> Result<Transition, AppError> {
    let reason = request.reason.unwrap_or_default().trim().to_owned();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(AppError::BadRequest(format!("reason: longer than {MAX_REASON_CHARS} characters")));
    }
    crate::engine::schedule::check_drain_deadline(request.drain_deadline_seconds).map_err(EngineError::from)?;
    let activation = Activation {
        by: admin.username.clone(),
        reason,
        mode: request.mode.unwrap_or_default(),
        drain_deadline_seconds: request.drain_deadline_seconds,
        window_id: None,
    };
    let transition = state.engine.activate(activation).await?;
    if let Transition::Changed(published) = &transition {
        tracing::info!(by = %admin.username, state = %published.status.status, "maintenance mode activation requested");
    }
    Ok(transition)
}

/// Ends maintenance mode and starts the queued executions.
#[utoipa::path(post, path = "/maintenance/deactivate", tag = "maintenance",
    responses(
        (status = 200, body = MaintenanceStatus, description = "Now deactivated",
         headers(("X-Maintenance-Epoch" = u64, description = "The epoch of this status: the number of the change that made it (the `id:` of its `status` event); keep the status with the highest epoch"))),
        (status = 304, description = "Already deactivated"),
        (status = 401, body = shared::ApiError), (status = 403, body = shared::ApiError),
    ))]
pub async fn deactivate(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    _query: NoQuery,
    _body: NoBody,
) -> Result<Transition, AppError> {
    let transition = state.engine.deactivate(admin.username.clone()).await?;
    if matches!(transition, Transition::Changed(_)) {
        tracing::info!(by = %admin.username, "maintenance mode deactivated");
    }
    Ok(transition)
}

/// Maintenance-mode transitions, newest first.
#[utoipa::path(get, path = "/maintenance/history", tag = "maintenance", params(ListQuery),
    responses((status = 200, body = ListResponse<MaintenanceTransition>), (status = 400, body = shared::ApiError),
              (status = 401, body = shared::ApiError)))]
pub async fn history(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: ListQuery,
) -> Result<Json<ListResponse<MaintenanceTransition>>, AppError> {
    let (size, offset) = query.paging();
    let (items, total) = state.reader.history(size, offset).await?;
    Ok(Json(list_response(items, total, size, offset)))
}

/// Each webhook's deliveries, failures and backlog (SPEC §11), in the order configured.
#[utoipa::path(get, path = "/maintenance/webhooks", tag = "maintenance",
    responses((status = 200, body = shared::Webhooks), (status = 401, body = shared::ApiError),
              (status = 403, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn webhooks(
    State(state): State<AppState>,
    _admin: AdminUser,
    _query: NoQuery,
) -> Result<Json<shared::Webhooks>, AppError> {
    let urls = state.webhooks.as_deref().map(crate::webhooks::Settings::keys).unwrap_or_default();
    let (last_event_id, webhooks) = state.reader.webhook_report(urls).await?;
    Ok(Json(shared::Webhooks { last_event_id, webhooks }))
}

/// The replicas serving this manager and the change each has applied
/// (SPEC §8): those whose lease has not run out. On SQLite, this process.
#[utoipa::path(get, path = "/maintenance/replicas", tag = "maintenance",
    responses((status = 200, body = ReplicasResponse), (status = 401, body = shared::ApiError),
              (status = 503, body = shared::ApiError)))]
pub async fn replicas(
    State(state): State<AppState>,
    _user: CurrentUser,
    _query: NoQuery,
    local: Option<Extension<LocalAddr>>,
) -> Result<Json<ReplicasResponse>, AppError> {
    let items = match &state.cluster {
        Some(_) => state.engine.pg_replicas().await?,
        None => vec![Replica {
            id: "local".into(),
            address: local.map(|Extension(LocalAddr(address))| address.to_string()).unwrap_or_default(),
            last_seen: shared::Timestamp::now(),
            epoch: state.engine.published().epoch,
            running_executions: state.engine.running() as u64,
        }],
    };
    Ok(Json(ReplicasResponse { items }))
}

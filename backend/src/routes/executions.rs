//! `/executions`: list, get, create, cancel.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use shared::api::{ListMetadata, ListResponse, Pagination};
use shared::execution::ExecutionActionRequest;
use shared::{Execution, NewExecution};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiPath, AppError};
use crate::gate::Bypass;
use crate::state::AppState;
use crate::store::executions as store;

/// The largest (and default) page of a list.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Paging of `GET /executions` (Cloudify's parameter names).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 1000 (default 1000).
    #[serde(rename = "_size")]
    #[param(minimum = 1, maximum = 1000)]
    size: Option<u32>,
    /// How many of the newest to skip (default 0).
    #[serde(rename = "_offset")]
    offset: Option<u64>,
}

/// Executions, newest first.
#[utoipa::path(get, path = "/executions", tag = "executions", params(ListQuery),
    responses((status = 200, body = ListResponse<Execution>), (status = 400, body = shared::ApiError),
              (status = 401, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ListResponse<Execution>>, AppError> {
    let Query(query) = query.map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
    let size = query.size.unwrap_or(MAX_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&size) {
        return Err(AppError::BadRequest(format!("_size: must be between 1 and {MAX_PAGE_SIZE}, got {size}")));
    }
    let offset = query.offset.unwrap_or(0);
    let (items, total) = state.reader.read(move |conn| store::page(conn, size, offset)).await?;
    Ok(Json(ListResponse { items, metadata: ListMetadata { pagination: Pagination { total, size, offset } } }))
}

/// One execution.
#[utoipa::path(get, path = "/executions/{id}", tag = "executions",
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses((status = 200, body = Execution), (status = 400, body = shared::ApiError),
              (status = 404, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn get(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Execution>, AppError> {
    let id = parse_id(&id)?;
    state
        .reader
        .read(move |conn| store::get(conn, id))
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound(format!("Requested execution `{id}` was not found")))
}

/// Starts an execution — or, during maintenance, queues it (`queue: true`) or refuses it (503).
#[utoipa::path(post, path = "/executions", tag = "executions", request_body = NewExecution,
    responses(
        (status = 201, body = Execution, description = "Started, or queued during maintenance"),
        (status = 400, body = shared::ApiError), (status = 401, body = shared::ApiError),
        (status = 413, body = shared::ApiError),
        (status = 503, body = shared::ApiError, description = "`entering_maintenance_mode` or `maintenance_mode_active`"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    bypass: Option<Extension<Bypass>>,
    ApiJson(new): ApiJson<NewExecution>,
) -> Result<(StatusCode, Json<Execution>), AppError> {
    new.validate().map_err(|problem| AppError::BadRequest(format!("Invalid request body: {problem}")))?;
    let execution = state.engine.create_execution(new, user.username, bypass.is_some()).await?;
    tracing::info!(id = %execution.id, status = %execution.status, workflow = %execution.workflow_id, "execution created");
    Ok((StatusCode::CREATED, Json(execution)))
}

/// Cancels (`cancel`) or force-cancels (`force-cancel`) an execution.
#[utoipa::path(post, path = "/executions/{id}", tag = "executions", request_body = ExecutionActionRequest,
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses((status = 200, body = Execution), (status = 400, body = shared::ApiError),
              (status = 404, body = shared::ApiError),
              (status = 409, body = shared::ApiError, description = "The execution has already ended")))]
pub async fn act(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<ExecutionActionRequest>,
) -> Result<Json<Execution>, AppError> {
    let id = parse_id(&id)?;
    Ok(Json(state.engine.act(id, request).await?))
}

fn parse_id(text: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(text).map_err(|_| AppError::BadRequest(format!("id: `{text}` is not an execution id (a UUID)")))
}

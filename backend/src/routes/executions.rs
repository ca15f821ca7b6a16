//! `/executions`: list, get, create, cancel.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use shared::api::ListResponse;
use shared::execution::ExecutionActionRequest;
use shared::{Execution, NewExecution};

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiPath, AppError};
use crate::gate::Bypass;
use crate::routes::{list_response, parse_id, ListQuery};
use crate::state::AppState;
use crate::store::executions as store;

/// Executions, newest first.
#[utoipa::path(get, path = "/executions", tag = "executions", params(ListQuery),
    responses((status = 200, body = ListResponse<Execution>), (status = 400, body = shared::ApiError),
              (status = 401, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ListResponse<Execution>>, AppError> {
    let (size, offset) = ListQuery::paging(query)?;
    let (items, total) = state.reader.read(move |conn| store::page(conn, size, offset)).await?;
    Ok(Json(list_response(items, total, size, offset)))
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
    let id = parse_id("an execution", &id)?;
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
    Bypass(bypass): Bypass,
    ApiJson(new): ApiJson<NewExecution>,
) -> Result<(StatusCode, Json<Execution>), AppError> {
    new.validate().map_err(|problem| AppError::BadRequest(format!("Invalid request body: {problem}")))?;
    let execution = state.engine.create_execution(new, user.username, bypass).await?;
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
    let id = parse_id("an execution", &id)?;
    Ok(Json(state.engine.act(id, request).await?))
}

//! `/maintenance/windows`: scheduled maintenance windows (SPEC §10).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::api::ListResponse;
use shared::{ExtendWindow, NewWindow, Window};

use crate::auth::{AdminUser, CurrentUser};
use crate::error::{ApiJson, ApiPath, AppError, NoBody};
use crate::routes::query::NoQuery;
use crate::routes::{list_response, parse_id, ListQuery};
use crate::state::AppState;

/// The windows, latest start first.
#[utoipa::path(get, path = "/maintenance/windows", tag = "maintenance", params(ListQuery),
    responses((status = 200, body = ListResponse<Window>), (status = 400, body = shared::ApiError),
              (status = 401, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    query: ListQuery,
) -> Result<Json<ListResponse<Window>>, AppError> {
    let (size, offset) = query.paging();
    let (items, total) = state.reader.windows(size, offset).await?;
    Ok(Json(list_response(items, total, size, offset)))
}

/// Schedules a window: announced `notice_seconds` ahead (`upcoming`), maintenance mode from
/// `starts_at` (requested by its author), off again at `ends_at`.
#[utoipa::path(post, path = "/maintenance/windows", tag = "maintenance", request_body = NewWindow,
    responses(
        (status = 201, body = Window),
        (status = 400, body = shared::ApiError, description = "A field is wrong (the message names it): `starts_at` in the past, `ends_at` not after it, …"),
        (status = 401, body = shared::ApiError), (status = 403, body = shared::ApiError),
        (status = 409, body = shared::ApiError, description = "`window_overlaps`: another scheduled or active window overlaps it"),
        (status = 413, body = shared::ApiError), (status = 503, body = shared::ApiError),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    _query: NoQuery,
    ApiJson(new): ApiJson<NewWindow>,
) -> Result<(StatusCode, Json<Window>), AppError> {
    let window = state.engine.schedule_window(new, admin.username.clone()).await?;
    tracing::info!(id = %window.id, by = %admin.username, starts_at = %window.starts_at, "maintenance window scheduled");
    Ok((StatusCode::CREATED, Json(window)))
}

/// Cancels a scheduled window, or ends an active one now (maintenance mode is turned off).
#[utoipa::path(delete, path = "/maintenance/windows/{id}", tag = "maintenance",
    params(("id" = uuid::Uuid, Path, description = "The window's id")),
    responses(
        (status = 200, body = Window, description = "Now `cancelled` (it was scheduled) or `ended` (it was active)"),
        (status = 400, body = shared::ApiError, description = "The id is not a UUID"),
        (status = 401, body = shared::ApiError), (status = 403, body = shared::ApiError),
        (status = 404, body = shared::ApiError),
        (status = 409, body = shared::ApiError, description = "It is already over"),
        (status = 503, body = shared::ApiError),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<String>,
    _query: NoQuery,
    _body: NoBody,
) -> Result<Json<Window>, AppError> {
    let id = parse_id("a maintenance window", &id)?;
    let window = state.engine.cancel_window(id, admin.username.clone()).await?;
    tracing::info!(%id, by = %admin.username, state = %window.state, "maintenance window cancelled");
    Ok(Json(window))
}

/// Moves the end of a scheduled or active window.
#[utoipa::path(post, path = "/maintenance/windows/{id}/extend", tag = "maintenance", request_body = ExtendWindow,
    params(("id" = uuid::Uuid, Path, description = "The window's id")),
    responses(
        (status = 200, body = Window),
        (status = 400, body = shared::ApiError, description = "`ends_at` is not after the start, or not in the future"),
        (status = 401, body = shared::ApiError), (status = 403, body = shared::ApiError),
        (status = 404, body = shared::ApiError),
        (status = 409, body = shared::ApiError, description = "`window_overlaps`, or it is already over"),
        (status = 413, body = shared::ApiError), (status = 503, body = shared::ApiError),
    ))]
pub async fn extend(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiPath(id): ApiPath<String>,
    _query: NoQuery,
    ApiJson(request): ApiJson<ExtendWindow>,
) -> Result<Json<Window>, AppError> {
    let id = parse_id("a maintenance window", &id)?;
    let window = state.engine.extend_window(id, request.ends_at, admin.username.clone()).await?;
    tracing::info!(%id, by = %admin.username, ends_at = %request.ends_at, "maintenance window extended");
    Ok(Json(window))
}

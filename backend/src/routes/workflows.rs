//! `GET /workflows`: the catalog (SPEC §9).

use axum::extract::State;
use axum::Json;
use shared::api::{ListResponse, Workflow};

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::routes::list_response;
use crate::routes::query::NoQuery;
use crate::state::AppState;

/// Every workflow executions can run, by id, with its description.
#[utoipa::path(get, path = "/workflows", tag = "workflows",
    responses((status = 200, body = ListResponse<Workflow>), (status = 503, body = shared::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    _query: NoQuery,
) -> Result<Json<ListResponse<Workflow>>, AppError> {
    let workflows = state.catalog.list().map_err(|error| AppError::Internal(error.to_string()))?;
    let total = workflows.len() as u64;
    let size = u32::try_from(workflows.len()).unwrap_or(u32::MAX);
    Ok(Json(list_response(workflows, total, size, 0)))
}

//! `/tokens`: sign in for a token; revoke one.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use shared::{TokenRequest, TokenResponse};

use crate::auth::{CurrentUser, Peer};
use crate::error::{ApiPath, AppError, NoBody, OptionalJson};
use crate::routes::parse_id;
use crate::routes::query::NoQuery;
use crate::state::AppState;

/// A new token for the caller (sign in with Basic auth). It expires after the
/// manager's token lifetime (default 10 hours).
#[utoipa::path(post, path = "/tokens", tag = "auth", security(("basic" = [])),
    request_body(content = Option<TokenRequest>, description = "Optional: what Cloudify's client sends (`cfy tokens create`)"),
    responses((status = 200, body = TokenResponse), (status = 401, body = shared::ApiError),
              (status = 429, body = shared::ApiError, description = "Too many failed sign-ins; see Retry-After")))]
pub async fn create(
    State(state): State<AppState>,
    Peer(address): Peer,
    headers: HeaderMap,
    _query: NoQuery,
    OptionalJson(request): OptionalJson<TokenRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    // The request is checked before the password: a malformed one costs no hash.
    request.check().map_err(|problem| AppError::BadRequest(format!("Invalid request body: {problem}")))?;
    let user = state.auth.by_basic(&headers, address).await?;
    let token = state.auth.issue_token(&user.username, user.role).await?;
    tracing::info!(username = %user.username, token_id = %token.id, "token issued");
    Ok(Json(token))
}

/// Revokes a token at once. Its owner or an admin may.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "auth",
    params(("id" = Uuid, Path, description = "The token's id (from POST /tokens)")),
    responses((status = 204, description = "Revoked"), (status = 400, body = shared::ApiError),
              (status = 401, body = shared::ApiError), (status = 403, body = shared::ApiError),
              (status = 404, body = shared::ApiError)))]
pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    _query: NoQuery,
    _body: NoBody,
) -> Result<StatusCode, AppError> {
    let id = parse_id("a token", &id)?;
    state.auth.revoke(&user, id).await?;
    tracing::info!(by = %user.username, token_id = %id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}

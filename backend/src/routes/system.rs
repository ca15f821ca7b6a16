//! Routes that are never gated: version, status, liveness, the OpenAPI document.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use shared::api::{ServerStatus, VersionInfo};

use crate::routes::query::NoQuery;
use crate::state::AppState;

/// The manager's and the API's versions, and the Cloudify release it is
/// compatible with. Also served at `/api/version`, where Cloudify's client asks.
#[utoipa::path(get, path = "/version", tag = "system", security(()), responses((status = 200, body = VersionInfo)))]
pub async fn version(_query: NoQuery) -> Json<VersionInfo> {
    Json(VersionInfo {
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: "v3.1".into(),
        edition: shared::cloudify::EDITION.into(),
        cloudify_version: shared::cloudify::CLOUDIFY_VERSION.into(),
    })
}

/// Whether the manager runs, its maintenance state, and each of its services
/// in Cloudify's shape (`cfy status`), for monitoring.
#[utoipa::path(get, path = "/status", tag = "system", security(()), responses((status = 200, body = ServerStatus)))]
pub async fn status(State(state): State<AppState>, _query: NoQuery) -> Json<ServerStatus> {
    let facts = crate::services::gather(&state).await;
    Json(ServerStatus {
        status: "running".into(),
        maintenance: state.engine.state(),
        database: if facts.database_up { "available" } else { "unavailable" }.into(),
        replica: facts.replica.clone(),
        services: crate::services::services(&facts),
    })
}

/// Liveness: 200 `OK` while the manager serves requests.
#[utoipa::path(get, path = "/ok", tag = "system", security(()), responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn ok(_query: NoQuery) -> &'static str {
    "OK"
}

/// This API's OpenAPI 3 document.
#[utoipa::path(get, path = "/openapi.json", tag = "system", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn openapi_json(State(state): State<AppState>, _query: NoQuery) -> impl IntoResponse {
    // A catalog that cannot be read documents no workflow ids: any is allowed then.
    let workflows: Vec<String> = state.catalog.list().unwrap_or_default().into_iter().map(|w| w.id).collect();
    ([(header::CONTENT_TYPE, "application/json")], super::openapi_json(&workflows))
}

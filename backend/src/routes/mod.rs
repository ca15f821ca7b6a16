//! The REST API (SPEC §2), its OpenAPI document, and the admin panel's files.

pub mod executions;
pub mod maintenance;
pub mod system;

use std::sync::LazyLock;

use shared::api::API_PREFIX;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::events;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Manager REST API",
        description = "Workflow executions and the maintenance-mode gate. Errors are `{\"message\", \"error_code\"}`; \
                       while maintenance mode refuses a request the status is 503 with `Retry-After`."
    ),
    components(schemas(shared::ApiError, shared::ErrorCode)),
    tags(
        (name = "maintenance", description = "The maintenance-mode gate"),
        (name = "executions", description = "Workflow executions"),
        (name = "system", description = "Never gated"),
    )
)]
struct ApiDoc;

/// Every API route with its OpenAPI description, under [`API_PREFIX`].
pub fn api_routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(maintenance::status))
        .routes(routes!(maintenance::activate))
        .routes(routes!(maintenance::deactivate))
        .routes(routes!(maintenance::history))
        .routes(routes!(events::events))
        .routes(routes!(executions::list, executions::create))
        .routes(routes!(executions::get, executions::act))
        .routes(routes!(system::version))
        .routes(routes!(system::status))
        .routes(routes!(system::ok))
        .routes(routes!(system::openapi_json))
        .fallback(not_found);
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(API_PREFIX, api)
}

/// The OpenAPI document, built once from the real routes.
pub static OPENAPI: LazyLock<String> = LazyLock::new(|| {
    let (_, document) = api_routes().split_for_parts();
    document.to_pretty_json().unwrap_or_else(|error| {
        tracing::error!(%error, "could not serialize the OpenAPI document");
        String::from("{}")
    })
});

/// 404 for any API path without a route.
pub async fn not_found() -> AppError {
    AppError::NotFound("No such API endpoint; see /api/v3.1/openapi.json for the list".into())
}

/// 405 for an API path that has routes, but not for this method.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

//! The REST API (SPEC §2), its OpenAPI document, and the admin panel's files.

pub mod cloudify_events;
pub mod discovery;
pub mod execution_events;
pub mod executions;
pub mod maintenance;
pub mod query;
pub mod system;
pub mod tenant;
pub mod tokens;
pub mod windows;
pub mod workflows;

use std::sync::LazyLock;

use shared::api::API_PREFIX;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
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
    modifiers(&SecuritySchemes),
    security(("basic" = []), ("token" = [])),
    tags(
        (name = "auth", description = "Tokens"),
        (name = "maintenance", description = "The maintenance-mode gate"),
        (name = "executions", description = "Workflow executions"),
        (name = "workflows", description = "The workflow catalog"),
        (name = "system", description = "Never gated"),
        (name = "cloudify", description = "What Cloudify's own client (`cfy`) asks besides the rest: discovery and events"),
    )
)]
struct ApiDoc;

/// Declares how callers sign in: Basic, the `Authentication-Token` header,
/// and (on the event stream only) a `token` query parameter.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                shared::api::TOKEN_HEADER,
                "A token from POST /api/v3.1/tokens",
            ))),
        );
        components.add_security_scheme(
            "token_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "Only on GET /maintenance/events, for browser EventSource",
            ))),
        );
    }
}

/// Every API route with its OpenAPI description, under [`API_PREFIX`].
pub fn api_routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(maintenance::status))
        .routes(routes!(maintenance::activate))
        .routes(routes!(maintenance::deactivate))
        .routes(routes!(maintenance::history))
        .routes(routes!(maintenance::replicas))
        .routes(routes!(maintenance::webhooks))
        .routes(routes!(windows::list, windows::create))
        .routes(routes!(windows::cancel))
        .routes(routes!(windows::extend))
        .routes(routes!(events::events))
        .routes(routes!(executions::list, executions::create))
        .routes(routes!(executions::get, executions::act))
        .routes(routes!(execution_events::page))
        .routes(routes!(execution_events::stream))
        .routes(routes!(workflows::list))
        .routes(routes!(system::version))
        .routes(routes!(system::status))
        .routes(routes!(system::ok))
        .routes(routes!(system::openapi_json))
        .routes(routes!(tokens::create))
        .routes(routes!(tokens::revoke))
        .routes(routes!(discovery::provider_context))
        .routes(routes!(discovery::managers))
        .routes(routes!(discovery::brokers))
        .routes(routes!(discovery::db_nodes))
        .routes(routes!(cloudify_events::events))
        .fallback(not_found);
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest(API_PREFIX, api)
}

/// The OpenAPI document, built once from the real routes.
static OPENAPI: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(|| {
    let (_, mut document) = api_routes().split_for_parts();
    document_sign_in_answers(&mut document);
    document_refusals(&mut document);
    document
});

/// The OpenAPI document as JSON, with the workflows of the catalog now as
/// the values `workflow_id` accepts (it is read on every request, like the
/// catalog itself).
pub fn openapi_json(workflows: &[String]) -> String {
    let mut document = OPENAPI.clone();
    if !workflows.is_empty() {
        let schema = document.components.as_mut().and_then(|components| components.schemas.get_mut("CreateExecution"));
        if let Some(RefOr::T(Schema::Object(object))) = schema {
            if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut("workflow_id") {
                field.enum_values = Some(workflows.iter().map(|id| serde_json::Value::from(id.as_str())).collect());
            }
        }
    }
    document.to_pretty_json().unwrap_or_else(|error| {
        tracing::error!(%error, "could not serialize the OpenAPI document");
        String::from("{}")
    })
}

/// An answer with an error body, as documented.
fn error_answer(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", Content::new(Some(Ref::from_schema_name("ApiError"))))
            .build(),
    )
}

/// Every operation refuses with 400 a query parameter or body field it does
/// not take, and U+0000 in any (SPEC §8); every one that may carry a body
/// refuses one over the limit with 413. Documented here once rather than on
/// each handler (which document their own 400s where they have more).
fn document_refusals(document: &mut utoipa::openapi::OpenApi) {
    for item in document.paths.paths.values_mut() {
        let with_body = [&mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
        for operation in with_body.into_iter().flatten() {
            operation.responses.responses.entry("413".into()).or_insert_with(|| {
                error_answer("`payload_too_large`: the request body is larger than the manager accepts")
            });
        }
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            operation.responses.responses.entry("400".into()).or_insert_with(|| {
                error_answer(
                    "`bad_request`: a query parameter or body field this operation does not take, or a NUL \
                     character (U+0000) in one; the message names it",
                )
            });
        }
    }
}

/// Every operation that needs a sign-in can answer 401 (no or bad credentials)
/// and 429 (the sign-in limiter); documented here once rather than on each handler.
fn document_sign_in_answers(document: &mut utoipa::openapi::OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            let open =
                operation.security.as_ref().is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
            if open {
                continue;
            }
            let responses = &mut operation.responses.responses;
            responses.entry("401".into()).or_insert_with(|| error_answer("No valid credentials"));
            responses.entry("429".into()).or_insert_with(|| {
                error_answer("Too many failed sign-ins from this address for this user; see `Retry-After`")
            });
            // Checking credentials queues a database read, which a flood can refuse.
            responses.entry("503".into()).or_insert_with(|| {
                error_answer("`overloaded`: too many requests are waiting for the database; see `Retry-After`")
            });
        }
    }
}

/// The largest (and default) page of a list.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Paging of list routes (Cloudify's parameter names), newest first.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
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

impl ListQuery {
    /// The size and offset asked for.
    pub fn paging(&self) -> (u32, u64) {
        (self.size.unwrap_or(MAX_PAGE_SIZE), self.offset.unwrap_or(0))
    }
}

/// Read as Cloudify's list queries are ([`query::CloudifyQuery`]): checked, and
/// any other parameter is a 400 naming it.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ListQuery {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _state: &S) -> Result<Self, AppError> {
        let mut query = query::CloudifyQuery::parse(parts.uri.query())?;
        let (size, offset) = query.take_paging()?;
        query.finish(|_, _| false)?;
        Ok(Self { size: Some(size), offset: Some(offset) })
    }
}

/// A UUID from a path; `kind` names what it identifies ("an execution").
pub fn parse_id(kind: &str, text: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(text).map_err(|_| AppError::BadRequest(format!("id: `{text}` is not {kind} id (a UUID)")))
}

/// A list response with its paging.
pub fn list_response<T>(items: Vec<T>, total: u64, size: u32, offset: u64) -> shared::api::ListResponse<T> {
    use shared::api::{ListMetadata, ListResponse, Pagination};
    ListResponse { items, metadata: ListMetadata { pagination: Pagination { total, size, offset } } }
}

/// 404 for any API path without a route.
pub async fn not_found() -> AppError {
    AppError::NotFound("No such API endpoint; see /api/v3.1/openapi.json for the list".into())
}

/// 405 for an API path that has routes, but not for this method.
pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

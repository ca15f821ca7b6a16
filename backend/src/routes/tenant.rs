//! Cloudify's `Tenant` header. This manager has one tenant, `default_tenant`,
//! which Cloudify's client names in every request; naming another is a 404,
//! so a request meant for another tenant never acts on this one.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shared::cloudify::{DEFAULT_TENANT, TENANT_HEADER};

use crate::error::AppError;

/// Passes requests that name no tenant or `default_tenant`; refuses the rest.
pub async fn check(request: Request, next: Next) -> Response {
    match request.headers().get(TENANT_HEADER).map(|value| value.to_str().map(str::trim)) {
        None | Some(Ok("" | DEFAULT_TENANT)) => next.run(request).await,
        Some(Ok(other)) => AppError::NotFound(format!(
            "Tenant `{other}` does not exist; this manager has one tenant, `{DEFAULT_TENANT}`"
        ))
        .into_response(),
        Some(Err(_)) => AppError::BadRequest(format!("{TENANT_HEADER}: not a valid header value")).into_response(),
    }
}

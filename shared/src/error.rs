//! The error body every failing request gets (SPEC §3–4).

use std::fmt;

use serde::{Deserialize, Serialize};

/// The message of every 503 the maintenance gate sends (Cloudify's wording).
pub const MAINTENANCE_MESSAGE: &str = "Your request was rejected since the manager is currently in maintenance mode";

/// Why a request field holding U+0000 is refused (after the field's name):
/// PostgreSQL's text cannot hold it, so neither store takes it (SPEC §8).
pub const NUL_REFUSED: &str = "must not contain a NUL character (U+0000)";

/// A machine-readable error code; clients branch on it, people read `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: malformed JSON, wrong types, unknown action, invalid request.
    BadRequest,
    /// 400: the execution names a workflow that is not in the catalog.
    UnknownWorkflow,
    /// 401: no or bad credentials.
    Unauthorized,
    /// 403: signed in, but not allowed.
    Forbidden,
    /// 404: no such route or resource.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: the resource is in a state that does not allow the request.
    Conflict,
    /// 409: a window would overlap another scheduled or active one (SPEC §10).
    WindowOverlaps,
    /// 413: the body is larger than the manager accepts.
    PayloadTooLarge,
    /// 429: too many failed sign-ins; wait `Retry-After` seconds.
    TooManyRequests,
    /// 503 while `activating`: new executions are refused.
    EnteringMaintenanceMode,
    /// 503 while `activated`: most requests are refused.
    MaintenanceModeActive,
    /// 503 while `activated` read-only: reads pass, other methods are refused (SPEC §10).
    MaintenanceModeReadOnly,
    /// 503: the manager has more work queued than it accepts; retry after `Retry-After`.
    Overloaded,
    /// 503: the database cannot be reached; retry after `Retry-After` (SPEC §8).
    DatabaseUnavailable,
    /// 500: a fault of the manager; details are in its log, not here.
    InternalError,
}

impl ErrorCode {
    /// The wire name (`"maintenance_mode_active"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownWorkflow => "unknown_workflow",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::WindowOverlaps => "window_overlaps",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyRequests => "too_many_requests",
            Self::EnteringMaintenanceMode => "entering_maintenance_mode",
            Self::MaintenanceModeActive => "maintenance_mode_active",
            Self::MaintenanceModeReadOnly => "maintenance_mode_read_only",
            Self::Overloaded => "overloaded",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::InternalError => "internal_error",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest | Self::UnknownWorkflow => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict | Self::WindowOverlaps => 409,
            Self::PayloadTooLarge => 413,
            Self::TooManyRequests => 429,
            Self::EnteringMaintenanceMode
            | Self::MaintenanceModeActive
            | Self::MaintenanceModeReadOnly
            | Self::Overloaded
            | Self::DatabaseUnavailable => 503,
            Self::InternalError => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of every error response: `{"message", "error_code"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiError {
    /// What went wrong, in words a person can act on.
    pub message: String,
    /// What went wrong, for programs.
    pub error_code: ErrorCode,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_message_then_code() {
        let body = ApiError { message: MAINTENANCE_MESSAGE.into(), error_code: ErrorCode::MaintenanceModeActive };
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(
            json,
            r#"{"message":"Your request was rejected since the manager is currently in maintenance mode","error_code":"maintenance_mode_active"}"#
        );
        assert_eq!(serde_json::from_str::<ApiError>(&json).unwrap(), body);
    }

    #[test]
    fn codes_match_their_wire_names_and_statuses() {
        let json = serde_json::to_string(&ErrorCode::EnteringMaintenanceMode).unwrap();
        assert_eq!(json, "\"entering_maintenance_mode\"");
        assert_eq!(ErrorCode::EnteringMaintenanceMode.http_status(), 503);
        assert_eq!(ErrorCode::PayloadTooLarge.to_string(), "payload_too_large");
    }
}

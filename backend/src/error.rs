//! Every failure becomes `{"message", "error_code"}` with its status here, and
//! only here. Internal details go to the log, never to the client.

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use shared::{ApiError, ErrorCode};

use crate::engine::schedule::WindowError;
use crate::engine::EngineError;
use crate::store::StoreError;
use crate::worker::WorkerError;

/// What a client is told to wait before retrying a request refused by maintenance mode.
pub const RETRY_AFTER_SECONDS: u32 = 60;

/// What a client is told to wait before retrying a request refused as overloaded.
pub const OVERLOADED_RETRY_AFTER_SECONDS: u64 = 1;
/// `Retry-After` of 503 `database_unavailable`: replicas reconnect within a couple of seconds.
pub const DATABASE_RETRY_AFTER_SECONDS: u64 = 2;

/// Everything a handler or middleware can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// 400 `unknown_workflow`: the workflow is not in the catalog.
    #[error("{0}")]
    UnknownWorkflow(String),
    /// 401.
    #[error("{0}")]
    Unauthorized(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 405 for a route that exists with other methods.
    #[error("Method not allowed for this URL")]
    MethodNotAllowed,
    /// 409: the resource's state does not allow the request.
    #[error("{0}")]
    Conflict(String),
    /// 409 `window_overlaps`: another window is scheduled or active then (SPEC §10).
    #[error("{0}")]
    WindowOverlaps(String),
    /// 413.
    #[error("The request body is larger than the manager accepts")]
    PayloadTooLarge,
    /// 429 with `Retry-After` (seconds): too many failed sign-ins.
    #[error("Too many failed sign-ins; try again in {0} seconds")]
    TooManyRequests(u64),
    /// 503 with `Retry-After`: more work is queued than the manager accepts.
    #[error("The manager is overloaded: too many requests are waiting; retry shortly")]
    Overloaded,
    /// 503 with `Retry-After`: the database cannot be reached (SPEC §8).
    #[error("The manager cannot reach its database; retry shortly")]
    DatabaseUnavailable,
    /// 503 with `Retry-After`: refused by maintenance mode.
    #[error("{}", shared::error::MAINTENANCE_MESSAGE)]
    Maintenance(ErrorCode),
    /// 500: logged in full, shown as a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// 404 for an execution id that names none (the engine's wording).
    pub fn execution_not_found(id: uuid::Uuid) -> Self {
        EngineError::ExecutionNotFound(id).into()
    }

    fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::UnknownWorkflow(_) => ErrorCode::UnknownWorkflow,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::MethodNotAllowed => ErrorCode::MethodNotAllowed,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::WindowOverlaps(_) => ErrorCode::WindowOverlaps,
            Self::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Self::TooManyRequests(_) => ErrorCode::TooManyRequests,
            Self::Overloaded => ErrorCode::Overloaded,
            Self::DatabaseUnavailable => ErrorCode::DatabaseUnavailable,
            Self::Maintenance(code) => *code,
            Self::Internal(_) => ErrorCode::InternalError,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let code = self.code();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "The manager failed to handle this request; the details are in its log".to_owned()
            }
            other => other.to_string(),
        };
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(ApiError { message, error_code: code })).into_response();
        if let Self::Maintenance(code) = &self {
            // Counted once, by `metrics::count_refusals`, whichever part refused.
            response.extensions_mut().insert(crate::metrics::Refused(*code));
        }
        let retry_after = match self {
            Self::Maintenance(_) => Some(u64::from(RETRY_AFTER_SECONDS)),
            Self::Overloaded => Some(OVERLOADED_RETRY_AFTER_SECONDS),
            Self::DatabaseUnavailable => Some(DATABASE_RETRY_AFTER_SECONDS),
            Self::TooManyRequests(seconds) => Some(seconds),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<EngineError> for AppError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Refused(code) => Self::Maintenance(code),
            EngineError::ExecutionNotFound(_) => Self::NotFound(error.to_string()),
            EngineError::AlreadyEnded { .. } => Self::Conflict(error.to_string()),
            EngineError::Window(window) => match window {
                WindowError::Invalid { .. } => Self::BadRequest(window.to_string()),
                WindowError::Overlaps { .. } => Self::WindowOverlaps(window.to_string()),
                WindowError::NotFound(_) => Self::NotFound(window.to_string()),
                WindowError::Over { .. } => Self::Conflict(window.to_string()),
            },
            EngineError::Store(error) => error.into(),
            EngineError::NeedsExclusive => Self::Internal(error.to_string()),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Task(error) => error.into(),
            StoreError::Busy => Self::Overloaded,
            // Only a database whose encoding lacks a character of the request
            // gets here (U+0000 is refused when the request is read).
            StoreError::Unstorable(detail) => {
                Self::BadRequest(format!("The database cannot store some text of this request ({detail})"))
            }
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "database unavailable");
                Self::DatabaseUnavailable
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// A full queue is the client's cue to retry (503); a failed job is ours (500).
impl From<WorkerError> for AppError {
    fn from(error: WorkerError) -> Self {
        match error {
            WorkerError::Overloaded(..) => Self::Overloaded,
            WorkerError::Failed(_) => Self::Internal(error.to_string()),
        }
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::PayloadTooLarge
        } else {
            Self::BadRequest(format!("Could not read the request body: {}", rejection.body_text()))
        }
    }
}

/// A JSON body; any failure is a 400 naming the field (or 413 if too large).
/// Lenient about `Content-Type`, as `curl -d` users expect.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let body = axum::body::Bytes::from_request(request, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::BadRequest("The request body is missing: a JSON object was expected".into()));
        }
        parse_json(&body).map(Self)
    }
}

/// Like [`ApiJson`], but an empty body or `null` means `T::default()` (optional bodies).
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let body = axum::body::Bytes::from_request(request, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        parse_json::<Option<T>>(&body).map(|value| Self(value.unwrap_or_default()))
    }
}

/// A path parameter; a malformed one (e.g. `%FF`, not UTF-8) is the JSON 400.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(AppError::BadRequest(format!("Invalid path: {}", rejection.body_text()))),
        }
    }
}

/// The body of a route that takes none: empty, `{}` or `null`. Anything
/// else is a 400 naming the first field (a body is never silently ignored).
pub struct NoBody;

/// The fields [`NoBody`] accepts: none.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

impl<S: Send + Sync> FromRequest<S> for NoBody {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        let OptionalJson(NoFields {}) = OptionalJson::from_request(request, state).await?;
        Ok(Self)
    }
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let invalid =
        |error: &serde_json::Error| AppError::BadRequest(format!("The request body is not valid JSON: {error}"));
    refuse_nul(body)?;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return invalid(inner);
        }
        match error.path().to_string().as_str() {
            "." => AppError::BadRequest(format!("Invalid request body: {inner}")),
            path => AppError::BadRequest(format!("Invalid request body: {path}: {inner}")),
        }
    })?;
    deserializer.end().map_err(|error| invalid(&error))?;
    Ok(value)
}

/// Refuses a body whose text holds U+0000 anywhere (a value or a name),
/// naming where; every JSON body passes here, so no field can bring one to a
/// store (PostgreSQL's text cannot hold it, SQLite's could: both refuse alike).
fn refuse_nul(body: &[u8]) -> Result<(), AppError> {
    // JSON can spell U+0000 only as the escape `\u0000`: most bodies are passed by this scan.
    if !body.windows(6).any(|window| window == br"\u0000") {
        return Ok(());
    }
    // Malformed JSON is reported by the typed parse that follows.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else { return Ok(()) };
    match nul_path(&value) {
        None => Ok(()),
        Some(path) if path.is_empty() => {
            Err(AppError::BadRequest(format!("The request body {}", shared::error::NUL_REFUSED)))
        }
        Some(path) => Err(AppError::BadRequest(format!("{path}: {}", shared::error::NUL_REFUSED))),
    }
}

/// Where in `value` a string (or an object's key) holds U+0000, as
/// `parameters.list[2]` (serde_path_to_error's form); `Some("")` for the whole value.
fn nul_path(value: &serde_json::Value) -> Option<String> {
    let mut path = String::new();
    find_nul(value, &mut path).then_some(path)
}

/// Whether `value` holds U+0000; if so, `path` ends with where.
fn find_nul(value: &serde_json::Value, path: &mut String) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().enumerate().any(|(index, item)| {
            within(path, |path| {
                path.push_str(&format!("[{index}]"));
                find_nul(item, path)
            })
        }),
        Value::Object(fields) => fields.iter().any(|(key, item)| {
            within(path, |path| {
                if !path.is_empty() {
                    path.push('.');
                }
                path.extend(key.escape_debug());
                key.contains('\0') || find_nul(item, path)
            })
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Runs `step`, which appends a segment to `path`; keeps it only if `step` found a NUL.
fn within(path: &mut String, step: impl FnOnce(&mut String) -> bool) -> bool {
    let length = path.len();
    let found = step(path);
    if !found {
        path.truncate(length);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::NewExecution;

    fn message(body: &str) -> String {
        match parse_json::<NewExecution>(body.as_bytes()) {
            Err(AppError::BadRequest(message)) => message,
            other => panic!("expected a bad request, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn wrong_types_name_the_field() {
        let text = message(r#"{"workflow_id":"i","deployment_id":"d","parameters":{"duration_seconds":"x"}}"#);
        assert!(text.contains("parameters.duration_seconds"), "{text}");
        assert!(message(r#"{"workflow_id":1,"deployment_id":"d"}"#).contains("workflow_id"));
    }

    #[test]
    fn a_nul_anywhere_is_refused_naming_where() {
        let nul = |body: &str| match parse_json::<serde_json::Value>(body.as_bytes()) {
            Err(AppError::BadRequest(message)) => message,
            other => panic!("expected a bad request for {body}, got {other:?}"),
        };
        assert!(nul(r#"{"deployment_id":"a\u0000b"}"#).starts_with("deployment_id: must not contain a NUL"));
        assert!(nul(r#"{"parameters":{"list":[1,"\u0000"]}}"#).starts_with("parameters.list[1]: "));
        assert!(nul(r#"[{"a":{"b\u0000":1}}]"#).starts_with(r"[0].a.b\0: "));
        assert!(nul(r#""\u0000""#).starts_with("The request body must not contain"));
        // An escaped backslash followed by `u0000` is no NUL.
        assert!(parse_json::<serde_json::Value>(br#"{"a":"\\u0000"}"#).is_ok());
    }

    #[test]
    fn missing_fields_and_bad_syntax_are_explained() {
        assert!(message(r#"{"workflow_id":"i"}"#).contains("missing field `deployment_id`"));
        assert!(message(r#"{"workflow_id":"#).contains("not valid JSON"));
        assert!(message(r#"{"workflow_id":"i","deployment_id":"d"} trailing"#).contains("not valid JSON"));
    }
}

//! The admin panel's files (SPEC §7, §13: one file to deploy). A built panel
//! in `--dist DIR` wins (development: trunk writes it); otherwise the copy
//! inside the binary: release builds embed `dist/` as it was at build time
//! (rust-embed), debug builds read that same `dist/` at run time. GET and
//! HEAD only; unknown paths get `index.html` (the panel routes itself); files
//! carry their type, `Last-Modified` and an `ETag`, and a conditional
//! request that still matches is answered 304, as tower-http's `ServeDir`
//! does for a directory. Every failure is the JSON error body.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::error::AppError;

/// The built panel as it was when this binary was built (`dist/` at the
/// workspace root; empty if there was none).
#[derive(rust_embed::RustEmbed)]
#[folder = "$CARGO_MANIFEST_DIR/../dist"]
#[allow_missing = true]
struct Embedded;

/// The page every panel route shows.
const INDEX: &str = "index.html";

/// Where the panel's files come from.
#[derive(Clone)]
pub enum Panel {
    /// A built panel in this directory (`--dist`).
    Dir(PathBuf, Box<ServeDir<ServeFile>>),
    /// The copy inside the binary.
    Embedded,
    /// None: the API only.
    Missing,
}

impl Panel {
    /// `dist` if it holds a built panel, else the embedded one, else none.
    pub fn locate(dist: &Path) -> Self {
        if dist.join(INDEX).is_file() {
            let files = ServeDir::new(dist).fallback(ServeFile::new(dist.join(INDEX)));
            return Self::Dir(dist.to_owned(), Box::new(files));
        }
        if Embedded::get(INDEX).is_some() {
            return Self::Embedded;
        }
        Self::Missing
    }

    /// Whether this binary carries a built panel.
    pub fn embedded() -> bool {
        Embedded::get(INDEX).is_some()
    }

    /// Its `index.html` (the security headers allow its inline scripts by hash).
    pub fn index_html(&self) -> Option<String> {
        match self {
            Self::Dir(dir, _) => std::fs::read_to_string(dir.join(INDEX)).ok(),
            Self::Embedded => Embedded::get(INDEX).and_then(|file| String::from_utf8(file.data.into_owned()).ok()),
            Self::Missing => None,
        }
    }

    /// Answers a request outside the API.
    pub async fn serve(self, request: Request) -> Response {
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return AppError::MethodNotAllowed.into_response();
        }
        match self {
            Self::Dir(_, files) => from_dir(*files, request).await,
            Self::Embedded => from_binary(&request),
            Self::Missing => AppError::NotFound(
                "The admin panel is not installed here: build it with `scripts/build-panel` and start the manager \
                 with `--dist` pointing at the result; the API is under /api/v3.1"
                    .into(),
            )
            .into_response(),
        }
    }
}

async fn from_dir(files: ServeDir<ServeFile>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let response = match files.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    match response.status() {
        status if status == StatusCode::NOT_FOUND => {
            AppError::NotFound("No such file in the admin panel".into()).into_response()
        }
        // ServeDir answers an I/O error other than "not found" with an empty 500
        // (and logs it): the manager's fault, so the generic internal error.
        status if status.is_server_error() => {
            AppError::Internal(format!("the admin panel's file {path} could not be read ({status})")).into_response()
        }
        status if status.is_client_error() => {
            AppError::BadRequest(format!("The admin panel cannot serve this request ({status})")).into_response()
        }
        _ => response.map(Body::new),
    }
}

fn from_binary(request: &Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    let file = match path {
        "" => Embedded::get(INDEX),
        path => Embedded::get(path).or_else(|| Embedded::get(INDEX)),
    };
    let Some(file) = file else {
        return AppError::NotFound("No such file in the admin panel".into()).into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()));
    let modified = file.metadata.last_modified().and_then(http_date);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, value);
    }
    if let Some(value) = modified.as_deref().and_then(|date| HeaderValue::from_str(date).ok()) {
        headers.insert(LAST_MODIFIED, value);
    }
    if not_modified(request.headers(), &etag, file.metadata.last_modified()) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let body = if request.method() == Method::HEAD { Body::empty() } else { Body::from(file.data.into_owned()) };
    (headers, body).into_response()
}

/// RFC 9110 §13.2.2: `If-None-Match` decides when present (a weak
/// comparison), else `If-Modified-Since` (whole seconds).
fn not_modified(headers: &HeaderMap, etag: &str, modified: Option<u64>) -> bool {
    if let Some(tags) = headers.get(IF_NONE_MATCH).and_then(|value| value.to_str().ok()) {
        return tags.split(',').map(|tag| tag.trim().trim_start_matches("W/")).any(|tag| tag == "*" || tag == etag);
    }
    let since = headers
        .get(IF_MODIFIED_SINCE)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| chrono::DateTime::parse_from_rfc2822(text).ok());
    match (since, modified) {
        (Some(since), Some(modified)) => i64::try_from(modified).is_ok_and(|modified| modified <= since.timestamp()),
        _ => false,
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) from seconds since 1970.
fn http_date(seconds: u64) -> Option<String> {
    let time = chrono::DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)?;
    Some(time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        pairs.iter().map(|(name, value)| (name.clone(), HeaderValue::from_str(value).unwrap())).collect()
    }

    #[test]
    fn a_conditional_request_that_still_matches_is_not_modified() {
        let etag = "\"abc\"";
        let at = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(http_date(at).as_deref(), Some("Sun, 06 Nov 1994 08:49:37 GMT"));
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "\"abc\"")]), etag, Some(at)));
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "\"x\", W/\"abc\"")]), etag, Some(at)));
        assert!(not_modified(&headers(&[(IF_NONE_MATCH, "*")]), etag, None));
        assert!(!not_modified(&headers(&[(IF_NONE_MATCH, "\"old\"")]), etag, Some(at)));
        // If-None-Match decides over If-Modified-Since.
        let both = headers(&[(IF_NONE_MATCH, "\"old\""), (IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT")]);
        assert!(!not_modified(&both, etag, Some(at)));
        assert!(not_modified(&headers(&[(IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:37 GMT")]), etag, Some(at)));
        assert!(!not_modified(&headers(&[(IF_MODIFIED_SINCE, "Sun, 06 Nov 1994 08:49:36 GMT")]), etag, Some(at)));
        assert!(!not_modified(&headers(&[(IF_MODIFIED_SINCE, "yesterday")]), etag, Some(at)));
        assert!(!not_modified(&HeaderMap::new(), etag, Some(at)));
    }
}

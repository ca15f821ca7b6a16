//! `X-Request-Id` (SPEC §13): taken from the request when it is sane (at most
//! [`MAX_LEN`] visible ASCII characters), otherwise made (a UUID), echoed in
//! the answer, and a field of the request's span, so every log line written
//! while serving the request carries it. tower-http's request-id layers do
//! the taking, making and echoing; this module only refuses what a log line
//! must not carry (control characters, spaces, a megabyte of text).

use axum::extract::Request;
use axum::http::header::HeaderName;
use axum::http::HeaderValue;
use tower::layer::util::{Identity, Stack};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// The header.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id taken from a request (longer ones are replaced).
pub const MAX_LEN: usize = 128;

/// Whether an id from outside may be used as it is: 1 to [`MAX_LEN`]
/// visible ASCII characters (no spaces, quotes are fine: JSON escapes them).
pub fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|byte| byte.is_ascii_graphic())
}

/// Keeps at most one `X-Request-Id`, and only a sane one, so the next layer
/// makes one when there is none.
pub async fn keep_sane(mut request: Request) -> Request {
    let headers = request.headers_mut();
    let mut given = headers.get_all(&HEADER).iter();
    let kept = match (given.next(), given.next()) {
        (Some(only), None) if is_sane(only) => return request,
        // Several: the first, if sane (what tower-http would read).
        (Some(first), Some(_)) if is_sane(first) => Some(first.clone()),
        (None, _) => return request,
        _ => None,
    };
    headers.remove(&HEADER);
    if let Some(kept) = kept {
        headers.insert(HEADER.clone(), kept);
    }
    request
}

/// The layers that take or make the id (outermost last): make one where the
/// request has none, and echo it in the answer.
pub type RequestIdLayers =
    ServiceBuilder<Stack<PropagateRequestIdLayer, Stack<SetRequestIdLayer<MakeRequestUuid>, Identity>>>;

/// [`RequestIdLayers`]; put [`keep_sane`] outside them.
pub fn layers() -> RequestIdLayers {
    ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(HEADER.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(HEADER.clone()))
}

/// The span of one request: method, path (never the query: the event
/// stream's may carry a token) and its id. At INFO, so that the manager's
/// INFO lines carry it; it writes no line of its own.
pub fn span(request: &Request) -> tracing::Span {
    let id = request.headers().get(&HEADER).and_then(|id| id.to_str().ok()).unwrap_or_default();
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_visible_ascii_ids_are_taken() {
        let sane = |text: &str| HeaderValue::from_str(text).is_ok_and(|value| is_sane(&value));
        assert!(sane("abc-123"));
        assert!(sane("0b6e3f1c-0000-4000-8000-000000000000"));
        assert!(sane(r#"{"quoted":"x"}"#));
        assert!(sane(&"x".repeat(MAX_LEN)));
        assert!(!sane(&"x".repeat(MAX_LEN + 1)));
        assert!(!sane(""));
        assert!(!sane("two words"));
        assert!(!sane("tab\there"));
        assert!(!is_sane(&HeaderValue::from_bytes("é".as_bytes()).unwrap()));
    }

    #[tokio::test]
    async fn an_insane_id_is_dropped_and_of_several_the_first_sane_one_kept() {
        let with = |ids: &[&str]| {
            let mut request = Request::new(axum::body::Body::empty());
            for id in ids {
                request.headers_mut().append(HEADER.clone(), HeaderValue::from_str(id).unwrap());
            }
            request
        };
        let ids = |request: &Request| -> Vec<String> {
            request.headers().get_all(&HEADER).iter().map(|id| id.to_str().unwrap().to_owned()).collect()
        };
        assert_eq!(ids(&keep_sane(with(&["abc"])).await), ["abc"]);
        assert!(ids(&keep_sane(with(&[])).await).is_empty());
        assert!(ids(&keep_sane(with(&["a b"])).await).is_empty());
        assert_eq!(ids(&keep_sane(with(&["first", "second"])).await), ["first"]);
        assert!(ids(&keep_sane(with(&["bad one", "second"])).await).is_empty());
    }
}

//! Browser security headers on every response (the admin panel's files and
//! the API alike): a strict `Content-Security-Policy`, `X-Content-Type-Options:
//! nosniff` and `Referrer-Policy: no-referrer`. Without them any site could
//! frame the panel and trick an admin into clicking Deactivate, nothing would
//! limit where scripts come from, and the event-stream URL (it carries a
//! token) could leak through `Referer`.
//!
//! trunk's `index.html` loads the wasm with an inline `<script type="module">`;
//! a strict `script-src` blocks inline scripts, so the policy allows exactly
//! the inline scripts of the panel it serves, by their SHA-256 (computed once
//! at start-up: a panel rebuilt under a running manager needs a restart).

use axum::http::header::{CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::HeaderValue;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use tower::layer::util::{Identity, Stack};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

/// The layers that set the headers, outermost last.
pub type SecurityHeadersLayer = ServiceBuilder<
    Stack<
        SetResponseHeaderLayer<HeaderValue>,
        Stack<SetResponseHeaderLayer<HeaderValue>, Stack<SetResponseHeaderLayer<HeaderValue>, Identity>>,
    >,
>;

/// The headers for a manager serving the admin panel whose `index.html` is
/// `index_html` (its inline scripts are allowed by hash; none without a panel).
pub fn layer(index_html: Option<&str>) -> SecurityHeadersLayer {
    let policy = content_security_policy(index_html);
    // Base64 hashes and keywords are visible ASCII, so this cannot fail; the
    // fallback (no script at all) would still be safe.
    let policy = HeaderValue::try_from(policy).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(CONTENT_SECURITY_POLICY, policy))
        .layer(SetResponseHeaderLayer::overriding(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
}

/// The policy: everything from this origin only; scripts also need
/// `'wasm-unsafe-eval'` (to compile the panel's wasm) and the hashes of the
/// page's inline scripts; the event stream and API calls are same-origin;
/// no framing at all (clickjacking), no plugins, no `<base>` rewriting.
pub fn content_security_policy(index_html: Option<&str>) -> String {
    let mut scripts = String::from("'self' 'wasm-unsafe-eval'");
    for hash in index_html.map(inline_script_hashes).unwrap_or_default() {
        scripts.push_str(&format!(" 'sha256-{hash}'"));
    }
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The base64 SHA-256 of each inline `<script>` (one without `src`), as CSP
/// hash sources need: over the exact text between the tags.
fn inline_script_hashes(html: &str) -> Vec<String> {
    // ASCII lowercasing keeps byte offsets, so they index `html` too.
    let lower = html.to_ascii_lowercase();
    let mut hashes = Vec::new();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<script").map(|at| from + at) {
        let Some(open_end) = lower[start..].find('>').map(|at| start + at + 1) else { break };
        let Some(close) = lower[open_end..].find("</script").map(|at| open_end + at) else { break };
        if !lower[start..open_end].contains("src=") {
            let digest = Sha256::digest(&html.as_bytes()[open_end..close]);
            hashes.push(base64::engine::general_purpose::STANDARD.encode(digest));
        }
        from = close;
    }
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_panels_inline_loader_by_hash_and_nothing_else_inline() {
        let html = "<html><head><script type=\"module\">import init from '/a.js';</script>\
                    <SCRIPT src=\"/b.js\"></SCRIPT></head></html>";
        let hashes = inline_script_hashes(html);
        let expected = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"import init from '/a.js';"));
        assert_eq!(hashes, std::slice::from_ref(&expected), "only the inline script, over its exact text");
        let policy = content_security_policy(Some(html));
        assert!(policy.contains(&format!("script-src 'self' 'wasm-unsafe-eval' 'sha256-{expected}';")), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(!policy.contains("'unsafe-eval'"), "{policy}");
    }

    #[test]
    fn the_policy_forbids_framing_and_foreign_sources() {
        let policy = content_security_policy(None);
        assert_eq!(
            policy,
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
    }

    #[tokio::test]
    async fn every_response_carries_the_headers() {
        use axum::body::Body;
        use axum::http::Request;
        use tower::ServiceExt;

        let index = "<script>boot()</script>";
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "{}" })).layer(layer(Some(index)));
        let response = app.oneshot(Request::get("/").body(Body::empty()).expect("request")).await.expect("response");
        let header = |name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header(X_CONTENT_TYPE_OPTIONS).as_deref(), Some("nosniff"));
        assert_eq!(header(REFERRER_POLICY).as_deref(), Some("no-referrer"));
        let boot = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"boot()"));
        let policy = header(CONTENT_SECURITY_POLICY).expect("a policy");
        assert!(policy.contains(&format!("'sha256-{boot}'")), "{policy}");
        assert!(policy.ends_with("frame-ancestors 'none'"), "{policy}");
    }
}

//! Webhooks (SPEC §11): every maintenance event is POSTed, signed, to each
//! configured URL, at least once and in order per URL.
//!
//! - `outbox`: the history rows are the events, written in their change's
//!   transaction with what they report.
//! - `deliver`: one task per URL and process; the store decides who delivers
//!   (on PostgreSQL, the replica that claimed the URL's cursor while its
//!   lease lives), each event's outcome moves the cursor.

pub mod deliver;
pub use crate::model::outbox;

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use sha2::Sha256;

/// The webhooks a manager delivers to, checked at start-up.
#[derive(Clone)]
pub struct Settings {
    /// The receivers, in the order configured.
    pub urls: Vec<Url>,
    secret: Secret,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings").field("urls", &self.urls.iter().map(redact).collect::<Vec<_>>()).finish()
    }
}

/// `--webhook-secret`: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl Settings {
    /// The webhooks `urls` (with `secret`) ask for; `None` if there are none.
    /// Refuses what cannot work, naming the flag: a URL that is not http(s)
    /// with a host, one listed twice, a missing or empty secret.
    pub fn parse(urls: &[String], secret: Option<&Secret>) -> Result<Option<Self>, String> {
        let urls: Vec<&str> = urls.iter().map(|url| url.trim()).filter(|url| !url.is_empty()).collect();
        if urls.is_empty() {
            return Ok(None);
        }
        let mut parsed: Vec<Url> = Vec::new();
        for text in urls {
            let url = Url::parse(text).map_err(|error| format!("--webhook {text:?} is not a URL: {error}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
                return Err(format!("--webhook {:?} must be an http:// or https:// URL with a host", redact(&url)));
            }
            if url.fragment().is_some() {
                return Err(format!("--webhook {:?}: a URL with a #fragment cannot be posted to", redact(&url)));
            }
            if parsed.contains(&url) {
                return Err(format!("--webhook {:?} is listed twice", redact(&url)));
            }
            parsed.push(url);
        }
        match secret {
            Some(secret) if !secret.0.is_empty() => Ok(Some(Self { urls: parsed, secret: secret.clone() })),
            _ => Err("--webhook needs --webhook-secret (or MANAGER_WEBHOOK_SECRET): receivers check each \
                      event's X-Manager-Signature with it"
                .to_owned()),
        }
    }

    /// Each URL as stored (the cursor's key) and as shown, in the order configured.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.urls.iter().map(|url| (url.as_str().to_owned(), redact(url))).collect()
    }

    /// How metrics and logs name URL `index`: its number and origin, never
    /// its path or query (a chat service's webhook URL is its secret).
    pub fn label(&self, index: usize) -> String {
        let origin = self.urls.get(index).map(|url| url.origin().ascii_serialization()).unwrap_or_default();
        format!("{}:{origin}", index + 1)
    }

    /// `sha256=<hex HMAC-SHA256 of body>` with the secret.
    pub fn sign(&self, body: &[u8]) -> String {
        sign(self.secret.0.as_bytes(), body)
    }
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`, the `X-Manager-Signature` header.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256=");
    for byte in digest.iter() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// `url` as shown to people: a password in it is `***`.
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// The first retry comes within a second; each later one waits twice as long, up to five minutes.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(300);
/// An event that could not be delivered for this long after its commit is given up (marked failed).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before the attempt after `failures` failed ones: exponential
/// (1 s, 2 s, 4 s … capped at 5 min) with "equal jitter" (a random half of
/// it, from `random`), so receivers coming back are not hit by every
/// manager at once and the first retry still comes within a second.
pub fn backoff(failures: u32, random: u64) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let ceiling = doubled.min(MAX_RETRY);
    let half = ceiling / 2;
    let millis = u64::try_from(half.as_millis()).unwrap_or(u64::MAX).max(1);
    half + Duration::from_millis(random % (millis + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(urls: &[&str], secret: Option<&str>) -> Result<Option<Settings>, String> {
        let urls: Vec<String> = urls.iter().map(|url| (*url).to_owned()).collect();
        Settings::parse(&urls, secret.map(Secret::new).as_ref())
    }

    #[test]
    fn bad_configuration_is_refused_with_the_flag_named() {
        assert!(parse(&[], None).unwrap().is_none());
        let ok = parse(&["http://127.0.0.1:9/a", "https://hooks.example/b?x=1"], Some("s")).unwrap().unwrap();
        assert_eq!(ok.urls.len(), 2);
        for (urls, secret, says) in [
            (&["ftp://host/x"][..], Some("s"), "must be an http:// or https:// URL"),
            (&["not a url"][..], Some("s"), "is not a URL"),
            (&["http://"][..], Some("s"), "is not a URL"),
            (&["http://h/x#f"][..], Some("s"), "#fragment"),
            (&["http://h/x", "http://h/x"][..], Some("s"), "listed twice"),
            (&["http://h/x"][..], None, "needs --webhook-secret"),
            (&["http://h/x"][..], Some(""), "needs --webhook-secret"),
        ] {
            let error = parse(urls, secret).expect_err(says);
            assert!(error.contains(says), "{urls:?}: {error}");
            assert!(error.contains("--webhook"), "{error}");
        }
    }

    #[test]
    fn a_password_in_a_url_is_never_shown() {
        let error = parse(&["ftp://user:hunter2@host/x"], Some("s")).unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
        let settings = parse(&["http://user:hunter2@host/x"], Some("topsecret")).unwrap().unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("topsecret"), "{shown}");
    }

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_start_within_a_second_double_and_stop_at_five_minutes() {
        for random in [0, 1, 499, 500, 12_345, u64::MAX] {
            let first = backoff(1, random);
            assert!(first >= Duration::from_millis(500) && first <= FIRST_RETRY, "{first:?}");
            let third = backoff(3, random);
            assert!(third >= Duration::from_secs(2) && third <= Duration::from_secs(4), "{third:?}");
            for failures in [10, 11, 30, u32::MAX] {
                let late = backoff(failures, random);
                assert!(late >= MAX_RETRY / 2 && late <= MAX_RETRY, "{failures}: {late:?}");
            }
        }
    }
}

//! The manager's REST API over HTTP, with the errors a person can act on.

use std::path::Path;
use std::time::Instant;

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::sse::SseBuffer;
use shared::{ApiError, MaintenanceStatus};

use crate::args::Global;

/// Why a command failed; printed on stderr as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// No HTTP answer at all.
    #[error("Cannot reach the manager at {url}: {detail}")]
    Unreachable {
        /// The manager's URL.
        url: String,
        /// What the network said.
        detail: String,
    },
    /// The manager refused, with its own message.
    #[error("{0}")]
    Api(ApiError),
    /// An answer that is not what the API documents.
    #[error("The manager at {url} sent an answer cfy cannot read: {detail}")]
    Unreadable {
        /// The manager's URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The command line itself is wrong.
    #[error("{0}")]
    Usage(String),
    /// `--wait --timeout` ran out (the reference CLI's wording).
    #[error(
        "Timed out while entering maintenance mode. Note that the manager is still entering maintenance mode \
         in the background. You can run 'cfy maintenance-mode status' to check the status."
    )]
    WaitTimeout,
    /// The command failed and has already said why on stdout, as Cloudify's
    /// client does (exit 1, nothing more on stderr).
    #[error("")]
    Reported,
}

/// A write's result: changed, or already so (HTTP 304).
pub enum Outcome<T> {
    /// The manager did it; this is its answer.
    Done(T),
    /// Nothing to do: it was already so.
    Unchanged,
}

/// A signed-in connection to one manager.
pub struct Client {
    base: String,
    http: reqwest::Client,
    username: String,
    password: Option<String>,
    verbose: u8,
}

impl Client {
    /// A client for the manager and credentials in `global`; with
    /// `--rest-certificate`, HTTPS trusts that certificate alone.
    pub fn new(global: &Global) -> Result<Self, CliError> {
        let mut http = reqwest::Client::builder().use_rustls_tls();
        if let Some(path) = &global.rest_certificate {
            for root in rest_certificates(path)? {
                http = http.add_root_certificate(root);
            }
            // As Cloudify's client (requests' `verify=PEM`): that file, not the system's roots.
            http = http.tls_built_in_root_certs(false);
        }
        let http = http.build().map_err(|error| match &global.rest_certificate {
            Some(path) => CliError::Usage(format!(
                "--rest-certificate {}: not a certificate to trust: {}",
                path.display(),
                innermost(&error)
            )),
            None => CliError::Usage(format!("cannot set up HTTP: {}", innermost(&error))),
        })?;
        Ok(Self {
            base: global.manager_url(),
            http,
            username: global.username.clone(),
            password: global.password.clone(),
            verbose: global.verbose,
        })
    }

    /// The manager's host, as Cloudify's client names it (`[ip=…]`).
    pub fn host(&self) -> String {
        reqwest::Url::parse(&self.base)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_else(|| self.base.clone())
    }

    /// `GET` an API path and read the JSON answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let response = self.send(Method::GET, path, None::<&()>).await?;
        self.read(response).await
    }

    /// `POST` to an API path; a 304 is `Unchanged`.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<Outcome<T>, CliError> {
        let response = self.send(Method::POST, path, body).await?;
        if response.status() == StatusCode::NOT_MODIFIED {
            return Ok(Outcome::Unchanged);
        }
        self.read(response).await.map(Outcome::Done)
    }

    /// `DELETE` an API path and read the JSON answer.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let response = self.send(Method::DELETE, path, None::<&()>).await?;
        self.read(response).await
    }

    /// `GET /maintenance/events`: the status now, then one per change.
    pub async fn status_events(&self) -> Result<StatusEvents, CliError> {
        let response = self.send(Method::GET, "/maintenance/events", None::<&()>).await?;
        if !response.status().is_success() {
            return Err(self.read::<()>(response).await.err().unwrap_or_else(|| self.unreadable("no events")));
        }
        Ok(StatusEvents { body: Box::pin(response.bytes_stream()), buffer: SseBuffer::default() })
    }

    async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, CliError> {
        let url = format!("{}{}", self.base, shared::api::path(path));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(password) = &self.password {
            request = request.basic_auth(&self.username, Some(password));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let response = request
            .send()
            .await
            .map_err(|error| CliError::Unreachable { url: self.base.clone(), detail: with_hint(innermost(&error)) })?;
        if self.verbose >= 3 {
            eprintln!("{method} {url} -> {} ({} ms)", response.status(), started.elapsed().as_millis());
        }
        Ok(response)
    }

    async fn read<T: DeserializeOwned>(&self, response: reqwest::Response) -> Result<T, CliError> {
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| self.unreadable(&innermost(&error)))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| self.unreadable(&error.to_string()));
        }
        match serde_json::from_slice::<ApiError>(&bytes) {
            Ok(error) => Err(CliError::Api(error)),
            Err(_) => Err(self.unreadable(&format!("HTTP {status}"))),
        }
    }

    fn unreadable(&self, detail: &str) -> CliError {
        CliError::Unreadable { url: self.base.clone(), detail: detail.to_owned() }
    }
}

/// The certificates of a `--rest-certificate` PEM file (a CA, a chain, or
/// the manager's self-signed certificate).
fn rest_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, CliError> {
    let pem = std::fs::read(path)
        .map_err(|error| CliError::Usage(format!("Cannot read --rest-certificate {}: {error}", path.display())))?;
    let unusable = |detail: String| CliError::Usage(format!("--rest-certificate {}: {detail}", path.display()));
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| unusable(format!("not PEM: {}", innermost(&error))))?;
    if certificates.is_empty() {
        return Err(unusable("no certificate in it (a PEM \"BEGIN CERTIFICATE\" block)".into()));
    }
    Ok(certificates)
}

/// `detail`, with what to do when it is a cause a person may not know.
fn with_hint(detail: String) -> String {
    // webpki's name for a server certificate marked as a CA, which is what
    // `openssl req -x509` makes by default (OpenSSL-based clients accept it).
    if detail.contains("CaUsedAsEndEntity") {
        return format!(
            "{detail}: the manager's certificate is marked as a CA; make it with \
             `-addext basicConstraints=critical,CA:FALSE`, or have a CA sign it"
        );
    }
    detail
}

/// The most specific cause ("Connection refused (os error 111)").
fn innermost(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// A parsed `status` event stream.
pub struct StatusEvents {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>>>>,
    buffer: SseBuffer,
}

impl StatusEvents {
    /// The next status, or `None` when the stream ends or breaks.
    pub async fn next(&mut self) -> Option<MaintenanceStatus> {
        loop {
            while let Some(event) = self.buffer.next_event() {
                if event.name == "status" {
                    if let Ok(status) = serde_json::from_str(&event.data) {
                        return Some(status);
                    }
                }
            }
            let chunk = self.body.next().await?.ok()?;
            self.buffer.push(&chunk);
        }
    }
}

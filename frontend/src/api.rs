//! Typed calls to the manager's REST API (same origin: the manager serves
//! this panel; `trunk serve` proxies `/api/` to it).

use std::fmt;

use base64::Engine as _;
use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use shared::api::{path, TOKEN_HEADER};
use shared::{ApiError, ErrorCode, MaintenanceStatus, TokenResponse};

/// Why a call failed, in words for the page.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// The manager could not be reached.
    Network(String),
    /// The manager answered with an error body.
    Api(ApiError),
    /// The manager answered with something this panel cannot read.
    Unreadable(String),
}

impl FetchError {
    /// Whether the caller must sign in (again).
    pub fn needs_sign_in(&self) -> bool {
        matches!(self, Self::Api(error) if error.error_code == ErrorCode::Unauthorized)
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(detail) => write!(f, "The manager cannot be reached ({detail})"),
            Self::Api(error) => f.write_str(&error.message),
            Self::Unreadable(detail) => write!(f, "The manager sent an answer this panel cannot read ({detail})"),
        }
    }
}

/// `POST /tokens` with the username and password: a token for this session.
pub async fn sign_in(username: &str, password: &str) -> Result<TokenResponse, FetchError> {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let request = Request::post(&path("/tokens")).header("Authorization", &format!("Basic {credentials}"));
    read(request.send().await.map_err(network)?).await
}

/// `GET /maintenance`.
pub async fn maintenance_status(token: &str) -> Result<MaintenanceStatus, FetchError> {
    let request = Request::get(&path("/maintenance")).header(TOKEN_HEADER, token);
    read(request.send().await.map_err(network)?).await
}

fn network(error: gloo_net::Error) -> FetchError {
    FetchError::Network(error.to_string())
}

async fn read<T: DeserializeOwned>(response: Response) -> Result<T, FetchError> {
    if response.ok() {
        return response.json().await.map_err(|error| FetchError::Unreadable(error.to_string()));
    }
    let status = response.status();
    match response.json::<ApiError>().await {
        Ok(error) => Err(FetchError::Api(error)),
        Err(_) => Err(FetchError::Unreadable(format!("HTTP {status}"))),
    }
}

//! Typed calls to the manager's REST API (same origin: the manager serves
//! this panel; `trunk serve` proxies `/api/` to it).

use std::fmt;

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use shared::{ApiError, MaintenanceStatus};

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

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Network(detail) => write!(f, "The manager cannot be reached ({detail})"),
            Self::Api(error) => f.write_str(&error.message),
            Self::Unreadable(detail) => write!(f, "The manager sent an answer this panel cannot read ({detail})"),
        }
    }
}

/// `GET /maintenance`.
pub async fn maintenance_status() -> Result<MaintenanceStatus, FetchError> {
    let response = Request::get(&shared::api::path("/maintenance"))
        .send()
        .await
        .map_err(|error| FetchError::Network(error.to_string()))?;
    read(response).await
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

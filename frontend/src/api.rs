//! Typed calls to the manager's REST API (same origin: the manager serves
//! this panel; `trunk serve` proxies `/api/` to it).

use std::fmt;

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::api::{path, ListResponse, EPOCH_HEADER, TOKEN_HEADER};
use shared::execution::ExecutionActionRequest;
use shared::{
    ActivateRequest, ApiError, ErrorCode, Execution, ExecutionAction, MaintenanceStatus, NewExecution, TokenResponse,
};
use uuid::Uuid;

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
    // The browser's btoa encodes Latin-1 text; one char per UTF-8 byte makes that the UTF-8 bytes' base64.
    let utf8_bytes: String = format!("{username}:{password}").bytes().map(char::from).collect();
    let credentials = web_sys::window().and_then(|window| window.btoa(&utf8_bytes).ok()).unwrap_or_default();
    let mut authorization = String::from("Basic ");
    authorization.push_str(&credentials);
    let request = Request::post(&path("/tokens")).header("Authorization", &authorization);
    read(request.send().await.map_err(network)?).await
}

/// `DELETE /tokens/{id}`: the token stops working at once (sign-out).
pub async fn revoke(token: &str, id: Uuid) -> Result<(), FetchError> {
    let response = call(Request::delete(&path(&format!("/tokens/{id}"))), token, None::<&()>).await?;
    if response.ok() {
        return Ok(());
    }
    read::<()>(response).await
}

/// A status answer with its epoch (`X-Maintenance-Epoch`): the number of the
/// change that made it, to order it against the event stream's statuses.
#[derive(Debug, Clone, PartialEq)]
pub struct Epoched {
    /// The change's number; `None` from a manager that does not send it.
    pub epoch: Option<u64>,
    /// The status.
    pub status: MaintenanceStatus,
}

/// `GET /maintenance`.
pub async fn maintenance_status(token: &str) -> Result<Epoched, FetchError> {
    let response = call(Request::get(&path("/maintenance")), token, None::<&()>).await?;
    read_epoched(response).await
}

/// `POST /maintenance/activate`; `None` if it was already on (304).
pub async fn activate(token: &str, reason: String) -> Result<Option<Epoched>, FetchError> {
    let body = ActivateRequest { reason: Some(reason).filter(|reason| !reason.trim().is_empty()) };
    send_change(Request::post(&path("/maintenance/activate")), token, Some(&body)).await
}

/// `POST /maintenance/deactivate`; `None` if it was already off (304).
pub async fn deactivate(token: &str) -> Result<Option<Epoched>, FetchError> {
    send_change(Request::post(&path("/maintenance/deactivate")), token, None::<&()>).await
}

/// `GET /executions` (newest first).
pub async fn executions(token: &str) -> Result<Vec<Execution>, FetchError> {
    let list: ListResponse<Execution> = send(Request::get(&path("/executions")), token, None::<&()>).await?;
    Ok(list.items)
}

/// `POST /executions`.
pub async fn start_execution(token: &str, new: &NewExecution) -> Result<Execution, FetchError> {
    send(Request::post(&path("/executions")), token, Some(new)).await
}

/// `POST /executions/{id}` with `cancel` or `force-cancel`.
pub async fn act(token: &str, id: Uuid, action: ExecutionAction) -> Result<Execution, FetchError> {
    let body = ExecutionActionRequest { action };
    send(Request::post(&path(&format!("/executions/{id}"))), token, Some(&body)).await
}

async fn send<B: Serialize, T: DeserializeOwned>(
    request: RequestBuilder,
    token: &str,
    body: Option<&B>,
) -> Result<T, FetchError> {
    read(call(request, token, body).await?).await
}

async fn send_change<B: Serialize>(
    request: RequestBuilder,
    token: &str,
    body: Option<&B>,
) -> Result<Option<Epoched>, FetchError> {
    let response = call(request, token, body).await?;
    if response.status() == 304 {
        return Ok(None);
    }
    read_epoched(response).await.map(Some)
}

async fn read_epoched(response: Response) -> Result<Epoched, FetchError> {
    let epoch = response.headers().get(EPOCH_HEADER).and_then(|value| value.trim().parse().ok());
    Ok(Epoched { epoch, status: read(response).await? })
}

async fn call<B: Serialize>(request: RequestBuilder, token: &str, body: Option<&B>) -> Result<Response, FetchError> {
    let request = request.header(TOKEN_HEADER, token);
    let request = match body {
        Some(body) => request.json(body).map_err(|error| FetchError::Unreadable(error.to_string()))?,
        None => request.build().map_err(network)?,
    };
    request.send().await.map_err(network)
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

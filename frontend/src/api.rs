//! Typed calls to the manager's REST API (same origin: the manager serves
//! this panel; `trunk serve` proxies `/api/` to it), through the browser's
//! `fetch` directly: gloo-net's request builder, response wrapper and error
//! type cost the panel kilobytes for the few calls it makes.

use std::fmt;

use js_sys::futures::JsFuture;
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;
use shared::api::{path, ListResponse, Replica, ReplicasResponse, Workflow, EPOCH_HEADER, TOKEN_HEADER};
use shared::execution::ExecutionActionRequest;
use shared::{
    ActivateRequest, ApiError, ErrorCode, Execution, ExecutionAction, ExtendWindow, MaintenanceStatus, NewWindow,
    TokenResponse,
};
use uuid::Uuid;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Headers, RequestInit, Response};

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

    /// Whether the manager refused the caller this (403: an admin's read for a user).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Api(error) if error.error_code == ErrorCode::Forbidden)
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
    read(call("POST", "/tokens", ("Authorization", &authorization), None::<&()>).await?).await
}

/// `DELETE /tokens/{id}`: the token stops working at once (sign-out).
pub async fn revoke(token: &str, id: Uuid) -> Result<(), FetchError> {
    let response = call("DELETE", &format!("/tokens/{id}"), (TOKEN_HEADER, token), None::<&()>).await?;
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
    let response = call("GET", "/maintenance", (TOKEN_HEADER, token), None::<&()>).await?;
    read_epoched(response).await
}

/// `POST /maintenance/activate` (reason, drain deadline, mode); `None` if it was already on (304).
pub async fn activate(token: &str, request: &ActivateRequest) -> Result<Option<Epoched>, FetchError> {
    send_change("/maintenance/activate", token, Some(request)).await
}

/// `POST /maintenance/deactivate`; `None` if it was already off (304).
pub async fn deactivate(token: &str) -> Result<Option<Epoched>, FetchError> {
    send_change("/maintenance/deactivate", token, None::<&()>).await
}

/// `GET /maintenance/replicas`: the live replicas, each with the last change (epoch) it applied.
pub async fn replicas(token: &str) -> Result<Vec<Replica>, FetchError> {
    let list: ReplicasResponse = send("GET", "/maintenance/replicas", token, None::<&()>).await?;
    Ok(list.items)
}

/// `GET /maintenance/windows`: the latest 1 000 windows, newest start first, as JSON
/// (`ListResponse<Window>`): the panel shows their text (a second typed reader of
/// `Window`, beside the status's, would cost the panel kilobytes of wasm).
pub async fn windows(token: &str) -> Result<Value, FetchError> {
    send("GET", "/maintenance/windows?_size=1000", token, None::<&()>).await
}

/// A change to the windows an admin asks for.
pub enum WindowChange {
    /// `POST /maintenance/windows`: schedule a window.
    Schedule(NewWindow),
    /// `POST /maintenance/windows/{id}/extend`: move its end.
    Extend(Uuid, ExtendWindow),
    /// `DELETE /maintenance/windows/{id}`: cancel a scheduled window, end an active one.
    Cancel(Uuid),
}

/// Makes `change`; the answer is the window as it is now (JSON, a `Window`).
/// One request for the three (one future instead of three in the wasm).
pub async fn change_window(token: &str, change: &WindowChange) -> Result<Value, FetchError> {
    let body = match change {
        WindowChange::Schedule(new) => serde_json::to_string(new),
        WindowChange::Extend(_, extend) => serde_json::to_string(extend),
        WindowChange::Cancel(_) => Ok(String::new()),
    };
    let body = body.map_err(|error| FetchError::Unreadable(error.to_string()))?;
    let (method, tail) = match change {
        WindowChange::Schedule(_) => ("POST", String::from("/maintenance/windows")),
        WindowChange::Extend(id, _) => ("POST", format!("/maintenance/windows/{id}/extend")),
        WindowChange::Cancel(id) => ("DELETE", format!("/maintenance/windows/{id}")),
    };
    let body = Some(body).filter(|body| !body.is_empty());
    read(fetch(method, &path(&tail), (TOKEN_HEADER, token), body).await?).await
}

/// `GET /maintenance/history`: `size` rows from `offset`, newest first, with the total, as
/// JSON (`ListResponse<MaintenanceTransition>`): the panel only shows its text.
pub async fn history(token: &str, size: u64, offset: u64) -> Result<Value, FetchError> {
    send("GET", &format!("/maintenance/history?_size={size}&_offset={offset}"), token, None::<&()>).await
}

/// `GET /maintenance/webhooks` (admins): each URL's deliveries, failures and backlog, as
/// JSON (`shared::Webhooks`): the panel only shows their text.
pub async fn webhooks(token: &str) -> Result<Value, FetchError> {
    send("GET", "/maintenance/webhooks", token, None::<&()>).await
}

/// `GET /executions` (newest first).
pub async fn executions(token: &str) -> Result<Vec<Execution>, FetchError> {
    let list: ListResponse<Execution> = send("GET", "/executions", token, None::<&()>).await?;
    Ok(list.items)
}

/// `GET /executions/{id}`.
pub async fn execution(token: &str, id: Uuid) -> Result<Execution, FetchError> {
    send("GET", &format!("/executions/{id}"), token, None::<&()>).await
}

/// `GET /workflows`: the catalog.
pub async fn workflows(token: &str) -> Result<Vec<Workflow>, FetchError> {
    let list: ListResponse<Workflow> = send("GET", "/workflows", token, None::<&()>).await?;
    Ok(list.items)
}

/// The body of `POST /executions` as the start form sends it (the manager's
/// `CreateExecution` reads it): every parameter as text, as Cloudify's
/// `cfy executions start -p KEY=VALUE` sends it; the workflow reads its own
/// parameters. Not `shared::NewExecution`, whose `duration_seconds` is a number:
/// formatting floats would add kilobytes to the panel.
#[derive(Debug, Serialize)]
pub struct StartRequest {
    /// The workflow to run.
    pub workflow_id: String,
    /// The deployment to run it on.
    pub deployment_id: String,
    /// Name and value of each parameter, in the form's order.
    #[serde(serialize_with = "as_object")]
    pub parameters: Vec<(String, String)>,
    /// During maintenance, store the execution as `queued` instead of refusing it.
    pub queue: bool,
}

fn as_object<S: Serializer>(parameters: &[(String, String)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(parameters.iter().map(|(name, value)| (name, value)))
}

/// The items of a list answer read as JSON.
pub fn items(list: &Value) -> &[Value] {
    list["items"].as_array().map_or(&[], Vec::as_slice)
}

/// A text field of an item read as JSON (`""` if it has none).
pub fn text<'a>(item: &'a Value, name: &'static str) -> &'a str {
    item[name].as_str().unwrap_or_default()
}

/// `POST /executions`.
pub async fn start_execution(token: &str, new: &StartRequest) -> Result<Execution, FetchError> {
    send("POST", "/executions", token, Some(new)).await
}

/// `POST /executions/{id}` with `cancel` or `force-cancel`.
pub async fn act(token: &str, id: Uuid, action: ExecutionAction) -> Result<Execution, FetchError> {
    let body = ExecutionActionRequest { action };
    send("POST", &format!("/executions/{id}"), token, Some(&body)).await
}

async fn send<B: Serialize, T: DeserializeOwned>(
    method: &str,
    tail: &str,
    token: &str,
    body: Option<&B>,
) -> Result<T, FetchError> {
    read(call(method, tail, (TOKEN_HEADER, token), body).await?).await
}

async fn send_change<B: Serialize>(tail: &str, token: &str, body: Option<&B>) -> Result<Option<Epoched>, FetchError> {
    let response = call("POST", tail, (TOKEN_HEADER, token), body).await?;
    if response.status() == 304 {
        return Ok(None);
    }
    read_epoched(response).await.map(Some)
}

async fn read_epoched(response: Response) -> Result<Epoched, FetchError> {
    let epoch = response.headers().get(EPOCH_HEADER).ok().flatten().and_then(|value| value.trim().parse().ok());
    Ok(Epoched { epoch, status: read(response).await? })
}

/// Sends `method` to the API path `tail` with one credentials header and a JSON body, if any.
async fn call<B: Serialize>(
    method: &str,
    tail: &str,
    (name, value): (&str, &str),
    body: Option<&B>,
) -> Result<Response, FetchError> {
    let body = match body {
        Some(body) => Some(serde_json::to_string(body).map_err(|error| FetchError::Unreadable(error.to_string()))?),
        None => None,
    };
    fetch(method, &path(tail), (name, value), body).await
}

// One copy of this, not one per body type.
async fn fetch(
    method: &str,
    url: &str,
    (name, value): (&str, &str),
    body: Option<String>,
) -> Result<Response, FetchError> {
    let init = RequestInit::new();
    init.set_method(method);
    let headers = Headers::new().map_err(network)?;
    headers.set(name, value).map_err(network)?;
    if let Some(body) = body {
        headers.set("Content-Type", "application/json").map_err(network)?;
        init.set_body(&JsValue::from(body));
    }
    init.set_headers(&headers);
    let window = web_sys::window().ok_or_else(|| FetchError::Network("no window".into()))?;
    let answer = JsFuture::from(window.fetch_with_str_and_init(url, &init)).await.map_err(network)?;
    Ok(answer.unchecked_into())
}

/// A failed fetch in words: the browser's message (e.g. `TypeError: Failed to fetch`).
fn network(error: JsValue) -> FetchError {
    FetchError::Network(String::from(error.unchecked_into::<js_sys::Object>().to_string()))
}

async fn read<T: DeserializeOwned>(response: Response) -> Result<T, FetchError> {
    let status = response.status();
    let text = match response.text() {
        Ok(text) => JsFuture::from(text).await.ok().and_then(|text| text.as_string()),
        Err(_) => None,
    };
    let text = text.ok_or_else(|| FetchError::Network(format!("HTTP {status}: the answer was cut off")))?;
    if response.ok() {
        return serde_json::from_str(&text).map_err(|error| FetchError::Unreadable(error.to_string()));
    }
    match serde_json::from_str::<ApiError>(&text) {
        Ok(error) => Err(FetchError::Api(error)),
        Err(_) => Err(FetchError::Unreadable(format!("HTTP {status}"))),
    }
}

//! The maintenance gate (SPEC §3): one tower layer, deciding from the method,
//! the path and the engine's in-memory state — no I/O, no body parsing, no
//! allocation on the common path.
//!
//! Creating an execution and cancelling one pass the gate in every state: the
//! engine decides those under its lock (queue / bypass / refuse), which is what
//! makes admission race-free. Everything else is decided here.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method};
use axum::response::{IntoResponse, Response};
use futures_util::future::{ready, BoxFuture, Either, Ready};
use shared::api::API_PREFIX;
use shared::{ErrorCode, MaintenanceMode, MaintenanceState};
use tower::{Layer, Service};

use crate::auth::{has_credentials, CurrentUser};
use crate::error::AppError;
use crate::state::AppState;

/// What the gate does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateDecision {
    /// Let it through.
    Pass,
    /// Answer 503 with this code.
    Reject(ErrorCode),
}

/// Whether the caller is an admin who sent `X-BYPASS-MAINTENANCE: true`: the
/// engine then admits the request's execution whatever the state. Creating an
/// execution passes the gate, so its handler asks for this (the caller is
/// authenticated once, by the [`CurrentUser`] extractor this reuses).
#[derive(Debug, Clone, Copy)]
pub struct Bypass(pub bool);

impl FromRequestParts<AppState> for Bypass {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if !asks_bypass(&parts.headers) {
            return Ok(Self(false));
        }
        Ok(Self(CurrentUser::from_request_parts(parts, state).await?.is_admin()))
    }
}

/// What kind of request this is, as far as the gate cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Not under `/api/`: the admin panel's files.
    Panel,
    /// `/maintenance*`, `/tokens*`, `/version`, `/status`, `/ok`, `/openapi.json`,
    /// and the discovery that Cloudify's `cfy profiles use` needs, so an
    /// admin can point it at a manager in maintenance and turn maintenance off.
    AllowListed,
    /// `POST /executions` or `POST /executions/{id}` (the cancel actions):
    /// admission is the engine's decision.
    EngineDecides,
    /// Any other modifying request on `/executions*`.
    ExecutionChange,
    /// Everything else under `/api/`.
    Other,
}

fn classify(method: &Method, path: &str) -> Route {
    if path != "/api" && !path.starts_with("/api/") {
        return Route::Panel;
    }
    if path == "/api/version" {
        return Route::AllowListed;
    }
    let Some(tail) = path.strip_prefix(API_PREFIX).filter(|tail| tail.is_empty() || tail.starts_with('/')) else {
        return Route::Other;
    };
    // No allocation: this runs on every request.
    let mut segments = tail.split('/').skip(1);
    let first = segments.next();
    let more = segments.count();
    match first {
        Some("maintenance" | "tokens") => Route::AllowListed,
        Some("version" | "status" | "ok" | "openapi.json" | "managers" | "brokers" | "db-nodes") if more == 0 => {
            Route::AllowListed
        }
        Some("provider") if tail == "/provider/context" => Route::AllowListed,
        Some("executions") => match (method, more) {
            (&Method::POST, 0 | 1) => Route::EngineDecides,
            (&Method::POST | &Method::PUT | &Method::PATCH | &Method::DELETE, _) => Route::ExecutionChange,
            _ => Route::Other,
        },
        _ => Route::Other,
    }
}

/// The gate's rule: SPEC §3 and §10 as a pure function. Read-only differs
/// from full only once `activated`: reads pass everywhere, and what full
/// refuses is refused as `maintenance_mode_read_only`.
pub fn decide(state: MaintenanceState, mode: MaintenanceMode, method: &Method, path: &str) -> GateDecision {
    match state {
        MaintenanceState::Deactivated => GateDecision::Pass,
        MaintenanceState::Activating => match classify(method, path) {
            Route::ExecutionChange => GateDecision::Reject(ErrorCode::EnteringMaintenanceMode),
            Route::Panel | Route::AllowListed | Route::EngineDecides | Route::Other => GateDecision::Pass,
        },
        MaintenanceState::Activated => match (classify(method, path), mode) {
            (Route::Panel | Route::AllowListed | Route::EngineDecides, _) => GateDecision::Pass,
            (Route::ExecutionChange | Route::Other, MaintenanceMode::Full) => {
                GateDecision::Reject(ErrorCode::MaintenanceModeActive)
            }
            (Route::ExecutionChange | Route::Other, MaintenanceMode::ReadOnly) => {
                if method == Method::GET || method == Method::HEAD {
                    GateDecision::Pass
                } else {
                    GateDecision::Reject(ErrorCode::MaintenanceModeReadOnly)
                }
            }
        },
    }
}

/// The gate as a tower layer (like tower-http's: small, one concern). The
/// common path — no bypass header — decides synchronously from the snapshot
/// and calls the inner service directly, without boxing.
#[derive(Clone)]
pub struct GateLayer {
    state: Arc<AppState>,
}

impl GateLayer {
    /// A gate reading `state`'s engine snapshot.
    pub fn new(state: AppState) -> Self {
        Self { state: Arc::new(state) }
    }
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate { inner, state: Arc::clone(&self.state) }
    }
}

/// The gate wrapped around a service; see [`GateLayer`].
#[derive(Clone)]
pub struct Gate<S> {
    inner: S,
    state: Arc<AppState>,
}

type Answer = Result<Response, Infallible>;

impl<S> Service<Request> for Gate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Either<Ready<Answer>, BoxFuture<'static, Answer>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (state, mode) = self.state.engine.gate_state();
        let code = match decide(state, mode, request.method(), request.uri().path()) {
            // The bypass header matters only where the gate would refuse: a
            // passing request is the handler's, credentials and all.
            GateDecision::Pass => return Either::Left(self.inner.call(request)),
            GateDecision::Reject(code) => code,
        };
        if !asks_bypass(request.headers()) {
            return Either::Right(Either::Left(ready(Ok(AppError::Maintenance(code).into_response()))));
        }
        // Rare: the caller must be authenticated first (an admin passes).
        let state = Arc::clone(&self.state);
        let ready_inner = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready_inner);
        Either::Right(Either::Right(Box::pin(async move {
            let mut request = request;
            match bypassing_admin(&state, &mut request).await {
                Ok(true) => inner.call(request).await,
                Ok(false) => Ok(AppError::Maintenance(code).into_response()),
                // Bad credentials are answered here, once: checking them again in
                // the handler would count one bad request as two failed sign-ins.
                Err(error) => Ok(error.into_response()),
            }
        })))
    }
}

/// `shared::api::BYPASS_HEADER` as a static name: no parsing or re-hashing of
/// the name per request (a test keeps the two equal).
static BYPASS_NAME: HeaderName = HeaderName::from_static("x-bypass-maintenance");

fn asks_bypass(headers: &HeaderMap) -> bool {
    headers
        .get(&BYPASS_NAME)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// `X-BYPASS-MAINTENANCE: true` counts only from an admin (Cloudify's rule);
/// from anyone else, or without credentials, it is ignored (`Ok(false)`).
/// The caller found here is kept for the handler, so credentials are checked
/// once; credentials that fail are the error to answer.
async fn bypassing_admin(state: &AppState, request: &mut Request) -> Result<bool, AppError> {
    if !has_credentials(request.headers()) {
        return Ok(false);
    }
    let address = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip());
    let user = state.auth.authenticate(request.headers(), address).await?;
    let admin = user.is_admin();
    request.extensions_mut().insert(user);
    Ok(admin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use MaintenanceMode::{Full, ReadOnly};
    use MaintenanceState::{Activated, Activating, Deactivated};

    const ID: &str = "/api/v3.1/executions/6b4f4d0e-2b8a-4e4b-9a57-1d1d2b3c4d5e";

    fn reject(code: ErrorCode) -> GateDecision {
        GateDecision::Reject(code)
    }

    #[test]
    fn the_static_bypass_name_is_the_shared_header() {
        assert_eq!(BYPASS_NAME, HeaderName::from_bytes(shared::api::BYPASS_HEADER.as_bytes()).unwrap());
    }

    #[test]
    fn deactivated_gates_nothing() {
        for (method, path) in [(Method::POST, "/api/v3.1/executions"), (Method::DELETE, ID), (Method::GET, "/api/v2/x")]
        {
            assert_eq!(decide(Deactivated, Full, &method, path), GateDecision::Pass, "{method} {path}");
        }
    }

    #[test]
    fn activating_blocks_execution_changes_but_not_creation_or_cancel() {
        use ErrorCode::EnteringMaintenanceMode as Entering;
        assert_eq!(decide(Activating, Full, &Method::PUT, "/api/v3.1/executions"), reject(Entering));
        assert_eq!(decide(Activating, Full, &Method::PATCH, ID), reject(Entering));
        assert_eq!(decide(Activating, Full, &Method::DELETE, ID), reject(Entering));
        assert_eq!(decide(Activating, Full, &Method::POST, &format!("{ID}/extra")), reject(Entering));
        // The engine refuses or queues these under its lock.
        assert_eq!(decide(Activating, Full, &Method::POST, "/api/v3.1/executions"), GateDecision::Pass);
        assert_eq!(decide(Activating, Full, &Method::POST, ID), GateDecision::Pass);
        assert_eq!(decide(Activating, Full, &Method::GET, "/api/v3.1/executions"), GateDecision::Pass);
        assert_eq!(decide(Activating, Full, &Method::GET, "/api/v3.1/anything"), GateDecision::Pass);
    }

    #[test]
    fn activated_blocks_all_but_the_allow_list() {
        use ErrorCode::MaintenanceModeActive as Active;
        for (method, path) in [
            (Method::GET, "/api/v3.1/executions"),
            (Method::GET, ID),
            (Method::DELETE, ID),
            (Method::GET, "/api/v3.1/deployments"),
            (Method::GET, "/api/v3.1/versions"),
            (Method::GET, "/api/v3.1/version/x"),
            (Method::GET, "/api/v2/maintenance"),
            (Method::GET, "/api"),
            (Method::GET, "/api/v3.1/events"),
            (Method::GET, "/api/v3.1/provider/other"),
            (Method::GET, "/api/v3.1/managers/x"),
            (Method::GET, "/api/versions"),
        ] {
            assert_eq!(decide(Activated, Full, &method, path), reject(Active), "{method} {path}");
        }
        for (method, path) in [
            (Method::GET, "/api/v3.1/maintenance"),
            (Method::POST, "/api/v3.1/maintenance/deactivate"),
            (Method::GET, "/api/v3.1/maintenance/events"),
            (Method::POST, "/api/v3.1/tokens"),
            (Method::GET, "/api/v3.1/version"),
            (Method::GET, "/api/v3.1/status"),
            (Method::GET, "/api/v3.1/ok"),
            (Method::GET, "/api/v3.1/openapi.json"),
            (Method::GET, "/api/version"),
            (Method::GET, "/api/v3.1/provider/context"),
            (Method::GET, "/api/v3.1/managers"),
            (Method::GET, "/api/v3.1/brokers"),
            (Method::GET, "/api/v3.1/db-nodes"),
            (Method::POST, ID),
            (Method::POST, "/api/v3.1/executions"),
            (Method::GET, "/"),
            (Method::GET, "/maintenance"),
            (Method::GET, "/admin-panel-1a2b.wasm"),
        ] {
            assert_eq!(decide(Activated, Full, &method, path), GateDecision::Pass, "{method} {path}");
        }
    }

    /// Every (mode, state, method, route) row: P passes, E `entering_maintenance_mode`,
    /// A `maintenance_mode_active`, R `maintenance_mode_read_only`. The routes, in
    /// column order: the panel, an allow-listed route, `/executions`, one
    /// execution, another API route.
    #[test]
    fn every_mode_state_method_and_route() {
        let routes = ["/", "/api/v3.1/maintenance", "/api/v3.1/executions", ID, "/api/v3.1/deployments"];
        let methods = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        #[rustfmt::skip]
        let table = [
            //                    GET      HEAD     POST     PUT      PATCH    DELETE
            (Full, Deactivated,  ["PPPPP", "PPPPP", "PPPPP", "PPPPP", "PPPPP", "PPPPP"]),
            (Full, Activating,   ["PPPPP", "PPPPP", "PPPPP", "PPEEP", "PPEEP", "PPEEP"]),
            (Full, Activated,    ["PPAAA", "PPAAA", "PPPPA", "PPAAA", "PPAAA", "PPAAA"]),
            (ReadOnly, Deactivated, ["PPPPP", "PPPPP", "PPPPP", "PPPPP", "PPPPP", "PPPPP"]),
            (ReadOnly, Activating,  ["PPPPP", "PPPPP", "PPPPP", "PPEEP", "PPEEP", "PPEEP"]),
            (ReadOnly, Activated,   ["PPPPP", "PPPPP", "PPPPR", "PPRRR", "PPRRR", "PPRRR"]),
        ];
        for (mode, state, row) in table {
            for (method, expected) in methods.iter().zip(row) {
                for (path, cell) in routes.iter().zip(expected.chars()) {
                    let want = match cell {
                        'P' => GateDecision::Pass,
                        'E' => reject(ErrorCode::EnteringMaintenanceMode),
                        'A' => reject(ErrorCode::MaintenanceModeActive),
                        _ => reject(ErrorCode::MaintenanceModeReadOnly),
                    };
                    assert_eq!(decide(state, mode, method, path), want, "{mode} {state} {method} {path}");
                }
            }
        }
    }
}

//! Who is calling, and what they may do (SPEC §4).
//!
//! Credentials: `Authorization: Basic …` (argon2-checked password) or
//! `Authentication-Token: <id>.<secret>` (from `POST /tokens`). The event
//! stream alone also takes `?token=` (a browser `EventSource` cannot set
//! headers). Handlers ask for [`CurrentUser`] or [`AdminUser`]; the gate asks
//! [`Auth::authenticate`] only for the bypass header and leaves the result in
//! the request for the handler.

pub mod limiter;
pub mod password;
pub mod revocation;
pub mod token;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine as _;
use rusqlite::Connection;
use shared::api::TOKEN_HEADER;
use shared::{Role, Timestamp, TokenResponse};
use tokio::sync::{watch, Semaphore};
use uuid::Uuid;

use crate::error::AppError;
use crate::state::AppState;
use crate::store::users::{self as store, UserRecord};
use crate::store::{Store, StoreError};
use limiter::SignInLimiter;

/// The longest username (it is ASCII, so also in characters). Longer names
/// in credentials are refused before anything is stored or hashed for them,
/// so the sign-in limiter's entries stay small.
pub const MAX_USERNAME_BYTES: usize = 64;

/// The signed-in caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// The username (`requested_by`, `created_by`).
    pub username: String,
    /// What they may do.
    pub role: Role,
    /// When the credentials stop working (tokens); `None` for a password.
    pub expires_at: Option<Timestamp>,
    /// What they signed in with, to tell later whether it still works.
    pub credential: Credential,
}

/// The credentials a caller signed in with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A token from `POST /tokens`, by its id.
    Token(Uuid),
    /// A password, by the stored hash it matched: a new password changes it.
    Password(String),
}

impl std::fmt::Debug for Credential {
    /// Names the token; never shows a password hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(id) => f.debug_tuple("Token").field(id).finish(),
            Self::Password(_) => f.write_str("Password(..)"),
        }
    }
}

impl CurrentUser {
    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Checks credentials against the users and tokens in the store.
pub struct Auth {
    db: Store,
    limiter: Mutex<SignInLimiter>,
    token_ttl: Duration,
    /// Password checks running at once, at most one per core: each argon2id
    /// check takes ~19 MiB and tens of milliseconds of CPU, so a burst of
    /// password requests waits here instead of piling up threads and memory.
    hashing: Arc<Semaphore>,
    /// Password checks run so far (each one costs an argon2id hash).
    password_checks: AtomicU64,
    /// The credential-change counter as last read (see [`revocation`]).
    credential_changes: watch::Sender<i64>,
    /// Wakes the watcher of [`revocation`] when a stream opens (it sleeps while none is open).
    streams_opened: Arc<tokio::sync::Notify>,
}

impl Drop for Auth {
    fn drop(&mut self) {
        // The watcher sleeps on this; it ends once it finds the Auth gone.
        self.streams_opened.notify_one();
    }
}

impl Auth {
    /// Checks credentials using `db`; new tokens live for `token_ttl`.
    pub fn new(db: Store, token_ttl: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
        Self {
            db,
            limiter: Mutex::default(),
            token_ttl,
            hashing: Arc::new(Semaphore::new(cores)),
            password_checks: AtomicU64::new(0),
            credential_changes: watch::Sender::new(0),
            streams_opened: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// How many passwords have been checked since start-up (each an argon2id hash).
    pub fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::Relaxed)
    }

    /// The caller named by the request's credentials; 401 without valid ones.
    pub async fn authenticate(&self, headers: &HeaderMap, address: Option<IpAddr>) -> Result<CurrentUser, AppError> {
        refuse_two_credentials(headers)?;
        if let Some(value) = headers.get(TOKEN_HEADER) {
            let value = value.to_str().map_err(|_| unauthorized("The Authentication-Token header is not text"))?;
            return self.by_token(value).await;
        }
        if headers.contains_key(header::AUTHORIZATION) {
            return self.by_basic(headers, address).await;
        }
        Err(unauthorized(
            "Sign in first: send `Authorization: Basic …` or an `Authentication-Token` header from POST /api/v3.1/tokens",
        ))
    }

    /// The caller named by `Authorization: Basic` only (to issue tokens: a
    /// token cannot mint new tokens, so a stolen one dies with its expiry).
    pub async fn by_basic(&self, headers: &HeaderMap, address: Option<IpAddr>) -> Result<CurrentUser, AppError> {
        refuse_two_credentials(headers)?;
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(unauthorized("Sign in with your username and password (`Authorization: Basic …`)"));
        };
        let (username, password) = basic_credentials(value.as_bytes())?;
        self.by_password(username, password, address).await
    }

    /// The owner of a valid, unexpired, unrevoked token.
    pub async fn by_token(&self, value: &str) -> Result<CurrentUser, AppError> {
        let Some((id, secret)) = token::parse(value) else {
            return Err(unauthorized("The token is not valid"));
        };
        let secret = secret.to_owned();
        let found = self.db.token_digest(id).await?;
        let Some((record, digest)) = found else {
            return Err(unauthorized("The token is not valid"));
        };
        if !token::matches(&secret, &digest) {
            return Err(unauthorized("The token is not valid"));
        }
        if record.revoked_at.is_some() {
            return Err(unauthorized("The token was revoked; sign in again"));
        }
        if record.expires_at <= Timestamp::now() {
            return Err(unauthorized("The token has expired; sign in again"));
        }
        Ok(CurrentUser {
            username: record.username,
            role: record.role,
            expires_at: Some(record.expires_at),
            credential: Credential::Token(id),
        })
    }

    /// The user with this name and password; 429 after too many failures.
    pub async fn by_password(
        &self,
        username: String,
        password: String,
        address: Option<IpAddr>,
    ) -> Result<CurrentUser, AppError> {
        if username.len() > MAX_USERNAME_BYTES {
            // No such user can exist: nothing to look up, hash or remember.
            return Err(unauthorized("Wrong username or password"));
        }
        self.refuse_if_locked_out(&username, address)?;
        if username.contains('\0') || password.contains('\0') {
            // No user has such a name (`manager users` refuses it) or such a
            // password (`password::check_new`), and no store can look it up
            // (PostgreSQL's text cannot hold U+0000): a wrong sign-in, counted.
            self.record_failure(&username, address);
            return Err(unauthorized("Wrong username or password"));
        }
        let name = username.clone();
        let user = self.db.user(name).await?;
        // argon2 takes tens of milliseconds of CPU: keep it off the async
        // workers, and run no more checks at once than there are cores. The
        // permit is held until the outcome is recorded in the limiter (or,
        // if the request is dropped, until the check ends).
        let permit =
            Arc::clone(&self.hashing).acquire_owned().await.map_err(|error| AppError::Internal(error.to_string()))?;
        // Failures recorded while this request waited count too.
        self.refuse_if_locked_out(&username, address)?;
        self.password_checks.fetch_add(1, Ordering::Relaxed);
        let (verified, _permit) = tokio::task::spawn_blocking(move || {
            let verified = match user {
                Some(user) if password::verify(&password, &user.password_hash) => Some(user),
                Some(_) => None,
                None => {
                    password::verify_against_nothing(&password);
                    None
                }
            };
            (verified, permit)
        })
        .await
        .map_err(|error| AppError::Internal(error.to_string()))?;
        match verified {
            Some(user) => {
                self.limiter().succeed(&username, address);
                let credential = Credential::Password(user.password_hash);
                Ok(CurrentUser { username: user.username, role: user.role, expires_at: None, credential })
            }
            None => {
                self.record_failure(&username, address);
                Err(unauthorized("Wrong username or password"))
            }
        }
    }

    /// Whether `user`'s credentials still work as they did at sign-in: the
    /// token is not revoked and its user not removed, or the password and the
    /// role are unchanged. (Expiry is not checked here.)
    pub async fn still_valid(&self, user: &CurrentUser) -> Result<bool, AppError> {
        let (username, role) = (user.username.clone(), user.role);
        match user.credential.clone() {
            Credential::Token(id) => {
                let token = self.db.token_digest(id).await?.map(|(token, _)| token);
                Ok(token.is_some_and(|token| token.revoked_at.is_none() && token.role == role))
            }
            Credential::Password(hash) => {
                let stored = self.db.user(username).await?;
                Ok(stored.is_some_and(|stored| stored.password_hash == hash && stored.role == role))
            }
        }
    }

    /// A new token for `username`, who has `role`.
    pub async fn issue_token(&self, username: &str, role: Role) -> Result<TokenResponse, AppError> {
        let new = token::generate().map_err(AppError::Internal)?;
        // `--token-ttl-seconds` is bounded to a year, so this only fails for a
        // lifetime set in code; never replace it silently.
        let expires_at = chrono::TimeDelta::from_std(self.token_ttl)
            .ok()
            .and_then(|ttl| chrono::Utc::now().checked_add_signed(ttl))
            .map(Timestamp::from_datetime)
            .ok_or_else(|| AppError::Internal(format!("token lifetime {:?} is out of range", self.token_ttl)))?;
        let (id, digest, owner) = (new.id, new.digest, username.to_owned());
        self.db.insert_token(id, digest, owner, expires_at).await?;
        Ok(TokenResponse { id: new.id, value: new.value, username: username.to_owned(), role, expires_at })
    }

    /// Revokes token `id`: its owner or an admin may.
    pub async fn revoke(&self, caller: &CurrentUser, id: Uuid) -> Result<(), AppError> {
        let token = self.db.token_digest(id).await?.map(|(token, _)| token);
        let Some(token) = token else {
            return Err(AppError::NotFound(format!("Token `{id}` was not found")));
        };
        if token.username != caller.username && !caller.is_admin() {
            return Err(AppError::Forbidden("Only the token's owner or an admin may revoke it".into()));
        }
        self.db.revoke_token(id).await?;
        // Streams using it end now rather than at the next poll.
        self.read_credential_changes().await;
        Ok(())
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, SignInLimiter> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a failed sign-in of this user from this address.
    fn record_failure(&self, username: &str, address: Option<IpAddr>) {
        if let Some(lockout) = self.limiter().fail(username, address, Instant::now()) {
            // Escaped: the name is the caller's text, not a known user's.
            let username = username.escape_debug();
            tracing::warn!(%username, ?address, "too many failed sign-ins; refusing this pair for {lockout:?}");
        }
    }

    /// 429 (with how long to wait) while this user and address are locked out.
    fn refuse_if_locked_out(&self, username: &str, address: Option<IpAddr>) -> Result<(), AppError> {
        self.limiter()
            .check(username, address, Instant::now())
            .map_err(|wait| AppError::TooManyRequests(wait.as_secs().max(1)))
    }
}

/// On first start (no users), creates `admin` with `password`, or with a
/// generated one that is logged once.
pub fn bootstrap_sqlite(conn: &Connection, password: Option<&str>) -> Result<(), StoreError> {
    if store::count(conn)? > 0 {
        return Ok(());
    }
    let (user, generated) = first_admin(password)?;
    if store::insert(conn, &user)? {
        announce_first_admin(generated);
    }
    Ok(())
}

/// [`bootstrap_sqlite`] on any store (replicas starting together on one
/// PostgreSQL database create the first admin once: the insert ignores a
/// name already taken).
pub async fn bootstrap(db: &Store, password: Option<&str>) -> Result<(), StoreError> {
    if db.user_count().await? > 0 {
        return Ok(());
    }
    let (user, generated) = first_admin(password)?;
    if db.insert_user(user).await? {
        announce_first_admin(generated);
    }
    Ok(())
}

/// The first admin, with the given password or a generated one (then `Some`, to show once).
fn first_admin(password: Option<&str>) -> Result<(UserRecord, Option<String>), StoreError> {
    let (password, generated) = match password {
        Some(given) if !given.is_empty() => (given.to_owned(), None),
        _ => {
            let generated = password::generate().map_err(StoreError::Bootstrap)?;
            (generated.clone(), Some(generated))
        }
    };
    let user = UserRecord {
        username: "admin".into(),
        role: Role::Admin,
        password_hash: password::hash(&password).map_err(StoreError::Bootstrap)?,
        created_at: Timestamp::now(),
    };
    Ok((user, generated))
}

fn announce_first_admin(generated: Option<String>) {
    match generated {
        Some(password) => tracing::warn!(
            "created the first user `admin` with the generated password: {password}  \
             (shown only this once; set MANAGER_ADMIN_PASSWORD before the first start to choose it, \
             or change it with `manager users set-password admin --password-stdin`)"
        ),
        None => tracing::info!("created the first user `admin` with the password from MANAGER_ADMIN_PASSWORD"),
    }
}

/// Whether the request carries credentials of either kind.
pub fn has_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(TOKEN_HEADER) || headers.contains_key(header::AUTHORIZATION)
}

/// Two sets of credentials are refused rather than resolved by precedence: a
/// broken one must never be silently ignored.
fn refuse_two_credentials(headers: &HeaderMap) -> Result<(), AppError> {
    if headers.contains_key(TOKEN_HEADER) && headers.contains_key(header::AUTHORIZATION) {
        return Err(unauthorized("Send either `Authorization` or `Authentication-Token`, not both"));
    }
    Ok(())
}

fn unauthorized(message: &str) -> AppError {
    AppError::Unauthorized(message.to_owned())
}

fn basic_credentials(header: &[u8]) -> Result<(String, String), AppError> {
    let malformed = || unauthorized("The Authorization header is not `Basic <base64 of username:password>`");
    let text = std::str::from_utf8(header).map_err(|_| malformed())?;
    let (scheme, encoded) = text.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (username, password) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok((username.to_owned(), password.to_owned()))
}

/// The client's IP address, for the sign-in limiter.
pub fn peer(parts: &Parts) -> Option<IpAddr> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(address)| address.ip())
}

/// The client's IP address ([`peer`]) as an extractor.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(peer(parts)))
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        // The gate may already have authenticated this request (bypass header).
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        let user = state.auth.authenticate(&parts.headers, peer(parts)).await?;
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// A signed-in admin; a signed-in user gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Self(user))
        } else {
            Err(AppError::Forbidden(format!("User `{}` is not an admin; this needs the admin role", user.username)))
        }
    }
}

/// A signed-in caller of the event stream: headers as everywhere, or, on
/// this route only, `?token=<token>` — a browser `EventSource` cannot send
/// headers. The risk: URLs end up in proxy logs and browser history, so the
/// manager never logs query strings, and tokens expire.
#[derive(Debug, Clone)]
pub struct StreamUser(pub CurrentUser);

impl FromRequestParts<AppState> for StreamUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let query_token = parts
            .uri
            .query()
            .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("token=")))
            .map(str::to_owned);
        match query_token {
            Some(token) if !has_credentials(&parts.headers) => Ok(Self(state.auth.by_token(&token).await?)),
            _ => CurrentUser::from_request_parts(parts, state).await.map(Self),
        }
    }
}

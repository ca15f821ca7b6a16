//! The signed-in session: the token lives in sessionStorage, so it survives a
//! reload but not the closing of the tab; [`Session`] is what the pages get
//! from the context to call the API.

use gloo_storage::{SessionStorage, Storage};
use leptos::prelude::*;
use shared::{Role, TokenResponse};
use uuid::Uuid;

use crate::api::FetchError;

const KEY: &str = "manager.session";

/// The signed-in session, for every component below the frame.
#[derive(Clone)]
pub struct Session {
    /// The token for API calls.
    pub token: String,
    /// The token's id, to revoke it at sign-out.
    pub token_id: Uuid,
    /// Whether to offer admin actions.
    pub is_admin: bool,
    /// Ends the session with a reason (shown on the sign-in form).
    pub expired: Callback<String>,
}

impl Session {
    /// The session of `token`; `expired` ends it.
    pub fn new(token: &TokenResponse, expired: Callback<String>) -> Self {
        Self { token: token.value.clone(), token_id: token.id, is_admin: token.role == Role::Admin, expired }
    }

    /// The error in words; a 401 also ends the session, back to sign-in with the reason.
    pub fn explain(&self, error: &FetchError) -> String {
        let text = error.to_string();
        if error.needs_sign_in() {
            // The frame may already be gone (signed out meanwhile): then there is nothing to end.
            self.expired.try_run(text.clone());
        }
        text
    }
}

/// The stored session, if any.
pub fn load() -> Option<TokenResponse> {
    SessionStorage::get(KEY).ok()
}

/// Keeps the session for this tab.
pub fn save(token: &TokenResponse) {
    // A browser without storage still works until the next reload.
    let _ = SessionStorage::set(KEY, token);
}

/// Forgets the session.
pub fn clear() {
    SessionStorage::delete(KEY);
}

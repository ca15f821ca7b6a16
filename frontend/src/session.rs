//! The signed-in session: the token lives in sessionStorage, so it survives a
//! reload but not the closing of the tab.

use gloo_storage::{SessionStorage, Storage};
use shared::TokenResponse;

const KEY: &str = "manager.session";

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

//! Who is calling. Until users and tokens exist every caller is the bootstrap
//! admin; handlers and the gate ask only [`authenticate`] and the extractors
//! here, so real authentication replaces this one module.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use crate::error::AppError;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// May change maintenance mode and bypass the gate.
    Admin,
    /// May read status and run executions.
    User,
}

/// The signed-in caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// The username (`requested_by`, `created_by`).
    pub username: String,
    /// What they may do.
    pub role: Role,
}

impl CurrentUser {
    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Identifies the caller from the request headers.
pub fn authenticate(_headers: &HeaderMap) -> Result<CurrentUser, AppError> {
    Ok(CurrentUser { username: "admin".into(), role: Role::Admin })
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        authenticate(&parts.headers)
    }
}

/// A signed-in admin; anyone else gets 403.
#[derive(Debug, Clone)]
pub struct AdminUser(pub CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let user = CurrentUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(Self(user))
        } else {
            Err(AppError::Forbidden(format!("User `{}` is not an admin; this needs the admin role", user.username)))
        }
    }
}

//! Users, roles and tokens as the API shows them (SPEC §4).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::time::Timestamp;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Changes maintenance mode; may bypass the gate.
    Admin,
    /// Reads status; runs and cancels executions.
    User,
}

impl Role {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Admin, Self::User].into_iter().find(|role| role.as_str() == text)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Body of `POST /tokens` (optional) as Cloudify's client sends it (`cfy
/// tokens create`). A description changes nothing a token does, and this
/// manager keeps none: accepted. An expiry of the caller's choosing is not
/// supported (tokens live the manager's token lifetime): only `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Cloudify: what the token is for. Not kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Cloudify: when the token should expire. Not supported: `null` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = null_only))]
    pub expiration_date: Option<serde_json::Value>,
}

impl TokenRequest {
    /// Whether the manager can issue the token asked for; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        match self.expiration_date {
            Some(_) => Err("expiration_date: tokens expire after the manager's token lifetime \
                            (--token-ttl-seconds); leave it out"
                .into()),
            None => Ok(()),
        }
    }
}

/// A field that may only be `null`.
#[cfg(feature = "openapi")]
fn null_only() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Null).into()
}

/// Body of `POST /tokens`: a new token for the signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// The token's id, for `DELETE /tokens/{id}`; not a secret.
    pub id: Uuid,
    /// The secret: send it as `Authentication-Token: <value>`. Shown only here.
    pub value: String,
    /// Whose token it is.
    pub username: String,
    /// Their role.
    pub role: Role,
    /// When it stops working.
    pub expires_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_use_wire_names() {
        assert_eq!(serde_json::to_string(&Role::Admin).unwrap(), "\"admin\"");
        assert_eq!(Role::parse("user"), Some(Role::User));
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn token_requests_take_cloudifys_description_and_refuse_an_expiry() {
        let request: TokenRequest = serde_json::from_str(r#"{"description":"ci"}"#).unwrap();
        assert!(request.check().is_ok());
        let request: TokenRequest = serde_json::from_str(r#"{"expiration_date":"+10h"}"#).unwrap();
        assert!(request.check().unwrap_err().starts_with("expiration_date:"));
        assert!(serde_json::from_str::<TokenRequest>(r#"{"expiration_date":null}"#).unwrap().check().is_ok());
        assert!(serde_json::from_str::<TokenRequest>(r#"{"scope":"all"}"#).is_err());
    }

    #[test]
    fn token_response_round_trips() {
        let token = TokenResponse {
            id: Uuid::nil(),
            value: "secret".into(),
            username: "admin".into(),
            role: Role::Admin,
            expires_at: "2017-04-04T05:16:21.407Z".parse().unwrap(),
        };
        let json = serde_json::to_value(&token).unwrap();
        assert_eq!(json["role"], "admin");
        assert_eq!(json["expires_at"], "2017-04-04T05:16:21.407Z");
        assert_eq!(serde_json::from_value::<TokenResponse>(json).unwrap(), token);
    }
}

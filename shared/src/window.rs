//! Scheduled maintenance windows (SPEC §10).

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::maintenance::MaintenanceMode;
use crate::time::{empty_if_none, Timestamp};

/// `notice_seconds` when a window is scheduled without one: an hour.
pub const DEFAULT_NOTICE_SECONDS: u64 = 3600;
/// The longest notice accepted, in seconds (30 days).
pub const MAX_NOTICE_SECONDS: u64 = 30 * 24 * 3600;

/// Where a window is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    /// Its start is to come.
    Scheduled,
    /// It started: maintenance mode is its until its end.
    Active,
    /// Its end came (or it was ended early).
    Ended,
    /// Cancelled before it started.
    Cancelled,
    /// The manager was down for all of it: it never started.
    Missed,
}

impl WindowState {
    /// The wire name (`"scheduled"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Active => "active",
            Self::Ended => "ended",
            Self::Cancelled => "cancelled",
            Self::Missed => "missed",
        }
    }

    /// Parses a wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Scheduled, Self::Active, Self::Ended, Self::Cancelled, Self::Missed]
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// Whether it is over (ended, cancelled or missed): nothing more happens to it.
    pub fn is_over(self) -> bool {
        matches!(self, Self::Ended | Self::Cancelled | Self::Missed)
    }
}

impl fmt::Display for WindowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A maintenance window: maintenance mode from `starts_at` to `ends_at`,
/// announced `notice_seconds` ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Window {
    /// Its id.
    pub id: Uuid,
    /// Where it is in its life.
    pub state: WindowState,
    /// When maintenance mode starts.
    pub starts_at: Timestamp,
    /// When it ends; `""` for a window without an end (an admin deactivates).
    #[serde(with = "empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ends_at: Option<Timestamp>,
    /// Shown in the notice and, once it starts, as maintenance mode's reason.
    pub reason: String,
    /// How long before `starts_at` the status object announces it (`upcoming`).
    pub notice_seconds: u64,
    /// The drain deadline of its activation; `null`: none.
    pub drain_deadline_seconds: Option<u64>,
    /// `full` or `read_only`.
    pub mode: MaintenanceMode,
    /// The admin who scheduled it (its activation's `requested_by`).
    pub created_by: String,
    /// When it was scheduled.
    pub created_at: Timestamp,
    /// When it ended, was cancelled or was found missed; `""` until then.
    #[serde(with = "empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ended_at: Option<Timestamp>,
}

/// Body of `POST /maintenance/windows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewWindow {
    /// When maintenance mode starts (RFC 3339, any offset; stored as UTC). Must be in the future.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub starts_at: Timestamp,
    /// When it ends (after `starts_at`); none: an admin deactivates.
    #[serde(with = "empty_if_none", default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub ends_at: Option<Timestamp>,
    /// Shown in the notice and as maintenance mode's reason.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 1000))]
    pub reason: String,
    /// Seconds of notice before the start (default 3600, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::maintenance::whole_seconds")]
    #[cfg_attr(feature = "openapi", schema(maximum = 2592000))]
    pub notice_seconds: Option<u64>,
    /// The drain deadline of its activation, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::maintenance::whole_seconds")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 604800))]
    pub drain_deadline_seconds: Option<u64>,
    /// `full` (the default) or `read_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MaintenanceMode>,
}

/// Body of `POST /maintenance/windows/{id}/extend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExtendWindow {
    /// The new end: after the start, and in the future.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub ends_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_window_needs_only_its_start_and_rejects_unknown_fields() {
        let window: NewWindow = serde_json::from_str(r#"{"starts_at":"2030-01-01T10:00:00+02:00"}"#).unwrap();
        assert_eq!(window.starts_at.to_string(), "2030-01-01T08:00:00.000Z");
        assert_eq!((window.ends_at, window.notice_seconds, window.mode), (None, None, None));
        assert!(serde_json::from_str::<NewWindow>(r#"{"starts_at":"2030-01-01T10:00:00Z","end":"x"}"#).is_err());
        assert!(serde_json::from_str::<NewWindow>(r#"{"starts_at":"tomorrow"}"#).is_err());
    }

    #[test]
    fn a_window_serializes_unset_times_as_empty_strings() {
        let window = Window {
            id: Uuid::nil(),
            state: WindowState::Scheduled,
            starts_at: "2030-01-01T08:00:00.000Z".parse().unwrap(),
            ends_at: None,
            reason: "upgrade".into(),
            notice_seconds: 3600,
            drain_deadline_seconds: None,
            mode: MaintenanceMode::Full,
            created_by: "admin".into(),
            created_at: "2029-12-31T08:00:00.000Z".parse().unwrap(),
            ended_at: None,
        };
        let json = serde_json::to_value(&window).unwrap();
        assert_eq!(json["ends_at"], "");
        assert_eq!(json["state"], "scheduled");
        assert_eq!(json["drain_deadline_seconds"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<Window>(json).unwrap(), window);
    }
}

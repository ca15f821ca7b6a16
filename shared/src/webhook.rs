//! Webhooks (SPEC §11): the body POSTed for every maintenance event, and
//! `GET /maintenance/webhooks`, each URL's deliveries, failures and backlog.

use serde::{Deserialize, Serialize};

use crate::{HistoryEvent, MaintenanceStatus, Timestamp, Window};

/// The header carrying `sha256=<hex HMAC-SHA256 of the body with the secret>`.
pub const SIGNATURE_HEADER: &str = "X-Manager-Signature";
/// The header naming the event (as the body's `event`), for receivers that route on it.
pub const EVENT_HEADER: &str = "X-Manager-Event";
/// The header carrying the event's id (as the body's `id`), for receivers that deduplicate.
pub const EVENT_ID_HEADER: &str = "X-Manager-Event-Id";

/// What a webhook receives: one maintenance event, the status right after it
/// and the window it belongs to, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookEvent {
    /// Increases with every event (a history row's number).
    pub id: u64,
    /// What happened.
    pub event: HistoryEvent,
    /// When.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    /// The status object right after the event.
    pub status: MaintenanceStatus,
    /// The event's window as it became, or `null`.
    pub window: Option<Window>,
}

/// `GET /maintenance/webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Webhooks {
    /// The id of the newest event.
    pub last_event_id: u64,
    /// Each configured URL, in the order of the configuration.
    pub webhooks: Vec<WebhookView>,
}

/// One URL's deliveries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookView {
    /// The URL (a password in it shown as `***`).
    pub url: String,
    /// The last event delivered or given up; events after it are the backlog.
    pub delivered_through: u64,
    /// How many events wait to be delivered.
    pub backlog: u64,
    /// Events delivered since the URL was configured.
    pub delivered: u64,
    /// Events given up after 24 hours of failed attempts.
    pub failed: u64,
    /// Failed attempts at the next event so far.
    pub attempts: u32,
    /// When the next attempt is due, if the last one failed.
    #[serde(with = "crate::time::empty_if_none", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub next_attempt_at: Option<Timestamp>,
    /// Why the last attempt failed; `""` if it did not.
    pub last_error: String,
    /// The replica delivering to this URL (PostgreSQL); `""` if none or one manager.
    pub delivering_replica: String,
    /// The last deliveries and failures, newest first.
    pub recent: Vec<WebhookDelivery>,
}

/// An event delivered to a URL, or given up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookDelivery {
    /// The event's id.
    pub event_id: u64,
    /// The event.
    pub event: HistoryEvent,
    /// Delivered (a 2xx answer) or failed (given up).
    pub outcome: DeliveryOutcome,
    /// When it was delivered or given up.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub at: Timestamp,
    /// How many attempts it took.
    pub attempts: u32,
    /// The HTTP status of the last attempt, if one came back.
    pub status_code: Option<u16>,
    /// Why the last attempt failed; `""` if delivered.
    pub error: String,
    /// From the event's commit to its delivery, in milliseconds.
    pub latency_ms: u64,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt for 24 hours failed.
    Failed,
}

impl DeliveryOutcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// From the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Delivered, Self::Failed].into_iter().find(|outcome| outcome.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_fields_of_spec_11_in_order() {
        let body = WebhookEvent {
            id: 7,
            event: HistoryEvent::Activate,
            at: "2026-11-30T12:00:00.000Z".parse().unwrap(),
            status: MaintenanceStatus::default(),
            window: None,
        };
        let json = serde_json::to_string(&body).unwrap();
        assert!(json.starts_with(r#"{"id":7,"event":"activate","at":"2026-11-30T12:00:00.000Z","status":{"#), "{json}");
        assert!(json.ends_with(r#","window":null}"#), "{json}");
        assert_eq!(serde_json::from_str::<WebhookEvent>(&json).unwrap(), body);
    }
}

//! Types shared by the `manager` server, the admin panel and the `cfy` CLI.
//!
//! One definition of every request, response, state and error code of the
//! contract (`SPEC.md` §1–4), so the three programs cannot drift apart.

pub mod api;
pub mod auth;
pub mod cloudify;
pub mod error;
pub mod execution;
pub mod maintenance;
pub mod sse;
pub mod time;
pub mod webhook;
pub mod window;

pub use auth::{Role, TokenRequest, TokenResponse};
pub use error::{ApiError, ErrorCode};
pub use execution::{Execution, ExecutionAction, ExecutionStatus, NewExecution};
pub use maintenance::{
    ActivateRequest, HistoryEvent, MaintenanceMode, MaintenanceState, MaintenanceStatus, MaintenanceTransition,
    RemainingExecution,
};
pub use time::Timestamp;
pub use webhook::{DeliveryOutcome, WebhookDelivery, WebhookEvent, WebhookView, Webhooks};
pub use window::{ExtendWindow, NewWindow, Window, WindowState};

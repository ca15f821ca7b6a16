//! Fixtures for the unit tests.

use shared::{Execution, ExecutionStatus, Timestamp};
use uuid::Uuid;

/// A fresh `install` on `web` by `admin`, with the given status and parameters.
pub fn execution(status: ExecutionStatus, parameters: serde_json::Value) -> Execution {
    Execution {
        id: Uuid::new_v4(),
        workflow_id: "install".into(),
        deployment_id: "web".into(),
        status,
        parameters: parameters.as_object().cloned().unwrap_or_default(),
        created_at: Timestamp::now(),
        started_at: None,
        ended_at: None,
        created_by: "admin".into(),
        error: String::new(),
    }
}

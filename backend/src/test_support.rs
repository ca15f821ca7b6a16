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
        replica: String::new(),
    }
}

/// What the engine needs to run executions: the shipped workflows, output
/// stored in `data_dir`'s database (already migrated).
pub fn runner_config(data_dir: &std::path::Path) -> crate::runner::RunnerConfig {
    let conn = crate::store::open_reader(data_dir).expect("output connection");
    let db = crate::store::Db::new(conn, "output", 16).expect("output thread");
    crate::runner::RunnerConfig {
        catalog: crate::workflows::Catalog::new(crate::workflows::EXAMPLES),
        data_dir: data_dir.to_owned(),
        cancel_grace: std::time::Duration::from_secs(1),
        output: crate::output::OutputLog::new(crate::store::Store::Sqlite(db)),
    }
}

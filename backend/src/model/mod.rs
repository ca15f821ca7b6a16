//! The types the rules decide on and the stores write: below both, so that
//! neither store imports the engine or the webhooks (the arrows point down).

pub mod change;
pub mod outbox;
pub mod record;

pub use change::Change;

use shared::execution::ExecutionEvent;
use uuid::Uuid;

/// Lines of one execution, numbered from `first`.
#[derive(Debug, Clone)]
pub struct OutputBatch {
    /// The execution.
    pub execution_id: Uuid,
    /// The number of the first line.
    pub first: u64,
    /// The lines, in order.
    pub events: Vec<ExecutionEvent>,
}

pub use record::{DrainStage, ExtraValues, MaintenanceRecord};

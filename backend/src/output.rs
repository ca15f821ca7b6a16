//! Executions' output (SPEC §9): lines are stored in batches on a connection
//! of their own, then announced to live subscribers. A batch is announced
//! only after it is stored, so a subscriber that fell behind can always catch
//! up from the store.

use std::sync::Arc;

use shared::execution::ExecutionEvent;
use tokio::sync::broadcast;

use crate::store::{Store, StoreError};

/// How many batches a slow live subscriber may fall behind before it must
/// re-read from the store.
const LIVE_BUFFER: usize = 1024;

pub use crate::model::OutputBatch;

/// A batch's lines, shared with the store's write.
struct Lines(Arc<OutputBatch>);

impl AsRef<[ExecutionEvent]> for Lines {
    fn as_ref(&self) -> &[ExecutionEvent] {
        &self.0.events
    }
}

/// Where runners put output and event streams read it.
#[derive(Clone)]
pub struct OutputLog {
    store: Store,
    live: broadcast::Sender<Arc<OutputBatch>>,
}

impl OutputLog {
    /// Writes through `store` (on SQLite a connection of its own, so output never waits
    /// behind the engine's or the readers' queue).
    pub fn new(store: Store) -> Self {
        Self { store, live: broadcast::channel(LIVE_BUFFER).0 }
    }

    /// Stores `batch`, then announces it.
    pub async fn append(&self, batch: OutputBatch) -> Result<(), StoreError> {
        let batch = Arc::new(batch);
        self.store.append_output(batch.execution_id, batch.first, Lines(Arc::clone(&batch))).await?;
        self.announce(batch);
        Ok(())
    }

    /// Announces a batch that is already stored (the last one is stored with
    /// the execution's end, by the engine).
    pub fn announce(&self, batch: Arc<OutputBatch>) {
        // No subscriber is not an error.
        let _ = self.live.send(batch);
    }

    /// Every batch announced from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<OutputBatch>> {
        self.live.subscribe()
    }
}

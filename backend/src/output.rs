//! Executions' output (SPEC §9): lines are stored in batches on a connection
//! of their own, then announced to live subscribers. A batch is announced
//! only after it is stored, so a subscriber that fell behind can always catch
//! up from the store.

use std::sync::Arc;

use shared::execution::{ExecutionEvent, OutputStream, UNSTORABLE_MARKER};
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

    /// Stores `batch`, then announces it. A line the database cannot hold
    /// is replaced by a marker (stored and announced in its place), so a
    /// batch is never refused for its text: retrying it would fail for ever.
    pub async fn append(&self, batch: OutputBatch) -> Result<(), StoreError> {
        let batch = Arc::new(batch);
        let stored = match self.store.append_output(batch.execution_id, batch.first, Lines(Arc::clone(&batch))).await {
            Ok(()) => batch,
            Err(StoreError::Unstorable(_)) => Arc::new(self.append_line_by_line(&batch).await?),
            Err(error) => return Err(error),
        };
        self.announce(stored);
        Ok(())
    }

    /// Stores `batch` one line at a time (the database refused the whole
    /// batch's text), a marker in place of each line it refuses; returns
    /// what was stored. Lines already stored by an earlier try are kept.
    async fn append_line_by_line(&self, batch: &OutputBatch) -> Result<OutputBatch, StoreError> {
        let id = batch.execution_id;
        let mut stored = Vec::with_capacity(batch.events.len());
        for (seq, event) in (batch.first..).zip(&batch.events) {
            let event = match self.store.append_output(id, seq, vec![event.clone()]).await {
                Ok(()) => event.clone(),
                Err(StoreError::Unstorable(detail)) => {
                    tracing::warn!(%id, seq, %detail, "an output line could not be stored; a marker stands in for it");
                    let marker =
                        ExecutionEvent { at: event.at, stream: OutputStream::Manager, line: UNSTORABLE_MARKER.into() };
                    self.store.append_output(id, seq, vec![marker.clone()]).await?;
                    marker
                }
                Err(error) => return Err(error),
            };
            stored.push(event);
        }
        Ok(OutputBatch { execution_id: id, first: batch.first, events: stored })
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

//! What every handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio_util::sync::CancellationToken;

use crate::maintenance::Engine;
use crate::store::Reader;

/// The application state: cheap to clone, all `Arc`s inside.
#[derive(Clone)]
pub struct AppState {
    /// The state machine and execution admission (the only writer).
    pub engine: Arc<Engine>,
    /// Reads of lists and history.
    pub reader: Reader,
    /// Fires on shutdown, so endless responses (event streams) end and the
    /// server can stop gracefully.
    pub shutdown: CancellationToken,
}

impl FromRef<AppState> for Arc<Engine> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.engine)
    }
}

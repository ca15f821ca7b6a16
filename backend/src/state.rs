//! What every handler shares.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::cluster::Cluster;
use crate::engine::Engine;
use crate::store::Store;
use crate::workflows::Catalog;

/// The application state: cheap to clone, all `Arc`s inside.
#[derive(Clone)]
pub struct AppState {
    /// The state machine and execution admission (the only writer).
    pub engine: Arc<Engine>,
    /// Reads of lists and history.
    pub reader: Store,
    /// Credentials: users, tokens, failed sign-ins.
    pub auth: Arc<Auth>,
    /// The workflows executions can run (read from its directory on each use).
    pub catalog: Catalog,
    /// Fires on shutdown, so endless responses (event streams) end and the
    /// server can stop gracefully.
    pub shutdown: CancellationToken,
    /// On PostgreSQL: this replica's place among the others (listener,
    /// heartbeats, reaper); `None` on SQLite.
    pub cluster: Option<Arc<Cluster>>,
    /// What `GET /metrics` counts between scrapes.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether `GET /metrics` answers without credentials.
    pub metrics_open: bool,
    /// The webhooks delivered to (SPEC §11), if any.
    pub webhooks: Option<Arc<crate::webhooks::Settings>>,
}

//! Paths and the small response bodies of the REST API (SPEC §2).

use serde::{Deserialize, Serialize};

/// Every API path starts with this.
pub const API_PREFIX: &str = "/api/v3.1";
/// Header with which an admin passes the maintenance gate (Cloudify's).
pub const BYPASS_HEADER: &str = "X-BYPASS-MAINTENANCE";
/// Header carrying a token from `POST /tokens` (Cloudify's).
pub const TOKEN_HEADER: &str = "Authentication-Token";

/// Header on status answers (`GET /maintenance`, activate, deactivate) with
/// the epoch of the status in the body: the number of the change that made
/// it, the same as the `id:` of the `status` event that carried it. A client
/// keeps the status with the highest epoch it has seen.
pub const EPOCH_HEADER: &str = "X-Maintenance-Epoch";

/// An API path: the prefix followed by `tail` (`path("/maintenance")`).
pub fn path(tail: &str) -> String {
    format!("{API_PREFIX}{tail}")
}

/// Body of `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    /// The manager's version.
    pub version: String,
    /// The API version (`v3.1`).
    pub api_version: String,
    /// `community`, which Cloudify's client shows in `cfy --version`.
    pub edition: String,
    /// The Cloudify release whose client and REST API this manager is compatible with.
    pub cloudify_version: String,
}

/// Body of `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerStatus {
    /// `running` while the manager serves requests.
    pub status: String,
    /// The maintenance-mode state, so monitoring sees it without signing in.
    pub maintenance: crate::MaintenanceState,
    /// `available`, or `unavailable` while this replica cannot reach its
    /// database (SPEC §8): the gate keeps enforcing the last state applied.
    #[serde(default = "available")]
    pub database: String,
    /// This replica's name, on PostgreSQL (several replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// Each part of this manager (REST service, database, workflow runner,
    /// webhook delivery, cluster) by display name, as Cloudify's manager
    /// answers and `cfy status` prints them.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, crate::cloudify::services::Service>))]
    pub services: crate::cloudify::services::Services,
}

fn available() -> String {
    "available".into()
}

/// One replica of the manager (SPEC §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Replica {
    /// Its name (`--replica-id`).
    pub id: String,
    /// Where it serves (`host:port`; empty until it serves).
    pub address: String,
    /// When it last renewed its lease (the database's clock).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub last_seen: crate::Timestamp,
    /// The last status change (epoch) it applied.
    pub epoch: u64,
    /// How many executions it runs.
    pub running_executions: u64,
}

/// Body of `GET /maintenance/replicas`: the live replicas (lease not expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplicasResponse {
    /// The replicas, by name.
    pub items: Vec<Replica>,
}

/// Body of list responses (Cloudify's shape): the items and how they were paged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListResponse<T> {
    /// The items of this page, newest first.
    pub items: Vec<T>,
    /// Paging information.
    pub metadata: ListMetadata,
}

/// Paging information of a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListMetadata {
    /// How the list was cut.
    pub pagination: Pagination,
}

/// `_size` and `_offset` as applied, and how many items there are in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pagination {
    /// Items in all.
    pub total: u64,
    /// The page size asked for (or the default).
    pub size: u32,
    /// How many items were skipped.
    pub offset: u64,
}

/// A workflow of the catalog (`GET /workflows`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workflow {
    /// Its id: the program's file name without extension (`install`).
    pub id: String,
    /// The program's first comment line; `""` if it has none.
    pub description: String,
}

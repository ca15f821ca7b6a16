//! What Cloudify's own client asks the manager besides the maintenance API:
//! the discovery calls of `cfy profiles use` and an execution's events
//! (`cfy executions start` follows them). Every answer is true of this
//! manager: one process is the manager, the broker (it runs executions
//! itself) and, with the embedded SQLite, the database node.

use std::sync::LazyLock;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde_json::{Map, Value};
use shared::api::ListResponse;
use shared::cloudify::{BrokerNode, CloudifyEvent, DbNode, ManagerNode, ProviderContext, EDITION};
use shared::Timestamp;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::routes::query::CloudifyQuery;
use crate::routes::{list_response, parse_id};
use crate::server::LocalAddr;
use crate::state::AppState;
use crate::store::executions as store;

/// The context Cloudify stores at bootstrap; this manager is configured by
/// flags, so it is empty (the client keeps it in the profile).
#[utoipa::path(get, path = "/provider/context", tag = "cloudify", responses((status = 200, body = ProviderContext)))]
pub async fn provider_context(_user: CurrentUser) -> Json<ProviderContext> {
    Json(ProviderContext { name: "provider".into(), context: Map::new() })
}

/// The managers: this one.
#[utoipa::path(get, path = "/managers", tag = "cloudify", responses((status = 200, body = ListResponse<ManagerNode>)))]
pub async fn managers(
    _user: CurrentUser,
    local: Option<Extension<LocalAddr>>,
    headers: HeaderMap,
) -> Json<ListResponse<ManagerNode>> {
    let node = Node::answering(local, &headers);
    let manager = ManagerNode {
        id: 1,
        hostname: HOST.name.clone(),
        private_ip: node.ip.clone(),
        public_ip: node.ip.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        edition: EDITION.into(),
        distribution: HOST.distribution.clone(),
        distro_release: HOST.release.clone(),
        node_id: node.id.clone(),
        last_seen: Timestamp::now(),
        networks: node.networks(),
    };
    Json(list_response(vec![manager], 1, 1, 0))
}

/// The brokers: this manager hands executions to its runners itself.
#[utoipa::path(get, path = "/brokers", tag = "cloudify", responses((status = 200, body = ListResponse<BrokerNode>)))]
pub async fn brokers(
    _user: CurrentUser,
    local: Option<Extension<LocalAddr>>,
    headers: HeaderMap,
) -> Json<ListResponse<BrokerNode>> {
    let node = Node::answering(local, &headers);
    let broker = BrokerNode {
        name: HOST.name.clone(),
        host: node.ip.clone(),
        management_host: node.ip.clone(),
        port: node.port,
        node_id: node.id.clone(),
        is_external: false,
        networks: node.networks(),
    };
    Json(list_response(vec![broker], 1, 1, 0))
}

/// The database nodes: the embedded SQLite, on this manager's machine.
#[utoipa::path(get, path = "/db-nodes", tag = "cloudify", responses((status = 200, body = ListResponse<DbNode>)))]
pub async fn db_nodes(
    _user: CurrentUser,
    local: Option<Extension<LocalAddr>>,
    headers: HeaderMap,
) -> Json<ListResponse<DbNode>> {
    let node = Node::answering(local, &headers);
    let db = DbNode { name: HOST.name.clone(), host: node.ip, node_id: node.id, is_external: false };
    Json(list_response(vec![db], 1, 1, 0))
}

/// An execution's events in Cloudify's shape, oldest first: `workflow_started`
/// once it started, then how it ended.
#[utoipa::path(get, path = "/events", tag = "cloudify",
    params(
        ("execution_id" = Uuid, Query, description = "The execution"),
        ("type" = Option<String>, Query, pattern = "^cloudify_(event|log)$",
         description = "`cloudify_event` or `cloudify_log` (repeat for both; default both)"),
        ("_size" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 1000)", minimum = 1, maximum = 1000),
        ("_offset" = Option<u64>, Query, description = "How many to skip (default 0)"),
        ("_sort" = Option<String>, Query, pattern = "^-?(@?timestamp|reported_timestamp)$",
         description = "`timestamp` or `reported_timestamp`, `-` for newest first"),
    ),
    responses((status = 200, body = ListResponse<CloudifyEvent>), (status = 400, body = shared::ApiError),
              (status = 404, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn events(
    State(state): State<AppState>,
    _user: CurrentUser,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListResponse<CloudifyEvent>>, AppError> {
    let mut query = CloudifyQuery::parse(raw.as_deref())?;
    let id = query
        .take_one("execution_id")?
        .ok_or_else(|| AppError::BadRequest("execution_id: required (the execution whose events to list)".into()))?;
    let id = parse_id("an execution", &id)?;
    let (size, offset) = query.take_paging()?;
    let newest_first = match query.take_sort(sort_key, "`timestamp`, `reported_timestamp`")?.as_slice() {
        [] => false,
        [(_, descending)] => *descending,
        _ => return Err(AppError::BadRequest("_sort: events are sorted by their time only".into())),
    };
    let types = query.take_list("type");
    if let Some(unknown) = types.iter().find(|kind| !matches!(kind.as_str(), "cloudify_event" | "cloudify_log")) {
        return Err(AppError::BadRequest(format!("type: `{unknown}` is neither `cloudify_event` nor `cloudify_log`")));
    }
    query.finish(|name, _| name == "_include_system_workflows")?;

    let execution = state
        .reader
        .read(move |conn| store::get(conn, id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("Requested execution `{id}` was not found")))?;
    let mut events: Vec<CloudifyEvent> = CloudifyEvent::lifecycle_of(&execution)
        .into_iter()
        .filter(|event| types.is_empty() || types.contains(&event.kind))
        .collect();
    if newest_first {
        events.reverse();
    }
    let total = events.len() as u64;
    let page = events.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(size as usize).collect();
    Ok(Json(list_response(page, total, size, offset)))
}

fn sort_key(name: &str) -> Option<()> {
    matches!(name, "timestamp" | "@timestamp" | "reported_timestamp").then_some(())
}

/// Facts about this machine, read once.
struct Host {
    name: String,
    distribution: String,
    release: String,
}

static HOST: LazyLock<Host> = LazyLock::new(|| {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|text| text.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        os_release
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(|value| value.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    Host { name, distribution: field("ID"), release: field("VERSION_CODENAME") }
});

/// The address a request reached this manager on.
struct Node {
    ip: String,
    port: u16,
    id: String,
}

impl Node {
    /// From the connection's local address; for in-process requests (no
    /// connection), from the `Host` header.
    fn answering(local: Option<Extension<LocalAddr>>, headers: &HeaderMap) -> Self {
        let (ip, port) = match local {
            Some(Extension(LocalAddr(address))) => (address.ip().to_string(), address.port()),
            None => {
                let host = headers.get(axum::http::header::HOST).and_then(|value| value.to_str().ok()).unwrap_or("");
                let (name, port) = host.rsplit_once(':').unwrap_or((host, ""));
                let name = if name.is_empty() { "127.0.0.1" } else { name.trim_matches(['[', ']']) };
                (name.to_owned(), port.parse().unwrap_or(0))
            }
        };
        let id = format!("{}:{port}", HOST.name);
        Self { ip, port, id }
    }

    fn networks(&self) -> Map<String, Value> {
        Map::from_iter([("default".to_owned(), Value::String(self.ip.clone()))])
    }
}

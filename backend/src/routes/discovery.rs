//! What Cloudify's own client asks when a profile is made (`cfy profiles
//! use`). Every answer is true of this manager: one process is the manager,
//! the broker (it runs executions itself) and, with the embedded SQLite, the
//! database node.

use std::sync::LazyLock;

use axum::http::HeaderMap;
use axum::{Extension, Json};
use serde_json::{Map, Value};
use shared::api::ListResponse;
use shared::cloudify::{BrokerNode, DbNode, ManagerNode, ProviderContext, EDITION};
use shared::Timestamp;

use crate::auth::CurrentUser;
use crate::routes::list_response;
use crate::routes::query::NoQuery;
use crate::server::LocalAddr;

/// The context Cloudify stores at bootstrap; this manager is configured by
/// flags, so it is empty (the client keeps it in the profile).
#[utoipa::path(get, path = "/provider/context", tag = "cloudify", responses((status = 200, body = ProviderContext)))]
pub async fn provider_context(_user: CurrentUser, _query: NoQuery) -> Json<ProviderContext> {
    Json(ProviderContext { name: "provider".into(), context: Map::new() })
}

/// The managers: this one.
#[utoipa::path(get, path = "/managers", tag = "cloudify", responses((status = 200, body = ListResponse<ManagerNode>)))]
pub async fn managers(
    _user: CurrentUser,
    _query: NoQuery,
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
    _query: NoQuery,
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
    _query: NoQuery,
    local: Option<Extension<LocalAddr>>,
    headers: HeaderMap,
) -> Json<ListResponse<DbNode>> {
    let node = Node::answering(local, &headers);
    let db = DbNode { name: HOST.name.clone(), host: node.ip, node_id: node.id, is_external: false };
    Json(list_response(vec![db], 1, 1, 0))
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

//! `services` of `GET /status` (SPEC §13), in Cloudify's shape: what each
//! part of this manager is doing, read now. [`gather`] reads the facts
//! (never waiting long on a database that does not answer); [`services`]
//! turns them into the answer, purely.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Map, Value};
use shared::cloudify::services::{Service, ServiceState, Services};

use crate::state::AppState;

/// Display names, as `cfy status` prints them (Cloudify's own where the part is the same).
pub const REST_SERVICE: &str = "Manager Rest-Service";
/// The embedded database's display name.
pub const SQLITE: &str = "SQLite";
/// The shared database's display name (Cloudify's).
pub const POSTGRESQL: &str = "PostgreSQL";
/// The part that runs executions' programs.
pub const WORKFLOW_RUNNER: &str = "Workflow Runner";
/// The part that POSTs maintenance events to `--webhook` URLs (only with webhooks).
pub const WEBHOOK_DELIVERY: &str = "Webhook Delivery";
/// This replica among the others (only on PostgreSQL).
pub const CLUSTER: &str = "Cluster";

/// How long `GET /status` waits for a database read: monitoring must get an
/// answer while the database is slow or gone.
const READ_LIMIT: Duration = Duration::from_secs(2);

/// Why a database read gave nothing.
const NO_ANSWER: &str = "the database does not answer";

/// What `GET /status` knows of the manager at the moment it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The manager's version.
    pub version: String,
    /// This replica's name (PostgreSQL only).
    pub replica: Option<String>,
    /// Whether the store is PostgreSQL (else the embedded SQLite).
    pub postgres: bool,
    /// Whether the database answered its last call.
    pub database_up: bool,
    /// Executions whose programs run in this process.
    pub running: usize,
    /// The most that may run at once, when the manager has such a limit.
    pub max_running: Option<usize>,
    /// How many workflows the catalog has, or why it cannot be read.
    pub workflows: Result<usize, String>,
    /// With `--webhook`: how many URLs, and their backlog and failing URLs
    /// (or why those could not be read).
    pub webhooks: Option<(usize, Result<WebhookFacts, String>)>,
    /// On PostgreSQL: how many replicas are alive (or why that could not be read).
    pub replicas_alive: Option<Result<usize, String>>,
}

/// The webhooks' state, summed over their URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookFacts {
    /// Events waiting to be delivered, over all URLs.
    pub backlog: u64,
    /// URLs whose last attempt failed.
    pub failing: usize,
}

/// Reads the facts now: memory first, then the database's answers within
/// [`READ_LIMIT`] each (none at all while it is known to be down).
pub async fn gather(state: &AppState) -> Facts {
    let database_up = state.cluster.as_ref().is_none_or(|cluster| cluster.database_up());
    let webhooks = match state.webhooks.as_deref() {
        Some(settings) => {
            let keys = settings.keys();
            let count = keys.len();
            let read = async {
                let (_, views) = state.reader.webhook_report(keys).await.map_err(|error| error.to_string())?;
                Ok(WebhookFacts {
                    backlog: views.iter().map(|view| view.backlog).sum(),
                    failing: views.iter().filter(|view| view.attempts > 0).count(),
                })
            };
            Some((count, bounded(database_up, read).await))
        }
        None => None,
    };
    let replicas_alive = match state.cluster {
        Some(_) => {
            let read = async { state.engine.pg_replicas().await.map(|alive| alive.len()).map_err(|e| e.to_string()) };
            Some(bounded(database_up, read).await)
        }
        None => None,
    };
    Facts {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        replica: state.engine.replica().map(str::to_owned),
        postgres: state.cluster.is_some(),
        database_up,
        running: state.engine.running(),
        max_running: Some(state.engine.max_running()),
        workflows: state.catalog.count().map_err(|error| error.to_string()),
        webhooks,
        replicas_alive,
    }
}

/// A database read, skipped while the database is known to be down and cut at [`READ_LIMIT`].
async fn bounded<T>(database_up: bool, read: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    if !database_up {
        return Err(NO_ANSWER.to_owned());
    }
    tokio::time::timeout(READ_LIMIT, read).await.unwrap_or_else(|_| Err(NO_ANSWER.to_owned()))
}

/// The services, in the order `cfy status` prints them: the REST service,
/// the database, the workflow runner, then webhook delivery and the cluster
/// where the manager has them.
pub fn services(facts: &Facts) -> Services {
    let mut services = Vec::new();

    let mut rest = info([("version", json!(facts.version))]);
    if let Some(replica) = &facts.replica {
        rest.insert("replica".into(), json!(replica));
    }
    // It answers this very request.
    services.push((REST_SERVICE.to_owned(), Service::new(ServiceState::Active, rest)));

    let (name, store) = if facts.postgres { (POSTGRESQL, "postgresql") } else { (SQLITE, "sqlite") };
    let mut database = Service::new(
        ServiceState::from_works(facts.database_up),
        info([
            ("store", json!(store)),
            ("database", json!(if facts.database_up { "available" } else { "unavailable" })),
        ]),
    );
    database.is_remote = facts.postgres;
    if !facts.database_up {
        database.extra_info.insert("error".into(), json!(NO_ANSWER));
    }
    services.push((name.to_owned(), database));

    let mut runner = info([("running", json!(facts.running))]);
    if let Some(max) = facts.max_running {
        runner.insert("max_running".into(), json!(max));
    }
    match &facts.workflows {
        Ok(count) => runner.insert("workflows".into(), json!(count)),
        Err(error) => runner.insert("error".into(), json!(format!("no execution can start: {error}"))),
    };
    services
        .push((WORKFLOW_RUNNER.to_owned(), Service::new(ServiceState::from_works(facts.workflows.is_ok()), runner)));

    if let Some((urls, read)) = &facts.webhooks {
        let mut details = info([("webhooks", json!(urls))]);
        match read {
            Ok(WebhookFacts { backlog, failing }) => {
                details.insert("backlog".into(), json!(backlog));
                details.insert("failing".into(), json!(failing));
            }
            Err(error) => {
                details.insert("error".into(), json!(error));
            }
        }
        services.push((WEBHOOK_DELIVERY.to_owned(), Service::new(ServiceState::from_works(read.is_ok()), details)));
    }

    if let Some(alive) = &facts.replicas_alive {
        let mut details = Map::new();
        if let Some(replica) = &facts.replica {
            details.insert("replica".into(), json!(replica));
        }
        match alive {
            Ok(alive) => details.insert("replicas_alive".into(), json!(alive)),
            Err(error) => details.insert("error".into(), json!(error)),
        };
        services.push((CLUSTER.to_owned(), Service::new(ServiceState::from_works(alive.is_ok()), details)));
    }
    Services(services)
}

fn info<const N: usize>(entries: [(&str, Value); N]) -> Map<String, Value> {
    entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite() -> Facts {
        Facts {
            version: "1.2.3".into(),
            replica: None,
            postgres: false,
            database_up: true,
            running: 2,
            max_running: None,
            workflows: Ok(5),
            webhooks: None,
            replicas_alive: None,
        }
    }

    fn line(services: &Services) -> Vec<String> {
        services
            .0
            .iter()
            .map(|(name, service)| {
                format!(
                    "{name} {} remote={} {}",
                    service.status.as_str(),
                    service.is_remote,
                    Value::Object(service.extra_info.clone())
                )
            })
            .collect()
    }

    #[test]
    fn on_sqlite_the_rest_service_the_database_and_the_runner_are_reported() {
        assert_eq!(
            line(&services(&sqlite())),
            [
                r#"Manager Rest-Service Active remote=false {"version":"1.2.3"}"#,
                r#"SQLite Active remote=false {"store":"sqlite","database":"available"}"#,
                r#"Workflow Runner Active remote=false {"running":2,"workflows":5}"#,
            ]
        );
        let limited = Facts { max_running: Some(8), workflows: Err("cannot read /w".into()), ..sqlite() };
        assert_eq!(
            line(&services(&limited))[2],
            r#"Workflow Runner Inactive remote=false {"running":2,"max_running":8,"error":"no execution can start: cannot read /w"}"#
        );
    }

    #[test]
    fn on_postgresql_an_unreachable_database_makes_it_and_what_needs_it_inactive() {
        let up = Facts {
            replica: Some("a".into()),
            postgres: true,
            webhooks: Some((2, Ok(WebhookFacts { backlog: 7, failing: 1 }))),
            replicas_alive: Some(Ok(3)),
            ..sqlite()
        };
        assert_eq!(
            line(&services(&up)),
            [
                r#"Manager Rest-Service Active remote=false {"version":"1.2.3","replica":"a"}"#,
                r#"PostgreSQL Active remote=true {"store":"postgresql","database":"available"}"#,
                r#"Workflow Runner Active remote=false {"running":2,"workflows":5}"#,
                r#"Webhook Delivery Active remote=false {"webhooks":2,"backlog":7,"failing":1}"#,
                r#"Cluster Active remote=false {"replica":"a","replicas_alive":3}"#,
            ]
        );
        let down = Facts {
            database_up: false,
            webhooks: Some((2, Err(NO_ANSWER.into()))),
            replicas_alive: Some(Err(NO_ANSWER.into())),
            ..up
        };
        assert_eq!(
            line(&services(&down))[1..],
            [
                r#"PostgreSQL Inactive remote=true {"store":"postgresql","database":"unavailable","error":"the database does not answer"}"#,
                r#"Workflow Runner Active remote=false {"running":2,"workflows":5}"#,
                r#"Webhook Delivery Inactive remote=false {"webhooks":2,"error":"the database does not answer"}"#,
                r#"Cluster Inactive remote=false {"replica":"a","error":"the database does not answer"}"#,
            ]
        );
    }
}

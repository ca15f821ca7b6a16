//! `cfy status`: the manager's services as Cloudify's client prints them
//! (`cloudify_cli/commands/status.py`): a first line naming the manager, the
//! "Services" table (each name padded to 30 columns), then the maintenance
//! mode unless it is off.

use serde_json::{Map, Value};
use shared::api::ServerStatus;
use shared::MaintenanceState;

use crate::table;

/// The first line, printed before the request.
pub fn retrieving(ip: &str) -> String {
    format!("Retrieving manager services status... [ip={ip}]")
}

/// The rest of `cfy status`: the services table, then `Maintenance mode is
/// <state>.` and an empty line while maintenance is not off.
pub fn status_table(status: &ServerStatus) -> Vec<String> {
    let rows: Vec<Map<String, Value>> = status
        .services
        .0
        .iter()
        .map(|(name, service)| {
            let mut row = Map::new();
            row.insert("service".into(), format!("{name:<30}").into());
            row.insert("status".into(), service.status.as_str().into());
            row
        })
        .collect();
    let mut lines = table::print_data(&["service", "status"], &[], &rows, "Services:", None);
    if status.maintenance != MaintenanceState::Deactivated {
        lines.push(format!("Maintenance mode is {}.", status.maintenance.as_str()));
        lines.push(String::new());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::cloudify::services::{Service, ServiceState, Services};

    fn status(maintenance: MaintenanceState, database: ServiceState) -> ServerStatus {
        let service = |state| Service::new(state, Map::new());
        ServerStatus {
            status: "running".into(),
            maintenance,
            database: "available".into(),
            replica: None,
            services: Services(vec![
                ("Manager Rest-Service".into(), service(ServiceState::Active)),
                ("PostgreSQL".into(), service(database)),
                ("Workflow Runner".into(), service(ServiceState::Active)),
            ]),
        }
    }

    #[test]
    fn services_print_as_cloudifys_table() {
        assert_eq!(retrieving("127.0.0.1"), "Retrieving manager services status... [ip=127.0.0.1]");
        assert_eq!(
            status_table(&status(MaintenanceState::Deactivated, ServiceState::Active)),
            [
                "",
                "Services:",
                "+--------------------------------+--------+",
                "|            service             | status |",
                "+--------------------------------+--------+",
                "| Manager Rest-Service           | Active |",
                "| PostgreSQL                     | Active |",
                "| Workflow Runner                | Active |",
                "+--------------------------------+--------+",
                "",
            ]
        );
    }

    #[test]
    fn an_inactive_service_widens_the_column_and_maintenance_is_named_unless_off() {
        assert_eq!(
            status_table(&status(MaintenanceState::Activating, ServiceState::Inactive)),
            [
                "",
                "Services:",
                "+--------------------------------+----------+",
                "|            service             |  status  |",
                "+--------------------------------+----------+",
                "| Manager Rest-Service           |  Active  |",
                "| PostgreSQL                     | Inactive |",
                "| Workflow Runner                |  Active  |",
                "+--------------------------------+----------+",
                "",
                "Maintenance mode is activating.",
                "",
            ]
        );
    }
}

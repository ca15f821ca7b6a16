//! `services` of `GET /status`, in the shape of Cloudify's manager: each part
//! of the manager by its display name, `Active` or `Inactive`, with what
//! else is known about it (`extra_info`). Cloudify's `cfy status` prints the
//! names and states as its "Services" table, in the order the answer has them.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Whether a service works (Cloudify's `NodeServiceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ServiceState {
    /// It does its work.
    Active,
    /// It cannot do its work now; `extra_info` says why.
    Inactive,
}

impl ServiceState {
    /// `Active` when `works`, `Inactive` otherwise.
    pub fn from_works(works: bool) -> Self {
        if works {
            Self::Active
        } else {
            Self::Inactive
        }
    }

    /// The wire name (`Active`, `Inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }
}

/// One service of the manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    /// Whether it works.
    pub status: ServiceState,
    /// Whether it runs outside this process (a PostgreSQL server).
    #[serde(default)]
    pub is_remote: bool,
    /// What else is known: counts, the reason it is inactive.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra_info: Map<String, Value>,
}

impl Service {
    /// A service in this state with these details.
    pub fn new(status: ServiceState, extra_info: Map<String, Value>) -> Self {
        Self { status, is_remote: false, extra_info }
    }
}

/// The services by display name, in the manager's order (a JSON object
/// whose keys keep that order on the wire and when read back).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Services(pub Vec<(String, Service)>);

impl Services {
    /// The service called `name`, if the manager has it.
    pub fn get(&self, name: &str) -> Option<&Service> {
        self.0.iter().find(|(each, _)| each == name).map(|(_, service)| service)
    }
}

impl Serialize for Services {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, service) in &self.0 {
            map.serialize_entry(name, service)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Services {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = Services;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("an object of services by name")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Services, A::Error> {
                let mut services = Vec::new();
                while let Some(entry) = map.next_entry::<String, Service>()? {
                    services.push(entry);
                }
                Ok(Services(services))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_keep_their_order_on_the_wire_and_back() {
        let info = |key: &str, value: Value| Map::from_iter([(key.to_owned(), value)]);
        let services = Services(vec![
            ("Zeta".into(), Service::new(ServiceState::Active, Map::new())),
            ("Alpha".into(), Service::new(ServiceState::Inactive, info("error", "down".into()))),
        ]);
        let text = serde_json::to_string(&services).unwrap();
        assert_eq!(
            text,
            r#"{"Zeta":{"status":"Active","is_remote":false,"extra_info":{}},"Alpha":{"status":"Inactive","is_remote":false,"extra_info":{"error":"down"}}}"#
        );
        assert_eq!(serde_json::from_str::<Services>(&text).unwrap(), services);
        assert_eq!(services.get("Alpha").map(|service| service.status), Some(ServiceState::Inactive));
        assert!(serde_json::from_str::<Services>(r#"{"A":{"status":"Broken"}}"#).is_err());
    }
}

//! Body of `POST /executions` as the manager reads it: what our clients send
//! ([`NewExecution`]) plus every field Cloudify's client sends with each
//! start. Each Cloudify field is honoured, harmless here (accepted), or
//! refused with a 400 naming it: never silently dropped when it would change
//! what runs.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{ExecutionParameters, NewExecution};

/// Body of `POST /executions` as the manager accepts it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateExecution {
    /// The workflow to run.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256, pattern = r"\S"))]
    pub workflow_id: String,
    /// The deployment to run it on.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256, pattern = r"\S"))]
    pub deployment_id: String,
    /// The workflow's parameters: any object, stored and given to the
    /// program as sent (Cloudify's client sends `-p KEY=VALUE` values as
    /// text, so the example workflows take `"1"` as well as `1`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub parameters: Option<Map<String, Value>>,
    /// During maintenance, store the execution as `queued` instead of refusing it.
    #[serde(default, deserialize_with = "flag")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::flag))]
    pub queue: bool,
    /// Cloudify: allow parameters the workflow does not declare. Workflows
    /// here declare none and take any, so either value runs the same.
    #[serde(default, deserialize_with = "flag")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::flag))]
    pub allow_custom_parameters: bool,
    /// Cloudify: run even if the deployment has a running execution.
    /// Executions here never wait for each other, so either value runs the same.
    #[serde(default, deserialize_with = "flag")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::flag))]
    pub force: bool,
    /// Cloudify: a dry run. Not supported: `true` is refused.
    #[serde(default, deserialize_with = "optional_flag")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::false_flag))]
    pub dry_run: Option<bool>,
    /// Cloudify: seconds to keep a failed execution resumable. Executions
    /// here are not resumed, so any value runs the same.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub wait_after_fail: Option<f64>,
    /// Cloudify: start later. Not supported (`null` only): schedule a maintenance window instead.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub scheduled_time: Option<Value>,
    /// Cloudify: system workflows. None run here (`null` or `false` only).
    #[serde(default, deserialize_with = "optional_flag")]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::false_flag))]
    pub is_system_workflow: Option<bool>,
    /// Cloudify (snapshot restore): an execution's stored status. `null` only.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub force_status: Option<Value>,
    /// Cloudify (snapshot restore). `null` only: the signed-in user creates it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub created_by: Option<Value>,
    /// Cloudify (snapshot restore). `null` only: the manager stamps it.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub created_at: Option<Value>,
    /// Cloudify (snapshot restore). `null` only.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub started_at: Option<Value>,
    /// Cloudify (snapshot restore). `null` only.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub ended_at: Option<Value>,
    /// Cloudify (snapshot restore). `null` only: the manager picks the id.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub id: Option<Value>,
    /// Cloudify (snapshot restore). `null` only.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = schema::null))]
    pub error: Option<Value>,
}

/// Why the snapshot-restore fields are refused.
const RESTORE_ONLY: &str = "Cloudify uses it to restore executions from a snapshot, and this manager does not \
                            import executions; send null or leave it out";

impl CreateExecution {
    /// What to run, or why not (the message names the field). `NewExecution::validate`
    /// still checks the ids.
    pub fn into_new(self) -> Result<NewExecution, String> {
        if self.dry_run == Some(true) {
            return Err("dry_run: dry runs are not supported: every execution runs its workflow".into());
        }
        if self.is_system_workflow == Some(true) {
            return Err("is_system_workflow: no system workflows run on this manager".into());
        }
        if self.wait_after_fail.is_some_and(|seconds| seconds < 0.0) {
            return Err("wait_after_fail: must be 0 or more seconds".into());
        }
        if self.scheduled_time.is_some() {
            return Err("scheduled_time: scheduled executions are not supported; schedule a maintenance \
                        window (SPEC §10) or start the execution later"
                .into());
        }
        let restore_only = [
            ("force_status", &self.force_status),
            ("created_by", &self.created_by),
            ("created_at", &self.created_at),
            ("started_at", &self.started_at),
            ("ended_at", &self.ended_at),
            ("id", &self.id),
            ("error", &self.error),
        ];
        if let Some((field, _)) = restore_only.iter().find(|(_, value)| value.is_some()) {
            return Err(format!("{field}: {RESTORE_ONLY}"));
        }
        Ok(NewExecution {
            workflow_id: self.workflow_id,
            deployment_id: self.deployment_id,
            parameters: ExecutionParameters { duration_seconds: None, other: self.parameters.unwrap_or_default() },
            queue: self.queue,
        })
    }
}

/// A boolean as JSON `true`/`false` or as the strings `"true"`/`"false"`
/// (any case): Cloudify's client sends `str(flag).lower()`.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    deserializer.deserialize_any(FlagVisitor)
}

/// [`flag`], or `null`.
fn optional_flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    deserializer.deserialize_option(OptionalFlagVisitor)
}

struct FlagVisitor;

impl Visitor<'_> for FlagVisitor {
    type Value = bool;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("true or false")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
        Ok(value)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<bool, E> {
        match text {
            text if text.eq_ignore_ascii_case("true") => Ok(true),
            text if text.eq_ignore_ascii_case("false") => Ok(false),
            text => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
        }
    }
}

struct OptionalFlagVisitor;

impl<'de> Visitor<'de> for OptionalFlagVisitor {
    type Value = Option<bool>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("true, false or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<bool>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<bool>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<bool>, D::Error> {
        flag(deserializer).map(Some)
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    use utoipa::openapi::RefOr;

    fn boolean_or_text(values: &[&str]) -> RefOr<Schema> {
        let text = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.to_vec()));
        OneOfBuilder::new().item(ObjectBuilder::new().schema_type(Type::Boolean)).item(text).into()
    }

    /// `true`, `false`, `"true"` or `"false"`.
    pub fn flag() -> RefOr<Schema> {
        boolean_or_text(&["true", "false"])
    }

    /// A flag that may only be false (or null).
    pub fn false_flag() -> RefOr<Schema> {
        let boolean = ObjectBuilder::new().schema_type(Type::Boolean).enum_values(Some([false]));
        let text = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["false"]));
        OneOfBuilder::new().item(boolean).item(text).item(ObjectBuilder::new().schema_type(Type::Null)).into()
    }

    /// Only `null` is accepted.
    pub fn null() -> RefOr<Schema> {
        ObjectBuilder::new().schema_type(Type::Null).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What Cloudify's client 7.0.5 sends for `cfy executions start install -d web -p duration_seconds=1`.
    fn from_cloudify_client() -> Value {
        json!({"deployment_id": "web", "workflow_id": "install", "parameters": {"duration_seconds": "1"},
               "allow_custom_parameters": "false", "force": "false", "dry_run": "false", "queue": "false",
               "scheduled_time": null, "wait_after_fail": 600, "force_status": null, "created_by": null,
               "created_at": null, "started_at": null, "ended_at": null, "id": null,
               "is_system_workflow": null, "error": null})
    }

    fn parse(body: Value) -> Result<NewExecution, String> {
        serde_json::from_value::<CreateExecution>(body).map_err(|error| error.to_string())?.into_new()
    }

    #[test]
    fn the_cloudify_clients_body_is_accepted_with_string_values() {
        let new = parse(from_cloudify_client()).expect("accepted");
        assert_eq!(new.parameters_map()["duration_seconds"], "1", "kept as sent");
        assert!(!new.queue);
        let mut queued = from_cloudify_client();
        queued["queue"] = json!("true");
        assert!(parse(queued).expect("accepted").queue);
    }

    #[test]
    fn our_clients_body_is_accepted_as_it_is() {
        let ours = NewExecution {
            workflow_id: "install".into(),
            deployment_id: "web".into(),
            parameters: ExecutionParameters { duration_seconds: Some(0.5), other: Map::new() },
            queue: true,
        };
        let sent = serde_json::to_value(&ours).expect("serializes");
        assert_eq!(parse(sent).expect("accepted").parameters_map(), ours.parameters_map());
    }

    #[test]
    fn fields_that_would_change_what_runs_are_refused_by_name() {
        for (field, value) in [
            ("dry_run", json!("true")),
            ("scheduled_time", json!("2030-01-01T00:00:00Z")),
            ("is_system_workflow", json!(true)),
            ("force_status", json!("terminated")),
            ("created_by", json!("mallory")),
            ("id", json!("0b6e3f1c-0000-0000-0000-000000000000")),
        ] {
            let mut body = from_cloudify_client();
            body[field] = value;
            let error = parse(body).expect_err(field);
            assert!(error.starts_with(&format!("{field}:")), "{error}");
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let mut body = from_cloudify_client();
        body["queue"] = json!("maybe");
        assert!(parse(body).expect_err("refused").contains("expected true or false"));
        let mut body = from_cloudify_client();
        body["force"] = json!(1);
        assert!(parse(body).expect_err("refused").contains("expected true or false"));
        let mut body = from_cloudify_client();
        body["dry_run"] = json!(null);
        assert!(parse(body).is_ok(), "null is no dry run");
        let mut body = from_cloudify_client();
        body["surprise"] = json!(1);
        assert!(parse(body).expect_err("refused").contains("surprise"));
    }

    #[test]
    fn other_parameters_are_kept_as_given() {
        let mut body = from_cloudify_client();
        body["parameters"] = json!({"retries": "3", "nested": {"a": [1]}});
        let new = parse(body).expect("accepted");
        assert_eq!(new.parameters_map()["retries"], "3");
        assert_eq!(new.parameters_map()["nested"], json!({"a": [1]}));
    }
}

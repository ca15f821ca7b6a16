//! `/executions`: list, get, create, cancel.

use std::sync::LazyLock;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;
use shared::api::ListResponse;
use shared::cloudify::ExecutionView;
use shared::execution::{CreateExecution, ExecutionActionRequest};
use shared::Execution;

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiPath, AppError};
use crate::gate::Bypass;
use crate::routes::query::{CloudifyQuery, NoQuery};
use crate::routes::{list_response, parse_id};
use crate::state::AppState;
use crate::store::executions::{Listing, SortKey};

/// Query parameters Cloudify's client sends that change nothing here: one
/// tenant (so "all tenants" is the same), no system workflows.
fn harmless(name: &str, _value: &str) -> bool {
    matches!(name, "_include_system_workflows" | "_all_tenants")
}

/// Executions, newest first (or as `_sort` says). Cloudify's `_include=a,b`
/// returns only those fields of each item.
#[utoipa::path(get, path = "/executions", tag = "executions",
    params(
        ("_size" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 1000)", minimum = 1, maximum = 1000),
        ("_offset" = Option<u64>, Query, description = "How many to skip (default 0)"),
        ("_sort" = Option<String>, Query, pattern = r"^-?(created_at|started_at|ended_at|id|workflow_id|deployment_id|status|created_by)$",
         description = "A sort key, `-` for descending (repeat for more keys); default: newest first"),
        ("deployment_id" = Option<String>, Query, description = "Only this deployment's executions"),
    ),
    responses((status = 200, body = ListResponse<ExecutionView>), (status = 400, body = shared::ApiError),
              (status = 401, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn list(
    State(state): State<AppState>,
    _user: CurrentUser,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListResponse<Value>>, AppError> {
    let mut query = CloudifyQuery::parse(raw.as_deref())?;
    let (size, offset) = query.take_paging()?;
    let order = query.take_sort(SortKey::parse, &SORT_KEYS)?;
    let fields = Fields::take(&mut query)?;
    let deployment_id = query.take_one("deployment_id")?;
    query.finish(harmless)?;
    let listing = Listing { size, offset, order, deployment_id };
    let (items, total) = state.reader.executions(listing).await?;
    let items = items.into_iter().map(|execution| fields.select(execution)).collect::<Result<_, _>>()?;
    Ok(Json(list_response(items, total, size, offset)))
}

/// Cloudify's `_include`: which fields of an execution to return (all if empty).
struct Fields(Vec<String>);

impl Fields {
    fn take(query: &mut CloudifyQuery) -> Result<Self, AppError> {
        let names = query.take_list("_include");
        if let Some(unknown) = names.iter().find(|name| !EXECUTION_FIELDS.contains(name)) {
            return Err(AppError::BadRequest(format!(
                "_include: executions have no field `{unknown}`; they have {}",
                EXECUTION_FIELDS.join(", ")
            )));
        }
        Ok(Self(names))
    }

    fn select(&self, execution: Execution) -> Result<Value, AppError> {
        let view = serde_json::to_value(ExecutionView::from(execution))
            .map_err(|error| AppError::Internal(format!("serializing an execution: {error}")))?;
        Ok(match view {
            Value::Object(mut object) if !self.0.is_empty() => {
                object.retain(|name, _| self.0.iter().any(|wanted| wanted == name));
                Value::Object(object)
            }
            view => view,
        })
    }
}

/// Every field of an execution as the API returns it: read from
/// [`ExecutionView`]'s own serialization, so a new field is includable at once.
static EXECUTION_FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let sample = Execution {
        id: uuid::Uuid::nil(),
        workflow_id: String::new(),
        deployment_id: String::new(),
        status: shared::ExecutionStatus::Pending,
        parameters: serde_json::Map::new(),
        created_at: shared::Timestamp::now(),
        started_at: None,
        ended_at: None,
        created_by: String::new(),
        error: String::new(),
        replica: "r1".into(),
    };
    match serde_json::to_value(ExecutionView::from(sample)) {
        Ok(Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
});

/// The sort keys, for messages.
static SORT_KEYS: LazyLock<String> =
    LazyLock::new(|| SortKey::ALL.iter().map(|key| format!("`{}`", key.name())).collect::<Vec<_>>().join(", "));

/// One execution; Cloudify's `_include=a,b` returns only those fields.
#[utoipa::path(get, path = "/executions/{id}", tag = "executions",
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses((status = 200, body = ExecutionView), (status = 400, body = shared::ApiError),
              (status = 404, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn get(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, AppError> {
    let id = parse_id("an execution", &id)?;
    let mut query = CloudifyQuery::parse(raw.as_deref())?;
    let fields = Fields::take(&mut query)?;
    query.finish(harmless)?;
    let execution = state.reader.execution(id).await?.ok_or_else(|| AppError::execution_not_found(id))?;
    Ok(Json(fields.select(execution)?))
}

/// Starts an execution — or, during maintenance, queues it (`queue: true`) or refuses it (503).
#[utoipa::path(post, path = "/executions", tag = "executions", request_body = CreateExecution,
    responses(
        (status = 201, body = ExecutionView, description = "Started, or queued during maintenance"),
        (status = 400, body = shared::ApiError, description = "`bad_request`, or `unknown_workflow`"),
        (status = 401, body = shared::ApiError), (status = 413, body = shared::ApiError),
        (status = 503, body = shared::ApiError, description = "`entering_maintenance_mode` or `maintenance_mode_active`"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Bypass(bypass): Bypass,
    _query: NoQuery,
    ApiJson(body): ApiJson<CreateExecution>,
) -> Result<(StatusCode, Json<ExecutionView>), AppError> {
    let invalid = |problem| AppError::BadRequest(format!("Invalid request body: {problem}"));
    let new = body.into_new().map_err(invalid)?;
    new.validate().map_err(invalid)?;
    let catalog = &state.catalog;
    if catalog.find(&new.workflow_id).map_err(|error| AppError::Internal(error.to_string()))?.is_none() {
        return Err(AppError::UnknownWorkflow(format!(
            "Workflow `{}` is not in the catalog; see GET /api/v3.1/workflows",
            new.workflow_id
        )));
    }
    let execution = state.engine.create_execution(new, user.username, bypass).await?;
    tracing::info!(id = %execution.id, status = %execution.status, workflow = %execution.workflow_id, "execution created");
    Ok((StatusCode::CREATED, Json(execution.into())))
}

/// Cancels (`cancel`) or force-cancels (`force-cancel`; Cloudify's `kill` is the same here) an execution.
#[utoipa::path(post, path = "/executions/{id}", tag = "executions", request_body = ExecutionActionRequest,
    params(("id" = Uuid, Path, description = "The execution's id")),
    responses((status = 200, body = ExecutionView), (status = 400, body = shared::ApiError),
              (status = 404, body = shared::ApiError),
              (status = 409, body = shared::ApiError, description = "The execution has already ended")))]
pub async fn act(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    _query: NoQuery,
    ApiJson(request): ApiJson<ExecutionActionRequest>,
) -> Result<Json<ExecutionView>, AppError> {
    let id = parse_id("an execution", &id)?;
    Ok(Json(state.engine.act(id, request).await?.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented `_sort` pattern (a literal in the OpenAPI attribute) names every key.
    #[test]
    fn the_documented_sort_pattern_names_every_sort_key() {
        let pattern = "created_at|started_at|ended_at|id|workflow_id|deployment_id|status|created_by";
        let source = include_str!("executions.rs");
        assert!(source.contains(&format!("^-?({pattern})$")));
        let mut documented: Vec<&str> = pattern.split('|').collect();
        let mut keys: Vec<&str> = SortKey::ALL.iter().map(|key| key.name()).collect();
        documented.sort_unstable();
        keys.sort_unstable();
        assert_eq!(documented, keys);
    }

    #[test]
    fn every_field_of_the_view_can_be_included() {
        for field in ["id", "status", "status_display", "tenant_name", "parameters", "error"] {
            assert!(EXECUTION_FIELDS.iter().any(|name| name == field), "{field}");
        }
    }
}

//! `GET /events?execution_id=ID`: an execution's story in Cloudify's shape,
//! so Cloudify's client follows it (`cfy executions start`, `cfy events list`).

use axum::extract::{RawQuery, State};
use axum::Json;
use shared::api::ListResponse;
use shared::cloudify::CloudifyEvent;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::routes::query::CloudifyQuery;
use crate::routes::{list_response, parse_id};
use crate::state::AppState;

/// An execution's events in Cloudify's shape, oldest first: `workflow_started`
/// once it started, each line its program wrote (`cloudify_log`), then how it ended.
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

    let want_events = types.is_empty() || types.iter().any(|kind| kind == "cloudify_event");
    let want_logs = types.is_empty() || types.iter().any(|kind| kind == "cloudify_log");
    let execution = state.reader.execution(id).await?.ok_or_else(|| AppError::execution_not_found(id))?;
    // Lines only grow: a count read before the page keeps the page whole.
    let lines = if want_logs { state.reader.output_count(id).await? } else { 0 };
    // The story in time order: the start, every line, then the end.
    let (head, tail): (Vec<_>, Vec<_>) = CloudifyEvent::lifecycle_of(&execution)
        .into_iter()
        .filter(|_| want_events)
        .partition(|event| event.event_type.as_deref() == Some("workflow_started"));
    let total = head.len() as u64 + lines + tail.len() as u64;
    let skip = offset.min(total);
    let take = (total - skip).min(u64::from(size));
    // Positions in time order, newest first if asked.
    let positions: Vec<u64> =
        if newest_first { (0..take).map(|n| total - 1 - skip - n).collect() } else { (skip..skip + take).collect() };
    let head_len = head.len() as u64;
    let in_lines = |position: &&u64| (head_len..head_len + lines).contains(*position);
    let first_line = positions.iter().filter(in_lines).min().map(|p| p - head_len);
    let last_line = positions.iter().filter(in_lines).max().map(|p| p - head_len);
    let stored = match (first_line, last_line) {
        (Some(first), Some(last)) => {
            let count = u32::try_from(last - first + 1).unwrap_or(u32::MAX);
            state.reader.output_from(id, first, count).await?
        }
        _ => Vec::new(),
    };
    let items = positions
        .iter()
        .filter_map(|&position| {
            if position < head_len {
                head.get(usize::try_from(position).ok()?).cloned()
            } else if position < head_len + lines {
                // `stored` is contiguous from `first_line`.
                let seq = position - head_len;
                let index = usize::try_from(seq - first_line?).ok()?;
                let (_, event) = stored.get(index).filter(|(number, _)| *number == seq)?;
                Some(CloudifyEvent::from_output(&execution, event))
            } else {
                tail.get(usize::try_from(position - head_len - lines).ok()?).cloned()
            }
        })
        .collect::<Vec<_>>();
    Ok(Json(list_response(items, total, size, offset)))
}

fn sort_key(name: &str) -> Option<()> {
    matches!(name, "timestamp" | "@timestamp" | "reported_timestamp").then_some(())
}

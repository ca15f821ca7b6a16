//! An execution's output (SPEC §9): `GET /executions/{id}/events` pages the
//! stored lines, oldest first; `GET /executions/{id}/events/stream` sends
//! them as Server-Sent Events, then each new line as it is stored, then
//! `end` once the execution has ended and every line was sent.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::Stream;
use shared::api::ListResponse;
use shared::execution::ExecutionEvent;
use shared::Execution;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use uuid::Uuid;

use crate::auth::{CurrentUser, StreamUser};
use crate::error::{ApiPath, AppError};
use crate::events::{stream_end, KEEP_ALIVE};
use crate::routes::query::CloudifyQuery;
use crate::routes::{list_response, parse_id};
use crate::state::AppState;
use crate::store::StoreError;

/// The data of the output stream's events: a `line`, then one `end`.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum StreamEvent<'a> {
    /// A line the program wrote (`id:` its number).
    Line(&'a ExecutionEvent),
    /// The execution, once it has ended and every line was sent.
    End(&'a Execution),
}

/// One message of the output stream as sent (OpenAPI 3.2's item schema of
/// `text/event-stream`): its `event` name, its `id`, and its `data`, JSON text.
pub struct OutputStreamMessage;

impl utoipa::PartialSchema for OutputStreamMessage {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let text = |description: &str| ObjectBuilder::new().schema_type(Type::String).description(Some(description));
        ObjectBuilder::new()
            .property("event", text("`line` or `end`").enum_values(Some(["line", "end"])))
            .property("id", text("For a `line`: its number, from 0"))
            .property("data", text("JSON: an ExecutionEvent for a `line`, the Execution for the `end`"))
            .required("event")
            .required("data")
            .into()
    }
}

impl utoipa::ToSchema for OutputStreamMessage {}

/// Lines read from the store at a time while catching up.
const CATCH_UP: u32 = 500;

/// The execution's output, oldest first.
#[utoipa::path(get, path = "/executions/{id}/events", tag = "executions",
    params(
        ("id" = Uuid, Path, description = "The execution's id"),
        ("_size" = Option<u32>, Query, description = "Page size, 1 to 1000 (default 1000)", minimum = 1, maximum = 1000),
        ("_offset" = Option<u64>, Query, description = "How many lines to skip (default 0)"),
    ),
    responses((status = 200, body = ListResponse<ExecutionEvent>), (status = 400, body = shared::ApiError),
              (status = 404, body = shared::ApiError), (status = 503, body = shared::ApiError)))]
pub async fn page(
    State(state): State<AppState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListResponse<ExecutionEvent>>, AppError> {
    let id = parse_id("an execution", &id)?;
    let mut query = CloudifyQuery::parse(raw.as_deref())?;
    let (size, offset) = query.take_paging()?;
    query.finish(|_, _| false)?;
    let (events, total) =
        state.reader.output_page(id, offset, size).await?.ok_or_else(|| AppError::execution_not_found(id))?;
    Ok(Json(list_response(events, total, size, offset)))
}

/// The execution's output live: the stored lines from `from` (or after
/// `Last-Event-ID`), then each line as it is stored; `end` when done.
#[utoipa::path(get, path = "/executions/{id}/events/stream", tag = "executions",
    params(
        ("id" = Uuid, Path, description = "The execution's id"),
        ("from" = Option<u64>, Query, description = "The number of the first line to send (default 0)"),
        ("token" = Option<String>, Query, description = "A token, for clients that cannot send headers (browser EventSource)"),
    ),
    responses(
        (status = 200, description = "`line` events (data: the line, `id:` its number), then one `end` event (data: the execution)",
         content_type = "text/event-stream", body = OutputStreamMessage),
        (status = 400, body = shared::ApiError), (status = 404, body = shared::ApiError),
    ),
    security(("basic" = []), ("token" = []), ("token_query" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    StreamUser(user): StreamUser,
    ApiPath(id): ApiPath<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let id = parse_id("an execution", &id)?;
    let mut query = CloudifyQuery::parse(raw.as_deref())?;
    let from = match query.take_one("from")? {
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| AppError::BadRequest(format!("from: must be a line number, got `{text}`")))?,
        // A reconnecting EventSource resumes after the last line it had.
        None => headers
            .get("last-event-id")
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok())
            .map_or(0, |last| last.saturating_add(1)),
    };
    query.finish(|name, _| name == "token")?;
    // Subscribe before the first read, so no line or end falls between.
    let lines = state.engine.output().subscribe();
    let changes = state.engine.subscribe_executions();
    let execution = state.reader.execution(id).await?.ok_or_else(|| AppError::execution_not_found(id))?;
    let (sender, receiver) = mpsc::channel(64);
    let follow = Follow { state: state.clone(), id, next: from, ended: execution.status.is_end(), sender };
    let end = stream_end(&state, user);
    tokio::spawn(async move {
        tokio::select! {
            () = follow.run(lines, changes) => {}
            () = end => {}
        }
    });
    Ok(Sse::new(ReceiverStream::new(receiver)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// One client's view of one execution's output.
struct Follow {
    state: AppState,
    id: Uuid,
    /// The number of the next line to send.
    next: u64,
    ended: bool,
    sender: mpsc::Sender<Result<Event, Infallible>>,
}

impl Follow {
    async fn run(
        mut self,
        mut lines: broadcast::Receiver<Arc<crate::output::OutputBatch>>,
        mut changes: broadcast::Receiver<Arc<Execution>>,
    ) {
        // The store has everything announced so far: catch up from it at the
        // start, after a gap or a lag, and before the end.
        let mut behind = true;
        loop {
            if (behind || self.ended) && self.catch_up().await.is_err() {
                return;
            }
            behind = false;
            if self.ended {
                if let Ok(Some(execution)) = self.state.reader.execution(self.id).await {
                    if let Ok(event) = Event::default().event("end").json_data(StreamEvent::End(&execution)) {
                        let _ = self.sender.send(Ok(event)).await;
                    }
                }
                return;
            }
            tokio::select! {
                batch = lines.recv() => match batch {
                    Ok(batch) if batch.execution_id == self.id => {
                        // In order and without a gap: send it; otherwise the catch-up does.
                        if batch.first > self.next {
                            behind = true;
                        } else if self.send(&batch.events, batch.first).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => behind = true,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                change = changes.recv() => match change {
                    Ok(execution) if execution.id == self.id => self.ended = execution.status.is_end(),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let id = self.id;
                        if let Ok(Some(execution)) = self.state.reader.execution(id).await {
                            self.ended = execution.status.is_end();
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                () = self.sender.closed() => return,
            }
        }
    }

    /// Sends the stored lines from `next` on.
    async fn catch_up(&mut self) -> Result<(), Gone> {
        loop {
            let (id, from) = (self.id, self.next);
            let stored = self.state.reader.output_from(id, from, CATCH_UP).await;
            let stored = stored.map_err(|error: StoreError| {
                tracing::warn!(%id, %error, "could not read an execution's output for a stream");
                Gone
            })?;
            let Some(&(first, _)) = stored.first() else { return Ok(()) };
            let count = stored.len();
            let events: Vec<ExecutionEvent> = stored.into_iter().map(|(_, event)| event).collect();
            self.send(&events, first).await?;
            if count < CATCH_UP as usize {
                return Ok(());
            }
        }
    }

    /// Sends `events` numbered from `first`, skipping those already sent.
    async fn send(&mut self, events: &[ExecutionEvent], first: u64) -> Result<(), Gone> {
        for (offset, event) in events.iter().enumerate() {
            let seq = first + offset as u64;
            if seq < self.next {
                continue;
            }
            let Ok(message) = Event::default().event("line").id(seq.to_string()).json_data(StreamEvent::Line(event))
            else {
                continue;
            };
            self.sender.send(Ok(message)).await.map_err(|_| Gone)?;
            self.next = seq + 1;
        }
        Ok(())
    }
}

/// The client went away, or the store failed: the stream ends.
struct Gone;

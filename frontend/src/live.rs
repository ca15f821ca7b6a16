//! The panel's one ordered live store, fed by `GET /maintenance/events`
//! (Server-Sent Events) and by the API's answers:
//! - the maintenance status with its epoch (the number of the change that made
//!   it: the SSE `id:`, the `X-Maintenance-Epoch` header); a status is taken
//!   only if its epoch is greater than the held one, so an HTTP answer that
//!   arrives late never undoes a newer event;
//! - the executions, one row per id; an event or a list answer never moves an
//!   execution back in its life cycle, so a list fetched before an event
//!   cannot overwrite it.
//!
//! The browser's EventSource retries dropped connections by itself; lists are
//! reloaded on every `open` (changes may have been missed meanwhile). When it
//! gives up (the stream closed), this reconnects after a pause — unless the
//! session is no longer valid, which signs the user out with the reason.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Execution, ExecutionStatus, MaintenanceStatus};
use web_sys::MessageEvent;

use crate::api::{self, Epoched};
use crate::stream::{listener, Stream};

/// How long to wait before opening a new stream after one closed.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(2);

/// The state of the live connection, shown in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// Opening the first stream.
    Connecting,
    /// Receiving updates.
    Live,
    /// Lost; trying again.
    Reconnecting,
}

impl Connection {
    /// For the page and the tests.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Live => "live",
            Self::Reconnecting => "reconnecting",
        }
    }
}

/// What the pages read and feed: the ordered status, the execution rows, the connection.
#[derive(Clone, Copy)]
pub struct Live {
    status: RwSignal<Option<Epoched>>,
    executions: RwSignal<Vec<Execution>>,
    /// Whether updates are flowing.
    pub connection: RwSignal<Connection>,
    /// Bumped on every stream `open` and when the stream says changes were
    /// missed: lists must be reloaded.
    pub reloads: Trigger,
}

impl Live {
    fn new() -> Self {
        Self {
            status: RwSignal::new(None),
            executions: RwSignal::new(Vec::new()),
            connection: RwSignal::new(Connection::Connecting),
            reloads: Trigger::new(),
        }
    }

    /// The newest maintenance status (none until the first arrives); tracked.
    pub fn status(&self) -> Option<MaintenanceStatus> {
        self.status.with(|held| held.as_ref().map(|held| held.status.clone()))
    }

    /// The epoch of the newest status (none until one arrives, or from a
    /// manager that sends none); tracked.
    pub fn epoch(&self) -> Option<u64> {
        self.status.with(|held| held.as_ref().and_then(|held| held.epoch))
    }

    /// Reads the newest status in place; tracked.
    pub fn with_status<T>(&self, read: impl FnOnce(Option<&MaintenanceStatus>) -> T) -> T {
        self.status.with(|held| read(held.as_ref().map(|held| &held.status)))
    }

    /// Offers a status (an event or an API answer): taken only if newer than
    /// the held one. Safe to call after the page that asked is gone.
    pub fn offer_status(&self, offered: Epoched) {
        self.status.try_maybe_update(|held| {
            let newer = is_newer(held.as_ref().map(|held| held.epoch), offered.epoch);
            if newer {
                *held = Some(offered);
            }
            (newer, ())
        });
    }

    /// The execution rows, newest first; tracked.
    pub fn executions(&self) -> Vec<Execution> {
        self.executions.get()
    }

    /// Reads the execution rows in place; tracked.
    pub fn with_executions<T>(&self, read: impl FnOnce(&Vec<Execution>) -> T) -> T {
        self.executions.with(read)
    }

    /// One execution as held (none if not held); tracked.
    pub fn execution(&self, id: uuid::Uuid) -> Option<Execution> {
        self.executions.with(|rows| rows.iter().find(|e| e.id == id).cloned())
    }

    /// One execution's current status (none if not held); tracked.
    pub fn execution_status(&self, id: uuid::Uuid) -> Option<(ExecutionStatus, String)> {
        self.executions.with(|rows| rows.iter().find(|e| e.id == id).map(|e| (e.status, e.error.clone())))
    }

    /// Merges executions (an event, or a list answer) into the rows.
    pub fn offer_executions(&self, offered: Vec<Execution>) {
        self.executions.try_update(|rows| merge_executions(rows, offered));
    }
}

/// Whether a status with epoch `offered` replaces one held with epoch `held`.
/// A manager that sends no epochs (older than this panel) gets the old
/// behaviour: the latest arrival wins; once epochs are held, an answer without
/// one cannot prove it is newer.
pub fn is_newer(held: Option<Option<u64>>, offered: Option<u64>) -> bool {
    match (held, offered) {
        (None | Some(None), _) => true,
        (Some(Some(held)), Some(offered)) => offered > held,
        (Some(Some(_)), None) => false,
    }
}

/// How far an execution is in its life cycle, which only moves forward:
/// queued/pending → started → cancelling → force_cancelling → an end state.
pub fn progress(status: ExecutionStatus) -> u8 {
    match status {
        ExecutionStatus::Queued => 0,
        ExecutionStatus::Pending => 1,
        ExecutionStatus::Started => 2,
        ExecutionStatus::Cancelling => 3,
        ExecutionStatus::ForceCancelling => 4,
        ExecutionStatus::Terminated | ExecutionStatus::Failed | ExecutionStatus::Cancelled => 5,
    }
}

/// Merges `offered` into `rows` by id, keeping for each id the execution
/// furthest in its life cycle (the held one on a tie). Rows stay newest
/// first: a new one goes before the first older row (after those created in
/// the same millisecond, so a list keeps its order). No sort: it would add
/// kilobytes of wasm for what one scan does.
pub fn merge_executions(rows: &mut Vec<Execution>, offered: Vec<Execution>) {
    for execution in offered {
        match rows.iter_mut().find(|held| held.id == execution.id) {
            Some(held) if progress(execution.status) > progress(held.status) => *held = execution,
            Some(_) => {}
            None => {
                let at = rows.iter().position(|row| row.created_at < execution.created_at).unwrap_or(rows.len());
                rows.insert(at, execution);
            }
        }
    }
}

/// Creates the live store and keeps a stream open for `token` while the
/// calling component lives. `on_signed_out` gets the reason if the token stops working.
pub fn connect(token: String, on_signed_out: Callback<String>) -> Live {
    let live = Live::new();
    let stream = StoredValue::new_local(None::<Stream>);
    open(token, live, stream, on_signed_out);
    on_cleanup(move || {
        stream.try_set_value(None);
    });
    live
}

fn open(token: String, live: Live, stream: StoredValue<Option<Stream>, LocalStorage>, on_signed_out: Callback<String>) {
    let mut url = shared::api::path("/maintenance/events?token=");
    url.push_str(&token);
    let on_status = listener(move |event: MessageEvent| {
        if let Some(status) = event.data().as_string().and_then(|data| serde_json::from_str(&data).ok()) {
            // The event's id is the change's epoch.
            let epoch = event.last_event_id().trim().parse().ok();
            live.offer_status(Epoched { epoch, status });
        }
        live.connection.try_set(Connection::Live);
    });
    let on_execution = listener(move |event: MessageEvent| {
        if let Some(execution) = event.data().as_string().and_then(|data| serde_json::from_str(&data).ok()) {
            live.offer_executions(vec![execution]);
        }
    });
    let on_lagged = listener(move |_: MessageEvent| {
        live.reloads.notify();
    });
    // Every open, also the browser's own reconnects: changes may have been
    // missed while disconnected (e.g. executions failed at a manager's start-up).
    let on_open = listener(move |_: MessageEvent| {
        live.connection.try_set(Connection::Live);
        live.reloads.notify();
    });
    let reconnect_token = token.clone();
    let on_error = listener(move |_: MessageEvent| {
        live.connection.try_set(Connection::Reconnecting);
        if !stream.try_with_value(|s| s.as_ref().is_some_and(Stream::is_closed)).unwrap_or(false) {
            return; // the browser is retrying by itself
        }
        let token = reconnect_token.clone();
        set_timeout(move || spawn_local(reconnect(token, live, stream, on_signed_out)), RECONNECT_AFTER);
    });
    let opened = Stream::open(
        &url,
        vec![
            ("status", on_status),
            ("execution", on_execution),
            ("executions-lagged", on_lagged),
            ("open", on_open),
            ("error", on_error),
        ],
    );
    if opened.is_none() {
        live.connection.try_set(Connection::Reconnecting);
    }
    stream.try_set_value(opened);
}

/// Opens a new stream if the token still works; signs out if it does not.
/// Does nothing once the signed-in frame is gone.
async fn reconnect(
    token: String,
    live: Live,
    stream: StoredValue<Option<Stream>, LocalStorage>,
    on_signed_out: Callback<String>,
) {
    match api::maintenance_status(&token).await {
        Err(error) if error.needs_sign_in() => {
            on_signed_out.try_run(error.to_string());
        }
        answer => {
            if let Ok(status) = answer {
                live.offer_status(status);
            }
            if stream.try_update_value(|s| *s = None).is_some() {
                open(token, live, stream, on_signed_out);
            }
        }
    }
}

/// An RFC 3339 time in the viewer's local time zone and format.
pub fn local_time(at: &shared::Timestamp) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&at.to_string()));
    date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(id: u128, status: ExecutionStatus, created_at: &str) -> Execution {
        Execution {
            id: uuid::Uuid::from_u128(id),
            workflow_id: "install".into(),
            deployment_id: "web".into(),
            status,
            parameters: Default::default(),
            created_at: created_at.parse().expect("timestamp"),
            started_at: None,
            ended_at: None,
            created_by: "admin".into(),
            error: String::new(),
            replica: String::new(),
        }
    }

    #[test]
    fn a_status_is_taken_only_if_its_epoch_is_newer() {
        assert!(is_newer(None, Some(3)), "nothing held yet");
        assert!(is_newer(None, None));
        assert!(is_newer(Some(Some(3)), Some(4)));
        assert!(!is_newer(Some(Some(4)), Some(3)), "a late answer never undoes a newer event");
        assert!(!is_newer(Some(Some(4)), Some(4)), "the same change again");
        assert!(!is_newer(Some(Some(4)), None), "an answer without an epoch cannot prove it is newer");
        assert!(is_newer(Some(None), None), "a manager without epochs: the latest arrival wins");
    }

    #[test]
    fn progress_only_moves_forward_through_the_life_cycle() {
        use ExecutionStatus::*;
        let order = [Queued, Pending, Started, Cancelling, ForceCancelling, Cancelled];
        assert!(order.windows(2).all(|pair| progress(pair[0]) < progress(pair[1])));
        assert!(ExecutionStatus::ALL.iter().filter(|s| s.is_end()).all(|s| progress(*s) == 5));
    }

    #[test]
    fn a_list_answer_does_not_move_an_execution_back() {
        let t1 = "2026-11-30T10:00:00.000Z";
        let t2 = "2026-11-30T10:00:01.000Z";
        // An event said `cancelled` while the list (read before it) was in flight.
        let mut rows = vec![execution(1, ExecutionStatus::Cancelled, t1)];
        let list = vec![execution(2, ExecutionStatus::Started, t2), execution(1, ExecutionStatus::Started, t1)];
        merge_executions(&mut rows, list);
        let shown: Vec<_> = rows.iter().map(|e| (e.id.as_u128(), e.status)).collect();
        assert_eq!(shown, [(2, ExecutionStatus::Started), (1, ExecutionStatus::Cancelled)], "newest first");
    }

    #[test]
    fn a_list_answer_moves_an_execution_forward() {
        // Failed at a manager's start-up: no event, only the reloaded list says so.
        let t1 = "2026-11-30T10:00:00.000Z";
        let mut rows = vec![execution(1, ExecutionStatus::Started, t1)];
        merge_executions(&mut rows, vec![execution(1, ExecutionStatus::Failed, t1)]);
        assert_eq!(rows.len(), 1, "one row per id");
        assert_eq!(rows[0].status, ExecutionStatus::Failed);
    }

    #[test]
    fn rows_stay_newest_first_and_a_list_keeps_its_order() {
        let (t1, t2, t3) = ("2026-11-30T10:00:00.000Z", "2026-11-30T10:00:01.000Z", "2026-11-30T10:00:02.000Z");
        let mut rows = vec![execution(3, ExecutionStatus::Started, t3), execution(1, ExecutionStatus::Started, t1)];
        let list = vec![
            execution(4, ExecutionStatus::Started, t2),
            execution(5, ExecutionStatus::Started, t2),
            execution(1, ExecutionStatus::Started, t1),
        ];
        merge_executions(&mut rows, list);
        let ids: Vec<_> = rows.iter().map(|e| e.id.as_u128()).collect();
        assert_eq!(ids, [3, 4, 5, 1]);
    }

    #[test]
    fn a_new_execution_event_becomes_the_top_row() {
        let t1 = "2026-11-30T10:00:00.000Z";
        let t2 = "2026-11-30T10:00:01.000Z";
        let mut rows = vec![execution(1, ExecutionStatus::Started, t1)];
        merge_executions(&mut rows, vec![execution(2, ExecutionStatus::Pending, t2)]);
        assert_eq!(rows[0].id.as_u128(), 2);
    }
}

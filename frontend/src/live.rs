//! Live updates from `GET /maintenance/events` (Server-Sent Events). The
//! browser's EventSource retries dropped connections by itself; when it gives
//! up (the stream closed), this reconnects after a pause — unless the session
//! is no longer valid, which signs the user out with the reason.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{Execution, MaintenanceStatus};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

use crate::api;

/// How long to wait before opening a new stream after one closed.
const RECONNECT_AFTER: Duration = Duration::from_secs(2);

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

/// What the pages read: the status, the connection, execution changes.
#[derive(Clone, Copy)]
pub struct Live {
    /// The latest maintenance status (none until the first event).
    pub status: RwSignal<Option<MaintenanceStatus>>,
    /// Whether updates are flowing.
    pub connection: RwSignal<Connection>,
    /// The latest execution change.
    pub execution: RwSignal<Option<Execution>>,
    /// Bumped when lists must be reloaded (after a reconnect, or missed changes).
    pub reloads: RwSignal<u32>,
}

/// An open stream and the callbacks it needs alive.
struct Stream {
    source: EventSource,
    _callbacks: Vec<Closure<dyn FnMut(MessageEvent)>>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// Creates the live state and keeps a stream open for `token` while the
/// calling component lives. `on_signed_out` gets the reason if the token stops working.
pub fn connect(token: String, on_signed_out: Callback<String>) -> Live {
    let live = Live {
        status: RwSignal::new(None),
        connection: RwSignal::new(Connection::Connecting),
        execution: RwSignal::new(None),
        reloads: RwSignal::new(0),
    };
    let stream = StoredValue::new_local(None::<Stream>);
    open(token, live, stream, on_signed_out);
    on_cleanup(move || {
        stream.try_set_value(None);
    });
    live
}

fn open(token: String, live: Live, stream: StoredValue<Option<Stream>, LocalStorage>, on_signed_out: Callback<String>) {
    let url = format!("{}?token={token}", shared::api::path("/maintenance/events"));
    let Ok(source) = EventSource::new(&url) else {
        live.connection.try_set(Connection::Reconnecting);
        return;
    };
    let first = live.connection.try_get_untracked() == Some(Connection::Connecting);
    let on_status = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(status) = event.data().as_string().and_then(|data| serde_json::from_str(&data).ok()) {
            live.status.try_set(Some(status));
        }
        live.connection.try_set(Connection::Live);
    });
    let on_execution = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        if let Some(execution) = event.data().as_string().and_then(|data| serde_json::from_str(&data).ok()) {
            live.execution.try_set(Some(execution));
        }
    });
    let on_lagged = Closure::<dyn FnMut(MessageEvent)>::new(move |_: MessageEvent| {
        live.reloads.try_update(|n| *n += 1);
    });
    let on_open = Closure::<dyn FnMut(MessageEvent)>::new(move |_: MessageEvent| {
        live.connection.try_set(Connection::Live);
        if !first {
            // Changes may have been missed while disconnected.
            live.reloads.try_update(|n| *n += 1);
        }
    });
    let reconnect_token = token.clone();
    let on_error = Closure::<dyn FnMut(MessageEvent)>::new(move |_: MessageEvent| {
        live.connection.try_set(Connection::Reconnecting);
        let closed = stream
            .try_with_value(|s| s.as_ref().is_some_and(|s| s.source.ready_state() == EventSource::CLOSED))
            .unwrap_or(false);
        if !closed {
            return; // the browser is retrying by itself
        }
        let token = reconnect_token.clone();
        set_timeout(
            move || {
                spawn_local(async move {
                    match api::maintenance_status(&token).await {
                        Err(error) if error.needs_sign_in() => {
                            on_signed_out.run(error.to_string());
                        }
                        _ => {
                            if stream.try_update_value(|s| *s = None).is_some() {
                                open(token, live, stream, on_signed_out);
                            }
                        }
                    }
                });
            },
            RECONNECT_AFTER,
        );
    });
    let listen = |name: &str, callback: &Closure<dyn FnMut(MessageEvent)>| {
        let _ = source.add_event_listener_with_callback(name, callback.as_ref().unchecked_ref());
    };
    listen("status", &on_status);
    listen("execution", &on_execution);
    listen("executions-lagged", &on_lagged);
    listen("open", &on_open);
    listen("error", &on_error);
    stream.try_set_value(Some(Stream {
        source,
        _callbacks: vec![on_status, on_execution, on_lagged, on_open, on_error],
    }));
}

/// An RFC 3339 time in the viewer's local time zone and format.
pub fn local_time(at: &shared::Timestamp) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&at.to_string()));
    date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED).into()
}

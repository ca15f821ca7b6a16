//! One execution's output, live: `GET /executions/{id}/events/stream`
//! replays the stored lines, sends new ones as the program writes them, then
//! one `end` (the ended execution), and closes.
//!
//! The execution is read first (`GET /executions/{id}`, into the live store):
//! a page opened by its address may not hold it yet, and a failure can be
//! said in words, which an EventSource cannot do (it hides the HTTP status,
//! e.g. the gate's 503 while maintenance mode is on). On a failure the page
//! says why and tries again after a pause; an execution that does not exist
//! is not asked for again.
//!
//! Each line's `id:` is its number. A line is shown once, in order: the log
//! holds lines 0 to n-1, so one numbered below n is skipped (a reconnect may
//! send it again) and a new stream starts from n. The
//! browser's EventSource resumes a dropped stream by itself (Last-Event-ID);
//! when it gives up before the `end`, this connects again from the next line
//! after a pause. The `end` goes to the live store like any execution change.
//!
//! Lines are appended to the page's log element as they come, not rendered
//! from a list signal: an execution keeps up to 10 000 lines, and re-rendering
//! (or diffing) the whole list for each of them would take seconds. The log
//! follows the newest line while the reader is at its bottom, checked and
//! scrolled once per animation frame.

use std::cell::Cell;
use std::rc::Rc;

use leptos::prelude::*;
use shared::execution::{ExecutionEvent, OutputStream};
use shared::ErrorCode;
use uuid::Uuid;
use web_sys::{Element, MessageEvent};

use crate::api::{self, FetchError};
use crate::live::{Live, RECONNECT_AFTER};
use crate::session::Session;
use crate::stream::{listener, Stream};
use crate::task::Task;

/// One execution's output stream: where it got to, and the open stream.
#[derive(Clone, Copy)]
pub struct Follow {
    id: Uuid,
    session: StoredValue<Session>,
    live: Live,
    /// Reading the execution: its error, if the last try failed.
    load: Task,
    stream: StoredValue<Option<Stream>, LocalStorage>,
}

/// The id of the element the lines go to (a lookup by id costs the panel
/// less than a `NodeRef`, whose code is per element type).
pub const LOG_ID: &str = "output";

impl Follow {
    /// Execution `id`'s output, for the element [`LOG_ID`], while the calling
    /// component lives; nothing is read before [`Follow::connect`].
    pub fn new(id: Uuid, session: Session, live: Live) -> Self {
        let follow = Self {
            id,
            session: StoredValue::new(session),
            live,
            load: Task::new(),
            stream: StoredValue::new_local(None),
        };
        on_cleanup(move || {
            follow.stream.try_set_value(None);
        });
        follow
    }

    /// Reads the execution, then opens its output from the next line. Does
    /// nothing once the component is gone.
    pub fn connect(self) {
        let Some(session) = self.session.try_get_value() else { return };
        self.load.run(async move {
            match api::execution(&session.token, self.id).await {
                Ok(execution) => {
                    self.live.offer_executions(vec![execution]);
                    open(self);
                    Ok(String::new())
                }
                Err(error) => {
                    if !matches!(&error, FetchError::Api(e) if e.error_code == ErrorCode::NotFound) {
                        set_timeout(move || self.connect(), RECONNECT_AFTER);
                    }
                    Err(session.explain(&error))
                }
            }
        });
    }

    /// Why the execution could not be read, if the last try failed; tracked.
    pub fn error(&self) -> Option<String> {
        self.load.error()
    }
}

fn open(follow: Follow) {
    let Some(token) = follow.session.try_with_value(|s| s.token.clone()) else { return };
    let next = shown();
    let url = shared::api::path(&format!("/executions/{}/events/stream?from={next}&token={token}", follow.id));
    // Some(whether the reader was at the bottom) while a frame is due: the
    // layout is read once per frame, not once per line (10 000 lines that
    // each forced a layout took the browser most of a minute).
    let frame = Rc::new(Cell::new(None::<bool>));
    let on_line = listener(move |event: MessageEvent| {
        let Ok(number) = event.last_event_id().trim().parse::<u64>() else { return };
        let Some(line) = event.data().as_string().and_then(|data| serde_json::from_str(&data).ok()) else { return };
        let Some(log) = document().get_element_by_id(LOG_ID).filter(|log| number >= log.child_element_count().into())
        else {
            return;
        };
        if frame.get().is_none() {
            frame.set(Some(log.scroll_height() - log.scroll_top() - log.client_height() < 8));
            let frame = frame.clone();
            request_animation_frame(move || {
                if frame.take() == Some(true) {
                    if let Some(log) = document().get_element_by_id(LOG_ID) {
                        log.set_scroll_top(log.scroll_height());
                    }
                }
            });
        }
        append(&log, line);
    });
    let on_end = listener(move |event: MessageEvent| {
        // Closed here, not dropped: this callback belongs to the stream.
        follow.stream.try_with_value(|stream| stream.as_ref().map(Stream::close));
        if let Some(execution) = event.data().as_string().and_then(|data| serde_json::from_str(&data).ok()) {
            follow.live.offer_executions(vec![execution]);
        }
    });
    // A stream the browser gave up on: connect again (which says why it
    // cannot, if it cannot). Not dropped here: this callback belongs to it.
    let on_error = listener(move |_: MessageEvent| {
        if follow.stream.try_with_value(|stream| stream.as_ref().is_some_and(Stream::is_closed)) == Some(true) {
            set_timeout(move || follow.connect(), RECONNECT_AFTER);
        }
    });
    let opened = Stream::open(&url, vec![("line", on_line), ("end", on_end), ("error", on_error)]);
    follow.stream.try_set_value(opened);
}

/// How many lines the log holds: the number of the next one.
fn shown() -> u64 {
    document().get_element_by_id(LOG_ID).map_or(0, |log| log.child_element_count().into())
}

/// Appends one line to the log. Lines that are not the program's standard
/// output say where they came from in words (`stderr`, `manager`), not by
/// colour alone.
fn append(log: &Element, event: ExecutionEvent) {
    let document = document();
    let Ok(row) = document.create_element("div") else { return };
    let stream = event.stream.as_str();
    row.set_class_name(stream);
    if event.stream != OutputStream::Stdout {
        if let Ok(tag) = document.create_element("span") {
            tag.set_class_name("tag");
            tag.set_text_content(Some(stream));
            let _ = row.append_child(&tag);
        }
    }
    let _ = row.append_child(&document.create_text_node(&event.line));
    let _ = log.append_child(&row);
}

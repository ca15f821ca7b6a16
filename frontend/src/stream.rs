//! An open Server-Sent Events stream (the browser's EventSource) with the
//! callbacks it calls, kept alive together and closed together.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{EventSource, MessageEvent};

/// A callback for one event name.
pub type Listener = Closure<dyn FnMut(MessageEvent)>;

/// An open stream; dropping it closes it. Never drop it from inside one of
/// its own callbacks (that would free the running closure): call
/// [`Stream::close`] there.
pub struct Stream {
    source: EventSource,
    _listeners: Vec<Listener>,
}

impl Stream {
    /// Opens `url`, calling each listener for its event name; `None` if the browser refuses the URL.
    pub fn open(url: &str, listeners: Vec<(&str, Listener)>) -> Option<Self> {
        let source = EventSource::new(url).ok()?;
        let mut kept = Vec::new();
        for (name, listener) in listeners {
            let _ = source.add_event_listener_with_callback(name, listener.as_ref().unchecked_ref());
            kept.push(listener);
        }
        Some(Self { source, _listeners: kept })
    }

    /// Whether the browser gave up on it (it retries a dropped connection by itself otherwise).
    pub fn is_closed(&self) -> bool {
        self.source.ready_state() == EventSource::CLOSED
    }

    /// Stops it; the browser does not reconnect.
    pub fn close(&self) {
        self.source.close();
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.close();
    }
}

/// A listener from a closure.
pub fn listener(callback: impl FnMut(MessageEvent) + 'static) -> Listener {
    Closure::new(callback)
}

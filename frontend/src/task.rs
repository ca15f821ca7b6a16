//! Work started by a click: whether it is under way, and how its last run
//! ended (`Ok` with a message to show, possibly empty, or `Err` with the
//! error in words). Leptos's `Action` does the same with machinery (and one
//! copy per input and output type) that cost the panel about 10 KB of gzipped
//! wasm; this keeps only what the panel needs. Both signals are written with
//! `try_` accessors, so an answer that arrives after its component is gone is
//! dropped instead of panicking.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use leptos::prelude::*;
use leptos::task::spawn_local;

/// How a run ended: a message for the page (may be empty), or the error in words.
pub type Outcome = Result<String, String>;

/// A task's state: pending, and the outcome of the last run.
#[derive(Clone, Copy)]
pub struct Task {
    pending: RwSignal<bool>,
    outcome: RwSignal<Option<Outcome>>,
}

impl Task {
    /// A task that has not run yet.
    pub fn new() -> Self {
        Self { pending: RwSignal::new(false), outcome: RwSignal::new(None) }
    }

    /// Whether a run is under way; tracked.
    pub fn pending(&self) -> bool {
        self.pending.get()
    }

    /// How the last run that ended ended; tracked.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome.get()
    }

    /// The error of the last run, if it failed; tracked.
    pub fn error(&self) -> Option<String> {
        self.outcome().and_then(Result::err)
    }

    /// Runs `work`; how it ends becomes the outcome.
    pub fn run(&self, work: impl Future<Output = Outcome> + 'static) {
        self.run_boxed(Box::pin(work));
    }

    // One copy of this, not one per call site.
    fn run_boxed(&self, work: Pin<Box<dyn Future<Output = Outcome>>>) {
        let (pending, outcome) = (self.pending, self.outcome);
        pending.set(true);
        spawn_local(async move {
            let ended = work.await;
            outcome.try_set(Some(ended));
            pending.try_set(false);
        });
    }
}

/// Numbers the reads of a list, so that only the answer to the last one asked
/// for is taken: an answer overtaken by a later read is dropped.
#[derive(Clone, Default)]
pub struct Latest(Rc<Cell<u32>>);

impl Latest {
    /// The number of a new read.
    pub fn ask(&self) -> u32 {
        let number = self.0.get().wrapping_add(1);
        self.0.set(number);
        number
    }

    /// Whether read `number` is still the last one asked for.
    pub fn is_last(&self, number: u32) -> bool {
        self.0.get() == number
    }
}

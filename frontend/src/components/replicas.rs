//! "N of M replicas enforcing" (SPEC §8): how many of the replicas the
//! manager lists have applied the change the panel shows (their epoch is at
//! least the shown status's), naming those that have not. The list is read a
//! moment after each change the panel shows (a replica renews its row right
//! after it applies one) and every few seconds while the page is open.
//! Answers are taken in the order they were asked for; a failed read hides
//! the line rather than show a count that may be old.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::api::Replica;

use crate::api;
use crate::live::Live;
use crate::session::Session;

/// How long after a change to read the list: the replicas renew their rows meanwhile.
const AFTER_A_CHANGE: Duration = Duration::from_millis(300);
/// How often the list is read otherwise.
const EVERY: Duration = Duration::from_secs(5);

/// The replicas as last read, kept fresh while the component that watches them lives.
#[derive(Clone)]
pub struct Replicas {
    /// None before the first answer and after a failed read.
    list: RwSignal<Option<Vec<Replica>>>,
    /// The number of the last read asked for, and of the last answer taken
    /// (atomics only because views need `Send`; the panel has one thread).
    reads: Arc<[AtomicU32; 2]>,
    token: Arc<str>,
}

impl Replicas {
    /// Reads the list after each change of the shown status and every few
    /// seconds, until the calling component is gone.
    pub fn watch() -> Self {
        let live = expect_context::<Live>();
        let token = expect_context::<Session>().token.into();
        let replicas = Self { list: RwSignal::new(None), reads: Arc::default(), token };
        let after_a_change = replicas.clone();
        Effect::new(move |_| {
            live.epoch(); // tracked: runs again for each change the panel shows
            let replicas = after_a_change.clone();
            set_timeout(move || replicas.read(), AFTER_A_CHANGE);
        });
        let every = replicas.clone();
        if let Ok(interval) = set_interval_with_handle(move || every.read(), EVERY) {
            on_cleanup(move || interval.clear());
        }
        replicas
    }

    /// Reads the list once; does nothing once the component is gone.
    fn read(&self) {
        if self.list.is_disposed() {
            return;
        }
        let number = self.reads[0].fetch_add(1, Ordering::Relaxed) + 1;
        let (list, reads, token) = (self.list, self.reads.clone(), self.token.clone());
        spawn_local(async move {
            // A 401 is the event stream's to act on (it signs out); here it only hides the line.
            let answer = api::replicas(&token).await.ok();
            // An answer overtaken by a later one is dropped.
            if reads[1].fetch_max(number, Ordering::Relaxed) < number {
                list.try_set(answer);
            }
        });
    }

    /// The status card's line, for a `<dl>`: nothing until the list is read.
    pub fn line(&self) -> impl IntoView {
        let live = expect_context::<Live>();
        let list = self.list;
        move || {
            let epoch = live.epoch().unwrap_or_default();
            let text =
                list.with(|list| list.as_deref().filter(|list| !list.is_empty()).map(|list| enforcing(list, epoch)))?;
            Some(view! { <dt>"Replicas"</dt><dd id="replicas">{text}</dd> })
        }
    }
}

/// "N of M replicas enforcing" the change numbered `epoch`, then those that have not applied it yet.
fn enforcing(list: &[Replica], epoch: u64) -> String {
    let (mut behind, mut lagging) = (0, String::new());
    for replica in list.iter().filter(|replica| replica.epoch < epoch) {
        behind += 1;
        lagging.push_str(if behind == 1 { " — not yet: " } else { ", " });
        lagging.push_str(&replica.id);
        if !replica.address.is_empty() {
            lagging.push_str(" at ");
            lagging.push_str(&replica.address);
        }
    }
    format!("{} of {} replicas enforcing{lagging}", list.len() - behind, list.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: &str, epoch: u64) -> Replica {
        Replica {
            id: id.into(),
            address: format!("127.0.0.1:{}", 4000 + epoch),
            last_seen: "2026-11-30T10:00:00.000Z".parse().expect("a timestamp"),
            epoch,
            running_executions: 0,
        }
    }

    #[test]
    fn replicas_at_or_past_the_shown_change_enforce_it_and_the_others_are_named() {
        let list = [replica("r1", 7), replica("r2", 6), replica("r3", 8)];
        assert_eq!(enforcing(&list, 7), "2 of 3 replicas enforcing — not yet: r2 at 127.0.0.1:4006");
        assert_eq!(enforcing(&list, 6), "3 of 3 replicas enforcing");
        let list = [replica("r1", 1), Replica { address: String::new(), ..replica("r2", 1) }];
        assert_eq!(enforcing(&list, 2), "0 of 2 replicas enforcing — not yet: r1 at 127.0.0.1:4001, r2");
    }
}

//! Open event streams end when their credentials stop working: a token
//! revoked, a password changed, a user removed — also by `manager users …` in
//! another process. One task watches the credential-change counter (migration
//! 0005, kept by triggers) while any stream is open, and sleeps while none is
//! (an idle manager wakes for nothing); when it moves, each stream re-checks
//! its own credentials and ends if they no longer work.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Auth, CurrentUser};

/// How often the counter is read while streams are open: a revocation ends
/// the streams it concerns within about this long (SPEC: within 1 s).
pub const POLL_EVERY: Duration = Duration::from_millis(100);

/// Watches the counter for as long as `auth` lives. Call inside a tokio runtime.
pub fn watch(auth: Weak<Auth>) {
    let Some(opened) = auth.upgrade().map(|auth| Arc::clone(&auth.streams_opened)) else { return };
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLL_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let Some(strong) = auth.upgrade() else { return };
            if strong.credential_changes.receiver_count() == 0 {
                drop(strong);
                // Until a stream opens (a permit is kept if one opened meanwhile).
                opened.notified().await;
                ticks.reset();
                continue;
            }
            strong.read_credential_changes().await;
            drop(strong);
            ticks.tick().await;
        }
    });
}

impl Auth {
    /// Reads the counter and tells open streams if it moved; costs nothing
    /// while no stream is open.
    pub(crate) async fn read_credential_changes(&self) {
        if self.credential_changes.receiver_count() == 0 {
            return;
        }
        match self.db.credential_changes().await {
            Ok(now) => {
                self.credential_changes.send_if_modified(|seen| std::mem::replace(seen, now) != now);
            }
            // A busy or failing database must not end streams; the next tick retries.
            Err(error) => tracing::debug!(%error, "could not read the credential-change counter"),
        }
    }

    /// Completes when `user`'s credentials no longer work (revoked token,
    /// removed user, new password or role). Expiry is the caller's timer.
    /// Watches from the call on, and checks once at the start: a revocation
    /// between the sign-in and this call is not missed.
    pub fn until_revoked(self: Arc<Self>, user: CurrentUser) -> impl Future<Output = ()> + Send + 'static {
        let mut changes = self.credential_changes.subscribe();
        changes.mark_changed();
        self.streams_opened.notify_one();
        async move { self.watch_user(&mut changes, &user).await }
    }

    async fn watch_user(&self, changes: &mut tokio::sync::watch::Receiver<i64>, user: &CurrentUser) {
        loop {
            if changes.changed().await.is_err() {
                // The manager is shutting down; its streams end by themselves.
                return std::future::pending().await;
            }
            loop {
                match self.still_valid(user).await {
                    Ok(true) => break,
                    Ok(false) => {
                        tracing::info!(username = %user.username, "credentials revoked: ending the event stream");
                        return;
                    }
                    Err(error) => {
                        tracing::debug!(%error, "could not re-check a stream's credentials; retrying");
                        tokio::time::sleep(POLL_EVERY).await;
                    }
                }
            }
        }
    }
}

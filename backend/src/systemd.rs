//! systemd's notify protocol (SPEC §13, `Type=notify` in deploy/manager.service):
//! `READY=1` once the port accepts connections, `STOPPING=1` when a graceful
//! stop begins, `WATCHDOG=1` every half of `WATCHDOG_USEC` when the unit has
//! `WatchdogSec=`. Each is a no-op without `NOTIFY_SOCKET` (not under systemd).
//! The `sd-notify` crate speaks the protocol.

use std::net::SocketAddr;

use sd_notify::NotifyState;

/// Tells systemd the manager is ready: call once the listener is bound (the
/// kernel accepts connections from then on; the accept loop takes them).
pub fn ready(address: SocketAddr) {
    let status = format!("listening on {address}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Tells systemd a graceful stop has begun (it may take the cancel grace).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing requests and executions")]);
}

/// With `WATCHDOG_USEC` set (systemd's `WatchdogSec=`), sends `WATCHDOG=1`
/// every half of it from a task of the runtime, so a wedged runtime stops
/// the pings and systemd restarts the manager. Must be called inside a
/// tokio runtime; the task ends with it.
pub fn spawn_watchdog() {
    let Some(timeout) = sd_notify::watchdog_enabled() else { return };
    let every = (timeout / 2).max(std::time::Duration::from_millis(1));
    tracing::info!(every_ms = every.as_millis(), "systemd watchdog: pinging");
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

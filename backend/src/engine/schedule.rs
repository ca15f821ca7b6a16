//! The rules of SPEC §10 as pure functions, beside [`super::machine`]'s:
//! maintenance windows (schedule, extend, cancel, start, end, missed, the
//! notice) and the drain deadline's two steps. Given the facts read inside
//! the transaction that serializes decisions and the time of the database
//! (or of the one SQLite process), each says what to write; the stores write
//! it in that transaction. Whatever replica or restart runs [`tick`], a
//! window's start is written once: the facts it reads then say `active`.

use std::time::Duration;

use shared::maintenance::MAX_DRAIN_DEADLINE_SECONDS;
use shared::window::{DEFAULT_NOTICE_SECONDS, MAX_NOTICE_SECONDS};
use shared::{
    ExecutionStatus, HistoryEvent, MaintenanceState, MaintenanceTransition, NewWindow, Timestamp, Window, WindowState,
};
use uuid::Uuid;

use super::machine::{self, before, Activation, Change};
use crate::store::maintenance::{DrainStage, MaintenanceRecord};

/// The longest reason accepted, in characters (as for an activation).
pub const MAX_REASON_CHARS: usize = 1000;

/// Why a window request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// 400: a field is wrong; the message names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// 409 `window_overlaps`.
    #[error("The window would overlap window `{id}` ({starts_at} - {ends})")]
    Overlaps {
        /// The other window.
        id: Uuid,
        /// Its start.
        starts_at: Timestamp,
        /// Its end, or "no end".
        ends: String,
    },
    /// 404.
    #[error("Requested maintenance window `{0}` was not found")]
    NotFound(Uuid),
    /// 409: it is over.
    #[error("Maintenance window `{id}` is already {state}")]
    Over {
        /// The window.
        id: Uuid,
        /// Its state.
        state: WindowState,
    },
}

/// What the rules read.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The maintenance row.
    pub record: &'a MaintenanceRecord,
    /// The windows that are scheduled or active, by start.
    pub windows: &'a [Window],
    /// The remaining executions (id, status), in creation order.
    pub remaining: &'a [(Uuid, ExecutionStatus)],
    /// The time of the decision.
    pub now: Timestamp,
    /// Between the drain deadline's cancel and its force-cancel.
    pub cancel_grace: Duration,
}

/// A new window `id` by `by` at `now`, or why not. Validation comes before
/// conflicts: a bad field is 400 even when the window would also overlap.
pub fn schedule(facts: &Facts, new: NewWindow, by: &str, id: Uuid) -> Result<(Window, Change), WindowError> {
    let now = facts.now;
    if new.starts_at <= now {
        return Err(invalid("starts_at", format!("{} is not in the future (now is {now})", new.starts_at)));
    }
    if let Some(ends_at) = new.ends_at {
        if ends_at <= new.starts_at {
            return Err(invalid("ends_at", format!("{ends_at} is not after starts_at ({})", new.starts_at)));
        }
    }
    let reason = new.reason.trim().to_owned();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(invalid("reason", format!("longer than {MAX_REASON_CHARS} characters")));
    }
    let notice_seconds = new.notice_seconds.unwrap_or(DEFAULT_NOTICE_SECONDS);
    if notice_seconds > MAX_NOTICE_SECONDS {
        return Err(invalid("notice_seconds", format!("more than {MAX_NOTICE_SECONDS} (30 days)")));
    }
    check_drain_deadline(new.drain_deadline_seconds)?;
    if let Some(other) = overlapping(facts.windows, None, new.starts_at, new.ends_at) {
        return Err(overlaps(other));
    }
    let window = Window {
        id,
        state: WindowState::Scheduled,
        starts_at: new.starts_at,
        ends_at: new.ends_at,
        reason,
        notice_seconds,
        drain_deadline_seconds: new.drain_deadline_seconds,
        mode: new.mode.unwrap_or_default(),
        created_by: by.to_owned(),
        created_at: now,
        ended_at: None,
    };
    let mut windows = facts.windows.to_vec();
    windows.push(window.clone());
    let row = window_row(facts.record, &window, HistoryEvent::WindowScheduled, by, now, span(&window));
    Ok((window.clone(), written(facts, &windows, window, row)))
}

/// Checks an activation's `drain_deadline_seconds`.
pub fn check_drain_deadline(seconds: Option<u64>) -> Result<(), WindowError> {
    match seconds {
        Some(0) => Err(invalid("drain_deadline_seconds", "must be at least 1".into())),
        Some(seconds) if seconds > MAX_DRAIN_DEADLINE_SECONDS => {
            Err(invalid("drain_deadline_seconds", format!("more than {MAX_DRAIN_DEADLINE_SECONDS} (7 days)")))
        }
        _ => Ok(()),
    }
}

/// Moves the end of `window` (scheduled or active) to `ends_at`.
pub fn extend(facts: &Facts, window: &Window, ends_at: Timestamp, by: &str) -> Result<(Window, Change), WindowError> {
    if ends_at <= window.starts_at {
        return Err(invalid("ends_at", format!("{ends_at} is not after the window's start ({})", window.starts_at)));
    }
    if ends_at <= facts.now {
        return Err(invalid("ends_at", format!("{ends_at} is not in the future (now is {})", facts.now)));
    }
    if window.state.is_over() {
        return Err(WindowError::Over { id: window.id, state: window.state });
    }
    if let Some(other) = overlapping(facts.windows, Some(window.id), window.starts_at, Some(ends_at)) {
        return Err(overlaps(other));
    }
    let extended = Window { ends_at: Some(ends_at), ..window.clone() };
    let detail = format!("end {} -> {ends_at}", window.ends_at.map_or_else(|| "none".to_owned(), |at| at.to_string()));
    let row = window_row(facts.record, &extended, HistoryEvent::WindowExtended, by, facts.now, detail);
    let windows = replace(facts.windows, &extended);
    Ok((extended.clone(), written(facts, &windows, extended, row)))
}

/// Cancels a scheduled window, or ends an active one early (deactivating).
pub fn cancel(facts: &Facts, window: &Window, by: &str) -> Result<(Window, Change), WindowError> {
    let now = facts.now;
    match window.state {
        WindowState::Scheduled => {
            let cancelled = Window { state: WindowState::Cancelled, ended_at: Some(now), ..window.clone() };
            let row = window_row(facts.record, &cancelled, HistoryEvent::WindowCancelled, by, now, String::new());
            let windows = replace(facts.windows, &cancelled);
            Ok((cancelled.clone(), written(facts, &windows, cancelled, row)))
        }
        WindowState::Active => {
            let mut change = Change { record: facts.record.clone(), ..Change::default() };
            let mut windows = facts.windows.to_vec();
            let ended = end_window(&mut change, &mut windows, window, by, now, "ended early");
            Ok((ended, finish(&windows, now, change)))
        }
        state => Err(WindowError::Over { id: window.id, state }),
    }
}

/// A manual deactivate: back to `deactivated`, ending the active window.
pub fn deactivate(facts: &Facts, by: &str) -> Option<Change> {
    let now = facts.now;
    let mut change = Change { record: facts.record.clone(), ..Change::default() };
    let mut windows = facts.windows.to_vec();
    let active = facts.record.window_id.and_then(|id| windows.iter().find(|window| window.id == id).cloned());
    match active {
        Some(window) => {
            end_window(&mut change, &mut windows, &window, by, now, "ended early: maintenance mode was turned off");
        }
        None => change.then(machine::deactivate(facts.record, by, now)?),
    }
    Some(finish(&windows, now, change))
}

/// Everything due at `facts.now`: windows missed, started or ended, the drain
/// deadline's steps, the notice. `None` when nothing is due.
pub fn tick(facts: &Facts) -> Option<Change> {
    let now = facts.now;
    let mut change = Change { record: facts.record.clone(), ..Change::default() };
    let mut windows = facts.windows.to_vec();
    for index in 0..windows.len() {
        let window = windows[index].clone();
        if window.state == WindowState::Scheduled {
            if window.ends_at.is_some_and(|end| end <= now) {
                let missed = Window { state: WindowState::Missed, ended_at: Some(now), ..window.clone() };
                let detail = "its end came before the manager could start it (the manager was not running, or \
                              could not reach its database, from its start to its end)"
                    .to_owned();
                let row =
                    window_row(&change.record, &missed, HistoryEvent::WindowMissed, &window.created_by, now, detail);
                change.push(row);
                change.windows.push(missed.clone());
                windows[index] = missed;
                continue;
            }
            if window.starts_at <= now {
                let active = Window { state: WindowState::Active, ..window.clone() };
                start_window(&mut change, facts.remaining.len(), &active, now);
                change.windows.push(active.clone());
                windows[index] = active;
            }
        }
        let window = windows[index].clone();
        if window.state == WindowState::Active && window.ends_at.is_some_and(|end| end <= now) {
            end_window(&mut change, &mut windows, &window, &window.created_by, now, "");
        }
    }
    drain(&mut change, facts);
    let change = finish(&windows, now, change);
    let unchanged = change.record == *facts.record && change.transitions.is_empty() && change.windows.is_empty();
    (!unchanged).then_some(change)
}

/// When [`tick`] next has something to do, if ever (until a window changes).
pub fn next_due(record: &MaintenanceRecord, windows: &[Window], now: Timestamp) -> Option<Timestamp> {
    let mut due = Vec::new();
    for window in windows {
        match window.state {
            WindowState::Scheduled => {
                let notice_at = before(window.starts_at, window.notice_seconds);
                if notice_at > now {
                    due.push(notice_at);
                }
                due.push(window.starts_at);
                due.extend(window.ends_at);
            }
            WindowState::Active => due.extend(window.ends_at),
            _ => {}
        }
    }
    if record.status == MaintenanceState::Activating {
        match record.drain_stage {
            DrainStage::Waiting => due.extend(record.drain_deadline_at),
            DrainStage::Cancelled => due.extend(record.drain_force_at),
            DrainStage::ForceCancelled => {}
        }
    }
    due.into_iter().min()
}

/// The window the status announces: the active one, else the scheduled one
/// starting first whose notice period has begun.
pub fn upcoming(record: &MaintenanceRecord, windows: &[Window], now: Timestamp) -> Option<Uuid> {
    let active = record.window_id.filter(|id| windows.iter().any(|w| w.id == *id && w.state == WindowState::Active));
    active.or_else(|| {
        windows
            .iter()
            .filter(|w| w.state == WindowState::Scheduled && before(w.starts_at, w.notice_seconds) <= now)
            .min_by_key(|w| w.starts_at)
            .map(|w| w.id)
    })
}

/// The window's start: `activate` as its author asked, or, when maintenance
/// mode is already on, the window takes it over (its end turns it off).
fn start_window(change: &mut Change, remaining: usize, window: &Window, now: Timestamp) {
    let on = change.record.status != MaintenanceState::Deactivated;
    let detail = if on {
        format!(
            "maintenance mode was already {} (requested by {}); the window's end turns it off",
            change.record.status, change.record.requested_by
        )
    } else {
        String::new()
    };
    let row = window_row(&change.record, window, HistoryEvent::WindowStarted, &window.created_by, now, detail);
    if on {
        change.record.window_id = Some(window.id);
        change.push(row);
        return;
    }
    change.push(row);
    let activation = Activation {
        by: window.created_by.clone(),
        reason: window.reason.clone(),
        mode: window.mode,
        drain_deadline_seconds: window.drain_deadline_seconds,
        window_id: Some(window.id),
    };
    if let Some(activated) = machine::activate(&change.record, remaining, &activation, now) {
        change.then(activated);
    }
}

/// Ends `window` (active) at `now`, deactivating by `by`; returns it ended.
fn end_window(
    change: &mut Change,
    windows: &mut Vec<Window>,
    window: &Window,
    by: &str,
    now: Timestamp,
    detail: &str,
) -> Window {
    let ended = Window { state: WindowState::Ended, ended_at: Some(now), ..window.clone() };
    let row = window_row(&change.record, &ended, HistoryEvent::WindowEnded, by, now, detail.to_owned());
    change.push(row);
    change.windows.retain(|written| written.id != ended.id);
    change.windows.push(ended.clone());
    *windows = replace(windows, &ended);
    if change.record.window_id == Some(window.id) {
        if let Some(deactivated) = machine::deactivate(&change.record, by, now) {
            change.then(deactivated);
        }
    }
    ended
}

/// The drain deadline's steps, when due.
fn drain(change: &mut Change, facts: &Facts) {
    let now = facts.now;
    let record = &mut change.record;
    if record.status != MaintenanceState::Activating {
        return;
    }
    let (event, ids, verb) = match record.drain_stage {
        DrainStage::Waiting if record.drain_deadline_at.is_some_and(|at| at <= now) => {
            let ids: Vec<Uuid> = facts
                .remaining
                .iter()
                .filter(|(_, status)| matches!(status, ExecutionStatus::Pending | ExecutionStatus::Started))
                .map(|(id, _)| *id)
                .collect();
            record.drain_stage = DrainStage::Cancelled;
            let grace = u64::try_from(facts.cancel_grace.as_millis()).unwrap_or(u64::MAX);
            record.drain_force_at = Some(Timestamp::from_datetime(
                now.as_datetime() + chrono::TimeDelta::milliseconds(i64::try_from(grace).unwrap_or(i64::MAX)),
            ));
            change.cancel.clone_from(&ids);
            (HistoryEvent::DrainCancel, ids, "cancelled")
        }
        DrainStage::Cancelled if record.drain_force_at.is_some_and(|at| at <= now) => {
            // Those the deadline (or an admin) cancelled and that are still
            // alive; not one admitted since with the admins' bypass.
            let ids: Vec<Uuid> = facts
                .remaining
                .iter()
                .filter(|(_, status)| *status == ExecutionStatus::Cancelling)
                .map(|(id, _)| *id)
                .collect();
            record.drain_stage = DrainStage::ForceCancelled;
            change.force_cancel.clone_from(&ids);
            (HistoryEvent::DrainForceCancel, ids, "force-cancelled")
        }
        _ => return,
    };
    let detail = match ids.len() {
        0 => format!("nothing was left to be {verb}"),
        1 => format!("{verb} 1 execution: {}", ids[0]),
        n => format!("{verb} {n} executions: {}", ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")),
    };
    let row = MaintenanceTransition {
        at: now,
        from: record.status,
        to: record.status,
        requested_by: record.requested_by.clone(),
        reason: record.reason.clone(),
        event,
        window_id: record.window_id,
        detail,
    };
    change.push(row);
}

/// A change that writes `window` with its history `row`, the windows then being `windows`.
fn written(facts: &Facts, windows: &[Window], window: Window, row: MaintenanceTransition) -> Change {
    let change = Change { windows: vec![window], ..Change::step(facts.record.clone(), row) };
    finish(windows, facts.now, change)
}

/// Sets the announced window as the windows now stand.
fn finish(windows: &[Window], now: Timestamp, mut change: Change) -> Change {
    change.record.upcoming_id = upcoming(&change.record, windows, now);
    for record in &mut change.after {
        record.upcoming_id = upcoming(record, windows, now);
    }
    change
}

fn replace(windows: &[Window], changed: &Window) -> Vec<Window> {
    windows.iter().map(|window| if window.id == changed.id { changed.clone() } else { window.clone() }).collect()
}

/// The live window (not `except`) that [starts_at, ends_at) overlaps; no end is for ever.
fn overlapping(
    windows: &[Window],
    except: Option<Uuid>,
    starts_at: Timestamp,
    ends_at: Option<Timestamp>,
) -> Option<&Window> {
    windows.iter().filter(|w| Some(w.id) != except && !w.state.is_over()).find(|w| {
        let before_other_ends = w.ends_at.is_none_or(|end| starts_at < end);
        let other_starts_before = ends_at.is_none_or(|end| w.starts_at < end);
        before_other_ends && other_starts_before
    })
}

fn overlaps(other: &Window) -> WindowError {
    WindowError::Overlaps {
        id: other.id,
        starts_at: other.starts_at,
        ends: other.ends_at.map_or_else(|| "no end".to_owned(), |at| at.to_string()),
    }
}

fn invalid(field: &'static str, message: String) -> WindowError {
    WindowError::Invalid { field, message }
}

fn span(window: &Window) -> String {
    format!("{} - {}", window.starts_at, window.ends_at.map_or_else(|| "no end".to_owned(), |at| at.to_string()))
}

fn window_row(
    record: &MaintenanceRecord,
    window: &Window,
    event: HistoryEvent,
    by: &str,
    at: Timestamp,
    detail: String,
) -> MaintenanceTransition {
    MaintenanceTransition {
        at,
        from: record.status,
        to: record.status,
        requested_by: by.to_owned(),
        reason: window.reason.clone(),
        event,
        window_id: Some(window.id),
        detail,
    }
}

#[cfg(test)]
mod tests;

use super::*;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn now() -> Timestamp {
    at("2030-01-01T12:00:00.000Z")
}

const GRACE: Duration = Duration::from_secs(30);

fn new_window(starts_at: &str, ends_at: Option<&str>) -> NewWindow {
    NewWindow {
        starts_at: at(starts_at),
        ends_at: ends_at.map(at),
        reason: "upgrade".into(),
        notice_seconds: Some(600),
        drain_deadline_seconds: None,
        mode: None,
    }
}

fn facts<'a>(
    record: &'a MaintenanceRecord,
    windows: &'a [Window],
    remaining: &'a [(Uuid, ExecutionStatus)],
    now: Timestamp,
) -> Facts<'a> {
    Facts { record, windows, remaining, now, cancel_grace: GRACE }
}

/// Schedules a window on an idle manager and returns it.
fn scheduled(starts_at: &str, ends_at: Option<&str>) -> Window {
    let record = MaintenanceRecord::default();
    schedule(&facts(&record, &[], &[], now()), new_window(starts_at, ends_at), "ops", Uuid::new_v4()).unwrap().0
}

fn events(change: &Change) -> Vec<HistoryEvent> {
    change.transitions.iter().map(|row| row.event).collect()
}

#[test]
fn validation_names_the_field_and_comes_before_the_overlap() {
    let record = MaintenanceRecord::default();
    let existing = [scheduled("2030-01-01T13:00:00Z", Some("2030-01-01T14:00:00Z"))];
    let try_new = |new: NewWindow| schedule(&facts(&record, &existing, &[], now()), new, "ops", Uuid::new_v4());
    let field = |result: Result<(Window, Change), WindowError>| match result {
        Err(WindowError::Invalid { field, .. }) => field,
        other => panic!("expected a 400, got {other:?}"),
    };
    assert_eq!(field(try_new(new_window("2030-01-01T11:59:59Z", None))), "starts_at", "past start");
    assert_eq!(field(try_new(new_window("2030-01-01T12:00:00Z", None))), "starts_at", "start now");
    assert_eq!(
        field(try_new(new_window("2030-01-01T13:30:00Z", Some("2030-01-01T13:30:00Z")))),
        "ends_at",
        "end at the start, overlapping too: 400 first"
    );
    assert_eq!(
        field(try_new(NewWindow {
            notice_seconds: Some(MAX_NOTICE_SECONDS + 1),
            ..new_window("2030-01-02T00:00:00Z", None)
        })),
        "notice_seconds"
    );
    assert_eq!(
        field(try_new(NewWindow { drain_deadline_seconds: Some(0), ..new_window("2030-01-02T00:00:00Z", None) })),
        "drain_deadline_seconds"
    );
    assert_eq!(
        field(try_new(NewWindow { reason: "x".repeat(1001), ..new_window("2030-01-02T00:00:00Z", None) })),
        "reason"
    );

    let overlap = try_new(new_window("2030-01-01T13:59:59Z", Some("2030-01-01T15:00:00Z")));
    assert!(matches!(overlap, Err(WindowError::Overlaps { id, .. }) if id == existing[0].id), "{overlap:?}");
    assert!(
        matches!(try_new(new_window("2030-01-01T12:30:00Z", None)), Err(WindowError::Overlaps { .. })),
        "no end: for ever"
    );
    assert!(try_new(new_window("2030-01-01T14:00:00Z", None)).is_ok(), "touching is not overlapping");
    assert!(try_new(new_window("2030-01-01T12:30:00Z", Some("2030-01-01T13:00:00Z"))).is_ok());
}

#[test]
fn a_scheduled_window_is_recorded_and_announced_only_from_its_notice() {
    let record = MaintenanceRecord::default();
    let (window, change) = schedule(
        &facts(&record, &[], &[], now()),
        new_window("2030-01-01T12:20:00Z", Some("2030-01-01T13:00:00Z")),
        "ops",
        Uuid::new_v4(),
    )
    .unwrap();
    assert_eq!((window.state, window.notice_seconds, window.created_by.as_str()), (WindowState::Scheduled, 600, "ops"));
    assert_eq!(events(&change), [HistoryEvent::WindowScheduled]);
    assert_eq!(change.record.upcoming_id, None, "the notice begins at 12:10");
    let windows = [window.clone()];
    assert_eq!(next_due(&change.record, &windows, now()), Some(at("2030-01-01T12:10:00Z")));

    assert_eq!(tick(&facts(&change.record, &windows, &[], at("2030-01-01T12:09:59.999Z"))), None);
    let noticed = tick(&facts(&change.record, &windows, &[], at("2030-01-01T12:10:00Z"))).unwrap();
    assert_eq!(noticed.record.upcoming_id, Some(window.id));
    assert!(noticed.transitions.is_empty(), "a notice is not a history row");
    assert_eq!(next_due(&noticed.record, &windows, at("2030-01-01T12:10:00Z")), Some(window.starts_at));

    let inside = schedule(
        &facts(&record, &[], &[], now()),
        new_window("2030-01-01T12:05:00Z", Some("2030-01-01T12:06:00Z")),
        "ops",
        Uuid::new_v4(),
    )
    .unwrap();
    assert_eq!(inside.1.record.upcoming_id, Some(inside.0.id), "notice already begun: announced at once");
}

#[test]
fn a_window_starts_once_as_its_author_and_ends_by_itself() {
    let mut window = scheduled("2030-01-01T12:20:00Z", Some("2030-01-01T13:00:00Z"));
    window.mode = shared::MaintenanceMode::ReadOnly;
    window.drain_deadline_seconds = Some(60);
    let record = MaintenanceRecord::default();
    let windows = [window.clone()];
    let running = [(Uuid::new_v4(), ExecutionStatus::Started)];
    let start = at("2030-01-01T12:20:00.004Z");
    let started = tick(&facts(&record, &windows, &running, start)).unwrap();
    assert_eq!(events(&started), [HistoryEvent::WindowStarted, HistoryEvent::Activate]);
    let on = &started.record;
    assert_eq!(
        (on.status, on.requested_by.as_str(), on.reason.as_str()),
        (MaintenanceState::Activating, "ops", "upgrade")
    );
    assert_eq!(
        (on.mode, on.window_id, on.upcoming_id),
        (shared::MaintenanceMode::ReadOnly, Some(window.id), Some(window.id))
    );
    assert_eq!(on.drain_deadline_at, Some(at("2030-01-01T12:21:00.004Z")));
    assert_eq!(started.windows[0].state, WindowState::Active);
    assert!(started.transitions.iter().all(|row| row.window_id == Some(window.id)));

    // Another replica, or this one after a restart, reads what was written: nothing is due twice.
    let windows = started.windows.clone();
    assert_eq!(tick(&facts(on, &windows, &running, start)), None);

    let ended = tick(&facts(on, &windows, &[], at("2030-01-01T13:00:00Z"))).unwrap();
    assert_eq!(events(&ended), [HistoryEvent::WindowEnded, HistoryEvent::Deactivated]);
    assert_eq!(ended.record, MaintenanceRecord::default());
    assert!(ended.deactivates(on));
    assert_eq!(ended.windows[0].state, WindowState::Ended);
    assert_eq!(ended.transitions[1].requested_by, "ops");
}

#[test]
fn without_executions_a_window_goes_straight_to_activated() {
    let window = scheduled("2030-01-01T12:20:00Z", None);
    let started = tick(&facts(&MaintenanceRecord::default(), &[window], &[], at("2030-01-01T12:20:00Z"))).unwrap();
    assert_eq!(events(&started), [HistoryEvent::WindowStarted, HistoryEvent::Activate, HistoryEvent::Activated]);
    assert_eq!(started.record.status, MaintenanceState::Activated);
}

#[test]
fn a_manager_down_across_the_start_activates_inside_and_one_down_for_all_of_it_marks_it_missed() {
    let window = scheduled("2030-01-01T12:20:00Z", Some("2030-01-01T13:00:00Z"));
    let record = MaintenanceRecord::default();
    let inside = tick(&facts(&record, std::slice::from_ref(&window), &[], at("2030-01-01T12:45:00Z"))).unwrap();
    assert_eq!(inside.record.status, MaintenanceState::Activated);

    let after = tick(&facts(&record, std::slice::from_ref(&window), &[], at("2030-01-01T13:00:00Z"))).unwrap();
    assert_eq!(events(&after), [HistoryEvent::WindowMissed]);
    assert_eq!(after.record, record, "never activates");
    assert_eq!(after.windows[0].state, WindowState::Missed);
    assert_eq!(after.windows[0].ended_at, Some(at("2030-01-01T13:00:00Z")));
}

#[test]
fn a_window_starting_during_manual_maintenance_takes_it_over() {
    let window = scheduled("2030-01-01T12:20:00Z", Some("2030-01-01T13:00:00Z"));
    let manual = machine::activate(
        &MaintenanceRecord::default(),
        0,
        &Activation { by: "admin".into(), reason: "hotfix".into(), ..Activation::default() },
        now(),
    )
    .unwrap()
    .record;
    let started = tick(&facts(&manual, std::slice::from_ref(&window), &[], window.starts_at)).unwrap();
    assert_eq!(events(&started), [HistoryEvent::WindowStarted]);
    assert_eq!((started.record.requested_by.as_str(), started.record.window_id), ("admin", Some(window.id)));
    let ended = tick(&facts(&started.record, &started.windows, &[], at("2030-01-01T13:00:00Z"))).unwrap();
    assert_eq!(ended.record.status, MaintenanceState::Deactivated);
}

#[test]
fn a_manual_deactivate_or_a_cancel_ends_an_active_window_and_a_cancel_drops_a_scheduled_one() {
    let window = scheduled("2030-01-01T12:20:00Z", Some("2030-01-01T13:00:00Z"));
    let started =
        tick(&facts(&MaintenanceRecord::default(), std::slice::from_ref(&window), &[], window.starts_at)).unwrap();
    let inside = at("2030-01-01T12:30:00Z");
    let off = deactivate(&facts(&started.record, &started.windows, &[], inside), "admin").unwrap();
    assert_eq!(events(&off), [HistoryEvent::WindowEnded, HistoryEvent::Deactivated]);
    assert_eq!(off.windows[0].state, WindowState::Ended);
    assert_eq!(off.record, MaintenanceRecord::default());

    let (ended, change) =
        cancel(&facts(&started.record, &started.windows, &[], inside), &started.windows[0], "admin").unwrap();
    assert_eq!((ended.state, ended.ended_at), (WindowState::Ended, Some(inside)));
    assert!(change.deactivates(&started.record));

    let (cancelled, change) =
        cancel(&facts(&MaintenanceRecord::default(), std::slice::from_ref(&window), &[], now()), &window, "admin")
            .unwrap();
    assert_eq!(cancelled.state, WindowState::Cancelled);
    assert_eq!(events(&change), [HistoryEvent::WindowCancelled]);
    assert_eq!(
        cancel(&facts(&MaintenanceRecord::default(), &[], &[], now()), &cancelled, "admin"),
        Err(WindowError::Over { id: window.id, state: WindowState::Cancelled })
    );
    assert_eq!(deactivate(&facts(&MaintenanceRecord::default(), &[], &[], now()), "admin"), None);
}

#[test]
fn extend_moves_the_end_within_the_rules() {
    let window = scheduled("2030-01-01T12:20:00Z", Some("2030-01-01T13:00:00Z"));
    let next = scheduled("2030-01-01T14:00:00Z", None);
    let windows = [window.clone(), next.clone()];
    let record = MaintenanceRecord::default();
    let (extended, change) =
        extend(&facts(&record, &windows, &[], now()), &window, at("2030-01-01T13:30:00Z"), "ops").unwrap();
    assert_eq!(extended.ends_at, Some(at("2030-01-01T13:30:00Z")));
    assert_eq!(events(&change), [HistoryEvent::WindowExtended]);
    assert!(change.transitions[0].detail.contains("2030-01-01T13:00:00.000Z -> 2030-01-01T13:30:00.000Z"));
    assert!(matches!(
        extend(&facts(&record, &windows, &[], now()), &window, at("2030-01-01T14:30:00Z"), "ops"),
        Err(WindowError::Overlaps { id, .. }) if id == next.id
    ));
    assert!(matches!(
        extend(&facts(&record, &windows, &[], now()), &window, at("2030-01-01T12:10:00Z"), "ops"),
        Err(WindowError::Invalid { field: "ends_at", .. })
    ));
    assert!(
        matches!(
            extend(
                &facts(&record, &windows, &[], at("2030-01-01T12:40:00Z")),
                &window,
                at("2030-01-01T12:30:00Z"),
                "ops"
            ),
            Err(WindowError::Invalid { field: "ends_at", .. })
        ),
        "an end in the past"
    );
}

#[test]
fn the_drain_deadline_cancels_then_force_cancels_after_the_grace() {
    let activation = Activation { by: "admin".into(), drain_deadline_seconds: Some(60), ..Activation::default() };
    let record = machine::activate(&MaintenanceRecord::default(), 2, &activation, now()).unwrap().record;
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let remaining = [(a, ExecutionStatus::Started), (b, ExecutionStatus::Cancelling), (c, ExecutionStatus::Pending)];
    let deadline = at("2030-01-01T12:01:00Z");
    assert_eq!(next_due(&record, &[], now()), Some(deadline));
    assert_eq!(tick(&facts(&record, &[], &remaining, at("2030-01-01T12:00:59.999Z"))), None);

    let cancelled = tick(&facts(&record, &[], &remaining, deadline)).unwrap();
    assert_eq!(events(&cancelled), [HistoryEvent::DrainCancel]);
    assert_eq!(cancelled.cancel, [a, c], "the one already cancelling is on its way");
    assert_eq!(cancelled.record.drain_stage, DrainStage::Cancelled);
    let force_at = at("2030-01-01T12:01:30Z");
    assert_eq!(cancelled.record.drain_force_at, Some(force_at));
    assert_eq!(next_due(&cancelled.record, &[], deadline), Some(force_at));
    assert!(cancelled.transitions[0].detail.starts_with("cancelled 2 executions: "));

    // `d` was admitted since, with an admin's bypass: the deadline did not cancel it.
    let d = Uuid::new_v4();
    let remaining =
        [(a, ExecutionStatus::Cancelling), (c, ExecutionStatus::ForceCancelling), (d, ExecutionStatus::Started)];
    let forced = tick(&facts(&cancelled.record, &[], &remaining, force_at)).unwrap();
    assert_eq!(events(&forced), [HistoryEvent::DrainForceCancel]);
    assert_eq!(forced.force_cancel, [a]);
    assert_eq!(forced.transitions[0].detail, format!("force-cancelled 1 execution: {a}"));
    assert_eq!(next_due(&forced.record, &[], force_at), None);
    assert_eq!(tick(&facts(&forced.record, &[], &remaining, at("2030-01-02T00:00:00Z"))), None);
}

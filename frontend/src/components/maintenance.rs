//! The maintenance page: status, activate/deactivate (admins), and the
//! executions that hold up activation.

use leptos::prelude::*;
use shared::{ActivateRequest, ExecutionAction, MaintenanceMode, MaintenanceState, RemainingExecution};
use uuid::Uuid;

use crate::api;
use crate::clock;
use crate::components::replicas::Replicas;
use crate::components::status_card::StatusCard;
use crate::components::windows::Windows;
use crate::form;
use crate::live::Live;
use crate::route::execution_link;
use crate::session::Session;
use crate::task::Task;

/// The maintenance page.
#[component]
pub fn MaintenancePage() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    // Kept across status changes (the card is made again for each).
    let replicas = Replicas::watch();
    view! {
        {move || match live.status() {
            Some(status) => view! { <StatusCard status replicas=replicas.clone() /> }.into_any(),
            None => view! { <p class="muted">"Loading the maintenance status…"</p> }.into_any(),
        }}
        {session.is_admin.then(|| view! { <AdminControls /> })}
        <Remaining />
        <Windows />
    }
}

/// What an activate or deactivate click asks for.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Activate(ActivateRequest),
    Deactivate,
}

/// Activate (with reason, drain deadline, read-only, and a confirmation step)
/// or deactivate. The answer goes to the live store, which keeps it only if
/// nothing newer arrived meanwhile.
#[component]
fn AdminControls() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = StoredValue::new(expect_context::<Session>());
    // What was typed, kept from the Activate click through the confirmation
    // step (the fields are gone meanwhile) and shown again if it is cancelled.
    let request = StoredValue::new(ActivateRequest::default());
    let confirming = RwSignal::new(false);
    let task = Task::new();
    let change = move |change: Change| {
        let Some(session) = session.try_get_value() else { return };
        task.run(async move {
            let answer = match &change {
                Change::Activate(request) => api::activate(&session.token, request).await,
                Change::Deactivate => api::deactivate(&session.token).await,
            };
            // The page may be gone by now: its signals are only tried.
            match answer {
                Ok(Some(status)) => {
                    live.offer_status(status);
                    // A change made ends the confirmation step and clears the fields.
                    confirming.try_set(false);
                    request.try_set_value(ActivateRequest::default());
                    Ok(String::new())
                }
                Ok(None) if matches!(change, Change::Activate(_)) => Err("Maintenance mode was already on.".into()),
                Ok(None) => Err("Maintenance mode was already off.".into()),
                Err(failure) => Err(session.explain(&failure)),
            }
        });
    };
    let busy = move || task.pending();
    let activate = move |_| change(Change::Activate(request.get_value()));
    let ask = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(data) = form::data(&event) else { return };
        let reason = form::text(data.get("reason"));
        request.set_value(ActivateRequest {
            reason: Some(reason).filter(|reason| !reason.trim().is_empty()),
            drain_deadline_seconds: form::number(data.get("drain_deadline")),
            mode: data.has("read_only").then_some(MaintenanceMode::ReadOnly),
        });
        confirming.set(true);
    };
    let state = move || live.with_status(|status| status.map(|s| s.status));

    view! {
        <section class="card" aria-label="Change maintenance mode">
            {move || task.error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || match state() {
                Some(MaintenanceState::Deactivated) if confirming.get() => {
                    let asked = request.get_value();
                    let closes = if asked.mode.is_some() {
                        "Then the manager is read-only: reads pass, other requests are answered 503"
                    } else {
                        "Then most requests to the manager are answered 503"
                    };
                    let drain = asked.drain_deadline_seconds.map(|seconds| {
                        let ms = i64::try_from(seconds).unwrap_or(i64::MAX).saturating_mul(clock::SECOND);
                        format!(" Executions still running after {} are cancelled.", clock::duration(ms))
                    });
                    view! {
                        <div class="confirm" role="group" aria-label="Confirm activation">
                            <p>
                                <strong>"Activate maintenance mode?"</strong>
                                " New executions will be refused at once; running ones are allowed to finish."
                                {drain}
                                " " {closes} " until maintenance mode is turned off."
                            </p>
                            <button id="confirm-activate" class="danger" on:click=activate disabled=busy>
                                "Yes, activate"
                            </button>
                            <button id="cancel-activate" class="secondary" on:click=move |_| confirming.set(false)
                                disabled=busy>
                                "Cancel"
                            </button>
                        </div>
                    }.into_any()
                }
                Some(MaintenanceState::Deactivated) => {
                    let asked = request.get_value();
                    view! {
                        <form class="activate" on:submit=ask aria-label="Activate maintenance mode">
                            <label class="inline">
                                "Reason (optional)"
                                <input id="reason" name="reason" placeholder="e.g. upgrade to 7.1" maxlength="1000"
                                    value=asked.reason />
                            </label>
                            <label class="inline">
                                "Drain deadline in seconds (optional): cancel what still runs then"
                                <input id="drain-deadline-input" name="drain_deadline" type="number" min="1"
                                    max="604800" value=asked.drain_deadline_seconds.map(|s| s.to_string()) />
                            </label>
                            <label class="check">
                                <input id="read-only" name="read_only" type="checkbox" checked=asked.mode.is_some() />
                                "Read-only: reads still pass"
                            </label>
                            <button id="activate" type="submit" class="danger" disabled=busy>
                                "Activate maintenance mode…"
                            </button>
                        </form>
                    }.into_any()
                }
                Some(_) => view! {
                    <button id="deactivate" on:click=move |_| change(Change::Deactivate)
                        disabled=busy>
                        "Deactivate maintenance mode"
                    </button>
                }.into_any(),
                None => ().into_any(),
            }}
        </section>
    }
}

/// The executions that keep the manager in `activating`, each cancellable.
/// Rows are keyed by id: a status change updates its row in place.
#[component]
fn Remaining() -> impl IntoView {
    let live = expect_context::<Live>();
    let remaining = move || live.with_status(|s| s.map(|s| s.remaining_executions.clone()).unwrap_or_default());
    view! {
        // Hidden rather than shown on demand: Leptos's `Show` (a memo) costs
        // kilobytes of wasm; the rows are keyed either way.
        <section class="card" aria-label="Remaining executions"
            hidden=move || live.with_status(|s| s.is_none_or(|s| s.remaining_executions.is_empty()))>
            <h2>"Remaining executions"</h2>
            <table>
                <thead>
                    <tr>
                        <th>"Execution"</th><th>"Deployment"</th><th>"Workflow"</th><th>"Status"</th>
                        <th><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    <For each=remaining key=|e| e.id let:execution>
                        <RemainingRow execution />
                    </For>
                </tbody>
            </table>
        </section>
    }
}

#[component]
fn RemainingRow(execution: RemainingExecution) -> impl IntoView {
    let live = expect_context::<Live>();
    let (id, initial) = (execution.id, execution.status);
    let status = move || {
        live.with_status(|s| s.and_then(|s| s.remaining_executions.iter().find(|e| e.id == id).map(|e| e.status)))
            .unwrap_or(initial)
    };
    view! {
        <tr data-execution-id=id.to_string()>
            <td>{execution_link(id)}</td>
            <td>{execution.deployment_id}</td>
            <td>{execution.workflow_id}</td>
            <td><span class=move || format!("badge badge-{}", status()) data-status=move || status().as_str()>
                {move || status().as_str()}
            </span></td>
            <td><CancelButtons id /></td>
        </tr>
    }
}

/// Cancel and Force-cancel for one execution, with the error in words. The
/// row may be gone when the answer arrives (the execution ended meanwhile):
/// the answer then lands in the action, which nothing shows any more.
#[component]
pub fn CancelButtons(id: Uuid) -> impl IntoView {
    let session = StoredValue::new(expect_context::<Session>());
    let live = expect_context::<Live>();
    let task = Task::new();
    let send = move |action: ExecutionAction| {
        let Some(session) = session.try_get_value() else { return };
        task.run(async move {
            match api::act(&session.token, id, action).await {
                Ok(execution) => {
                    live.offer_executions(vec![execution]);
                    Ok(String::new())
                }
                Err(failure) => Err(session.explain(&failure)),
            }
        });
    };
    let busy = move || task.pending();
    view! {
        <span class="actions">
            <button class="cancel secondary" on:click=move |_| send(ExecutionAction::Cancel)
                disabled=busy aria-label=format!("Cancel execution {id}")>
                "Cancel"
            </button>
            <button class="force-cancel secondary" on:click=move |_| send(ExecutionAction::ForceCancel)
                disabled=busy aria-label=format!("Force-cancel execution {id}")>
                "Force-cancel"
            </button>
            {move || task.error().map(|message| view! { <span class="error" role="alert">{message}</span> })}
        </span>
    }
}

//! The maintenance page: status, activate/deactivate (admins), and the
//! executions that hold up activation.

use leptos::prelude::*;
use shared::{ExecutionAction, MaintenanceState, RemainingExecution};
use uuid::Uuid;

use crate::api;
use crate::components::replicas::Replicas;
use crate::components::status_card::StatusCard;
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
    }
}

/// What an activate or deactivate click asks for.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Activate { reason: String },
    Deactivate,
}

/// Activate (with reason and a confirmation step) or deactivate. The answer
/// goes to the live store, which keeps it only if nothing newer arrived meanwhile.
#[component]
fn AdminControls() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = StoredValue::new(expect_context::<Session>());
    // The reason typed, kept from the Activate click through the confirmation
    // step (the field is gone meanwhile) and shown again if it is cancelled.
    let reason = StoredValue::new(String::new());
    let confirming = RwSignal::new(false);
    let task = Task::new();
    let change = move |change: Change| {
        let Some(session) = session.try_get_value() else { return };
        task.run(async move {
            let answer = match &change {
                Change::Activate { reason } => api::activate(&session.token, reason.clone()).await,
                Change::Deactivate => api::deactivate(&session.token).await,
            };
            // The page may be gone by now: its signals are only tried.
            match answer {
                Ok(Some(status)) => {
                    live.offer_status(status);
                    // A change made ends the confirmation step and clears the reason.
                    confirming.try_set(false);
                    reason.try_set_value(String::new());
                    Ok(String::new())
                }
                Ok(None) if matches!(change, Change::Activate { .. }) => Err("Maintenance mode was already on.".into()),
                Ok(None) => Err("Maintenance mode was already off.".into()),
                Err(failure) => Err(session.explain(&failure)),
            }
        });
    };
    let busy = move || task.pending();
    let activate = move |_| change(Change::Activate { reason: reason.get_value() });
    let ask = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        reason.set_value(form::data(&event).map(|data| form::text(data.get("reason"))).unwrap_or_default());
        confirming.set(true);
    };
    let state = move || live.with_status(|status| status.map(|s| s.status));

    view! {
        <section class="card" aria-label="Change maintenance mode">
            {move || task.error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || match state() {
                Some(MaintenanceState::Deactivated) if confirming.get() => view! {
                    <div class="confirm" role="group" aria-label="Confirm activation">
                        <p>
                            <strong>"Activate maintenance mode?"</strong>
                            " New executions will be refused at once; running ones are allowed to finish. "
                            "Then most requests to the manager are answered 503 until maintenance mode is turned off."
                        </p>
                        <button id="confirm-activate" class="danger" on:click=activate disabled=busy>
                            "Yes, activate"
                        </button>
                        <button id="cancel-activate" class="secondary" on:click=move |_| confirming.set(false)
                            disabled=busy>
                            "Cancel"
                        </button>
                    </div>
                }.into_any(),
                Some(MaintenanceState::Deactivated) => view! {
                    <form on:submit=ask aria-label="Activate maintenance mode">
                        <label class="inline">
                            "Reason (optional)"
                            <input id="reason" name="reason" placeholder="e.g. upgrade to 7.1" maxlength="1000"
                                value=reason.get_value() />
                        </label>
                        <button id="activate" type="submit" class="danger" disabled=busy>
                            "Activate maintenance mode…"
                        </button>
                    </form>
                }.into_any(),
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

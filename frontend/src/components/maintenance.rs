//! The maintenance page: status, activate/deactivate (admins), and the
//! executions that hold up activation.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::{ExecutionAction, MaintenanceState, RemainingExecution};

use crate::api;
use crate::app::Session;
use crate::components::status_card::StatusCard;
use crate::live::Live;

/// The maintenance page.
#[component]
pub fn MaintenancePage() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    view! {
        {move || match live.status.get() {
            Some(status) => view! { <StatusCard status /> }.into_any(),
            None => view! { <p class="muted">"Loading the maintenance status…"</p> }.into_any(),
        }}
        {session.is_admin.then(|| view! { <AdminControls /> })}
        <Remaining />
    }
}

/// Activate (with reason and a confirmation step) or deactivate.
#[component]
fn AdminControls() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = StoredValue::new(expect_context::<Session>());
    let token = move || session.with_value(|s| s.token.clone());
    let reason = RwSignal::new(String::new());
    let confirming = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let state = move || live.status.get().map(|s| s.status);

    let activate = move |_| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::activate(&token(), reason.get_untracked()).await {
                Ok(Some(status)) => {
                    live.status.try_set(Some(status));
                    reason.try_set(String::new());
                }
                Ok(None) => {
                    error.try_set(Some("Maintenance mode was already on.".into()));
                }
                Err(failure) => {
                    error.try_set(Some(session.with_value(|s| s.explain(&failure))));
                }
            }
            confirming.try_set(false);
            busy.try_set(false);
        });
    };
    let deactivate = move |_| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match api::deactivate(&token()).await {
                Ok(Some(status)) => {
                    live.status.try_set(Some(status));
                }
                Ok(None) => {
                    error.try_set(Some("Maintenance mode was already off.".into()));
                }
                Err(failure) => {
                    error.try_set(Some(session.with_value(|s| s.explain(&failure))));
                }
            }
            busy.try_set(false);
        });
    };

    view! {
        <section class="card" aria-label="Change maintenance mode">
            {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || match state() {
                Some(MaintenanceState::Deactivated) if confirming.get() => view! {
                    <div class="confirm" role="group" aria-label="Confirm activation">
                        <p>
                            <strong>"Activate maintenance mode?"</strong>
                            " New executions will be refused at once; running ones are allowed to finish. "
                            "Then most requests to the manager are answered 503 until maintenance mode is turned off."
                        </p>
                        <button id="confirm-activate" class="danger" on:click=activate disabled=move || busy.get()>
                            "Yes, activate"
                        </button>
                        <button id="cancel-activate" class="secondary" on:click=move |_| confirming.set(false)
                            disabled=move || busy.get()>
                            "Cancel"
                        </button>
                    </div>
                }.into_any(),
                Some(MaintenanceState::Deactivated) => view! {
                    <label class="inline">
                        "Reason (optional)"
                        <input id="reason" placeholder="e.g. upgrade to 7.1" maxlength="1000" bind:value=reason />
                    </label>
                    <button id="activate" class="danger" on:click=move |_| confirming.set(true)
                        disabled=move || busy.get()>
                        "Activate maintenance mode…"
                    </button>
                }.into_any(),
                Some(_) => view! {
                    <button id="deactivate" on:click=deactivate disabled=move || busy.get()>
                        "Deactivate maintenance mode"
                    </button>
                }.into_any(),
                None => ().into_any(),
            }}
        </section>
    }
}

/// The executions that keep the manager in `activating`, each cancellable.
#[component]
fn Remaining() -> impl IntoView {
    let live = expect_context::<Live>();
    let remaining = move || live.status.get().map(|s| s.remaining_executions).unwrap_or_default();
    view! {
        <Show when=move || !remaining().is_empty()>
            <section class="card" aria-label="Remaining executions">
                <h2>"Remaining executions"</h2>
                <table>
                    <thead>
                        <tr><th>"Execution"</th><th>"Deployment"</th><th>"Workflow"</th><th>"Status"</th><th></th></tr>
                    </thead>
                    <tbody>
                        <For each=remaining key=|e| (e.id, e.status) let:execution>
                            <RemainingRow execution />
                        </For>
                    </tbody>
                </table>
            </section>
        </Show>
    }
}

#[component]
fn RemainingRow(execution: RemainingExecution) -> impl IntoView {
    let id = execution.id;
    view! {
        <tr data-execution-id=id.to_string()>
            <td class="mono">{id.to_string()}</td>
            <td>{execution.deployment_id}</td>
            <td>{execution.workflow_id}</td>
            <td><span class=format!("badge badge-{}", execution.status) data-status=execution.status.as_str()>
                {execution.status.as_str()}
            </span></td>
            <td><CancelButtons id /></td>
        </tr>
    }
}

/// Cancel and Force-cancel for one execution, with the error in words.
#[component]
pub fn CancelButtons(id: uuid::Uuid) -> impl IntoView {
    let session = StoredValue::new(expect_context::<Session>());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let send = move |action: ExecutionAction| {
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            let token = session.with_value(|s| s.token.clone());
            if let Err(failure) = api::act(&token, id, action).await {
                error.try_set(Some(session.with_value(|s| s.explain(&failure))));
            }
            busy.try_set(false);
        });
    };
    view! {
        <span class="actions">
            <button class="cancel secondary" on:click=move |_| send(ExecutionAction::Cancel) disabled=move || busy.get()
                aria-label=format!("Cancel execution {id}")>
                "Cancel"
            </button>
            <button class="force-cancel secondary" on:click=move |_| send(ExecutionAction::ForceCancel)
                disabled=move || busy.get() aria-label=format!("Force-cancel execution {id}")>
                "Force-cancel"
            </button>
            {move || error.get().map(|message| view! { <span class="error" role="alert">{message}</span> })}
        </span>
    }
}

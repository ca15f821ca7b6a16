//! The executions page: start one; the list, live.

use leptos::prelude::*;
use shared::execution::ExecutionParameters;
use shared::{Execution, NewExecution};

use crate::api;
use crate::components::maintenance::CancelButtons;
use crate::live::{local_time, Live};
use crate::session::Session;
use crate::task::Task;

/// The executions page.
#[component]
pub fn ExecutionsPage() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    // Loaded on open and whenever changes may have been missed (every stream
    // open). The answer is merged into the live rows, never written over
    // them: an execution event that arrived while it was in flight stays.
    let load = Task::new();
    Effect::new(move |_| {
        live.reloads.track();
        let session = session.clone();
        load.run(async move {
            match api::executions(&session.token).await {
                Ok(items) => {
                    live.offer_executions(items);
                    Ok(String::new())
                }
                Err(error) => Err(session.explain(&error)),
            }
        });
    });
    let load_error = move || load.error();

    view! {
        <StartForm />
        <section class="card" aria-label="Executions">
            <h2>"Executions"</h2>
            {move || load_error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <Show
                when=move || !live.executions().is_empty()
                fallback=move || load_error().is_none().then(|| view! { <p class="muted">"No executions yet."</p> })
            >
                <table>
                    <thead>
                        <tr>
                            <th>"Execution"</th><th>"Workflow"</th><th>"Deployment"</th><th>"Status"</th>
                            <th>"Created"</th><th>"By"</th><th><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || live.executions() key=|e| e.id let:execution>
                            <ExecutionRow execution />
                        </For>
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

/// One row, keyed by the execution's id: its status changes in place.
#[component]
fn ExecutionRow(execution: Execution) -> impl IntoView {
    let live = expect_context::<Live>();
    let id = execution.id;
    let initial = execution.status;
    // Rows come from the live store, so it holds this one; the initial status is only a fallback.
    let status = move || live.execution_status(id).map_or(initial, |(status, _)| status);
    let error = move || live.execution_status(id).map(|(_, error)| error).unwrap_or_default();
    view! {
        <tr data-execution-id=id.to_string()>
            <td class="mono">{id.to_string()}</td>
            <td>{execution.workflow_id}</td>
            <td>{execution.deployment_id}</td>
            <td>
                <span class=move || format!("badge badge-{}", status()) data-status=move || status().as_str()
                    title=error>
                    {move || status().as_str()}
                </span>
            </td>
            <td>{local_time(&execution.created_at)}</td>
            <td>{execution.created_by}</td>
            <td>{move || (!status().is_end()).then(|| view! { <CancelButtons id /> })}</td>
        </tr>
    }
}

/// Workflow, deployment, duration, queue.
#[component]
fn StartForm() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    let workflow = RwSignal::new("install".to_owned());
    let deployment = RwSignal::new(String::new());
    let duration = RwSignal::new("5".to_owned());
    let queue = RwSignal::new(false);
    let invalid = RwSignal::new(None::<String>);
    let session = StoredValue::new(session);
    let start = Task::new();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(duration_seconds) = number(&duration.get_untracked()) else {
            invalid.set(Some("Duration: enter a number of seconds".into()));
            return;
        };
        let new = NewExecution {
            workflow_id: workflow.get_untracked(),
            deployment_id: deployment.get_untracked(),
            parameters: ExecutionParameters { duration_seconds: Some(duration_seconds), ..Default::default() },
            queue: queue.get_untracked(),
        };
        // The manager checks the rest (NewExecution::validate, whose float
        // formatting would add kilobytes here); its answer is shown below.
        invalid.set(None);
        let Some(session) = session.try_get_value() else { return };
        start.run(async move {
            match api::start_execution(&session.token, &new).await {
                Ok(execution) => {
                    let said = format!("Execution {} is {}.", execution.id, execution.status);
                    live.offer_executions(vec![execution]);
                    Ok(said)
                }
                Err(error) => Err(session.explain(&error)),
            }
        });
    };
    // The form's own check first; otherwise the last answer.
    let message = move || match invalid.get() {
        Some(problem) => Some(Err(problem)),
        None => start.outcome(),
    };
    view! {
        <form class="card start" on:submit=submit aria-label="Start an execution">
            <h2>"Start an execution"</h2>
            <label>"Workflow" <input id="workflow" required bind:value=workflow /></label>
            <label>"Deployment" <input id="deployment" required bind:value=deployment /></label>
            <label>"Duration (seconds)" <input id="duration" inputmode="decimal" bind:value=duration /></label>
            <label class="check">
                <input id="queue" type="checkbox" bind:checked=queue />
                "Queue it if maintenance mode is on"
            </label>
            <button id="start" type="submit" disabled=move || start.pending()>"Start"</button>
            {move || message().map(|said| {
                let (class, text) = match said {
                    Ok(text) => ("ok", text),
                    Err(text) => ("error", text),
                };
                view! { <p class=class role="alert">{text}</p> }
            })}
        </form>
    }
}

/// A number as the browser reads it (`+text`): Rust's float parser would add its tables to the wasm.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    let value = wasm_bindgen::JsValue::from_str(text).unchecked_into_f64();
    (!text.is_empty() && !value.is_nan()).then_some(value)
}

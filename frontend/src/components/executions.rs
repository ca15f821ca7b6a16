//! The executions page: start one; the list, live.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::execution::ExecutionParameters;
use shared::{Execution, NewExecution};

use crate::api;
use crate::app::Session;
use crate::components::maintenance::CancelButtons;
use crate::live::{local_time, Live};

/// The executions page.
#[component]
pub fn ExecutionsPage() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    let items = RwSignal::new(Vec::<Execution>::new());
    let load_error = RwSignal::new(None::<String>);

    // Load on open and whenever changes may have been missed.
    Effect::new(move |_| {
        live.reloads.track();
        let session = session.clone();
        spawn_local(async move {
            match api::executions(&session.token).await {
                Ok(list) => {
                    items.try_set(list);
                    load_error.try_set(None);
                }
                Err(error) => {
                    load_error.try_set(Some(session.explain(&error)));
                }
            }
        });
    });
    // Apply each change as it arrives.
    Effect::new(move |_| {
        if let Some(changed) = live.execution.get() {
            items.update(|items| match items.iter_mut().find(|e| e.id == changed.id) {
                Some(existing) => *existing = changed,
                None => items.insert(0, changed),
            });
        }
    });

    view! {
        <StartForm />
        <section class="card" aria-label="Executions">
            <h2>"Executions"</h2>
            {move || load_error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <Show
                when=move || !items.get().is_empty()
                fallback=move || load_error.get().is_none().then(|| view! { <p class="muted">"No executions yet."</p> })
            >
                <table>
                    <thead>
                        <tr>
                            <th>"Execution"</th><th>"Workflow"</th><th>"Deployment"</th><th>"Status"</th>
                            <th>"Created"</th><th>"By"</th><th></th>
                        </tr>
                    </thead>
                    <tbody>
                        <For each=move || items.get() key=|e| (e.id, e.status) let:execution>
                            <ExecutionRow execution />
                        </For>
                    </tbody>
                </table>
            </Show>
        </section>
    }
}

#[component]
fn ExecutionRow(execution: Execution) -> impl IntoView {
    let id = execution.id;
    let ended = execution.status.is_end();
    view! {
        <tr data-execution-id=id.to_string()>
            <td class="mono">{id.to_string()}</td>
            <td>{execution.workflow_id}</td>
            <td>{execution.deployment_id}</td>
            <td>
                <span class=format!("badge badge-{}", execution.status) data-status=execution.status.as_str()
                    title=execution.error.clone()>
                    {execution.status.as_str()}
                </span>
            </td>
            <td>{local_time(&execution.created_at)}</td>
            <td>{execution.created_by}</td>
            <td>{(!ended).then(|| view! { <CancelButtons id /> })}</td>
        </tr>
    }
}

/// Workflow, deployment, duration, queue.
#[component]
fn StartForm() -> impl IntoView {
    let session = StoredValue::new(expect_context::<Session>());
    let workflow = RwSignal::new("install".to_owned());
    let deployment = RwSignal::new(String::new());
    let duration = RwSignal::new("5".to_owned());
    let queue = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let message = RwSignal::new(None::<(bool, String)>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let duration_seconds = match number(&duration.get_untracked()) {
            Some(seconds) => seconds,
            None => {
                message.set(Some((false, "Duration: enter a number of seconds".into())));
                return;
            }
        };
        let new = NewExecution {
            workflow_id: workflow.get_untracked(),
            deployment_id: deployment.get_untracked(),
            parameters: ExecutionParameters { duration_seconds: Some(duration_seconds), ..Default::default() },
            queue: queue.get_untracked(),
        };
        // The manager checks the rest (NewExecution::validate); its answer is shown below.
        busy.set(true);
        spawn_local(async move {
            let token = session.with_value(|s| s.token.clone());
            let outcome = match api::start_execution(&token, &new).await {
                Ok(execution) => (true, format!("Execution {} is {}.", execution.id, execution.status)),
                Err(error) => (false, session.with_value(|s| s.explain(&error))),
            };
            message.try_set(Some(outcome));
            busy.try_set(false);
        });
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
            <button id="start" type="submit" disabled=move || busy.get()>"Start"</button>
            {move || message.get().map(|(ok, text)| {
                let class = if ok { "ok" } else { "error" };
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

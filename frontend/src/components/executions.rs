//! The executions page: start one; the list, live, each row a link to its page.

use leptos::prelude::*;
use shared::Execution;

use crate::api;
use crate::components::maintenance::CancelButtons;
use crate::components::start_form::StartForm;
use crate::live::{local_time, Live};
use crate::route::execution_link;
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
            // Hidden rather than shown on demand: Leptos's `Show` (a memo) costs
            // kilobytes of wasm; the rows are keyed either way.
            <p class="muted" hidden=move || load_error().is_some() || !live.with_executions(Vec::is_empty)>
                "No executions yet."
            </p>
            <table hidden=move || live.with_executions(Vec::is_empty)>
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
            <td>{execution_link(id)}</td>
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

//! One execution's page: its fields (live), Cancel while it runs, its output (live).

use leptos::prelude::*;
use serde_json::Value;
use shared::{Execution, Timestamp};
use uuid::Uuid;

use crate::components::maintenance::CancelButtons;
use crate::live::{local_time, Live};
use crate::output::{self, Follow};
use crate::session::Session;

/// The page of execution `id`.
#[component]
pub fn ExecutionPage(id: Uuid) -> impl IntoView {
    let live = expect_context::<Live>();
    let session = expect_context::<Session>();
    // Read into the live store (which events keep current), then the output.
    let output = Follow::new(id, session, live);
    output.connect();
    view! {
        <section class="card" aria-label="Execution">
            <h2>"Execution " <span class="mono">{id.to_string()}</span></h2>
            {move || output.error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            {move || live.execution(id).map(|execution| {
                let status = execution.status;
                view! {
                    <p>
                        <span id="execution-status" class=format!("badge badge-{status}") data-status=status.as_str()>
                            {status.as_str()}
                        </span>
                        " "
                        {(!status.is_end()).then(|| view! { <CancelButtons id /> })}
                    </p>
                    <dl>
                        {fields(execution)
                            .into_iter()
                            .map(|(name, value)| view! { <dt>{name}</dt><dd>{value}</dd> })
                            .collect_view()}
                    </dl>
                }
            })}
        </section>
        <section class="card" aria-label="Output">
            <h2 id="output-title">"Output"</h2>
            <div id=output::LOG_ID class="output" role="log" tabindex="0" aria-labelledby="output-title"></div>
        </section>
    }
}

/// Every field but the id and status, in words.
fn fields(execution: Execution) -> Vec<(&'static str, String)> {
    let time = |at: Option<Timestamp>| at.as_ref().map_or_else(|| "—".into(), local_time);
    let parameters: Vec<_> =
        execution.parameters.iter().map(|(name, value)| format!("{name} = {}", shown(value))).collect();
    let mut fields = vec![
        ("Workflow", execution.workflow_id),
        ("Deployment", execution.deployment_id),
        ("Parameters", if parameters.is_empty() { "—".into() } else { parameters.join(", ") }),
        ("Created", local_time(&execution.created_at)),
        ("By", execution.created_by),
        ("Started", time(execution.started_at)),
        ("Ended", time(execution.ended_at)),
    ];
    if !execution.error.is_empty() {
        fields.push(("Error", execution.error));
    }
    fields
}

/// A parameter's value as text. Numbers are formatted by the browser (Rust's
/// float formatting would add kilobytes); lists and objects are only named.
fn shown(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => integer.to_string(),
            None => js_sys::Number::from(number.as_f64().unwrap_or_default())
                .to_string_with_radix(10)
                .map(String::from)
                .unwrap_or_default(),
        },
        Value::Bool(true) => "true".into(),
        Value::Bool(false) => "false".into(),
        Value::Null => "null".into(),
        Value::Array(_) => "[…]".into(),
        Value::Object(_) => "{…}".into(),
    }
}

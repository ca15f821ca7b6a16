//! The form that starts an execution: a workflow of the catalog, the
//! deployment, the parameters (name and value rows), queue.
//!
//! The inputs keep their own values; the form's data is read when it is
//! sent (`FormData`), so no signal mirrors each field. The catalog's
//! `<select>` replaces the workflow's text field once it has arrived, and a
//! parameter row is added or removed in the page itself: a keyed list of rows
//! would cost the panel kilobytes of wasm for what two DOM calls do.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{Element, HtmlOptionElement};

use crate::api::{self, StartRequest};
use crate::form;
use crate::live::Live;
use crate::session::Session;
use crate::task::Task;

/// The class of a row's Remove button.
const REMOVE: &str = "secondary remove";

/// A new parameter row's inputs and button: constant markup, no user text.
const BLANK_ROW: &str = r#"<input name="parameter-name" aria-label="Parameter name" placeholder="name"><input name="parameter-value" aria-label="Parameter value" placeholder="value"><button type="button" class="secondary remove" aria-label="Remove this parameter">Remove</button>"#;

/// Starts an execution; the answer is merged into the live store.
#[component]
pub fn StartForm() -> impl IntoView {
    let live = expect_context::<Live>();
    let session = StoredValue::new(expect_context::<Session>());
    // The workflow is typed until the catalog is read, then chosen from it:
    // while maintenance mode is on the gate refuses the catalog, and an
    // execution can still be queued.
    let catalog = Task::new();
    if let Some(session) = session.try_get_value() {
        catalog.run(async move {
            let workflows = api::workflows(&session.token).await.map_err(|error| {
                let mut said = String::from("The catalog of workflows cannot be read: ");
                said.push_str(&session.explain(&error));
                said
            })?;
            if workflows.is_empty() {
                return Err("The manager has no workflows: its workflows directory holds no program.".into());
            }
            // The form may be gone by now (a lookup by id costs less than a `NodeRef`).
            let document = document();
            if let (Some(typed), Ok(select)) =
                (document.get_element_by_id("workflow"), document.create_element("select"))
            {
                for name in ["id", "name", "required"] {
                    let _ = select.set_attribute(name, &typed.get_attribute(name).unwrap_or_default());
                }
                for workflow in workflows {
                    let mut text = workflow.id.clone();
                    if !workflow.description.is_empty() {
                        text.push_str(" — ");
                        text.push_str(&workflow.description);
                    }
                    if let Ok(option) = HtmlOptionElement::new_with_text_and_value(&text, &workflow.id) {
                        let _ = select.append_child(&option);
                    }
                }
                let _ = typed.replace_with_with_node_1(&select);
            }
            Ok(String::new())
        });
    }
    // A new row goes before the button that added it; a row goes when its Remove is clicked.
    let add_or_remove = |event: leptos::ev::MouseEvent| {
        let Some(button) = event.target().and_then(|target| target.dyn_into::<Element>().ok()) else { return };
        match button.id().as_str() {
            "add-parameter" => {
                if let Ok(row) = document().create_element("div") {
                    row.set_class_name("parameter");
                    row.set_inner_html(BLANK_ROW);
                    let _ = button.before_with_node_1(&row);
                }
            }
            _ if button.class_name() == REMOVE => {
                if let Some(row) = button.parent_element() {
                    row.remove();
                }
            }
            _ => {}
        }
    };
    let start = Task::new();
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(data) = form::data(&event) else { return };
        let (names, values) = (data.get_all("parameter-name"), data.get_all("parameter-value"));
        let mut parameters = Vec::new();
        for row in 0..names.length() {
            let name = form::text(names.get(row));
            if !name.trim().is_empty() {
                parameters.push((name, form::text(values.get(row))));
            }
        }
        let new = StartRequest {
            workflow_id: form::text(data.get("workflow_id")),
            deployment_id: form::text(data.get("deployment_id")),
            parameters,
            queue: data.has("queue"),
        };
        let Some(session) = session.try_get_value() else { return };
        // The manager checks the rest; its answer is shown below.
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
    view! {
        <form class="card start" on:submit=submit aria-label="Start an execution">
            <h2>"Start an execution"</h2>
            {move || catalog.error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <label>"Workflow" <input id="workflow" name="workflow_id" required /></label>
            <label>"Deployment" <input id="deployment" name="deployment_id" required /></label>
            // The example workflows read `duration_seconds` (default 5): the first row.
            <fieldset class="parameters" on:click=add_or_remove>
                <legend>"Parameters"</legend>
                <div class="parameter">
                    <input name="parameter-name" aria-label="Parameter name" placeholder="name" value="duration_seconds" />
                    <input name="parameter-value" aria-label="Parameter value" placeholder="value" value="5" />
                    <button type="button" class=REMOVE aria-label="Remove this parameter">"Remove"</button>
                </div>
                <button id="add-parameter" type="button" class="secondary">"Add a parameter"</button>
            </fieldset>
            <label class="check">
                <input id="queue" name="queue" type="checkbox" />
                "Queue it if maintenance mode is on"
            </label>
            <button id="start" type="submit" disabled=move || start.pending()>"Start"</button>
            {move || start.outcome().map(|said| {
                let (class, text) = match said {
                    Ok(text) => ("ok", text),
                    Err(text) => ("error", text),
                };
                view! { <p class=class role="alert">{text}</p> }
            })}
        </form>
    }
}

//! Forms keep their own inputs; what was typed is read when a form is sent.
//! No signal mirrors each field: `bind:value` cost the panel a kilobyte of
//! gzipped wasm for what the browser already holds (BENCHMARKS.md, panel size).

use leptos::ev::SubmitEvent;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::FormData;

/// The fields of the form that `event` sends.
pub fn data(event: &SubmitEvent) -> Option<FormData> {
    FormData::new_with_form(event.target()?.unchecked_ref()).ok()
}

/// One field's text (`""` if the form has no such field).
pub fn text(value: JsValue) -> String {
    value.as_string().unwrap_or_default()
}

/// One field's whole number (`None` if empty or not one).
pub fn number(value: JsValue) -> Option<u64> {
    text(value).trim().parse().ok()
}

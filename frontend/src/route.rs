//! The panel's pages as addresses (`/`, `/executions`, `/executions/<id>`, `/history`):
//! links are plain `<a href>`; one listener on the window shows a link's page
//! in place (no reload) and keeps the address with the browser's history, so
//! back and forward work, and an address opened directly shows its page (the
//! manager answers every panel path with `index.html`).

use leptos::ev::MouseEvent;
use leptos::prelude::*;
use uuid::Uuid;
use wasm_bindgen::JsCast;

/// A page of the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/`: the status and the admin controls.
    Maintenance,
    /// `/executions`: start one; the list.
    Executions,
    /// `/executions/<id>`: one execution and its output.
    Execution(Uuid),
    /// `/history`: the picture of the last 30 days and the audit.
    History,
}

impl Route {
    /// The page at `path`; an unknown path is the maintenance page.
    pub fn parse(path: &str) -> Self {
        if path == "/history" {
            return Self::History;
        }
        match path.strip_prefix("/executions") {
            Some("" | "/") => Self::Executions,
            Some(rest) => {
                rest.strip_prefix('/').and_then(|id| Uuid::try_parse(id).ok()).map_or(Self::Executions, Self::Execution)
            }
            None => Self::Maintenance,
        }
    }

    /// The page's address.
    pub fn path(self) -> String {
        match self {
            Self::Maintenance => "/".into(),
            Self::Executions => "/executions".into(),
            Self::Execution(id) => format!("/executions/{id}"),
            Self::History => "/history".into(),
        }
    }
}

/// The current page, from the address now, on every back or forward, and
/// on every plain click on a link to a panel page. For the root component:
/// the listeners live as long as the page.
pub fn current() -> RwSignal<Route> {
    let route = RwSignal::new(Route::parse(&location_path()));
    // The root never goes away, so neither do its listeners.
    std::mem::forget(window_event_listener(leptos::ev::popstate, move |_| route.set(Route::parse(&location_path()))));
    std::mem::forget(window_event_listener(leptos::ev::click, move |event| {
        if let Some(path) = followed(&event) {
            event.prevent_default();
            if let Ok(history) = window().history() {
                let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
            }
            route.set(Route::parse(&path));
        }
    }));
    route
}

/// The panel path of the link a plain click is on; none for a click with a
/// modifier (new tab, new window: the browser's) or elsewhere.
fn followed(event: &MouseEvent) -> Option<String> {
    if event.button() != 0 || event.ctrl_key() || event.meta_key() || event.shift_key() || event.alt_key() {
        return None;
    }
    let target: web_sys::Element = event.target()?.dyn_into().ok()?;
    let href = target.closest("a[href^='/']").ok()??.get_attribute("href")?;
    (!href.starts_with("/api/")).then_some(href)
}

fn location_path() -> String {
    window().location().pathname().unwrap_or_default()
}

/// A link to an execution's page, its id as the text.
pub fn execution_link(id: uuid::Uuid) -> impl IntoView {
    view! { <a href=Route::Execution(id).path() class="mono">{id.to_string()}</a> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_pages_round_trip() {
        let id = Uuid::from_u128(7);
        for route in [Route::Maintenance, Route::Executions, Route::Execution(id), Route::History] {
            assert_eq!(Route::parse(&route.path()), route);
        }
        assert_eq!(Route::parse("/executions/"), Route::Executions);
        assert_eq!(Route::parse("/executions/not-an-id"), Route::Executions);
        assert_eq!(Route::parse("/anything"), Route::Maintenance);
    }
}

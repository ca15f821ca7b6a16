//! The panel's pages as addresses (`/`, `/executions`, `/executions/<id>`):
//! links change the address with the browser's history (no reload; back and
//! forward work), and an address opened directly shows its page (the manager
//! answers every panel path with `index.html`).

use leptos::ev::MouseEvent;
use leptos::prelude::*;
use uuid::Uuid;

/// A page of the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/`: the status and the admin controls.
    Maintenance,
    /// `/executions`: start one; the list.
    Executions,
    /// `/executions/<id>`: one execution and its output.
    Execution(Uuid),
}

impl Route {
    /// The page at `path`; an unknown path is the maintenance page.
    pub fn parse(path: &str) -> Self {
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
        }
    }
}

/// The current page, from the address now and on every back or forward.
/// For the root component: the listener lives as long as the page.
pub fn current() -> RwSignal<Route> {
    let route = RwSignal::new(Route::parse(&location_path()));
    // The root never goes away, so neither does its listener.
    std::mem::forget(window_event_listener(leptos::ev::popstate, move |_| route.set(Route::parse(&location_path()))));
    route
}

fn location_path() -> String {
    window().location().pathname().unwrap_or_default()
}

/// A link to `to` (for `<a href=to.path() on:click=…>`): a plain click shows
/// the page in place; a click with a modifier (new tab, new window) is the browser's.
pub fn on_click(to: Route) -> impl Fn(MouseEvent) + 'static {
    let route = expect_context::<RwSignal<Route>>();
    move |event: MouseEvent| {
        if event.button() != 0 || event.ctrl_key() || event.meta_key() || event.shift_key() || event.alt_key() {
            return;
        }
        event.prevent_default();
        if let Ok(history) = window().history() {
            let _ = history.push_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&to.path()));
        }
        route.set(to);
    }
}

/// A link to an execution's page, its id as the text.
pub fn execution_link(id: uuid::Uuid) -> impl IntoView {
    let to = Route::Execution(id);
    view! { <a href=to.path() class="mono" on:click=on_click(to)>{id.to_string()}</a> }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_pages_round_trip() {
        let id = Uuid::from_u128(7);
        for route in [Route::Maintenance, Route::Executions, Route::Execution(id)] {
            assert_eq!(Route::parse(&route.path()), route);
        }
        assert_eq!(Route::parse("/executions/"), Route::Executions);
        assert_eq!(Route::parse("/executions/not-an-id"), Route::Executions);
        assert_eq!(Route::parse("/anything"), Route::Maintenance);
    }
}

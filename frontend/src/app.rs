//! The page frame: sign-in, then the header (who, live state, navigation,
//! sign-out), the banner, and the current page. The parts it puts together
//! live below it: the session (`session.rs`), the live store (`live.rs`), the pages.

use leptos::prelude::*;
use shared::TokenResponse;

use crate::api;
use crate::components::banner::Banner;
use crate::components::execution::ExecutionPage;
use crate::components::executions::ExecutionsPage;
use crate::components::history::HistoryPage;
use crate::components::login::Login;
use crate::components::maintenance::MaintenancePage;
use crate::live::{self, Live};
use crate::route::{self, Route};
use crate::session::{self, Session};
use crate::task::Task;

/// The admin panel's root.
#[component]
pub fn App() -> impl IntoView {
    // The page asked for survives a sign-in: an address opened before signing in shows after it.
    provide_context(route::current());
    let token = RwSignal::new(session::load());
    // Why the user must sign in again ("" for none): read when the form appears.
    let notice = StoredValue::new(String::new());
    let signed_in = Callback::new(move |new: TokenResponse| {
        session::save(&new);
        notice.set_value(String::new());
        token.set(Some(new));
    });
    let signed_out = Callback::new(move |message: Option<String>| {
        session::clear();
        notice.set_value(message.unwrap_or_default());
        token.set(None);
    });
    move || match token.get() {
        None => view! {
            <header class="top"><h1>"Manager"</h1><span class="subtitle">"Maintenance mode"</span></header>
            <main><Login notice=Some(notice.get_value()).filter(|n| !n.is_empty()) on_signed_in=signed_in /></main>
        }
        .into_any(),
        Some(token) => view! { <SignedIn token signed_out /> }.into_any(),
    }
}

#[component]
fn SignedIn(token: TokenResponse, signed_out: Callback<Option<String>>) -> impl IntoView {
    let expired = Callback::new(move |message: String| signed_out.run(Some(message)));
    let session = Session::new(&token, expired);
    let live = live::connect(token.value.clone(), expired);
    provide_context::<Live>(live);
    provide_context(session.clone());
    // The token stays valid for hours and has travelled in an event-stream
    // URL: sign-out revokes it before forgetting it. If the manager cannot be
    // reached, it is forgotten all the same (it expires by itself).
    let sign_out = Task::new();
    let revoking = StoredValue::new(session.clone());
    let route = expect_context::<RwSignal<Route>>();
    // An execution's page is under the executions page: its link is marked as the current section.
    let nav = move |target: Route, id: &'static str, label: &'static str| {
        view! {
            <a id=id class="nav" href=target.path()
                aria-current=move || match (route.get(), target) {
                    (now, _) if now == target => Some("page"),
                    (Route::Execution(_), Route::Executions) => Some("true"),
                    _ => None,
                }>
                {label}
            </a>
        }
    };
    view! {
        <header class="top">
            <h1>"Manager"</h1>
            <nav aria-label="Pages">
                {nav(Route::Maintenance, "nav-maintenance", "Maintenance")}
                {nav(Route::Executions, "nav-executions", "Executions")}
                {nav(Route::History, "nav-history", "History")}
            </nav>
            <span id="connection" class="connection" data-state=move || live.connection.get().as_str()>
                {move || live.connection.get().as_str()}
            </span>
            <span class="who">{format!("{} ({})", token.username, token.role)}</span>
            <button id="sign-out" class="secondary" on:click=move |_| {
                    let Some(session) = revoking.try_get_value() else { return };
                    sign_out.run(async move {
                        let _ = api::revoke(&session.token, session.token_id).await;
                        signed_out.try_run(None);
                        Ok(String::new())
                    });
                }
                disabled=move || sign_out.pending()>
                "Sign out"
            </button>
        </header>
        <Banner />
        <main>
            {move || match route.get() {
                Route::Maintenance => view! { <MaintenancePage /> }.into_any(),
                Route::Executions => view! { <ExecutionsPage /> }.into_any(),
                Route::Execution(id) => view! { <ExecutionPage id /> }.into_any(),
                Route::History => view! { <HistoryPage /> }.into_any(),
            }}
        </main>
    }
}

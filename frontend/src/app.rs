//! The page: sign in, then the maintenance-mode status.

use leptos::prelude::*;
use shared::TokenResponse;

use crate::components::login::Login;
use crate::components::status_card::StatusCard;
use crate::{api, session};

/// The admin panel's root.
#[component]
pub fn App() -> impl IntoView {
    let session = RwSignal::new(session::load());
    let notice = RwSignal::new(None::<String>);
    let signed_in = Callback::new(move |token: TokenResponse| {
        session::save(&token);
        notice.set(None);
        session.set(Some(token));
    });
    let sign_out = move |message: Option<String>| {
        session::clear();
        notice.set(message);
        session.set(None);
    };
    view! {
        <header class="top">
            <h1>"Manager"</h1>
            <span class="subtitle">"Maintenance mode"</span>
            {move || {
                session
                    .get()
                    .map(|token| {
                        view! {
                            <span class="who">{format!("{} ({})", token.username, token.role)}</span>
                            <button id="sign-out" class="secondary" on:click=move |_| sign_out(None)>
                                "Sign out"
                            </button>
                        }
                    })
            }}
        </header>
        <main>
            {move || match session.get() {
                None => view! { <Login notice=notice.get_untracked() on_signed_in=signed_in /> }.into_any(),
                Some(token) => view! { <Status token=token.value on_expired=move |m| sign_out(Some(m)) /> }.into_any(),
            }}
        </main>
    }
}

/// The status, fetched with the session's token.
#[component]
fn Status(token: String, on_expired: impl Fn(String) + Copy + Send + Sync + 'static) -> impl IntoView {
    let status = LocalResource::new(move || {
        let token = token.clone();
        async move { api::maintenance_status(&token).await }
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading the maintenance status…"</p> }>
            {move || {
                status
                    .get()
                    .map(|result| match result {
                        Ok(status) => view! { <StatusCard status /> }.into_any(),
                        Err(error) if error.needs_sign_in() => {
                            on_expired(format!("{error}. Please sign in again."));
                            ().into_any()
                        }
                        Err(error) => view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any(),
                    })
            }}
        </Suspense>
        <button class="secondary" on:click=move |_| status.refetch()>
            "Refresh"
        </button>
    }
}

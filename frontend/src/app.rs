//! The page: the maintenance-mode status, fetched from the manager.

use leptos::prelude::*;

use crate::api;
use crate::components::status_card::StatusCard;

/// The admin panel's root.
#[component]
pub fn App() -> impl IntoView {
    let status = LocalResource::new(api::maintenance_status);
    view! {
        <header class="top">
            <h1>"Manager"</h1>
            <span class="subtitle">"Maintenance mode"</span>
        </header>
        <main>
            <Suspense fallback=|| view! { <p class="muted">"Loading the maintenance status…"</p> }>
                {move || {
                    status
                        .get()
                        .map(|result| match result {
                            Ok(status) => view! { <StatusCard status /> }.into_any(),
                            Err(error) => {
                                view! { <p class="error" role="alert">{error.to_string()}</p> }.into_any()
                            }
                        })
                }}
            </Suspense>
            <button class="secondary" on:click=move |_| status.refetch()>
                "Refresh"
            </button>
        </main>
    }
}

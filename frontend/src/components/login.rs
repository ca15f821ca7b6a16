//! The sign-in form.

use leptos::prelude::*;
use leptos::task::spawn_local;
use shared::TokenResponse;

use crate::api;

/// Asks for a username and password and reports the token it got.
#[component]
pub fn Login(
    /// Why the user must sign in (e.g. an expired session), shown above the form.
    notice: Option<String>,
    /// Called with the new token.
    on_signed_in: Callback<TokenResponse>,
) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(notice);
    let busy = RwSignal::new(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        busy.set(true);
        spawn_local(async move {
            match api::sign_in(&username.get_untracked(), &password.get_untracked()).await {
                Ok(token) => on_signed_in.run(token),
                Err(failure) => error.set(Some(failure.to_string())),
            }
            busy.set(false);
        });
    };
    view! {
        <form class="card login" on:submit=submit aria-label="Sign in">
            <h2>"Sign in"</h2>
            {move || error.get().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <label>
                "Username"
                <input id="username" name="username" autocomplete="username" required
                    bind:value=username />
            </label>
            <label>
                "Password"
                <input id="password" name="password" type="password" autocomplete="current-password" required
                    bind:value=password />
            </label>
            <button id="sign-in" type="submit" disabled=move || busy.get()>"Sign in"</button>
        </form>
    }
}

//! The sign-in form.

use leptos::prelude::*;
use shared::TokenResponse;

use crate::api;
use crate::form;
use crate::task::Task;

/// Asks for a username and password and reports the token it got.
#[component]
pub fn Login(
    /// Why the user must sign in (e.g. an expired session), shown above the form.
    notice: Option<String>,
    /// Called with the new token.
    on_signed_in: Callback<TokenResponse>,
) -> impl IntoView {
    let sign_in = Task::new();
    let busy = move || sign_in.pending();
    let error = move || match sign_in.outcome() {
        Some(ended) => ended.err(),
        None => notice.clone(),
    };
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let Some(data) = form::data(&event) else { return };
        let (username, password) = (form::text(data.get("username")), form::text(data.get("password")));
        sign_in.run(async move {
            match api::sign_in(&username, &password).await {
                Ok(token) => {
                    // This form is gone once the callback has run.
                    on_signed_in.try_run(token);
                    Ok(String::new())
                }
                Err(failure) => Err(failure.to_string()),
            }
        });
    };
    view! {
        <form class="card login" on:submit=submit aria-label="Sign in">
            <h2>"Sign in"</h2>
            {move || error().map(|message| view! { <p class="error" role="alert">{message}</p> })}
            <label>
                "Username"
                <input id="username" name="username" autocomplete="username" required />
            </label>
            <label>
                "Password"
                <input id="password" name="password" type="password" autocomplete="current-password" required />
            </label>
            <button id="sign-in" type="submit" disabled=busy>"Sign in"</button>
        </form>
    }
}

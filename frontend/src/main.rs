//! The admin panel: mounts the app on the page trunk built.

mod api;
mod app;
mod clock;
mod components;
mod form;
mod live;
mod markup;
mod output;
mod route;
mod session;
mod stream;
mod task;
mod timeline;

fn main() {
    // No panic hook: its message formatting costs over 1 KB of gzipped wasm,
    // and the panel must not panic at all (a panic traps the wasm, which the
    // browser reports as `RuntimeError: unreachable`; the browser tests fail on it).
    leptos::mount::mount_to_body(app::App);
}

//! The admin panel: mounts the app on the page trunk built.

mod api;
mod app;
mod components;
mod live;
mod session;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}

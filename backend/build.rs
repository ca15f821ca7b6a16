//! Release builds embed the built admin panel, `dist/` at the workspace root
//! (src/panel.rs, rust-embed). rust-embed's `include_bytes!` makes cargo watch
//! the files it embedded; a new build of the panel rewrites `index.html`
//! (trunk names the wasm after its hash), so watching that file catches the
//! rest, and a panel built after a release build without one.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() != Ok("release") {
        // Debug builds read dist/ at run time: nothing to watch.
        return;
    }
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let index = std::path::Path::new(&manifest).join("../dist/index.html");
    // A missing file counts as changed: every release build looks again until the panel is built.
    println!("cargo:rerun-if-changed={}", index.display());
    if !index.is_file() {
        println!(
            "cargo:warning=no built admin panel at {}: this release build of the manager serves none \
             (run scripts/build-panel first)",
            index.display()
        );
    }
}

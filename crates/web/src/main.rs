//! The browser entry point.

#[cfg(target_family = "wasm")]
fn main() {
    console_error_panic_hook::set_once();
    // The engine's worker instantiates this module too: there is no page to mount there
    // (it starts through `tandem_engine_worker`).
    if web_sys::window().is_none() {
        return;
    }
    tandem_web::platform::mark("tandem-main");
    leptos::mount::mount_to_body(tandem_web::App);
    tandem_web::platform::mark("tandem-mounted");
}

/// The app runs only in a browser; a native build exists for `cargo test --workspace`.
#[cfg(not(target_family = "wasm"))]
fn main() {
    eprintln!("tandem-web runs in a browser: build it with `trunk build --release`");
}

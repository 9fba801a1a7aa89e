//! The browser entry point.

#[cfg(target_family = "wasm")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(tandem_web::App);
}

/// The app runs only in a browser; a native build exists for `cargo test --workspace`.
#[cfg(not(target_family = "wasm"))]
fn main() {
    eprintln!("tandem-web runs in a browser: build it with `trunk build --release`");
}

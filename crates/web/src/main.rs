//! The browser entry point.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(tandem_web::App);
}

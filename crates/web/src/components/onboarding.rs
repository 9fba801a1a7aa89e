//! The first step: create an account with this browser as its primary device.

use leptos::prelude::*;

/// The "create account" form. `on_create` gets the chosen name and answers with an error
/// sentence, or `None` once the account exists.
#[component]
pub(crate) fn CreateAccount(
    /// Starts the creation; the returned signal turns `Some(error)` on failure.
    on_create: Callback<String>,
    /// Whether creation is running.
    busy: ReadSignal<bool>,
    /// The last failure, for people.
    error: ReadSignal<String>,
) -> impl IntoView {
    let handle = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        on_create.run(handle.get_untracked());
    };
    view! {
        <section class="card onboarding" aria-labelledby="create-heading">
            <h2 id="create-heading">"Create your account"</h2>
            <p class="muted small">
                "This browser becomes your account's main device and holds its keys. You can link up to four more devices later."
            </p>
            <form class="server-form" on:submit=submit>
                <label for="handle-input">"Your name on Tandem"</label>
                <input
                    id="handle-input"
                    data-testid="handle-input"
                    autocomplete="username"
                    spellcheck="false"
                    placeholder="e.g. alice"
                    aria-describedby="handle-help"
                    prop:value=move || handle.get()
                    on:input=move |ev| handle.set(event_target_value(&ev))
                />
                <p id="handle-help" class="muted small">
                    "3 to 32 letters, digits, '_' or '.'. People find you by it."
                </p>
                <div class="actions">
                    <button class="button button-primary" type="submit" data-testid="create-account" disabled=move || busy.get()>
                        {move || if busy.get() { "Creating your keys…" } else { "Create account" }}
                    </button>
                </div>
                <Show when=move || busy.get()>
                    <p class="muted small" role="status" aria-busy="true">
                        "Generating keys and registering with the server…"
                    </p>
                </Show>
                <p class="error" role="alert" data-testid="create-error">{move || error.get()}</p>
            </form>
        </section>
    }
}

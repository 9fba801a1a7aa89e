//! The card showing which relay this app uses, with a form to change it.

use leptos::prelude::*;
use send_wrapper::SendWrapper;

use crate::config;
use crate::transport::{ConnectionState, RelayClient};

/// Server address, version and latency, and the setting to use another server.
#[component]
pub(crate) fn ServerCard(
    /// The connection state.
    state: ReadSignal<ConnectionState>,
    /// The relay client, told about a new address.
    client: SendWrapper<RelayClient>,
    /// The address in use.
    server_url: RwSignal<String>,
) -> impl IntoView {
    let client = StoredValue::new(client);
    let (editing, set_editing) = signal(false);
    let (draft, set_draft) = signal(String::new());
    let (error, set_error) = signal(None::<String>);

    let apply = move |input: Option<String>| match config::set_server_url(input.as_deref()) {
        Ok(url) => {
            server_url.set(url.clone());
            client.with_value(|c| c.set_url(url));
            set_error.set(None);
            set_editing.set(false);
        }
        Err(e) => set_error.set(Some(e.to_string())),
    };

    let details = move || match state.get() {
        ConnectionState::Connected { server_version, latency_ms } => {
            let latency = latency_ms.map(|ms| format!(" · {ms} ms round trip")).unwrap_or_default();
            format!("Tandem server {server_version}{latency}")
        }
        ConnectionState::Connecting { .. } => "Connecting…".to_owned(),
        ConnectionState::Offline { .. } => "Not reachable right now".to_owned(),
    };

    view! {
        <section class="card" aria-labelledby="server-heading">
            <h2 id="server-heading">"Server"</h2>
            <dl class="facts">
                <dt>"Address"</dt>
                <dd><code data-testid="server-url">{move || server_url.get()}</code></dd>
                <dt>"Status"</dt>
                <dd data-testid="server-details">{details}</dd>
            </dl>
            <Show
                when=move || editing.get()
                fallback=move || view! {
                    <div class="actions">
                        <button class="button" on:click=move |_| {
                            set_draft.set(server_url.get_untracked());
                            set_editing.set(true);
                        }>"Use another server"</button>
                        <Show when=move || !config::is_default(&server_url.get())>
                            <button class="button button-quiet" on:click=move |_| apply(None)>
                                "Use this page's server"
                            </button>
                        </Show>
                    </div>
                }
            >
                <form
                    class="server-form"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        apply(Some(draft.get_untracked()));
                    }
                    on:keydown=move |ev| if ev.key() == "Escape" {
                        set_error.set(None);
                        set_editing.set(false);
                    }
                >
                    <label for="server-input">"Server address"</label>
                    <input
                        id="server-input"
                        type="text"
                        inputmode="url"
                        autocomplete="url"
                        spellcheck="false"
                        placeholder="https://chat.example.com"
                        aria-describedby="server-help server-error"
                        prop:value=move || draft.get()
                        on:input=move |ev| set_draft.set(event_target_value(&ev))
                    />
                    <p id="server-help" class="muted small">
                        "The address of a Tandem server, for example https://chat.example.com or http://localhost:8080."
                    </p>
                    <p id="server-error" class="error small" role="alert">{move || error.get()}</p>
                    <div class="actions">
                        <button class="button button-primary" type="submit">"Connect"</button>
                        <button class="button button-quiet" type="button" on:click=move |_| {
                            set_error.set(None);
                            set_editing.set(false);
                        }>"Cancel"</button>
                    </div>
                </form>
            </Show>
        </section>
    }
}

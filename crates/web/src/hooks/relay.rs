//! `use_relay`: a [`RelayClient`] tied to the component's lifetime, with its state as a signal.

use leptos::prelude::*;
use send_wrapper::SendWrapper;

use crate::transport::{ConnectionState, RelayClient};

/// Options of [`use_relay`].
pub struct UseRelayOptions {
    /// The relay's WebSocket URL.
    pub url: String,
}

/// What [`use_relay`] returns.
#[derive(Clone)]
pub struct UseRelayReturn {
    /// The connection state, updated on every change.
    pub state: ReadSignal<ConnectionState>,
    /// The client, for requests, retrying and changing the server.
    pub client: SendWrapper<RelayClient>,
}

/// Connects to the relay for as long as the calling component lives. Coming back online or
/// to the tab retries at once instead of waiting out the backoff.
pub fn use_relay(options: UseRelayOptions) -> UseRelayReturn {
    let (state, set_state) = signal(ConnectionState::Connecting { attempt: 1 });
    let client = RelayClient::start(options.url, move |s| set_state.set(s));

    let online = {
        let client = SendWrapper::new(client.clone());
        window_event_listener_untyped("online", move |_| client.retry_now())
    };
    let visible = {
        let client = SendWrapper::new(client.clone());
        window_event_listener_untyped("focus", move |_| {
            if matches!(client.state(), ConnectionState::Offline { .. }) {
                client.retry_now();
            }
        })
    };
    let stopper = SendWrapper::new(client.clone());
    on_cleanup(move || {
        online.remove();
        visible.remove();
        stopper.stop();
    });
    UseRelayReturn { state, client: SendWrapper::new(client) }
}

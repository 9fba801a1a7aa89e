//! The connection badge in the top bar and the banner shown while offline.

use leptos::prelude::*;
use send_wrapper::SendWrapper;

use crate::transport::{ConnectionState, RelayClient, duration_between};

/// Whole seconds from `now_ms` until `at_ms`, rounded up.
fn seconds_until(at_ms: f64, now_ms: f64) -> u64 {
    let d = duration_between(now_ms, at_ms);
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A small pill: "Connected", "Connecting…" or "Offline". Announced to screen readers when
/// it changes.
#[component]
pub(crate) fn ConnectionBadge(
    /// The connection state to show.
    state: ReadSignal<ConnectionState>,
) -> impl IntoView {
    let class = move || match state.get() {
        ConnectionState::Connected { .. } => "badge badge-ok",
        ConnectionState::Connecting { .. } => "badge badge-wait",
        ConnectionState::Offline { .. } => "badge badge-down",
    };
    let label = move || match state.get() {
        ConnectionState::Connected { .. } => "Connected",
        ConnectionState::Connecting { .. } => "Connecting…",
        ConnectionState::Offline { .. } => "Offline",
    };
    let title = move || match state.get() {
        ConnectionState::Connected { latency_ms: Some(ms), .. } => format!("Connected · {ms} ms"),
        ConnectionState::Connected { .. } => "Connected to the server".into(),
        ConnectionState::Connecting { attempt } if attempt > 1 => {
            format!("Connecting (attempt {attempt})")
        }
        ConnectionState::Connecting { .. } => "Connecting to the server".into(),
        ConnectionState::Offline { reason, .. } => reason,
    };
    view! {
        <span class=class role="status" aria-live="polite" title=title data-testid="connection-state">
            <span class="dot" aria-hidden="true"></span>
            {label}
        </span>
    }
}

/// Explains an outage and offers to retry at once. Hidden while connected.
#[component]
pub(crate) fn OfflineBanner(
    /// The connection state.
    state: ReadSignal<ConnectionState>,
    /// Ticking wall clock, for the countdown.
    now: ReadSignal<f64>,
    /// The relay client, to retry.
    client: SendWrapper<RelayClient>,
    /// The relay's address, shown so people can check it.
    server_url: Signal<String>,
) -> impl IntoView {
    let client = StoredValue::new(client);
    move || match state.get() {
        ConnectionState::Offline { retry_at_ms, reason } => {
            let secs = seconds_until(retry_at_ms, now.get());
            let countdown = if secs == 0 {
                "Retrying now…".to_owned()
            } else {
                format!("Retrying in {secs} s.")
            };
            Some(view! {
                <div class="banner banner-down" role="alert" data-testid="offline-banner">
                    <div class="banner-text">
                        <strong>"You're offline. "</strong>
                        {reason}
                        " Tandem keeps trying to reach "
                        <code>{move || server_url.get()}</code>
                        ". " {countdown}
                        " If this lasts, check your network or the server address below."
                    </div>
                    <button class="button button-small" on:click=move |_| client.with_value(|c| c.retry_now())>
                        "Retry now"
                    </button>
                </div>
            })
        }
        _ => None,
    }
}

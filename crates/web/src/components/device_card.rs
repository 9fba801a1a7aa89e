//! The card describing this browser as a Tandem device.

use leptos::prelude::*;

use crate::hooks::DeviceStatus;
use crate::platform::format_datetime;

/// Shows the persistent device record, or why it is unavailable.
#[component]
pub(crate) fn DeviceCard(
    /// The device record's status.
    status: ReadSignal<DeviceStatus>,
) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="device-heading">
            <h2 id="device-heading">"This browser"</h2>
            {move || match status.get() {
                DeviceStatus::Loading => view! {
                    <p class="muted" aria-busy="true">"Opening local storage…"</p>
                }.into_any(),
                DeviceStatus::Failed(reason) => view! {
                    <p class="error" role="alert" data-testid="device-error">
                        {reason}
                        " Tandem keeps your keys and messages in this browser's storage; allow site data for this page (private windows may block it) and reload."
                    </p>
                }.into_any(),
                DeviceStatus::Ready { record, created, persistent } => {
                    let storage = match persistent {
                        Some(true) => "Kept by the browser (persistent)",
                        Some(false) => "May be cleared by the browser when space runs low",
                        None => "Browser storage",
                    };
                    view! {
                        <dl class="facts">
                            <dt>"Device"</dt>
                            <dd data-testid="device-name">{record.name.clone()}</dd>
                            <dt>"Local ID"</dt>
                            <dd><code data-testid="device-id" data-full-id=record.id.clone()>{record.display_id()}</code></dd>
                            <dt>"Set up"</dt>
                            <dd data-testid="device-created">{format_datetime(record.created_at_ms)}</dd>
                            <dt>"Storage"</dt>
                            <dd>{storage}</dd>
                        </dl>
                        {created.then(|| view! {
                            <p class="note">"This browser was just set up. Its local ID stays the same across reloads."</p>
                        })}
                    }.into_any()
                }
            }}
        </section>
    }
}

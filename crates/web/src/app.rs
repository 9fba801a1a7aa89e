//! The app shell: top bar, offline banner and the first screen.

use std::time::Duration;

use leptos::prelude::*;

use crate::components::{
    ConnectionBadge, DeviceCard, Logo, OfflineBanner, ServerCard, ThemeToggle,
};
use crate::config;
use crate::hooks::{UseRelayOptions, use_clock, use_device, use_relay, use_theme};
use crate::store::BrowserDb;

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let theme = use_theme();
    let server_url = RwSignal::new(config::server_url());
    let relay = use_relay(UseRelayOptions { url: server_url.get_untracked() });
    let device = use_device(BrowserDb::NAME);
    let now = use_clock(Duration::from_secs(1));

    view! {
        <div class="app">
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="topbar">
                <div class="brand">
                    <Logo/>
                    <span class="brand-name">"Tandem"</span>
                </div>
                <div class="topbar-actions">
                    <ConnectionBadge state=relay.state/>
                    <ThemeToggle theme=theme/>
                </div>
            </header>
            <OfflineBanner
                state=relay.state
                now=now
                client=relay.client.clone()
                server_url=server_url.into()
            />
            <main id="main" class="welcome" tabindex="-1">
                <section class="hero">
                    <h1>"Private messages on every device"</h1>
                    <p class="lead">
                        "Tandem is end-to-end encrypted, and every device is a full participant: "
                        "this browser keeps working when your phone is off."
                    </p>
                </section>
                <div class="cards">
                    <DeviceCard status=device/>
                    <ServerCard state=relay.state client=relay.client.clone() server_url=server_url/>
                </div>
            </main>
        </div>
    }
}

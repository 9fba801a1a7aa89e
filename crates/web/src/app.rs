//! The app shell: top bar, offline banner, and either the welcome screen (create an account)
//! or the messenger.

use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;

use crate::components::{
    ConnectionBadge, CreateAccount, DeviceCard, Logo, Messenger, OfflineBanner, ServerCard,
    ThemeToggle,
};
use crate::config;
use crate::engine::{ENGINE_DB, Engine, Notice, describe};
use crate::hooks::{UseRelayOptions, use_clock, use_device, use_relay, use_theme};
use crate::store::BrowserDb;

/// Where the app stands.
#[derive(Clone)]
enum Phase {
    /// Opening local storage.
    Loading,
    /// No account on this browser yet.
    Welcome,
    /// Signed in.
    Ready(SendWrapper<Rc<Engine>>),
    /// This device was logged out from another device.
    Removed,
    /// Local storage failed.
    Failed(String),
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let theme = use_theme();
    let server_url = RwSignal::new(config::server_url());
    let relay = use_relay(UseRelayOptions { url: server_url.get_untracked() });
    let device = use_device(BrowserDb::NAME);
    let now = use_clock(Duration::from_secs(1));
    let phase = RwSignal::new(Phase::Loading);
    let (revision, set_revision) = signal(0u64);
    let notice = RwSignal::new(String::new());
    let (creating, set_creating) = signal(false);
    let (create_error, set_create_error) = signal(String::new());

    let on_notice = move |n: Notice| match n {
        Notice::Changed => set_revision.update(|r| *r += 1),
        Notice::Error(e) => notice.set(e),
        Notice::Removed => phase.set(Phase::Removed),
    };

    {
        let relay = relay.client.clone();
        spawn_local(async move {
            match Engine::open(ENGINE_DB).await {
                Ok(Some(client)) => {
                    let engine = Engine::start(client, (*relay).clone(), false, on_notice).await;
                    phase.set(Phase::Ready(SendWrapper::new(engine)));
                }
                Ok(None) => phase.set(Phase::Welcome),
                Err(e) => phase.set(Phase::Failed(describe(&e))),
            }
        });
    }

    let on_create = {
        let relay = relay.client.clone();
        Callback::new(move |handle: String| {
            let handle = handle.trim().to_lowercase();
            if handle.is_empty() {
                set_create_error.set("Choose a name first.".into());
                return;
            }
            if !relay.is_connected() {
                set_create_error
                    .set("You're offline. Creating an account needs the server; try again when connected.".into());
                return;
            }
            set_create_error.set(String::new());
            set_creating.set(true);
            let relay = relay.clone();
            spawn_local(async move {
                let ua = web_sys::window()
                    .and_then(|w| w.navigator().user_agent().ok())
                    .unwrap_or_default();
                let name = crate::platform::device_name(&ua);
                match Engine::create_account(ENGINE_DB, &relay, &handle, &name).await {
                    Ok(client) => {
                        let engine = Engine::start(client, (*relay).clone(), true, on_notice).await;
                        phase.set(Phase::Ready(SendWrapper::new(engine)));
                    }
                    Err(e) => set_create_error.set(describe(&e)),
                }
                set_creating.set(false);
            });
        })
    };

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
            <Show when=move || !notice.with(String::is_empty)>
                <div class="toast" role="alert" data-testid="notice">
                    <span>{move || notice.get()}</span>
                    <button class="button button-small button-quiet" on:click=move |_| notice.set(String::new())>"Dismiss"</button>
                </div>
            </Show>
            {move || match phase.get() {
                Phase::Ready(engine) => view! {
                    <main id="main" class="chat-main-area" tabindex="-1">
                        <Messenger engine=engine revision=revision/>
                    </main>
                }.into_any(),
                Phase::Removed => view! {
                    <main id="main" class="welcome" tabindex="-1">
                        <section class="card" role="alert">
                            <h2>"Logged out"</h2>
                            <p>"This browser was removed from your account on another device. Its messages stay here until you clear the site's data; to use it again, link it anew."</p>
                        </section>
                    </main>
                }.into_any(),
                other => {
                    let failed = match other { Phase::Failed(e) => e, _ => String::new() };
                    let loading = matches!(phase.get_untracked(), Phase::Loading);
                    view! {
                        <main id="main" class="welcome" tabindex="-1">
                            <section class="hero">
                                <h1>"Private messages on every device"</h1>
                                <p class="lead">
                                    "Tandem is end-to-end encrypted, and every device is a full participant: "
                                    "this browser keeps working when your phone is off."
                                </p>
                            </section>
                            <p class="error" role="alert">{failed}</p>
                            <div class="cards">
                                <Show when=move || !loading>
                                    <CreateAccount on_create=on_create busy=creating error=create_error/>
                                </Show>
                                <DeviceCard status=device/>
                                <ServerCard state=relay.state client=relay.client.clone() server_url=server_url/>
                            </div>
                        </main>
                    }.into_any()
                }
            }}
        </div>
    }
}

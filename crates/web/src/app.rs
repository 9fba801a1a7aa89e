//! The app shell: top bar, offline banner, and either the welcome screen (create an account)
//! or the messenger.

use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;

use crate::components::{
    CallScreen, ChatRow, ConnectionBadge, CreateAccount, DeviceCard, LinkThisBrowser, LockScreen,
    Logo, Messenger, MessengerPreview, OfflineBanner, ResetKeys, ServerCard, ThemeToggle,
    chat_rows,
};
use crate::config;
use crate::device::engine::{ENGINE_DB, Engine, Notice, tab_names};
use crate::device::linking::{LinkOutcome, LinkView, Linker};
use crate::device::tabs::claim;
use crate::device::{Device, Host, SpawnError, View, WorkerHost};
use crate::hooks::{UseRelayOptions, use_clock, use_device, use_relay, use_theme};
use crate::store::BrowserDb;
use crate::text::describe;

/// Where the app stands.
#[derive(Clone)]
enum Phase {
    /// Opening local storage.
    Loading,
    /// Signed in: the chat list as read at start, while the engine opens.
    Preview(String, Vec<ChatRow>),
    /// No account on this browser yet.
    Welcome,
    /// Linking this browser to an existing account.
    Linking(SendWrapper<Rc<Linker>>),
    /// Signed in.
    Ready(SendWrapper<Device>),
    /// This device was logged out from another device.
    Removed,
    /// The relay refuses this device without a removal the account key signed: the keys
    /// stay; the person decides.
    Refused(String),
    /// The app lock is on: waiting for the passphrase or passkey.
    Locked(crate::lock::LockParams),
    /// Local storage failed.
    Failed(String),
}

/// The app lock of this browser, when `e` says the store is locked; `None` otherwise.
async fn locked(e: &tandem_core::client::ClientError) -> Option<crate::lock::LockParams> {
    if !crate::store::seal::is_locked(e) {
        return None;
    }
    crate::lock::current(ENGINE_DB).await.ok().flatten()
}

/// Shows this browser's device and starts its engine (this tab holds the device's Web
/// Lock): in a worker, off the page's thread, where this page can start one, otherwise here.
/// Commands wait for it to run.
async fn run_engine(
    client: tandem_core::client::Client<crate::store::IdbStore>,
    relay: crate::transport::RelayClient,
    registered_now: bool,
    on_notice: impl Fn(Notice) + 'static,
) -> Device {
    let view = View::start(client, true, on_notice);
    let device = Device::of_view(view.clone()).await;
    spawn_local(async move {
        let host = Host::start(ENGINE_DB, &relay, registered_now).await;
        if let Err(e) = &host {
            web_sys::console::error_1(&format!("Tandem's engine did not start: {e}").into());
        }
        view.hosted(host);
    });
    device
}

/// Takes `?server=` out of the address bar (it was answered).
fn forget_server_param() {
    let Some(w) = web_sys::window() else { return };
    let Ok(url) = web_sys::Url::new(&w.location().href().unwrap_or_default()) else { return };
    url.search_params().delete("server");
    if let Ok(history) = w.history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url.href()));
    }
}

#[component]
pub fn App() -> impl IntoView {
    let theme = use_theme();
    // A browser with an account stays with its relay; a link naming another one is asked
    // about (`switch_to`), never followed by itself.
    let (start_url, other) = config::start_server();
    let server_url = RwSignal::new(start_url);
    let switch_to = RwSignal::new(other);
    let relay = use_relay(UseRelayOptions { url: server_url.get_untracked() });
    // Leaving while a sent text is not in a store yet asks first (the journal keeps it
    // anyway, and the next start sends it).
    let unload = window_event_listener(leptos::ev::beforeunload, |ev| {
        if crate::journal::unsaved_here() {
            ev.prevent_default();
            ev.set_return_value("Your last message is still being saved.");
        }
    });
    on_cleanup(move || unload.remove());
    let now = use_clock(Duration::from_secs(1));
    let phase = RwSignal::new(Phase::Loading);
    let (revision, set_revision) = signal(0u64);
    let notice = RwSignal::new(String::new());
    let (creating, set_creating) = signal(false);
    let (create_error, set_create_error) = signal(String::new());

    let info = RwSignal::new(String::new());
    // The open conversation, kept here so a chat opened from the start preview stays open.
    let selected = RwSignal::new(None::<(tandem_core::client::Conversation, String)>);
    let start_rows = StoredValue::new(Vec::<ChatRow>::new());
    let (link_view, set_link_view) = signal(LinkView::Preparing);
    let (link_problem, set_link_problem) = signal(String::new());

    // Set when this browser was logged out, for the welcome screen to explain.
    let logged_out = RwSignal::new(String::new());
    // The device while its worker starts over with new keys (it hears when that is done).
    let parked = StoredValue::new(None::<SendWrapper<Device>>);
    // `on_notice` itself, for the device it starts again after a reset.
    let notices = StoredValue::new(None::<Callback<Notice>>);
    let relay_for_notice = StoredValue::new(relay.client.clone());
    // This tab's calls, for the device that is ready.
    let calls_slot = StoredValue::new(None::<SendWrapper<Rc<crate::call::Calls>>>);
    // The calls' signals belong to the app, not to the view of one phase: a notice may reach
    // them while the view is being replaced.
    let app_owner = StoredValue::new(Owner::current().map(SendWrapper::new));
    provide_context(crate::components::CallsContext(calls_slot));
    // Long work the engine reports (a large group's key going out).
    let work = RwSignal::new(None);
    provide_context(crate::components::WorkContext(work));
    let on_notice = move |n: Notice| {
        match n {
        Notice::Changed | Notice::DevicesChanged => set_revision.update(|r| *r += 1),
        Notice::Error(e) => notice.set(e),
        Notice::Progress(p) => work.set(p),
        Notice::Call(c) => {
            if let Some(calls) = calls_slot.get_value() {
                calls.on_notice(c);
            }
        }
        Notice::Restarting => {
            if let Phase::Ready(device) = phase.get_untracked() {
                parked.set_value(Some(device));
                selected.set(None);
                phase.set(Phase::Loading);
            }
        }
        Notice::Restarted => {
            let (Some(old), Some(notify)) = (parked.get_value(), notices.get_value()) else {
                return;
            };
            let host = old.host();
            spawn_local(async move {
                match Engine::open(ENGINE_DB).await {
                    Ok(Some(client)) => {
                        let view = View::start(client, true, move |n| notify.run(n));
                        view.hosted(host.ok_or(crate::device::StartError {
                            locked: false,
                            error: "the engine stopped".into(),
                        }));
                        let device = Device::of_view(view).await;
                        phase.set(Phase::Ready(SendWrapper::new(device)));
                    }
                    Ok(None) => phase.set(Phase::Welcome),
                    Err(e) => phase.set(Phase::Failed(describe(&e))),
                }
                parked.set_value(None);
            });
        }
        Notice::DevicesRefused(ids) => notice.set(format!(
            "The server listed {} that you did not link or that you logged out ({}). They were not added to your account, and nobody sends them messages. If this keeps happening, the server may be compromised.",
            if ids.len() == 1 { "a device" } else { "devices" },
            ids.iter().map(|d| format!("device {d}")).collect::<Vec<_>>().join(", ")
        )),
        Notice::RemovalUnproven => {
            if let Phase::Ready(device) = phase.get_untracked() {
                let handle = device.handle().to_owned();
                phase.set(Phase::Refused(handle));
            }
        }
        Notice::Removed => {
            if matches!(phase.get_untracked(), Phase::Removed) {
                return;
            }
            // The person chose to delete a locked browser's data (a forgotten passphrase): the
            // relay still lists the device, and only the main device can log it out.
            let forgotten = matches!(phase.get_untracked(), Phase::Locked(_));
            let handle = match phase.get_untracked() {
                Phase::Ready(device) => {
                    device.shut_down();
                    format!("@{}", device.handle())
                }
                Phase::Preview(handle, _) => format!("@{handle}"),
                _ => "your account".to_owned(),
            };
            selected.set(None);
            info.set(String::new());
            notice.set(String::new());
            phase.set(Phase::Removed);
            spawn_local(async move {
                crate::journal::clear();
                config::unbind_server();
                let outcome = crate::device::engine::wipe().await;
                logged_out.set(match outcome {
                    Ok(()) if forgotten => "This browser's messages and keys were deleted. It is still listed among your account's devices: log it out from your main device's device list, then link this browser again or create a new account.".to_owned(),
                    Ok(()) => format!(
                        "This browser was logged out of {handle}, and the messages and keys it kept were deleted. To use it again, create an account or link it anew."
                    ),
                    Err(e) => format!(
                        "This browser was logged out of {handle}, but its data is not deleted yet: {e}."
                    ),
                });
                phase.set(Phase::Welcome);
                // The relay closed this device's socket: connect again for a new start.
                relay_for_notice.with_value(|r| r.retry_now());
            });
        }
    }
    };

    notices.set_value(Some(Callback::new(on_notice)));

    // Whether this tab holds the engine's Web Lock (so runs the engine once unlocked).
    let holds_engine = StoredValue::new(false);
    // After an unlock: open the store with the key and start as the tab's role says.
    let resume = {
        let relay = relay.client.clone();
        Callback::new(move |()| {
            let relay = relay.clone();
            phase.set(Phase::Loading);
            spawn_local(async move {
                match Engine::open(ENGINE_DB).await {
                    Ok(Some(client)) => {
                        let device = if holds_engine.get_value() {
                            run_engine(client, (*relay).clone(), false, on_notice).await
                        } else {
                            Device::of_view(View::start(client, false, on_notice)).await
                        };
                        phase.set(Phase::Ready(SendWrapper::new(device)));
                    }
                    Ok(None) => phase.set(Phase::Welcome),
                    Err(e) => phase.set(Phase::Failed(describe(&e))),
                }
            });
        })
    };

    {
        let relay = relay.client.clone();
        spawn_local(async move {
            // One tab runs the engine; the others view it until it closes. The lock is
            // asked for while the database opens.
            let (lock, _) = tab_names(ENGINE_DB);
            let heir = (*relay).clone();
            let take_over = move || {
                holds_engine.set_value(true);
                spawn_local(async move {
                    match Engine::open(ENGINE_DB).await {
                        Ok(Some(client)) => {
                            let device = run_engine(client, heir, false, on_notice).await;
                            phase.set(Phase::Ready(SendWrapper::new(device)));
                        }
                        Ok(None) => phase.set(Phase::Welcome),
                        Err(e) => match locked(&e).await {
                            // Still locked: the unlock starts the engine here.
                            Some(_) if matches!(phase.get_untracked(), Phase::Locked(_)) => {}
                            Some(params) => phase.set(Phase::Locked(params)),
                            None => phase.set(Phase::Failed(describe(&e))),
                        },
                    }
                });
            };
            // The page's script read the chat list while the app loaded: show it at once.
            let preview = async {
                if let Some(boot) = crate::boot::take().await {
                    crate::platform::mark("tandem-boot-parsed");
                    let rows = chat_rows(
                        &boot.conversations,
                        boot.account,
                        &boot.names,
                        &Default::default(),
                    );
                    start_rows.set_value(rows.clone());
                    if matches!(phase.get_untracked(), Phase::Loading) {
                        phase.set(Phase::Preview(boot.handle, rows));
                    }
                }
            };
            let ((opened, claimed), ()) = futures_util::future::join(
                futures_util::future::join(Engine::open(ENGINE_DB), claim(&lock, take_over)),
                preview,
            )
            .await;
            crate::platform::mark("tandem-engine-open");
            if claimed {
                holds_engine.set_value(true);
            }
            match opened {
                Ok(Some(client)) => {
                    // A device from before bindings existed is bound where it runs now.
                    if config::bound_server().is_none() {
                        config::bind_server(&server_url.get_untracked());
                    }
                    let device = if claimed {
                        run_engine(client, (*relay).clone(), false, on_notice).await
                    } else {
                        Device::of_view(View::start(client, false, on_notice)).await
                    };
                    phase.set(Phase::Ready(SendWrapper::new(device)));
                }
                Ok(None) => phase.set(Phase::Welcome),
                Err(e) => match locked(&e).await {
                    Some(params) => phase.set(Phase::Locked(params)),
                    None => phase.set(Phase::Failed(describe(&e))),
                },
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
                let name = crate::platform::this_browser();
                claim(&tab_names(ENGINE_DB).0, || {}).await;
                // The keys are made and the account registered in the engine's worker, off
                // this thread; where no worker can run, here.
                match WorkerHost::register(ENGINE_DB, &relay.url(), &handle, &name).await {
                    Ok(host) => match Engine::open(ENGINE_DB).await {
                        Ok(Some(client)) => {
                            config::bind_server(&server_url.get_untracked());
                            let view = View::start(client, true, on_notice);
                            view.hosted(Ok(Host::Worker(host)));
                            let device = Device::of_view(view).await;
                            phase.set(Phase::Ready(SendWrapper::new(device)));
                        }
                        Ok(None) => set_create_error
                            .set("The account was not saved on this browser. Try again.".into()),
                        Err(e) => set_create_error.set(describe(&e)),
                    },
                    Err(SpawnError::Failed(why)) => set_create_error.set(why),
                    Err(SpawnError::Unsupported(_)) => {
                        match Engine::create_account(ENGINE_DB, &relay, &handle, &name).await {
                            Ok(client) => {
                                config::bind_server(&server_url.get_untracked());
                                let device =
                                    run_engine(client, (*relay).clone(), true, on_notice).await;
                                phase.set(Phase::Ready(SendWrapper::new(device)));
                            }
                            Err(e) => set_create_error.set(describe(&e)),
                        }
                    }
                }
                set_creating.set(false);
            });
        })
    };

    // Primary: start over with a new account key (from the device list).
    let reset_keys = Callback::new(move |()| {
        let Phase::Ready(device) = phase.get_untracked() else { return };
        const DONE: &str = "New security keys are in use. Your linked devices were logged out, and your contacts will see that your security code changed.";
        // The engine resets; the hosting tab reopens when it runs the new device (see
        // `Notice::Restarted`), other tabs reload.
        spawn_local(async move {
            match device.reset_account().await {
                Ok(()) => info.set(DONE.into()),
                Err(e) => notice.set(format!("The keys were not reset: {}", e.message)),
            }
        });
    });
    provide_context(ResetKeys(reset_keys));

    let start_link = {
        let relay = relay.client.clone();
        Callback::new(move |()| {
            set_link_view.set(LinkView::Preparing);
            set_link_problem.set(String::new());
            let relay = relay.clone();
            spawn_local(async move {
                let name = crate::platform::this_browser();
                let engine_relay = (*relay).clone();
                let on_outcome = move |o: LinkOutcome| match o {
                    LinkOutcome::View(v) => {
                        if !matches!(v, LinkView::Preparing) {
                            set_link_problem.set(String::new());
                        }
                        set_link_view.set(v);
                    }
                    LinkOutcome::Problem(p) => set_link_problem.set(p),
                    LinkOutcome::Linked(client, matching) => {
                        let relay = engine_relay.clone();
                        config::bind_server(&server_url.get_untracked());
                        spawn_local(async move {
                            let handle = client.account().await.handle.clone();
                            claim(&tab_names(ENGINE_DB).0, || {}).await;
                            let device = run_engine(*client, relay, true, on_notice).await;
                            info.set(format!(
                                "This browser is now linked to @{handle}. Both screens showed {matching}."
                            ));
                            phase.set(Phase::Ready(SendWrapper::new(device)));
                        });
                    }
                };
                match Linker::start(ENGINE_DB, (*relay).clone(), name, on_outcome).await {
                    Ok(linker) => phase.set(Phase::Linking(SendWrapper::new(linker))),
                    Err(e) => set_create_error.set(describe(&e)),
                }
            });
        })
    };
    let restart_link = Callback::new(move |()| {
        if let Phase::Linking(l) = phase.get_untracked() {
            l.restart();
        }
    });
    let cancel_link = Callback::new(move |()| {
        if let Phase::Linking(l) = phase.get_untracked() {
            l.cancel();
        }
        phase.set(Phase::Welcome);
    });
    let confirm_link = Callback::new(move |()| {
        if let Phase::Linking(l) = phase.get_untracked() {
            l.confirm();
        }
    });
    let reject_link = Callback::new(move |()| {
        if let Phase::Linking(l) = phase.get_untracked() {
            l.reject();
        }
    });
    // The person chose what to do about a link that named another relay.
    let keep_relay = move |_| {
        switch_to.set(None);
        forget_server_param();
    };
    let use_other_relay = move |_| {
        if let Some(other) = switch_to.get_untracked() {
            config::bind_server(&other);
            forget_server_param();
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
        }
    };
    // After a refusal the relay did not prove: try again, or delete this browser's data.
    let retry_login = move |_| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    };
    let delete_data = move |_| on_notice(Notice::Removed);

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
            {move || switch_to.get().map(|other| view! {
                <section class="toast toast-warning" role="alertdialog" aria-labelledby="switch-heading" data-testid="relay-switch">
                    <div>
                        <h2 id="switch-heading" class="small">"A link asks to change your server"</h2>
                        <p>
                            "This browser's account is on " <strong data-testid="relay-bound">{server_url.get_untracked()}</strong>
                            ". The link you opened asks Tandem to use " <strong data-testid="relay-requested">{other}</strong>
                            " instead. Only switch if you set that server up yourself: another server cannot reach your account and could watch who you talk to."
                        </p>
                    </div>
                    <div class="actions">
                        <button class="button button-primary" data-testid="relay-keep" on:click=keep_relay>"Keep my server"</button>
                        <button class="button button-quiet" data-testid="relay-use-other" on:click=use_other_relay>"Switch server"</button>
                    </div>
                </section>
            })}
            <Show when=move || !info.with(String::is_empty)>
                <div class="toast toast-info" role="status" data-testid="info">
                    <span>{move || info.get()}</span>
                    <button class="button button-small button-quiet" on:click=move |_| info.set(String::new())>"Dismiss"</button>
                </div>
            </Show>
            {move || match phase.get() {
                Phase::Linking(_) => view! {
                    <main id="main" class="welcome" tabindex="-1">
                        <LinkThisBrowser
                            view=link_view
                            problem=link_problem
                            now=now
                            on_restart=restart_link
                            on_cancel=cancel_link
                            on_confirm=confirm_link
                            on_reject=reject_link
                        />
                    </main>
                }.into_any(),
                Phase::Ready(device) => {
                    // Each ready device (after a reset, or when this tab takes over the engine)
                    // gets its own calls; the previous one's media and listeners go.
                    let make = || crate::call::Calls::new((*device).clone());
                    let calls = SendWrapper::new(match app_owner.get_value() {
                        Some(owner) => owner.with(make),
                        None => make(),
                    });
                    if let Some(old) = calls_slot.get_value() {
                        old.close();
                    }
                    calls_slot.set_value(Some(calls.clone()));
                    let calls = StoredValue::new(calls);
                    view! {
                    <CallScreen calls=calls now=now/>
                    <Show when={let viewer = device.is_viewer(); move || viewer}>
                        <p class="toast" role="status" data-testid="viewer-note">
                            "Tandem is running in another tab of this browser; this tab follows it and takes over when that tab closes."
                        </p>
                    </Show>
                    <main id="main" class="chat-main-area" tabindex="-1">
                        <Messenger
                            engine=device
                            revision=revision
                            initial=start_rows.get_value()
                            selected=selected
                        />
                    </main>
                }.into_any()
                }
                Phase::Preview(handle, rows) => view! {
                    <main id="main" class="chat-main-area" tabindex="-1">
                        <MessengerPreview handle=handle chats=rows selected=selected/>
                    </main>
                }.into_any(),
                Phase::Locked(params) => view! {
                    <main id="main" class="welcome" tabindex="-1">
                        <LockScreen
                            params=params
                            on_unlocked=resume
                            on_delete=Callback::new(move |()| on_notice(Notice::Removed))
                        />
                    </main>
                }.into_any(),
                Phase::Loading => view! {
                    <main id="main" class="welcome" tabindex="-1" aria-busy="true">
                        <p class="muted opening" role="status">"Opening Tandem…"</p>
                    </main>
                }.into_any(),
                Phase::Refused(handle) => view! {
                    <main id="main" class="welcome" tabindex="-1">
                        <section class="card logged-out" role="alert" data-testid="refused">
                            <h2>"The server no longer accepts this browser"</h2>
                            <p>{format!("The server says this browser is not a device of @{handle} any more, but it showed no proof from your account that it was logged out. Your messages and keys stay on this browser.")}</p>
                            <p class="muted small">"If you logged it out, or reset your account on your main device, delete this browser's data. Otherwise the server may be misbehaving: try again later."</p>
                            <div class="actions">
                                <button class="button button-primary" data-testid="refused-retry" on:click=retry_login>"Try again"</button>
                                <button class="button button-quiet" data-testid="refused-delete" on:click=delete_data>"Delete this browser's data"</button>
                            </div>
                        </section>
                    </main>
                }.into_any(),
                Phase::Removed => view! {
                    <main id="main" class="welcome" tabindex="-1" aria-busy="true">
                        <p class="muted opening" role="status" data-testid="logging-out">
                            <span class="spinner" aria-hidden="true"></span>
                            " Logged out: deleting this browser's messages and keys…"
                        </p>
                    </main>
                }.into_any(),
                other => {
                    // This browser's device record is shown only here: read it only here, so
                    // a signed-in start has one IndexedDB connection to wait for.
                    let device = use_device(BrowserDb::NAME);
                    let failed = match other { Phase::Failed(e) => e, _ => String::new() };
                    view! {
                        <main id="main" class="welcome" tabindex="-1">
                            <section class="hero">
                                <h1>"Private messages on every device"</h1>
                                <p class="lead">
                                    "Tandem is end-to-end encrypted, and every device is a full participant: "
                                    "this browser keeps working when your phone is off."
                                </p>
                            </section>
                            <Show when=move || !logged_out.with(String::is_empty)>
                                <section class="card logged-out" role="alert" data-testid="logged-out">
                                    <h2>"Logged out"</h2>
                                    <p>{move || logged_out.get()}</p>
                                </section>
                            </Show>
                            <p class="error" role="alert">{failed}</p>
                            <div class="cards">
                                    <CreateAccount on_create=on_create busy=creating error=create_error/>
                                    <section class="card onboarding" aria-labelledby="link-start-heading">
                                        <h2 id="link-start-heading">"Already on Tandem?"</h2>
                                        <p class="muted small">
                                            "Use your account here too: link this browser to the device that has your account. Your messages stay end-to-end encrypted, and this browser keeps working when that device is off."
                                        </p>
                                        <div class="actions">
                                            <button class="button" data-testid="start-link" on:click=move |_| start_link.run(())>
                                                "Link to an account"
                                            </button>
                                        </div>
                                    </section>
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

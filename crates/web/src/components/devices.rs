//! The account's devices: name, platform, when linked and last active; linking a new one.

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::wire::relay::{DeviceInfo, MAX_COMPANIONS};

use super::link::{LinkDevice, ago};
use crate::device::Device;

/// Starts this account over with a new account key (see `Engine::reset_account`); the app
/// provides it as context.
#[derive(Clone, Copy)]
pub(crate) struct ResetKeys(pub Callback<()>);

/// The devices view.
#[component]
pub(crate) fn Devices(
    /// The engine.
    engine: StoredValue<SendWrapper<Device>>,
    /// Bumped whenever the engine stored something or the devices changed.
    revision: ReadSignal<u64>,
    /// Back to the chats (narrow windows).
    on_back: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let devices = RwSignal::new(Vec::<DeviceInfo>::new());
    let error = RwSignal::new(String::new());
    let loading = RwSignal::new(true);
    let me = RwSignal::new((0u32, false));
    let companions =
        Memo::new(move |_| devices.with(|d| d.iter().filter(|d| d.device_id != 1).count()));
    let at_cap = move || companions.get() >= MAX_COMPANIONS as usize;
    let confirm_all = RwSignal::new(false);
    let remove_all = move |_| {
        if !confirm_all.get_untracked() {
            confirm_all.set(true);
            return;
        }
        confirm_all.set(false);
        let ids: Vec<u32> = devices
            .with_untracked(|d| d.iter().map(|d| d.device_id).filter(|&id| id != 1).collect());
        let e = engine.get_value();
        spawn_local(async move {
            for id in ids {
                if let Err(err) = e.remove_device(id).await {
                    error.set(format!("Not every device could be logged out: {}", err.message));
                    return;
                }
            }
        });
    };
    let renaming = RwSignal::new(false);
    let new_name = RwSignal::new(String::new());
    let save_name = move || {
        let name = new_name.get_untracked();
        let e = engine.get_value();
        spawn_local(async move {
            match e.rename_device(&name).await {
                Ok(()) => {
                    renaming.set(false);
                    error.set(String::new());
                }
                Err(err) => error.set(format!("The name was not changed: {}", err.message)),
            }
        });
    };

    Effect::new(move |_| {
        revision.track();
        let e = engine.get_value();
        spawn_local(async move {
            me.set((e.device_id(), e.is_primary()));
            match e.devices().await {
                Ok(list) => {
                    devices.set(list);
                    error.set(String::new());
                }
                Err(err) => {
                    error.set(format!("The device list could not be loaded: {}", err.message))
                }
            }
            loading.set(false);
        });
    });

    view! {
        <header class="conversation-head">
            <button class="icon-button back" aria-label="Back to chats" on:click=move |_| on_back()>"←"</button>
            <h2>"Devices"</h2>
        </header>
        <div class="devices-pane" data-testid="devices">
            <p class="muted small">
                "Every device has its own keys, and your main device signs the list of them, so nobody else can add one. Up to four devices can be linked besides the main one."
            </p>
            <Show when=move || !loading.get()>
                <p class="companion-count" data-testid="companion-count">
                    {move || format!("{} of {MAX_COMPANIONS} linked devices", companions.get())}
                </p>
            </Show>
            <Show when=move || loading.get()>
                <p class="muted" role="status" aria-busy="true">"Loading devices…"</p>
            </Show>
            <ul class="device-list" aria-label="Your devices">
                <For each=move || devices.get() key=|d| (d.device_id, d.last_seen_ms, d.name.clone()) let:d>
                    {
                        let this = move || me.get().0 == d.device_id;
                        let role = if d.device_id == 1 { "Main device" } else { "Linked device" };
                        let id = d.device_id;
                        // The primary logs out any companion; a companion only itself.
                        let can_remove = move || {
                            let (mine, primary) = me.get();
                            id != 1 && (primary || mine == id)
                        };
                        let confirming = RwSignal::new(false);
                        let remove = move |_| {
                            if !confirming.get_untracked() {
                                confirming.set(true);
                                return;
                            }
                            let e = engine.get_value();
                            spawn_local(async move {
                                if let Err(err) = e.remove_device(id).await {
                                    error.set(format!("The device could not be logged out: {}", err.message));
                                }
                                confirming.set(false);
                            });
                        };
                        let name = d.name.clone();
                        let label = move || if this() { "Log out this browser".to_owned() } else { format!("Log out {name}") };
                        view! {
                            <li class="device-row" data-testid="device-row">
                                <span class="avatar device-avatar" aria-hidden="true">{if d.device_id == 1 { "★" } else { "▣" }}</span>
                                <span class="device-main">
                                    <Show
                                        when=move || this() && renaming.get()
                                        fallback={
                                            let name = StoredValue::new(d.name.clone());
                                            move || view! {
                                                <span class="device-name">
                                                    {name.get_value()}
                                                    <Show when=this>
                                                        <span class="pill">"This device"</span>
                                                        <button
                                                            class="button button-small button-quiet"
                                                            data-testid="device-rename"
                                                            aria-label="Rename this device"
                                                            on:click=move |_| { new_name.set(name.get_value()); renaming.set(true); }
                                                        >"Rename"</button>
                                                    </Show>
                                                </span>
                                            }
                                        }
                                    >
                                        <form class="rename-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save_name(); }>
                                            <label for="device-name-input" class="visually-hidden">"This device's name"</label>
                                            <input
                                                id="device-name-input"
                                                data-testid="device-name-input"
                                                maxlength="64"
                                                prop:value=move || new_name.get()
                                                on:input=move |ev| new_name.set(event_target_value(&ev))
                                                on:keydown=move |ev: leptos::ev::KeyboardEvent| if ev.key() == "Escape" { renaming.set(false); }
                                            />
                                            <button class="button button-small button-primary" type="submit" data-testid="device-name-save">"Save"</button>
                                            <button class="button button-small button-quiet" type="button" on:click=move |_| renaming.set(false)>"Cancel"</button>
                                        </form>
                                    </Show>
                                    <span class="muted small">
                                        {format!("{role} · {} · linked {} · active {}", d.platform, ago(d.created_at_ms), ago(d.last_seen_ms))}
                                    </span>
                                </span>
                                <Show when=can_remove>
                                    <button
                                        class="button button-small device-remove"
                                        class:danger=move || confirming.get()
                                        aria-label=label.clone()
                                        data-testid="device-remove"
                                        on:click=remove
                                    >
                                        {move || if confirming.get() { "Confirm log out" } else { "Log out" }}
                                    </button>
                                </Show>
                            </li>
                        }
                    }
                </For>
            </ul>
            <Show when=move || me.get().1 && companions.get() != 0>
                <div class="actions">
                    <button
                        class="button button-small"
                        class:danger=move || confirm_all.get()
                        data-testid="remove-all"
                        on:click=remove_all
                    >
                        {move || if confirm_all.get() { "Confirm: log out every linked device" } else { "Log out all linked devices" }}
                    </button>
                </div>
            </Show>
            <p class="error" role="alert">{move || error.get()}</p>
            <Show when=move || me.get().1>
                <PasskeySection engine=engine/>
                <LinkDevice engine=engine at_cap=Signal::derive(at_cap)/>
                <ResetSection/>
            </Show>
            <Show when=move || !me.get().1 && !loading.get()>
                <p class="muted small">"To link another device, use your main device."</p>
            </Show>
            <super::lock::AppLockSection engine=engine/>
        </div>
    }
}

/// The primary's passkey: enrol one so that linking asks for the person's fingerprint, face
/// or screen lock, or remove it.
#[component]
fn PasskeySection(engine: StoredValue<SendWrapper<Device>>) -> impl IntoView {
    let enrolled = RwSignal::new(None::<bool>);
    let available = RwSignal::new(true);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(String::new());
    spawn_local(async move {
        available.set(crate::passkey::available().await);
        match crate::passkey::enrolled().await {
            Ok(p) => enrolled.set(Some(p.is_some())),
            Err(e) => error.set(format!("Your passkey setting could not be read: {e}.")),
        }
    });
    let enrol = move |_| {
        busy.set(true);
        error.set(String::new());
        let e = engine.get_value();
        spawn_local(async move {
            let account = e.account_id();
            let outcome = match crate::passkey::enrol(&account.0, e.handle()).await {
                Ok(passkey) => crate::passkey::keep(Some(passkey)).await,
                Err(why) => Err(format!("{why} No passkey was set up.")),
            };
            match outcome {
                Ok(()) => enrolled.set(Some(true)),
                Err(why) => error.set(why),
            }
            busy.set(false);
        });
    };
    let remove = move |_| {
        spawn_local(async move {
            match crate::passkey::keep(None).await {
                Ok(()) => enrolled.set(Some(false)),
                Err(why) => error.set(format!("The passkey could not be removed: {why}.")),
            }
        });
    };
    view! {
        <section class="passkey" aria-labelledby="passkey-heading" data-testid="passkey">
            <h3 id="passkey-heading">"Confirm links with a passkey"</h3>
            {move || match enrolled.get() {
                None => view! { <p class="muted small" role="status">"Checking…"</p> }.into_any(),
                Some(true) => view! {
                    <p data-testid="passkey-state" data-enrolled="true">"✓ Linking a device asks for your fingerprint, face or screen lock."</p>
                    <div class="actions">
                        <button class="button button-small" data-testid="passkey-remove" on:click=remove>"Remove passkey"</button>
                    </div>
                }.into_any(),
                Some(false) => view! {
                    <p data-testid="passkey-state" data-enrolled="false" class="muted small">
                        {move || if available.get() {
                            "Without a passkey, linking asks only for a click here. With one, it also asks for your fingerprint, face or screen lock, so someone using this browser cannot quietly add a device."
                        } else {
                            "This browser has no fingerprint, face or screen-lock check Tandem can use, so linking asks only for a click here."
                        }}
                    </p>
                    <div class="actions">
                        <button class="button button-small button-primary" data-testid="passkey-enrol" disabled=move || busy.get() || !available.get() on:click=enrol>
                            {move || if busy.get() { "Waiting for the passkey…" } else { "Set up a passkey" }}
                        </button>
                    </div>
                }.into_any(),
            }}
            <p class="error small" role="alert" data-testid="passkey-error">{move || error.get()}</p>
        </section>
    }
}

/// The primary's "start over with new keys": re-registers the account under a new account
/// key, after a second click.
#[component]
fn ResetSection() -> impl IntoView {
    let confirming = RwSignal::new(false);
    let reset = use_context::<ResetKeys>();
    let click = move |_| {
        if !confirming.get_untracked() {
            confirming.set(true);
            return;
        }
        if let Some(r) = reset {
            r.0.run(());
        }
    };
    view! {
        <section class="reset-keys" aria-labelledby="reset-heading">
            <h3 id="reset-heading">"Start over with new keys"</h3>
            <p class="muted small">
                "If you think someone got hold of this device's keys, give your account new ones. Every linked device is logged out, the chats on this browser are deleted, and your contacts see that your security code changed; those who verified you must accept the new code before their messages reach you."
            </p>
            <div class="actions">
                <button class="button button-small" class:danger=move || confirming.get() data-testid="reset-keys" on:click=click>
                    {move || if confirming.get() { "Confirm: new keys, log out all devices" } else { "Reset security keys" }}
                </button>
                <Show when=move || confirming.get()>
                    <button class="button button-small button-quiet" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </Show>
            </div>
        </section>
    }
}

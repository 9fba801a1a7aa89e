//! The app lock's screens: unlocking at start, and turning the lock on or off.

use futures_util::future::LocalBoxFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;

use crate::device::Device;
use crate::device::engine::ENGINE_DB;
use crate::lock::{LockError, LockParams, NewLock, Secret};

/// The start screen of a locked browser.
#[component]
pub(crate) fn LockScreen(
    /// How this browser is locked.
    params: LockParams,
    /// Called once the store is unlocked.
    on_unlocked: Callback<()>,
    /// Called when the person chooses to delete this browser's data instead.
    on_delete: Callback<()>,
) -> impl IntoView {
    let passphrase = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(String::new());
    let confirm_delete = RwSignal::new(false);
    let passkey = params.is_passkey();
    let unlock = move || {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(String::new());
        spawn_local(async move {
            let typed = passphrase.get_untracked();
            let secret = if passkey { Secret::Passkey } else { Secret::Passphrase(&typed) };
            match crate::lock::unlock(ENGINE_DB, secret).await {
                Ok(()) => {
                    passphrase.set(String::new());
                    on_unlocked.run(());
                }
                Err(e) => error.set(e.to_string()),
            }
            busy.set(false);
        });
    };
    let delete = move |_| {
        if confirm_delete.get_untracked() {
            on_delete.run(());
        } else {
            confirm_delete.set(true);
        }
    };
    view! {
        <section class="card lock-card" aria-labelledby="lock-heading" data-testid="locked">
            <h2 id="lock-heading">"Tandem is locked"</h2>
            <p class="muted small">
                {if passkey {
                    "Your messages and keys on this browser are encrypted. Unlock them with your passkey."
                } else {
                    "Your messages and keys on this browser are encrypted. Enter your passphrase to unlock them."
                }}
            </p>
            <form on:submit=move |ev| { ev.prevent_default(); unlock(); }>
                <Show when=move || !passkey>
                    <label class="field">
                        <span>"Passphrase"</span>
                        <input
                            type="password"
                            autocomplete="current-password"
                            data-testid="unlock-passphrase"
                            prop:value=move || passphrase.get()
                            on:input=move |ev| passphrase.set(event_target_value(&ev))
                            autofocus=true
                        />
                    </label>
                </Show>
                <div class="actions">
                    <button class="button button-primary" type="submit" data-testid="unlock" disabled=move || busy.get()>
                        {move || match (busy.get(), passkey) {
                            (true, _) => view! { <span class="spinner" aria-hidden="true"></span>" Unlocking…" }.into_any(),
                            (false, true) => "Unlock with passkey".into_any(),
                            (false, false) => "Unlock".into_any(),
                        }}
                    </button>
                </div>
            </form>
            <p class="error small" role="alert" data-testid="unlock-error">{move || error.get()}</p>
            <details class="muted small">
                <summary>"Forgot it?"</summary>
                <p>"Nobody can recover it, not even Tandem's server. You can delete this browser's data and link it to your account again; messages kept only here are lost."</p>
                <button class="button button-small button-quiet" data-testid="locked-delete" on:click=delete>
                    {move || if confirm_delete.get() { "Delete for good" } else { "Delete this browser's data" }}
                </button>
            </details>
        </section>
    }
}

/// Turning the app lock on (passphrase or passkey) or off, and locking now.
#[component]
pub(crate) fn AppLockSection(engine: StoredValue<SendWrapper<Device>>) -> impl IntoView {
    let current = RwSignal::new(None::<Option<LockParams>>);
    let first = RwSignal::new(String::new());
    let second = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(String::new());
    let done = RwSignal::new(String::new());
    let refresh = move || {
        spawn_local(async move {
            match crate::lock::current(ENGINE_DB).await {
                Ok(p) => current.set(Some(p)),
                Err(e) => error.set(e.to_string()),
            }
        });
    };
    refresh();
    let run = move |job: LocalBoxFuture<'static, Result<(), LockError>>, ok: &'static str| {
        busy.set(true);
        error.set(String::new());
        done.set(String::new());
        spawn_local(async move {
            match job.await {
                Ok(()) => {
                    first.set(String::new());
                    second.set(String::new());
                    done.set(ok.into());
                    refresh();
                }
                Err(e) => error.set(e.to_string()),
            }
            busy.set(false);
        });
    };
    let with_passphrase = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let how = NewLock::Passphrase(first.get_untracked(), second.get_untracked());
        run(
            Box::pin(crate::lock::lock(ENGINE_DB, how)),
            "The app lock is on: this browser asks for your passphrase when Tandem opens.",
        );
    };
    let with_passkey = move |_| {
        let e = engine.get_value();
        run(
            Box::pin(async move {
                let account = e.account_id();
                crate::lock::lock(
                    ENGINE_DB,
                    NewLock::Passkey(account.0.to_vec(), e.handle().to_owned()),
                )
                .await
            }),
            "The app lock is on: this browser asks for your passkey when Tandem opens.",
        );
    };
    let remove = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let passkey = current.get_untracked().flatten().is_some_and(|p| p.is_passkey());
        let typed = first.get_untracked();
        run(
            Box::pin(async move {
                let secret = if passkey { Secret::Passkey } else { Secret::Passphrase(&typed) };
                crate::lock::remove(ENGINE_DB, secret).await
            }),
            "The app lock is off.",
        );
    };
    view! {
        <section class="app-lock" aria-labelledby="app-lock-heading" data-testid="app-lock">
            <h3 id="app-lock-heading">"App lock"</h3>
            {move || match current.get() {
                None => view! { <p class="muted small" role="status">"Checking…"</p> }.into_any(),
                Some(None) => view! {
                    <p class="muted small" data-testid="app-lock-state" data-locked="false">
                        "Your messages and keys on this browser are encrypted, but the key sits in the browser's own files. Lock them with a passphrase or a passkey so that a copy of this browser's data reveals nothing."
                    </p>
                    <form class="stack" on:submit=with_passphrase>
                        <label class="field">
                            <span>"New passphrase"</span>
                            <input type="password" autocomplete="new-password" data-testid="lock-passphrase"
                                prop:value=move || first.get() on:input=move |ev| first.set(event_target_value(&ev))/>
                        </label>
                        <label class="field">
                            <span>"The same again"</span>
                            <input type="password" autocomplete="new-password" data-testid="lock-passphrase-again"
                                prop:value=move || second.get() on:input=move |ev| second.set(event_target_value(&ev))/>
                        </label>
                        <div class="actions">
                            <button class="button button-small button-primary" type="submit" data-testid="lock-with-passphrase" disabled=move || busy.get()>
                                {move || if busy.get() { "Locking…" } else { "Lock with passphrase" }}
                            </button>
                            <button class="button button-small" type="button" data-testid="lock-with-passkey" disabled=move || busy.get() on:click=with_passkey>
                                "Lock with a passkey"
                            </button>
                        </div>
                    </form>
                }.into_any(),
                Some(Some(params)) => {
                    let passkey = params.is_passkey();
                    view! {
                        <p data-testid="app-lock-state" data-locked="true">
                            {if passkey { "✓ Tandem asks for your passkey when it opens on this browser." } else { "✓ Tandem asks for your passphrase when it opens on this browser." }}
                        </p>
                        <form class="stack" on:submit=remove>
                            <Show when=move || !passkey>
                                <label class="field">
                                    <span>"Your passphrase, to turn the lock off"</span>
                                    <input type="password" autocomplete="current-password" data-testid="unlock-to-remove"
                                        prop:value=move || first.get() on:input=move |ev| first.set(event_target_value(&ev))/>
                                </label>
                            </Show>
                            <div class="actions">
                                <button class="button button-small" type="button" data-testid="lock-now" on:click=move |_| crate::lock::lock_now(ENGINE_DB)>"Lock now"</button>
                                <button class="button button-small button-quiet" type="submit" data-testid="lock-remove" disabled=move || busy.get()>"Turn the lock off"</button>
                            </div>
                        </form>
                    }.into_any()
                }
            }}
            <p class="small" role="status" data-testid="app-lock-done">{move || done.get()}</p>
            <p class="error small" role="alert" data-testid="app-lock-error">{move || error.get()}</p>
        </section>
    }
}

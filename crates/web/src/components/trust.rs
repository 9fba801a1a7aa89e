//! Trusting a contact: the security code screen (60 digits, QR, paste or scan the other
//! person's code), the contact's devices as signed by their account key, and the notices a
//! chat shows when the contact's key changed or the server listed a device they never
//! signed.

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::AccountId;
use tandem_core::client::DeviceListRecord;

use super::link::{camera, copy_to_clipboard};
use crate::device::engine::CodeView;
use crate::device::{ActionError, Device, ErrorKind, Scan};

/// The 60 digits in twelve groups of five.
fn groups(digits: &str) -> Vec<String> {
    digits.as_bytes().chunks(5).map(|c| String::from_utf8_lossy(c).into_owned()).collect()
}

/// A sentence for people about a failed code check.
fn code_problem(e: &ActionError) -> String {
    match e.kind {
        ErrorKind::KeyChanged => {
            "Their security code changed. Review the change in the chat first.".into()
        }
        _ => e.message.clone(),
    }
}

/// The chat's trust notices for `peer`: a changed key (held sends for a verified contact),
/// devices the server listed that the account never signed, an expired device list.
#[component]
pub(crate) fn TrustNotices(
    engine: StoredValue<SendWrapper<Device>>,
    peer: AccountId,
    name: String,
    /// What this browser knows (reloaded by the conversation).
    trust: RwSignal<Option<DeviceListRecord>>,
    /// Opens the security code screen.
    on_review: Callback<()>,
    /// In a group chat: the group (its waiting messages can go without `peer`).
    #[prop(optional)]
    group: Option<[u8; 16]>,
) -> impl IntoView {
    let error = RwSignal::new(String::new());
    let send_without = move |_| {
        let Some(g) = group else { return };
        let e = engine.get_value();
        spawn_local(async move {
            let command =
                crate::device::Command::SendWithout { group: g.to_vec(), member: peer.0.to_vec() };
            match e.run(command).await {
                Ok(_) => error.set(String::new()),
                Err(err) => error.set(err.message),
            }
        });
    };
    let acknowledge = move |_| {
        let e = engine.get_value();
        spawn_local(async move {
            match e.acknowledge_key_change(peer).await {
                Ok(()) => error.set(String::new()),
                Err(err) => error.set(err.message),
            }
        });
    };
    let held = move || trust.with(|t| t.as_ref().is_some_and(|t| t.pending_key.is_some()));
    let changed = move || {
        trust.with(|t| t.as_ref().is_some_and(|t| t.key_changed && t.pending_key.is_none()))
    };
    let rejected = move || trust.with(|t| t.as_ref().map_or(0, |t| t.rejected.len()));
    let expired = move || trust.with(|t| t.as_ref().is_some_and(|t| t.list_expired));
    let (n1, n2, n4) = (name.clone(), name.clone(), name.clone());
    let waits = match group {
        Some(_) => format!(
            "your messages to this group wait until you accept the new code or send them without {name}"
        ),
        None => "your messages wait here until you accept the new code".to_owned(),
    };
    let who = StoredValue::new(name);
    view! {
        <Show when=held>
            <div class="notice notice-warning" role="alert" data-testid="key-held-notice">
                <p>
                    <strong>{format!("{n1}'s security code changed.")}</strong>
                    {format!(" You had verified {n1}, so {waits}. {n1} may have set up Tandem again, or someone may be pretending to be them: ask them another way if you can.")}
                </p>
                <div class="actions">
                    <button class="button button-small" on:click=move |_| on_review.run(())>"View code"</button>
                    {group.map(|_| view! {
                        <button class="button button-small" data-testid="send-without" on:click=send_without>{format!("Send without {n1}")}</button>
                    })}
                    <button class="button button-small button-primary" data-testid="accept-key-change" on:click=acknowledge>"Accept and send"</button>
                </div>
            </div>
        </Show>
        <Show when=changed>
            <div class="notice" role="status" data-testid="key-change-notice">
                <p>{format!("{n2}'s security code changed, probably because they set up Tandem again. Compare the new code to be sure it is them.")}</p>
                <div class="actions">
                    <button class="button button-small" on:click=move |_| on_review.run(())>"View code"</button>
                    <button class="button button-small button-quiet" data-testid="dismiss-key-change" on:click=acknowledge>"OK"</button>
                </div>
            </div>
        </Show>
        <Show when=move || rejected() != 0>
            <div class="notice notice-warning" role="alert" data-testid="device-warning">
                <p>{move || { let n3 = who.get_value(); format!(
                    "The server lists {} for {n3} that {n3}'s account never signed. Tandem sends nothing to it; your messages go only to the devices {n3} linked.",
                    if rejected() == 1 { "a device".to_owned() } else { format!("{} devices", rejected()) },
                ) }}</p>
            </div>
        </Show>
        <Show when=expired>
            <div class="notice" role="status" data-testid="list-expired">
                <p>{format!("{n4}'s list of devices has expired, so messages go only to {n4}'s main device until it renews the list.")}</p>
            </div>
        </Show>
        <p class="error small" role="alert">{move || error.get()}</p>
    }
}

/// The security code screen for `peer`.
#[component]
pub(crate) fn SecurityCode(
    engine: StoredValue<SendWrapper<Device>>,
    peer: AccountId,
    name: String,
    /// Bumped when the store changed.
    revision: ReadSignal<u64>,
    on_close: Callback<()>,
) -> impl IntoView {
    let view_state = RwSignal::new(None::<Result<CodeView, String>>);
    let input = RwSignal::new(String::new());
    let result = RwSignal::new(None::<(bool, String)>);
    let checking = RwSignal::new(false);
    // How many checks have answered (tests wait for the next answer by it).
    let answers = RwSignal::new(0u32);
    let scanning = RwSignal::new(false);
    let video = NodeRef::<leptos::html::Video>::new();

    Effect::new(move |_| {
        revision.track();
        let e = engine.get_value();
        spawn_local(async move {
            let got = e.security_code(peer).await.map_err(|err| code_problem(&err));
            view_state.set(Some(got));
        });
    });

    let person = StoredValue::new(name.clone());
    let check = move |text: String| {
        if text.trim().is_empty() {
            result.set(Some((false, "Paste the other person's code first.".into())));
            answers.update(|n| *n += 1);
            return;
        }
        result.set(None);
        checking.set(true);
        let e = engine.get_value();
        let person = person.get_value();
        spawn_local(async move {
            let outcome = e.verify_code(peer, &text).await;
            checking.set(false);
            answers.update(|n| *n += 1);
            result.set(Some(match outcome {
                Ok(Scan::Verified) => (true, format!("The codes match: {person} is verified.")),
                Ok(Scan::KeysDiffer) => (false, format!(
                    "This code does not match. It may be someone else's code, or {person}'s security code changed. Nothing was changed."
                )),
                Ok(Scan::ListsDiffer { their_list, our_list }) => (false, match (their_list, our_list) {
                    (true, _) => format!("The account keys match, but {person} has a different list of devices than the one this browser sees. Someone may be showing one of you a different set of devices; do not mark them verified yet."),
                    _ => format!("The account keys match, but {person} sees a different list of your devices. Someone may be showing one of you a different set of devices; do not mark them verified yet."),
                }),
                Err(err) => (false, code_problem(&err)),
            }));
        });
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        check(input.get_untracked());
    };
    let scan = move |_| {
        let Some(el) = video.get() else { return };
        scanning.set(true);
        spawn_local(async move {
            let found = camera::scan(el).await;
            scanning.set(false);
            match found {
                Ok(t) => check(t),
                Err(e) => result.set(Some((false, e))),
            }
        });
    };
    let set_verified = move |verified: bool| {
        let e = engine.get_value();
        spawn_local(async move {
            if let Err(err) = e.set_verified(peer, verified).await {
                result.set(Some((false, code_problem(&err))));
            } else {
                result.set(None);
            }
        });
    };

    let title = format!("Security code with {name}");
    let heading = title.clone();
    view! {
        <div class="code-pane" data-testid="security-code" role="region" aria-label=title>
            <div class="code-head">
                <h3>{heading}</h3>
                <button class="button button-small button-quiet" data-testid="close-security-code" on:click=move |_| on_close.run(())>"Done"</button>
            </div>
            {move || match view_state.get() {
                None => view! {
                    <p class="muted" role="status" aria-busy="true"><span class="spinner" aria-hidden="true"></span>" Fetching both device lists…"</p>
                }.into_any(),
                Some(Err(why)) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
                Some(Ok(c)) => {
                    let svg = crate::device::linking::qr_svg(&c.text).unwrap_or_default();
                    let text = c.text.clone();
                    let verified = c.list.verified;
                    let pending = c.list.pending_key.is_some();
                    let devices = c.list.devices.clone();
                    let rejected = c.list.rejected.clone();
                    let name = name.clone();
                    view! {
                        <p class="muted small">
                            {format!("Compare these numbers with {name}, in person or on a call, or scan each other's QR code. The code covers all of {name}'s devices: it stays the same when they link or log out a device.")}
                        </p>
                        <p class="code-state" data-testid="verified-state">
                            {if pending { "Changed: review it in the chat" } else if verified { "✓ Verified" } else { "Not verified" }}
                        </p>
                        <div class="code-digits" data-testid="security-digits" aria-label="Security code digits">
                            {groups(&c.digits).into_iter().map(|g| view! { <span>{g}</span> }).collect_view()}
                        </div>
                        <div class="qr code-qr" role="img" aria-label="Your security code as a QR code" inner_html=svg></div>
                        <label for="security-code-text">"Your code as text, to send instead of showing the QR"</label>
                        <div class="code-text-row">
                            <textarea id="security-code-text" readonly rows="3" data-testid="security-code-text" spellcheck="false">{text.clone()}</textarea>
                            <button class="button button-small" on:click=move |_| copy_to_clipboard(&text)>"Copy"</button>
                        </div>
                        <div class="actions">
                            {if verified {
                                view! { <button class="button button-small" data-testid="clear-verified" on:click=move |_| set_verified(false)>"Clear verification"</button> }.into_any()
                            } else {
                                view! { <button class="button button-small" data-testid="mark-verified" disabled=pending on:click=move |_| set_verified(true)>"The numbers match: mark verified"</button> }.into_any()
                            }}
                        </div>
                        <h4>{format!("{name}'s devices")}</h4>
                        <ul class="device-list" aria-label=format!("{name}'s devices")>
                            {devices.into_iter().map(|d| view! {
                                <li class="device-row" data-testid="contact-device">
                                    <span class="avatar device-avatar" aria-hidden="true">{if d.device_id.is_primary() { "★" } else { "▣" }}</span>
                                    <span class="device-main">
                                        <span class="device-name">{if d.device_id.is_primary() { "Main device".to_owned() } else { format!("Linked device {}", d.device_id.get()) }}</span>
                                        <span class="muted small">"✓ Signed by the account key"</span>
                                    </span>
                                </li>
                            }).collect_view()}
                            {rejected.into_iter().map(|r| view! {
                                <li class="device-row rejected" data-testid="contact-device-rejected">
                                    <span class="avatar device-avatar" aria-hidden="true">"!"</span>
                                    <span class="device-main">
                                        <span class="device-name">{format!("Device {} listed by the server", r.device_id)}</span>
                                        <span class="error small">{format!("Not signed by the account key ({}): Tandem never sends to it.", r.reason)}</span>
                                    </span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
            <form class="server-form" on:submit=submit>
                <h4>"Check their code"</h4>
                <Show when=camera::available>
                    <button type="button" class="button" on:click=scan disabled=move || scanning.get()>
                        {move || if scanning.get() { "Looking for a QR code…" } else { "Scan their QR code" }}
                    </button>
                </Show>
                <label for="verify-input">"Or paste the text of their code"</label>
                <textarea
                    id="verify-input"
                    data-testid="verify-input"
                    rows="3"
                    spellcheck="false"
                    placeholder="tandem-code:…"
                    prop:value=move || input.get()
                    on:input=move |ev| input.set(event_target_value(&ev))
                ></textarea>
                <div class="actions">
                    <button class="button button-primary" type="submit" data-testid="verify-submit" disabled=move || checking.get()>
                        {move || if checking.get() { "Checking…" } else { "Check code" }}
                    </button>
                </div>
            </form>
            <video class="scanner" node_ref=video playsinline=true muted=true class:hidden=move || !scanning.get() aria-label="Camera view"></video>
            {move || result.get().map(|(ok, text)| {
                let n = answers.get_untracked();
                if ok {
                    view! { <p class="success" role="status" data-testid="verify-result" data-answer=n>{text}</p> }.into_any()
                } else {
                    view! { <p class="error" role="alert" data-testid="verify-result" data-answer=n>{text}</p> }.into_any()
                }
            })}
        </div>
    }
}

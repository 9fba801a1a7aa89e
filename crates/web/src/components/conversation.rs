//! One conversation: its messages as a moving window over what is loaded, older pages read
//! on request, the composer, and the trust notices above it.

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::client::{Conversation, MessageId, MessageRecord, Notice, OutgoingState};
use wasm_bindgen::JsCast;

use super::chat::{OLDER_PAGE, STEP, line_text, short_time, ticks, window};
use super::group::GroupInvitation;
use super::group_info::GroupInfo;
use super::message_info::MessageInfo;
use super::trust::{SecurityCode, TrustNotices};
use crate::device::{Command, Device};
use crate::groups::group_title;
use tandem_core::AccountId;
use tandem_core::client::GroupRecord;
use tandem_core::store::ClientStore;

/// Puts the cursor in the composer.
fn focus_composer() {
    let input = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("composer-input"))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(input) = input {
        let _ = input.focus();
    }
}

#[component]
pub(super) fn Conversation(
    engine: StoredValue<SendWrapper<Device>>,
    revision: ReadSignal<u64>,
    conversation: Conversation,
    name: String,
    messages: RwSignal<Vec<MessageRecord>>,
    has_older: RwSignal<bool>,
    on_back: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let on_back = Callback::new(move |()| on_back());
    let draft = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let log = NodeRef::<leptos::html::Ol>::new();
    let peer = match conversation {
        Conversation::Direct(a) => Some(a),
        Conversation::Group(_) => None,
    };
    let group_id = match conversation {
        Conversation::Group(g) => Some(g),
        Conversation::Direct(_) => None,
    };
    // A group as this device verified it (title, members, whether this account joined),
    // and the names of the people who wrote in it: reloaded on every store change.
    let group = RwSignal::new(None::<GroupRecord>);
    let senders = RwSignal::new(std::collections::HashMap::<AccountId, String>::new());
    let me = engine.with_value(|e| e.account_id());
    Effect::new(move |_| {
        revision.track();
        let Some(g) = group_id else { return };
        let e = engine.get_value();
        spawn_local(async move {
            if let Ok(record) = e.store().load_group(&g).await {
                group.set(record);
            }
        });
    });
    Effect::new(move |_| {
        if group_id.is_none() {
            return;
        }
        // Who wrote, and who a group line names.
        let mut wanted: Vec<AccountId> = messages.with(|list| {
            let mut out = Vec::new();
            for m in list {
                if !m.outgoing {
                    out.push(m.id.sender);
                }
                if let Some(Notice::Group { change, .. }) = &m.notice {
                    for list in [&change.added, &change.removed, &change.promoted, &change.demoted]
                    {
                        out.extend(list.iter().filter(|a| **a != me));
                    }
                }
            }
            out
        });
        if let Some(r) = group.get() {
            wanted.push(r.state.state().signer);
        }
        super::names::learn(engine, senders, wanted);
    });
    let invited = move || group.with(|g| g.as_ref().is_some_and(|g| !g.accepted));
    let group_name = move || group.with(|g| g.as_ref().map(group_title));
    let member_count =
        move || group.with(|g| g.as_ref().map_or(0, |g| g.state.state().members.len()));
    let still_member =
        move || group.with(|g| g.as_ref().is_some_and(|g| g.state.state().is_member(&me)));
    let leave_error = RwSignal::new(String::new());
    // Leaving asks first: the first click arms it, the second (or Cancel) decides.
    let confirm_leave = RwSignal::new(false);
    let leave = move || {
        let Some(g) = group_id else { return };
        confirm_leave.set(false);
        let e = engine.get_value();
        spawn_local(async move {
            match e.run(Command::LeaveGroup { group: g.to_vec() }).await {
                Ok(_) => leave_error.set(String::new()),
                Err(err) => leave_error.set(err.message),
            }
        });
    };
    // Trust in the peer: reloaded on every store change.
    let trust = RwSignal::new(None::<tandem_core::client::DeviceListRecord>);
    let show_code = RwSignal::new(false);
    // The group's info screen in place of the messages.
    let show_info = RwSignal::new(false);
    // A group member's security code, opened from their key-change notice.
    let code_for = RwSignal::new(None::<AccountId>);
    // A sent message's info (who got it, who read it) in place of the messages.
    let info_for = RwSignal::new(None::<MessageId>);
    // The message the composer answers.
    let replying = RwSignal::new(None::<MessageRecord>);
    let covered = move || {
        show_code.get()
            || show_info.get()
            || code_for.with(Option::is_some)
            || info_for.with(Option::is_some)
    };
    // Who a quote is from, as this person knows them.
    let peer_name = StoredValue::new(name.clone());
    let author = move |a: AccountId| -> String {
        if a == me {
            "You".into()
        } else if group_id.is_some() {
            senders.with(|s| s.get(&a).cloned()).unwrap_or_else(|| crate::device::short_name(a))
        } else {
            peer_name.get_value()
        }
    };
    // Brings a quoted message into view and marks it a moment; says so when it is not loaded.
    let jump_to = move |id: MessageId| {
        let Some(el) = log.get_untracked() else { return };
        let key = hex::encode(id.sort_key());
        let row = el
            .query_selector(&format!("[data-key=\"{key}\"]"))
            .ok()
            .flatten()
            .and_then(|r| r.dyn_into::<web_sys::HtmlElement>().ok());
        match row {
            Some(row) => {
                el.set_scroll_top(
                    row.offset_top() - (el.client_height() - row.offset_height()) / 2,
                );
                let _ = row.class_list().add_1("flash");
                let _ = row.focus();
                set_timeout(
                    move || {
                        let _ = row.class_list().remove_1("flash");
                    },
                    std::time::Duration::from_millis(1600),
                );
            }
            None => {
                error.set("That message is further back: scroll up to load older messages.".into())
            }
        }
    };
    // Group members whose security code changed (a notice each; for a member the person had
    // verified, the group's messages wait). Every member is read when the group opens, and
    // again (at most every 5 s) while a message of this device waits to be sent; those
    // found are read again on every change.
    let flagged = RwSignal::new(Vec::<(AccountId, tandem_core::client::DeviceListRecord)>::new());
    let last_scan = StoredValue::new(None::<f64>);
    // Bumped to read again once the 5 s have passed while a message waits.
    let rescan = RwSignal::new(0u32);
    Effect::new(move |_| {
        revision.track();
        rescan.track();
        if group_id.is_none() {
            return;
        }
        let members: Vec<AccountId> = group
            .with(|g| g.as_ref().map(|g| g.state.state().accounts().filter(|a| *a != me).collect()))
            .unwrap_or_default();
        if members.is_empty() {
            return;
        }
        let waiting = messages.with_untracked(|l| {
            l.iter().any(|m| {
                m.outgoing && m.notice.is_none() && matches!(m.state, OutgoingState::Queued)
            })
        });
        let clock = js_sys::Date::now();
        // Once someone is found, only they are read again: a held message waits for them.
        let waiting = waiting && flagged.with_untracked(Vec::is_empty);
        let full = match last_scan.get_value() {
            None => true,
            Some(at) if waiting && clock - at < 5_000.0 => {
                // Not yet: look again when the 5 s are up.
                let wait = std::time::Duration::from_secs_f64(
                    (5_050.0 - (clock - at)).clamp(50.0, 5_050.0) / 1000.0,
                );
                set_timeout(move || rescan.update(|r| *r += 1), wait);
                false
            }
            Some(_) => waiting,
        };
        let list = if full {
            last_scan.set_value(Some(clock));
            members
        } else {
            flagged.with_untracked(|f| f.iter().map(|(a, _)| *a).collect())
        };
        if list.is_empty() {
            return;
        }
        let e = engine.get_value();
        spawn_local(async move {
            let mut found = Vec::new();
            for a in &list {
                if let Some(r) = e.trust(*a).await
                    && (r.key_changed || r.pending_key.is_some())
                {
                    if !senders.with_untracked(|s| s.contains_key(a)) {
                        let name = e.name_of(*a).await;
                        senders.update(|s| {
                            s.insert(*a, name);
                        });
                    }
                    found.push((*a, r));
                }
            }
            flagged.update(|f| {
                // Those read again and no longer flagged go; the rest stay.
                f.retain(|(a, _)| !list.contains(a));
                f.extend(found);
            });
        });
    });
    Effect::new(move |_| {
        revision.track();
        let Some(peer) = peer else { return };
        let e = engine.get_value();
        spawn_local(async move { trust.set(e.trust(peer).await) });
    });
    let verified = move || trust.with(|t| t.as_ref().is_some_and(|t| t.verified));
    // How many of the newest loaded messages are below the window (0: the latest in view).
    let hidden_newer = RwSignal::new(0usize);
    let visible = move || {
        let hidden = hidden_newer.get();
        messages.with(|list| list[window(list.len(), hidden)].to_vec())
    };
    // Each row's state, by id: one pass per change, then one lookup per row.
    let states = Memo::new(move |_| {
        let hidden = hidden_newer.get();
        messages.with(|list| {
            list[window(list.len(), hidden)]
                .iter()
                .map(|x| {
                    let (tick, label, class) = ticks(x);
                    let failed = match &x.state {
                        OutgoingState::Failed(why) => Some(why.clone()),
                        _ => None,
                    };
                    (x.id, (tick, label, class, failed))
                })
                .collect::<std::collections::HashMap<_, _>>()
        })
    });

    // Keep the newest message in view when messages arrive; when the window moved, keep the
    // row that was at the top of the view where it was.
    let newest = StoredValue::new(None::<MessageId>);
    let anchor = StoredValue::new(None::<(String, i32)>);
    // A window move in progress: scrolling asks for no other until it is drawn.
    let moving = StoredValue::new(false);
    Effect::new(move |_| {
        let last = messages.with(|m| m.last().map(|x| x.id));
        hidden_newer.track();
        let Some(el) = log.get() else { return };
        let at_end = last != newest.get_value() && hidden_newer.get_untracked() == 0;
        newest.set_value(last);
        match anchor.get_value() {
            Some((key, offset)) if !at_end => {
                anchor.set_value(None);
                request_animation_frame(move || {
                    let row = el
                        .query_selector(&format!("[data-key=\"{key}\"]"))
                        .ok()
                        .flatten()
                        .and_then(|r| r.dyn_into::<web_sys::HtmlElement>().ok());
                    if let Some(row) = row {
                        el.set_scroll_top(row.offset_top() - offset);
                    }
                    moving.set_value(false);
                });
            }
            _ => request_animation_frame(move || {
                el.set_scroll_top(el.scroll_height());
                moving.set_value(false);
            }),
        }
    });
    // Remembers the first row in view and how far below the top of the view it is.
    let hold_position = move || {
        let Some(el) = log.get_untracked() else { return };
        let top = el.scroll_top();
        let rows = el.children();
        for i in 0..rows.length() {
            let Some(row) = rows.item(i).and_then(|r| r.dyn_into::<web_sys::HtmlElement>().ok())
            else {
                continue;
            };
            if let Some(key) = row.get_attribute("data-key")
                && row.offset_top() + row.offset_height() > top
            {
                anchor.set_value(Some((key, row.offset_top() - top)));
                return;
            }
        }
    };
    let load_older = move || {
        moving.set_value(true);
        hold_position();
        let (len, hidden) = (messages.with_untracked(Vec::len), hidden_newer.get_untracked());
        let start = window(len, hidden).start;
        if start < STEP && has_older.get_untracked() {
            // Read the page before the oldest loaded message; only that page.
            let oldest = messages.with_untracked(|m| m.first().map(|m| m.id));
            let e = engine.get_value();
            spawn_local(async move {
                let Some(oldest) = oldest else { return };
                let Ok(mut page) = e.messages_before(&conversation, &oldest, OLDER_PAGE + 1).await
                else {
                    moving.set_value(false);
                    return;
                };
                let more = page.len() > OLDER_PAGE;
                if more {
                    page.remove(0);
                }
                let step = page.len().min(STEP);
                has_older.set(more);
                messages.update(|loaded| {
                    page.append(loaded);
                    *loaded = page;
                });
                // The window moves only once the page is here.
                hidden_newer.update(|h| *h += step);
            });
            return;
        }
        hidden_newer.update(|h| *h += start.min(STEP));
    };
    let load_newer = move || {
        moving.set_value(true);
        hold_position();
        hidden_newer.update(|h| *h = h.saturating_sub(STEP));
    };
    let older_exists_now = move || {
        let start = window(messages.with_untracked(Vec::len), hidden_newer.get_untracked()).start;
        start > 0 || has_older.get_untracked()
    };
    let older_exists = move || {
        let start = window(messages.with(Vec::len), hidden_newer.get()).start;
        start > 0 || has_older.get()
    };

    let send = move || {
        let text = draft.get_untracked();
        if text.trim().is_empty() {
            return;
        }
        // The text is durable (the send journal) before the composer clears.
        let reply_to = replying.with_untracked(|r| r.as_ref().map(|m| m.id));
        match engine.get_value().send(conversation, &text, reply_to) {
            Ok(()) => {
                draft.set(String::new());
                error.set(String::new());
                replying.set(None);
                // Sending jumps to the latest messages.
                hidden_newer.set(0);
            }
            Err(err) => error.set(err.message),
        }
    };
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        } else if ev.key() == "Escape" && replying.with_untracked(Option::is_some) {
            ev.prevent_default();
            replying.set(None);
        }
    };

    let (call_name, call_label) = (name.clone(), name.clone());
    view! {
        <header class="conversation-head">
            <button class="icon-button back" aria-label="Back to chats" on:click=move |_| on_back.run(())>"←"</button>
            <span class="avatar" aria-hidden="true">{name.chars().next().unwrap_or('?').to_uppercase().to_string()}</span>
            <h2 data-testid="conversation-name">{
                let name = name.clone();
                move || group_name().unwrap_or_else(|| name.clone())
            }</h2>
            {group_id.map(|_| view! {
                <span class="muted small head-count" data-testid="group-members">{move || match member_count() {
                    1 => "1 member".to_owned(),
                    n => format!("{n} members"),
                }}</span>
                <button
                    class="button button-small button-quiet head-action"
                    data-testid="open-group-info"
                    aria-pressed=move || show_info.get().to_string()
                    on:click=move |_| show_info.update(|s| *s = !*s)
                >"Info"</button>
                <Show when=move || still_member() && !invited() && !confirm_leave.get()>
                    <button class="button button-small button-quiet" data-testid="leave-group" on:click=move |_| confirm_leave.set(true)>"Leave"</button>
                </Show>
                <Show when=move || still_member() && confirm_leave.get()>
                    <span class="leave-confirm" role="group" aria-label="Leave the group?">
                        <span class="small">"Leave the group? You will get no more messages from it."</span>
                        <button class="button button-small button-quiet" data-testid="leave-cancel" on:click=move |_| confirm_leave.set(false)>"Cancel"</button>
                        <button class="button button-small device-remove danger" data-testid="leave-confirm" on:click=move |_| leave()>"Leave"</button>
                    </span>
                </Show>
            })}
            <Show when=verified>
                <span class="pill pill-verified" data-testid="verified-badge" title="You compared security codes">"✓ Verified"</span>
            </Show>
            {peer.map(|p| {
                let calls = use_context::<super::CallsContext>();
                let place = move |video: bool| {
                    let Some(calls) = calls.and_then(|c| c.0.get_value()) else { return };
                    let calls = (*calls).clone();
                    let name = call_name.clone();
                    spawn_local(async move {
                        let _ = calls.start(p, name, video).await;
                    });
                };
                let place_video = place.clone();
                view! {
                    <button class="button button-small button-quiet head-call" data-testid="call-voice" aria-label=format!("Voice call with {call_label}") title="Voice call" on:click=move |_| place(false)>"Call"</button>
                    <button class="button button-small button-quiet head-call" data-testid="call-video" aria-label=format!("Video call with {call_label}") title="Video call" on:click=move |_| place_video(true)>"Video"</button>
                }
            })}
            {peer.map(|_| view! {
                <button
                    class="button button-small button-quiet head-action"
                    data-testid="open-security-code"
                    aria-pressed=move || show_code.get().to_string()
                    on:click=move |_| show_code.update(|s| *s = !*s)
                >"Security code"</button>
            })}
        </header>
        {move || (!leave_error.get().is_empty()).then(|| view! { <p class="error small" role="alert">{leave_error.get()}</p> })}
        {move || {
            let g = group_id?;
            if !invited() {
                return None;
            }
            // Who added this account: the newest change line that did (the state's latest
            // signer may be someone else, who changed the group after), else that signer.
            let adder = messages.with(|list| {
                list.iter().rev().find_map(|m| match &m.notice {
                    Some(Notice::Group { change, .. }) if change.added.contains(&me) => Some(m.id.sender),
                    _ => None,
                })
            });
            let inviter = adder.or_else(|| group.with(|r| r.as_ref().map(|r| r.state.state().signer)))?;
            let inviter = senders.with(|s| s.get(&inviter).cloned()).unwrap_or_else(|| "Someone".into());
            Some(view! {
                <GroupInvitation engine=engine group=g inviter=inviter on_declined=on_back/>
            })
        }}
        {move || {
            let g = group_id?;
            show_info.get().then(|| view! {
                <GroupInfo engine=engine revision=revision group=g record=group names=senders on_close=Callback::new(move |()| show_info.set(false))/>
            })
        }}
                {move || info_for.get().map(|id| view! {
            <MessageInfo engine=engine id=id messages=messages group=group names=senders peer_name=peer_name.get_value() on_close=Callback::new(move |()| info_for.set(None))/>
        })}
        {group_id.map(|_| view! {
            <For
                each=move || flagged.get()
                key=|(a, r)| (*a, r.key_changed, r.pending_key.is_some())
                let:item
            >
                {
                    let (a, record) = item;
                    let trust = RwSignal::new(Some(record));
                    let name = senders.with_untracked(|s| s.get(&a).cloned()).unwrap_or_else(|| crate::device::short_name(a));
                    view! {
                        <TrustNotices engine=engine peer=a name=name trust=trust group=group_id.unwrap_or_default() on_review=Callback::new(move |()| code_for.set(Some(a)))/>
                    }
                }
            </For>
            {move || code_for.get().map(|a| {
                let name = senders.with_untracked(|s| s.get(&a).cloned()).unwrap_or_else(|| crate::device::short_name(a));
                view! {
                    <SecurityCode engine=engine peer=a name=name revision=revision on_close=Callback::new(move |()| code_for.set(None))/>
                }
            })}
        })}
        {peer.map(|p| {
            let (notice_name, code_name) = (name.clone(), name.clone());
            view! {
                <TrustNotices engine=engine peer=p name=notice_name trust=trust on_review=Callback::new(move |()| show_code.set(true))/>
                <Show when=move || show_code.get()>
                    <SecurityCode engine=engine peer=p name=code_name.clone() revision=revision on_close=Callback::new(move |()| show_code.set(false))/>
                </Show>
            }
        })}
        <ol
            class:hidden=covered
            class="messages"
            node_ref=log
            role="log"
            aria-live="polite"
            aria-label=format!("Messages with {name}")
            data-testid="messages"
            on:scroll=move |_| {
                // Near either end of the window, it moves on by itself.
                let Some(el) = log.get_untracked() else { return };
                if moving.get_value() {
                    return;
                }
                if el.scroll_top() < 150 && older_exists_now() {
                    load_older();
                } else if el.scroll_height() - el.scroll_top() - el.client_height() < 150
                    && hidden_newer.get_untracked() > 0
                {
                    load_newer();
                }
            }
        >
            <Show when=older_exists>
                <li class="load-older">
                    <button class="button button-small button-quiet" on:click=move |_| load_older()>
                        "Show older messages"
                    </button>
                </li>
            </Show>
            // Keyed by id alone, so rows never move when a state changes; each row follows
            // its own message's state.
            <For
                each=visible
                key=|m| m.id
                let:m
            >
                {
                    let id = m.id;
                    let outgoing = m.outgoing;
                    if let Some(n) = &m.notice {
                        return view! {
                            <li class="notice-line" role="note" data-testid="notice-line" data-key=hex::encode(id.sort_key())>
                                <span data-testid="notice-text">{
                                    let (m, n) = (m.clone(), n.clone());
                                    // Names arrive as they are learned: the line follows.
                                    move || {
                                        let named = |a: &AccountId| -> String {
                                            if *a == me {
                                                return "you".into();
                                            }
                                            senders.with(|s| s.get(a).cloned()).unwrap_or_else(|| crate::device::short_name(*a))
                                        };
                                        line_text(&m, &n, &named)
                                    }
                                }</span>
                                <time class="small">{short_time(m.shown_time())}</time>
                            </li>
                        }
                        .into_any();
                    }
                    let current = move || states.with(|s| s.get(&id).cloned());
                    let tick = move || current().map(|c| c.0).unwrap_or_default();
                    let label = move || current().map(|c| c.1).unwrap_or_default();
                    let class = move || format!("tick {}", current().map(|c| c.2).unwrap_or_default());
                    let failed = move || current().and_then(|c| c.3);
                    let sender = m.id.sender;
                    let from = move || {
                        if outgoing || group_id.is_none() {
                            return None;
                        }
                        Some(senders.with(|s| s.get(&sender).cloned()).unwrap_or_default())
                    };
                    // `@handle`s stand out; one naming this person marks the whole message.
                    let my_handle = engine.with_value(|e| e.handle().to_owned());
                    let parts = crate::text::mention_parts(&m.body);
                    let for_me = !outgoing && parts.iter().any(|(_, h)| h.as_deref() == Some(my_handle.as_str()));
                    let body = parts
                        .into_iter()
                        .map(|(run, handle)| match handle {
                            Some(h) => {
                                let me_too = h == my_handle;
                                view! { <span class="mention" class:mention-me=me_too data-testid="mention">{run}</span> }.into_any()
                            }
                            None => run.into_any(),
                        })
                        .collect_view();
                    view! {
                        <li tabindex="-1" class="message" class:out=outgoing class:in=!outgoing class:mentioned=for_me data-testid="message" data-key=hex::encode(id.sort_key())>
                            <div class="bubble">
                                {move || from().map(|n| view! { <p class="sender small" data-testid="message-sender">{n}</p> })}
                                                                {for_me.then(|| view! { <p class="visually-hidden">"Mentions you."</p> })}
                                {m.quote.clone().map(|q| {
                                    let qid = q.id;
                                    let from = author(qid.sender);
                                    // The message itself where this device has it; else the
                                    // start the replying device quoted.
                                    let text = messages
                                        .with_untracked(|l| l.iter().find(|x| x.id == qid).map(|x| tandem_core::client::quote_text(&x.body)))
                                        .unwrap_or(q.text);
                                    view! {
                                        <button type="button" class="quote" data-testid="message-quote" title="Show the message it answers" on:click=move |_| jump_to(qid)>
                                            <span class="visually-hidden">"In reply to "</span>
                                            <span class="quote-author small">{from}</span>
                                            <span class="quote-text small">{text}</span>
                                        </button>
                                    }
                                })}
                                <p class="body" data-testid="message-body">{body}</p>
                                <span class="meta small">
                                    <time>{short_time(m.shown_time())}</time>
                                    <Show when=move || outgoing>
                                        <span class=class role="img" aria-label=label title=label data-testid="message-state" data-state=label>{tick}</span>
                                    </Show>
                                </span>
                                                                {move || failed().filter(|_| outgoing).map(|why| view! { <p class="error small">{why}</p> })}
                            </div>
                            <span class="message-actions">
                                <button
                                    type="button"
                                    class="icon-button message-action"
                                    data-testid="message-reply"
                                    aria-label="Reply"
                                    title="Reply"
                                    on:click={
                                        let m = m.clone();
                                        move |_| {
                                            replying.set(Some(m.clone()));
                                            focus_composer();
                                        }
                                    }
                                >"↩"</button>
                                {outgoing.then(|| view! {
                                    <button
                                        type="button"
                                        class="icon-button message-action"
                                        data-testid="message-info"
                                        aria-label="Message info"
                                        title="Message info"
                                        on:click=move |_| info_for.set(Some(id))
                                    >"ⓘ"</button>
                                })}
                            </span>
                        </li>
                    }
                    .into_any()
                }
            </For>
            <Show when=move || { hidden_newer.get() > 0 }>
                <li class="load-older">
                    <button class="button button-small button-quiet" on:click=move |_| load_newer()>
                        "Show newer messages"
                    </button>
                </li>
            </Show>
        </ol>
        {group_id.map(|_| view! {
            <Show when=move || !covered()>
                <super::progress::WorkLine/>
            </Show>
        })}
                {move || replying.get().filter(|_| !covered()).map(|m| view! {
            <div class="reply-bar" data-testid="reply-bar" role="status">
                <div class="reply-bar-text">
                    <span class="quote-author small">"Replying to "{author(m.id.sender)}</span>
                    <span class="quote-text small">{tandem_core::client::quote_text(&m.body)}</span>
                </div>
                <button type="button" class="icon-button" data-testid="reply-cancel" aria-label="Cancel the reply" title="Cancel the reply (Esc)" on:click=move |_| replying.set(None)>"×"</button>
            </div>
        })}
        <form class="composer" class:hidden=move || covered() || invited() || (group_id.is_some() && group.with(Option::is_some) && !still_member()) on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(); }>
            <label for="composer-input" class="visually-hidden">"Message"</label>
            <textarea
                id="composer-input"
                data-testid="composer"
                rows="1"
                placeholder="Message"
                prop:value=move || draft.get()
                on:input=move |ev| draft.set(event_target_value(&ev))
                on:keydown=on_key
            ></textarea>
            <button class="button button-primary" type="submit" aria-label="Send" data-testid="send">"Send"</button>
        </form>
        <p class="error small composer-error" role="alert">{move || error.get()}</p>
    }
}

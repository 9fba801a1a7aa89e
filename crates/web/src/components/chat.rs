//! The messenger: the chat list, a conversation and the composer.

use std::rc::Rc;

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::client::{Conversation, MessageRecord, OutgoingState, conversation_to_bytes};

use super::devices::Devices;
use crate::engine::{Engine, describe};

/// How many of a conversation's newest messages are rendered; older ones load on request.
pub const PAGE: usize = 200;

/// At most this many messages are in the document at once, however long the history: the
/// conversation is a window that moves over what is loaded.
pub const WINDOW: usize = 2 * PAGE;

/// The part of `len` loaded messages in view when `hidden_newer` of the newest are below it.
fn window(len: usize, hidden_newer: usize) -> std::ops::Range<usize> {
    let end = len.saturating_sub(hidden_newer);
    end.saturating_sub(WINDOW)..end
}

/// A row of the chat list.
#[derive(Clone, Debug, PartialEq)]
struct ChatRow {
    conversation: Conversation,
    name: String,
    preview: String,
    time: String,
    unread: u32,
}

fn key_of(c: &Conversation) -> String {
    hex::encode(conversation_to_bytes(c))
}

fn short_time(ms: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "epoch ms fit an f64 exactly")]
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let now = js_sys::Date::new_0();
    let options = js_sys::Object::new();
    let same_day = date.to_date_string() == now.to_date_string();
    let pairs: &[(&str, &str)] = if same_day {
        &[("hour", "2-digit"), ("minute", "2-digit")]
    } else {
        &[("day", "numeric"), ("month", "short")]
    };
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&options, &(*k).into(), &(*v).into());
    }
    String::from(date.to_locale_string("default", &options))
}

/// Ticks of an outgoing message, and their spoken label.
fn ticks(m: &MessageRecord) -> (&'static str, &'static str, &'static str) {
    match &m.state {
        OutgoingState::Queued => ("🕓", "Waiting to send", "tick-wait"),
        OutgoingState::Failed(_) => ("!", "Not sent", "tick-failed"),
        OutgoingState::Sent if !m.read_by.is_empty() => ("✓✓", "Read", "tick-read"),
        OutgoingState::Sent if m.is_delivered() => ("✓✓", "Delivered", "tick-delivered"),
        OutgoingState::Sent => ("✓", "Sent", "tick-sent"),
    }
}

/// The signed-in messenger.
#[component]
pub(crate) fn Messenger(
    /// The engine.
    engine: SendWrapper<Rc<Engine>>,
    /// Bumped whenever the engine stored something.
    revision: ReadSignal<u64>,
) -> impl IntoView {
    let engine = StoredValue::new(engine);
    let chats = RwSignal::new(Vec::<ChatRow>::new());
    let selected = RwSignal::new(None::<(Conversation, String)>);
    let messages = RwSignal::new(Vec::<MessageRecord>::new());
    // Which conversation `messages` holds (its loaded history survives store changes).
    let loaded_for = StoredValue::new(None::<Conversation>);
    let has_older = RwSignal::new(false);
    let new_chat = RwSignal::new(String::new());
    let new_chat_error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let show_devices = RwSignal::new(false);

    // The chat list follows the store.
    Effect::new(move |_| {
        revision.track();
        let e = engine.get_value();
        spawn_local(async move {
            let Ok(list) = e.conversations().await else { return };
            let mut rows = Vec::with_capacity(list.len());
            for s in list {
                let name = match s.conversation {
                    Conversation::Direct(a) => e.name_of(a).await,
                    Conversation::Group(_) => "Group".into(),
                };
                let prefix = if s.last.outgoing { "You: " } else { "" };
                rows.push(ChatRow {
                    conversation: s.conversation,
                    name,
                    preview: format!("{prefix}{}", s.last.body),
                    time: short_time(s.last.id.timestamp),
                    unread: s.unread,
                });
            }
            chats.set(rows);
        });
    });

    // The open conversation follows the store: its newest page is re-read on every change
    // and replaces the end of what is loaded (older pages stay); it is marked read while
    // it is open.
    Effect::new(move |_| {
        revision.track();
        let Some((conversation, _)) = selected.get() else {
            loaded_for.set_value(None);
            messages.set(Vec::new());
            return;
        };
        let e = engine.get_value();
        spawn_local(async move {
            // One more than a page: whether older ones exist.
            let Ok(mut tail) = e.messages(&conversation, PAGE + 1).await else { return };
            let more = tail.len() > PAGE;
            if more {
                tail.remove(0);
            }
            let unread = tail.iter().any(|m| !m.outgoing && m.read_by.is_empty());
            if loaded_for.get_value() == Some(conversation) {
                messages.update(|loaded| {
                    let from = tail.first().map(|m| m.id.sort_key());
                    let keep = loaded.partition_point(|m| from.is_none_or(|f| m.id.sort_key() < f));
                    loaded.truncate(keep);
                    loaded.extend(tail);
                });
            } else {
                loaded_for.set_value(Some(conversation));
                has_older.set(more);
                messages.set(tail);
            }
            if unread && let Conversation::Direct(peer) = conversation {
                e.mark_read(peer).await;
            }
        });
    });

    let open_chat = move |conversation: Conversation, name: String| {
        show_devices.set(false);
        selected.set(Some((conversation, name)));
    };

    let start_chat = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let handle = new_chat.get_untracked().trim().to_owned();
        if handle.is_empty() {
            new_chat_error.set("Type the name of the person to write to.".into());
            return;
        }
        busy.set(true);
        new_chat_error.set(String::new());
        let e = engine.get_value();
        spawn_local(async move {
            match e.find(&handle).await {
                Ok((id, name)) => {
                    new_chat.set(String::new());
                    open_chat(Conversation::Direct(id), name);
                }
                Err(err) => new_chat_error.set(describe(&err)),
            }
            busy.set(false);
        });
    };

    view! {
        <div class="messenger" class:has-selection=move || show_devices.get() || selected.with(Option::is_some)>
            <nav class="chat-list" aria-label="Chats">
                <div class="chat-list-head">
                    <h2>"Chats"</h2>
                    <span class="muted small" data-testid="my-handle">
                        {move || format!("@{}", engine.with_value(|e| e.handle().to_owned()))}
                    </span>
                    <button
                        class="button button-small button-quiet devices-button"
                        data-testid="open-devices"
                        aria-pressed=move || if show_devices.get() { "true" } else { "false" }
                        on:click=move |_| { selected.set(None); show_devices.set(true); }
                    >
                        "Devices"
                    </button>
                </div>
                <form class="new-chat" on:submit=start_chat>
                    <label for="new-chat-input" class="visually-hidden">"Start a chat with"</label>
                    <input
                        id="new-chat-input"
                        data-testid="new-chat-input"
                        placeholder="Start a chat: name"
                        autocomplete="off"
                        spellcheck="false"
                        prop:value=move || new_chat.get()
                        on:input=move |ev| new_chat.set(event_target_value(&ev))
                    />
                    <button class="button button-primary button-small" type="submit" disabled=move || busy.get()>
                        "Start"
                    </button>
                </form>
                <p class="error small new-chat-error" role="alert">{move || new_chat_error.get()}</p>
                <ul class="chats" data-testid="chat-list">
                    <For
                        each=move || chats.get()
                        key=|r| (key_of(&r.conversation), r.preview.clone(), r.unread, r.time.clone())
                        let:row
                    >
                        {
                            let conversation = row.conversation;
                            let name = row.name.clone();
                            let is_selected = move || {
                                selected.with(|s| s.as_ref().is_some_and(|(c, _)| *c == conversation))
                            };
                            let label = if row.unread > 0 {
                                format!("{}, {} unread", row.name, row.unread)
                            } else {
                                row.name.clone()
                            };
                            view! {
                                <li>
                                    <button
                                        class="chat-row"
                                        class:selected=is_selected
                                        aria-current=move || if is_selected() { "true" } else { "false" }
                                        aria-label=label
                                        data-testid="chat-row"
                                        on:click=move |_| open_chat(conversation, name.clone())
                                    >
                                        <span class="avatar" aria-hidden="true">
                                            {row.name.chars().next().unwrap_or('?').to_uppercase().to_string()}
                                        </span>
                                        <span class="chat-main">
                                            <span class="chat-top">
                                                <span class="chat-name">{row.name.clone()}</span>
                                                <span class="chat-time muted small">{row.time.clone()}</span>
                                            </span>
                                            <span class="chat-bottom">
                                                <span class="chat-preview muted">{row.preview.clone()}</span>
                                                <Show when=move || { row.unread > 0 }>
                                                    <span class="unread" data-testid="unread">{row.unread}</span>
                                                </Show>
                                            </span>
                                        </span>
                                    </button>
                                </li>
                            }
                        }
                    </For>
                </ul>
                <Show when=move || chats.with(Vec::is_empty)>
                    <p class="muted small empty-chats">
                        "No chats yet. Start one with the name someone chose for their Tandem account."
                    </p>
                </Show>
            </nav>
            <section class="conversation" aria-label="Conversation">
                {move || match selected.get() {
                    None if show_devices.get() => view! {
                        <Devices engine=engine revision=revision on_back=move || show_devices.set(false)/>
                    }.into_any(),
                    None => view! {
                        <div class="conversation-empty">
                            <p class="muted">"Choose a chat, or start a new one."</p>
                        </div>
                    }.into_any(),
                    Some((conversation, name)) => view! {
                        <Conversation
                            engine=engine
                            conversation=conversation
                            name=name
                            messages=messages
                            has_older=has_older
                            on_back=move || selected.set(None)
                        />
                    }.into_any(),
                }}
            </section>
        </div>
    }
}

#[component]
fn Conversation(
    engine: StoredValue<SendWrapper<Rc<Engine>>>,
    conversation: Conversation,
    name: String,
    messages: RwSignal<Vec<MessageRecord>>,
    has_older: RwSignal<bool>,
    on_back: impl Fn() + Send + Sync + 'static,
) -> impl IntoView {
    let draft = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let log = NodeRef::<leptos::html::Ol>::new();
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

    // Keep the newest message in view when messages arrive; when older ones were loaded
    // above, keep what was on screen where it was.
    let newest = StoredValue::new(None::<tandem_core::client::MessageId>);
    let anchor = StoredValue::new(None::<(i32, i32)>);
    Effect::new(move |_| {
        let last = messages.with(|m| m.last().map(|x| x.id));
        hidden_newer.track();
        let Some(el) = log.get() else { return };
        let at_end = last != newest.get_value() && hidden_newer.get_untracked() == 0;
        newest.set_value(last);
        match anchor.get_value() {
            Some((height, top)) if !at_end => {
                anchor.set_value(None);
                request_animation_frame(move || {
                    el.set_scroll_top(top + el.scroll_height() - height);
                });
            }
            _ => request_animation_frame(move || el.set_scroll_top(el.scroll_height())),
        }
    });
    let load_older = move |_| {
        if let Some(el) = log.get_untracked() {
            anchor.set_value(Some((el.scroll_height(), el.scroll_top())));
        }
        let (len, hidden) = (messages.with_untracked(Vec::len), hidden_newer.get_untracked());
        let start = window(len, hidden).start;
        if start < PAGE && has_older.get_untracked() {
            // Read the page before the oldest loaded message; only that page.
            let oldest = messages.with_untracked(|m| m.first().map(|m| m.id));
            let e = engine.get_value();
            spawn_local(async move {
                let Some(oldest) = oldest else { return };
                let Ok(mut page) = e.messages_before(&conversation, &oldest, PAGE + 1).await else {
                    return;
                };
                let more = page.len() > PAGE;
                if more {
                    page.remove(0);
                }
                let step = page.len().min(PAGE);
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
        hidden_newer.update(|h| *h += start.min(PAGE));
    };
    let load_newer = move |_| {
        hidden_newer.update(|h| *h = h.saturating_sub(PAGE));
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
        let e = engine.get_value();
        draft.set(String::new());
        error.set(String::new());
        // Sending jumps to the latest messages.
        hidden_newer.set(0);
        spawn_local(async move {
            if let Err(err) = e.send(conversation, &text).await {
                draft.set(text);
                error.set(describe(&err));
            }
        });
    };
    let on_key = move |ev: KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            send();
        }
    };

    view! {
        <header class="conversation-head">
            <button class="icon-button back" aria-label="Back to chats" on:click=move |_| on_back()>"←"</button>
            <span class="avatar" aria-hidden="true">{name.chars().next().unwrap_or('?').to_uppercase().to_string()}</span>
            <h2 data-testid="conversation-name">{name.clone()}</h2>
        </header>
        <ol class="messages" node_ref=log role="log" aria-live="polite" aria-label=format!("Messages with {name}") data-testid="messages">
            <Show when=older_exists>
                <li class="load-older">
                    <button class="button button-small button-quiet" on:click=load_older>
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
                    let current = move || states.with(|s| s.get(&id).cloned());
                    let tick = move || current().map(|c| c.0).unwrap_or_default();
                    let label = move || current().map(|c| c.1).unwrap_or_default();
                    let class = move || format!("tick {}", current().map(|c| c.2).unwrap_or_default());
                    let failed = move || current().and_then(|c| c.3);
                    view! {
                        <li class="message" class:out=outgoing class:in=!outgoing data-testid="message">
                            <div class="bubble">
                                <p class="body" data-testid="message-body">{m.body.clone()}</p>
                                <span class="meta small">
                                    <time>{short_time(m.id.timestamp)}</time>
                                    <Show when=move || outgoing>
                                        <span class=class role="img" aria-label=label title=label data-testid="message-state" data-state=label>{tick}</span>
                                    </Show>
                                </span>
                                {move || failed().filter(|_| outgoing).map(|why| view! { <p class="error small">{why}</p> })}
                            </div>
                        </li>
                    }
                }
            </For>
            <Show when=move || { hidden_newer.get() > 0 }>
                <li class="load-older">
                    <button class="button button-small button-quiet" on:click=load_newer>
                        "Show newer messages"
                    </button>
                </li>
            </Show>
        </ol>
        <form class="composer" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(); }>
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

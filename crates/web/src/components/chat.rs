//! The messenger: the chat list, a conversation and the composer.

use leptos::prelude::*;
use leptos::task::spawn_local;
use send_wrapper::SendWrapper;
use tandem_core::AccountId;
use tandem_core::client::{
    Conversation, MessageRecord, Notice, OutgoingState, conversation_to_bytes,
};
use tandem_core::store::ClientStore;

use super::conversation::Conversation;
use super::devices::Devices;
use super::group::NewGroup;
use crate::device::Device;
use crate::groups::group_title;
use crate::store::ConversationSummary;

/// How many of a conversation's newest messages are rendered; older ones load on request.
pub const PAGE: usize = 200;

/// At most this many messages are in the document at once, however long the history: the
/// conversation is a window that moves over what is loaded.
pub const WINDOW: usize = 250;

/// How far the window moves at a time: few enough rows that adding and removing them fits
/// well inside a frame budget (a 200-row move took up to 117 ms).
pub const STEP: usize = 50;

/// How many older messages are read from IndexedDB at a time when the window reaches the
/// oldest loaded one: reading and decoding them shares a frame with the window's move, so
/// a smaller read keeps that frame short (200 at a time gave 50–67 ms frames, 100 gives
/// 33–50 ms; it must stay above [`STEP`]).
pub const OLDER_PAGE: usize = 100;

/// The part of `len` loaded messages in view when `hidden_newer` of the newest are below it.
pub(super) fn window(len: usize, hidden_newer: usize) -> std::ops::Range<usize> {
    let end = len.saturating_sub(hidden_newer);
    end.saturating_sub(WINDOW)..end
}

/// A row of the chat list.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChatRow {
    conversation: Conversation,
    name: String,
    preview: String,
    time: String,
    unread: u32,
    /// Unread messages that mention this account.
    mentions: u32,
}

/// Most chat rows in the document until the person asks for more.
const CHAT_ROWS: usize = 50;

/// The chat list's rows for these conversations (newest first) of account `me`, named from
/// `names` and groups from `titles`; an account missing from `names` is shown by the start
/// of its id until its handle is known, a group missing from `titles` as "Group".
pub(crate) fn chat_rows(
    list: &[ConversationSummary],
    me: AccountId,
    names: &std::collections::HashMap<AccountId, String>,
    titles: &std::collections::HashMap<[u8; 16], String>,
) -> Vec<ChatRow> {
    let named = |a: &AccountId| -> String {
        if *a == me {
            return "you".into();
        }
        names.get(a).cloned().unwrap_or_else(|| crate::device::short_name(*a))
    };
    list.iter()
        .map(|s| {
            let name = match s.conversation {
                Conversation::Direct(a) => named(&a),
                Conversation::Group(g) => titles.get(&g).cloned().unwrap_or_else(|| "Group".into()),
            };
            let preview = match &s.last.notice {
                Some(n) => line_text(&s.last, n, &named),
                None if s.last.outgoing => format!("You: {}", s.last.body),
                None => s.last.body.clone(),
            };
            ChatRow {
                conversation: s.conversation,
                name,
                preview,
                time: short_time(s.last.shown_time()),
                unread: s.unread,
                mentions: s.mentions,
            }
        })
        .collect()
}

/// What a line no person wrote says, for the message `m` that carries it; `name` names the
/// people a group line mentions ("you" for this account).
pub(crate) fn line_text(
    m: &MessageRecord,
    n: &Notice,
    name: &dyn Fn(&AccountId) -> String,
) -> String {
    match n {
        Notice::Expired => {
            "A message expired on the server before this device could fetch it.".into()
        }
        Notice::Group { created, change } => {
            crate::text::group_line(&m.id.sender, *created, change, name)
        }
        Notice::Call { outcome, video, seconds } => {
            crate::text::call_line(m.outgoing, *outcome, *video, *seconds)
        }
    }
}

/// Whether the person is looking at this page: visible and focused. Read receipts go only
/// then.
pub(crate) fn page_seen() -> bool {
    web_sys::window().and_then(|w| w.document()).is_some_and(|d| {
        d.visibility_state() == web_sys::VisibilityState::Visible && d.has_focus().unwrap_or(false)
    })
}

fn key_of(c: &Conversation) -> String {
    hex::encode(conversation_to_bytes(c))
}

/// The local calendar day of `ms` (days since the epoch in local time).
fn local_day(ms: f64) -> i64 {
    let offset_min = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms)).get_timezone_offset();
    #[allow(clippy::cast_possible_truncation, reason = "days since the epoch fit easily")]
    let day = ((ms - offset_min * 60_000.0) / 86_400_000.0).floor() as i64;
    day
}

thread_local! {
    /// Formatters for [`short_time`], made once: an `Intl.DateTimeFormat` costs far more to
    /// make than to use, and the chat list formats a time per row.
    static FORMATS: [js_sys::Function; 2] = {
        let make = |pairs: &[(&str, &str)]| {
            let options = js_sys::Object::new();
            for (k, v) in pairs {
                let _ = js_sys::Reflect::set(&options, &(*k).into(), &(*v).into());
            }
            js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &options).format()
        };
        [make(&[("hour", "2-digit"), ("minute", "2-digit")]), make(&[("day", "numeric"), ("month", "short")])]
    };
}

/// A message time as the lists show it: the time today, the date before.
pub(super) fn short_time(ms: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "epoch ms fit an f64 exactly")]
    let ms = ms as f64;
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    let today = local_day(js_sys::Date::now()) == local_day(ms);
    FORMATS.with(|[time, day]| {
        let f = if today { time } else { day };
        f.call1(&wasm_bindgen::JsValue::NULL, &date)
            .ok()
            .and_then(|s| s.as_string())
            .unwrap_or_default()
    })
}

/// Ticks of an outgoing message, and their spoken label.
pub(super) fn ticks(m: &MessageRecord) -> (&'static str, &'static str, &'static str) {
    match &m.state {
        OutgoingState::Queued => ("◷", "Waiting to send", "tick-wait"),
        OutgoingState::Failed(_) => ("!", "Not sent", "tick-failed"),
        OutgoingState::Sent if m.is_read() => ("✓✓", "Read", "tick-read"),
        OutgoingState::Sent if m.is_delivered() => ("✓✓", "Delivered", "tick-delivered"),
        OutgoingState::Sent => ("✓", "Sent", "tick-sent"),
    }
}

/// The signed-in messenger.
#[component]
pub(crate) fn Messenger(
    /// The engine.
    engine: SendWrapper<Device>,
    /// Bumped whenever the engine stored something.
    revision: ReadSignal<u64>,
    /// The chat list as it was read at start (shown until the engine's first read).
    initial: Vec<ChatRow>,
    /// The open conversation (kept by the app, so a chat opened at start stays open).
    selected: RwSignal<Option<(Conversation, String)>>,
) -> impl IntoView {
    let engine = StoredValue::new(engine);
    let chats = RwSignal::new(initial);
    let messages = RwSignal::new(Vec::<MessageRecord>::new());
    // Which conversation `messages` holds (its loaded history survives store changes).
    let loaded_for = StoredValue::new(None::<Conversation>);
    let has_older = RwSignal::new(false);
    let new_chat = RwSignal::new(String::new());
    let new_chat_error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let show_devices = RwSignal::new(false);
    let show_new_group = RwSignal::new(false);
    // Bumped when the page is shown or focused again: unread messages in the open chat are
    // read only then.
    let seen = RwSignal::new(0u32);
    // (`visibilitychange` bubbles from the document to the window.)
    for event in ["visibilitychange", "focus"] {
        let listener = window_event_listener_untyped(event, move |_| {
            if page_seen() {
                seen.update(|n| *n += 1);
            }
        });
        on_cleanup(move || listener.remove());
    }

    // The chat list follows the store: one reload at a time, and a change during it makes
    // one more, at most every 200 ms (a burst of thousands of messages redraws the list a
    // few times a second, not once per message).
    let reloading = StoredValue::new(false);
    let reload_again = StoredValue::new(false);
    Effect::new(move |_| {
        revision.track();
        if reloading.get_value() {
            reload_again.set_value(true);
            return;
        }
        reloading.set_value(true);
        let e = engine.get_value();
        spawn_local(async move {
            loop {
                reload_again.set_value(false);
                reload_chats(&e, chats).await;
                if !reload_again.get_value() {
                    break;
                }
                crate::transport::sleep(std::time::Duration::from_millis(200)).await;
            }
            reloading.set_value(false);
        });
    });

    // The open conversation follows the store: its newest page is re-read on every change
    // and replaces the end of what is loaded (older pages stay); it is marked read while
    // it is open.
    Effect::new(move |_| {
        revision.track();
        seen.track();
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
            let unread = tail.iter().any(MessageRecord::is_unread);
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
            // Read only while someone looks: a hidden tab, or another window in front,
            // sends no read receipt.
            if unread && page_seen() {
                match conversation {
                    Conversation::Direct(peer) => e.mark_read(peer).await,
                    Conversation::Group(g) => e.mark_group_read(g).await,
                }
            }
        });
    });

    let open_chat = move |conversation: Conversation, name: String| {
        show_devices.set(false);
        show_new_group.set(false);
        selected.set(Some((conversation, name)));
    };
    if selected.get_untracked().is_some() {
        show_devices.set(false);
    }

    let start_chat = move |()| {
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
                Err(err) => new_chat_error.set(err.message),
            }
            busy.set(false);
        });
    };

    view! {
        <div class="messenger" class:has-selection=move || show_devices.get() || show_new_group.get() || selected.with(Option::is_some)>
            <ChatList
                handle=engine.with_value(|e| e.handle().to_owned())
                chats=chats.into()
                selected=selected
                show_devices=show_devices
                show_new_group=show_new_group
                new_chat=new_chat
                new_chat_error=new_chat_error
                busy=busy.into()
                on_start=Callback::new(start_chat)
            />
            <section class="conversation" aria-label="Conversation">
                {move || match selected.get() {
                    None if show_new_group.get() => view! {
                        <NewGroup
                            engine=engine
                            on_created=Callback::new(move |(c, name)| open_chat(c, name))
                            on_cancel=Callback::new(move |()| show_new_group.set(false))
                        />
                    }.into_any(),
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
                            revision=revision
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

/// Rows the start preview draws: a tall window's worth; the rest come with the engine.
const PREVIEW_ROWS: usize = 20;

/// The messenger as read at start, while the engine opens: the first screen of the chat list
/// from the start snapshot (see `boot`); a chat opened now shows once the engine is up.
#[component]
pub(crate) fn MessengerPreview(
    /// This device's account handle.
    handle: String,
    /// The chat list as read at start.
    mut chats: Vec<ChatRow>,
    /// The open conversation (the messenger takes it over).
    selected: RwSignal<Option<(Conversation, String)>>,
) -> impl IntoView {
    chats.truncate(PREVIEW_ROWS);
    let chats = RwSignal::new(chats);
    let show_devices = RwSignal::new(false);
    view! {
        <div class="messenger" class:has-selection=move || selected.with(Option::is_some)>
            <ChatList
                handle=handle
                chats=chats.into()
                selected=selected
                show_devices=show_devices
                show_new_group=RwSignal::new(false)
                new_chat=RwSignal::new(String::new())
                new_chat_error=RwSignal::new(String::new())
                busy=Signal::derive(|| true)
                on_start=Callback::new(|()| {})
            />
            <section class="conversation" aria-label="Conversation" aria-busy="true">
                <div class="conversation-empty">
                    <p class="muted">
                        {move || if selected.with(Option::is_some) { "Opening the chat…" } else { "Choose a chat, or start a new one." }}
                    </p>
                </div>
            </section>
        </div>
    }
}

/// The chat list pane: this account's handle, the new-chat form and the chats, newest
/// first ([`CHAT_ROWS`] at a time).
#[component]
pub(crate) fn ChatList(
    /// This device's account handle.
    handle: String,
    /// The rows, newest first.
    chats: Signal<Vec<ChatRow>>,
    /// The open conversation.
    selected: RwSignal<Option<(Conversation, String)>>,
    /// Whether the device list is open instead of a conversation.
    show_devices: RwSignal<bool>,
    /// Whether the new-group form is open instead of a conversation.
    show_new_group: RwSignal<bool>,
    /// The name typed into the new-chat form.
    new_chat: RwSignal<String>,
    /// Why the last new chat could not start.
    new_chat_error: RwSignal<String>,
    /// Whether a new chat is being looked up (or the messenger is still opening).
    busy: Signal<bool>,
    /// Starts a chat with the typed name.
    on_start: Callback<()>,
) -> impl IntoView {
    let shown = RwSignal::new(CHAT_ROWS);
    view! {
        <nav class="chat-list" aria-label="Chats">
            <div class="chat-list-head">
                <h2>"Chats"</h2>
                <span class="muted small" data-testid="my-handle">
                    {format!("@{handle}")}
                </span>
                <button
                    class="button button-small button-quiet devices-button"
                    data-testid="open-devices"
                    aria-pressed=move || if show_devices.get() { "true" } else { "false" }
                    on:click=move |_| { selected.set(None); show_new_group.set(false); show_devices.set(true); }
                >
                    "Devices"
                </button>
                <button
                    class="button button-small button-quiet new-group-button"
                    data-testid="open-new-group"
                    aria-label="New group"
                    title="New group"
                    aria-pressed=move || if show_new_group.get() { "true" } else { "false" }
                    on:click=move |_| { selected.set(None); show_devices.set(false); show_new_group.set(true); }
                >
                    "+ Group"
                </button>
            </div>
            <form class="new-chat" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); on_start.run(()); }>
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
                    each=move || chats.with(|c| c.iter().take(shown.get()).cloned().collect::<Vec<_>>())
                    key=|r| (key_of(&r.conversation), r.preview.clone(), r.unread, r.mentions, r.time.clone())
                    let:row
                >
                    {
                        let conversation = row.conversation;
                        let name = row.name.clone();
                        let is_selected = move || {
                            selected.with(|s| s.as_ref().is_some_and(|(c, _)| *c == conversation))
                        };
                        let label = match (row.unread, row.mentions) {
                            (0, _) => row.name.clone(),
                            (n, 0) => format!("{}, {n} unread", row.name),
                            (n, _) => format!("{}, {n} unread, mentions you", row.name),
                        };
                        view! {
                            <li>
                                <button
                                    class="chat-row"
                                    class:selected=is_selected
                                    aria-current=move || if is_selected() { "true" } else { "false" }
                                    aria-label=label
                                    data-testid="chat-row"
                                    on:click=move |_| {
                                        show_devices.set(false);
                                        show_new_group.set(false);
                                        selected.set(Some((conversation, name.clone())));
                                    }
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
                                            <Show when=move || { row.mentions > 0 }>
                                                <span class="mention-badge" data-testid="chat-mention" title="Mentions you" aria-hidden="true">"@"</span>
                                            </Show>
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
            <Show when=move || { chats.with(Vec::len) > shown.get() }>
                <button
                    class="button button-small button-quiet more-chats"
                    data-testid="more-chats"
                    on:click=move |_| shown.update(|n| *n += CHAT_ROWS)
                >
                    {move || format!("Show more chats ({} more)", chats.with(Vec::len) - shown.get())}
                </button>
            </Show>
            <Show when=move || chats.with(Vec::is_empty)>
                <p class="muted small empty-chats">
                    "No chats yet. Start one with the name someone chose for their Tandem account."
                </p>
            </Show>
        </nav>
    }
}

/// Reads the chat list and the names it shows into `chats`.
async fn reload_chats(e: &Device, chats: RwSignal<Vec<ChatRow>>) {
    let Ok(list) = e.conversations().await else { return };
    // Every known name in one read; unknown ones are asked for once each.
    let mut names = e.store().contacts().await.unwrap_or_default();
    let mut titles = std::collections::HashMap::new();
    let me = e.account_id();
    for s in &list {
        let mut wanted = Vec::new();
        match s.conversation {
            Conversation::Direct(a) => wanted.push(a),
            Conversation::Group(g) => {
                if let Ok(Some(record)) = e.store().load_group(&g).await {
                    titles.insert(g, group_title(&record));
                }
                // The people a group line in the preview names (as many as it shows).
                if let Some(Notice::Group { change, .. }) = &s.last.notice {
                    wanted.push(s.last.id.sender);
                    for list in [&change.added, &change.removed, &change.promoted, &change.demoted]
                    {
                        wanted.extend(list.iter().take(crate::text::PEOPLE_SHOWN + 1));
                    }
                }
            }
        }
        for a in wanted {
            if a != me && !names.contains_key(&a) {
                let name = e.name_of(a).await;
                names.insert(a, name);
            }
        }
    }
    chats.set(chat_rows(&list, me, &names, &titles));
}

//! The send journal: what a person sent and no store holds yet.
//!
//! Pressing Enter writes the text here first, synchronously (`localStorage`), before the
//! composer clears: a tab closed a tenth of a second later loses nothing. The engine then
//! queues each entry in the IndexedDB outbox (in the same transaction as its history row)
//! under the entry's id, and only then is the entry removed. Entries left over by a tab that
//! died (or by a view whose engine tab was busy) are queued when the engine starts, and
//! whenever another tab writes one (`storage` events); the id makes that idempotent
//! ([`tandem_core::client::Client::queue_text_once`]). While this tab has entries no store
//! holds yet, leaving the page asks first.
//!
//! Every entry is its own `localStorage` item (`tandem.outgoing/<order>/<id>`): tabs add and
//! remove entries at the same time, and `localStorage` has no transactions, so a shared list
//! rewritten by one tab could drop what another just added. `<order>` (this tab's clock, never
//! going back, and a counter) keeps the entries in the order typed.

use std::cell::{Cell, RefCell};

use serde::{Deserialize, Serialize};
use tandem_core::client::{
    Conversation, MessageId, conversation_from_bytes, conversation_to_bytes,
};

/// The prefix of the journal's `localStorage` items (a `storage` event whose key starts with
/// it is a journal change).
pub const KEY: &str = "tandem.outgoing";

/// One sent text waiting for the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// 16 random bytes, hex: the message's local id.
    pub id: String,
    /// The conversation (`conversation_to_bytes`, hex).
    pub conversation: String,
    /// The text.
    pub text: String,
    /// When the person pressed send (the writing tab's clock, ms since the epoch): the
    /// message is dated then, not when an engine got to it, so texts typed in turn on two
    /// devices keep that order. `None` for an entry from the old single-list journal.
    #[serde(default)]
    pub typed_at: Option<u64>,
    /// For a reply: the answered message (`MessageId::sort_key`, hex).
    #[serde(default)]
    pub reply_to: Option<String>,
}

impl Entry {
    /// The conversation, if the entry names a valid one.
    pub fn conversation(&self) -> Option<Conversation> {
        conversation_from_bytes(&hex::decode(&self.conversation).ok()?).ok()
    }

    /// The local id, if valid.
    pub fn local_id(&self) -> Option<[u8; 16]> {
        hex::decode(&self.id).ok()?.try_into().ok()
    }

    /// The message a reply answers, if the entry names a valid one.
    pub fn reply_to(&self) -> Option<MessageId> {
        MessageId::from_sort_key(&hex::decode(self.reply_to.as_ref()?).ok()?).ok()
    }
}

/// An entry's stored value (its id is in the item's key).
#[derive(Serialize, Deserialize)]
struct Stored {
    c: String,
    t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
}

thread_local! {
    /// Ids this tab wrote that are still in the journal.
    static MINE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The last order this tab gave an entry.
    static LAST: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Whether `key` is one of the journal's items (a `storage` event for it is a change).
pub fn is_journal_key(key: &str) -> bool {
    key.starts_with(KEY)
}

/// Calls `on_change` whenever another tab of this page's origin writes or removes a journal
/// entry (`storage` events reach every tab but the writer); `None` where there is no page
/// (a worker hears of entries from its host instead).
pub fn on_change(on_change: impl Fn() + 'static) -> Option<leptos::prelude::WindowListenerHandle> {
    web_sys::window()?;
    Some(leptos::prelude::window_event_listener(leptos::ev::storage, move |ev| {
        if ev.key().is_some_and(|k| is_journal_key(&k)) {
            on_change();
        }
    }))
}

/// Every journal item's key, sorted (so in the order typed).
fn keys(s: &web_sys::Storage) -> Vec<String> {
    let prefix = format!("{KEY}/");
    let n = s.length().unwrap_or(0);
    let mut keys: Vec<String> =
        (0..n).filter_map(|i| s.key(i).ok().flatten()).filter(|k| k.starts_with(&prefix)).collect();
    keys.sort();
    keys
}

/// The id in an item's key.
fn id_of(key: &str) -> Option<&str> {
    key.rsplit('/').next().filter(|id| id.len() == 32)
}

/// When an item's entry was typed: the milliseconds of its order (`<ms>-<count>`); `None`
/// for an adopted old entry (order 0) or a key that does not parse.
fn typed_at(key: &str) -> Option<u64> {
    let order = key.strip_prefix(KEY)?.strip_prefix('/')?.split('/').next()?;
    order.split('-').next()?.parse().ok().filter(|ms| *ms > 0)
}

/// Every entry, oldest first. An item that does not parse is dropped (it cannot be sent).
pub fn entries() -> Vec<Entry> {
    let Some(s) = storage() else { return Vec::new() };
    adopt_old_list(&s);
    let mut out = Vec::new();
    for key in keys(&s) {
        let stored = s
            .get_item(&key)
            .ok()
            .flatten()
            .and_then(|json| js_sys::JSON::parse(&json).ok())
            .and_then(|v| serde_wasm_bindgen::from_value::<Stored>(v).ok());
        match (id_of(&key), stored) {
            (Some(id), Some(st)) => {
                let typed_at = typed_at(&key);
                out.push(Entry {
                    id: id.to_owned(),
                    conversation: st.c,
                    text: st.t,
                    typed_at,
                    reply_to: st.r,
                });
            }
            _ => {
                let _ = s.remove_item(&key);
            }
        }
    }
    out
}

/// The next order for an entry of this tab: its clock in ms (never going back) and a count;
/// with the ms.
fn next_order() -> (String, u64) {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "epoch ms")]
    let now = js_sys::Date::now().max(0.0) as u64;
    let (ms, n) = LAST.with(|l| {
        let (last, count) = l.get();
        let next = if now > last { (now, 0) } else { (last, count.saturating_add(1)) };
        l.set(next);
        next
    });
    (format!("{ms:016}-{n:08}"), ms)
}

/// Writes one entry under `order`.
fn put(s: &web_sys::Storage, order: &str, entry: &Entry) -> Result<(), String> {
    let stored =
        Stored { c: entry.conversation.clone(), t: entry.text.clone(), r: entry.reply_to.clone() };
    let value = serde_wasm_bindgen::to_value(&stored).map_err(|e| e.to_string())?;
    let json =
        js_sys::JSON::stringify(&value).map_err(|_| "the message could not be saved".to_owned())?;
    s.set_item(&format!("{KEY}/{order}/{}", entry.id), &String::from(json))
        .map_err(|_| "the browser's storage for this site is full".to_owned())
}

/// Moves the entries of a journal written as one list (before entries had their own items)
/// into items of their own, in their order.
fn adopt_old_list(s: &web_sys::Storage) {
    let Some(json) = s.get_item(KEY).ok().flatten() else { return };
    let old: Vec<Entry> = js_sys::JSON::parse(&json)
        .ok()
        .and_then(|v| serde_wasm_bindgen::from_value(v).ok())
        .unwrap_or_default();
    for (i, entry) in old.iter().enumerate() {
        if put(s, &format!("{:016}-{i:08}", 0), entry).is_err() {
            return; // The list stays for the next try.
        }
    }
    let _ = s.remove_item(KEY);
}

/// Writes a sent text (a reply to `reply_to` when given), synchronously; returns its entry.
/// Fails (nothing written) when the browser keeps no local data or its storage is full.
pub fn add(
    conversation: &Conversation,
    text: &str,
    reply_to: Option<MessageId>,
) -> Result<Entry, String> {
    let s = storage().ok_or("this browser keeps no local data for the site")?;
    let (order, ms) = next_order();
    let entry = Entry {
        id: hex::encode(crate::rng::random_bytes::<16>()),
        conversation: hex::encode(conversation_to_bytes(conversation)),
        text: text.to_owned(),
        typed_at: Some(ms),
        reply_to: reply_to.map(|id| hex::encode(id.sort_key())),
    };
    put(&s, &order, &entry)?;
    MINE.with(|m| m.borrow_mut().push(entry.id.clone()));
    Ok(entry)
}

/// Removes an entry: a store holds it now.
pub fn remove(id: &str) {
    if let Some(s) = storage() {
        for key in keys(&s) {
            if id_of(&key) == Some(id) {
                let _ = s.remove_item(&key);
            }
        }
    }
    MINE.with(|m| m.borrow_mut().retain(|x| x != id));
}

/// Whether this tab wrote entries that no store holds yet (leaving should ask first).
pub fn unsaved_here() -> bool {
    let present: Vec<String> = entries().into_iter().map(|e| e.id).collect();
    MINE.with(|m| {
        let mut mine = m.borrow_mut();
        mine.retain(|id| present.contains(id));
        !mine.is_empty()
    })
}

/// Forgets the journal (this device was logged out).
pub fn clear() {
    if let Some(s) = storage() {
        let _ = s.remove_item(KEY);
        for key in keys(&s) {
            let _ = s.remove_item(&key);
        }
    }
    MINE.with(|m| m.borrow_mut().clear());
}

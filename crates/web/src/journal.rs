//! The send journal: what a person sent and no store holds yet.
//!
//! Pressing Enter writes the text here first, synchronously (`localStorage`), before the
//! composer clears: a tab closed a tenth of a second later loses nothing. The engine tab
//! then queues each entry in the IndexedDB outbox (in the same transaction as its history
//! row) under the entry's id, and only then removes the entry. Entries left over by a tab
//! that died (or by a view whose engine tab was busy) are queued when the engine starts, and
//! whenever another tab writes one (`storage` events); the id makes that idempotent
//! ([`tandem_core::client::Client::queue_text_once`]). While this tab has entries no store
//! holds yet, leaving the page asks first.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};
use tandem_core::client::{Conversation, conversation_from_bytes, conversation_to_bytes};

/// The `localStorage` key of the journal.
pub const KEY: &str = "tandem.outgoing";

/// One sent text waiting for the outbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// 16 random bytes, hex: the message's local id.
    pub id: String,
    /// The conversation (`conversation_to_bytes`, hex).
    pub conversation: String,
    /// The text.
    pub text: String,
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
}

thread_local! {
    /// Ids this tab wrote that are still in the journal.
    static MINE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Every entry, oldest first (none if the journal does not parse: it is rewritten whole).
pub fn entries() -> Vec<Entry> {
    storage()
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .and_then(|json| js_sys::JSON::parse(&json).ok())
        .and_then(|v| serde_wasm_bindgen::from_value(v).ok())
        .unwrap_or_default()
}

fn write(list: &[Entry]) -> Result<(), String> {
    let s = storage().ok_or("this browser keeps no local data for the site")?;
    if list.is_empty() {
        return s.remove_item(KEY).map_err(|_| "the browser refused to save".to_owned());
    }
    let value = serde_wasm_bindgen::to_value(list).map_err(|e| e.to_string())?;
    let json =
        js_sys::JSON::stringify(&value).map_err(|_| "the message could not be saved".to_owned())?;
    s.set_item(KEY, &String::from(json))
        .map_err(|_| "the browser's storage for this site is full".to_owned())
}

/// Writes a sent text, synchronously; returns its entry. Fails (nothing written) when the
/// browser keeps no local data or its storage is full.
pub fn add(conversation: &Conversation, text: &str) -> Result<Entry, String> {
    let entry = Entry {
        id: hex::encode(crate::rng::random_bytes::<16>()),
        conversation: hex::encode(conversation_to_bytes(conversation)),
        text: text.to_owned(),
    };
    let mut list = entries();
    list.push(entry.clone());
    write(&list)?;
    MINE.with(|m| m.borrow_mut().push(entry.id.clone()));
    Ok(entry)
}

/// Removes an entry: a store holds it now.
pub fn remove(id: &str) {
    let list: Vec<Entry> = entries().into_iter().filter(|e| e.id != id).collect();
    let _ = write(&list);
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
    }
    MINE.with(|m| m.borrow_mut().clear());
}

//! The send journal in a real browser: a sent text is in `localStorage` before anything
//! else happens, survives (as the next page load would read it), and leaving asks first
//! until a store holds it.
#![cfg(target_family = "wasm")]

use tandem_core::AccountId;
use tandem_core::client::Conversation;
use tandem_web::journal;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn test_a_sent_text_is_journaled_at_once_and_kept_until_removed() {
    journal::clear();
    let chat = Conversation::Direct(AccountId([7; 16]));
    assert!(!journal::unsaved_here());
    let entry = journal::add(&chat, "sent a moment before the tab closed").unwrap();
    // What the next page load reads: the same entry, from storage alone.
    let stored = journal::entries();
    assert_eq!(stored, vec![entry.clone()]);
    assert_eq!(stored[0].conversation(), Some(chat));
    assert!(stored[0].local_id().is_some());
    assert!(journal::unsaved_here(), "leaving now asks first");
    let second = journal::add(&chat, "and another").unwrap();
    assert_ne!(second.id, entry.id);
    journal::remove(&entry.id);
    assert_eq!(journal::entries(), vec![second.clone()]);
    assert!(journal::unsaved_here());
    journal::remove(&second.id);
    assert!(journal::entries().is_empty());
    assert!(!journal::unsaved_here(), "nothing left to lose");
}

#[wasm_bindgen_test]
fn test_a_damaged_journal_reads_as_empty_and_is_replaced() {
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    storage.set_item(journal::KEY, "{not json").unwrap();
    assert!(journal::entries().is_empty());
    let chat = Conversation::Group([1; 16]);
    journal::add(&chat, "x").unwrap();
    assert_eq!(journal::entries().len(), 1);
    journal::clear();
}

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
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "epoch ms")]
    let before = js_sys::Date::now() as u64;
    let entry = journal::add(&chat, "sent a moment before the tab closed", None).unwrap();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "epoch ms")]
    let after = js_sys::Date::now() as u64;
    // Dated when typed (the message will carry that time).
    assert!(entry.typed_at.is_some_and(|t| (before..=after).contains(&t)), "{entry:?}");
    // What the next page load reads: the same entry, time included, from storage alone.
    let stored = journal::entries();
    assert_eq!(stored, vec![entry.clone()]);
    assert_eq!(stored[0].conversation(), Some(chat));
    assert!(stored[0].local_id().is_some());
    assert!(journal::unsaved_here(), "leaving now asks first");
    // A reply keeps the message it answers.
    let answered = tandem_core::client::MessageId {
        sender: AccountId([8; 16]),
        device: tandem_core::DeviceId::new(3).unwrap(),
        timestamp: 1_800_000_000_123,
    };
    let second = journal::add(&chat, "and another", Some(answered)).unwrap();
    assert_ne!(second.id, entry.id);
    assert_eq!(journal::entries()[1].reply_to(), Some(answered));
    assert_eq!(stored[0].reply_to(), None);
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
    journal::add(&chat, "x", None).unwrap();
    assert_eq!(journal::entries().len(), 1);
    journal::clear();
}

#[wasm_bindgen_test]
fn test_entries_keep_the_order_typed_and_each_has_its_own_item() {
    journal::clear();
    let chat = Conversation::Direct(AccountId([9; 16]));
    // Many in the same millisecond: the order typed still holds.
    let typed: Vec<String> = (0..50).map(|i| format!("burst {i}")).collect();
    let ids: Vec<String> = typed.iter().map(|t| journal::add(&chat, t, None).unwrap().id).collect();
    let stored = journal::entries();
    assert_eq!(stored.iter().map(|e| e.text.clone()).collect::<Vec<_>>(), typed);
    // One item per entry: removing one (as the engine does while another tab adds) leaves
    // every other item untouched.
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let items = (0..storage.length().unwrap())
        .filter_map(|i| storage.key(i).unwrap())
        .filter(|k| journal::is_journal_key(k))
        .count();
    assert_eq!(items, 50);
    journal::remove(&ids[10]);
    assert_eq!(journal::entries().len(), 49);
    assert!(journal::entries().iter().all(|e| e.id != ids[10]));
    journal::clear();
    assert!(journal::entries().is_empty());
}

#[wasm_bindgen_test]
fn test_a_journal_kept_as_one_list_is_adopted_in_order() {
    journal::clear();
    let chat =
        hex::encode(tandem_core::client::conversation_to_bytes(&Conversation::Group([2; 16])));
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let old = format!(
        r#"[{{"id":"{}","conversation":"{chat}","text":"first"}},{{"id":"{}","conversation":"{chat}","text":"second"}}]"#,
        "a".repeat(32),
        "b".repeat(32)
    );
    storage.set_item(journal::KEY, &old).unwrap();
    let got = journal::entries();
    assert_eq!(got.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["first", "second"]);
    assert_eq!(got[0].id, "a".repeat(32));
    assert!(storage.get_item(journal::KEY).unwrap().is_none(), "the old list is gone");
    journal::clear();
}

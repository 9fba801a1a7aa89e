//! Encryption at rest on real IndexedDB and WebCrypto: stored values hold no plain text and
//! do not open under another record's key; a database written in clear is sealed on open
//! with nothing lost; the app lock refuses a wrong passphrase and keeps the store closed
//! until the right one.
#![cfg(target_family = "wasm")]

use js_sys::{Object, Reflect, Uint8Array};
use rexie::TransactionMode;
use tandem_core::client::{ClientError, MessageRecord, conversation_to_bytes};
use tandem_core::store::{ClientChanges, ClientStore, IdentityKeyStore, StoreError};
use tandem_core::{AccountId, IdentityKeyPair};
use tandem_web::lock::{LockError, NewLock, Secret};
use tandem_web::store::{IdbStore, migrations, seal};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod common;

fn unique_name(tag: &str) -> String {
    common::fresh_db_name(&format!("at-rest-{tag}"))
}

fn message(peer: u8, timestamp: u64, body: &str) -> MessageRecord {
    common::incoming(AccountId([peer; 16]), timestamp, body)
}

fn bytes_of(v: &JsValue) -> Vec<u8> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return a.to_vec();
    }
    if let Some(b) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return Uint8Array::new(b).to_vec();
    }
    Vec::new()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every value of every engine store but the key ring, as bytes (message objects: their `v`).
async fn raw_values(name: &str) -> Vec<(String, Vec<u8>)> {
    let db = migrations::open(name).await.unwrap();
    let mut out = Vec::new();
    for store in migrations::ENGINE_STORES {
        let tx = db.transaction(&[store], TransactionMode::ReadOnly).unwrap();
        let rows = tx.store(store).unwrap().scan(None, None, None, None).await.unwrap();
        tx.done().await.unwrap();
        for (k, v) in rows {
            if *store == migrations::LOCAL && k.as_string().as_deref() == Some("keys") {
                // The key ring: CryptoKeys and the wrapped data key, never sealed.
                continue;
            }
            let v = if v.is_instance_of::<Object>() && !v.is_instance_of::<Uint8Array>() {
                Reflect::get(&v, &"v".into()).unwrap_or(v)
            } else {
                v
            };
            out.push(((*store).to_owned(), bytes_of(&v)));
        }
    }
    db.close();
    out
}

#[wasm_bindgen_test]
async fn test_values_are_sealed_and_bound_to_their_record() {
    let name = unique_name("sealed");
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    let store = IdbStore::create(&name, identity.clone(), 9).await.unwrap();
    let (a, b) = (message(1, 10, "first secret text"), message(2, 20, "second secret text"));
    let mut changes = ClientChanges::default();
    changes.messages.insert(a.id, a.clone());
    changes.messages.insert(b.id, b.clone());
    store.save_client_changes(changes).await.unwrap();
    let mut named = ClientChanges::default();
    named.contacts.insert(AccountId([1; 16]), "peer-handle-one".into());
    store.save_client_changes(named).await.unwrap();
    store.close();

    let values = raw_values(&name).await;
    assert!(values.len() >= 6, "identity, registration, messages, summaries, recent, contact");
    let private = identity.serialize();
    for (store, v) in &values {
        assert!(!holds(v, b"secret text"), "message text in {store}");
        assert!(!holds(v, b"peer-handle-one"), "a handle in {store}");
        assert!(!holds(v, &private[private.len() - 32..]), "the private key in {store}");
        assert_eq!(v.first(), Some(&1), "{store} holds a sealed value");
    }

    // Swap the sealed bodies of the two messages: neither opens.
    let db = migrations::open(&name).await.unwrap();
    let tx = db.transaction(&[migrations::MESSAGES], TransactionMode::ReadWrite).unwrap();
    let s = tx.store(migrations::MESSAGES).unwrap();
    let rows = s.scan(None, None, None, None).await.unwrap();
    let (ka, va) = rows[0].clone();
    let (kb, vb) = rows[1].clone();
    let swapped_a = Object::new();
    Reflect::set(&swapped_a, &"c".into(), &Reflect::get(&va, &"c".into()).unwrap()).unwrap();
    Reflect::set(&swapped_a, &"v".into(), &Reflect::get(&vb, &"v".into()).unwrap()).unwrap();
    s.put(&swapped_a, Some(&ka)).await.unwrap();
    let _ = kb;
    tx.done().await.unwrap();
    db.close();
    let store = IdbStore::open(&name).await.unwrap().expect("still this device");
    let first = if a.id.sort_key() < b.id.sort_key() { &a } else { &b };
    match store.load_message(&first.id).await {
        Err(StoreError::Corrupt { what: "message", .. }) => {}
        other => panic!("a moved value must not open, got {other:?}"),
    }
    let second = if first.id == a.id { &b } else { &a };
    assert_eq!(store.load_message(&second.id).await.unwrap().unwrap().body, second.body);
    store.close();
    rexie::Rexie::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn test_a_clear_database_is_sealed_on_open_with_nothing_lost() {
    let name = unique_name("legacy");
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    let m = message(3, 30, "written before sealing");
    // The layout of schema 4 before encryption at rest.
    let db = migrations::open(&name).await.unwrap();
    let stores =
        [migrations::LOCAL, migrations::MESSAGES, migrations::CONVERSATIONS, migrations::CONTACTS];
    let tx = db.transaction(&stores, TransactionMode::ReadWrite).unwrap();
    let local = tx.store(migrations::LOCAL).unwrap();
    let bytes = |b: &[u8]| JsValue::from(Uint8Array::from(b));
    local.put(&bytes(&identity.serialize()), Some(&"identity".into())).await.unwrap();
    local.put(&bytes(&5u32.to_be_bytes()), Some(&"registration".into())).await.unwrap();
    let mut c = conversation_to_bytes(&m.conversation);
    c.extend_from_slice(&m.id.sort_key());
    let object = Object::new();
    Reflect::set(&object, &"c".into(), &bytes(&c)).unwrap();
    Reflect::set(&object, &"v".into(), &bytes(&m.to_bytes())).unwrap();
    tx.store(migrations::MESSAGES)
        .unwrap()
        .put(&object, Some(&bytes(&m.id.sort_key())))
        .await
        .unwrap();
    let summary = Object::new();
    Reflect::set(&summary, &"m".into(), &bytes(&m.to_bytes())).unwrap();
    Reflect::set(&summary, &"u".into(), &JsValue::from(1)).unwrap();
    tx.store(migrations::CONVERSATIONS)
        .unwrap()
        .put(&summary, Some(&bytes(&conversation_to_bytes(&m.conversation))))
        .await
        .unwrap();
    tx.store(migrations::CONTACTS)
        .unwrap()
        .put(&"legacy-handle".into(), Some(&AccountId([3; 16]).to_string().into()))
        .await
        .unwrap();
    tx.done().await.unwrap();
    db.close();

    let store = IdbStore::open(&name).await.unwrap().expect("the clear device opens");
    assert_eq!(
        store.load_identity_key_pair().await.unwrap().identity_key(),
        identity.identity_key()
    );
    assert_eq!(store.load_message(&m.id).await.unwrap().unwrap().body, m.body);
    let chats = store.conversations().await.unwrap();
    assert_eq!((chats.len(), chats[0].unread), (1, 1));
    assert_eq!(store.contact(&AccountId([3; 16])).await.unwrap().as_deref(), Some("legacy-handle"));
    let recent = store.recent().await.unwrap();
    assert_eq!(recent.len(), 1, "the start snapshot is rebuilt while sealing");
    assert_eq!(recent[0].1.as_deref(), Some("legacy-handle"));
    store.close();
    for (s, v) in raw_values(&name).await {
        assert!(!holds(&v, b"written before sealing"), "clear text left in {s}");
        assert!(!holds(&v, b"legacy-handle"), "a clear handle left in {s}");
    }
    rexie::Rexie::delete(&name).await.unwrap();
}

#[wasm_bindgen_test]
async fn test_the_passphrase_lock_keeps_the_store_closed_until_the_right_passphrase() {
    let name = unique_name("lock");
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    let store = IdbStore::create(&name, identity, 6).await.unwrap();
    let m = message(4, 40, "behind the lock");
    let mut changes = ClientChanges::default();
    changes.messages.insert(m.id, m.clone());
    store.save_client_changes(changes).await.unwrap();
    store.close();

    let pass = "a long enough passphrase";
    assert_eq!(
        tandem_web::lock::lock(&name, NewLock::Passphrase("short".into(), "short".into())).await,
        Err(LockError::Short)
    );
    assert_eq!(
        tandem_web::lock::lock(&name, NewLock::Passphrase(pass.into(), "typo".into())).await,
        Err(LockError::Mismatch)
    );
    tandem_web::lock::lock(&name, NewLock::Passphrase(pass.into(), pass.into())).await.unwrap();
    seal::forget(&name);
    let err = IdbStore::open(&name).await.expect_err("locked");
    assert!(seal::is_locked(&ClientError::Store(err)), "the error says locked");
    assert_eq!(
        tandem_web::lock::unlock(&name, Secret::Passphrase("not the passphrase")).await,
        Err(LockError::Wrong)
    );
    assert!(IdbStore::open(&name).await.is_err(), "still locked after a wrong passphrase");
    tandem_web::lock::unlock(&name, Secret::Passphrase(pass)).await.unwrap();
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    assert_eq!(store.load_message(&m.id).await.unwrap().unwrap().body, m.body);
    store.close();

    // Starting over with new keys (a reset) keeps the lock: the new data opens only with the
    // same passphrase.
    let fresh = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    IdbStore::create(&name, fresh.clone(), 8).await.unwrap().close();
    seal::forget(&name);
    assert!(IdbStore::open(&name).await.is_err(), "still locked after a reset");
    tandem_web::lock::unlock(&name, Secret::Passphrase(pass)).await.unwrap();
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    assert_eq!(store.load_identity_key_pair().await.unwrap().identity_key(), fresh.identity_key());
    assert!(store.load_message(&m.id).await.unwrap().is_none(), "the old data is gone");
    store.close();

    // Off again: the store opens without asking, with the same data key.
    tandem_web::lock::remove(&name, Secret::Passphrase(pass)).await.unwrap();
    seal::forget(&name);
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    assert_eq!(store.load_identity_key_pair().await.unwrap().identity_key(), fresh.identity_key());
    store.close();
    rexie::Rexie::delete(&name).await.unwrap();
}

/// A copied profile whose app lock settings were edited (memory that would abort the page,
/// passes that would run for hours) is refused before Argon2 runs, with an error that says
/// so; the store stays closed. The settings Tandem writes pass the same check.
#[wasm_bindgen_test]
async fn test_edited_lock_settings_are_refused_before_they_cost_anything() {
    use tandem_web::lock::LockParams;
    use tandem_web::store::seal::Ring;

    let passphrase = |m_kib, t, p| LockParams::Passphrase { salt: vec![7; 16], m_kib, t, p };
    assert_eq!(passphrase(19_456, 2, 1).check(), Ok(()));
    let passkey = LockParams::Passkey { salt: vec![1; 32], credential_id: vec![2; 64] };
    assert_eq!(passkey.check(), Ok(()));
    assert_eq!(passphrase(u32::MAX, 2, 1).check(), Err("memory cost"));
    assert_eq!(passphrase(256 * 1024 + 1, 2, 1).check(), Err("memory cost"));
    assert_eq!(passphrase(31, 1, 4).check(), Err("memory cost"));
    assert_eq!(passphrase(19_456, 1_000_000, 1).check(), Err("passes or lanes"));
    assert_eq!(passphrase(19_456, 0, 1).check(), Err("passes or lanes"));
    assert_eq!(passphrase(19_456, 2, 0).check(), Err("passes or lanes"));
    let no_salt = LockParams::Passphrase { salt: Vec::new(), m_kib: 19_456, t: 2, p: 1 };
    assert_eq!(no_salt.check(), Err("salt length"));
    let no_credential = LockParams::Passkey { salt: vec![1; 32], credential_id: Vec::new() };
    assert_eq!(no_credential.check(), Err("credential id length"));

    // A real locked store, its lock settings edited in its files.
    let name = unique_name("edited-lock");
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    IdbStore::create(&name, identity, 9).await.unwrap().close();
    let pass = "a long enough passphrase";
    tandem_web::lock::lock(&name, NewLock::Passphrase(pass.into(), pass.into())).await.unwrap();
    seal::forget(&name);
    let Some(Ring::Locked { wrapped, lock }) = IdbStore::read_ring(&name).await.unwrap() else {
        panic!("a locked ring")
    };
    Reflect::set(&lock, &"m_kib".into(), &JsValue::from_f64(4_000_000_000.0)).unwrap();
    IdbStore::write_ring(&name, &Ring::Locked { wrapped, lock }).await.unwrap();
    let refused = tandem_web::lock::unlock(&name, Secret::Passphrase(pass)).await;
    let Err(LockError::Damaged(why)) = &refused else { panic!("{refused:?}") };
    assert_eq!(why, "memory cost");
    assert!(refused.unwrap_err().to_string().contains("Link this browser again"));
    assert!(matches!(tandem_web::lock::current(&name).await, Err(LockError::Damaged(_))));
    assert!(IdbStore::open(&name).await.is_err(), "the store stays closed");
    rexie::Rexie::delete(&name).await.unwrap();
}

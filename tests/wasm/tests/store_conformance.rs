//! `tandem-core`'s store conformance suite on the IndexedDB store, in headless Chromium:
//! every test gets a fresh database.
#![cfg(target_family = "wasm")]

use tandem_core::IdentityKeyPair;
use tandem_web::store::IdbStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod common;

async fn make_idb_store(identity: IdentityKeyPair, registration_id: u32) -> IdbStore {
    IdbStore::create(&common::fresh_db_name("conformance"), identity, registration_id)
        .await
        .expect("open a fresh IndexedDB store")
}

tandem_core::store_conformance_tests!(wasm_bindgen_test, make_idb_store);

/// The identity survives closing and reopening the database, and the state saved with it.
#[wasm_bindgen_test]
async fn test_identity_and_account_survive_reopen() {
    use tandem_core::store::{ClientStore, IdentityKeyStore};
    let name = common::fresh_db_name("reopen");
    assert!(IdbStore::open(&name).await.unwrap().is_none());
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    let store = IdbStore::create(&name, identity.clone(), 4242).await.unwrap();
    store.close();
    let store = IdbStore::open(&name).await.unwrap().expect("identity kept");
    assert_eq!(
        store.load_identity_key_pair().await.unwrap().identity_key(),
        identity.identity_key()
    );
    assert_eq!(store.load_local_registration_id().await.unwrap(), 4242);
    assert!(store.load_account().await.unwrap().is_none());
}

/// Sessions saved through the session log survive a reopen before compaction (the log is
/// replayed), during it (a save between compaction chunks stays newest) and after it (the
/// per-address records hold them); a removal replays as a removal.
#[wasm_bindgen_test]
async fn test_session_log_replays_and_compacts() {
    use tandem_core::session::process_prekey_bundle;
    use tandem_core::store::{Changes, MemoryStore, ProtocolStore, SessionStore};
    use tandem_core::testing::{SeededRng, publish_bundle};
    use tandem_core::{DeviceId, ProtocolAddress, Timestamp};

    const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);
    let name = common::fresh_db_name("session-log");
    let mut rng = SeededRng::new(11);
    let identity = IdentityKeyPair::generate(&mut rng);
    let store = IdbStore::create(&name, identity.clone(), 7).await.unwrap();
    let memory = MemoryStore::new(identity, 7);

    // 70 saves of one fresh session each, then one removal: more than a compaction's worth.
    let mut addresses = Vec::new();
    for i in 0..70u32 {
        let peer = MemoryStore::new(IdentityKeyPair::generate(&mut rng), i + 1);
        let device = DeviceId::new(1).unwrap();
        let address = ProtocolAddress::new(format!("peer{i}"), device);
        let bundle = publish_bundle(&peer, device, i + 1, (true, false), NOW, &mut rng).await;
        let c = process_prekey_bundle(&memory, &address, &bundle, NOW, &mut rng).await.unwrap();
        store.save_changes(c).await.unwrap();
        addresses.push(address);
    }
    let mut removal = Changes::default();
    removal.removed_sessions.push(addresses[0].clone());
    store.save_changes(removal).await.unwrap();
    let expected: Vec<Option<Vec<u8>>> = {
        let mut v = Vec::new();
        for a in &addresses {
            v.push(store.load_session(a).await.unwrap().map(|r| r.to_bytes().to_vec()));
        }
        v
    };
    assert!(expected[0].is_none() && expected[1..].iter().all(Option::is_some));
    assert!(store.wants_compaction(), "70 log entries call for compaction");

    let check = |store: IdbStore, when: &'static str| {
        let expected = expected.clone();
        let addresses = addresses.clone();
        async move {
            for (a, want) in addresses.iter().zip(&expected) {
                let got = store.load_session(a).await.unwrap().map(|r| r.to_bytes().to_vec());
                assert_eq!(&got, want, "{a} {when}");
            }
            store
        }
    };
    // Replayed from the log after a reopen.
    store.close();
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    let store = check(store, "replayed from the log").await;

    // Compacted while a newer state of one session is saved: the newer one stays logged.
    let (_, newer) = tandem_core::session::message_encrypt(&store, &addresses[1], b"hi", NOW)
        .await
        .unwrap()
        .into_parts();
    let newer_bytes = newer.sessions[&addresses[1]].to_bytes().to_vec();
    assert_ne!(Some(&newer_bytes), expected[1].as_ref());
    let (folded, saved) =
        futures_util::future::join(store.compact_sessions(), store.save_changes(newer)).await;
    assert_eq!(folded.unwrap(), 70);
    saved.unwrap();
    let mut expected = expected;
    expected[1] = Some(newer_bytes);
    let check = |store: IdbStore, when: &'static str| {
        let expected = expected.clone();
        let addresses = addresses.clone();
        async move {
            for (a, want) in addresses.iter().zip(&expected) {
                let got = store.load_session(a).await.unwrap().map(|r| r.to_bytes().to_vec());
                assert_eq!(&got, want, "{a} {when}");
            }
            store
        }
    };
    assert!(!store.wants_compaction());
    let store = check(store, "after compaction").await;
    store.close();
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    let store = check(store, "compacted and reopened").await;
    assert_eq!(store.compact_sessions().await.unwrap(), 1, "the later save is folded next");
    store.close();
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    let store = check(store, "folded twice and reopened").await;
    store.close();
}

/// The start snapshot's record of the newest chats follows every save: at most 50, newest
/// first, and an old chat with a new message comes back to the top.
#[wasm_bindgen_test]
async fn test_recent_chats_follow_saves() {
    use tandem_core::AccountId;
    use tandem_core::client::Conversation;
    use tandem_core::store::{ClientChanges, ClientStore};
    let store =
        make_idb_store(IdentityKeyPair::generate(&mut tandem_web::rng::system_rng()), 7).await;
    let message = |peer: u8, timestamp: u64| {
        common::incoming(AccountId([peer; 16]), timestamp, format!("from {peer} at {timestamp}"))
    };
    // 60 chats, in two saves.
    for range in [1u8..=30, 31..=60] {
        let mut changes = ClientChanges::default();
        for peer in range {
            let m = message(peer, u64::from(peer));
            changes.messages.insert(m.id, m);
        }
        store.save_client_changes(changes).await.unwrap();
    }
    let recent: Vec<_> = store.recent().await.unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(recent.len(), 50);
    let times: Vec<u64> = recent.iter().map(|s| s.last.id.timestamp).collect();
    assert_eq!(times, (11..=60).rev().collect::<Vec<_>>(), "the newest 50, newest first");
    assert!(recent.iter().all(|s| s.unread == 1));
    // Chat 1 (dropped off the list) gets a new message: first again, chat 11 drops off.
    let mut changes = ClientChanges::default();
    let m = message(1, 100);
    changes.messages.insert(m.id, m);
    store.save_client_changes(changes).await.unwrap();
    let recent: Vec<_> = store.recent().await.unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(recent.len(), 50);
    assert_eq!(recent[0].conversation, Conversation::Direct(AccountId([1; 16])));
    assert_eq!(recent[0].last.body, "from 1 at 100");
    assert!(!recent.iter().any(|s| s.last.id.timestamp == 11));
    // A name saved later reaches the snapshot's entry.
    assert_eq!(store.recent().await.unwrap()[0].1, None);
    let mut named = ClientChanges::default();
    named.contacts.insert(AccountId([1; 16]), "one".into());
    store.save_client_changes(named).await.unwrap();
    assert_eq!(store.recent().await.unwrap()[0].1.as_deref(), Some("one"));
    // And a new message of a named chat carries the name from the start.
    let mut changes = ClientChanges::default();
    let m = message(1, 101);
    changes.messages.insert(m.id, m);
    store.save_client_changes(changes).await.unwrap();
    assert_eq!(store.recent().await.unwrap()[0].1.as_deref(), Some("one"));
    // The full list agrees with the snapshot's order.
    let all = store.conversations().await.unwrap();
    assert_eq!(all.len(), 60);
    assert_eq!(
        all[..50].iter().map(|s| s.conversation).collect::<Vec<_>>(),
        recent.iter().map(|s| s.conversation).collect::<Vec<_>>()
    );
}

/// Unread counts follow saves whether the store knows a message from a lookup, from its own
/// save, or only from IndexedDB (after a reopen): a read message counts down once, a repeat
/// save of the same state changes nothing.
#[wasm_bindgen_test]
async fn test_unread_counts_follow_lookups_saves_and_reopens() {
    use tandem_core::AccountId;
    use tandem_core::client::MessageRecord;
    use tandem_core::store::{ClientChanges, ClientStore};
    let name = common::fresh_db_name("unread");
    let store =
        IdbStore::create(&name, IdentityKeyPair::generate(&mut tandem_web::rng::system_rng()), 3)
            .await
            .unwrap();
    let peer = AccountId([5; 16]);
    let message = |timestamp: u64| common::incoming(peer, timestamp, format!("at {timestamp}"));
    let save = |m: MessageRecord| {
        let mut c = ClientChanges::default();
        c.messages.insert(m.id, m);
        c
    };
    async fn unread(s: &IdbStore) -> u32 {
        s.conversations().await.unwrap()[0].unread
    }
    let first = message(10);
    assert!(store.load_message(&first.id).await.unwrap().is_none(), "looked up first: absent");
    store.save_client_changes(save(first.clone())).await.unwrap();
    assert_eq!(unread(&store).await, 1);
    store.save_client_changes(save(first.clone())).await.unwrap();
    assert_eq!(unread(&store).await, 1, "the same state again changes nothing");
    let second = message(20);
    store.save_client_changes(save(second.clone())).await.unwrap();
    assert_eq!(unread(&store).await, 2);
    // Read on some device: counts down once, whether or not the store looked it up.
    assert!(store.load_message(&first.id).await.unwrap().is_some());
    let mut read = first.clone();
    read.read_by.insert(AccountId([1; 16]));
    store.save_client_changes(save(read.clone())).await.unwrap();
    assert_eq!(unread(&store).await, 1);
    store.save_client_changes(save(read)).await.unwrap();
    assert_eq!(unread(&store).await, 1);
    store.close();
    // A fresh store knows nothing but what IndexedDB holds.
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    store.save_client_changes(save(second.clone())).await.unwrap();
    assert_eq!(unread(&store).await, 1, "a repeat after a reopen is found in IndexedDB");
    let mut read = second;
    read.read_by.insert(AccountId([1; 16]));
    store.save_client_changes(save(read)).await.unwrap();
    assert_eq!(unread(&store).await, 0);
    store.close();
}

/// Unread messages that mention this account's handle are counted apart (the chat list's
/// "@"), follow reads like the unread count, and are found again after a reopen.
#[wasm_bindgen_test]
async fn test_unread_mentions_of_this_account_are_counted_in_the_summary() {
    use tandem_core::client::{AccountRecord, MessageRecord};
    use tandem_core::store::{ClientChanges, ClientStore};
    use tandem_core::{AccountId, DeviceId, Timestamp};
    let name = common::fresh_db_name("mentions");
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    let me = AccountRecord::new(
        AccountId([1; 16]),
        DeviceId::PRIMARY,
        "dana",
        *identity.identity_key(),
        Timestamp::from_millis(1),
    );
    let store = IdbStore::create(&name, identity, 3).await.unwrap();
    let peer = AccountId([5; 16]);
    let save = |m: MessageRecord, account: Option<AccountRecord>| {
        let mut c = ClientChanges { account, ..ClientChanges::default() };
        c.messages.insert(m.id, m);
        c
    };
    async fn counts(s: &IdbStore) -> (u32, u32) {
        let c = &s.conversations().await.unwrap()[0];
        (c.unread, c.mentions)
    }
    let plain = common::incoming(peer, 10, "lunch?");
    store.save_client_changes(save(plain, Some(me))).await.unwrap();
    assert_eq!(counts(&store).await, (1, 0));
    // "@dana" mentions her; "dana@example.com" and "@danagram" do not.
    let mention = common::incoming(peer, 20, "@dana are you in?");
    store.save_client_changes(save(mention.clone(), None)).await.unwrap();
    for (t, body) in [(30, "mail dana@example.com"), (40, "@danagram")] {
        store.save_client_changes(save(common::incoming(peer, t, body), None)).await.unwrap();
    }
    assert_eq!(counts(&store).await, (4, 1));
    store.close();
    // After a reopen (the handle read with the account) a read mention counts down once.
    let store = IdbStore::open(&name).await.unwrap().unwrap();
    assert!(store.load_account().await.unwrap().is_some());
    let mut read = mention;
    read.read_by.insert(AccountId([1; 16]));
    store.save_client_changes(save(read.clone(), None)).await.unwrap();
    assert_eq!(counts(&store).await, (3, 0));
    store.save_client_changes(save(read, None)).await.unwrap();
    assert_eq!(counts(&store).await, (3, 0));
    store.close();
}

/// The engine's store keeps device lists, sender keys, groups and the outbox in memory:
/// the whole suite again with it on.
async fn make_remembering_store(identity: IdentityKeyPair, registration_id: u32) -> IdbStore {
    let store = make_idb_store(identity, registration_id).await;
    store.remember_engine_records();
    store
}

mod remembering {
    use wasm_bindgen_test::wasm_bindgen_test;
    tandem_core::store_conformance_tests!(wasm_bindgen_test, super::make_remembering_store);
}

/// Device lists the engine's store writes reach a view's store on its next read (a view
/// keeps none in memory), and the engine's store reads back what it wrote.
#[wasm_bindgen_test]
async fn test_a_views_store_never_shows_a_device_list_older_than_the_engine_wrote() {
    use tandem_core::AccountId;
    use tandem_core::store::{ClientChanges, ClientStore};
    let name = common::fresh_db_name("lists");
    let identity = IdentityKeyPair::generate(&mut tandem_web::rng::system_rng());
    let engine = IdbStore::create(&name, identity.clone(), 7).await.unwrap();
    engine.remember_engine_records();
    let view = IdbStore::open(&name).await.unwrap().expect("the same device");
    let bob = AccountId([9; 16]);
    assert!(view.load_device_list(&bob).await.unwrap().is_none());
    assert!(engine.load_device_list(&bob).await.unwrap().is_none(), "a miss is remembered too");
    for version in [1u64, 2] {
        let mut changes = ClientChanges::default();
        changes.device_lists.insert(
            bob,
            tandem_core::client::DeviceListRecord {
                account_id: bob,
                account_key: *identity.identity_key(),
                list_version: Some(version),
                list_digest: None,
                list_expired: false,
                devices: Vec::new(),
                rejected: Vec::new(),
                fetched_at: tandem_core::Timestamp::from_millis(1),
                stale: false,
                verified: version == 2,
                key_changed: false,
                pending_key: None,
                revoked: Vec::new(),
                key_changed_at: None,
            },
        );
        engine.save_client_changes(changes).await.unwrap();
        for store in [&engine, &view] {
            let list = store.load_device_list(&bob).await.unwrap().expect("saved");
            assert_eq!(list.list_version, Some(version));
            assert_eq!(list.verified, version == 2);
        }
    }
}

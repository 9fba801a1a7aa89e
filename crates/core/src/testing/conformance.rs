//! The store conformance suite (feature `testing`): what every [`ProtocolStore`] must do.
//!
//! Each function takes a factory `make(identity, registration_id)` returning a fresh, empty
//! store and panics on a violation. [`store_conformance_tests!`](crate::store_conformance_tests)
//! turns the suite into tests, e.g. natively
//! `store_conformance_tests!(tokio::test, make_memory_store);` or in a browser
//! `store_conformance_tests!(wasm_bindgen_test, make_indexeddb_store);`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;

use crate::address::AccountId;
use crate::address::{DeviceId, ProtocolAddress};
use crate::group_state::{GroupMember, GroupState, SignedGroupState};
use crate::identity::IdentityKeyPair;
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyBundle, PreKeyId, PreKeyRecord, SignedPreKeyId,
    SignedPreKeyRecord,
};
use crate::records::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MessageId, MessageRecord, Notice,
    OutboxEntry, OutgoingState,
};
use crate::sender_keys::{self, DistributionId};
use crate::session::{self, SessionRecord};
use crate::store::{
    Changes, ClientChanges, ClientStore, EncryptedBatch, KyberPreKeyUse, ProtocolStore,
    SenderKeyName, StoreError,
};
use crate::testing::SeededRng;
use crate::time::Timestamp;
use crate::wire::signal::CiphertextMessage;

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn address(name: &str, device: u32) -> ProtocolAddress {
    ProtocolAddress::new(name, DeviceId::new(device).unwrap())
}

async fn fresh<S, F, Fut>(make: &F, seed: u64) -> (S, IdentityKeyPair, SeededRng)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let mut rng = SeededRng::new(seed);
    let identity = IdentityKeyPair::generate(&mut rng);
    let registration_id = 1000 + u32::try_from(seed % 1000).unwrap();
    (make(identity.clone(), registration_id).await, identity, rng)
}

/// Publishes a bundle from `store`'s keys (one-time, signed and last-resort Kyber prekey).
async fn publish<S: ProtocolStore>(store: &S, rng: &mut SeededRng) -> PreKeyBundle {
    crate::testing::publish_bundle(store, DeviceId::PRIMARY, 11, (true, true), NOW, rng).await
}

/// The store returns the identity and registration id it was made with.
pub async fn local_identity<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (store, identity, _) = fresh(&make, 1).await;
    let loaded = store.load_identity_key_pair().await.unwrap();
    assert_eq!(loaded.identity_key(), identity.identity_key());
    assert_eq!(loaded.private_key().serialize(), identity.private_key().serialize());
    assert_eq!(store.load_local_registration_id().await.unwrap(), 1001);
}

/// Trusted identities are saved per address, replaced on request, and isolated.
pub async fn trusted_identities<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (store, _, mut rng) = fresh(&make, 2).await;
    let bob1 = address("bob", 1);
    let bob2 = address("bob", 2);
    assert_eq!(store.load_identity(&bob1).await.unwrap(), None);
    let k1 = *IdentityKeyPair::generate(&mut rng).identity_key();
    let k2 = *IdentityKeyPair::generate(&mut rng).identity_key();
    let mut changes = Changes::default();
    changes.identities.insert(bob1.clone(), k1);
    store.save_changes(changes).await.unwrap();
    assert_eq!(store.load_identity(&bob1).await.unwrap(), Some(k1));
    assert_eq!(store.load_identity(&bob2).await.unwrap(), None);
    let mut changes = Changes::default();
    changes.identities.insert(bob1.clone(), k2);
    store.save_changes(changes).await.unwrap();
    assert_eq!(store.load_identity(&bob1).await.unwrap(), Some(k2));
}

/// One-time prekeys are counted, loaded and removed.
pub async fn pre_keys<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (store, _, mut rng) = fresh(&make, 3).await;
    assert_eq!(store.count_pre_keys().await.unwrap(), 0);
    let keys: Vec<_> = (1..=3).map(|i| PreKeyRecord::generate(PreKeyId(i), &mut rng)).collect();
    let publics: Vec<_> = keys.iter().map(|k| k.key_pair.public_key).collect();
    store.save_changes(Changes { pre_keys: keys, ..Default::default() }).await.unwrap();
    assert_eq!(store.count_pre_keys().await.unwrap(), 3);
    let k2 = store.load_pre_key(PreKeyId(2)).await.unwrap().expect("prekey 2 stored");
    assert_eq!(k2.key_pair.public_key, publics[1]);
    assert_eq!(k2.key_pair.private_key.public_key(), publics[1]);
    store
        .save_changes(Changes { removed_pre_keys: vec![PreKeyId(2)], ..Default::default() })
        .await
        .unwrap();
    assert!(store.load_pre_key(PreKeyId(2)).await.unwrap().is_none());
    assert_eq!(store.count_pre_keys().await.unwrap(), 2);
    assert!(store.load_pre_key(PreKeyId(99)).await.unwrap().is_none());
}

/// Signed prekeys are stored with their signature and removed on rotation.
pub async fn signed_pre_keys<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (store, identity, mut rng) = fresh(&make, 4).await;
    let spk = SignedPreKeyRecord::generate(SignedPreKeyId(5), &identity, NOW, &mut rng);
    let (public, signature) = (spk.key_pair.public_key, spk.signature);
    store.save_changes(Changes { signed_pre_keys: vec![spk], ..Default::default() }).await.unwrap();
    let loaded = store.load_signed_pre_key(SignedPreKeyId(5)).await.unwrap().expect("stored");
    assert_eq!(
        (loaded.key_pair.public_key, loaded.signature, loaded.timestamp),
        (public, signature, NOW)
    );
    identity.public_key().verify_signature(&public.serialize(), &loaded.signature).unwrap();
    store
        .save_changes(Changes {
            removed_signed_pre_keys: vec![SignedPreKeyId(5)],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(store.load_signed_pre_key(SignedPreKeyId(5)).await.unwrap().is_none());
}

/// A used one-time Kyber prekey disappears; a used last-resort one stays and remembers the
/// (signed prekey, base key) it was used with.
pub async fn kyber_pre_keys<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (store, identity, mut rng) = fresh(&make, 5).await;
    let one_time = KyberPreKeyRecord::generate(KyberPreKeyId(1), &identity, NOW, false, &mut rng);
    let last_resort = KyberPreKeyRecord::generate(KyberPreKeyId(2), &identity, NOW, true, &mut rng);
    let lr_public = last_resort.key_pair.public_key.clone();
    store
        .save_changes(Changes { kyber_pre_keys: vec![one_time, last_resort], ..Default::default() })
        .await
        .unwrap();
    let base = crate::crypto::KeyPair::generate(&mut rng).public_key;
    let other_base = crate::crypto::KeyPair::generate(&mut rng).public_key;
    let used = |id| KyberPreKeyUse {
        kyber_pre_key_id: KyberPreKeyId(id),
        signed_pre_key_id: SignedPreKeyId(7),
        base_key: base,
    };
    assert!(
        !store.kyber_pre_key_used_with(KyberPreKeyId(2), SignedPreKeyId(7), &base).await.unwrap()
    );
    store
        .save_changes(Changes { used_kyber_pre_keys: vec![used(1), used(2)], ..Default::default() })
        .await
        .unwrap();
    assert!(
        store.load_kyber_pre_key(KyberPreKeyId(1)).await.unwrap().is_none(),
        "one-time key consumed"
    );
    let lr = store.load_kyber_pre_key(KyberPreKeyId(2)).await.unwrap().expect("last resort kept");
    assert_eq!(lr.key_pair.public_key, lr_public);
    assert!(lr.last_resort);
    assert!(
        store.kyber_pre_key_used_with(KyberPreKeyId(2), SignedPreKeyId(7), &base).await.unwrap()
    );
    assert!(
        !store
            .kyber_pre_key_used_with(KyberPreKeyId(2), SignedPreKeyId(7), &other_base)
            .await
            .unwrap()
    );
    assert!(
        !store.kyber_pre_key_used_with(KyberPreKeyId(2), SignedPreKeyId(8), &base).await.unwrap()
    );
}

/// Sessions survive the store: a conversation where every step reloads its state, then
/// session removal.
pub async fn sessions<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (alice, _, mut rng) = fresh(&make, 6).await;
    let (bob, _, _) = fresh(&make, 7).await;
    let (alice_addr, bob_addr) = (address("alice", 1), address("bob", 1));
    let bundle = publish(&bob, &mut rng).await;
    assert!(alice.load_session(&bob_addr).await.unwrap().is_none());
    let changes =
        session::process_prekey_bundle(&alice, &bob_addr, &bundle, NOW, &mut rng).await.unwrap();
    alice.save_changes(changes).await.unwrap();
    for round in 0..20u32 {
        let text = format!("alice {round}");
        let encrypted =
            session::message_encrypt(&alice, &bob_addr, text.as_bytes(), NOW).await.unwrap();
        let msg = encrypted.save(&alice).await.unwrap();
        let (plain, changes) =
            session::message_decrypt(&bob, &alice_addr, &msg, &mut rng).await.unwrap();
        bob.save_changes(changes).await.unwrap();
        assert_eq!(plain, text.as_bytes());
        if round % 3 == 0 {
            let reply = format!("bob {round}");
            let encrypted =
                session::message_encrypt(&bob, &alice_addr, reply.as_bytes(), NOW).await.unwrap();
            let msg = encrypted.save(&bob).await.unwrap();
            assert!(matches!(msg, CiphertextMessage::Signal(_)));
            let (plain, changes) =
                session::message_decrypt(&alice, &bob_addr, &msg, &mut rng).await.unwrap();
            alice.save_changes(changes).await.unwrap();
            assert_eq!(plain, reply.as_bytes());
        }
    }
    assert!(bob.load_pre_key(PreKeyId(11)).await.unwrap().is_none(), "one-time prekey consumed");
    assert_eq!(
        bob.load_identity(&alice_addr).await.unwrap(),
        Some(*alice.load_identity_key_pair().await.unwrap().identity_key())
    );
    let record = alice.load_session(&bob_addr).await.unwrap().expect("stored");
    assert!(!record.current().unwrap().has_unacknowledged_pre_key());
    let bytes = record.to_bytes();
    assert_eq!(SessionRecord::from_bytes(&bytes).unwrap().to_bytes(), bytes);
    alice
        .save_changes(Changes { removed_sessions: vec![bob_addr.clone()], ..Default::default() })
        .await
        .unwrap();
    assert!(alice.load_session(&bob_addr).await.unwrap().is_none());
}

/// A careless caller cannot make a message key repeat: an encryption left unsaved releases
/// nothing, and of two encryptions that read the same chain the store saves only the first
/// (alone or in one batch), for sessions and for sender keys.
pub async fn encryptions_never_repeat_a_key<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (alice, _, mut rng) = fresh(&make, 10).await;
    let (bob, _, _) = fresh(&make, 11).await;
    let (alice_addr, bob_addr) = (address("alice", 1), address("bob", 1));
    let bundle = publish(&bob, &mut rng).await;
    let changes =
        session::process_prekey_bundle(&alice, &bob_addr, &bundle, NOW, &mut rng).await.unwrap();
    alice.save_changes(changes).await.unwrap();
    let counter = |m: &CiphertextMessage| match m {
        CiphertextMessage::Signal(m) => m.counter(),
        CiphertextMessage::PreKey(m) => m.message().counter(),
    };
    let position = |record: Option<SessionRecord>| {
        record.as_ref().and_then(crate::store::ChainPosition::of_session)
    };

    // Forgotten: dropped without a save, so there is no message to send under its key.
    drop(session::message_encrypt(&alice, &bob_addr, b"forgotten", NOW).await.unwrap());
    let first = session::message_encrypt(&alice, &bob_addr, b"first", NOW).await.unwrap();
    let first = first.save(&alice).await.unwrap();

    // Two encryptions read the same chain: the second save is refused and changes nothing.
    let second = session::message_encrypt(&alice, &bob_addr, b"second", NOW).await.unwrap();
    let twin = session::message_encrypt(&alice, &bob_addr, b"twin", NOW).await.unwrap();
    let second = second.save(&alice).await.unwrap();
    let before = position(alice.load_session(&bob_addr).await.unwrap());
    assert!(matches!(twin.save(&alice).await, Err(StoreError::ChainMoved(_))));
    assert_eq!(position(alice.load_session(&bob_addr).await.unwrap()), before);

    // Two of one chain in one batch: the batch is refused whole, with what came with it.
    let mut batch = EncryptedBatch::new();
    batch.push(session::message_encrypt(&alice, &bob_addr, b"one", NOW).await.unwrap());
    batch.push(session::message_encrypt(&alice, &bob_addr, b"two", NOW).await.unwrap());
    batch.add_changes(Changes { removed_pre_keys: vec![PreKeyId(1)], ..Changes::default() });
    assert!(matches!(batch.save(&alice).await, Err(StoreError::ChainMoved(_))));
    assert_eq!(position(alice.load_session(&bob_addr).await.unwrap()), before);

    // A decryption merged after an unsaved encryption would undo its step: refused too.
    let mut careless =
        session::message_encrypt(&alice, &bob_addr, b"then", NOW).await.unwrap().into_parts().1;
    let mut undo = Changes::default();
    undo.sessions.insert(bob_addr.clone(), alice.load_session(&bob_addr).await.unwrap().unwrap());
    careless.merge(undo);
    assert!(matches!(alice.save_changes(careless).await, Err(StoreError::ChainMoved(_))));

    // What was released went out under distinct keys, and decrypts in order.
    let third = session::message_encrypt(&alice, &bob_addr, b"third", NOW).await.unwrap();
    let third = third.save(&alice).await.unwrap();
    assert_eq!([counter(&first), counter(&second), counter(&third)], [0, 1, 2]);
    for (m, text) in [(&first, &b"first"[..]), (&second, b"second"), (&third, b"third")] {
        let (plain, changes) =
            session::message_decrypt(&bob, &alice_addr, m, &mut rng).await.unwrap();
        bob.save_changes(changes).await.unwrap();
        assert_eq!(plain, text);
    }

    // The same for a sender key.
    let group = DistributionId::random(&mut rng);
    let (_, changes) =
        sender_keys::create_sender_key_distribution_message(&alice, &alice_addr, group, &mut rng)
            .await
            .unwrap();
    alice.save_changes(changes).await.unwrap();
    drop(sender_keys::group_encrypt(&alice, &alice_addr, group, b"lost", &mut rng).await.unwrap());
    let a = sender_keys::group_encrypt(&alice, &alice_addr, group, b"a", &mut rng).await.unwrap();
    let b = sender_keys::group_encrypt(&alice, &alice_addr, group, b"b", &mut rng).await.unwrap();
    assert_eq!(a.save(&alice).await.unwrap().iteration(), 0);
    assert!(matches!(b.save(&alice).await, Err(StoreError::ChainMoved(_))));
    let c = sender_keys::group_encrypt(&alice, &alice_addr, group, b"c", &mut rng).await.unwrap();
    assert_eq!(c.save(&alice).await.unwrap().iteration(), 1);
}

/// Sender keys are stored per (sender, distribution) and drive a group exchange.
pub async fn sender_keys<S: ProtocolStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (alice, _, mut rng) = fresh(&make, 8).await;
    let (bob, _, _) = fresh(&make, 9).await;
    let alice_addr = address("alice", 2);
    let group = DistributionId::random(&mut rng);
    let other_group = DistributionId::random(&mut rng);
    let (skdm, changes) =
        sender_keys::create_sender_key_distribution_message(&alice, &alice_addr, group, &mut rng)
            .await
            .unwrap();
    alice.save_changes(changes).await.unwrap();
    let changes = sender_keys::process_sender_key_distribution_message(&bob, &alice_addr, &skdm)
        .await
        .unwrap();
    bob.save_changes(changes).await.unwrap();
    for i in 0..5 {
        let text = format!("group {i}");
        let (msg, changes) =
            sender_keys::group_encrypt(&alice, &alice_addr, group, text.as_bytes(), &mut rng)
                .await
                .unwrap()
                .into_parts();
        alice.save_changes(changes).await.unwrap();
        let (plain, changes) = sender_keys::group_decrypt(&bob, &alice_addr, &msg).await.unwrap();
        bob.save_changes(changes).await.unwrap();
        assert_eq!(plain, text.as_bytes());
    }
    let key = |d| SenderKeyName { sender: alice_addr.clone(), distribution_id: d };
    assert!(bob.load_sender_key(&key(group)).await.unwrap().is_some());
    assert!(bob.load_sender_key(&key(other_group)).await.unwrap().is_none());
    let own = alice.load_sender_key(&key(group)).await.unwrap().unwrap();
    assert!(own.current().unwrap().can_send());
    assert_eq!(own.current().unwrap().iteration(), 5);
}

fn account_record(identity: &IdentityKeyPair) -> AccountRecord {
    let mut a = AccountRecord::new(
        AccountId([4; 16]),
        DeviceId::new(2).unwrap(),
        "alice",
        *identity.identity_key(),
        NOW,
    );
    a.signed_pre_key_id = 1;
    a.adv_identity = vec![1, 2, 3];
    a.key_index = 3;
    a.linked.insert(DeviceId::new(3).unwrap(), 2);
    a.revoked.insert(1);
    a
}

fn message(sender: AccountId, timestamp: u64, conversation: Conversation) -> MessageRecord {
    MessageRecord {
        id: MessageId { sender, device: DeviceId::PRIMARY, timestamp },
        conversation,
        body: format!("message {timestamp}"),
        outgoing: false,
        state: OutgoingState::Sent,
        stored_at: NOW,
        delivered_to: Default::default(),
        read_by: Default::default(),
        server_time: Some(NOW),
        notice: None,
        local_id: None,
    }
}

/// The engine's records: the account, device lists, messages per conversation (newest
/// `limit`, oldest first, replaced by id), and the outbox (oldest first, replaced, removed) —
/// each saved atomically with protocol state.
pub async fn client_records<S: ClientStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let (store, identity, _) = fresh(&make, 10).await;
    assert!(store.load_account().await.unwrap().is_none());
    let mut account = account_record(&identity);
    let mut changes = ClientChanges { account: Some(account.clone()), ..ClientChanges::default() };
    let bob = AccountId([5; 16]);
    let carol = AccountId([6; 16]);
    changes.device_lists.insert(
        bob,
        DeviceListRecord {
            account_id: bob,
            account_key: *identity.identity_key(),
            list_version: Some(3),
            list_digest: Some([1; 32]),
            list_expired: false,
            devices: Vec::new(),
            rejected: Vec::new(),
            fetched_at: NOW,
            stale: false,
            verified: true,
            key_changed: false,
            pending_key: Some(*identity.identity_key()),
            revoked: vec![2, 5],
            key_changed_at: Some(NOW),
        },
    );
    store.save_client_changes(changes).await.unwrap();
    assert_eq!(store.load_account().await.unwrap(), Some(account.clone()));
    let list = store.load_device_list(&bob).await.unwrap().unwrap();
    assert_eq!(list.list_version, Some(3));
    assert_eq!(list.revoked, [2, 5]);
    assert_eq!(list.key_changed_at, Some(NOW));
    assert!(store.load_device_list(&carol).await.unwrap().is_none());
    account.last_timestamp = 77;
    store
        .save_client_changes(ClientChanges {
            account: Some(account.clone()),
            ..ClientChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(store.load_account().await.unwrap().unwrap().last_timestamp, 77);

    // Messages: two conversations, saved out of order and in several batches.
    let with_bob = Conversation::Direct(bob);
    let with_carol = Conversation::Direct(carol);
    let group = Conversation::Group([8; 16]);
    for batch in [[5u64, 1, 9], [3, 7, 2]] {
        let mut changes = ClientChanges::default();
        for t in batch {
            let m = message(bob, t, with_bob);
            changes.messages.insert(m.id, m);
            let m = message(carol, t * 10, with_carol);
            changes.messages.insert(m.id, m);
        }
        store.save_client_changes(changes).await.unwrap();
    }
    let newest: Vec<u64> =
        store.load_messages(&with_bob, 4).await.unwrap().iter().map(|m| m.id.timestamp).collect();
    assert_eq!(newest, [3, 5, 7, 9]);
    // Pages of history before a message: only that conversation, only older, oldest first.
    let page = |m: Vec<MessageRecord>| m.iter().map(|m| m.id.timestamp).collect::<Vec<u64>>();
    let nine = message(bob, 9, with_bob).id;
    assert_eq!(page(store.load_messages_before(&with_bob, &nine, 2).await.unwrap()), [5, 7]);
    let three = message(bob, 3, with_bob).id;
    assert_eq!(page(store.load_messages_before(&with_bob, &three, 10).await.unwrap()), [1, 2]);
    let one = message(bob, 1, with_bob).id;
    assert!(store.load_messages_before(&with_bob, &one, 10).await.unwrap().is_empty());
    assert!(store.load_messages_before(&group, &nine, 10).await.unwrap().is_empty());
    let all = store.load_messages(&with_carol, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|m| m.conversation == with_carol));
    assert!(store.load_messages(&group, 10).await.unwrap().is_empty());
    let mut read = message(bob, 7, with_bob);
    read.read_by.insert(account.account_id);
    store
        .save_client_changes(ClientChanges {
            messages: [(read.id, read.clone())].into(),
            ..ClientChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(store.load_message(&read.id).await.unwrap(), Some(read.clone()));
    assert_eq!(store.load_messages(&with_bob, 100).await.unwrap().len(), 6);
    // A notice (no body), and a message removed (an unsent message stamped afresh).
    let mut gap = message(bob, 11, with_bob);
    gap.body.clear();
    gap.notice = Some(Notice::Expired);
    let gone = message(bob, 2, with_bob).id;
    let changes = ClientChanges {
        messages: [(gap.id, gap.clone())].into(),
        removed_messages: vec![gone],
        ..ClientChanges::default()
    };
    store.save_client_changes(changes).await.unwrap();
    assert_eq!(store.load_message(&gap.id).await.unwrap(), Some(gap));
    assert!(store.load_message(&gone).await.unwrap().is_none());
    assert_eq!(page(store.load_messages(&with_bob, 100).await.unwrap()), [1, 3, 5, 7, 9, 11]);

    // Groups: stored whole, replaced by id.
    let state = |version: u64| {
        let s = GroupState {
            group_id: [8; 16],
            version,
            previous: if version == 1 { [0; 32] } else { [u8::try_from(version).unwrap(); 32] },
            title: format!("group {version}"),
            members: vec![GroupMember { account_id: account.account_id, admin: true }],
            signer: account.account_id,
            signer_device: DeviceId::PRIMARY,
            timestamp: version,
        };
        SignedGroupState::sign(s, &identity, None, &mut SeededRng::new(version)).unwrap()
    };
    assert!(store.load_group(&[8; 16]).await.unwrap().is_none());
    for (version, accepted) in [(1, false), (2, true)] {
        let record = GroupRecord { state: state(version), accepted };
        let changes = ClientChanges {
            groups: [([8; 16], record.clone())].into(),
            ..ClientChanges::default()
        };
        store.save_client_changes(changes).await.unwrap();
        assert_eq!(store.load_group(&[8; 16]).await.unwrap(), Some(record));
    }
    assert!(store.load_group(&[9; 16]).await.unwrap().is_none());

    // Outbox.
    let entry = |t: u64| OutboxEntry {
        id: MessageId { sender: account.account_id, device: account.device_id, timestamp: t },
        conversation: with_bob,
        body: format!("out {t}"),
        attempts: 0,
    };
    let mut changes = ClientChanges::default();
    for t in [30u64, 10, 20] {
        changes.outbox.insert(entry(t).id, entry(t));
    }
    store.save_client_changes(changes).await.unwrap();
    let order: Vec<u64> =
        store.load_outbox().await.unwrap().iter().map(|e| e.id.timestamp).collect();
    assert_eq!(order, [10, 20, 30]);
    let mut retried = entry(20);
    retried.attempts = 2;
    let changes = ClientChanges {
        outbox: [(retried.id, retried.clone())].into(),
        removed_outbox: vec![entry(10).id],
        ..ClientChanges::default()
    };
    store.save_client_changes(changes).await.unwrap();
    assert_eq!(store.load_outbox().await.unwrap(), vec![retried, entry(30)]);

    // Handles: saved with a batch, the later one wins, an unknown account has none.
    let (ana, ben) = (AccountId([21; 16]), AccountId([22; 16]));
    assert_eq!(store.load_contact(&ana).await.unwrap(), None);
    let mut first = ClientChanges::default();
    first.contacts.insert(ana, "ana".into());
    first.contacts.insert(ben, "ben".into());
    store.save_client_changes(first).await.unwrap();
    let mut renamed = ClientChanges::default();
    renamed.contacts.insert(ana, "ana.b".into());
    store.save_client_changes(renamed).await.unwrap();
    assert_eq!(store.load_contact(&ana).await.unwrap().as_deref(), Some("ana.b"));
    assert_eq!(store.load_contact(&ben).await.unwrap().as_deref(), Some("ben"));
}

/// Runs the whole suite as tests. `$attr` is an async test attribute (`tokio::test`,
/// `wasm_bindgen_test`), `$make` a function `(IdentityKeyPair, u32) -> impl Future<Output = S>`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($attr:meta, $make:expr) => {
        #[$attr]
        async fn store_conformance_local_identity() {
            $crate::testing::conformance::local_identity($make).await
        }
        #[$attr]
        async fn store_conformance_trusted_identities() {
            $crate::testing::conformance::trusted_identities($make).await
        }
        #[$attr]
        async fn store_conformance_pre_keys() {
            $crate::testing::conformance::pre_keys($make).await
        }
        #[$attr]
        async fn store_conformance_signed_pre_keys() {
            $crate::testing::conformance::signed_pre_keys($make).await
        }
        #[$attr]
        async fn store_conformance_kyber_pre_keys() {
            $crate::testing::conformance::kyber_pre_keys($make).await
        }
        #[$attr]
        async fn store_conformance_sessions() {
            $crate::testing::conformance::sessions($make).await
        }
        #[$attr]
        async fn store_conformance_encryptions_never_repeat_a_key() {
            $crate::testing::conformance::encryptions_never_repeat_a_key($make).await
        }
        #[$attr]
        async fn store_conformance_sender_keys() {
            $crate::testing::conformance::sender_keys($make).await
        }
        #[$attr]
        async fn store_conformance_client_records() {
            $crate::testing::conformance::client_records($make).await
        }
    };
}

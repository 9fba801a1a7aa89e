//! The store conformance suite (feature `testing`): what every [`ProtocolStore`] must do.
//!
//! Each function takes a factory `make(identity, registration_id)` returning a fresh, empty
//! store and panics on a violation. [`protocol_store_conformance_tests!`](crate::protocol_store_conformance_tests)
//! turns the suite into tests, e.g. natively
//! `protocol_store_conformance_tests!(tokio::test, make_memory_store);` or in a browser
//! `protocol_store_conformance_tests!(wasm_bindgen_test, make_indexeddb_store);`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;

use crate::address::{DeviceId, ProtocolAddress};
use crate::identity::IdentityKeyPair;
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyBundle, PreKeyId, PreKeyRecord, SignedPreKeyId,
    SignedPreKeyRecord,
};
use crate::sender_keys::{self, DistributionId};
use crate::session::{self, SessionRecord};
use crate::store::{
    Changes, EncryptedBatch, KyberPreKeyUse, ProtocolStore, SenderKeyName, StoreError,
};
use crate::testing::SeededRng;
use crate::time::Timestamp;
use crate::wire::CiphertextMessage;

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

/// Runs the whole suite as tests. `$attr` is an async test attribute (`tokio::test`,
/// `wasm_bindgen_test`), `$make` a function `(IdentityKeyPair, u32) -> impl Future<Output = S>`.
#[macro_export]
macro_rules! protocol_store_conformance_tests {
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
    };
}

//! libsignal 0.90 sender-key vectors: the distribution message, the receiver's records after
//! every delivery (out of order, with a duplicate), and the sender's ciphertexts.

use futures_executor::block_on;
use serde_json::{Value, json};

use super::*;
use crate::address::DeviceId;
use crate::crypto::{KeyPair, PrivateKey};
use crate::identity::IdentityKeyPair;
use crate::store::{MemoryStore, SenderKeyStore};
use crate::testing::SeededRng;

fn vectors() -> Value {
    let path =
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/libsignal-0.90/sender-keys.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn export(record: &SenderKeyRecord) -> Value {
    record
        .states()
        .map(|s| {
            json!({
                "message_version": 3,
                "chain_id": s.chain_id,
                "sender_chain_key": { "iteration": s.chain_key.iteration, "seed": hex::encode(s.chain_key.seed) },
                "signing_key_public": hex::encode(s.signing_public.serialize()),
                "signing_key_private": s.signing_private.as_ref().map(|k| hex::encode(k.serialize().as_ref())),
                "skipped_message_keys": s.skipped.iter().map(|(i, seed)| json!({"iteration": i, "seed": hex::encode(seed)})).collect::<Vec<_>>(),
            })
        })
        .collect()
}

fn sender(v: &Value) -> ProtocolAddress {
    ProtocolAddress::new(v["sender"]["name"].as_str().unwrap(), DeviceId::new(1).unwrap())
}

#[test]
fn test_receiver_matches_libsignal_after_every_delivery() {
    let v = vectors();
    let from = sender(&v);
    let mut rng = SeededRng::new(1);
    let store = MemoryStore::new(IdentityKeyPair::generate(&mut rng), 1);
    let skdm = SenderKeyDistributionMessage::from_bytes(&hex(&v["skdm"]["body"])).unwrap();
    assert_eq!(skdm.serialized(), &hex(&v["skdm"]["body"])[..]);
    assert_eq!(skdm.chain_id(), 77976129);
    block_on(store.save_changes(
        block_on(process_sender_key_distribution_message(&store, &from, &skdm)).unwrap(),
    ))
    .unwrap();
    let name = SenderKeyName {
        sender: from.clone(),
        distribution_id: DistributionId(skdm.distribution_id()),
    };
    let messages = v["messages"].as_array().unwrap();
    for delivery in v["receiver_deliveries"].as_array().unwrap() {
        let index = usize::try_from(delivery["message_index"].as_u64().unwrap()).unwrap();
        let m = &messages[index];
        let result = SenderKeyMessage::from_bytes(&hex(&m["body"]))
            .and_then(|message| block_on(group_decrypt(&store, &from, &message)));
        if delivery["ok"].as_bool().unwrap() {
            let (plain, changes) = result.unwrap();
            assert_eq!(plain, hex(&m["plaintext"]));
            block_on(store.save_changes(changes)).unwrap();
        } else {
            assert!(matches!(result, Err(ProtocolError::DuplicatedMessage { .. })), "{result:?}");
        }
        let record = block_on(store.load_sender_key(&name)).unwrap().unwrap();
        assert_eq!(
            export(&record),
            delivery["receiver_record_after"],
            "after delivering message {index}"
        );
    }
}

#[test]
fn test_sender_reproduces_libsignal_ciphertexts() {
    let v = vectors();
    let from = sender(&v);
    let initial = &v["sender_record_initial"][0];
    let mut rng = SeededRng::new(2);
    let signing = KeyPair::from_private(
        PrivateKey::from_bytes(&hex(&initial["signing_key_private"])).unwrap(),
    );
    let seed: [u8; 32] = hex(&initial["sender_chain_key"]["seed"]).try_into().unwrap();
    let chain_id = u32::try_from(initial["chain_id"].as_u64().unwrap()).unwrap();
    let record = SenderKeyRecord::from_state(SenderKeyState::new(chain_id, 0, seed, signing));
    assert_eq!(export(&record), v["sender_record_initial"]);
    let store = MemoryStore::new(IdentityKeyPair::generate(&mut rng), 1);
    let distribution: [u8; 16] =
        hex(&v["skdm"]["parsed"]["fields"]["distribution_uuid"]).try_into().unwrap();
    let group = DistributionId(distribution);
    let mut changes = Changes::default();
    changes
        .sender_keys
        .insert(SenderKeyName { sender: from.clone(), distribution_id: group }, record);
    block_on(store.save_changes(changes)).unwrap();
    for m in v["messages"].as_array().unwrap() {
        let (ours, changes) =
            block_on(group_encrypt(&store, &from, group, &hex(&m["plaintext"]), &mut rng))
                .unwrap()
                .into_parts();
        block_on(store.save_changes(changes)).unwrap();
        let theirs = SenderKeyMessage::from_bytes(&hex(&m["body"])).unwrap();
        assert_eq!(ours.body(), theirs.body(), "same key schedule, same AES-CBC output");
        assert_eq!((ours.chain_id(), ours.iteration()), (theirs.chain_id(), theirs.iteration()));
        // Signatures are randomized; the bytes before them must be identical.
        let n = ours.serialized().len() - 64;
        assert_eq!(&ours.serialized()[..n], &theirs.serialized()[..n]);
        theirs.verify_signature(&skdm_signing_key(&v)).unwrap();
        ours.verify_signature(&skdm_signing_key(&v)).unwrap();
    }
    let (after, _) =
        block_on(create_sender_key_distribution_message(&store, &from, group, &mut rng)).unwrap();
    assert_eq!(after.serialized(), &hex(&v["skdm_after_sending"]["body"])[..]);
}

fn skdm_signing_key(v: &Value) -> crate::crypto::PublicKey {
    crate::crypto::PublicKey::from_bytes(&hex(&v["skdm"]["parsed"]["fields"]["signing_key"]))
        .unwrap()
}

//! libsignal 0.90 transcripts (`tests/vectors/libsignal-0.90/session-*.json`): Tandem plays
//! the responder from its published keys and the initiator from its recorded state, decrypts
//! every message, re-encrypts every message whose sender state is known **byte for byte**,
//! and compares its whole ratchet state with libsignal's after every step.

use std::convert::Infallible;

use futures_executor::block_on;
use rand_core::{TryCryptoRng, TryRng};
use serde_json::Value;

use super::cipher::{decrypt_with_record, encrypt_state_with};
use super::*;
use crate::address::DeviceId;
use crate::crypto::{
    KeyPair, KyberCiphertext, KyberKeyPair, KyberPublicKey, KyberSecretKey, PrivateKey, PublicKey,
};
use crate::identity::IdentityKeyPair;
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use crate::ratchet::chain::{ChainKey, RootKey};
use crate::ratchet::state::{PendingPreKey, ReceiverChain, SenderChain};
use crate::store::{MemoryStore, SessionStore};
use crate::wire::CiphertextMessageType;

/// Hands out libsignal's recorded "random" ratchet key.
struct Replay(Vec<u8>);

impl TryRng for Replay {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        assert!(!self.0.is_empty(), "decryption asked for randomness the transcript does not have");
        for (i, b) in dst.iter_mut().enumerate() {
            *b = self.0[i % self.0.len()];
        }
        Ok(())
    }
}
impl TryCryptoRng for Replay {}

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/libsignal-0.90/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap_or_else(|| panic!("not a hex string: {v}"))).unwrap()
}

fn key(v: &Value) -> PublicKey {
    PublicKey::from_bytes(&hex(v)).unwrap()
}

fn arr32(v: &Value) -> [u8; 32] {
    hex(v).try_into().unwrap()
}

fn u32_of(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap()).unwrap()
}

fn address(v: &Value) -> ProtocolAddress {
    ProtocolAddress::new(
        v["name"].as_str().unwrap(),
        DeviceId::new(u32_of(&v["device_id"])).unwrap(),
    )
}

/// The party's store from `keys_at_start`.
fn party_store(party: &Value) -> MemoryStore {
    let keys = &party["keys_at_start"];
    let ikp = &keys["identity_key_pair"];
    let private = PrivateKey::from_bytes(&hex(&ikp["private"])).unwrap();
    assert_eq!(private.public_key(), key(&ikp["public"]));
    let identity = IdentityKeyPair::from(KeyPair::from_private(private));
    let store = MemoryStore::new(identity, u32_of(&keys["registration_id"]));
    let mut changes = Changes::default();
    for (id, k) in keys["pre_keys"].as_object().unwrap() {
        changes.pre_keys.push(PreKeyRecord {
            id: PreKeyId(id.parse().unwrap()),
            key_pair: KeyPair::from_private(PrivateKey::from_bytes(&hex(&k["private"])).unwrap()),
        });
    }
    for (id, k) in keys["signed_pre_keys"].as_object().unwrap() {
        changes.signed_pre_keys.push(SignedPreKeyRecord {
            id: SignedPreKeyId(id.parse().unwrap()),
            timestamp: Timestamp::from_millis(k["timestamp"].as_u64().unwrap_or(0)),
            key_pair: KeyPair::from_private(PrivateKey::from_bytes(&hex(&k["private"])).unwrap()),
            signature: hex(&k["signature"]).try_into().unwrap(),
        });
    }
    for (id, k) in keys["kyber_pre_keys"].as_object().unwrap() {
        changes.kyber_pre_keys.push(KyberPreKeyRecord {
            id: KyberPreKeyId(id.parse().unwrap()),
            timestamp: Timestamp::from_millis(k["timestamp"].as_u64().unwrap_or(0)),
            key_pair: KyberKeyPair {
                public_key: KyberPublicKey::from_bytes(&hex(&k["public"])).unwrap(),
                secret_key: KyberSecretKey::from_bytes(&hex(&k["secret"])).unwrap(),
            },
            signature: hex(&k["signature"]).try_into().unwrap(),
            last_resort: false,
        });
    }
    block_on(store.save_changes(changes)).unwrap();
    store
}

fn chain_key(v: &Value) -> ChainKey {
    ChainKey { key: arr32(&v["key"]), index: u32_of(&v["index"]) }
}

/// libsignal's decoded session state → ours.
fn import_state(s: &Value) -> SessionState {
    let sender_chain = s.get("sender_chain").filter(|c| !c.is_null()).map(|c| {
        let private = PrivateKey::from_bytes(&hex(&c["sender_ratchet_key_private"])).unwrap();
        assert_eq!(private.public_key(), key(&c["sender_ratchet_key"]));
        SenderChain {
            ratchet_key: KeyPair::from_private(private),
            chain_key: chain_key(&c["chain_key"]),
        }
    });
    let receiver_chains = s["receiver_chains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| ReceiverChain {
            ratchet_key: key(&c["sender_ratchet_key"]),
            chain_key: chain_key(&c["chain_key"]),
            message_keys: c
                .get("message_keys")
                .and_then(Value::as_array)
                .map(|ks| ks.iter().map(|k| (u32_of(&k["index"]), arr32(&k["seed"]))).collect())
                .unwrap_or_default(),
        })
        .collect();
    let pending_pre_key = s.get("pending_pre_key").filter(|p| !p.is_null()).map(|p| {
        let kyber = &s["pending_kyber_pre_key"];
        PendingPreKey {
            pre_key_id: p
                .get("pre_key_id")
                .and_then(Value::as_u64)
                .map(|id| PreKeyId(u32::try_from(id).unwrap())),
            signed_pre_key_id: SignedPreKeyId(u32_of(&p["signed_pre_key_id"])),
            kyber_pre_key_id: KyberPreKeyId(u32_of(&kyber["pre_key_id"])),
            kyber_ciphertext: KyberCiphertext::from_bytes(&hex(&kyber["ciphertext"])).unwrap(),
            base_key: key(&p["base_key"]),
            // libsignal records seconds; Tandem keeps milliseconds.
            timestamp: Timestamp::from_millis(p["timestamp"].as_u64().unwrap() * 1000),
        }
    });
    SessionState {
        version: u8::try_from(s["session_version"].as_u64().unwrap()).unwrap(),
        local_identity: IdentityKey::new(key(&s["local_identity_public"])),
        remote_identity: IdentityKey::new(key(&s["remote_identity_public"])),
        root_key: RootKey(arr32(&s["root_key"])),
        previous_counter: u32_of(&s["previous_counter"]),
        sender_chain,
        receiver_chains,
        pending_pre_key,
        local_registration_id: u32_of(&s["local_registration_id"]),
        remote_registration_id: u32_of(&s["remote_registration_id"]),
        alice_base_key: key(&s["alice_base_key"]),
    }
}

fn import_record(decoded: &Value) -> SessionRecord {
    SessionRecord {
        current: Some(import_state(&decoded["current_session"])),
        previous: decoded["previous_sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(import_state)
            .collect(),
    }
}

/// Our state → libsignal's decoded shape, for comparison.
fn export_state(s: &SessionState) -> Value {
    use serde_json::json;
    fn h(b: impl AsRef<[u8]>) -> String {
        hex::encode(b)
    }
    let mut out = json!({
        "session_version": s.version,
        "local_identity_public": h(s.local_identity.serialize()),
        "remote_identity_public": h(s.remote_identity.serialize()),
        "root_key": h(s.root_key.0),
        "previous_counter": s.previous_counter,
        "receiver_chains": s.receiver_chains.iter().map(|c| {
            let mut chain = json!({
                "sender_ratchet_key": h(c.ratchet_key.serialize()),
                "chain_key": { "index": c.chain_key.index, "key": h(c.chain_key.key) },
            });
            if !c.message_keys.is_empty() {
                chain["message_keys"] = c.message_keys.iter().map(|(i, seed)| json!({"index": i, "seed": h(seed)})).collect();
            }
            chain
        }).collect::<Vec<_>>(),
        "remote_registration_id": s.remote_registration_id,
        "local_registration_id": s.local_registration_id,
        "alice_base_key": h(s.alice_base_key.serialize()),
    });
    if let Some(c) = &s.sender_chain {
        out["sender_chain"] = json!({
            "sender_ratchet_key": h(c.ratchet_key.public_key.serialize()),
            "sender_ratchet_key_private": h(c.ratchet_key.private_key.serialize().as_ref()),
            "chain_key": { "index": c.chain_key.index, "key": h(c.chain_key.key) },
        });
    }
    if let Some(p) = &s.pending_pre_key {
        out["pending_pre_key"] = json!({
            "signed_pre_key_id": p.signed_pre_key_id.0,
            "base_key": h(p.base_key.serialize()),
        });
        if let Some(id) = p.pre_key_id {
            out["pending_pre_key"]["pre_key_id"] = json!(id.0);
        }
        out["pending_kyber_pre_key"] = json!({ "pre_key_id": p.kyber_pre_key_id.0, "ciphertext": h(p.kyber_ciphertext.serialize()) });
    }
    out
}

/// libsignal's decoded state with the fields Tandem does not model removed.
fn comparable(decoded: &Value) -> Value {
    let mut v = decoded.clone();
    let obj = v.as_object_mut().unwrap();
    obj.remove("pq_ratchet_state_len");
    obj.remove("pq_ratchet_state");
    if let Some(p) = obj.get_mut("pending_pre_key").and_then(Value::as_object_mut) {
        p.remove("timestamp");
    }
    if let Some(chains) = obj.get_mut("receiver_chains").and_then(Value::as_array_mut) {
        for c in chains {
            let c = c.as_object_mut().unwrap();
            if c.get("message_keys").and_then(Value::as_array).is_some_and(Vec::is_empty) {
                c.remove("message_keys");
            }
        }
    }
    obj.retain(|_, v| !v.is_null());
    v
}

fn assert_record(ours: &SessionRecord, theirs: &Value, context: &str) {
    let current = ours.current.as_ref().unwrap_or_else(|| panic!("{context}: no current state"));
    assert_eq!(
        export_state(current),
        comparable(&theirs["current_session"]),
        "{context}: current state"
    );
    let previous = theirs["previous_sessions"].as_array().unwrap();
    assert_eq!(ours.previous.len(), previous.len(), "{context}: archived states");
    for (o, t) in ours.previous.iter().zip(previous) {
        assert_eq!(export_state(o), comparable(t), "{context}: archived state");
    }
}

fn parse(msg: &Value) -> CiphertextMessage {
    let kind = match &msg["type"] {
        Value::String(s) => s.parse::<u32>().unwrap(),
        other => u32::try_from(other.as_u64().unwrap()).unwrap(),
    };
    let kind = CiphertextMessageType::try_from(kind).unwrap();
    CiphertextMessage::from_bytes(kind, &hex(&msg["body"])).unwrap()
}

fn pq_ratchet_of(msg: &CiphertextMessage) -> Option<Vec<u8>> {
    let inner = match msg {
        CiphertextMessage::Signal(m) => m,
        CiphertextMessage::PreKey(m) => m.message(),
    };
    inner.pq_ratchet_for_tests()
}

fn run_transcript(file: &str) -> (usize, usize, usize) {
    let t = load(file);
    let alice_addr = address(&t["parties"]["alice"]["keys_at_start"]["address"]);
    let bob_store = party_store(&t["parties"]["bob"]);
    let mut alice: Option<SessionRecord> = None;
    let (mut decrypted, mut reencrypted, mut refused) = (0, 0, 0);
    for (step, event) in t["events"].as_array().unwrap().iter().enumerate() {
        let id = event["message"].as_str().unwrap();
        let msg = &t["messages"][id];
        let body = hex(&msg["body"]);
        let parsed = parse(msg);
        let context = format!("{file} step {step} ({} {} {id})", event["by"], event["op"]);
        // Every message re-serializes to libsignal's exact bytes.
        if let CiphertextMessage::PreKey(p) = &parsed {
            let rebuilt = PreKeySignalMessage::new(
                p.message_version(),
                p.registration_id(),
                p.pre_key_id(),
                p.signed_pre_key_id(),
                p.kyber_pre_key_id(),
                p.kyber_ciphertext().clone(),
                *p.base_key(),
                *p.identity_key(),
                p.message().clone(),
            );
            assert_eq!(rebuilt.serialized(), &body[..], "{context}: PreKey message re-encoding");
        }
        match (event["op"].as_str().unwrap(), event["by"].as_str().unwrap()) {
            ("encrypt", "bob") => {
                let record = block_on(bob_store.load_session(&alice_addr)).unwrap().unwrap();
                assert_record(&record, &event["sender_session_before"]["decoded"], &context);
                let plaintext = hex(&msg["plaintext"]);
                let (out, changes) = block_on(message_encrypt(
                    &bob_store,
                    &alice_addr,
                    &plaintext,
                    Timestamp::EPOCH,
                ))
                .unwrap()
                .into_parts();
                assert_eq!(out.serialized(), &body[..], "{context}: byte-identical re-encryption");
                block_on(bob_store.save_changes(changes)).unwrap();
                let record = block_on(bob_store.load_session(&alice_addr)).unwrap().unwrap();
                assert_record(&record, &event["sender_session_after"]["decoded"], &context);
                reencrypted += 1;
            }
            ("encrypt", "alice") => {
                let before = &event["sender_session_before"]["decoded"];
                if before.is_null() {
                    // The first message: its base key's private half is not recorded.
                    continue;
                }
                let record = match alice.as_mut() {
                    Some(r) => {
                        assert_record(r, before, &context);
                        r
                    }
                    None => alice.insert(import_record(before)),
                };
                let state = record.current.as_mut().unwrap();
                let now = state.pending_pre_key.as_ref().map_or(Timestamp::EPOCH, |p| p.timestamp);
                let out =
                    encrypt_state_with(state, &hex(&msg["plaintext"]), now, pq_ratchet_of(&parsed))
                        .unwrap();
                assert_eq!(out.serialized(), &body[..], "{context}: byte-identical re-encryption");
                assert_record(record, &event["sender_session_after"]["decoded"], &context);
                reencrypted += 1;
            }
            ("decrypt", "bob") => {
                let mut rng = Replay(
                    event
                        .get("receiver_generated_ratchet_key")
                        .map(|k| hex(&k["private"]))
                        .unwrap_or_default(),
                );
                let result = block_on(message_decrypt(&bob_store, &alice_addr, &parsed, &mut rng));
                match event["expect"].as_str().unwrap() {
                    "ok" => {
                        let (plain, changes) = result.unwrap_or_else(|e| panic!("{context}: {e}"));
                        assert_eq!(plain, hex(&msg["plaintext"]), "{context}");
                        block_on(bob_store.save_changes(changes)).unwrap();
                        decrypted += 1;
                    }
                    _ => {
                        assert!(
                            matches!(result, Err(ProtocolError::DuplicatedMessage { .. })),
                            "{context}: {result:?}"
                        );
                        refused += 1;
                    }
                }
                let record = block_on(bob_store.load_session(&alice_addr)).unwrap().unwrap();
                assert_record(&record, &event["receiver_session_after"]["decoded"], &context);
            }
            ("decrypt", "alice") => {
                let record = match alice.as_mut() {
                    Some(r) => {
                        assert_record(r, &event["receiver_session_before"]["decoded"], &context);
                        r
                    }
                    None => {
                        alice.insert(import_record(&event["receiver_session_before"]["decoded"]))
                    }
                };
                let mut rng = Replay(
                    event
                        .get("receiver_generated_ratchet_key")
                        .map(|k| hex(&k["private"]))
                        .unwrap_or_default(),
                );
                let CiphertextMessage::Signal(m) = &parsed else {
                    panic!("{context}: Bob only sends Signal messages")
                };
                let mut trial = record.clone();
                let result = decrypt_with_record(&mut trial, m, &mut rng);
                match event["expect"].as_str().unwrap() {
                    "ok" => {
                        assert_eq!(
                            result.unwrap_or_else(|e| panic!("{context}: {e}")),
                            hex(&msg["plaintext"])
                        );
                        *record = trial;
                        decrypted += 1;
                    }
                    _ => {
                        assert!(result.is_err(), "{context}");
                        refused += 1;
                    }
                }
                assert_record(record, &event["receiver_session_after"]["decoded"], &context);
            }
            other => panic!("unknown event {other:?}"),
        }
    }
    (decrypted, reencrypted, refused)
}

#[test]
fn test_transcript_libsignal_initiates() {
    let counts = run_transcript("session-libsignal-initiates.json");
    eprintln!("decrypted, re-encrypted byte for byte, refused: {counts:?}");
    assert_eq!(counts, (16, 15, 1));
}

#[test]
fn test_transcript_without_one_time_prekey() {
    let counts = run_transcript("session-no-one-time-prekey.json");
    eprintln!("decrypted, re-encrypted byte for byte, refused: {counts:?}");
    assert_eq!(counts, (3, 2, 0));
}

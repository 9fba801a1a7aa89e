//! The bodies of the fuzz targets in `crates/core/fuzz`, here so that the stable test suite
//! replays their corpus (`tests/fuzz_corpus.rs`) and so they stay compiled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use super::{SeededRng, now_or_never};
use crate::address::{DeviceId, ProtocolAddress};
use crate::fingerprint::{AccountView, SecurityCode};
use crate::identity::{IdentityKey, IdentityKeyPair};
use crate::prekeys::{KyberPreKeyRecord, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use crate::sender_keys::SenderKeyRecord;
use crate::session::{self, SessionRecord};
use crate::store::{MemoryStore, ProtocolStore};
use crate::time::Timestamp;
use crate::wire::relay::{ClientFrame, ServerFrame};
use crate::wire::signal::{
    CiphertextMessage, PreKeySignalMessage, SenderKeyDistributionMessage, SenderKeyMessage,
    SignalMessage,
};

/// Every message parser; whatever parses re-serializes to the same bytes and parses again.
pub fn parse_messages(data: &[u8]) {
    use prost::Message;
    if let Ok(m) = SignalMessage::from_bytes(data) {
        assert_eq!(m.serialized(), data);
        assert_eq!(SignalMessage::from_bytes(m.serialized()).unwrap(), m);
    }
    if let Ok(m) = PreKeySignalMessage::from_bytes(data) {
        let rebuilt = PreKeySignalMessage::new(
            m.message_version(),
            m.registration_id(),
            m.pre_key_id(),
            m.signed_pre_key_id(),
            m.kyber_pre_key_id(),
            m.kyber_ciphertext().clone(),
            *m.base_key(),
            *m.identity_key(),
            m.message().clone(),
        );
        assert_eq!(
            PreKeySignalMessage::from_bytes(rebuilt.serialized()).unwrap().message(),
            m.message()
        );
    }
    if let Ok(m) = SenderKeyMessage::from_bytes(data) {
        assert_eq!(SenderKeyMessage::from_bytes(m.serialized()).unwrap(), m);
    }
    if let Ok(m) = SenderKeyDistributionMessage::from_bytes(data) {
        let rebuilt = SenderKeyDistributionMessage::new(
            m.distribution_id(),
            m.chain_id(),
            m.iteration(),
            *m.chain_key(),
            *m.signing_key(),
        );
        assert_eq!(
            SenderKeyDistributionMessage::from_bytes(rebuilt.serialized()).unwrap(),
            rebuilt
        );
    }
    if let Ok(c) = crate::wire::content::Content::from_padded_bytes(data) {
        let again = crate::wire::content::Content::from_padded_bytes(&c.to_padded_bytes());
        assert_eq!(again.unwrap(), c);
    }
    for kind in [2u8, 3, 7, 0] {
        let _ = CiphertextMessage::from_bytes(kind, data);
    }
    if let Ok(f) = ClientFrame::from_bytes(data) {
        assert_eq!(ClientFrame::from_bytes(&f.encode_to_vec()).unwrap(), f);
    }
    if let Ok(f) = ServerFrame::from_bytes(data) {
        assert_eq!(ServerFrame::from_bytes(&f.encode_to_vec()).unwrap(), f);
    }
    let _ = IdentityKey::from_bytes(data);
    // Link codes as pasted text, and sealed link messages as the relay delivers them.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(code) = crate::link::LinkCode::parse(text)
    {
        let again = crate::link::LinkCode::parse(&code.to_text()).unwrap();
        assert_eq!(again.address, code.address);
    }
    // One request for the whole run: key generation per input would slow every parser here.
    static REQUEST: std::sync::OnceLock<crate::link::LinkRequest> = std::sync::OnceLock::new();
    let request = REQUEST.get_or_init(|| {
        let mut rng = SeededRng::new(2);
        crate::link::LinkRequest::new(
            [0; 16],
            *IdentityKeyPair::generate(&mut rng).identity_key(),
            Timestamp::EPOCH,
            "fuzz",
            &mut rng,
        )
    });
    let _ = request.open(data);
    let mut rng = SeededRng::new(1);
    let k = IdentityKeyPair::generate(&mut rng);
    let view = AccountView {
        account_id: b"fuzz",
        account_key: k.identity_key(),
        device_list_digest: [0; 32],
    };
    let code = SecurityCode::new(view, view).unwrap();
    let _ = code.compare(data);
    // The text form: whatever parses compares without panicking, and re-encodes the same.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(payload) = crate::fingerprint::parse_code_text(text)
    {
        let _ = code.compare(&payload);
        assert_eq!(
            crate::fingerprint::parse_code_text(&crate::fingerprint::code_text(&payload)).unwrap(),
            payload
        );
    }
}

/// Every stored-record parser; whatever parses re-serializes stably.
pub fn parse_records(data: &[u8]) {
    if let Ok(r) = SessionRecord::from_bytes(data) {
        let bytes = r.to_bytes();
        assert_eq!(SessionRecord::from_bytes(&bytes).unwrap().to_bytes(), bytes);
    }
    if let Ok(r) = SenderKeyRecord::from_bytes(data) {
        let bytes = r.to_bytes();
        assert_eq!(SenderKeyRecord::from_bytes(&bytes).unwrap().to_bytes(), bytes);
    }
    if let Ok(r) = PreKeyRecord::from_bytes(data) {
        assert_eq!(
            PreKeyRecord::from_bytes(&r.to_bytes()).unwrap().key_pair.public_key,
            r.key_pair.public_key
        );
    }
    if let Ok(r) = SignedPreKeyRecord::from_bytes(data) {
        assert_eq!(SignedPreKeyRecord::from_bytes(&r.to_bytes()).unwrap().signature, r.signature);
    }
    if let Ok(r) = KyberPreKeyRecord::from_bytes(data) {
        assert_eq!(
            KyberPreKeyRecord::from_bytes(&r.to_bytes()).unwrap().key_pair.public_key,
            r.key_pair.public_key
        );
    }
    let _ = IdentityKeyPair::from_bytes(data);
    // The engine's records.
    if let Ok(r) = crate::client::AccountRecord::from_bytes(data) {
        assert_eq!(crate::client::AccountRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    if let Ok(r) = crate::client::DeviceListRecord::from_bytes(data) {
        assert_eq!(crate::client::DeviceListRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    if let Ok(r) = crate::client::MessageRecord::from_bytes(data) {
        assert_eq!(crate::client::MessageRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    if let Ok(r) = crate::client::OutboxEntry::from_bytes(data) {
        assert_eq!(crate::client::OutboxEntry::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    if let Ok(r) = SessionRecord::from_detached_bytes(data, None) {
        let (bytes, detached) = r.to_detached_bytes();
        let back = SessionRecord::from_detached_bytes(&bytes, detached.as_ref()).unwrap();
        assert_eq!(back.to_bytes(), r.to_bytes());
    }
    if let Ok(d) = session::DetachedKyber::from_bytes(data) {
        assert_eq!(session::DetachedKyber::from_bytes(&d.to_bytes()).unwrap(), d);
    }
    if let Ok(e) = crate::store::SessionLogEntry::from_bytes(data) {
        assert_eq!(crate::store::SessionLogEntry::from_bytes(&e.to_bytes()).unwrap(), e);
    }
    if let Ok(id) = crate::client::MessageId::from_sort_key(data) {
        assert_eq!(id.sort_key().as_slice(), data);
    }
    let _ = crate::client::conversation_from_bytes(data);
}

struct Party {
    store: MemoryStore,
    address: ProtocolAddress,
}

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn bundle_of(p: &Party, id: u32, rng: &mut SeededRng) -> PreKeyBundle {
    now_or_never(super::publish_bundle(
        &p.store,
        p.address.device_id(),
        id,
        (true, false),
        NOW,
        rng,
    ))
}

/// An arbitrary schedule between two parties, driven by `data` (see the fuzz target).
pub fn session_interaction(data: &[u8]) {
    let mut rng = SeededRng::new(data.len() as u64);
    let make = |name: &str, rng: &mut SeededRng| {
        let identity = IdentityKeyPair::generate(rng);
        Party {
            store: MemoryStore::new(identity, 7),
            address: ProtocolAddress::new(name, DeviceId::PRIMARY),
        }
    };
    let (alice, bob) = (make("alice", &mut rng), make("bob", &mut rng));
    let parties = [&alice, &bob];
    let b = bundle_of(&bob, 1, &mut rng);
    let changes =
        now_or_never(session::process_prekey_bundle(&alice.store, &bob.address, &b, NOW, &mut rng))
            .unwrap();
    now_or_never(alice.store.save_changes(changes)).unwrap();
    let mut bob_can_send = false;
    let mut resets = 0;
    // Per direction: (plaintext, message, delivered).
    let mut flight: [Vec<(Vec<u8>, CiphertextMessage, bool)>; 2] = [Vec::new(), Vec::new()];
    let mut bytes = data.iter().copied();
    let mut sent = 0u32;
    while let Some(op) = bytes.next() {
        let dir = usize::from(op & 1);
        let (from, to) = (parties[dir], parties[dir ^ 1]);
        let arg = usize::from(bytes.next().unwrap_or(0));
        match (op >> 1) % 6 {
            0 | 1 => {
                if dir == 1 && !bob_can_send {
                    continue;
                }
                sent += 1;
                let text = sent.to_le_bytes().to_vec();
                let (m, changes) =
                    now_or_never(session::message_encrypt(&from.store, &to.address, &text, NOW))
                        .unwrap();
                now_or_never(from.store.save_changes(changes)).unwrap();
                flight[dir].push((text, m, false));
            }
            2 | 3 if !flight[dir].is_empty() => {
                let n = flight[dir].len();
                let (text, m, done) = &mut flight[dir][arg % n];
                let tamper = (op >> 1) % 6 == 3;
                let msg = if tamper {
                    let mut b = m.serialized().to_vec();
                    let i = arg % b.len();
                    b[i] ^= 1 << (arg % 8);
                    match CiphertextMessage::from_bytes(m.message_type() as u8, &b) {
                        Ok(t) => t,
                        Err(_) => continue,
                    }
                } else {
                    m.clone()
                };
                let result = now_or_never(session::message_decrypt(
                    &to.store,
                    &from.address,
                    &msg,
                    &mut rng,
                ));
                match result {
                    Ok((plain, changes)) => {
                        assert!(!*done, "a message decrypted twice");
                        assert_eq!(plain, *text, "decrypted to something else");
                        now_or_never(to.store.save_changes(changes)).unwrap();
                        *done = true;
                        if dir == 0 {
                            bob_can_send = true;
                        }
                    }
                    Err(e) => assert!(tamper || *done, "a genuine first delivery failed: {e}"),
                }
            }
            4 => {
                if let Some(pos) = flight[dir].iter().position(|(_, _, d)| !d) {
                    flight[dir].remove(pos);
                }
            }
            5 if resets < 10 => {
                resets += 1;
                let b = bundle_of(&bob, 10 + resets, &mut rng);
                let changes = now_or_never(session::process_prekey_bundle(
                    &alice.store,
                    &bob.address,
                    &b,
                    NOW,
                    &mut rng,
                ))
                .unwrap();
                now_or_never(alice.store.save_changes(changes)).unwrap();
            }
            _ => {}
        }
    }
}

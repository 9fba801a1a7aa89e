//! Session scenarios on `MemoryStore`: setup, long conversations with loss, reordering and
//! duplicates, resets, simultaneous initiation, and every attack a distinct error.

use futures_executor::block_on;

use super::*;
use crate::address::DeviceId;
use crate::crypto::KyberKeyPair;
use crate::identity::IdentityKeyPair;
use crate::prekeys::{PreKeyId, SignedPreKeyId};
use crate::store::{KyberPreKeyStore, MemoryStore, PreKeyStore, SessionStore};
use crate::testing::{SeededRng, publish_bundle};
use crate::wire::CiphertextMessageType;

const T0: Timestamp = Timestamp::from_millis(1_800_000_000_000);

struct Party {
    store: MemoryStore,
    address: ProtocolAddress,
    next_id: u32,
}

impl Party {
    fn new(name: &str, device: u32, rng: &mut SeededRng) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let registration_id = crate::prekeys::generate_registration_id(rng);
        Self {
            store: MemoryStore::new(identity, registration_id),
            address: ProtocolAddress::new(name, DeviceId::new(device).unwrap()),
            next_id: 1,
        }
    }

    /// A fresh bundle; `one_time` adds a one-time prekey, `last_resort` picks the Kyber kind.
    fn bundle(&mut self, one_time: bool, last_resort: bool, rng: &mut SeededRng) -> PreKeyBundle {
        let id = self.next_id;
        self.next_id += 1;
        block_on(publish_bundle(
            &self.store,
            self.address.device_id(),
            id,
            (one_time, last_resort),
            T0,
            rng,
        ))
    }

    fn start(&self, with: &ProtocolAddress, bundle: &PreKeyBundle, rng: &mut SeededRng) {
        let changes = block_on(process_prekey_bundle(&self.store, with, bundle, T0, rng)).unwrap();
        block_on(self.store.save_changes(changes)).unwrap();
    }

    fn encrypt(&self, to: &ProtocolAddress, text: &[u8]) -> CiphertextMessage {
        self.encrypt_at(to, text, T0)
    }

    fn encrypt_at(&self, to: &ProtocolAddress, text: &[u8], now: Timestamp) -> CiphertextMessage {
        let (msg, changes) =
            block_on(message_encrypt(&self.store, to, text, now)).unwrap().into_parts();
        block_on(self.store.save_changes(changes)).unwrap();
        msg
    }

    fn decrypt(
        &self,
        from: &ProtocolAddress,
        msg: &CiphertextMessage,
        rng: &mut SeededRng,
    ) -> Result<Vec<u8>, ProtocolError> {
        let (plain, changes) = block_on(message_decrypt(&self.store, from, msg, rng))?;
        block_on(self.store.save_changes(changes)).unwrap();
        Ok(plain)
    }

    fn record(&self, with: &ProtocolAddress) -> SessionRecord {
        block_on(self.store.load_session(with)).unwrap().unwrap()
    }
}

fn pair(seed: u64) -> (Party, Party, SeededRng) {
    let mut rng = SeededRng::new(seed);
    let alice = Party::new("alice", 1, &mut rng);
    let bob = Party::new("bob", 1, &mut rng);
    (alice, bob, rng)
}

fn established(seed: u64) -> (Party, Party, SeededRng) {
    let (alice, mut bob, mut rng) = pair(seed);
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let first = alice.encrypt(&bob.address, b"hi");
    bob.decrypt(&alice.address, &first, &mut rng).unwrap();
    let reply = bob.encrypt(&alice.address, b"hello");
    alice.decrypt(&bob.address, &reply, &mut rng).unwrap();
    (alice, bob, rng)
}

#[test]
fn test_basic_setup_prekey_messages_until_answered() {
    let (alice, mut bob, mut rng) = pair(1);
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let m1 = alice.encrypt(&bob.address, b"one");
    let m2 = alice.encrypt(&bob.address, b"two");
    assert!(
        matches!(m1, CiphertextMessage::PreKey(_)),
        "first messages repeat the PQXDH parameters"
    );
    assert!(matches!(m2, CiphertextMessage::PreKey(_)));
    assert_eq!(bob.decrypt(&alice.address, &m2, &mut rng).unwrap(), b"two");
    assert_eq!(bob.decrypt(&alice.address, &m1, &mut rng).unwrap(), b"one");
    let reply = bob.encrypt(&alice.address, b"three");
    assert!(matches!(reply, CiphertextMessage::Signal(_)));
    assert_eq!(alice.decrypt(&bob.address, &reply, &mut rng).unwrap(), b"three");
    let m3 = alice.encrypt(&bob.address, b"four");
    assert!(
        matches!(m3, CiphertextMessage::Signal(_)),
        "answered sessions send plain Signal messages"
    );
    assert_eq!(bob.decrypt(&alice.address, &m3, &mut rng).unwrap(), b"four");
    assert!(block_on(bob.store.load_pre_key(PreKeyId(1))).unwrap().is_none());
}

#[test]
fn test_bundle_without_one_time_prekey() {
    let (alice, mut bob, mut rng) = pair(2);
    let bundle = bob.bundle(false, true, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let m = alice.encrypt(&bob.address, b"no otk");
    let CiphertextMessage::PreKey(p) = &m else { panic!() };
    assert_eq!(p.pre_key_id(), None);
    assert_eq!(bob.decrypt(&alice.address, &m, &mut rng).unwrap(), b"no otk");
    let kyber = block_on(bob.store.load_kyber_pre_key(bundle.kyber_pre_key_id)).unwrap();
    assert!(kyber.is_some(), "the last-resort Kyber key stays");
}

#[test]
fn test_randomized_conversations_with_loss_reordering_and_duplicates() {
    for seed in 0..12u64 {
        let (alice, bob, mut rng) = established(100 + seed);
        let parties = [(&alice, &bob), (&bob, &alice)];
        // Messages in flight per direction: (plaintext, message, delivered).
        let mut flight: [Vec<(Vec<u8>, CiphertextMessage, bool)>; 2] = [Vec::new(), Vec::new()];
        let mut counter = 0u32;
        for _step in 0..400 {
            let dir = (rand_core::Rng::next_u32(&mut rng) % 2) as usize;
            let (from, to) = parties[dir];
            match rand_core::Rng::next_u32(&mut rng) % 10 {
                0..=4 => {
                    counter += 1;
                    let text = format!("{seed}/{counter}").into_bytes();
                    let msg = from.encrypt(&to.address, &text);
                    flight[dir].push((text, msg, false));
                }
                5..=8 if !flight[dir].is_empty() => {
                    let n = flight[dir].len();
                    let pick = (rand_core::Rng::next_u32(&mut rng) as usize) % n;
                    let (text, msg, delivered) = &mut flight[dir][pick];
                    let result = to.decrypt(&from.address, msg, &mut rng);
                    if *delivered {
                        // A recent duplicate is recognised as such; one from a chain that has
                        // since been dropped (more than five ratchet steps ago) fails its MAC.
                        assert!(
                            matches!(
                                result,
                                Err(ProtocolError::DuplicatedMessage { .. } | ProtocolError::BadMac)
                            ),
                            "a duplicate must be refused, got {result:?}"
                        );
                    } else {
                        assert_eq!(result.unwrap(), *text, "seed {seed}");
                        *delivered = true;
                    }
                }
                _ => {
                    // Drop: forget an undelivered message forever.
                    if let Some(pos) = flight[dir].iter().position(|(_, _, d)| !d) {
                        flight[dir].remove(pos);
                    }
                }
            }
        }
        // Everything still undelivered decrypts at the end, in reverse order.
        for dir in 0..2 {
            let (from, to) = parties[dir];
            for (text, msg, delivered) in flight[dir].iter().rev() {
                if !delivered {
                    assert_eq!(to.decrypt(&from.address, msg, &mut rng).unwrap(), *text);
                }
            }
        }
    }
}

#[test]
fn test_tampered_mac_is_bad_mac_and_changes_nothing() {
    let (alice, bob, mut rng) = established(3);
    let msg = alice.encrypt(&bob.address, b"secret");
    let mut bytes = msg.serialized().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let tampered = CiphertextMessage::from_bytes(CiphertextMessageType::Whisper, &bytes).unwrap();
    let before = bob.record(&alice.address).to_bytes();
    assert!(matches!(bob.decrypt(&alice.address, &tampered, &mut rng), Err(ProtocolError::BadMac)));
    assert_eq!(
        bob.record(&alice.address).to_bytes(),
        before,
        "a failed decryption leaves the state untouched"
    );
    assert_eq!(bob.decrypt(&alice.address, &msg, &mut rng).unwrap(), b"secret");
    // A flipped ciphertext bit is also caught by the MAC.
    let msg = alice.encrypt(&bob.address, b"more");
    let mut bytes = msg.serialized().to_vec();
    let at = bytes.len() - 20;
    bytes[at] ^= 0x80;
    let tampered = CiphertextMessage::from_bytes(CiphertextMessageType::Whisper, &bytes).unwrap();
    assert!(matches!(bob.decrypt(&alice.address, &tampered, &mut rng), Err(ProtocolError::BadMac)));
}

#[test]
fn test_replayed_message_is_duplicate() {
    let (alice, bob, mut rng) = established(4);
    let msg = alice.encrypt(&bob.address, b"once");
    bob.decrypt(&alice.address, &msg, &mut rng).unwrap();
    assert!(matches!(
        bob.decrypt(&alice.address, &msg, &mut rng),
        Err(ProtocolError::DuplicatedMessage { .. })
    ));
}

#[test]
fn test_wrong_identity_is_untrusted() {
    let (alice, mut bob, mut rng) = pair(5);
    // Bob already trusts another key for Alice's address.
    let impostor = IdentityKeyPair::generate(&mut rng);
    let mut changes = Changes::default();
    changes.identities.insert(alice.address.clone(), *impostor.identity_key());
    block_on(bob.store.save_changes(changes)).unwrap();
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let m = alice.encrypt(&bob.address, b"hi");
    assert!(
        matches!(bob.decrypt(&alice.address, &m, &mut rng), Err(ProtocolError::UntrustedIdentity(a)) if a == alice.address)
    );
    // And a bundle whose identity differs from the trusted one is refused by the initiator.
    let (carol, mut dave, mut rng) = pair(6);
    let first = dave.bundle(true, false, &mut rng);
    carol.start(&dave.address, &first, &mut rng);
    let mut other = Party::new("dave", 1, &mut rng);
    let foreign = other.bundle(true, false, &mut rng);
    let result =
        block_on(process_prekey_bundle(&carol.store, &dave.address, &foreign, T0, &mut rng));
    assert!(matches!(result, Err(ProtocolError::UntrustedIdentity(_))));
}

#[test]
fn test_forged_bundle_is_refused() {
    let (alice, mut bob, mut rng) = pair(7);
    let mut bundle = bob.bundle(true, false, &mut rng);
    bundle.kyber_pre_key = KyberKeyPair::generate(&mut rng).public_key;
    let result = block_on(process_prekey_bundle(&alice.store, &bob.address, &bundle, T0, &mut rng));
    assert!(matches!(result, Err(ProtocolError::InvalidBundleSignature { which: "Kyber prekey" })));
    assert!(block_on(alice.store.load_session(&bob.address)).unwrap().is_none(), "nothing stored");
}

#[test]
fn test_oversized_jump_is_refused() {
    let (alice, bob, mut rng) = established(8);
    let mut last = None;
    for i in 0..=(MAX_FORWARD_JUMPS + 1) {
        last = Some(alice.encrypt(&bob.address, &i.to_le_bytes()));
    }
    let result = bob.decrypt(&alice.address, &last.unwrap(), &mut rng);
    assert!(
        matches!(result, Err(ProtocolError::TooFarIntoFuture { jump, limit: MAX_FORWARD_JUMPS }) if jump == MAX_FORWARD_JUMPS + 1)
    );
    // Exactly the limit is still fine.
    let (alice, bob, mut rng) = established(9);
    let mut last = None;
    for i in 0..=MAX_FORWARD_JUMPS {
        last = Some(alice.encrypt(&bob.address, &i.to_le_bytes()));
    }
    assert_eq!(
        bob.decrypt(&alice.address, &last.unwrap(), &mut rng).unwrap(),
        MAX_FORWARD_JUMPS.to_le_bytes()
    );
}

#[test]
fn test_skipped_keys_are_capped() {
    let (alice, bob, mut rng) = established(10);
    let mut msgs = Vec::new();
    for i in 0..(u32::try_from(MAX_MESSAGE_KEYS).unwrap() + 10) {
        msgs.push(alice.encrypt(&bob.address, &i.to_le_bytes()));
    }
    let last = msgs.pop().unwrap();
    bob.decrypt(&alice.address, &last, &mut rng).unwrap();
    // The oldest skipped keys were dropped: those messages now read as duplicates.
    assert!(matches!(
        bob.decrypt(&alice.address, &msgs[0], &mut rng),
        Err(ProtocolError::DuplicatedMessage { .. })
    ));
    assert_eq!(
        bob.decrypt(&alice.address, &msgs[msgs.len() - 1], &mut rng).unwrap(),
        (u32::try_from(msgs.len()).unwrap() - 1).to_le_bytes()
    );
}

#[test]
fn test_session_reset_mid_conversation() {
    let (alice, mut bob, mut rng) = established(11);
    let in_flight = alice.encrypt(&bob.address, b"sent before the reset");
    // Alice loses her session (e.g. reinstall of the session state) and starts over.
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let fresh = alice.encrypt(&bob.address, b"after reset");
    assert!(matches!(fresh, CiphertextMessage::PreKey(_)));
    assert_eq!(bob.decrypt(&alice.address, &fresh, &mut rng).unwrap(), b"after reset");
    assert_eq!(bob.record(&alice.address).previous().count(), 1, "the old session is archived");
    assert_eq!(
        bob.decrypt(&alice.address, &in_flight, &mut rng).unwrap(),
        b"sent before the reset"
    );
    let reply = bob.encrypt(&alice.address, b"reply");
    assert_eq!(alice.decrypt(&bob.address, &reply, &mut rng).unwrap(), b"reply");
    for i in 0..5u8 {
        let m = alice.encrypt(&bob.address, &[i]);
        assert_eq!(bob.decrypt(&alice.address, &m, &mut rng).unwrap(), [i]);
        let m = bob.encrypt(&alice.address, &[i]);
        assert_eq!(alice.decrypt(&bob.address, &m, &mut rng).unwrap(), [i]);
    }
}

#[test]
fn test_simultaneous_initiation_converges() {
    let (mut alice, mut bob, mut rng) = pair(12);
    let bob_bundle = bob.bundle(true, false, &mut rng);
    let alice_bundle = alice.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bob_bundle, &mut rng);
    bob.start(&alice.address, &alice_bundle, &mut rng);
    let from_alice = alice.encrypt(&bob.address, b"hi bob");
    let from_bob = bob.encrypt(&alice.address, b"hi alice");
    assert_eq!(bob.decrypt(&alice.address, &from_alice, &mut rng).unwrap(), b"hi bob");
    assert_eq!(alice.decrypt(&bob.address, &from_bob, &mut rng).unwrap(), b"hi alice");
    for i in 0..10u8 {
        let m = alice.encrypt(&bob.address, &[i]);
        assert_eq!(bob.decrypt(&alice.address, &m, &mut rng).unwrap(), [i], "alice→bob {i}");
        let m = bob.encrypt(&alice.address, &[i, i]);
        assert_eq!(alice.decrypt(&bob.address, &m, &mut rng).unwrap(), [i, i], "bob→alice {i}");
    }
    let a = alice.record(&bob.address);
    let b = bob.record(&alice.address);
    assert_eq!(
        a.current().unwrap().alice_base_key(),
        b.current().unwrap().alice_base_key(),
        "both sides settle on the same session"
    );
}

#[test]
fn test_unanswered_session_expires() {
    let (alice, mut bob, mut rng) = pair(13);
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let later = T0.saturating_add(MAX_UNACKNOWLEDGED_SESSION_AGE);
    alice.encrypt_at(&bob.address, b"still ok", later);
    let too_late = later.saturating_add(std::time::Duration::from_secs(1));
    let result = block_on(message_encrypt(&alice.store, &bob.address, b"too late", too_late));
    assert!(matches!(result, Err(ProtocolError::StaleSession)));
}

#[test]
fn test_missing_prekeys_are_named() {
    let (alice, mut bob, mut rng) = pair(14);
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let m = alice.encrypt(&bob.address, b"x");
    block_on(
        bob.store
            .save_changes(Changes { removed_pre_keys: vec![PreKeyId(1)], ..Default::default() }),
    )
    .unwrap();
    assert!(matches!(
        bob.decrypt(&alice.address, &m, &mut rng),
        Err(ProtocolError::MissingPreKey(PreKeyId(1)))
    ));
    block_on(bob.store.save_changes(Changes {
        removed_signed_pre_keys: vec![SignedPreKeyId(1)],
        ..Default::default()
    }))
    .unwrap();
    assert!(matches!(
        bob.decrypt(&alice.address, &m, &mut rng),
        Err(ProtocolError::MissingSignedPreKey(_))
    ));
}

#[test]
fn test_replayed_prekey_message_after_session_loss_is_refused() {
    let (alice, mut bob, mut rng) = pair(15);
    let bundle = bob.bundle(false, true, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let m = alice.encrypt(&bob.address, b"first");
    bob.decrypt(&alice.address, &m, &mut rng).unwrap();
    // With the session still known, a replay is a duplicate.
    assert!(matches!(
        bob.decrypt(&alice.address, &m, &mut rng),
        Err(ProtocolError::DuplicatedMessage { .. })
    ));
    // Once the session is gone, the last-resort key remembers the base key.
    block_on(bob.store.save_changes(Changes {
        removed_sessions: vec![alice.address.clone()],
        ..Default::default()
    }))
    .unwrap();
    assert!(matches!(
        bob.decrypt(&alice.address, &m, &mut rng),
        Err(ProtocolError::ReplayedPreKeyMessage)
    ));
}

/// `p`'s message with its base key replaced.
fn with_base_key(p: &PreKeySignalMessage, base_key: crate::crypto::PublicKey) -> CiphertextMessage {
    CiphertextMessage::PreKey(PreKeySignalMessage::new(
        p.message_version(),
        p.registration_id(),
        p.pre_key_id(),
        p.signed_pre_key_id(),
        p.kyber_pre_key_id(),
        p.kyber_ciphertext().clone(),
        base_key,
        *p.identity_key(),
        p.message().clone(),
    ))
}

/// The same point with a small-order component added: other bytes, the same agreement with
/// any clamped (multiple-of-8) private key.
fn with_torsion(key: &crate::crypto::PublicKey) -> crate::crypto::PublicKey {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::montgomery::MontgomeryPoint;
    let edwards = MontgomeryPoint(*key.u_bytes()).to_edwards(0).unwrap();
    crate::crypto::PublicKey::from_u_bytes((edwards + EIGHT_TORSION[1]).to_montgomery().to_bytes())
}

#[test]
fn test_noncanonical_base_key_is_refused() {
    let (alice, mut bob, mut rng) = pair(16);
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let CiphertextMessage::PreKey(p) = alice.encrypt(&bob.address, b"x") else { panic!() };
    // The top bit set: X25519 ignores it, so the agreements are the same, but the bytes
    // (the replay guard) differ. Refused whatever prekeys the message uses.
    let mut u = *p.base_key().u_bytes();
    u[31] |= 0x80;
    let forged = with_base_key(&p, crate::crypto::PublicKey::from_u_bytes(u));
    let result = bob.decrypt(&alice.address, &forged, &mut rng);
    assert!(matches!(result, Err(ProtocolError::InvalidBaseKey)), "{result:?}");
    bob.decrypt(&alice.address, &CiphertextMessage::PreKey(p), &mut rng).unwrap();
}

#[test]
fn test_base_key_with_a_small_order_component_cannot_replay_a_last_resort_message() {
    let (alice, mut bob, mut rng) = pair(18);
    let bundle = bob.bundle(false, true, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let CiphertextMessage::PreKey(p) = alice.encrypt(&bob.address, b"once") else { panic!() };
    bob.decrypt(&alice.address, &CiphertextMessage::PreKey(p.clone()), &mut rng).unwrap();
    block_on(bob.store.save_changes(Changes {
        removed_sessions: vec![alice.address.clone()],
        ..Default::default()
    }))
    .unwrap();
    // Same agreements, other bytes: the remembered base key does not match, so the torsion
    // check is what refuses it.
    let replay = with_base_key(&p, with_torsion(p.base_key()));
    let result = bob.decrypt(&alice.address, &replay, &mut rng);
    assert!(matches!(result, Err(ProtocolError::InvalidBaseKey)), "{result:?}");
    // A pure small-order base key is refused the same way.
    let mut low_order = [0u8; 32];
    low_order[0] = 1;
    let forged = with_base_key(&p, crate::crypto::PublicKey::from_u_bytes(low_order));
    let result = bob.decrypt(&alice.address, &forged, &mut rng);
    assert!(matches!(result, Err(ProtocolError::InvalidBaseKey)), "{result:?}");
}

#[test]
fn test_base_key_with_a_small_order_component_cannot_replay_a_one_time_prekey_message() {
    let (alice, mut bob, mut rng) = pair(19);
    let bundle = bob.bundle(true, true, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let CiphertextMessage::PreKey(p) = alice.encrypt(&bob.address, b"once") else { panic!() };
    let variant = with_base_key(&p, with_torsion(p.base_key()));
    bob.decrypt(&alice.address, &CiphertextMessage::PreKey(p.clone()), &mut rng).unwrap();
    block_on(bob.store.save_changes(Changes {
        removed_sessions: vec![alice.address.clone()],
        ..Default::default()
    }))
    .unwrap();
    // The variant would decrypt (the agreements are the same), but the one-time prekey it
    // needs went with the first decryption.
    let result = bob.decrypt(&alice.address, &variant, &mut rng);
    assert!(matches!(result, Err(ProtocolError::MissingPreKey(_))), "{result:?}");
    assert!(block_on(bob.store.load_session(&alice.address)).unwrap().is_none());
}

#[test]
fn test_record_survives_serialization_mid_conversation() {
    let (alice, bob, mut rng) = established(17);
    let held = alice.encrypt(&bob.address, b"held back");
    let m = alice.encrypt(&bob.address, b"now");
    bob.decrypt(&alice.address, &m, &mut rng).unwrap();
    let bytes = bob.record(&alice.address).to_bytes();
    let restored = SessionRecord::from_bytes(&bytes).unwrap();
    let mut changes = Changes::default();
    changes.sessions.insert(alice.address.clone(), restored);
    block_on(bob.store.save_changes(changes)).unwrap();
    assert_eq!(bob.decrypt(&alice.address, &held, &mut rng).unwrap(), b"held back");
    assert!(SessionRecord::from_bytes(&bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn test_archived_states_are_capped() {
    let (alice, mut bob, mut rng) = established(18);
    for _ in 0..(ARCHIVED_STATES_MAX_LENGTH + 5) {
        let bundle = bob.bundle(false, false, &mut rng);
        alice.start(&bob.address, &bundle, &mut rng);
    }
    assert_eq!(alice.record(&bob.address).previous().count(), ARCHIVED_STATES_MAX_LENGTH);
}

#[test]
fn test_debug_output_has_no_secrets() {
    let (alice, bob, _rng) = established(19);
    let record = alice.record(&bob.address);
    let dbg = format!("{record:?}");
    let state = record.current().unwrap();
    let root = hex::encode(state.root_key.0);
    assert!(!dbg.contains(&root[..16]));
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn test_detached_kyber_ciphertext_round_trips_and_is_checked() {
    let mut rng = SeededRng::new(77);
    let alice = Party::new("alice", 1, &mut rng);
    let mut bob = Party::new("bob", 1, &mut rng);
    let bundle = bob.bundle(true, false, &mut rng);
    alice.start(&bob.address, &bundle, &mut rng);
    let record = block_on(alice.store.load_session(&bob.address)).unwrap().unwrap();
    let (bytes, detached) = record.to_detached_bytes();
    let detached = detached.expect("a fresh session has a pending Kyber ciphertext");
    assert_eq!(detached.ciphertext.len(), 1569);
    assert!(bytes.len() + 1500 < record.to_bytes().len(), "the bulk is detached");
    // With the ciphertext: the same record.
    let back = SessionRecord::from_detached_bytes(&bytes, Some(&detached)).unwrap();
    assert_eq!(back.to_bytes(), record.to_bytes());
    assert_eq!(DetachedKyber::from_bytes(&detached.to_bytes()).unwrap(), detached);
    // Without it, or with another state's: clear errors; full bytes parse either way.
    assert_eq!(
        SessionRecord::from_detached_bytes(&bytes, None).unwrap_err(),
        crate::wire::WireError::MissingField { what: "SessionRecord", field: DETACHED_KYBER_FIELD }
    );
    let other = DetachedKyber { base_key: vec![5; 33], ..detached.clone() };
    assert!(SessionRecord::from_detached_bytes(&bytes, Some(&other)).is_err());
    assert!(SessionRecord::from_bytes(&bytes).is_err(), "plain parsing needs the ciphertext");
    let full = SessionRecord::from_detached_bytes(&record.to_bytes(), None).unwrap();
    assert_eq!(full.to_bytes(), record.to_bytes());
    assert!(DetachedKyber::from_bytes(&[40, 1, 2]).is_err());
    assert!(DetachedKyber::from_bytes(&[]).is_err());
    // Once the peer answers, nothing is detached.
    let first = alice.encrypt(&bob.address, b"hi");
    bob.decrypt(&alice.address, &first, &mut rng).unwrap();
    let reply = bob.encrypt(&alice.address, b"hello");
    alice.decrypt(&bob.address, &reply, &mut rng).unwrap();
    let answered = block_on(alice.store.load_session(&bob.address)).unwrap().unwrap();
    assert!(answered.to_detached_bytes().1.is_none());
}

//! Interop with the real libsignal 0.90.0 (npm `@signalapp/libsignal-client`, driven from
//! Node by `tests/interop/libsignal-peer.mjs`). `scripts/test` installs the npm package; run
//! `npm ci` in `tests/interop` to run these tests by hand.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use futures_executor::block_on;
use serde_json::{Value, json};
use tandem_signal::crypto::{KyberPublicKey, PublicKey};
use tandem_signal::fingerprint::Fingerprint;
use tandem_signal::prekeys::{KyberPreKeyId, PreKeyBundle, PreKeyId, SignedPreKeyId};
use tandem_signal::sender_keys::{self, DistributionId};
use tandem_signal::session::{message_decrypt, message_encrypt, process_prekey_bundle};
use tandem_signal::store::{MemoryStore, ProtocolStore};
use tandem_signal::testing::{SeededRng, publish_bundle};
use tandem_signal::wire::{CiphertextMessage, CiphertextMessageType, SenderKeyMessage};
use tandem_signal::{
    DeviceId, IdentityKey, IdentityKeyPair, ProtocolAddress, ProtocolError, Timestamp,
};

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// A libsignal device in a Node process.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    address: ProtocolAddress,
}

impl Peer {
    fn start(name: &str, device: u32) -> Self {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/interop");
        assert!(
            std::path::Path::new(&format!("{root}/node_modules/@signalapp/libsignal-client"))
                .exists(),
            "libsignal is not installed: run `npm ci` in tests/interop (scripts/test does this)"
        );
        let mut child = Command::new("node")
            .arg(format!("{root}/libsignal-peer.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Self {
            child,
            stdin,
            stdout,
            address: ProtocolAddress::new(name, DeviceId::new(device).unwrap()),
        };
        peer.call(json!({"op": "init", "name": name, "device": device}));
        peer
    }

    fn try_call(&mut self, cmd: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad reply {line:?}: {e}"));
        if v["ok"].as_bool() == Some(true) {
            Ok(v)
        } else {
            Err(v["error"].as_str().unwrap_or("?").to_owned())
        }
    }

    fn call(&mut self, cmd: Value) -> Value {
        let op = cmd["op"].clone();
        self.try_call(cmd).unwrap_or_else(|e| panic!("libsignal {op}: {e}"))
    }

    fn addr_json(a: &ProtocolAddress) -> Value {
        json!({"name": a.name(), "device": a.device_id().get()})
    }

    fn encrypt(&mut self, to: &ProtocolAddress, text: &[u8]) -> CiphertextMessage {
        let v = self.call(json!({"op": "encrypt", "address": Self::addr_json(to), "plaintext": hex::encode(text)}));
        let kind = u32::try_from(v["type"].as_u64().unwrap()).unwrap();
        let kind = CiphertextMessageType::try_from(kind).unwrap();
        CiphertextMessage::from_bytes(kind, &hex::decode(v["body"].as_str().unwrap()).unwrap())
            .unwrap()
    }

    fn decrypt(
        &mut self,
        from: &ProtocolAddress,
        msg: &CiphertextMessage,
    ) -> Result<Vec<u8>, String> {
        self.try_call(json!({
            "op": "decrypt",
            "address": Self::addr_json(from),
            "type": u32::from(msg.message_type()),
            "body": hex::encode(msg.serialized()),
        }))
        .map(|v| hex::decode(v["plaintext"].as_str().unwrap()).unwrap())
    }

    fn bundle(&mut self, one_time: bool, last_resort: bool) -> PreKeyBundle {
        let b =
            self.call(json!({"op": "bundle", "one_time": one_time, "last_resort": last_resort}));
        let h = |k: &str| hex::decode(b[k].as_str().unwrap()).unwrap();
        let id = |k: &str| u32::try_from(b[k].as_u64().unwrap()).unwrap();
        PreKeyBundle {
            registration_id: id("registration_id"),
            device_id: DeviceId::new(id("device_id")).unwrap(),
            pre_key: b["pre_key_id"].as_u64().map(|i| {
                (PreKeyId(u32::try_from(i).unwrap()), PublicKey::from_bytes(&h("pre_key")).unwrap())
            }),
            signed_pre_key_id: SignedPreKeyId(id("signed_pre_key_id")),
            signed_pre_key: PublicKey::from_bytes(&h("signed_pre_key")).unwrap(),
            signed_pre_key_signature: h("signed_pre_key_signature"),
            kyber_pre_key_id: KyberPreKeyId(id("kyber_pre_key_id")),
            kyber_pre_key: KyberPublicKey::from_bytes(&h("kyber_pre_key")).unwrap(),
            kyber_pre_key_signature: h("kyber_pre_key_signature"),
            identity_key: IdentityKey::from_bytes(&h("identity_key")).unwrap(),
        }
    }

    fn process_bundle(&mut self, with: &ProtocolAddress, b: &PreKeyBundle) {
        let bundle = json!({
            "registration_id": b.registration_id,
            "device_id": b.device_id.get(),
            "pre_key_id": b.pre_key.as_ref().map(|(id, _)| id.0),
            "pre_key": b.pre_key.as_ref().map(|(_, k)| hex::encode(k.serialize())),
            "signed_pre_key_id": b.signed_pre_key_id.0,
            "signed_pre_key": hex::encode(b.signed_pre_key.serialize()),
            "signed_pre_key_signature": hex::encode(&b.signed_pre_key_signature),
            "kyber_pre_key_id": b.kyber_pre_key_id.0,
            "kyber_pre_key": hex::encode(b.kyber_pre_key.serialize()),
            "kyber_pre_key_signature": hex::encode(&b.kyber_pre_key_signature),
            "identity_key": hex::encode(b.identity_key.serialize()),
        });
        self.call(
            json!({"op": "process_bundle", "address": Self::addr_json(with), "bundle": bundle}),
        );
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Tandem device on `MemoryStore`.
struct Tandem {
    store: MemoryStore,
    identity: IdentityKeyPair,
    address: ProtocolAddress,
    rng: SeededRng,
    next_id: u32,
}

impl Tandem {
    fn new(name: &str, device: u32, seed: u64) -> Self {
        let mut rng = SeededRng::new(seed);
        let identity = IdentityKeyPair::generate(&mut rng);
        let registration_id = tandem_signal::prekeys::generate_registration_id(&mut rng);
        Self {
            store: MemoryStore::new(identity.clone(), registration_id),
            identity,
            address: ProtocolAddress::new(name, DeviceId::new(device).unwrap()),
            rng,
            next_id: 100,
        }
    }

    fn bundle(&mut self, one_time: bool, last_resort: bool) -> PreKeyBundle {
        let id = self.next_id;
        self.next_id += 1;
        let device = self.address.device_id();
        block_on(publish_bundle(
            &self.store,
            device,
            id,
            (one_time, last_resort),
            NOW,
            &mut self.rng,
        ))
    }

    fn process_bundle(&mut self, with: &ProtocolAddress, b: &PreKeyBundle) {
        let changes =
            block_on(process_prekey_bundle(&self.store, with, b, NOW, &mut self.rng)).unwrap();
        block_on(self.store.save_changes(changes)).unwrap();
    }

    fn encrypt(&mut self, to: &ProtocolAddress, text: &[u8]) -> CiphertextMessage {
        let (m, changes) =
            block_on(message_encrypt(&self.store, to, text, NOW)).unwrap().into_parts();
        block_on(self.store.save_changes(changes)).unwrap();
        m
    }

    fn decrypt(
        &mut self,
        from: &ProtocolAddress,
        m: &CiphertextMessage,
    ) -> Result<Vec<u8>, ProtocolError> {
        let (p, changes) = block_on(message_decrypt(&self.store, from, m, &mut self.rng))?;
        block_on(self.store.save_changes(changes)).unwrap();
        Ok(p)
    }
}

/// Alternating messages; `peer_first` when only libsignal has a session yet.
fn exchange(tandem: &mut Tandem, peer: &mut Peer, rounds: u32, peer_first: bool) {
    let (t_addr, p_addr) = (tandem.address.clone(), peer.address.clone());
    for i in 0..rounds * 2 {
        if (i % 2 == 0) == peer_first {
            let text = format!("libsignal → tandem {i}");
            let m = peer.encrypt(&t_addr, text.as_bytes());
            assert_eq!(tandem.decrypt(&p_addr, &m).unwrap(), text.as_bytes());
        } else {
            let text = format!("tandem → libsignal {i}");
            let m = tandem.encrypt(&p_addr, text.as_bytes());
            assert_eq!(peer.decrypt(&t_addr, &m).unwrap(), text.as_bytes());
        }
    }
}

#[test]
fn test_libsignal_initiates_to_tandem_bundle() {
    for (one_time, last_resort) in [(true, false), (false, true)] {
        let mut tandem = Tandem::new("tandem", 2, 1);
        let mut peer = Peer::start("libsignal", 1);
        let bundle = tandem.bundle(one_time, last_resort);
        peer.process_bundle(&tandem.address, &bundle);
        let first = peer.encrypt(&tandem.address, b"hello from libsignal");
        assert!(matches!(first, CiphertextMessage::PreKey(_)));
        assert_eq!(tandem.decrypt(&peer.address, &first).unwrap(), b"hello from libsignal");
        exchange(&mut tandem, &mut peer, 20, false);
    }
}

#[test]
fn test_tandem_initiates_to_libsignal_bundle() {
    for (one_time, last_resort) in [(true, false), (false, true)] {
        let mut tandem = Tandem::new("tandem", 3, 2);
        let mut peer = Peer::start("libsignal", 1);
        let bundle = peer.bundle(one_time, last_resort);
        tandem.process_bundle(&peer.address, &bundle);
        let m1 = tandem.encrypt(&peer.address, b"first");
        let m2 = tandem.encrypt(&peer.address, b"second");
        assert!(matches!(m2, CiphertextMessage::PreKey(_)));
        assert_eq!(peer.decrypt(&tandem.address, &m2).unwrap(), b"second");
        assert_eq!(peer.decrypt(&tandem.address, &m1).unwrap(), b"first");
        let reply = peer.encrypt(&tandem.address, b"reply");
        assert!(matches!(reply, CiphertextMessage::Signal(_)));
        assert_eq!(tandem.decrypt(&peer.address, &reply).unwrap(), b"reply");
        let next = tandem.encrypt(&peer.address, b"acknowledged");
        assert!(
            matches!(next, CiphertextMessage::Signal(_)),
            "Tandem stops sending PreKey messages once answered"
        );
        assert_eq!(peer.decrypt(&tandem.address, &next).unwrap(), b"acknowledged");
        exchange(&mut tandem, &mut peer, 20, false);
    }
}

/// The ratchet key a message was sent under.
fn ratchet_key(m: &CiphertextMessage) -> PublicKey {
    match m {
        CiphertextMessage::Signal(s) => *s.ratchet_key(),
        CiphertextMessage::PreKey(p) => *p.message().ratchet_key(),
    }
}

/// Long conversations with crossing, out-of-order, dropped and duplicated messages.
///
/// Both libsignal and Tandem keep five receiving chains, so a message sent under a ratchet
/// key that is five or more keys old may legitimately be undecryptable; every message within
/// that window must decrypt exactly once.
#[test]
fn test_long_conversations_with_reordering_loss_and_duplicates() {
    for seed in 0..4u64 {
        let mut tandem = Tandem::new("tandem", 2, 10 + seed);
        let mut peer = Peer::start("libsignal", 1);
        let mut rng = SeededRng::new(1000 + seed);
        let mut next = |n: u32| rand_core::Rng::next_u32(&mut rng) % n;
        if seed % 2 == 0 {
            let b = tandem.bundle(true, false);
            peer.process_bundle(&tandem.address, &b);
        } else {
            let b = peer.bundle(true, false);
            tandem.process_bundle(&peer.address, &b);
        }
        let (t_addr, p_addr) = (tandem.address.clone(), peer.address.clone());
        // [0]: tandem → libsignal, [1]: libsignal → tandem; (text, message, delivered)
        let mut flight: [Vec<(Vec<u8>, CiphertextMessage, bool)>; 2] = [Vec::new(), Vec::new()];
        // Distinct ratchet keys per direction, in the order they were first used.
        let mut epochs: [Vec<PublicKey>; 2] = [Vec::new(), Vec::new()];
        let (mut sent, mut delivered, mut duplicates, mut dropped, mut expired) = (0, 0, 0, 0, 0);
        // The responder can send only once it has decrypted something: [tandem, libsignal].
        let initiator = if seed % 2 == 0 { 1 } else { 0 };
        let mut can_send = [initiator == 0, initiator == 1];
        let deliver = |dir: usize, m: &CiphertextMessage, tandem: &mut Tandem, peer: &mut Peer| {
            if dir == 0 {
                peer.decrypt(&t_addr, m)
            } else {
                tandem.decrypt(&p_addr, m).map_err(|e| e.to_string())
            }
        };
        for step in 0..600u32 {
            let dir = next(2) as usize;
            match next(10) {
                0..=4 if can_send[dir] => {
                    let text = format!("{seed}:{step}:{dir}").into_bytes();
                    let m = if dir == 0 {
                        tandem.encrypt(&p_addr, &text)
                    } else {
                        peer.encrypt(&t_addr, &text)
                    };
                    let key = ratchet_key(&m);
                    if !epochs[dir].contains(&key) {
                        epochs[dir].push(key);
                    }
                    flight[dir].push((text, m, false));
                    sent += 1;
                }
                5..=8 if !flight[dir].is_empty() => {
                    let pick = next(u32::try_from(flight[dir].len()).unwrap()) as usize;
                    let (text, m, done) = &mut flight[dir][pick];
                    let age = epochs[dir].len()
                        - 1
                        - epochs[dir].iter().position(|k| *k == ratchet_key(m)).unwrap();
                    let result = deliver(dir, m, &mut tandem, &mut peer);
                    if *done {
                        assert!(result.is_err(), "a duplicate must not decrypt twice (dir {dir})");
                        duplicates += 1;
                    } else if age >= 4 && result.is_err() {
                        expired += 1;
                        *done = true;
                    } else {
                        assert_eq!(
                            result.unwrap_or_else(|e| panic!(
                                "seed {seed} step {step} dir {dir} age {age}: {e}"
                            )),
                            *text
                        );
                        *done = true;
                        delivered += 1;
                        can_send[dir ^ 1] = true;
                    }
                }
                _ => {
                    if let Some(pos) = flight[dir].iter().position(|(_, _, d)| !d) {
                        flight[dir].remove(pos);
                        dropped += 1;
                    }
                }
            }
        }
        for dir in 0..2 {
            for (text, m, done) in flight[dir].iter().rev() {
                let age = epochs[dir].len()
                    - 1
                    - epochs[dir].iter().position(|k| *k == ratchet_key(m)).unwrap();
                if !done && age < 4 {
                    assert_eq!(deliver(dir, m, &mut tandem, &mut peer).unwrap(), *text);
                    delivered += 1;
                }
            }
        }
        eprintln!(
            "seed {seed}: sent {sent}, delivered {delivered}, duplicates {duplicates}, dropped {dropped}, expired {expired}"
        );
        assert!(
            sent > 250 && delivered > 150 && duplicates > 20 && dropped > 10,
            "{sent} {delivered} {duplicates} {dropped}"
        );
    }
}

#[test]
fn test_session_reset_mid_conversation_both_ways() {
    let mut tandem = Tandem::new("tandem", 2, 20);
    let mut peer = Peer::start("libsignal", 1);
    let b = tandem.bundle(true, false);
    peer.process_bundle(&tandem.address, &b);
    exchange(&mut tandem, &mut peer, 3, true);
    // libsignal starts over with a new bundle: a new PreKey message mid-conversation.
    let in_flight = peer.encrypt(&tandem.address, b"old session, delivered late");
    let b = tandem.bundle(true, false);
    peer.process_bundle(&tandem.address, &b);
    let reset = peer.encrypt(&tandem.address, b"new session");
    assert!(matches!(reset, CiphertextMessage::PreKey(_)));
    assert_eq!(tandem.decrypt(&peer.address, &reset).unwrap(), b"new session");
    assert_eq!(tandem.decrypt(&peer.address, &in_flight).unwrap(), b"old session, delivered late");
    exchange(&mut tandem, &mut peer, 3, false);
    // Now Tandem starts over.
    let b = peer.bundle(false, true);
    tandem.process_bundle(&peer.address, &b);
    let reset = tandem.encrypt(&peer.address, b"tandem reset");
    assert!(matches!(reset, CiphertextMessage::PreKey(_)));
    assert_eq!(peer.decrypt(&tandem.address, &reset).unwrap(), b"tandem reset");
    exchange(&mut tandem, &mut peer, 3, true);
}

#[test]
fn test_simultaneous_initiation_with_libsignal() {
    let mut tandem = Tandem::new("tandem", 2, 30);
    let mut peer = Peer::start("libsignal", 1);
    let tb = tandem.bundle(true, false);
    let pb = peer.bundle(true, false);
    peer.process_bundle(&tandem.address, &tb);
    tandem.process_bundle(&peer.address, &pb);
    let from_tandem = tandem.encrypt(&peer.address, b"hi from tandem");
    let from_peer = peer.encrypt(&tandem.address, b"hi from libsignal");
    assert_eq!(peer.decrypt(&tandem.address, &from_tandem).unwrap(), b"hi from tandem");
    assert_eq!(tandem.decrypt(&peer.address, &from_peer).unwrap(), b"hi from libsignal");
    exchange(&mut tandem, &mut peer, 10, false);
}

#[test]
fn test_tampered_and_foreign_messages_are_refused() {
    let mut tandem = Tandem::new("tandem", 2, 40);
    let mut peer = Peer::start("libsignal", 1);
    let b = tandem.bundle(true, false);
    peer.process_bundle(&tandem.address, &b);
    exchange(&mut tandem, &mut peer, 2, true);
    let m = peer.encrypt(&tandem.address, b"genuine");
    let mut bytes = m.serialized().to_vec();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let tampered = CiphertextMessage::from_bytes(CiphertextMessageType::Whisper, &bytes).unwrap();
    assert!(matches!(tandem.decrypt(&peer.address, &tampered), Err(ProtocolError::BadMac)));
    assert_eq!(tandem.decrypt(&peer.address, &m).unwrap(), b"genuine");
    assert!(matches!(
        tandem.decrypt(&peer.address, &m),
        Err(ProtocolError::DuplicatedMessage { .. })
    ));
    // And libsignal refuses Tandem's tampered messages too.
    let m = tandem.encrypt(&peer.address, b"x");
    let mut bytes = m.serialized().to_vec();
    bytes[5] ^= 1;
    let tampered =
        CiphertextMessage::Signal(tandem_signal::wire::SignalMessage::from_bytes(&bytes).unwrap());
    assert!(peer.decrypt(&tandem.address, &tampered).is_err());
    assert_eq!(peer.decrypt(&tandem.address, &m).unwrap(), b"x");
}

#[test]
fn test_sender_keys_both_ways() {
    let mut tandem = Tandem::new("tandem", 2, 50);
    let mut peer = Peer::start("libsignal", 1);
    let group = DistributionId::random(&mut tandem.rng);
    let uuid = {
        let h = hex::encode(group.0);
        format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
    };
    // Tandem → libsignal.
    let (skdm, changes) = block_on(sender_keys::create_sender_key_distribution_message(
        &tandem.store,
        &tandem.address,
        group,
        &mut tandem.rng,
    ))
    .unwrap();
    block_on(tandem.store.save_changes(changes)).unwrap();
    peer.call(json!({"op": "skdm_process", "address": Peer::addr_json(&tandem.address), "body": hex::encode(skdm.serialized())}));
    let mut sent = Vec::new();
    for i in 0..10 {
        let text = format!("group message {i}");
        let (m, changes) = block_on(sender_keys::group_encrypt(
            &tandem.store,
            &tandem.address,
            group,
            text.as_bytes(),
            &mut tandem.rng,
        ))
        .unwrap()
        .into_parts();
        block_on(tandem.store.save_changes(changes)).unwrap();
        sent.push((text, m));
    }
    for i in [3usize, 0, 9, 1, 2, 8, 4, 5, 6, 7] {
        let v = peer.call(json!({"op": "group_decrypt", "address": Peer::addr_json(&tandem.address), "body": hex::encode(sent[i].1.serialized())}));
        assert_eq!(hex::decode(v["plaintext"].as_str().unwrap()).unwrap(), sent[i].0.as_bytes());
    }
    assert!(peer.try_call(json!({"op": "group_decrypt", "address": Peer::addr_json(&tandem.address), "body": hex::encode(sent[0].1.serialized())})).is_err());

    // libsignal → Tandem.
    let v = peer.call(json!({"op": "skdm_create", "distribution_id": uuid}));
    let skdm = tandem_signal::wire::SenderKeyDistributionMessage::from_bytes(
        &hex::decode(v["body"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(skdm.distribution_id(), group.0);
    let changes = block_on(sender_keys::process_sender_key_distribution_message(
        &tandem.store,
        &peer.address,
        &skdm,
    ))
    .unwrap();
    block_on(tandem.store.save_changes(changes)).unwrap();
    let mut bodies = Vec::new();
    for i in 0..10 {
        let text = format!("from libsignal {i}");
        let v = peer.call(json!({"op": "group_encrypt", "distribution_id": uuid, "plaintext": hex::encode(&text)}));
        bodies.push((text, hex::decode(v["body"].as_str().unwrap()).unwrap()));
    }
    for i in [9usize, 0, 5, 1, 2, 3, 4, 6, 8, 7] {
        let message = SenderKeyMessage::from_bytes(&bodies[i].1).unwrap();
        let (plain, changes) =
            block_on(sender_keys::group_decrypt(&tandem.store, &peer.address, &message)).unwrap();
        block_on(tandem.store.save_changes(changes)).unwrap();
        assert_eq!(plain, bodies[i].0.as_bytes());
    }
    assert!(matches!(
        block_on(sender_keys::group_decrypt(
            &tandem.store,
            &peer.address,
            &SenderKeyMessage::from_bytes(&bodies[9].1).unwrap()
        )),
        Err(ProtocolError::DuplicatedMessage { .. })
    ));
}

#[test]
fn test_safety_numbers_equal_on_both_sides() {
    let tandem = Tandem::new("tandem", 1, 60);
    let mut peer = Peer::start("libsignal", 1);
    let v = peer.call(json!({"op": "identity"}));
    let peer_key =
        IdentityKey::from_bytes(&hex::decode(v["identity_key"].as_str().unwrap()).unwrap())
            .unwrap();
    let (tandem_id, peer_id) = (b"tandem-account-1".to_vec(), b"libsignal-acct-1".to_vec());
    for (version, iterations) in [(1u32, 5200u32), (2, 5200), (2, 1024)] {
        let ours = Fingerprint::new(
            version,
            iterations,
            &tandem_id,
            tandem.identity.identity_key(),
            &peer_id,
            &peer_key,
        )
        .unwrap();
        let theirs = peer.call(json!({
            "op": "fingerprint", "version": version, "iterations": iterations,
            "local_id": hex::encode(&peer_id), "local_key": hex::encode(peer_key.serialize()),
            "remote_id": hex::encode(&tandem_id), "remote_key": hex::encode(tandem.identity.identity_key().serialize()),
        }));
        assert_eq!(ours.displayable(), theirs["displayable"].as_str().unwrap());
        assert!(
            ours.compare(&hex::decode(theirs["scannable"].as_str().unwrap()).unwrap()).unwrap()
        );
    }
}

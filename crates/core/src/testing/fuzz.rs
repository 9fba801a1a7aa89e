//! The bodies of the fuzz targets in `crates/core/fuzz`, here so that the stable test suite
//! replays their corpus (`tests/fuzz_corpus.rs`) and so they stay compiled.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use super::{SeededRng, now_or_never};

mod adversary;
mod engine;

use crate::fingerprint::{AccountView, SecurityCode};
use crate::prekeys::{KyberPreKeyRecord, PreKeyBundle, PreKeyRecord, SignedPreKeyRecord};
use crate::sender_keys::SenderKeyRecord;
use crate::session::{self, SessionRecord};
use crate::store::{MemoryStore, ProtocolStore};
use crate::wire::relay::{ClientFrame, ServerFrame};
use crate::wire::signal::{
    CiphertextMessage, CiphertextMessageType, PreKeySignalMessage, SenderKeyDistributionMessage,
    SenderKeyMessage, SignalMessage,
};
pub use adversary::{device_lists, group_state, link_message, prekey_bundles, relay_proofs};
pub use engine::{client_receive, group_decrypt_schedule};
use tandem_signal::Timestamp;
use tandem_signal::{DeviceId, ProtocolAddress};
use tandem_signal::{IdentityKey, IdentityKeyPair};

/// Valid starting inputs for a target (empty for the targets whose corpus grew from bytes):
/// written into `fuzz/corpus/<target>/` by `cargo test -p tandem-core --features testing
/// --test fuzz_corpus -- --ignored write_seeds`, and replayed with the corpus.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let mut out = adversary::seeds(target);
    out.extend(engine::seeds(target));
    if target == "read_model" {
        out.extend(read_model_seeds());
    }
    if target == "blob_open" {
        let key = crate::blob::BlobKey::from_bytes(&[7; 32]).expect("32 bytes");
        for plain in [&b"a photo"[..], &[5u8; crate::blob::CHUNK_LEN + 9][..]] {
            out.push(crate::blob::seal(&key, plain).expect("seals").0);
        }
    }
    if target == "parse_messages" {
        out.push(b"123E4567-e89b-42d3-A456-426614174000".to_vec());
    }
    out
}

/// A stored summary and a recent list of three chats (one a group, one without a handle).
fn read_model_seeds() -> Vec<Vec<u8>> {
    use crate::records::{Conversation, MessageId, MessageRecord, OutgoingState};
    use crate::store::read_model::{Fresh, merge_recent, summary_value};
    let message = |peer: u8, at: u64, group: bool| MessageRecord {
        id: MessageId {
            sender: crate::AccountId([peer; 16]),
            device: DeviceId::PRIMARY,
            timestamp: at,
        },
        conversation: if group {
            Conversation::Group([peer; 16])
        } else {
            Conversation::Direct(crate::AccountId([peer; 16]))
        },
        body: format!("hello {peer}"),
        outgoing: false,
        state: OutgoingState::Sent,
        stored_at: Timestamp::from_millis(at + 5),
        delivered_to: std::collections::BTreeSet::new(),
        read_by: std::collections::BTreeSet::new(),
        server_time: Some(Timestamp::from_millis(at + 1)),
        notice: None,
        local_id: None,
        quote: None,
        audience: 0,
    };
    let fresh: Vec<Fresh> =
        [(1, 100, false, Some("ann")), (2, 300, true, None), (3, 200, false, None)]
            .into_iter()
            .map(|(peer, at, group, name)| {
                let m = message(peer, at, group);
                Fresh::new(
                    vec![peer; 17],
                    summary_value(&m, u32::from(peer), u32::from(peer) / 2),
                    &m,
                    name.map(str::to_owned),
                )
            })
            .collect();
    let summary = fresh[0].summary.clone();
    vec![
        prost::Message::encode_to_vec(&summary),
        prost::Message::encode_to_vec(&merge_recent(None, fresh)),
    ]
}

/// The chat list's read model on arbitrary (corrupt or hostile) stored bytes: parsing never
/// panics; whatever parses re-encodes to a value that parses the same; merging a list with
/// its own chats keeps at most [`RECENT_LEN`](crate::store::read_model::RECENT_LEN), newest
/// first, one entry per conversation.
pub fn read_model(data: &[u8]) {
    use crate::store::read_model::{Fresh, RECENT_LEN, StoredRecent, StoredSummary, merge_recent};
    if let Ok(s) = StoredSummary::parse(data) {
        if let Ok(read) = s.read() {
            assert!(read.mentions <= read.unread);
        }
        assert_eq!(StoredSummary::parse(&prost::Message::encode_to_vec(&s)).unwrap(), s);
    }
    if let Ok(r) = StoredRecent::parse(data) {
        let _ = r.summaries();
        let fresh: Vec<Fresh> = r
            .entries
            .iter()
            .filter_map(|e| {
                let s = e.s.clone()?;
                let last = s.read().ok()?.last;
                Some(Fresh::new(e.k.clone(), s, &last, e.n.clone()))
            })
            .collect();
        let merged = merge_recent(Some(r.clone()), fresh);
        assert!(merged.entries.len() <= RECENT_LEN);
        assert!(merged.entries.windows(2).all(|w| w[0].t >= w[1].t), "newest first");
        let mut keys = std::collections::HashSet::new();
        assert!(merged.entries.iter().all(|e| keys.insert(e.k.clone())), "one per chat");
        let again = StoredRecent::parse(&prost::Message::encode_to_vec(&merged)).unwrap();
        assert_eq!(again, merged);
    }
}

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
    for kind in [2u32, 3, 7, 0] {
        if let Ok(kind) = CiphertextMessageType::try_from(kind) {
            let _ = CiphertextMessage::from_bytes(kind, data);
        }
    }
    if let Ok(f) = ClientFrame::from_bytes(data) {
        assert_eq!(ClientFrame::from_bytes(&f.encode_to_vec()).unwrap(), f);
    }
    if let Ok(f) = ServerFrame::from_bytes(data) {
        assert_eq!(ServerFrame::from_bytes(&f.encode_to_vec()).unwrap(), f);
    }
    let _ = IdentityKey::from_bytes(data);
    // Distribution ids as UUID text: what parses prints back as the same id, in lowercase.
    if let Some(text) = std::str::from_utf8(data).ok()
        && let Ok(id) = text.parse::<crate::sender_keys::DistributionId>()
    {
        assert_eq!(id.to_string(), text.to_ascii_lowercase());
        assert_eq!(id.to_string().parse(), Ok(id));
    }
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
    static CODE: std::sync::OnceLock<SecurityCode> = std::sync::OnceLock::new();
    let code = CODE.get_or_init(|| {
        let k = IdentityKeyPair::generate(&mut SeededRng::new(1));
        let view = AccountView {
            account_id: b"fuzz",
            account_key: k.identity_key(),
            device_list_digest: [0; 32],
        };
        SecurityCode::new(view, view).unwrap()
    });
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
    if let Ok(r) = crate::records::AccountRecord::from_bytes(data) {
        assert_eq!(crate::records::AccountRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    if let Ok(r) = crate::records::DeviceListRecord::from_bytes(data) {
        assert_eq!(crate::records::DeviceListRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    if let Ok(r) = crate::records::MessageRecord::from_bytes(data) {
        assert_eq!(crate::records::MessageRecord::from_bytes(&r.to_bytes()).unwrap(), r);
    }
    if let Ok(r) = crate::records::OutboxEntry::from_bytes(data) {
        assert_eq!(crate::records::OutboxEntry::from_bytes(&r.to_bytes()).unwrap(), r);
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
    if let Ok(id) = crate::records::MessageId::from_sort_key(data) {
        assert_eq!(id.sort_key().as_slice(), data);
    }
    let _ = crate::records::conversation_from_bytes(data);
}

struct Party {
    store: MemoryStore,
    address: ProtocolAddress,
    /// The next prekey id this party publishes.
    next_key: std::cell::Cell<u32>,
}

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);
/// Most messages sent in one run: beyond the skipped keys a receiver keeps per chain
/// (2 000), a genuine late message may rightly fail.
const MAX_SENT: u32 = 1_500;
/// Most session restarts (new bundles) per run: well inside the 40 archived states kept.
const MAX_RESETS: u32 = 30;

fn fresh_bundle(p: &Party, rng: &mut SeededRng) -> PreKeyBundle {
    let id = p.next_key.get();
    p.next_key.set(id + 1);
    now_or_never(super::publish_bundle(
        &p.store,
        p.address.device_id(),
        id,
        (!id.is_multiple_of(3), id.is_multiple_of(5)),
        NOW,
        rng,
    ))
}

fn start_session(from: &Party, to: &Party, rng: &mut SeededRng) {
    let b = fresh_bundle(to, rng);
    let changes =
        now_or_never(session::process_prekey_bundle(&from.store, &to.address, &b, NOW, rng))
            .unwrap();
    now_or_never(from.store.save_changes(changes)).unwrap();
}

/// An arbitrary schedule between three parties, driven by `data` (see the fuzz target): two
/// bytes per step, the first picking the operation and the direction (one of six between
/// Alice, Bob and Carol), the second its argument. Operations: send (starting a session from
/// a fresh bundle when there is none, so both sides may start at once), deliver a message in
/// flight (in any order, again, or with one bit flipped), lose one, start over from a new
/// bundle, and restart the receiver from its stored session bytes. Every genuine message
/// decrypts exactly once where it is first delivered, to what was sent; nothing else does.
pub fn session_interaction(data: &[u8]) {
    use crate::store::SessionStore;
    let mut rng = SeededRng::new(data.len() as u64);
    let make = |name: &str, rng: &mut SeededRng| {
        let identity = IdentityKeyPair::generate(rng);
        Party {
            store: MemoryStore::new(identity, 7),
            address: ProtocolAddress::new(name, DeviceId::PRIMARY),
            next_key: std::cell::Cell::new(1),
        }
    };
    let parties = [make("alice", &mut rng), make("bob", &mut rng), make("carol", &mut rng)];
    const PAIRS: [(usize, usize); 6] = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)];
    let mut resets = 0;
    // Per direction: (plaintext, message, delivered).
    let mut flight: [Vec<(Vec<u8>, CiphertextMessage, bool)>; 6] = Default::default();
    let mut bytes = data.iter().copied();
    let mut sent = 0u32;
    while let Some(op) = bytes.next() {
        let dir = usize::from(op % 6);
        let (from, to) = (&parties[PAIRS[dir].0], &parties[PAIRS[dir].1]);
        let arg = usize::from(bytes.next().unwrap_or(0));
        match (op / 6) % 7 {
            0 | 1 if sent < MAX_SENT => {
                sent += 1;
                if now_or_never(from.store.load_session(&to.address)).unwrap().is_none() {
                    start_session(from, to, &mut rng);
                }
                let text = sent.to_le_bytes().to_vec();
                let (m, changes) =
                    now_or_never(session::message_encrypt(&from.store, &to.address, &text, NOW))
                        .unwrap()
                        .into_parts();
                now_or_never(from.store.save_changes(changes)).unwrap();
                flight[dir].push((text, m, false));
            }
            2 | 3 if !flight[dir].is_empty() => {
                let n = flight[dir].len();
                let (text, m, done) = &mut flight[dir][arg % n];
                let tamper = (op / 6) % 7 == 3;
                let msg = if tamper {
                    let mut b = m.serialized().to_vec();
                    let i = arg % b.len();
                    b[i] ^= 1 << (arg % 8);
                    match CiphertextMessage::from_bytes(m.message_type(), &b) {
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
                    }
                    Err(e) => assert!(tamper || *done, "a genuine first delivery failed: {e}"),
                }
            }
            4 => {
                if let Some(pos) = flight[dir].iter().position(|(_, _, d)| !d) {
                    flight[dir].remove(pos);
                }
            }
            5 if resets < MAX_RESETS => {
                resets += 1;
                start_session(from, to, &mut rng);
            }
            6 => {
                // The receiver restarts: its session comes back from its stored bytes (in
                // the detached form the browser keeps), and carries on.
                if let Some(record) = now_or_never(to.store.load_session(&from.address)).unwrap() {
                    let (bytes, detached) = record.to_detached_bytes();
                    let back =
                        SessionRecord::from_detached_bytes(&bytes, detached.as_ref()).unwrap();
                    assert_eq!(back.to_bytes(), record.to_bytes());
                    let mut changes = crate::store::Changes::default();
                    changes.sessions.insert(from.address.clone(), back);
                    now_or_never(to.store.save_changes(changes)).unwrap();
                }
            }
            _ => {}
        }
    }
}

/// Call media and signalling as the network or a peer could send them: an SFrame header
/// that parses re-encodes to the same bytes; a received frame opens or is refused (never a
/// panic), and a frame the real sender makes of the input opens to the input; a call book
/// fed arbitrary call messages from this account, the peer and a stranger keeps its bounds.
pub fn call_frames(data: &[u8]) {
    use crate::calls::sframe::Header;
    use crate::calls::{CallBook, CallSecret, FrameCrypter, MediaKind, Role};
    use crate::wire::content::CallMessage;
    use prost::Message;

    if let Ok((header, len)) = Header::decode(data) {
        let mut again = Vec::new();
        header.encode(&mut again);
        assert_eq!(again, data[..len]);
    }
    let Some((&flags, rest)) = data.split_first() else { return };
    let kind = if flags & 1 == 0 { MediaKind::Audio } else { MediaKind::Video };
    let key_frame = flags & 2 != 0;
    let secret = CallSecret([7; 32]);
    let mut callee = FrameCrypter::new(&secret, Role::Callee);
    let _ = callee.unprotect(kind, key_frame, rest);
    // The media worker's way: plans from a frame's length and its first bytes only (any
    // length and head the page passes), never a panic.
    let head = &rest[..rest.len().min(crate::calls::PLAN_HEAD)];
    let claimed = usize::from(flags >> 2) * 97;
    for len in [rest.len(), claimed] {
        if let Ok(plans) = callee.open_plans(kind, key_frame, len, head) {
            assert!(!plans.is_empty() && plans.len() <= 2);
            assert!(plans.iter().all(|p| p.body_start() <= len));
        }
    }
    let mut caller = FrameCrypter::new(&secret, Role::Caller);
    let _ = caller.seal_plan(kind, key_frame, claimed, head);
    let mut caller = FrameCrypter::new(&secret, Role::Caller);
    let Ok(sent) = caller.protect(kind, key_frame, rest) else { return };
    assert_eq!(callee.unprotect(kind, key_frame, &sent).unwrap(), rest);

    // Call messages: [who, device, length, message bytes…]…
    let me = crate::AccountId([1; 16]);
    let peer = crate::AccountId([2; 16]);
    let stranger = crate::AccountId([3; 16]);
    let mut book = CallBook::new(me, DeviceId::PRIMARY);
    let mut now = Timestamp::from_millis(1_800_000_000_000);
    let mut input = rest;
    while let [who, device, len, tail @ ..] = input {
        let len = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        input = next;
        let Ok(message) = CallMessage::decode(bytes) else { continue };
        let sender = [me, peer, stranger][usize::from(*who % 3)];
        let Ok(device) = DeviceId::new(u32::from(*device % 4) + 1) else { continue };
        let effects = book.receive(sender, device, &message, now);
        assert!(
            effects.updates.len() <= 3 && effects.sends.len() <= 2 && effects.records.len() <= 1
        );
        now = now.saturating_add(std::time::Duration::from_secs(u64::from(*who)));
        let _ = book.tick(now);
    }
    assert!(book.current().is_none(), "only a local action makes this device take part");
}

/// Blobs on arbitrary bytes: opened as a whole or as a stream under a fixed key, no panic;
/// what opens is exactly what sealing its plaintext gives (the format has one encoding);
/// sealed, any bytes open to themselves.
pub fn blob_open(data: &[u8]) {
    use crate::blob::{BlobDigest, BlobKey, Opener, SEALED_CHUNK_LEN, open, seal};
    use sha2::Digest as _;
    let key = BlobKey::from_bytes(&[7; 32]).expect("32 bytes");
    let digest = BlobDigest(sha2::Sha256::digest(data).into());
    if let Ok(plain) = open(&key, &digest, data) {
        assert_eq!(seal(&key, &plain).expect("seals"), (data.to_vec(), digest));
    }
    // As a stream, cut where the first byte says (the reader must cope with any cut).
    let cut = usize::from(data.first().copied().unwrap_or(0)).max(1) * 300;
    let mut opener = Opener::new(&key, digest);
    let mut rest = data;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(cut.min(SEALED_CHUNK_LEN)));
        if opener.open_chunk(chunk, tail.is_empty()).is_err() {
            break;
        }
        rest = tail;
    }
    let (sealed, d) = seal(&key, data).expect("seals");
    assert_eq!(open(&key, &d, &sealed).expect("opens"), data);
}

//! Browser benchmarks of the IndexedDB store, in headless Chromium (`scripts/bench-browser`,
//! built only with the `bench` feature): a 1 000-device fan-out with and without durable
//! persistence, importing 10 000 messages, and opening a device with 10 000 stored messages
//! and 1 000 sessions. Results are recorded in BENCHMARKS.md.
#![cfg(all(target_family = "wasm", feature = "bench"))]

use tandem_core::client::{Conversation, MessageId, MessageRecord, OutgoingState};
use tandem_core::session::{message_encrypt, process_prekey_bundle};
use tandem_core::store::{Changes, ClientChanges, ClientStore, MemoryStore, ProtocolStore};
use tandem_core::testing::{SeededRng, publish_bundle};
use tandem_core::{AccountId, DeviceId, IdentityKeyPair, ProtocolAddress, Timestamp};
use tandem_web::store::IdbStore;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const DEVICES: u32 = 1_000;
const MESSAGES: u64 = 10_000;

fn ms() -> f64 {
    js_sys::Date::now()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn tag() -> String {
    tandem_web::rng::random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect()
}

/// One fan-out: encrypt for every address, then save every changed session in one batch.
async fn fan_out<S: ProtocolStore>(store: &S, targets: &[ProtocolAddress], body: &[u8]) {
    let mut changes = Changes::default();
    for t in targets {
        let (m, c) = message_encrypt(store, t, body, NOW).await.expect("encrypt").into_parts();
        changes.merge(c);
        std::hint::black_box(m);
    }
    store.save_changes(changes).await.expect("save");
}

#[wasm_bindgen_test]
async fn bench_fan_out_import_and_open() {
    let mut rng = SeededRng::new(7);
    let identity = IdentityKeyPair::generate(&mut rng);
    let name = format!("tandem-bench-{}", tag());
    let idb = IdbStore::create(&name, identity.clone(), 1).await.expect("idb");
    let memory = MemoryStore::new(identity, 1);

    // 1 000 sessions in both stores.
    let start = ms();
    let mut targets = Vec::new();
    let mut setup = Changes::default();
    for i in 0..DEVICES {
        let peer = MemoryStore::new(IdentityKeyPair::generate(&mut rng), i + 1);
        let device = DeviceId::new(i % 100 + 1).expect("device");
        let address = ProtocolAddress::new(format!("peer{}", i / 100), device);
        let bundle = publish_bundle(&peer, device, i + 1, (true, false), NOW, &mut rng).await;
        let c = process_prekey_bundle(&memory, &address, &bundle, NOW, &mut rng)
            .await
            .expect("session");
        setup.merge(c.clone());
        memory.save_changes(c).await.expect("save");
        targets.push(address);
    }
    idb.save_changes(setup).await.expect("save sessions");
    console_log!("setup: {DEVICES} sessions in {:.0} ms", ms() - start);

    let body = vec![7u8; 200];
    let (mut with_idb, mut without) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = ms();
        fan_out(&memory, &targets, &body).await;
        without.push(ms() - t);
        let t = ms();
        fan_out(&idb, &targets, &body).await;
        with_idb.push(ms() - t);
    }
    // Where the difference goes: encoding the changed sessions.
    let mut encode = Vec::new();
    let mut log_bytes = 0;
    for _ in 0..5 {
        let mut changes = Changes::default();
        for t in &targets {
            let (_, c) =
                message_encrypt(&memory, t, &body, NOW).await.expect("encrypt").into_parts();
            changes.merge(c);
        }
        let t = ms();
        let entry = tandem_core::store::SessionLogEntry {
            items: changes
                .sessions
                .iter()
                .map(|(a, r)| (a.clone(), Some(r.to_detached_bytes().0)))
                .collect(),
        };
        let bytes = entry.to_bytes();
        let js = js_sys::Uint8Array::from(bytes.as_slice());
        encode.push(ms() - t);
        log_bytes = bytes.len();
        std::hint::black_box(js);
        memory.save_changes(changes).await.expect("save");
    }
    console_log!(
        "  of which encoding {DEVICES} session records into one {log_bytes}-byte log entry: {:.1} ms",
        median(encode)
    );
    let (m, i) = (median(without), median(with_idb));
    console_log!(
        "fan-out to {DEVICES} devices: memory {m:.0} ms, IndexedDB (one transaction) {i:.0} ms, ratio {:.2}",
        i / m
    );

    // Folding the session log (setup + 5 fan-outs) back into per-session records.
    let t = ms();
    let folded = idb.compact_sessions().await.expect("compact");
    console_log!("compaction: {folded} sessions folded back in {:.0} ms", ms() - t);

    // Sealing alone: 1 000 values of a chat line's size, as one import batch seals them.
    {
        use tandem_web::store::seal::Ring;
        let (ring, _) = Ring::generate().await.expect("a data key");
        let Ring::Open { key, .. } = ring else { panic!("a fresh ring is open") };
        let items: Vec<_> = (0..1_000u32)
            .map(|i| (i.to_be_bytes().to_vec(), zeroize::Zeroizing::new(vec![7u8; 160])))
            .collect();
        let mut seals = Vec::new();
        for _ in 0..5 {
            let t = ms();
            let sealed = key.seal_all(&items).await.expect("seal");
            seals.push(ms() - t);
            assert_eq!(sealed.len(), 1_000);
        }
        console_log!("sealing 1000 values of 160 bytes with WebCrypto: {:.1} ms", median(seals));
    }

    // Import 10 000 messages in batches of 1 000 (one transaction each).
    let peer = AccountId([9; 16]);
    let conversation = Conversation::Direct(peer);
    let t = ms();
    for batch in 0..MESSAGES / 1_000 {
        let mut c = ClientChanges::default();
        for n in 0..1_000 {
            let k = batch * 1_000 + n;
            let id = MessageId {
                sender: peer,
                device: DeviceId::PRIMARY,
                timestamp: NOW.as_millis() + k,
            };
            c.messages.insert(
                id,
                MessageRecord {
                    id,
                    conversation,
                    body: format!(
                        "imported message number {k}, about as long as a short chat line"
                    ),
                    outgoing: false,
                    state: OutgoingState::Sent,
                    stored_at: NOW,
                    delivered_to: Default::default(),
                    read_by: Default::default(),
                    server_time: None,
                    notice: None,
                    local_id: None,
                    quote: None,
                    audience: 0,
                },
            );
        }
        idb.save_client_changes(c).await.expect("import");
    }
    let took = ms() - t;
    #[allow(clippy::cast_precision_loss, reason = "a small count")]
    let rate = MESSAGES as f64 / (took / 1000.0);
    console_log!("import {MESSAGES} messages: {took:.0} ms, {rate:.0} messages/s");

    // Opening the device: the store, the chat list and the newest page of a conversation.
    idb.close();
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = ms();
        let store = IdbStore::open(&name).await.expect("open").expect("exists");
        let chats = store.conversations().await.expect("chats");
        let page = store.load_messages(&conversation, 200).await.expect("page");
        opens.push(ms() - t);
        assert_eq!((chats.len(), page.len()), (1, 200));
        store.close();
    }
    console_log!(
        "open with {MESSAGES} messages and {DEVICES} sessions (chat list + newest 200): {:.0} ms",
        median(opens)
    );
}

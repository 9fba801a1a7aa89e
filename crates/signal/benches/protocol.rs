//! Protocol benchmarks: `cargo bench -p tandem-signal --bench protocol`.
//!
//! A small self-timing harness (no criterion, to keep CI builds light): each case runs a
//! warm-up, then enough iterations for about a second, and prints the median of 5 rounds.
//! Results are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tandem_signal::prekeys::{KyberPreKeyId, KyberPreKeyRecord, PreKeyBundle};
use tandem_signal::sender_keys::{self, DistributionId};
use tandem_signal::session::{message_decrypt, message_encrypt, process_prekey_bundle};
use tandem_signal::store::{MemoryStore, ProtocolStore};
use tandem_signal::testing::{SeededRng, now_or_never, publish_bundle};
use tandem_signal::{DeviceId, IdentityKeyPair, ProtocolAddress, Timestamp};

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn bench(name: &str, mut f: impl FnMut()) {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut calibrate = 0u32;
    while start.elapsed() < Duration::from_millis(200) {
        f();
        calibrate += 1;
    }
    let iters = (calibrate * 5).max(5);
    let mut rounds: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters / 5 {
                f();
            }
            t.elapsed().as_secs_f64() / f64::from((iters / 5).max(1))
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    let median = rounds[2];
    let (value, unit) = if median >= 1e-3 { (median * 1e3, "ms") } else { (median * 1e6, "µs") };
    println!("{name:<52} {value:>10.2} {unit}/op");
}

struct Device {
    store: MemoryStore,
    address: ProtocolAddress,
}

fn device(name: &str, id: u32, rng: &mut SeededRng) -> Device {
    let identity = IdentityKeyPair::generate(rng);
    Device {
        store: MemoryStore::new(identity, 1),
        address: ProtocolAddress::new(name, DeviceId::new(id).unwrap()),
    }
}

fn bundle(d: &Device, id: u32, rng: &mut SeededRng) -> PreKeyBundle {
    now_or_never(publish_bundle(&d.store, d.address.device_id(), id, (true, false), NOW, rng))
}

fn main() {
    let mut rng = SeededRng::new(1);
    println!("tandem-core protocol benchmarks (median of 5 rounds)");

    bench("keys: Kyber1024 prekey generation (+ XEdDSA signature)", || {
        let id = IdentityKeyPair::generate(&mut rng);
        black_box(KyberPreKeyRecord::generate(KyberPreKeyId(1), &id, NOW, false, &mut rng));
    });

    let mut counter = 0u32;
    bench("session: PQXDH setup + first PreKey message decrypted", || {
        counter += 1;
        let a = device("a", 1, &mut rng);
        let b = device("b", 1, &mut rng);
        let bb = bundle(&b, counter, &mut rng);
        let c =
            now_or_never(process_prekey_bundle(&a.store, &b.address, &bb, NOW, &mut rng)).unwrap();
        now_or_never(a.store.save_changes(c)).unwrap();
        let (m, c) = now_or_never(message_encrypt(&a.store, &b.address, b"hello", NOW))
            .unwrap()
            .into_parts();
        now_or_never(a.store.save_changes(c)).unwrap();
        let _decrypted =
            black_box(now_or_never(message_decrypt(&b.store, &a.address, &m, &mut rng)).unwrap());
    });

    let a = device("a", 1, &mut rng);
    let b = device("b", 1, &mut rng);
    let bb = bundle(&b, 1, &mut rng);
    let c = now_or_never(process_prekey_bundle(&a.store, &b.address, &bb, NOW, &mut rng)).unwrap();
    now_or_never(a.store.save_changes(c)).unwrap();
    let msg = vec![0x42u8; 200];
    bench("session: encrypt + decrypt 200 B, same direction", || {
        let (m, c) =
            now_or_never(message_encrypt(&a.store, &b.address, &msg, NOW)).unwrap().into_parts();
        now_or_never(a.store.save_changes(c)).unwrap();
        let (p, c) = now_or_never(message_decrypt(&b.store, &a.address, &m, &mut rng)).unwrap();
        now_or_never(b.store.save_changes(c)).unwrap();
        black_box(p);
    });
    bench("session: ping-pong 200 B (DH ratchet step each way)", || {
        let (m, c) =
            now_or_never(message_encrypt(&a.store, &b.address, &msg, NOW)).unwrap().into_parts();
        now_or_never(a.store.save_changes(c)).unwrap();
        let (_, c) = now_or_never(message_decrypt(&b.store, &a.address, &m, &mut rng)).unwrap();
        now_or_never(b.store.save_changes(c)).unwrap();
        let (m, c) =
            now_or_never(message_encrypt(&b.store, &a.address, &msg, NOW)).unwrap().into_parts();
        now_or_never(b.store.save_changes(c)).unwrap();
        let (p, c) = now_or_never(message_decrypt(&a.store, &b.address, &m, &mut rng)).unwrap();
        now_or_never(a.store.save_changes(c)).unwrap();
        black_box(p);
    });

    // Client fan-out: one message to 2 contacts × 5 devices + 4 own companions.
    let sender = device("s", 1, &mut rng);
    let targets: Vec<Device> =
        (0..14u32).map(|i| device(&format!("t{}", i / 5), i % 5 + 1, &mut rng)).collect();
    for (i, t) in targets.iter().enumerate() {
        let tb = bundle(t, 100 + u32::try_from(i).unwrap(), &mut rng);
        let c = now_or_never(process_prekey_bundle(&sender.store, &t.address, &tb, NOW, &mut rng))
            .unwrap();
        now_or_never(sender.store.save_changes(c)).unwrap();
    }
    bench("fan-out: encrypt 200 B for 14 devices", || {
        for t in &targets {
            let (m, c) = now_or_never(message_encrypt(&sender.store, &t.address, &msg, NOW))
                .unwrap()
                .into_parts();
            now_or_never(sender.store.save_changes(c)).unwrap();
            black_box(m);
        }
    });

    let group = DistributionId::random(&mut rng);
    let (skdm, c) = now_or_never(sender_keys::create_sender_key_distribution_message(
        &sender.store,
        &sender.address,
        group,
        &mut rng,
    ))
    .unwrap();
    now_or_never(sender.store.save_changes(c)).unwrap();
    let member = &targets[0];
    let c = now_or_never(sender_keys::process_sender_key_distribution_message(
        &member.store,
        &sender.address,
        &skdm,
    ))
    .unwrap();
    now_or_never(member.store.save_changes(c)).unwrap();
    bench("group: sender-key encrypt + decrypt 200 B", || {
        let (m, c) = now_or_never(sender_keys::group_encrypt(
            &sender.store,
            &sender.address,
            group,
            &msg,
            &mut rng,
        ))
        .unwrap()
        .into_parts();
        now_or_never(sender.store.save_changes(c)).unwrap();
        let (p, c) =
            now_or_never(sender_keys::group_decrypt(&member.store, &sender.address, &m)).unwrap();
        now_or_never(member.store.save_changes(c)).unwrap();
        black_box(p);
    });

    let record =
        now_or_never(tandem_signal::store::SessionStore::load_session(&a.store, &b.address))
            .unwrap()
            .unwrap();
    bench("storage: session record serialize + parse", || {
        let bytes = record.to_bytes();
        black_box(tandem_signal::session::SessionRecord::from_bytes(&bytes).unwrap());
    });
}

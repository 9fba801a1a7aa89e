//! Tandem's half of the side-by-side protocol benchmark (`scripts/bench-protocol`; libsignal's
//! half is `tests/interop/bench-libsignal.mjs`, the same cases in the same order): one sender
//! and N devices in memory, with the app's randomness (WebCrypto's `getRandomValues`).
//! Cases: `setup` (PQXDH from a bundle), `prekey_decrypt` (the first message, as responder),
//! `fan_out` (encrypt on established sessions), `decrypt_new_chain` (the first message after a
//! reply: one DH ratchet step), `decrypt_steady` (the next on that chain), `sender_key_encrypt`.
//! Prints one `SIDE_BY_SIDE {json}` line: microseconds per operation, the median of the rounds.
#![cfg(all(target_family = "wasm", feature = "bench"))]

use tandem_core::sender_keys::{
    DistributionId, create_sender_key_distribution_message, group_encrypt,
};
use tandem_core::session::{message_decrypt, message_encrypt, process_prekey_bundle};
use tandem_core::store::{MemoryStore, ProtocolStore};
use tandem_core::testing::publish_bundle;
use tandem_core::wire::signal::CiphertextMessage;
use tandem_core::{DeviceId, IdentityKeyPair, ProtocolAddress, Timestamp};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const DEVICES: u32 = 1_000;
const ROUNDS: usize = 3;

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or_else(js_sys::Date::now, |p| p.now())
}

/// Microseconds per operation since `t0` for `n` operations.
fn us(t0: f64, n: u32) -> f64 {
    (now_ms() - t0) * 1000.0 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Device {
    store: MemoryStore,
    address: ProtocolAddress,
}

/// The sender encrypts `body` for every device, each encryption saved before the next.
async fn encrypt_to_all(sender: &Device, peers: &[Device], body: &[u8]) -> Vec<CiphertextMessage> {
    let mut out = Vec::with_capacity(peers.len());
    for p in peers {
        let encrypted =
            message_encrypt(&sender.store, &p.address, body, NOW).await.expect("encrypt");
        out.push(encrypted.save(&sender.store).await.expect("save"));
    }
    out
}

/// Each device decrypts its message from the sender and saves the step.
async fn decrypt_at_each(sender: &Device, peers: &[Device], messages: &[CiphertextMessage]) {
    let mut rng = tandem_web::rng::system_rng();
    for (p, m) in peers.iter().zip(messages) {
        let (_, changes) =
            message_decrypt(&p.store, &sender.address, m, &mut rng).await.expect("decrypt");
        p.store.save_changes(changes).await.expect("save");
    }
}

async fn round() -> Vec<(&'static str, f64)> {
    let mut rng = tandem_web::rng::system_rng();
    let sender = Device {
        store: MemoryStore::new(IdentityKeyPair::generate(&mut rng), 1),
        address: ProtocolAddress::new("sender", DeviceId::PRIMARY),
    };
    let mut peers = Vec::new();
    let mut bundles = Vec::new();
    for i in 0..DEVICES {
        let store = MemoryStore::new(IdentityKeyPair::generate(&mut rng), i + 2);
        bundles
            .push(publish_bundle(&store, DeviceId::PRIMARY, 1, (true, false), NOW, &mut rng).await);
        peers.push(Device {
            store,
            address: ProtocolAddress::new(format!("peer{i}"), DeviceId::PRIMARY),
        });
    }
    let s = &sender.store;
    let mut out = Vec::new();

    let t0 = now_ms();
    for (p, bundle) in peers.iter().zip(&bundles) {
        let changes =
            process_prekey_bundle(s, &p.address, bundle, NOW, &mut rng).await.expect("setup");
        s.save_changes(changes).await.expect("save");
    }
    out.push(("setup", us(t0, DEVICES)));

    let first = encrypt_to_all(&sender, &peers, b"hello").await;
    let t0 = now_ms();
    decrypt_at_each(&sender, &peers, &first).await;
    out.push(("prekey_decrypt", us(t0, DEVICES)));

    // Each device answers once, so the sender's sessions are established (Whisper messages).
    for p in &peers {
        let reply = message_encrypt(&p.store, &sender.address, b"hi", NOW).await.expect("reply");
        let reply = reply.save(&p.store).await.expect("save");
        let (_, changes) =
            message_decrypt(s, &p.address, &reply, &mut rng).await.expect("decrypt reply");
        s.save_changes(changes).await.expect("save");
    }
    let body = [7u8; 200];
    let t0 = now_ms();
    let copies = encrypt_to_all(&sender, &peers, &body).await;
    out.push(("fan_out", us(t0, DEVICES)));

    let t0 = now_ms();
    decrypt_at_each(&sender, &peers, &copies).await;
    out.push(("decrypt_new_chain", us(t0, DEVICES)));

    // A second message on the same chain: the steady case, no ratchet step.
    let again = encrypt_to_all(&sender, &peers, &body).await;
    let t0 = now_ms();
    decrypt_at_each(&sender, &peers, &again).await;
    out.push(("decrypt_steady", us(t0, DEVICES)));

    let distribution = DistributionId::random(&mut rng);
    let (_, changes) =
        create_sender_key_distribution_message(s, &sender.address, distribution, &mut rng)
            .await
            .expect("sender key");
    s.save_changes(changes).await.expect("save");
    let t0 = now_ms();
    for _ in 0..DEVICES {
        let encrypted =
            group_encrypt(s, &sender.address, distribution, &body, &mut rng).await.expect("group");
        std::hint::black_box(encrypted.save(s).await.expect("save"));
    }
    out.push(("sender_key_encrypt", us(t0, DEVICES)));
    out
}

/// Where setup and PreKey decrypt spend: each primitive alone, microseconds per call.
fn primitives() -> Vec<(&'static str, f64)> {
    use tandem_core::crypto::{KeyPair, KyberKeyPair};
    const N: u32 = 300;
    let mut rng = tandem_web::rng::system_rng();
    let a = KeyPair::generate(&mut rng);
    let b = KeyPair::generate(&mut rng);
    let kyber = KyberKeyPair::generate(&mut rng);
    let signature = a.private_key.sign(&[5; 33], &mut rng);
    let (ciphertext, _) = kyber.public_key.encapsulate(&mut rng);
    let mut out = Vec::new();
    let t0 = now_ms();
    for _ in 0..N {
        std::hint::black_box(KeyPair::generate(&mut rng));
    }
    out.push(("x25519_generate", us(t0, N)));
    let t0 = now_ms();
    for _ in 0..N {
        std::hint::black_box(a.private_key.agree(&b.public_key).expect("agree"));
    }
    out.push(("x25519_agree", us(t0, N)));
    let t0 = now_ms();
    for _ in 0..N {
        std::hint::black_box(a.private_key.sign(&[5; 33], &mut rng));
    }
    out.push(("xeddsa_sign", us(t0, N)));
    let t0 = now_ms();
    for _ in 0..N {
        a.public_key.verify_signature(&[5; 33], &signature).expect("verify");
    }
    out.push(("xeddsa_verify", us(t0, N)));
    let t0 = now_ms();
    for _ in 0..N {
        assert!(b.public_key.is_canonical_and_torsion_free());
    }
    out.push(("torsion_check", us(t0, N)));
    let t0 = now_ms();
    for _ in 0..N {
        std::hint::black_box(kyber.public_key.encapsulate(&mut rng));
    }
    out.push(("kyber1024_encapsulate", us(t0, N)));
    let t0 = now_ms();
    for _ in 0..N {
        std::hint::black_box(kyber.secret_key.decapsulate(&ciphertext));
    }
    out.push(("kyber1024_decapsulate", us(t0, N)));
    let t0 = now_ms();
    for _ in 0..N {
        std::hint::black_box(KyberKeyPair::generate(&mut rng));
    }
    out.push(("kyber1024_generate", us(t0, N)));
    out
}

#[wasm_bindgen_test]
async fn bench_protocol_side_by_side() {
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        rounds.push(round().await);
    }
    // Measured after the rounds, when the engine has compiled every hot function with its
    // optimising tier; the better of two passes.
    let (first, second) = (primitives(), primitives());
    let parts: Vec<String> = first
        .iter()
        .zip(&second)
        .map(|((name, a), (_, b))| format!("{name} {:.1} µs", a.min(*b)))
        .collect();
    console_log!("primitives (wasm): {}", parts.join(", "));
    let cases: Vec<String> = rounds[0]
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let v = median(rounds.iter().map(|r| r[i].1).collect());
            format!("\"{name}\":{v:.1}")
        })
        .collect();
    console_log!(
        "SIDE_BY_SIDE {{\"impl\":\"tandem-wasm\",\"devices\":{DEVICES},\"rounds\":{ROUNDS},\"us_per_op\":{{{}}}}}",
        cases.join(",")
    );
}

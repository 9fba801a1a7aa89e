//! tandem-core's crypto stack compiled to wasm draws fresh randomness in the browser.
#![cfg(target_family = "wasm")]

use tandem_core::crypto::{KeyPair, KyberKeyPair, aes256_gcm_open, aes256_gcm_seal, hkdf_sha256};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn test_every_primitive_gets_fresh_randomness() {
    let mut rng = tandem_web::rng::system_rng();

    let raw_a = tandem_web::rng::random_bytes::<32>();
    let raw_b = tandem_web::rng::random_bytes::<32>();
    assert_ne!(raw_a, raw_b);

    let x1 = KeyPair::generate(&mut rng);
    let x2 = KeyPair::generate(&mut rng);
    assert_ne!(x1.public_key, x2.public_key, "curve25519 keys differ");

    let s1 = x1.private_key.sign(b"same message", &mut rng);
    let s2 = x1.private_key.sign(b"same message", &mut rng);
    assert_ne!(s1, s2, "XEdDSA signatures are randomized");
    x1.public_key.verify_signature(b"same message", &s1).unwrap();
    x1.public_key.verify_signature(b"same message", &s2).unwrap();

    let shared_a = x1.private_key.agree(&x2.public_key).unwrap();
    let shared_b = x2.private_key.agree(&x1.public_key).unwrap();
    assert_eq!(shared_a.as_bytes(), shared_b.as_bytes());

    let k1 = KyberKeyPair::generate(&mut rng);
    let k2 = KyberKeyPair::generate(&mut rng);
    assert_ne!(k1.public_key, k2.public_key, "kyber keys differ");
    let (ct1, ss1) = k1.public_key.encapsulate(&mut rng);
    let (ct2, ss2) = k1.public_key.encapsulate(&mut rng);
    assert_ne!(ct1, ct2, "kyber encapsulations differ");
    assert_ne!(ss1, ss2);
    assert_eq!(k1.secret_key.decapsulate(&ct1), ss1);

    let mut okm1 = [0u8; 32];
    let mut okm2 = [0u8; 32];
    hkdf_sha256(None, &raw_a, b"test", &mut okm1).unwrap();
    hkdf_sha256(None, &raw_b, b"test", &mut okm2).unwrap();
    assert_ne!(okm1, okm2);
    let nonce1 = tandem_web::rng::random_bytes::<12>();
    let nonce2 = tandem_web::rng::random_bytes::<12>();
    assert_ne!(nonce1, nonce2);
    let c1 = aes256_gcm_seal(&okm1, &nonce1, b"", b"hello");
    let c2 = aes256_gcm_seal(&okm1, &nonce2, b"", b"hello");
    assert_ne!(c1, c2);
    assert_eq!(aes256_gcm_open(&okm1, &nonce1, b"", &c1).unwrap(), b"hello");
}

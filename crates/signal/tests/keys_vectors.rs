//! libsignal 0.90 key vectors: serialization, X25519 agreement, XEdDSA verification.

use serde_json::Value;
use tandem_signal::crypto::{KyberKeyPair, KyberPublicKey, KyberSecretKey, PrivateKey, PublicKey};

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/libsignal-0.90/keys.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read keys.json")).expect("json")
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

#[test]
fn test_private_keys_clamp_and_derive_public_like_libsignal() {
    let v = vectors();
    let keys = v["curve25519_keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    for k in keys {
        let private = PrivateKey::from_bytes(&hex(&k["private_input"])).unwrap();
        assert_eq!(private.serialize().to_vec(), hex(&k["private_serialized"]));
        assert_eq!(private.public_key().serialize().to_vec(), hex(&k["public_serialized"]));
    }
}

#[test]
fn test_x25519_agreements_match_libsignal() {
    let v = vectors();
    for a in v["x25519_agreements"].as_array().unwrap() {
        let private = PrivateKey::from_bytes(&hex(&a["private"])).unwrap();
        let public = PublicKey::from_bytes(&hex(&a["public"])).unwrap();
        let shared = private.agree(&public).unwrap();
        assert_eq!(shared.as_bytes().to_vec(), hex(&a["shared_secret"]));
    }
}

#[test]
fn test_xeddsa_verification_matches_libsignal() {
    let v = vectors();
    let sigs = v["xeddsa_signatures"].as_array().unwrap();
    assert_eq!(sigs.iter().filter(|s| s["valid"] == true).count(), 4);
    for s in sigs {
        let public = PublicKey::from_bytes(&hex(&s["public"])).unwrap();
        let ok = public.verify_signature(&hex(&s["message"]), &hex(&s["signature"])).is_ok();
        assert_eq!(ok, s["valid"].as_bool().unwrap(), "signature {}", s["signature"]);
    }
}

#[test]
fn test_kyber_pair_from_libsignal_parses_and_works() {
    let v = vectors();
    let k = &v["kyber1024_key_pair"];
    let public_bytes = hex(&k["public"]);
    let public = KyberPublicKey::from_bytes(&public_bytes).unwrap();
    let secret = KyberSecretKey::from_bytes(&hex(&k["secret"])).unwrap();
    assert_eq!(public.serialize(), public_bytes);
    // Kyber's secret key embeds the public key right after the 1536-byte CPA secret.
    assert_eq!(&secret.serialize()[1 + 1536..1 + 1536 + 1568], &public_bytes[1..]);
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(11);
    let (ct, ss) = public.encapsulate(&mut rng);
    assert_eq!(secret.decapsulate(&ct), ss);
    let fresh = KyberKeyPair::generate(&mut rng);
    assert_ne!(fresh.public_key, public);
}

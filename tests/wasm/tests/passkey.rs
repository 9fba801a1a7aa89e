//! The passkey assertion check, in the browser (it parses clientDataJSON with the browser's
//! JSON): a good assertion passes; each tampered part is refused with its reason.

use base64ct::{Base64UrlUnpadded, Encoding};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};
use tandem_web::passkey::{Passkey, PasskeyError, check_assertion};
use wasm_bindgen_test::wasm_bindgen_test;

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const RP: &str = "localhost";
const ORIGIN: &str = "http://localhost:8080";
const CHALLENGE: [u8; 32] = [7; 32];

struct Parts {
    key: SigningKey,
    passkey: Passkey,
}

fn parts() -> Parts {
    let key = SigningKey::from_slice(&[0x42; 32]).unwrap();
    let point = key.verifying_key().to_encoded_point(false);
    Parts {
        passkey: Passkey { credential_id: vec![1, 2, 3], public_key: point.as_bytes().to_vec() },
        key,
    }
}

fn auth_data(rp: &str, flags: u8) -> Vec<u8> {
    let mut d = Sha256::digest(rp.as_bytes()).to_vec();
    d.push(flags);
    d.extend_from_slice(&1u32.to_be_bytes());
    d
}

fn client_data(kind: &str, origin: &str, challenge: &[u8]) -> Vec<u8> {
    format!(
        r#"{{"type":"{kind}","challenge":"{}","origin":"{origin}","crossOrigin":false}}"#,
        Base64UrlUnpadded::encode_string(challenge)
    )
    .into_bytes()
}

fn sign(key: &SigningKey, auth: &[u8], client: &[u8]) -> Vec<u8> {
    let mut signed = auth.to_vec();
    signed.extend_from_slice(&Sha256::digest(client));
    let s: Signature = key.sign(&signed);
    s.to_der().as_bytes().to_vec()
}

fn check(p: &Parts, auth: &[u8], client: &[u8], sig: &[u8]) -> Result<(), PasskeyError> {
    check_assertion(&p.passkey, RP, ORIGIN, &CHALLENGE, auth, client, sig)
}

#[wasm_bindgen_test]
fn test_a_verified_assertion_passes_and_every_tampered_part_fails() {
    let p = parts();
    let auth = auth_data(RP, 0x05);
    let client = client_data("webauthn.get", ORIGIN, &CHALLENGE);
    assert_eq!(check(&p, &auth, &client, &sign(&p.key, &auth, &client)), Ok(()));

    // Present but not verified (no fingerprint): refused even though it is signed.
    let unverified = auth_data(RP, 0x01);
    let err = check(&p, &unverified, &client, &sign(&p.key, &unverified, &client)).unwrap_err();
    assert_eq!(err, PasskeyError::Invalid("the person was not verified"));
    // Another site's passkey.
    let other = auth_data("evil.example", 0x05);
    let err = check(&p, &other, &client, &sign(&p.key, &other, &client)).unwrap_err();
    assert_eq!(err, PasskeyError::Invalid("another site's passkey"));
    // A replayed answer to another challenge, from another origin, of another kind.
    for (c, why) in [
        (client_data("webauthn.get", ORIGIN, &[8; 32]), "another challenge"),
        (client_data("webauthn.get", "http://evil.example", &CHALLENGE), "another origin"),
        (client_data("webauthn.create", ORIGIN, &CHALLENGE), "not an assertion"),
    ] {
        let err = check(&p, &auth, &c, &sign(&p.key, &auth, &c)).unwrap_err();
        assert_eq!(err, PasskeyError::Invalid(why));
    }
    // Signed by another key, or the data changed after signing, or garbage.
    let other_key = SigningKey::from_slice(&[0x43; 32]).unwrap();
    let err = check(&p, &auth, &client, &sign(&other_key, &auth, &client)).unwrap_err();
    assert_eq!(err, PasskeyError::Invalid("bad signature"));
    let mut later = auth.clone();
    later[36] ^= 1;
    let err = check(&p, &later, &client, &sign(&p.key, &auth, &client)).unwrap_err();
    assert_eq!(err, PasskeyError::Invalid("bad signature"));
    assert!(check(&p, &auth, &client, &[0x30, 0x01]).is_err());
    assert!(check(&p, &auth[..10], &client, &[]).is_err());
    assert!(check(&p, &auth, b"not json", &[]).is_err());
}

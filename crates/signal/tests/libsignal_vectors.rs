//! libsignal 0.90 KDF and fingerprint vectors through the public API.

use serde_json::Value;
use tandem_signal::IdentityKey;
use tandem_signal::crypto::hkdf_sha256;
use tandem_signal::fingerprint::Fingerprint;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/libsignal-0.90/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn test_every_hkdf_vector() {
    let v = load("kdf.json");
    let mut n = 0;
    for (name, case) in v.as_object().unwrap() {
        let Some(info) = case.get("info") else { continue };
        let salt = case["salt"].as_str().map(|s| hex::decode(s).unwrap());
        let len = usize::try_from(case["length"].as_u64().unwrap()).unwrap();
        let mut okm = vec![0u8; len];
        hkdf_sha256(
            salt.as_deref(),
            &hex(&case["ikm"]),
            info.as_str().unwrap().as_bytes(),
            &mut okm,
        )
        .unwrap();
        assert_eq!(okm, hex(&case["okm"]), "{name}");
        n += 1;
    }
    assert_eq!(n, 5);
    let step = &v["chain_step"];
    let ck = hex(&step["chain_key"]);
    assert_eq!(
        tandem_signal::crypto::hmac_sha256(&ck, &[&[1]]).to_vec(),
        hex(&step["message_key_seed"])
    );
    assert_eq!(
        tandem_signal::crypto::hmac_sha256(&ck, &[&[2]]).to_vec(),
        hex(&step["next_chain_key"])
    );
}

#[test]
fn test_every_fingerprint_vector() {
    let v = load("fingerprints.json");
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let key = |side: &str| IdentityKey::from_bytes(&hex(&case[side]["identity_key"])).unwrap();
        let fp = Fingerprint::new(
            u32::try_from(case["version"].as_u64().unwrap()).unwrap(),
            u32::try_from(case["iterations"].as_u64().unwrap()).unwrap(),
            &hex(&case["local"]["identifier"]),
            &key("local"),
            &hex(&case["remote"]["identifier"]),
            &key("remote"),
        )
        .unwrap();
        assert_eq!(fp.displayable(), case["displayable"].as_str().unwrap(), "{}", case["note"]);
        assert_eq!(fp.scannable(), hex(&case["scannable"]), "{}", case["note"]);
        // The other side's scannable bytes compare equal.
        let other = Fingerprint::new(
            u32::try_from(case["version"].as_u64().unwrap()).unwrap(),
            u32::try_from(case["iterations"].as_u64().unwrap()).unwrap(),
            &hex(&case["remote"]["identifier"]),
            &key("remote"),
            &hex(&case["local"]["identifier"]),
            &key("local"),
        )
        .unwrap();
        assert!(fp.compare(&other.scannable()).unwrap());
        assert!(!fp.compare(&fp.scannable()).unwrap() || key("local") == key("remote"));
    }
}

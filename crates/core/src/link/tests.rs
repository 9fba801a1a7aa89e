use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::devices::DeviceIdentityDetails;
use crate::testing::SeededRng;
use tandem_signal::IdentityKeyPair;

/// A generator with a seed of its own per call.
fn rng() -> SeededRng {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    SeededRng::new(NEXT.fetch_add(1, Ordering::Relaxed))
}

struct Setup {
    account: IdentityKeyPair,
    companion: IdentityKeyPair,
    request: LinkRequest,
    message: LinkMessage,
}

fn setup() -> Setup {
    let mut rng = rng();
    let account = IdentityKeyPair::generate(&mut rng);
    let companion = IdentityKeyPair::generate(&mut rng);
    let request = LinkRequest::new(
        [7; 16],
        *companion.identity_key(),
        Timestamp::from_millis(1_000_000),
        "Firefox on Linux",
        &mut rng,
    );
    let message = message_for(&account, companion.identity_key(), &mut rng);
    Setup { account, companion, request, message }
}

fn message_for(
    account: &IdentityKeyPair,
    companion: &IdentityKey,
    rng: &mut impl CryptoRng,
) -> LinkMessage {
    let account_id = AccountId([3; 16]);
    let details = DeviceIdentityDetails {
        account_id,
        key_index: 1,
        identity_key: *companion,
        timestamp: Timestamp::from_millis(5),
    };
    LinkMessage {
        account_id: account_id.0.to_vec(),
        handle: "alice".into(),
        account_key: account.identity_key().serialize().to_vec(),
        link_token: vec![9; 32],
        adv_identity: SignedDeviceIdentity::sign_by_account(account, details, rng).to_bytes(),
        primary_name: "Chrome on Android".into(),
    }
}

#[test]
fn test_a_sealed_message_opens_with_the_same_match_code_on_both_sides() {
    let s = setup();
    let code = LinkCode::parse(&s.request.code().to_text()).unwrap();
    assert_eq!(code.name, "Firefox on Linux");
    let (sealed, primary_code) =
        seal(&code, s.account.identity_key(), &s.message, &mut rng()).unwrap();
    let (link, companion_code) = s.request.open(&sealed).unwrap();
    assert_eq!(primary_code, companion_code);
    assert!(primary_code.value() < 1_000_000);
    assert_eq!(primary_code.to_string().len(), 7, "{primary_code}");
    assert_eq!(link.account_id, AccountId([3; 16]));
    assert_eq!(link.handle, "alice");
    assert_eq!(link.primary_name, "Chrome on Android");
    assert_eq!(link.link_token, vec![9; 32]);
    assert_eq!(link.account_key.serialize(), s.account.identity_key().serialize());
    // The account's signature is over this device, and this device can countersign it.
    assert!(link.adv_identity.countersign(&s.companion, &link.account_key, &mut rng()).is_ok());
}

#[test]
fn test_every_changed_byte_is_refused_before_decryption() {
    let s = setup();
    let (sealed, _) =
        seal(s.request.code(), s.account.identity_key(), &s.message, &mut rng()).unwrap();
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        assert_eq!(s.request.open(&bad).unwrap_err(), LinkError::Tampered, "byte {i}");
    }
    for len in [0, 1, 50, sealed.len() - 1] {
        assert_eq!(s.request.open(&sealed[..len]).unwrap_err(), LinkError::Tampered);
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(s.request.open(&longer).unwrap_err(), LinkError::Tampered);
}

#[test]
fn test_only_the_holder_of_the_code_can_write_or_read_the_message() {
    let s = setup();
    let mut rng = rng();
    // Someone who knows the address and keys but not the secret (the relay, a watcher of
    // an older code) cannot forge a message.
    let mut forged = s.request.code().clone();
    forged.secret = Zeroizing::new([0; 32]);
    let (sealed, _) = seal(&forged, s.account.identity_key(), &s.message, &mut rng).unwrap();
    assert_eq!(s.request.open(&sealed).unwrap_err(), LinkError::Tampered);
    // A rotated code's request cannot open a message sealed to the old one.
    let rotated = LinkRequest::new(
        [7; 16],
        *s.companion.identity_key(),
        Timestamp::from_millis(1_000_000),
        "x",
        &mut rng,
    );
    let (sealed, _) =
        seal(s.request.code(), s.account.identity_key(), &s.message, &mut rng).unwrap();
    assert_eq!(rotated.open(&sealed).unwrap_err(), LinkError::Tampered);
}

#[test]
fn test_a_message_that_signs_another_device_is_refused() {
    let s = setup();
    let mut rng = rng();
    let stranger = IdentityKeyPair::generate(&mut rng);
    let message = message_for(&s.account, stranger.identity_key(), &mut rng);
    let (sealed, _) = seal(s.request.code(), s.account.identity_key(), &message, &mut rng).unwrap();
    assert_eq!(s.request.open(&sealed).unwrap_err(), LinkError::WrongDevice);
}

#[test]
fn test_open_checks_that_the_account_key_signed_this_device() {
    let s = setup();
    let mut rng = rng();
    // The identity is this companion's, but signed by a key that is not the account key the
    // message names (sealed correctly, by whoever holds the code).
    let impostor = IdentityKeyPair::generate(&mut rng);
    let mut message = message_for(&impostor, s.companion.identity_key(), &mut rng);
    message.account_key = s.account.identity_key().serialize().to_vec();
    let (sealed, _) = seal(s.request.code(), s.account.identity_key(), &message, &mut rng).unwrap();
    assert_eq!(s.request.open(&sealed).unwrap_err(), LinkError::Tampered);
}

#[test]
fn test_malformed_codes_are_refused_with_one_error() {
    let s = setup();
    let good = s.request.code().to_text();
    // Pasted with line breaks and spaces: still fine.
    let spaced: String = good.chars().flat_map(|c| [c, ' ']).collect();
    assert!(LinkCode::parse(&format!("\n {spaced}\n")).is_ok());
    let body = good.strip_prefix(LINK_CODE_PREFIX).unwrap();
    let cases = [
        String::new(),
        "hello".into(),
        body.to_owned(),
        format!("https://example.com/{}", good.as_str()),
        format!("{LINK_CODE_PREFIX}!!!!"),
        good[..good.len() - 5].to_owned(),
        format!("{}{}", good.as_str(), "A".repeat(MAX_LINK_CODE_LEN)),
        format!("{LINK_CODE_PREFIX}{}", Base64UrlUnpadded::encode_string(&[0xff; 40])),
    ];
    for text in &cases {
        assert_eq!(LinkCode::parse(text).unwrap_err(), LinkError::Malformed, "{text:?}");
    }
    // Structurally valid protobuf with a short secret, a bad key, a wrong version.
    let base = LinkCodeProto {
        version: 1,
        address: vec![1; 16],
        ephemeral_key: s.request.code().ephemeral_key.serialize().to_vec(),
        identity_key: s.companion.identity_key().serialize().to_vec(),
        secret: vec![2; 32],
        expires_at_ms: 1,
        name: "n".into(),
    };
    let variants = [
        LinkCodeProto { secret: vec![2; 31], ..base.clone() },
        LinkCodeProto { address: vec![1; 15], ..base.clone() },
        LinkCodeProto { identity_key: vec![5; 10], ..base.clone() },
        LinkCodeProto { version: 2, ..base.clone() },
        LinkCodeProto { name: "a\u{7}b".into(), ..base.clone() },
    ];
    for v in variants {
        let text =
            format!("{LINK_CODE_PREFIX}{}", Base64UrlUnpadded::encode_string(&v.encode_to_vec()));
        assert_eq!(LinkCode::parse(&text).unwrap_err(), LinkError::Malformed);
    }
    let text =
        format!("{LINK_CODE_PREFIX}{}", Base64UrlUnpadded::encode_string(&base.encode_to_vec()));
    assert!(LinkCode::parse(&text).is_ok());
}

#[test]
fn test_codes_expire_with_some_tolerance_for_clocks() {
    let s = setup();
    let code = s.request.code();
    assert!(code.check_fresh(Timestamp::from_millis(999_999)).is_ok());
    assert!(code.check_fresh(Timestamp::from_millis(1_000_000 + 60_000)).is_ok());
    assert_eq!(
        code.check_fresh(Timestamp::from_millis(1_000_000 + 121_000)).unwrap_err(),
        LinkError::Expired
    );
}

#[test]
fn test_secrets_are_not_printed() {
    let s = setup();
    let printed = format!("{:?} {:?}", s.request, s.request.code());
    let secret = hex::encode(s.request.code().secret.as_slice());
    assert!(!printed.contains(&secret));
    assert!(!printed.contains("secret"), "{printed}");
}

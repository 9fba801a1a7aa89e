use super::*;
use crate::crypto::{KeyPair, KyberKeyPair};
use crate::testing::SeededRng;

fn identities(rng: &mut SeededRng) -> (IdentityKey, IdentityKey) {
    (
        IdentityKey::new(KeyPair::generate(rng).public_key),
        IdentityKey::new(KeyPair::generate(rng).public_key),
    )
}

#[test]
fn test_signal_message_roundtrip_and_mac() {
    let mut rng = SeededRng::new(1);
    let (a, b) = identities(&mut rng);
    let ratchet = KeyPair::generate(&mut rng).public_key;
    let msg = SignalMessage::new(4, &[7; 32], ratchet, 3, 2, vec![9; 32], &a, &b);
    assert_eq!(msg.serialized()[0], 0x44);
    let parsed = SignalMessage::from_bytes(msg.serialized()).unwrap();
    assert_eq!(parsed, msg);
    assert!(parsed.verify_mac(&a, &b, &[7; 32]));
    assert!(!parsed.verify_mac(&b, &a, &[7; 32]), "sender and receiver order matter");
    assert!(!parsed.verify_mac(&a, &b, &[8; 32]));
}

#[test]
fn test_signal_message_errors() {
    assert!(matches!(
        SignalMessage::from_bytes(&[0x44; 5]),
        Err(ProtocolError::InvalidMessage("message too short"))
    ));
    assert!(matches!(
        SignalMessage::from_bytes(&[0x24; 20]),
        Err(ProtocolError::UnsupportedVersion(2))
    ));
    assert!(matches!(
        SignalMessage::from_bytes(&[0x54; 20]),
        Err(ProtocolError::UnsupportedVersion(5))
    ));
    // A valid protobuf with no fields at all.
    let mut empty = vec![0x44];
    empty.extend_from_slice(&[0; 8]);
    assert!(matches!(
        SignalMessage::from_bytes(&empty),
        Err(ProtocolError::InvalidMessage("missing ratchet key"))
    ));
    assert!(matches!(
        SignalMessage::from_bytes(&vec![0x44; MAX_MESSAGE_LENGTH + 1]),
        Err(ProtocolError::InvalidMessage("message too long"))
    ));
}

#[test]
fn test_prekey_message_roundtrip_and_required_fields() {
    let mut rng = SeededRng::new(2);
    let (a, b) = identities(&mut rng);
    let inner = SignalMessage::new(
        4,
        &[1; 32],
        KeyPair::generate(&mut rng).public_key,
        0,
        0,
        vec![1; 16],
        &a,
        &b,
    );
    let (ct, _) = KyberKeyPair::generate(&mut rng).public_key.encapsulate(&mut rng);
    let msg = PreKeySignalMessage::new(
        4,
        1234,
        Some(PreKeyId(5)),
        SignedPreKeyId(6),
        KyberPreKeyId(7),
        ct,
        KeyPair::generate(&mut rng).public_key,
        a,
        inner,
    );
    let parsed = PreKeySignalMessage::from_bytes(msg.serialized()).unwrap();
    assert_eq!(parsed, msg);
    // Without the Kyber fields a version-4 PreKey message is refused.
    let proto = PreKeySignalMessageProto {
        pre_key_id: None,
        base_key: Some(msg.base_key().serialize().to_vec()),
        identity_key: Some(a.serialize().to_vec()),
        message: Some(msg.message().serialized().to_vec()),
        registration_id: Some(1),
        signed_pre_key_id: Some(1),
        kyber_pre_key_id: None,
        kyber_ciphertext: None,
    };
    let mut bytes = vec![0x44];
    bytes.extend(proto.encode_to_vec());
    assert!(matches!(
        PreKeySignalMessage::from_bytes(&bytes),
        Err(ProtocolError::InvalidMessage("missing Kyber prekey fields"))
    ));
    assert!(matches!(
        PreKeySignalMessage::from_bytes(&[0x33, 0]),
        Err(ProtocolError::UnsupportedVersion(3))
    ));
}

#[test]
fn test_sender_key_messages_roundtrip() {
    let mut rng = SeededRng::new(3);
    let signing = KeyPair::generate(&mut rng);
    let msg = SenderKeyMessage::new([1; 16], 99, 4, vec![5; 16], &signing.private_key, &mut rng);
    let parsed = SenderKeyMessage::from_bytes(msg.serialized()).unwrap();
    assert_eq!(parsed, msg);
    parsed.verify_signature(&signing.public_key).unwrap();
    let other = KeyPair::generate(&mut rng);
    assert!(matches!(
        parsed.verify_signature(&other.public_key),
        Err(ProtocolError::SignatureValidationFailed)
    ));
    let mut bad = msg.serialized().to_vec();
    bad[0] = 0x34;
    assert!(matches!(
        SenderKeyMessage::from_bytes(&bad),
        Err(ProtocolError::UnsupportedVersion(3))
    ));

    let skdm = SenderKeyDistributionMessage::new([2; 16], 7, 3, [9; 32], signing.public_key);
    let parsed = SenderKeyDistributionMessage::from_bytes(skdm.serialized()).unwrap();
    assert_eq!(parsed, skdm);
    assert!(!format!("{parsed:?}").contains("09"));
}

#[test]
fn test_ciphertext_message_type_dispatch() {
    assert!(matches!(
        CiphertextMessage::from_bytes(CiphertextMessageType::SenderKey, &[0x33]),
        Err(ProtocolError::InvalidMessage(_))
    ));
    for bad in [0u32, 1, 4, 5, 6, 8, 256, u32::MAX] {
        assert!(CiphertextMessageType::try_from(bad).is_err(), "{bad}");
    }
    for kind in [
        CiphertextMessageType::Whisper,
        CiphertextMessageType::PreKey,
        CiphertextMessageType::SenderKey,
    ] {
        assert!(matches!(CiphertextMessageType::try_from(u32::from(kind)), Ok(k) if k == kind));
    }
}

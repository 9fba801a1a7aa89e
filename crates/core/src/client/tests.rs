use super::*;
use crate::identity::IdentityKeyPair;
use crate::testing::SeededRng;

fn record() -> AccountRecord {
    let mut rng = SeededRng::new(1);
    AccountRecord {
        account_id: AccountId([1; 16]),
        device_id: DeviceId::PRIMARY,
        handle: "alice".into(),
        password: [0xab; 32],
        account_key: *IdentityKeyPair::generate(&mut rng).identity_key(),
        next_pre_key_id: 1,
        next_kyber_pre_key_id: 1,
        signed_pre_key_id: 1,
        signed_pre_key_at: Timestamp::EPOCH,
        next_key_index: 1,
        device_list_version: 0,
        last_timestamp: 0,
    }
}

#[test]
fn test_timestamps_only_grow() {
    let mut a = record();
    assert_eq!(next_timestamp(&mut a, Timestamp::from_millis(1000)), 1000);
    assert_eq!(next_timestamp(&mut a, Timestamp::from_millis(1000)), 1001);
    assert_eq!(
        next_timestamp(&mut a, Timestamp::from_millis(500)),
        1002,
        "a clock going back does not repeat ids"
    );
    assert_eq!(next_timestamp(&mut a, Timestamp::from_millis(5000)), 5000);
}

#[test]
fn test_account_record_debug_hides_secrets() {
    let dbg = format!("{:?}", record());
    assert!(!dbg.contains("ab, ab") && !dbg.contains("171"), "{dbg}");
    assert!(!dbg.contains("alice"));
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn test_transient_errors() {
    assert!(ClientError::Transport(TransportError::Timeout).is_transient());
    assert!(
        ClientError::Server { status: Status::RateLimited, message: String::new() }.is_transient()
    );
    assert!(
        !ClientError::Server { status: Status::NotFound, message: String::new() }.is_transient()
    );
    assert!(!ClientError::NotRegistered.is_transient());
}

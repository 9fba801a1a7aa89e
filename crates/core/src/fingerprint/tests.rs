use super::*;
use crate::identity::IdentityKeyPair;
use crate::testing::SeededRng;

fn key(rng: &mut SeededRng) -> IdentityKey {
    *IdentityKeyPair::generate(rng).identity_key()
}

#[test]
fn test_bad_iterations() {
    let mut rng = SeededRng::new(1);
    let k = key(&mut rng);
    assert_eq!(
        Fingerprint::new(2, 1, b"a", &k, b"b", &k).unwrap_err(),
        FingerprintError::BadIterations(1)
    );
    assert!(Fingerprint::new(2, 1_000_001, b"a", &k, b"b", &k).is_err());
}

#[test]
fn test_security_code_is_symmetric_and_key_bound() {
    let mut rng = SeededRng::new(2);
    let (alice_key, bob_key) = (key(&mut rng), key(&mut rng));
    let (alice_list, bob_list) = ([1u8; 32], [2u8; 32]);
    let a = |d| AccountView {
        account_id: b"alice-account-id",
        account_key: &alice_key,
        device_list_digest: d,
    };
    let b = |d| AccountView {
        account_id: b"bob-account-id..",
        account_key: &bob_key,
        device_list_digest: d,
    };
    let alice_side = SecurityCode::new(a(alice_list), b(bob_list)).unwrap();
    let bob_side = SecurityCode::new(b(bob_list), a(alice_list)).unwrap();
    assert_eq!(alice_side.digits(), bob_side.digits());
    assert_eq!(alice_side.digits().len(), 60);
    assert!(alice_side.digits().chars().all(|c| c.is_ascii_digit()));
    assert_eq!(alice_side.compare(&bob_side.scannable()).unwrap(), ScanOutcome::Verified);
    assert_eq!(bob_side.compare(&alice_side.scannable()).unwrap(), ScanOutcome::Verified);

    // Device lists changing (a companion linked) leaves the digits as they were.
    let later = SecurityCode::new(a(alice_list), b([3u8; 32])).unwrap();
    assert_eq!(later.digits(), alice_side.digits());

    // Another account key changes the digits and fails the scan.
    let new_bob_key = key(&mut rng);
    let rekeyed = SecurityCode::new(
        AccountView {
            account_id: b"bob-account-id..",
            account_key: &new_bob_key,
            device_list_digest: bob_list,
        },
        a(alice_list),
    )
    .unwrap();
    assert_ne!(rekeyed.digits(), alice_side.digits());
    assert_eq!(alice_side.compare(&rekeyed.scannable()).unwrap(), ScanOutcome::KeysDiffer);
}

#[test]
fn test_device_list_disagreement_is_reported_per_side() {
    let mut rng = SeededRng::new(3);
    let (alice_key, bob_key) = (key(&mut rng), key(&mut rng));
    let view = |id: &'static [u8], k, d| AccountView {
        account_id: id,
        account_key: k,
        device_list_digest: d,
    };
    // Alice is shown an old list for Bob.
    let alice_side =
        SecurityCode::new(view(b"a", &alice_key, [1; 32]), view(b"b", &bob_key, [9; 32])).unwrap();
    let bob_side =
        SecurityCode::new(view(b"b", &bob_key, [2; 32]), view(b"a", &alice_key, [1; 32])).unwrap();
    assert_eq!(
        alice_side.compare(&bob_side.scannable()).unwrap(),
        ScanOutcome::DeviceListsDiffer { their_list: true, our_list: false }
    );
    assert_eq!(
        bob_side.compare(&alice_side.scannable()).unwrap(),
        ScanOutcome::DeviceListsDiffer { their_list: false, our_list: true }
    );
}

#[test]
fn test_malformed_scans_are_errors() {
    let mut rng = SeededRng::new(4);
    let k = key(&mut rng);
    let v = AccountView { account_id: b"x", account_key: &k, device_list_digest: [0; 32] };
    let code = SecurityCode::new(v, v).unwrap();
    assert!(matches!(code.compare(&[0xff, 0xff]), Err(FingerprintError::Malformed(_))));
    assert!(matches!(
        code.compare(&[]),
        Err(FingerprintError::VersionMismatch { ours: 100, theirs: 0 })
    ));
    let signal = Fingerprint::new(2, 5200, b"x", &k, b"y", &k).unwrap();
    assert!(matches!(
        code.compare(&signal.scannable()),
        Err(FingerprintError::VersionMismatch { ours: 100, theirs: 2 })
    ));
}

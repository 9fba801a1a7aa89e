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

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn account_key(seed: u64) -> IdentityKey {
        *IdentityKeyPair::generate(&mut SeededRng::new(seed)).identity_key()
    }

    fn view<'a>(id: &'a [u8; 16], key: &'a IdentityKey, digest: [u8; 32]) -> AccountView<'a> {
        AccountView { account_id: id, account_key: key, device_list_digest: digest }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Both parties compute the same digits, and each one's QR verifies on the other side.
        #[test]
        fn prop_symmetric(
            seeds in (any::<u64>(), any::<u64>()).prop_filter("two people", |(a, b)| a != b),
            ids in (any::<[u8; 16]>(), any::<[u8; 16]>()),
            digests in (any::<[u8; 32]>(), any::<[u8; 32]>()),
        ) {
            let (ka, kb) = (account_key(seeds.0), account_key(seeds.1));
            let alice = SecurityCode::new(view(&ids.0, &ka, digests.0), view(&ids.1, &kb, digests.1)).unwrap();
            let bob = SecurityCode::new(view(&ids.1, &kb, digests.1), view(&ids.0, &ka, digests.0)).unwrap();
            prop_assert_eq!(alice.digits(), bob.digits());
            prop_assert_eq!(alice.digits().len(), 60);
            prop_assert_eq!(alice.compare(&bob.scannable()).unwrap(), ScanOutcome::Verified);
            prop_assert_eq!(bob.compare(&alice.scannable()).unwrap(), ScanOutcome::Verified);
        }

        /// Linking or removing devices changes the device lists, never the digits; a scan
        /// across different lists warns instead of saying the keys differ.
        #[test]
        fn prop_digits_stable_under_device_changes(
            seeds in (any::<u64>(), any::<u64>()),
            before in any::<[u8; 32]>(),
            after in any::<[u8; 32]>(),
            own in any::<[u8; 32]>(),
        ) {
            prop_assume!(before != after);
            let (ka, kb) = (account_key(seeds.0), account_key(seeds.1));
            let (ia, ib) = ([1u8; 16], [2u8; 16]);
            let old = SecurityCode::new(view(&ia, &ka, own), view(&ib, &kb, before)).unwrap();
            let new = SecurityCode::new(view(&ia, &ka, own), view(&ib, &kb, after)).unwrap();
            prop_assert_eq!(old.digits(), new.digits());
            // Bob's code made from his new list, scanned by Alice who still has the old one.
            let bob_now = SecurityCode::new(view(&ib, &kb, after), view(&ia, &ka, own)).unwrap();
            prop_assert_eq!(
                old.compare(&bob_now.scannable()).unwrap(),
                ScanOutcome::DeviceListsDiffer { their_list: true, our_list: false }
            );
        }

        /// A different account key (re-registration, or an impostor) gives different digits,
        /// and scanning its code says the keys differ.
        #[test]
        fn prop_different_account_keys_differ(
            seeds in (any::<u64>(), any::<u64>(), any::<u64>())
                .prop_filter("distinct keys", |(a, b, c)| a != b && b != c && a != c),
            digest in any::<[u8; 32]>(),
        ) {
            let (ka, kb, kb2) = (account_key(seeds.0), account_key(seeds.1), account_key(seeds.2));
            let (ia, ib) = ([1u8; 16], [2u8; 16]);
            let with_old = SecurityCode::new(view(&ia, &ka, digest), view(&ib, &kb, digest)).unwrap();
            let with_new = SecurityCode::new(view(&ia, &ka, digest), view(&ib, &kb2, digest)).unwrap();
            prop_assert_ne!(with_old.digits(), with_new.digits());
            let bob_new = SecurityCode::new(view(&ib, &kb2, digest), view(&ia, &ka, digest)).unwrap();
            prop_assert_eq!(with_old.compare(&bob_new.scannable()).unwrap(), ScanOutcome::KeysDiffer);
        }

        /// The text form round-trips, and no text or payload makes parsing panic.
        #[test]
        fn prop_text_form_and_garbage(payload in proptest::collection::vec(any::<u8>(), 0..300), junk in ".{0,200}") {
            prop_assert_eq!(parse_code_text(&code_text(&payload)).unwrap(), payload.clone());
            let _ = parse_code_text(&junk);
            let k = account_key(1);
            let code = SecurityCode::new(view(&[1; 16], &k, [0; 32]), view(&[2; 16], &k, [0; 32])).unwrap();
            let _ = code.compare(&payload);
        }
    }
}

use super::*;
use crate::testing::SeededRng;
use crate::wire::relay::DeviceInfo;

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

struct Account {
    id: AccountId,
    key: IdentityKeyPair,
    companions: Vec<(u32, IdentityKeyPair, SignedDeviceIdentity)>,
}

fn account(rng: &mut SeededRng, companions: u32) -> Account {
    let id = AccountId([7; 16]);
    let key = IdentityKeyPair::generate(rng);
    let companions = (0..companions)
        .map(|i| {
            let device = IdentityKeyPair::generate(rng);
            let details = DeviceIdentityDetails {
                account_id: id,
                key_index: i + 1,
                identity_key: *device.identity_key(),
                timestamp: NOW,
            };
            let signed = SignedDeviceIdentity::sign_by_account(&key, details, rng)
                .countersign(&device, key.identity_key(), rng)
                .unwrap();
            (i + 2, device, signed)
        })
        .collect();
    Account { id, key, companions }
}

fn list(a: &Account, version: u64, expires_at: Timestamp, rng: &mut SeededRng) -> SignedDeviceList {
    let mut entries = vec![DeviceListEntry { device_id: DeviceId::PRIMARY, key_index: 0 }];
    entries.extend(a.companions.iter().map(|(id, _, s)| DeviceListEntry {
        device_id: DeviceId::new(*id).unwrap(),
        key_index: s.details().key_index,
    }));
    SignedDeviceList::sign(
        &a.key,
        DeviceList {
            account_id: a.id,
            version,
            timestamp: NOW,
            expires_at,
            entries,
            revoked: vec![],
        },
        rng,
    )
}

fn response(a: &Account, signed: Option<&SignedDeviceList>) -> Devices {
    let mut devices = vec![DeviceInfo {
        device_id: 1,
        registration_id: 11,
        identity_key: a.key.identity_key().serialize().to_vec(),
        ..Default::default()
    }];
    devices.extend(a.companions.iter().map(|(id, k, s)| DeviceInfo {
        device_id: *id,
        registration_id: 10 + id,
        identity_key: k.identity_key().serialize().to_vec(),
        adv_identity: s.to_bytes(),
        ..Default::default()
    }));
    Devices {
        account_id: a.id.0.to_vec(),
        account_identity_key: a.key.identity_key().serialize().to_vec(),
        signed_device_list: signed.map(SignedDeviceList::to_bytes).unwrap_or_default(),
        devices,
    }
}

fn later() -> Timestamp {
    NOW.saturating_add(DEVICE_LIST_LIFETIME)
}

#[test]
fn test_honest_account_verifies_every_device() {
    let mut rng = SeededRng::new(1);
    let a = account(&mut rng, 2);
    let signed = list(&a, 3, later(), &mut rng);
    let v = verify_devices(a.id, &response(&a, Some(&signed)), KnownList::default(), NOW).unwrap();
    assert_eq!(v.devices.iter().map(|d| d.device_id.get()).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(v.rejected.is_empty());
    assert_eq!(v.list_version, Some(3));
    assert_eq!(v.list_digest, Some(signed.digest()));
    // Round trips.
    assert_eq!(SignedDeviceList::from_bytes(&signed.to_bytes()).unwrap(), signed);
    let adv = &a.companions[0].2;
    assert_eq!(SignedDeviceIdentity::from_bytes(&adv.to_bytes()).unwrap(), *adv);
}

#[test]
fn test_injected_devices_are_rejected_with_reasons() {
    let mut rng = SeededRng::new(2);
    let a = account(&mut rng, 1);
    let signed = list(&a, 1, later(), &mut rng);
    let mut r = response(&a, Some(&signed));
    // 1. A device the server made up, with its own key and no ADV.
    let fake = IdentityKeyPair::generate(&mut rng);
    r.devices.push(DeviceInfo {
        device_id: 9,
        identity_key: fake.identity_key().serialize().to_vec(),
        ..Default::default()
    });
    // 2. A device with a real ADV identity from another account, not in the list.
    let other = account(&mut rng, 1);
    r.devices.push(DeviceInfo {
        device_id: 10,
        identity_key: other.companions[0].1.identity_key().serialize().to_vec(),
        adv_identity: other.companions[0].2.to_bytes(),
        ..Default::default()
    });
    // 3. A listed device whose identity key the server swapped.
    r.devices[1].identity_key = fake.identity_key().serialize().to_vec();
    let v = verify_devices(a.id, &r, KnownList::default(), NOW).unwrap();
    assert_eq!(v.devices.iter().map(|d| d.device_id.get()).collect::<Vec<_>>(), [1]);
    let reasons: Vec<_> = v.rejected.iter().map(|r| (r.device_id, r.reason.clone())).collect();
    assert_eq!(
        reasons,
        [(2, AdvError::IdentityMismatch), (9, AdvError::NotInList), (10, AdvError::NotInList)]
    );
}

#[test]
fn test_a_device_listed_twice_is_taken_in_neither_form() {
    // Found by the device_lists fuzz target: the relay lists a companion twice, once as
    // signed and once under another key; which one is trusted must not depend on the order.
    let mut rng = SeededRng::new(12);
    let a = account(&mut rng, 1);
    let signed = list(&a, 1, later(), &mut rng);
    let mut r = response(&a, Some(&signed));
    let fake = IdentityKeyPair::generate(&mut rng);
    let mut twin = r.devices[1].clone();
    twin.identity_key = fake.identity_key().serialize().to_vec();
    for order in [0, 1] {
        let mut r = r.clone();
        r.devices.insert(1 + order, twin.clone());
        let v = verify_devices(a.id, &r, KnownList::default(), NOW).unwrap();
        assert_eq!(v.devices.iter().map(|d| d.device_id.get()).collect::<Vec<_>>(), [1]);
        assert!(v.rejected.iter().all(|d| d.device_id == 2
            && d.reason == AdvError::Malformed("device listed twice")));
        assert_eq!(v.rejected.len(), 2);
    }
    // The honest answer still verifies.
    r.devices.truncate(2);
    let v = verify_devices(a.id, &r, KnownList::default(), NOW).unwrap();
    assert_eq!(v.devices.len(), 2);
}

#[test]
fn test_account_level_failures() {
    let mut rng = SeededRng::new(3);
    let a = account(&mut rng, 1);
    let signed = list(&a, 5, later(), &mut rng);
    let r = response(&a, Some(&signed));
    let other_key = IdentityKeyPair::generate(&mut rng);
    assert_eq!(
        verify_devices(
            a.id,
            &r,
            KnownList { account_key: Some(other_key.identity_key()), ..KnownList::default() },
            NOW
        )
        .unwrap_err(),
        AdvError::AccountKeyChanged
    );
    assert_eq!(
        verify_devices(a.id, &r, KnownList { version: Some(6), ..KnownList::default() }, NOW)
            .unwrap_err(),
        AdvError::ListRollback { seen: 6, found: 5 }
    );
    assert_eq!(
        verify_devices(AccountId([1; 16]), &r, KnownList::default(), NOW).unwrap_err(),
        AdvError::WrongAccount
    );
    // A list signed by someone else.
    let forged = SignedDeviceList::sign(&other_key, signed.list().clone(), &mut rng);
    assert_eq!(
        verify_devices(a.id, &response(&a, Some(&forged)), KnownList::default(), NOW).unwrap_err(),
        AdvError::BadAccountSignature
    );
    // A primary whose key is not the account key.
    let mut bad_primary = r.clone();
    bad_primary.devices[0].identity_key = other_key.identity_key().serialize().to_vec();
    let v = verify_devices(a.id, &bad_primary, KnownList::default(), NOW).unwrap();
    assert_eq!(v.rejected[0], RejectedDevice { device_id: 1, reason: AdvError::PrimaryMismatch });
}

#[test]
fn test_expired_list_leaves_only_the_primary() {
    let mut rng = SeededRng::new(4);
    let a = account(&mut rng, 2);
    let signed = list(&a, 1, NOW, &mut rng);
    let v = verify_devices(
        a.id,
        &response(&a, Some(&signed)),
        KnownList::default(),
        NOW.saturating_add(Duration::from_secs(1)),
    )
    .unwrap();
    assert!(v.list_expired);
    assert_eq!(v.devices.len(), 1);
    assert!(v.rejected.iter().all(|r| r.reason == AdvError::ListExpired));
    assert!(signed.list().needs_renewal(NOW));
    // No list at all: also only the primary.
    let v = verify_devices(a.id, &response(&a, None), KnownList::default(), NOW).unwrap();
    assert_eq!(v.devices.len(), 1);
    assert!(v.rejected.iter().all(|r| r.reason == AdvError::NotInList));
}

#[test]
fn test_signature_chain_breaks() {
    let mut rng = SeededRng::new(5);
    let a = account(&mut rng, 1);
    let device = &a.companions[0].1;
    let details = DeviceIdentityDetails {
        account_id: a.id,
        key_index: 1,
        identity_key: *device.identity_key(),
        timestamp: NOW,
    };
    // Account-signed but never countersigned.
    let half = SignedDeviceIdentity::sign_by_account(&a.key, details.clone(), &mut rng);
    assert_eq!(half.verify(a.key.identity_key()).unwrap_err(), AdvError::BadDeviceSignature);
    // Another device cannot countersign it.
    let stranger = IdentityKeyPair::generate(&mut rng);
    assert_eq!(
        half.clone().countersign(&stranger, a.key.identity_key(), &mut rng).unwrap_err(),
        AdvError::IdentityMismatch
    );
    // A device refuses to countersign what another key signed.
    let impostor = IdentityKeyPair::generate(&mut rng);
    let forged = SignedDeviceIdentity::sign_by_account(&impostor, details, &mut rng);
    assert_eq!(
        forged.countersign(device, a.key.identity_key(), &mut rng).unwrap_err(),
        AdvError::BadAccountSignature
    );
    // Key index mismatch between list and identity.
    let mut wrong_index = list(&a, 1, later(), &mut rng).list().clone();
    wrong_index.entries[1].key_index = 42;
    let signed = SignedDeviceList::sign(&a.key, wrong_index, &mut rng);
    let v = verify_devices(a.id, &response(&a, Some(&signed)), KnownList::default(), NOW).unwrap();
    assert_eq!(v.rejected[0].reason, AdvError::KeyIndexMismatch);
    assert!(SignedDeviceIdentity::from_bytes(&[1, 2, 3]).is_err());
    assert!(SignedDeviceList::from_bytes(&vec![0; MAX_ADV_LEN + 1]).is_err());
}

#[test]
fn test_revoked_key_indexes_are_refused_for_good() {
    let mut rng = SeededRng::new(6);
    let a = account(&mut rng, 2);
    // The primary revoked device 3's key index (2) and lists device 2 only.
    let mut l = list(&a, 4, later(), &mut rng).list().clone();
    l.entries.retain(|e| e.device_id.get() != 3);
    l.revoked = vec![2];
    let signed = SignedDeviceList::sign(&a.key, l.clone(), &mut rng);
    let v = verify_devices(a.id, &response(&a, Some(&signed)), KnownList::default(), NOW).unwrap();
    assert_eq!(v.devices.iter().map(|d| d.device_id.get()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(v.revoked, [2]);
    assert_eq!(v.rejected, [RejectedDevice { device_id: 3, reason: AdvError::NotInList }]);
    // A later list that lists it again (a primary fooled, or a bug): a client that saw the
    // revocation refuses it still.
    let mut again = list(&a, 5, later(), &mut rng).list().clone();
    again.revoked.clear();
    let again = SignedDeviceList::sign(&a.key, again, &mut rng);
    let known = KnownList { version: Some(4), revoked: &[2], ..KnownList::default() };
    let v = verify_devices(a.id, &response(&a, Some(&again)), known, NOW).unwrap();
    assert_eq!(v.rejected, [RejectedDevice { device_id: 3, reason: AdvError::Revoked }]);
    // A list that lists a key index it also revokes is malformed.
    let mut both = list(&a, 6, later(), &mut rng).list().clone();
    both.revoked = vec![2];
    let both = SignedDeviceList::sign(&a.key, both, &mut rng);
    assert!(SignedDeviceList::from_bytes(&both.to_bytes()).is_err());
    // So are unsorted revocations and a device listed twice.
    let mut unsorted = l.clone();
    unsorted.revoked = vec![9, 8];
    assert!(
        SignedDeviceList::from_bytes(
            &SignedDeviceList::sign(&a.key, unsorted, &mut rng).to_bytes()
        )
        .is_err()
    );
    let mut twice = l;
    twice.entries.push(twice.entries[1]);
    assert!(
        SignedDeviceList::from_bytes(&SignedDeviceList::sign(&a.key, twice, &mut rng).to_bytes())
            .is_err()
    );
}

#[test]
fn test_a_withheld_list_after_one_was_seen_is_a_rollback() {
    let mut rng = SeededRng::new(7);
    let a = account(&mut rng, 1);
    let known = KnownList { version: Some(3), ..KnownList::default() };
    assert_eq!(
        verify_devices(a.id, &response(&a, None), known, NOW).unwrap_err(),
        AdvError::ListWithdrawn { seen: 3 }
    );
}

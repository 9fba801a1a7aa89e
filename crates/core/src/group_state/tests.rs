use super::*;
use crate::devices::DeviceIdentityDetails;
use crate::testing::SeededRng;

struct Account {
    id: AccountId,
    key: IdentityKeyPair,
}

fn account(rng: &mut SeededRng, n: u8) -> Account {
    Account { id: AccountId([n; 16]), key: IdentityKeyPair::generate(rng) }
}

fn members(list: &[(&Account, bool)]) -> Vec<GroupMember> {
    let mut m: Vec<GroupMember> =
        list.iter().map(|(a, admin)| GroupMember { account_id: a.id, admin: *admin }).collect();
    m.sort();
    m
}

fn genesis(rng: &mut SeededRng, by: &Account, list: &[(&Account, bool)]) -> SignedGroupState {
    let state = GroupState {
        group_id: [9; 16],
        version: 1,
        previous: [0; 32],
        title: "Climbing".into(),
        members: members(list),
        signer: by.id,
        signer_device: DeviceId::PRIMARY,
        timestamp: 1,
    };
    SignedGroupState::sign(state, &by.key, None, rng).unwrap()
}

fn next(
    rng: &mut SeededRng,
    prev: &SignedGroupState,
    by: &Account,
    list: &[(&Account, bool)],
) -> SignedGroupState {
    let state = GroupState {
        version: prev.state().version + 1,
        previous: prev.digest(),
        members: members(list),
        signer: by.id,
        timestamp: prev.state().timestamp + 1,
        ..prev.state().clone()
    };
    SignedGroupState::sign(state, &by.key, None, rng).unwrap()
}

#[test]
fn test_a_chain_of_admin_signed_states_verifies() {
    let mut rng = SeededRng::new(1);
    let (ana, ben, cy) = (account(&mut rng, 1), account(&mut rng, 2), account(&mut rng, 3));
    let v1 = genesis(&mut rng, &ana, &[(&ana, true), (&ben, false)]);
    let v1 = SignedGroupState::from_bytes(v1.as_bytes()).unwrap();
    v1.verify(ana.key.identity_key()).unwrap();
    v1.check_genesis().unwrap();
    let v2 = next(&mut rng, &v1, &ana, &[(&ana, true), (&ben, false), (&cy, false)]);
    let v2 = SignedGroupState::from_bytes(v2.as_bytes()).unwrap();
    v2.verify(ana.key.identity_key()).unwrap();
    v1.state().check_successor(&v1.digest(), v2.state()).unwrap();
    let change = GroupChange::between(Some(v1.state()), v2.state());
    assert_eq!(change.added, vec![cy.id]);
    assert!(change.removed.is_empty() && change.title.is_none());
}

#[test]
fn test_a_non_admin_may_only_remove_itself() {
    let mut rng = SeededRng::new(2);
    let (ana, ben, cy) = (account(&mut rng, 1), account(&mut rng, 2), account(&mut rng, 3));
    let v1 = genesis(&mut rng, &ana, &[(&ana, true), (&ben, false)]);
    // Ben adds Cy: refused.
    let bad = next(&mut rng, &v1, &ben, &[(&ana, true), (&ben, false), (&cy, false)]);
    assert_eq!(
        v1.state().check_successor(&v1.digest(), bad.state()),
        Err(GroupStateError::NotAllowed)
    );
    // Ben makes himself admin: refused.
    let bad = next(&mut rng, &v1, &ben, &[(&ana, true), (&ben, true)]);
    assert_eq!(
        v1.state().check_successor(&v1.digest(), bad.state()),
        Err(GroupStateError::NotAllowed)
    );
    // Ben leaves: allowed.
    let leave = next(&mut rng, &v1, &ben, &[(&ana, true)]);
    v1.state().check_successor(&v1.digest(), leave.state()).unwrap();
    // Cy (not a member) removes Ben: refused.
    let bad = next(&mut rng, &v1, &cy, &[(&ana, true)]);
    assert_eq!(
        v1.state().check_successor(&v1.digest(), bad.state()),
        Err(GroupStateError::NotAllowed)
    );
}

#[test]
fn test_rollbacks_replays_forks_and_forgeries_are_refused() {
    let mut rng = SeededRng::new(3);
    let (ana, ben) = (account(&mut rng, 1), account(&mut rng, 2));
    let v1 = genesis(&mut rng, &ana, &[(&ana, true), (&ben, false)]);
    let v2 = next(&mut rng, &v1, &ana, &[(&ana, true)]);
    // Replaying v1 after v2, or v2 again: not the next version.
    assert!(matches!(
        v2.state().check_successor(&v2.digest(), v1.state()),
        Err(GroupStateError::NotNext { current: 2, found: 1 })
    ));
    assert!(matches!(
        v2.state().check_successor(&v2.digest(), v2.state()),
        Err(GroupStateError::NotNext { .. })
    ));
    // A v3 that names another predecessor: a fork.
    let mut fork = next(&mut rng, &v2, &ana, &[(&ana, true), (&ben, false)]).state().clone();
    fork.previous = [1; 32];
    assert_eq!(v2.state().check_successor(&v2.digest(), &fork), Err(GroupStateError::Fork));
    // Signed by someone else's key while naming Ana: refused.
    let forged = next(&mut rng, &v1, &ben, &[(&ana, true), (&ben, true)]);
    let mut tampered = forged.state().clone();
    tampered.signer = ana.id;
    let tampered = SignedGroupState::sign(tampered, &ben.key, None, &mut rng).unwrap();
    assert_eq!(tampered.verify(ana.key.identity_key()).unwrap_err(), GroupStateError::BadSignature);
    // A flipped byte anywhere: does not parse or does not verify.
    let bytes = v2.as_bytes().to_vec();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x20;
        if let Ok(s) = SignedGroupState::from_bytes(&b) {
            assert!(s.verify(ana.key.identity_key()).is_err() || s == v2, "byte {i}");
        }
    }
    // A genesis whose signer is not an admin.
    let bad = genesis(&mut rng, &ben, &[(&ana, true), (&ben, false)]);
    assert_eq!(bad.check_genesis(), Err(GroupStateError::NotAllowed));
}

#[test]
fn test_a_companion_signs_through_its_adv_identity() {
    let mut rng = SeededRng::new(4);
    let ana = account(&mut rng, 1);
    let laptop = IdentityKeyPair::generate(&mut rng);
    let details = DeviceIdentityDetails {
        account_id: ana.id,
        key_index: 5,
        identity_key: *laptop.identity_key(),
        timestamp: Timestamp::from_millis(1),
    };
    let adv = SignedDeviceIdentity::sign_by_account(&ana.key, details, &mut rng)
        .countersign(&laptop, ana.key.identity_key(), &mut rng)
        .unwrap();
    let state = GroupState {
        group_id: [9; 16],
        version: 1,
        previous: [0; 32],
        title: "t".into(),
        members: vec![GroupMember { account_id: ana.id, admin: true }],
        signer: ana.id,
        signer_device: DeviceId::new(2).unwrap(),
        timestamp: 1,
    };
    let signed =
        SignedGroupState::sign(state.clone(), &laptop, Some(adv.clone()), &mut rng).unwrap();
    let parsed = SignedGroupState::from_bytes(signed.as_bytes()).unwrap();
    let v = parsed.verify(ana.key.identity_key()).unwrap();
    assert_eq!(v.signer_key_index, Some(5));
    // Under another account key the ADV identity does not verify.
    let other = IdentityKeyPair::generate(&mut rng);
    assert!(matches!(parsed.verify(other.identity_key()), Err(GroupStateError::Adv(_))));
    // A companion's state without its ADV identity does not parse.
    let bare = SignedGroupState::sign(state, &laptop, None, &mut rng).unwrap();
    assert!(SignedGroupState::from_bytes(bare.as_bytes()).is_err());
}

#[test]
fn test_unsorted_members_and_bad_titles_are_malformed() {
    let mut rng = SeededRng::new(5);
    let (ana, ben) = (account(&mut rng, 1), account(&mut rng, 2));
    let mut s = genesis(&mut rng, &ana, &[(&ana, true), (&ben, false)]).state().clone();
    s.members.reverse();
    assert!(SignedGroupState::sign(s.clone(), &ana.key, None, &mut rng).is_err());
    s.members.sort();
    s.title = "x".repeat(MAX_GROUP_TITLE_CHARS + 1);
    assert!(SignedGroupState::sign(s.clone(), &ana.key, None, &mut rng).is_err());
    s.title = "a\u{7}".into();
    assert!(SignedGroupState::sign(s, &ana.key, None, &mut rng).is_err());
    assert!(SignedGroupState::from_bytes(&[0xff; 10]).is_err());
    assert!(SignedGroupState::from_bytes(&vec![0; MAX_GROUP_STATE_LEN + 1]).is_err());
}

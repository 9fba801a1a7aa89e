//! Groups through the socket: fan-out to accepted members along the signed state chain.

use super::*;

/// A signed group state by `by`'s primary.
pub(super) fn group_state(
    by: &Device,
    id: [u8; 16],
    version: u64,
    previous: [u8; 32],
    members: &[(&Device, bool)],
    rng: &mut SeededRng,
) -> SignedGroupState {
    let mut list: Vec<GroupMember> = members
        .iter()
        .map(|(d, admin)| GroupMember { account_id: d.account, admin: *admin })
        .collect();
    list.sort();
    let state = GroupState {
        group_id: id,
        version,
        previous,
        title: "climbing".into(),
        members: list,
        signer: by.account,
        signer_device: DeviceId::new(by.device).unwrap(),
        timestamp: version,
    };
    SignedGroupState::sign(state, &by.identity, None, rng).unwrap()
}

pub(super) fn group_send(
    id: [u8; 16],
    version: u64,
    timestamp: u64,
    content: &[u8],
) -> request::Body {
    request::Body::SendGroupMessage(SendGroupMessage {
        group_id: id.to_vec(),
        timestamp,
        content: content.to_vec(),
        version,
        member_devices: Vec::new(),
    })
}

pub(super) fn accept(id: [u8; 16]) -> request::Body {
    request::Body::AcceptGroup(AcceptGroup { group_id: id.to_vec(), accept: true })
}

#[tokio::test]
async fn test_groups_fan_out_to_accepted_members_and_follow_the_signed_chain() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(10);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut alice2 = link(&state, &mut alice, 1, 1, &mut rng).await;
    let mut bob = register(&state, "bob", &mut rng).await;
    let mut carol = register(&state, "carol", &mut rng).await;
    let id = [7; 16];
    let v1 = group_state(
        &alice,
        id,
        1,
        [0; 32],
        &[(&alice, true), (&bob, false), (&carol, false)],
        &mut rng,
    );
    // Only the device that signed a state publishes it.
    let r = bob
        .client
        .request(request::Body::CreateGroup(CreateGroup { signed_state: v1.as_bytes().to_vec() }))
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    alice
        .client
        .ok(request::Body::CreateGroup(CreateGroup { signed_state: v1.as_bytes().to_vec() }))
        .await;
    // Invited members get nothing until they accept.
    let Some(response::Body::Sent(s)) = alice.client.ok(group_send(id, 1, 5, b"hi all")).await
    else {
        panic!()
    };
    assert_eq!(s.copies, 1, "only alice's companion: bob and carol have not accepted");
    alice2.client.next_envelope().await;
    bob.client.ok(accept(id)).await;
    carol.client.ok(accept(id)).await;
    let Some(response::Body::Sent(s)) = alice.client.ok(group_send(id, 1, 6, b"hi all")).await
    else {
        panic!()
    };
    assert_eq!(s.copies, 3, "alice's companion, bob and carol; not the sender");
    for c in [&mut alice2.client, &mut bob.client, &mut carol.client] {
        let e = c.next_envelope().await;
        assert_eq!(
            (e.r#type, e.group_id.clone(), e.content.clone()),
            (7, id.to_vec(), b"hi all".to_vec())
        );
    }
    // A send for an older state is refused: the sender must learn the change first.
    let v2 = group_state(&alice, id, 2, v1.digest(), &[(&alice, true), (&bob, false)], &mut rng);
    alice
        .client
        .ok(request::Body::UpdateGroup(UpdateGroup { signed_state: v2.as_bytes().to_vec() }))
        .await;
    let r = alice.client.request(group_send(id, 1, 7, b"old")).await;
    assert_eq!(r.status(), Status::Conflict);
    // Carol is out: she can neither send nor read the chain any more.
    let r = carol.client.request(group_send(id, 2, 8, b"x")).await;
    assert_eq!(r.status(), Status::NotFound, "a former member cannot send");
    // A non-admin cannot change the group; replays and forks are refused.
    let by_bob = group_state(&bob, id, 3, v2.digest(), &[(&alice, true), (&bob, true)], &mut rng);
    let r = bob
        .client
        .request(request::Body::UpdateGroup(UpdateGroup {
            signed_state: by_bob.as_bytes().to_vec(),
        }))
        .await;
    assert_eq!(r.status(), Status::BadRequest, "{}", r.message);
    let r = alice
        .client
        .request(request::Body::UpdateGroup(UpdateGroup { signed_state: v2.as_bytes().to_vec() }))
        .await;
    assert_eq!(r.status(), Status::Conflict, "a replayed version");
    let fork = group_state(&alice, id, 3, [9; 32], &[(&alice, true)], &mut rng);
    let r = alice
        .client
        .request(request::Body::UpdateGroup(UpdateGroup { signed_state: fork.as_bytes().to_vec() }))
        .await;
    assert_eq!(r.status(), Status::BadRequest, "{}", r.message);
    // Bob may leave on his own.
    let leave = group_state(&bob, id, 3, v2.digest(), &[(&alice, true)], &mut rng);
    bob.client
        .ok(request::Body::UpdateGroup(UpdateGroup { signed_state: leave.as_bytes().to_vec() }))
        .await;
    // The chain, for members only.
    let Some(response::Body::GroupStates(chain)) = alice
        .client
        .ok(request::Body::GetGroup(GetGroup { group_id: id.to_vec(), after_version: 1 }))
        .await
    else {
        panic!()
    };
    assert_eq!(chain.states, vec![v2.as_bytes().to_vec(), leave.as_bytes().to_vec()]);
    assert_eq!(chain.latest_version, 3);
    let r = bob
        .client
        .request(request::Body::GetGroup(GetGroup { group_id: id.to_vec(), after_version: 0 }))
        .await;
    assert_eq!(r.status(), Status::NotFound);
}

#[tokio::test]
async fn test_a_group_send_for_other_devices_than_the_relays_is_refused_naming_the_members() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(12);
    let mut alice = register(&state, "alice", &mut rng).await;
    let _alice2 = link(&state, &mut alice, 1, 1, &mut rng).await;
    let mut bob = register(&state, "bob", &mut rng).await;
    let id = [9; 16];
    let v1 = group_state(&alice, id, 1, [0; 32], &[(&alice, true), (&bob, false)], &mut rng);
    alice
        .client
        .ok(request::Body::CreateGroup(CreateGroup { signed_state: v1.as_bytes().to_vec() }))
        .await;
    bob.client.ok(accept(id)).await;
    // The tags as the relay's current devices give them (alice's sending device left out).
    let mut accounts = [alice.account, bob.account];
    accounts.sort_unstable();
    let mut tags = Vec::new();
    for a in accounts {
        let devices: Vec<(u32, u32)> = state
            .current_devices(a)
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .filter(|(d, _)| (a, *d) != (alice.account, alice.device))
            .collect();
        tags.push(device_set_tag(&a, devices));
    }
    let send = |member_devices: Vec<u8>, timestamp: u64| {
        request::Body::SendGroupMessage(SendGroupMessage {
            group_id: id.to_vec(),
            timestamp,
            content: b"hi".to_vec(),
            version: 1,
            member_devices,
        })
    };
    // Right: stored for alice's companion and bob.
    let Some(response::Body::Sent(s)) = alice.client.ok(send(tags.concat(), 5)).await else {
        panic!()
    };
    assert_eq!(s.copies, 2);
    // Bob's tag for a device set he does not have (say, before his new device): refused,
    // naming bob only, and nothing stored.
    let bob_at = accounts.iter().position(|a| *a == bob.account).unwrap();
    let mut stale = tags.clone();
    stale[bob_at] = device_set_tag(&bob.account, [(1, 1), (2, 2)]);
    let r = alice.client.request(send(stale.concat(), 6)).await;
    assert_eq!(r.status(), Status::Conflict, "{}", r.message);
    let Some(response::Body::MismatchedDevices(m)) = r.body else { panic!("{:?}", r.body) };
    assert_eq!(
        m.accounts.iter().map(|a| a.account_id.clone()).collect::<Vec<_>>(),
        [bob.account.0.to_vec()]
    );
    // A tag list of the wrong length is a bad request.
    let r = alice.client.request(send(tags[0].to_vec(), 7)).await;
    assert_eq!(r.status(), Status::BadRequest, "{}", r.message);
    // Only the right one was stored: bob's queue holds the first message alone.
    let e = bob.client.next_envelope().await;
    assert_eq!(e.client_timestamp, 5);
}

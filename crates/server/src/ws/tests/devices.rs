//! Device lists through the socket: checked, only growing; connected devices hear of joins
//! and leaves.

use super::*;

#[tokio::test]
async fn test_device_lists_are_checked_and_only_grow() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(12);
    let mut bob = register(&state, "bob", &mut rng).await;
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut bob2 = link(&state, &mut bob, 1, 5, &mut rng).await;
    // Only the primary publishes.
    let r = bob2
        .client
        .request(request::Body::SetDeviceList(SetDeviceList { signed_device_list: vec![1, 2] }))
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    // An older version is refused.
    let now = Timestamp::from_millis(crate::now_ms());
    let old = DeviceList {
        account_id: bob.account,
        version: 4,
        timestamp: now,
        expires_at: now.saturating_add(Duration::from_secs(60)),
        entries: vec![],
        revoked: vec![],
    };
    let signed = SignedDeviceList::sign(&bob.identity, old, &mut rng);
    let r = bob
        .client
        .request(request::Body::SetDeviceList(SetDeviceList {
            signed_device_list: signed.to_bytes(),
        }))
        .await;
    assert_eq!(r.status(), Status::Conflict);
    // Signed by another key: refused.
    let forged = SignedDeviceList::sign(&alice.identity, signed.list().clone(), &mut rng);
    let r = bob
        .client
        .request(request::Body::SetDeviceList(SetDeviceList {
            signed_device_list: forged.to_bytes(),
        }))
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    // Others see no names or activity.
    let Some(response::Body::Devices(d)) = alice
        .client
        .ok(request::Body::GetDevices(GetDevices {
            account_id: bob.account.0.to_vec(),
            incoming: false,
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(d.devices.len(), 2);
    assert!(d.devices.iter().all(|d| d.name.is_empty() && d.last_seen_ms == 0));
    let Some(response::Body::Devices(own)) = bob
        .client
        .ok(request::Body::GetDevices(GetDevices {
            account_id: bob.account.0.to_vec(),
            incoming: false,
        }))
        .await
    else {
        panic!()
    };
    assert!(own.devices.iter().all(|d| d.name == "test device"));
    let _ = &mut bob2;
}

#[tokio::test]
async fn test_connected_devices_hear_when_a_companion_joins() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(23);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut first = link(&state, &mut alice, 1, 1, &mut rng).await;
    alice.client.pushes.clear();
    let second = link(&state, &mut alice, 2, 2, &mut rng).await;
    for client in [&mut alice.client, &mut first.client] {
        let linked = loop {
            if let Some(push::Body::DeviceLinked(d)) = client.next_push().await.body {
                break d.device_id;
            }
        };
        assert_eq!(linked, second.device);
    }
}

#[tokio::test]
async fn test_remaining_devices_hear_when_a_companion_leaves() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(24);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut first = link(&state, &mut alice, 1, 1, &mut rng).await;
    let mut second = link(&state, &mut alice, 2, 2, &mut rng).await;
    alice.client.pushes.clear();
    first.client.pushes.clear();
    // The second companion logs itself out: the primary and the first companion hear it.
    second.client.ok(request::Body::RemoveDevice(RemoveDevice { device_id: second.device })).await;
    for client in [&mut alice.client, &mut first.client] {
        let gone = loop {
            if let Some(push::Body::DeviceUnlinked(d)) = client.next_push().await.body {
                break d.device_id;
            }
        };
        assert_eq!(gone, second.device);
    }
    // The primary logs the first out: the primary (who acted) hears nothing of it.
    alice.client.ok(request::Body::RemoveDevice(RemoveDevice { device_id: first.device })).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !alice.client.pushes.iter().any(|p| matches!(p.body, Some(push::Body::DeviceUnlinked(_)))),
        "the acting device is not told"
    );
}

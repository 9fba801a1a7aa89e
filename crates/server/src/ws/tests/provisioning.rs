//! Provisioning addresses: one link message to the waiting socket, bad senders refused.

use super::*;

fn provisioning_address(body: Option<response::Body>) -> Vec<u8> {
    match body {
        Some(response::Body::ProvisioningAddress(a)) => {
            assert_eq!(a.address.len(), 16);
            assert!(a.expires_at_ms > crate::now_ms(), "expires in the future");
            a.address
        }
        other => panic!("expected an address, got {other:?}"),
    }
}

fn send_provisioning(address: &[u8], message: Vec<u8>) -> request::Body {
    request::Body::SendProvisioning(SendProvisioning { address: address.to_vec(), message })
}

#[tokio::test]
async fn test_provisioning_delivers_one_message_to_the_waiting_socket() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(21);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut waiting = Client::connect(&state).await;
    let first = provisioning_address(
        waiting.ok(request::Body::OpenProvisioning(OpenProvisioning {})).await,
    );
    // Rotating replaces the address: the old one is gone.
    let address = provisioning_address(
        waiting.ok(request::Body::OpenProvisioning(OpenProvisioning {})).await,
    );
    assert_ne!(first, address);
    let r = alice.client.request(send_provisioning(&first, vec![1, 2, 3])).await;
    assert_eq!(r.status(), Status::NotFound, "{}", r.message);
    assert!(r.message.contains("expired"), "{}", r.message);
    alice.client.ok(send_provisioning(&address, vec![4, 5, 6])).await;
    match waiting.next_push().await.body {
        Some(push::Body::Provisioning(p)) => assert_eq!(p.message, vec![4, 5, 6]),
        other => panic!("expected the link message, got {other:?}"),
    }
    // Single use.
    let r = alice.client.request(send_provisioning(&address, vec![7])).await;
    assert_eq!(r.status(), Status::NotFound);
}

#[tokio::test]
async fn test_provisioning_refuses_bad_senders_and_closes_with_the_socket() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(22);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut companion = link(&state, &mut alice, 1, 1, &mut rng).await;
    let mut waiting = Client::connect(&state).await;
    let address = provisioning_address(
        waiting.ok(request::Body::OpenProvisioning(OpenProvisioning {})).await,
    );
    // Only a primary links, with a bounded message, to a 16-byte address; an authenticated
    // socket cannot hold an address.
    let r = companion.client.request(send_provisioning(&address, vec![1])).await;
    assert_eq!(r.status(), Status::Unauthorized);
    let r = alice.client.request(send_provisioning(&address, vec![0; 8 * 1024 + 1])).await;
    assert_eq!(r.status(), Status::TooLarge);
    let r = alice.client.request(send_provisioning(&address[..15], vec![1])).await;
    assert_eq!(r.status(), Status::BadRequest);
    let r = alice.client.request(request::Body::OpenProvisioning(OpenProvisioning {})).await;
    assert_eq!(r.status(), Status::BadRequest);
    // Nobody unauthenticated sends.
    let mut stranger = Client::connect(&state).await;
    let r = stranger.request(send_provisioning(&address, vec![1])).await;
    assert_eq!(r.status(), Status::Unauthenticated);
    // The address dies with its socket.
    drop(waiting);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = alice.client.request(send_provisioning(&address, vec![1])).await;
    assert_eq!(r.status(), Status::NotFound);
}

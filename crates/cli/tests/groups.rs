//! Groups through the engine: one sender-key ciphertext per message, fanned out by the relay
//! to every member device; removing a member replaces the sender key.

mod support;

use std::time::Duration;

use support::{TestServer, expect_message, messages};
use tandem_cli::Device;
use tandem_core::client::Conversation;
use tandem_core::sender_keys::DistributionId;
use tandem_core::store::{SenderKeyName, SenderKeyStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_group_messages_reach_every_member_device_and_removal_rotates() {
    let server = TestServer::start().await;
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let mut alice2 = Device::link(&alice, "alice laptop").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let mut carol = Device::register(&server.url, "carol").await.unwrap();
    let (b, c) = (bob.account_id().await, carol.account_id().await);
    let group = alice.client.create_group(alice.connection(), &[b, c]).await.unwrap();

    let report = alice.send_group_text(group, "hello group").await.unwrap();
    assert_eq!(
        report.devices.len(),
        4,
        "alice's laptop, bob's two devices, carol: {:?}",
        report.devices
    );
    for d in [&mut alice2, &mut bob, &mut bob2, &mut carol] {
        let m = expect_message(d, "hello group").await;
        assert_eq!(m.conversation, Conversation::Group(group));
    }
    bob2.send_group_text(group, "hi from bob's laptop").await.unwrap();
    for d in [&mut alice, &mut alice2, &mut bob, &mut carol] {
        expect_message(d, "hi from bob's laptop").await;
    }

    let me = alice.client.address().await;
    let key = SenderKeyName { sender: me, distribution_id: DistributionId(group) };
    let before = alice
        .client
        .store()
        .load_sender_key(&key)
        .await
        .unwrap()
        .unwrap()
        .current()
        .unwrap()
        .chain_id();
    alice.client.modify_group(alice.connection(), group, &[], &[c]).await.unwrap();
    alice.send_group_text(group, "carol is gone").await.unwrap();
    let after = alice
        .client
        .store()
        .load_sender_key(&key)
        .await
        .unwrap()
        .unwrap()
        .current()
        .unwrap()
        .chain_id();
    assert_ne!(before, after, "the sender key was replaced after a member left");
    for d in [&mut alice2, &mut bob, &mut bob2] {
        expect_message(d, "carol is gone").await;
    }
    let to_carol = messages(&mut carol, Duration::from_secs(1)).await;
    assert!(to_carol.iter().all(|m| m.body != "carol is gone"), "a removed member gets nothing");
    server.stop().await;
}

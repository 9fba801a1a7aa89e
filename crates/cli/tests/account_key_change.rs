//! A contact re-registers (new account key) through the real relay: an unverified contact's
//! new key is trusted with a notice; a verified contact's is held, and so are the sends to
//! them, until the person accepts it. The old companions are logged out by the reset.

mod support;

use support::{TestServer, expect_message, expect_message_tolerating};
use tandem_cli::{Device, now, system_rng};
use tandem_core::client::{ClientError, Event, OutgoingState};
use tandem_core::store::ClientStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_an_unverified_contacts_new_key_is_trusted_with_a_notice() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let b = bob.account_id().await;
    alice
        .client
        .send_text(alice.connection(), b, "before", now(), &mut system_rng())
        .await
        .unwrap();
    expect_message(&mut bob, "before").await;
    expect_message(&mut bob2, "before").await;
    let old_key =
        alice.client.device_list(alice.connection(), b, now(), false).await.unwrap().account_key;

    let mut bob = bob.reset_account().await.unwrap();
    assert_eq!(bob.account_id().await, b, "same account, same handle");
    // The reset logged the companion out.
    assert!(
        bob2.client
            .authenticate(
                &tandem_cli::Connection::connect(&server.url).await.unwrap().0,
                &mut system_rng()
            )
            .await
            .is_err()
    );

    let report = alice
        .client
        .send_text(alice.connection(), b, "after", now(), &mut system_rng())
        .await
        .unwrap();
    assert_eq!(report.devices.iter().filter(|(a, _)| *a == b).count(), 1, "only the new primary");
    // Receipts the old companion sent before the reset may still arrive: refused, as it is
    // no longer in the account's list.
    expect_message_tolerating(&mut bob, "after", |e| {
        matches!(e, Event::Rejected { device: 2, .. })
    })
    .await;
    let list = alice.client.device_list(alice.connection(), b, now(), false).await.unwrap();
    assert_ne!(list.account_key, old_key);
    assert!(list.key_changed && !list.verified && list.pending_key.is_none());
    alice.client.acknowledge_key_change(b).await.unwrap();
    let list = alice.client.device_list(alice.connection(), b, now(), false).await.unwrap();
    assert!(!list.key_changed);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_verified_contacts_new_key_holds_sends_until_accepted() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    alice
        .client
        .send_text(alice.connection(), b, "before", now(), &mut system_rng())
        .await
        .unwrap();
    expect_message(&mut bob, "before").await;
    // Alice compares codes with Bob and marks him verified.
    let code = alice.client.security_code(alice.connection(), b, now()).await.unwrap();
    let bobs =
        bob.client.security_code(bob.connection(), alice.account_id().await, now()).await.unwrap();
    assert_eq!(
        alice
            .client
            .verify_scanned(alice.connection(), b, &bobs.code.scannable(), now())
            .await
            .unwrap(),
        tandem_core::fingerprint::ScanOutcome::Verified
    );
    let digits = code.code.digits();

    let mut bob = bob.reset_account().await.unwrap();
    let held =
        alice.client.send_text(alice.connection(), b, "held", now(), &mut system_rng()).await;
    assert!(matches!(held, Err(ClientError::AccountKeyChanged(a)) if a == b), "{held:?}");
    let outbox = alice.client.store().load_outbox().await.unwrap();
    assert_eq!(outbox.len(), 1, "the message waits in the outbox");
    let record = alice.client.store().load_message(&outbox[0].id).await.unwrap().unwrap();
    assert_eq!(record.state, OutgoingState::Queued);
    // Flushing does not send it either, and the code shown is still the verified one.
    let flushed =
        alice.client.flush_outbox(alice.connection(), now(), &mut system_rng()).await.unwrap();
    assert!(flushed.iter().all(|(_, r)| matches!(r, Err(ClientError::AccountKeyChanged(_)))));
    let shown = alice.client.security_code(alice.connection(), b, now()).await.unwrap();
    assert_eq!(shown.code.digits(), digits);
    assert!(shown.list.verified && shown.list.pending_key.is_some());
    // Marking verified again is refused while the change is pending.
    assert!(matches!(
        alice.client.set_verified(b, true).await,
        Err(ClientError::AccountKeyChanged(_))
    ));

    // Alice accepts the new code: the held message goes to Bob's new key, once.
    alice.client.acknowledge_key_change(b).await.unwrap();
    let flushed =
        alice.client.flush_outbox(alice.connection(), now(), &mut system_rng()).await.unwrap();
    assert!(flushed.iter().all(|(_, r)| r.is_ok()), "{flushed:?}");
    expect_message(&mut bob, "held").await;
    let after = alice.client.security_code(alice.connection(), b, now()).await.unwrap();
    assert_ne!(after.code.digits(), digits, "a new account key, new digits");
    assert!(!after.list.verified);
    server.stop().await;
}

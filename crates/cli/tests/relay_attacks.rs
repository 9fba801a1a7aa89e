//! The relay as the attacker, against real engines: it edits its own database, refuses
//! devices it cannot prove were removed, and strangers with accounts try what they can.
//! Each test is named after what it proves.

mod support;

use std::time::Duration;

use support::{TestServer, WAIT, events, expect_message, relay_db};
use tandem_cli::{Device, DeviceError, DeviceEvent, now, system_rng};
use tandem_core::client::{ClientError, Conversation, Event, RejectReason};
use tandem_core::devices::AdvError;
use tandem_core::transport::RelayTransport;
use tandem_core::wire::content::{Content, MessageRef, ReceiptMessage, ReceiptType, content};
use tandem_server::Storage;

/// A device row as the relay stored it, to put back after a removal.
fn device_row(
    server: &TestServer,
    account: tandem_core::AccountId,
    device: u32,
) -> Vec<rusqlite::types::Value> {
    let db = relay_db(server);
    let mut stmt =
        db.prepare("SELECT * FROM devices WHERE account_id = ?1 AND device_id = ?2").unwrap();
    let n = stmt.column_count();
    stmt.query_row(rusqlite::params![account.0.as_slice(), device], |r| {
        (0..n).map(|i| r.get::<_, rusqlite::types::Value>(i)).collect()
    })
    .unwrap()
}

fn reinsert_device(server: &TestServer, row: &[rusqlite::types::Value]) {
    let db = relay_db(server);
    let marks = vec!["?"; row.len()].join(", ");
    db.execute(
        &format!("INSERT INTO devices VALUES ({marks})"),
        rusqlite::params_from_iter(row.iter()),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_relay_cannot_resurrect_a_removed_device() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let stolen = Device::link(&bob, "stolen phone").await.unwrap();
    let (a, b) = (alice.account_id().await, bob.account_id().await);
    let gone = stolen.device_id().await;
    alice.send_text(b, "one").await.unwrap();
    expect_message(&mut bob2, "one").await;
    // Bob logs the stolen phone out; the relay keeps its row and puts it back.
    let row = device_row(&server, b, gone.get());
    bob.client.remove_device(bob.connection(), gone, now(), &mut system_rng()).await.unwrap();
    reinsert_device(&server, &row);
    server.state.invalidate_devices(b);
    // Bob's next list (a renewal, or a new link) refuses it and says so.
    let report =
        bob.client.publish_device_list(bob.connection(), now(), &mut system_rng()).await.unwrap();
    assert_eq!(report.refused, vec![(gone.get(), AdvError::Revoked)], "the owner is warned");
    assert!(!report.listed.contains(&gone));
    let bob4 = Device::link(&bob, "new tablet").await.unwrap();
    // Nobody sends it anything: not a contact, not Bob's own devices.
    let report = alice.send_text(b, "two").await.unwrap();
    assert!(report.devices.iter().all(|(acct, d)| !(*acct == b && *d == gone)), "{report:?}");
    let report = bob2.send_text(a, "three").await.unwrap();
    assert!(report.devices.iter().all(|(_, d)| *d != gone), "{report:?}");
    assert!(server.state.storage.fetch_queue(b, gone.get(), 0, 100).await.unwrap().is_empty());
    // Contacts know its key index is revoked, whatever later lists say.
    let list = alice.client.device_list(alice.connection(), b, now(), true).await.unwrap();
    assert!(list.device(gone).is_none());
    assert!(!list.revoked.is_empty());
    // The resurrected device can log in (its row is back) but may not send.
    let mut stolen = stolen;
    stolen.reconnect().await.unwrap();
    let refused = stolen.send_text(a, "from the thief").await.unwrap_err();
    assert!(
        matches!(
            refused,
            ClientError::Server { status: tandem_core::wire::relay::Status::Unlisted, .. }
                | ClientError::Adv(_)
                | ClientError::SendFailed { .. }
        ),
        "{refused:?}"
    );
    drop(bob4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_relay_cannot_make_a_device_delete_its_keys() {
    let server = TestServer::start().await;
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "laptop").await.unwrap();
    let mut bob3 = Device::link(&bob, "tablet").await.unwrap();
    let b = bob.account_id().await;
    // The relay forgets the primary and a companion (it deletes their rows) and refuses them.
    let db = relay_db(&server);
    for d in [1, bob2.device_id().await.get()] {
        db.execute(
            "DELETE FROM devices WHERE account_id = ?1 AND device_id = ?2",
            rusqlite::params![b.0.as_slice(), d],
        )
        .unwrap();
    }
    drop(db);
    for (who, device) in [("primary", &mut bob), ("companion", &mut bob2)] {
        let refused = device.reconnect().await.unwrap_err();
        assert!(
            matches!(refused, DeviceError::Client(ClientError::Removed { proven: false })),
            "{who}: {refused:?}"
        );
    }
    // The untouched companion was not told anything.
    let seen = bob3.drain_events(Duration::from_millis(200)).await;
    assert!(!seen.iter().any(|e| matches!(e, DeviceEvent::Removed { .. })));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_genuine_removal_is_proven_by_the_account_key() {
    let server = TestServer::start().await;
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "laptop").await.unwrap();
    let gone = bob2.device_id().await;
    bob.client.remove_device(bob.connection(), gone, now(), &mut system_rng()).await.unwrap();
    let seen = bob2.drain_events(Duration::from_secs(1)).await;
    assert!(seen.contains(&DeviceEvent::Removed { proven: true }), "{seen:?}");
    let refused = bob2.reconnect().await.unwrap_err();
    assert!(
        matches!(refused, DeviceError::Client(ClientError::Removed { proven: true })),
        "{refused:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_message_from_a_contact_who_just_reregistered_is_not_lost() {
    let server = TestServer::start().await;
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let (a, b) = (alice.account_id().await, bob.account_id().await);
    bob.send_text(a, "before").await.unwrap();
    expect_message(&mut alice, "before").await;
    // Alice's cached list of Bob is fresh; Bob starts over and writes at once.
    let bob = bob.reset_account().await.unwrap();
    bob.send_text(a, "after my reset").await.unwrap();
    let m = expect_message(&mut alice, "after my reset").await;
    assert_eq!(m.conversation, Conversation::Direct(b));
    let list = alice.client.device_list(alice.connection(), b, now(), false).await.unwrap();
    assert!(list.key_changed, "the change is shown");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_an_unverified_contacts_key_changes_are_taken_once_a_day_then_held() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    alice.send_text(b, "hi").await.unwrap();
    let bob = bob.reset_account().await.unwrap();
    // The first change is taken, with a notice.
    let list = alice.client.device_list(alice.connection(), b, now(), true).await.unwrap();
    assert!(list.key_changed && list.pending_key.is_none());
    // A second one the same day waits for Alice.
    let bob = bob.reset_account().await.unwrap();
    let held = alice.client.device_list(alice.connection(), b, now(), true).await.unwrap_err();
    assert!(matches!(held, ClientError::AccountKeyChanged(x) if x == b), "{held:?}");
    alice.client.acknowledge_key_change(b).await.unwrap();
    alice.send_text(b, "after accepting").await.unwrap();
    drop(bob);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_strangers_cannot_use_up_a_devices_lookups() {
    // Small lookup budgets, so a few strangers would exhaust them.
    let server = TestServer::start_with(|s| {
        s.lookup_per_minute = 15.0;
        s.auth_per_minute = 1000.0;
    })
    .await;
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let carol = Device::register(&server.url, "carol").await.unwrap();
    let c = carol.account_id().await;
    let b = bob.account_id().await;
    // Twelve strangers write to Bob: each is a new account Bob must look up.
    for i in 0..12 {
        let stranger = Device::register(&server.url, &format!("stranger{i}")).await.unwrap();
        stranger.send_text(b, "buy now").await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = bob.drain_events(Duration::from_millis(300)).await;
    // Bob's own lookups are untouched: he can still write to Carol.
    bob.send_text(c, "still here").await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_receipts_count_only_from_the_conversations_peer() {
    let server = TestServer::start().await;
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let mallory = Device::register(&server.url, "mallory").await.unwrap();
    let (a, b) = (alice.account_id().await, bob.account_id().await);
    let sent = alice.send_text(b, "for bob only").await.unwrap();
    let id = sent.id.unwrap();
    // Mallory claims to have read it.
    let receipt = Content {
        body: Some(content::Body::Receipt(ReceiptMessage {
            r#type: ReceiptType::Read as i32,
            messages: vec![MessageRef { device: id.device.get(), timestamp: id.timestamp }],
        })),
    };
    mallory
        .client
        .hazmat_send_content(mallory.connection(), a, &receipt, now(), &mut system_rng())
        .await
        .unwrap();
    let seen = events(&mut alice, Duration::from_secs(1)).await;
    assert!(
        seen.iter().any(|e| matches!(
            e,
            Event::Rejected { reason: RejectReason::ReceiptFromStranger, .. }
        )),
        "{seen:?}"
    );
    let m = alice.client.message(&id).await.unwrap().unwrap();
    assert!(m.read_by.is_empty() && m.delivered_to.iter().all(|(acct, _)| *acct == b));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_companion_is_signed_in_only_after_the_person_confirmed_the_codes() {
    use tandem_core::client::Client;
    use tandem_core::link::{LinkCode, LinkRequest};
    use tandem_core::prekeys::generate_registration_id;
    use tandem_core::store::MemoryStore;
    use tandem_core::wire::relay::{OpenProvisioning, push, request, response};
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut rng = system_rng();
    let identity = tandem_core::IdentityKeyPair::generate(&mut rng);
    let (conn, mut pushes) = tandem_cli::Connection::connect(&server.url).await.unwrap();
    let r = conn.request(request::Body::OpenProvisioning(OpenProvisioning {})).await.unwrap();
    let Some(response::Body::ProvisioningAddress(addr)) = r.body else { panic!() };
    let expires = tandem_core::Timestamp::from_millis(now().as_millis() + 60_000);
    let req = LinkRequest::new(
        addr.address.as_slice().try_into().unwrap(),
        *identity.identity_key(),
        expires,
        "laptop",
        &mut rng,
    );
    let code = LinkCode::parse(&req.code().to_text()).unwrap();
    let (_, key_index) = alice
        .client
        .link_companion(alice.connection(), &code, "phone", now(), &mut rng)
        .await
        .unwrap();
    let sealed = loop {
        if let Some(push::Body::Provisioning(p)) = pushes.recv().await.unwrap().body {
            break p.message;
        }
    };
    let (link, _) = req.open(&sealed).unwrap();
    let store = MemoryStore::new(identity, generate_registration_id(&mut rng));
    let laptop = Client::register_linked(store, &conn, link, "laptop", "cli", now(), &mut rng)
        .await
        .unwrap();
    let (_, laptop_id) = laptop.whoami().await;
    // Registered on the relay, but the person has not confirmed: not in the list.
    let report =
        alice.client.publish_device_list(alice.connection(), now(), &mut rng).await.unwrap();
    assert!(!report.listed.contains(&laptop_id));
    // Confirmed: in.
    let report =
        alice.client.confirm_link(alice.connection(), key_index, now(), &mut rng).await.unwrap();
    assert!(report.listed.contains(&laptop_id));
    let _ = WAIT;
    server.stop().await;
}

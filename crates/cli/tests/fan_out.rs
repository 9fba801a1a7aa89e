//! Client fan-out against the real relay: every device of the recipient and every other
//! device of the sender gets every message, companions work with the primary offline, and
//! sends repair themselves when devices come and go.

mod support;

use std::time::Duration;

use support::{TestServer, WAIT, expect_message, messages};
use tandem_cli::{Device, DeviceEvent, now, system_rng};
use tandem_core::client::{Conversation, Event, OutgoingState};
use tandem_server::Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_every_device_of_both_accounts_gets_every_message() {
    let server = TestServer::start().await;
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let mut alice2 = Device::link(&alice, "alice laptop").await.unwrap();
    let mut alice3 = Device::link(&alice, "alice tablet").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let mut bob3 = Device::link(&bob, "bob browser").await.unwrap();
    let (a, b) = (alice.account_id().await, bob.account_id().await);

    // A companion of Alice writes to Bob.
    let report = alice2.send_text(b, "hello from alice's laptop").await.unwrap();
    assert_eq!(
        report.devices.len(),
        5,
        "3 devices of Bob + Alice's 2 other devices: {:?}",
        report.devices
    );
    assert!(report.rejected.is_empty());
    for d in [&mut bob, &mut bob2, &mut bob3] {
        let m = expect_message(d, "hello from alice's laptop").await;
        assert!(!m.outgoing);
        assert_eq!((m.id.sender, m.conversation), (a, Conversation::Direct(a)));
    }
    for d in [&mut alice, &mut alice3] {
        let m = expect_message(d, "hello from alice's laptop").await;
        assert!(m.outgoing, "a sent transcript on the sender's other devices");
        assert_eq!(m.conversation, Conversation::Direct(b));
    }

    // Bob's third device answers; all of Alice's devices and Bob's others see it.
    bob3.send_text(a, "hi alice").await.unwrap();
    for d in [&mut alice, &mut alice2, &mut alice3] {
        assert!(!expect_message(d, "hi alice").await.outgoing);
    }
    for d in [&mut bob, &mut bob2] {
        assert!(expect_message(d, "hi alice").await.outgoing);
    }

    // Every one of Bob's devices confirmed delivery of Alice's message.
    let id = report.id.unwrap();
    let mut delivered = 0;
    for _ in 0..100 {
        let m = alice2.client.message(&id).await.unwrap().unwrap();
        assert_eq!(m.state, OutgoingState::Sent);
        delivered = m.delivered_to.iter().filter(|(acct, _)| *acct == b).count();
        if delivered == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, 3, "delivery receipts from each of Bob's devices");

    // Reading on one device tells the sender and syncs to the reader's other devices.
    let read = bob2.client.mark_read(bob2.connection(), a, now(), &mut system_rng()).await.unwrap();
    assert_eq!(read, 1);
    let mut saw_read = false;
    for _ in 0..100 {
        if alice2.client.message(&id).await.unwrap().unwrap().read_by.contains(&b) {
            saw_read = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_read, "the sender learns the message was read");
    let events = bob.drain_events(Duration::from_millis(800)).await;
    assert!(
        events.iter().any(|e| matches!(e, DeviceEvent::Engine(Event::ReadElsewhere { .. }))),
        "{events:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_companions_talk_with_primaries_offline() {
    let server = TestServer::start().await;
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let mut alice2 = Device::link(&alice, "alice laptop").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let (a, b) = (alice.account_id().await, bob.account_id().await);
    alice.disconnect().await;
    bob.disconnect().await;
    for i in 0..5 {
        alice2.send_text(b, &format!("a{i}")).await.unwrap();
        expect_message(&mut bob2, &format!("a{i}")).await;
        bob2.send_text(a, &format!("b{i}")).await.unwrap();
        expect_message(&mut alice2, &format!("b{i}")).await;
    }
    // The primaries come back and catch up, in order.
    alice.reconnect().await.unwrap();
    let got: Vec<String> =
        messages(&mut alice, Duration::from_secs(2)).await.into_iter().map(|m| m.body).collect();
    assert_eq!(got, ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_device_linked_mid_conversation_is_repaired_on_next_send() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    let first = alice.send_text(b, "before").await.unwrap();
    assert_eq!(first.attempts, 1);
    expect_message(&mut bob, "before").await;
    // Bob links a device; Alice's cached list does not have it.
    let mut bob2 = Device::link(&bob, "new laptop").await.unwrap();
    let report = alice.send_text(b, "after").await.unwrap();
    assert_eq!(
        report.attempts, 2,
        "the server named the missing device; the client fetched and retried"
    );
    let new_device = bob2.device_id().await;
    assert!(report.devices.iter().any(|(acct, d)| *acct == b && *d == new_device));
    expect_message(&mut bob2, "after").await;
    expect_message(&mut bob, "after").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_removed_device_gets_nothing_and_is_closed() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "lost phone").await.unwrap();
    let b = bob.account_id().await;
    alice.send_text(b, "one").await.unwrap();
    expect_message(&mut bob2, "one").await;
    let gone = bob2.device_id().await;
    bob.client.remove_device(bob.connection(), gone, now(), &mut system_rng()).await.unwrap();
    let events = bob2.drain_events(Duration::from_secs(1)).await;
    // Told with a list the account key signed: it may delete its data.
    assert!(events.contains(&DeviceEvent::Removed { proven: true }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, DeviceEvent::Closed(Some((4403, _))))), "{events:?}");
    let report = alice.send_text(b, "two").await.unwrap();
    assert!(report.devices.iter().all(|(_, d)| *d != gone), "no copy for the removed device");
    // The removed device's last delivery receipt may still reach its former primary, which
    // no longer accepts anything from it.
    let from_removed =
        |e: &Event| matches!(e, Event::Rejected { device, .. } if *device == gone.get());
    support::expect_message_tolerating(&mut bob, "two", from_removed).await;
    assert!(server.state.storage.fetch_queue(b, gone.get(), 0, 10).await.unwrap().is_empty());
    // Its old credentials no longer work.
    assert!(bob2.reconnect().await.is_err());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_offline_device_gets_queued_messages_in_order_per_sender_device() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let alice2 = Device::link(&alice, "alice laptop").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    alice.send_text(b, "warm-up").await.unwrap();
    expect_message(&mut bob, "warm-up").await;
    bob.disconnect().await;
    let (d1, d2) = (alice.device_id().await, alice2.device_id().await);
    let sends = (0..20).map(|i| {
        let (a1, a2) = (&alice, &alice2);
        async move {
            a1.send_text(b, &format!("1:{i}")).await.unwrap();
            a2.send_text(b, &format!("2:{i}")).await.unwrap();
        }
    });
    for s in sends {
        s.await;
    }
    bob.reconnect().await.unwrap();
    let got = messages(&mut bob, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 40);
    for device in [d1, d2] {
        let prefix = if device == d1 { "1:" } else { "2:" };
        let order: Vec<String> =
            got.iter().filter(|m| m.id.device == device).map(|m| m.body.clone()).collect();
        let expected: Vec<String> = (0..20).map(|i| format!("{prefix}{i}")).collect();
        assert_eq!(order, expected, "in send order per sender device");
    }
    let _ = WAIT;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_accounts_are_found_by_handle_and_by_id() {
    use tandem_core::transport::RelayTransport;
    use tandem_core::wire::relay::{LookupAccount, Status, request, response};
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    let lookup = |handle: &str, id: Vec<u8>| {
        request::Body::LookupAccount(LookupAccount { handle: handle.into(), account_id: id })
    };
    for body in [lookup(" Bob ", vec![]), lookup("", b.0.to_vec())] {
        let r = alice.connection().request(body).await.unwrap();
        let Some(response::Body::Account(info)) = r.body else { panic!("{r:?}") };
        assert_eq!((info.account_id.as_slice(), info.handle.as_str()), (&b.0[..], "bob"));
    }
    let r = alice.connection().request(lookup("nobody", vec![])).await.unwrap();
    assert_eq!(r.status(), Status::NotFound);
    let r = alice.connection().request(lookup("", vec![1, 2, 3])).await.unwrap();
    assert_eq!(r.status(), Status::BadRequest, "{}", r.message);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_reading_a_long_backlog_marks_every_page_and_tells_the_sender() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let (a, b) = (alice.account_id().await, bob.account_id().await);
    let mut ids = Vec::new();
    for i in 0..1_200 {
        ids.push(alice.send_text(b, &format!("backlog {i}")).await.unwrap().id.unwrap());
    }
    let got = messages(&mut bob, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1_200);
    // More than two pages of unread: all marked, the sender told of every one.
    let read = bob.client.mark_read(bob.connection(), a, now(), &mut system_rng()).await.unwrap();
    assert_eq!(read, 1_200);
    assert_eq!(
        bob.client.mark_read(bob.connection(), a, now(), &mut system_rng()).await.unwrap(),
        0
    );
    for id in [ids[0], ids[599], ids[1_199]] {
        let mut seen = false;
        for _ in 0..100 {
            if alice.client.message(&id).await.unwrap().unwrap().read_by.contains(&b) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "read receipt for {id:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_sent_message_leaves_the_outbox_with_the_next_save_and_is_never_sent_twice() {
    use tandem_core::store::ClientStore;
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    let chat = Conversation::Direct(b);
    let first = alice.client.queue_text(chat, "first", now()).await.unwrap();
    alice.client.send_queued(alice.connection(), first, now(), &mut system_rng()).await.unwrap();
    // Sent, and its sent mark waits for a save: the store still has it queued.
    let store = alice.client.store();
    assert_eq!(store.load_outbox().await.unwrap().len(), 1);
    assert_eq!(store.load_message(&first).await.unwrap().unwrap().state, OutgoingState::Queued);
    // Flushing (or sending it again) does not send it twice.
    let flushed =
        alice.client.flush_outbox(alice.connection(), now(), &mut system_rng()).await.unwrap();
    assert!(flushed.is_empty(), "{flushed:?}");
    let again = alice.client.send_queued(alice.connection(), first, now(), &mut system_rng()).await;
    assert_eq!(again.unwrap().attempts, 0);
    // The next save carries the mark: queueing the second message.
    let second = alice.client.queue_text(chat, "second", now()).await.unwrap();
    let outbox: Vec<_> = store.load_outbox().await.unwrap().iter().map(|e| e.id).collect();
    assert_eq!(outbox, [second]);
    let marked = store.load_message(&first).await.unwrap().unwrap();
    assert_eq!(marked.state, OutgoingState::Sent);
    assert!(marked.server_time.is_some());
    alice.client.send_queued(alice.connection(), second, now(), &mut system_rng()).await.unwrap();
    alice.client.settle().await.unwrap();
    assert!(store.load_outbox().await.unwrap().is_empty());
    assert_eq!(store.load_message(&second).await.unwrap().unwrap().state, OutgoingState::Sent);
    // Bob got each once: no copy of either came again.
    let seen = support::events(&mut bob, Duration::from_millis(500)).await;
    assert!(!seen.iter().any(|e| matches!(e, Event::Duplicate)), "{seen:?}");
    let got: Vec<&str> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.body.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(got, ["first", "second"]);
    server.stop().await;
}

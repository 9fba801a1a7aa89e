//! Groups through the engine on signed group state: one sender-key ciphertext per message,
//! fanned out by the relay to every accepted member device; membership is what the admins
//! signed, never the relay's word.

mod support;

use std::time::Duration;

use support::{
    TestServer, events, expect_message, expect_message_tolerating, forged_group_send,
    message_until, messages, relay_db,
};
use tandem_cli::{Device, now, system_rng};
use tandem_core::client::{ClientError, Conversation, Event, GroupEdit, Notice, RejectReason};
use tandem_core::sender_keys::{DistributionId, create_sender_key_distribution_message};
use tandem_core::store::{ProtocolStore, SenderKeyName, SenderKeyStore};
use tandem_core::transport::RelayTransport;
use tandem_core::wire::content::{
    Content, DataMessage, MessageRef, ReceiptMessage, ReceiptType, content,
};
use tandem_core::wire::relay::Status;

/// Where this device's stored sender key for `group` stands (its next iteration).
async fn stored_iteration(device: &Device, group: [u8; 16]) -> u32 {
    let me = device.client.address().await;
    let key = SenderKeyName { sender: me, distribution_id: DistributionId(group) };
    let record = device.client.store().load_sender_key(&key).await.unwrap().unwrap();
    record.current().unwrap().iteration()
}

async fn sender_key_chain(device: &Device, group: [u8; 16]) -> u32 {
    let me = device.client.address().await;
    let key = SenderKeyName { sender: me, distribution_id: DistributionId(group) };
    let record = device.client.store().load_sender_key(&key).await.unwrap().unwrap();
    record.current().unwrap().chain_id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_group_messages_reach_every_accepted_member_device_and_removal_rotates() {
    let server = TestServer::start().await;
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let mut alice2 = Device::link(&alice, "alice laptop").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let mut carol = Device::register(&server.url, "carol").await.unwrap();
    let (b, c) = (bob.account_id().await, carol.account_id().await);
    let group = alice
        .client
        .create_group(alice.connection(), "climbing", &[b, c], now(), &mut system_rng())
        .await
        .unwrap();
    // Bob and Carol hear of it end to end, as an invitation: Alice is a stranger to them.
    for d in [&mut bob, &mut bob2, &mut carol] {
        let e = events(d, Duration::from_millis(500)).await;
        assert!(e.contains(&Event::GroupUpdated { group, invited: true }), "{e:?}");
        assert!(e.iter().any(|e| matches!(e, Event::Message(m)
            if matches!(m.notice, Some(Notice::Group { created: true, .. })))));
    }
    // Until they accept, the relay routes them nothing.
    let report = alice.send_group_text(group, "before anyone accepted").await.unwrap();
    expect_message(&mut alice2, "before anyone accepted").await;
    let _ = report;
    assert!(messages(&mut bob, Duration::from_millis(300)).await.is_empty());
    bob.client.accept_group(bob.connection(), group, true, now(), &mut system_rng()).await.unwrap();
    carol
        .client
        .accept_group(carol.connection(), group, true, now(), &mut system_rng())
        .await
        .unwrap();
    // Bob's laptop is told end to end that he joined on his phone: no invitation there.
    let e = events(&mut bob2, Duration::from_millis(500)).await;
    assert!(e.contains(&Event::GroupUpdated { group, invited: false }), "{e:?}");
    assert!(bob2.client.group(group).await.unwrap().unwrap().accepted);

    let report = alice.send_group_text(group, "hello group").await.unwrap();
    assert_eq!(report.devices.len(), 4, "alice's laptop, bob's two, carol: {:?}", report.devices);
    for d in [&mut alice2, &mut bob, &mut bob2, &mut carol] {
        let m = expect_message(d, "hello group").await;
        assert_eq!(m.conversation, Conversation::Group(group));
    }
    bob2.send_group_text(group, "hi from bob's laptop").await.unwrap();
    for d in [&mut alice, &mut alice2, &mut bob, &mut carol] {
        expect_message(d, "hi from bob's laptop").await;
    }

    let before = sender_key_chain(&alice, group).await;
    let edit = GroupEdit { remove: vec![c], ..GroupEdit::default() };
    alice
        .client
        .update_group(alice.connection(), group, &edit, now(), &mut system_rng())
        .await
        .unwrap();
    alice.send_group_text(group, "carol is gone").await.unwrap();
    let after = sender_key_chain(&alice, group).await;
    assert_ne!(before, after, "the sender key was replaced after a member left");
    for d in [&mut alice2, &mut bob, &mut bob2] {
        expect_message(d, "carol is gone").await;
    }
    let to_carol = events(&mut carol, Duration::from_secs(1)).await;
    assert!(
        !to_carol.iter().any(|e| matches!(e, Event::Message(m) if m.body == "carol is gone")),
        "a removed member gets nothing"
    );
    // Carol saw her removal in the chat.
    assert!(to_carol.iter().any(|e| matches!(e, Event::Message(m)
        if matches!(&m.notice, Some(Notice::Group { change, .. }) if change.removed == [c]))));
    let state = carol.client.group(group).await.unwrap().unwrap();
    assert!(!state.state.state().is_member(&c));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_group_receipts_count_each_member_once_and_replies_quote_their_message() {
    let server = TestServer::start().await;
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let mut alice2 = Device::link(&alice, "alice laptop").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let mut carol = Device::register(&server.url, "carol").await.unwrap();
    let mut mallory = Device::register(&server.url, "mallory").await.unwrap();
    let (b, c, m) = (bob.account_id().await, carol.account_id().await, mallory.account_id().await);
    let group = alice
        .client
        .create_group(alice.connection(), "climbing", &[b, c], now(), &mut system_rng())
        .await
        .unwrap();
    for d in [&bob, &carol] {
        d.client.accept_group(d.connection(), group, true, now(), &mut system_rng()).await.unwrap();
    }
    for d in [&mut alice2, &mut bob, &mut bob2, &mut carol] {
        events(d, Duration::from_millis(300)).await;
    }

    let id = alice.send_group_text(group, "plans for saturday?").await.unwrap().id.unwrap();
    for d in [&mut bob, &mut bob2, &mut carol] {
        expect_message(d, "plans for saturday?").await;
    }
    // Delivered once each member confirmed, on both of Alice's devices; Bob's two devices
    // count as one member (one device kept per member).
    for d in [&alice, &alice2] {
        let got = message_until(d, &id, |r| r.is_delivered()).await;
        assert_eq!(got.audience, 2);
        assert_eq!(got.delivered_accounts(), 2);
        assert_eq!(got.delivered_to.len(), 2, "{:?}", got.delivered_to);
        assert!(!got.is_read());
    }

    // A stranger's read receipt for it is refused and counts for nothing.
    let fake = Content {
        body: Some(content::Body::Receipt(ReceiptMessage {
            r#type: ReceiptType::Read as i32,
            messages: vec![MessageRef { device: id.device.get(), timestamp: id.timestamp }],
        })),
    };
    mallory
        .client
        .hazmat_send_content(
            mallory.connection(),
            alice.account_id().await,
            &fake,
            now(),
            &mut system_rng(),
        )
        .await
        .unwrap();
    for d in [&mut alice, &mut alice2] {
        let seen = events(d, Duration::from_millis(500)).await;
        assert!(
            seen.iter().any(|e| matches!(e, Event::Rejected { sender, reason: RejectReason::ReceiptFromStranger, .. } if *sender == m)),
            "{seen:?}"
        );
        assert!(d.client.message(&id).await.unwrap().unwrap().read_by.is_empty());
    }

    // Carol reads: Alice's devices learn who; read by all only once Bob read too, on his
    // laptop; his phone hears of it by a read sync.
    let n = carol.client.mark_group_read(carol.connection(), group, now(), &mut system_rng()).await;
    assert!(n.unwrap() >= 1);
    let got = message_until(&alice2, &id, |r| r.read_by.contains(&c)).await;
    assert!(!got.is_read(), "Bob has not read it yet");
    bob2.client.mark_group_read(bob2.connection(), group, now(), &mut system_rng()).await.unwrap();
    for d in [&alice, &alice2] {
        let got = message_until(d, &id, |r| r.is_read()).await;
        assert_eq!(got.read_by, [b, c].into());
    }
    message_until(&bob, &id, |r| !r.is_unread()).await;

    // Bob answers Alice's message: every member sees the quote, with Alice's text.
    let reply = bob
        .client
        .queue_reply(Conversation::Group(group), "the crag, 9am", id, now())
        .await
        .unwrap();
    bob.client.send_queued(bob.connection(), reply, now(), &mut system_rng()).await.unwrap();
    for d in [&mut alice, &mut alice2, &mut bob2, &mut carol] {
        let got = expect_message(d, "the crag, 9am").await;
        let quote = got.quote.expect("a reply carries its quote");
        assert_eq!(quote.id, id);
        assert_eq!(quote.text, "plans for saturday?");
    }
    // A reply names a message of its own conversation only.
    let elsewhere = bob.client.queue_reply(Conversation::Direct(c), "hm", id, now()).await;
    assert!(elsewhere.is_err(), "{elsewhere:?}");
    let _ = mallory.drain_events(Duration::from_millis(10)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_ghost_member_the_relay_adds_gets_no_sender_key_and_no_readable_message() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut mallory = Device::register(&server.url, "mallory").await.unwrap();
    let (b, m) = (bob.account_id().await, mallory.account_id().await);
    let group = alice
        .client
        .create_group(alice.connection(), "secret plans", &[b], now(), &mut system_rng())
        .await
        .unwrap();
    bob.client.accept_group(bob.connection(), group, true, now(), &mut system_rng()).await.unwrap();
    // The relay adds Mallory's account to the group's members by editing its database.
    relay_db(&server)
        .execute(
            "INSERT INTO group_members (group_id, account_id, accepted) VALUES (?1, ?2, 1)",
            rusqlite::params![group.as_slice(), m.0.as_slice()],
        )
        .unwrap();
    let report = alice.send_group_text(group, "meet at noon").await.unwrap();
    assert!(report.devices.iter().all(|(a, _)| *a != m), "no sender key for the ghost");
    expect_message(&mut bob, "meet at noon").await;
    // Mallory's device gets the relay's copy, and cannot read it.
    let seen = events(&mut mallory, Duration::from_secs(1)).await;
    assert!(!seen.iter().any(|e| matches!(e, Event::Message(m) if m.body == "meet at noon")));
    assert!(
        seen.iter().any(|e| matches!(e, Event::Undecryptable { .. } | Event::Rejected { .. })),
        "{seen:?}"
    );
    // The members' verified state is unchanged.
    for d in [&alice, &bob] {
        let g = d.client.group(group).await.unwrap().unwrap();
        assert_eq!(g.state.state().accounts().collect::<Vec<_>>().len(), 2);
        assert!(!g.state.state().is_member(&m));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_non_member_cannot_post_into_a_group() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mallory = Device::register(&server.url, "mallory").await.unwrap();
    let (b, m) = (bob.account_id().await, mallory.account_id().await);
    let group = alice
        .client
        .create_group(alice.connection(), "family", &[b], now(), &mut system_rng())
        .await
        .unwrap();
    bob.client.accept_group(bob.connection(), group, true, now(), &mut system_rng()).await.unwrap();
    events(&mut bob, Duration::from_millis(300)).await;
    // 1. A pairwise message that names the group.
    let forged = Content {
        body: Some(content::Body::Data(DataMessage {
            body: "pay this invoice".into(),
            timestamp: now().as_millis(),
            group_id: group.to_vec(),
            quote: None,
        })),
    };
    mallory
        .client
        .hazmat_send_content(mallory.connection(), b, &forged, now(), &mut system_rng())
        .await
        .unwrap();
    let seen = events(&mut bob, Duration::from_millis(500)).await;
    assert!(
        seen.iter().any(|e| matches!(e, Event::Rejected { sender, reason: RejectReason::NotGroupMessage, .. } if *sender == m)),
        "{seen:?}"
    );
    // 2. Mallory's own sender key for the group, handed to Bob, then a sender-key message
    // the relay delivers (it lists Mallory as a member by an edit of its database).
    relay_db(&server)
        .execute(
            "INSERT INTO group_members (group_id, account_id, accepted) VALUES (?1, ?2, 1)",
            rusqlite::params![group.as_slice(), m.0.as_slice()],
        )
        .unwrap();
    let me = mallory.client.address().await;
    let (skdm, changes) = create_sender_key_distribution_message(
        mallory.client.store(),
        &me,
        DistributionId(group),
        &mut system_rng(),
    )
    .await
    .unwrap();
    mallory.client.store().save_changes(changes).await.unwrap();
    let key =
        Content { body: Some(content::Body::SenderKeyDistribution(skdm.serialized().to_vec())) };
    mallory
        .client
        .hazmat_send_content(mallory.connection(), b, &key, now(), &mut system_rng())
        .await
        .unwrap();
    let post = forged_group_send(&mallory, group, "pay this invoice", 1).await;
    let r = mallory.connection().request(post).await.unwrap();
    assert_eq!(r.status(), Status::Ok, "{}", r.message);
    let seen = events(&mut bob, Duration::from_secs(1)).await;
    assert!(!seen.iter().any(|e| matches!(e, Event::Message(m) if m.body == "pay this invoice")));
    assert!(!seen.iter().any(|e| matches!(e, Event::SenderKey { .. })), "{seen:?}");
    let refused = seen
        .iter()
        .filter(|e| matches!(e, Event::Rejected { reason: RejectReason::NotGroupMember, .. }))
        .count();
    assert_eq!(refused, 2, "the key and the message: {seen:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_sender_key_is_saved_once_per_reserve_and_a_new_device_gets_it_where_it_sends() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    let group = alice
        .client
        .create_group(alice.connection(), "reserve", &[b], now(), &mut system_rng())
        .await
        .unwrap();
    bob.client.accept_group(bob.connection(), group, true, now(), &mut system_rng()).await.unwrap();
    events(&mut bob, Duration::from_millis(300)).await;
    // 40 messages: the stored chain stands ahead of every one sent (saved at the first and
    // at the 33rd), never behind.
    for i in 0..40 {
        alice.send_group_text(group, &format!("m{i}")).await.unwrap();
        let stored = stored_iteration(&alice, group).await;
        assert!(stored > i, "message {i} was sent from beyond the stored chain ({stored})");
    }
    assert_eq!(stored_iteration(&alice, group).await, 64);
    let got = messages(&mut bob, Duration::from_millis(500)).await;
    assert_eq!(got.iter().filter(|m| m.body.starts_with('m')).count(), 40);
    // Bob links a laptop: it gets Alice's key where her chain sends next (not where its
    // reserve ends), and reads her next message.
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    alice.send_group_text(group, "welcome, laptop").await.unwrap();
    // Settled where the chain sends next — 41: the first try used iteration 40 and the
    // relay refused it, Bob's laptop missing from Alice's list — then reserved again.
    assert_eq!(stored_iteration(&alice, group).await, 41 + 32);
    expect_message(&mut bob2, "welcome, laptop").await;
    expect_message(&mut bob, "welcome, laptop").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_members_new_or_removed_device_is_known_before_the_next_group_message() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let group = joined_group(&alice, "family", &mut [&mut bob]).await;
    alice.send_group_text(group, "one").await.unwrap();
    expect_message(&mut bob2, "one").await;
    let first_key = sender_key_chain(&alice, group).await;

    // Bob links a third device after Alice's list of his devices was cached: the relay
    // refuses her next message until she has given that device her key, so it reads it.
    let mut bob3 = Device::link(&bob, "bob tablet").await.unwrap();
    let report = alice.send_group_text(group, "two").await.unwrap();
    assert_eq!(report.devices.len(), 3, "all of Bob's devices: {:?}", report.devices);
    for d in [&mut bob, &mut bob2, &mut bob3] {
        expect_message(d, "two").await;
    }
    assert_eq!(sender_key_chain(&alice, group).await, first_key, "a new device needs no new key");

    // Bob logs the laptop out: Alice learns it at her next message and replaces her key, so
    // the laptop (which kept the old key) could not read it even if the relay routed it.
    let laptop = bob2.client.address().await;
    bob.client
        .remove_device(bob.connection(), laptop.device_id(), now(), &mut system_rng())
        .await
        .unwrap();
    alice.send_group_text(group, "three").await.unwrap();
    assert_ne!(sender_key_chain(&alice, group).await, first_key, "the key was replaced");
    // The laptop's receipt for "two" may reach Bob's other devices after its removal: they
    // refuse it.
    let from_laptop =
        |e: &Event| matches!(e, Event::Rejected { device: 2, reason: RejectReason::Adv(_), .. });
    expect_message_tolerating(&mut bob, "three", from_laptop).await;
    expect_message_tolerating(&mut bob3, "three", from_laptop).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_member_who_starts_over_gets_the_key_again_and_the_old_key_is_replaced() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let group = joined_group(&alice, "family", &mut [&mut bob]).await;
    alice.send_group_text(group, "before").await.unwrap();
    expect_message(&mut bob, "before").await;
    let first_key = sender_key_chain(&alice, group).await;

    // Bob starts over with new keys: the same account and device id, another identity.
    let mut bob = bob.reset_account().await.unwrap();
    alice.send_group_text(group, "after").await.unwrap();
    // His new device got the key (its identity never held it), and the key was replaced
    // (the old identity held it).
    let m = expect_message_tolerating(&mut bob, "after", |e| {
        matches!(e, Event::Rejected { .. } | Event::Undecryptable { .. })
    })
    .await;
    assert_eq!(m.conversation, Conversation::Group(group));
    assert_ne!(sender_key_chain(&alice, group).await, first_key);
    server.stop().await;
}

/// A group `creator` made with `members`, every one of whom accepted it (their invitation
/// events drained).
async fn joined_group(creator: &Device, title: &str, members: &mut [&mut Device]) -> [u8; 16] {
    let mut accounts = Vec::new();
    for d in members.iter() {
        accounts.push(d.account_id().await);
    }
    let group = creator
        .client
        .create_group(creator.connection(), title, &accounts, now(), &mut system_rng())
        .await
        .unwrap();
    for d in members.iter_mut() {
        events(d, Duration::from_millis(300)).await;
        d.client.accept_group(d.connection(), group, true, now(), &mut system_rng()).await.unwrap();
    }
    group
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_verified_members_new_key_holds_the_group_until_sent_without_them_or_accepted() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut carol = Device::register(&server.url, "carol").await.unwrap();
    let (b, c) = (bob.account_id().await, carol.account_id().await);
    let group = joined_group(&alice, "book club", &mut [&mut bob, &mut carol]).await;
    alice.send_group_text(group, "before").await.unwrap();
    expect_message(&mut bob, "before").await;
    expect_message(&mut carol, "before").await;
    alice.client.set_verified(c, true).await.unwrap();
    // Nothing waits for Bob: there is nothing to send without him.
    assert!(alice.client.send_without(group, b).await.is_err());

    // Carol starts over (a new account key): Alice verified her, so the group's sends wait.
    let mut carol = carol.reset_account().await.unwrap();
    let held = alice.send_group_text(group, "held").await;
    assert!(matches!(held, Err(ClientError::AccountKeyChanged(a)) if a == c), "{held:?}");
    assert!(messages(&mut bob, Duration::from_millis(300)).await.is_empty(), "nothing went");
    let chain_before = sender_key_chain(&alice, group).await;

    // Alice sends it without Carol: Bob reads it, none of Carol's devices can; the key
    // changed (her old identity held the old one), and the ticks count Bob alone.
    assert_eq!(alice.client.send_without(group, c).await.unwrap(), 1);
    let flushed =
        alice.client.flush_outbox(alice.connection(), now(), &mut system_rng()).await.unwrap();
    assert!(flushed.iter().all(|(_, r)| r.is_ok()), "{flushed:?}");
    let got = expect_message(&mut bob, "held").await;
    assert_ne!(sender_key_chain(&alice, group).await, chain_before);
    let sent = message_until(&alice, &got.id, |r| r.is_delivered()).await;
    assert_eq!(sent.audience, 1);
    let seen = messages(&mut carol, Duration::from_millis(500)).await;
    assert!(seen.iter().all(|m| m.body != "held"), "{seen:?}");

    // The next message waits again, until Alice accepts Carol's new code: then both read it.
    let next = alice.send_group_text(group, "next").await;
    assert!(matches!(next, Err(ClientError::AccountKeyChanged(_))), "{next:?}");
    alice.client.acknowledge_key_change(c).await.unwrap();
    let flushed =
        alice.client.flush_outbox(alice.connection(), now(), &mut system_rng()).await.unwrap();
    assert!(flushed.iter().all(|(_, r)| r.is_ok()), "{flushed:?}");
    expect_message(&mut bob, "next").await;
    expect_message_tolerating(&mut carol, "next", |e| {
        matches!(e, Event::Rejected { .. } | Event::Undecryptable { .. })
    })
    .await;
    server.stop().await;
}

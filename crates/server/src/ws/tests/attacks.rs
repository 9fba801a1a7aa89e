//! The relay's side of the adversarial findings: what a stranger, a foreign relay or a
//! removed device can make this relay do.

use std::sync::Arc;

use super::*;

#[tokio::test]
async fn test_a_proof_for_another_host_or_another_connection_is_refused() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(40);
    let alice = register(&state, "alice", &mut rng).await;
    let c = Client::connect(&state).await;
    // A proof made for a foreign relay (the device dialled evil.example, whose relay relayed
    // this connection's challenge to it) does not log in here.
    let foreign = Challenge::new(&c.nonce, "evil.example").unwrap();
    let proof = Proof::Authenticate { account: &alice.account, device: 1 };
    let mut c = c;
    let r = c
        .request(request::Body::Authenticate(Authenticate {
            account_id: alice.account.0.to_vec(),
            device_id: 1,
            signature: auth::sign(&alice.identity, &foreign, &proof, &mut rng).to_vec(),
            challenge: c.nonce.clone(),
        }))
        .await;
    assert_eq!(r.status(), Status::Unauthorized, "{}", r.message);
    // A proof for another connection's challenge is stale.
    let other = Client::connect(&state).await;
    let r = c.request(other.login(&alice, &mut rng)).await;
    assert_eq!(r.status(), Status::StaleChallenge);
    // A replay of a proof that worked on one connection fails on the next.
    let login = c.login(&alice, &mut rng);
    c.ok(login.clone()).await;
    let mut next = Client::connect(&state).await;
    let r = next.request(login).await;
    assert_eq!(r.status(), Status::StaleChallenge);
}

#[tokio::test]
async fn test_a_reset_needs_both_the_old_and_the_new_key() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(41);
    let mut alice = register(&state, "alice", &mut rng).await;
    let stranger = IdentityKeyPair::generate(&mut rng);
    let new = IdentityKeyPair::generate(&mut rng);
    let reset = |c: &Client, old: &IdentityKeyPair, rng: &mut SeededRng| {
        let proof = Proof::ResetAccount { account: &alice.account, new_key: new.identity_key() };
        request::Body::ResetAccount(ResetAccount {
            device: Some(new_device(&new, 3, vec![])),
            account_signature: auth::sign(old, &c.challenge(), &proof, rng).to_vec(),
            device_signature: auth::sign(&new, &c.challenge(), &proof, rng).to_vec(),
            challenge: c.nonce.clone(),
        })
    };
    // Signed by a key that is not the account key: refused, nothing changes.
    let body = reset(&alice.client, &stranger, &mut rng);
    let r = alice.client.request(body).await;
    assert_eq!(r.status(), Status::Unauthorized, "{}", r.message);
    let row = state.storage.account(alice.account).await.unwrap().unwrap();
    assert_eq!(row.identity_key, alice.identity.identity_key().serialize().to_vec());
    // By the account key and the new key: done.
    let body = reset(&alice.client, &alice.identity, &mut rng);
    alice.client.ok(body).await;
    let row = state.storage.account(alice.account).await.unwrap().unwrap();
    assert_eq!(row.identity_key, new.identity_key().serialize().to_vec());
}

#[tokio::test]
async fn test_an_unlisted_device_cannot_send() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(42);
    let mut alice = register(&state, "alice", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    // A companion the relay registered but the primary never put in a signed list.
    let Some(response::Body::LinkToken(token)) =
        alice.client.ok(request::Body::CreateLinkToken(CreateLinkToken {})).await
    else {
        panic!()
    };
    let identity = IdentityKeyPair::generate(&mut rng);
    let details = DeviceIdentityDetails {
        account_id: alice.account,
        key_index: 1,
        identity_key: *identity.identity_key(),
        timestamp: Timestamp::from_millis(1),
    };
    let adv = SignedDeviceIdentity::sign_by_account(&alice.identity, details, &mut rng)
        .countersign(&identity, alice.identity.identity_key(), &mut rng)
        .unwrap();
    let mut c = Client::connect(&state).await;
    let proof = Proof::RegisterDevice { account: &alice.account };
    let signature = auth::sign(&identity, &c.challenge(), &proof, &mut rng).to_vec();
    let Some(response::Body::DeviceRegistered(r)) = c
        .ok(request::Body::RegisterDevice(RegisterDevice {
            account_id: alice.account.0.to_vec(),
            link_token: token.token,
            device: Some(new_device(&identity, 5, adv.to_bytes())),
            signature,
            challenge: c.nonce.clone(),
        }))
        .await
    else {
        panic!()
    };
    let companion = Device {
        client: c,
        account: alice.account,
        device: r.device_id,
        identity,
        registration_id: 5,
    };
    let mut companion = companion;
    let r = companion.client.request(send(&bob, 1, vec![copy(&bob, b"x")])).await;
    assert_eq!(r.status(), Status::Unlisted, "{}", r.message);
    // Listed: it may.
    publish_list(&mut alice, 1, &mut rng).await;
    let alice_primary = Device { client: Client::connect(&state).await, ..alice };
    companion.client.ok(send(&bob, 2, vec![copy(&bob, b"x"), copy(&alice_primary, b"t")])).await;
}

#[tokio::test]
async fn test_a_send_dated_in_the_future_is_refused_as_a_wrong_clock() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(43);
    let mut alice = register(&state, "alice", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    let three_days = 3 * 86_400_000;
    let r = alice
        .client
        .request(send(&bob, crate::now_ms() + three_days, vec![copy(&bob, b"x")]))
        .await;
    assert_eq!(r.status(), Status::ClockSkew);
    assert!(r.message.contains("ahead"), "{}", r.message);
    assert_eq!(state.storage.queue_total(), 0);
    alice.client.ok(send(&bob, crate::now_ms(), vec![copy(&bob, b"x")])).await;
}

#[tokio::test]
async fn test_a_flooding_sender_is_refused_while_others_still_get_through() {
    let mut relay = Settings::for_tests(".".into(), ".".into()).relay_config();
    relay.queue.max_len = 30;
    relay.queue.max_len_per_sender = 10;
    let (state, _dir) = state_with(relay).await;
    let mut rng = SeededRng::new(44);
    let mut flooder = register(&state, "flooder", &mut rng).await;
    let mut friend = register(&state, "friend", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    bob.client.to_server.close_channel();
    for i in 0..10 {
        flooder.client.ok(send(&bob, 100 + i, vec![copy(&bob, b"junk")])).await;
    }
    let r = flooder.client.request(send(&bob, 200, vec![copy(&bob, b"junk")])).await;
    assert_eq!(r.status(), Status::LimitReached);
    assert!(r.message.contains("from you"), "{}", r.message);
    // Bob's queue still takes others' messages.
    friend.client.ok(send(&bob, 300, vec![copy(&bob, b"hello")])).await;
    assert_eq!(queued(&state, bob.account, 1).await, 11);
}

#[tokio::test]
async fn test_concurrent_sends_never_overfill_a_queue() {
    let mut relay = Settings::for_tests(".".into(), ".".into()).relay_config();
    relay.queue.max_len = 25;
    relay.queue.max_len_per_sender = 25;
    let (state, _dir) = state_with(relay).await;
    let mut rng = SeededRng::new(45);
    let alice = register(&state, "alice", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    bob.client.to_server.close_channel();
    // 100 sends in flight at once over one socket.
    let mut c = alice.client;
    for i in 0..100u64 {
        let id = c.next_id;
        c.next_id += 1;
        let body = send(&bob, 1000 + i, vec![copy(&bob, b"x")]);
        c.send_raw(Message::Binary(ClientFrame::request(id, body).encode_to_vec().into()));
    }
    let mut ok = 0;
    let mut full = 0;
    while ok + full < 100 {
        if let Some(server_frame::Kind::Response(r)) = c.next_frame().await.kind {
            match r.status() {
                Status::Ok => ok += 1,
                Status::LimitReached => full += 1,
                other => panic!("{other:?} {}", r.message),
            }
        }
    }
    assert_eq!(ok, 25);
    assert_eq!(queued(&state, bob.account, 1).await, 25);
}

#[tokio::test]
async fn test_a_socket_logging_in_while_its_device_is_removed_ends_unauthenticated() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(46);
    let mut bob = register(&state, "bob", &mut rng).await;
    let bob2 = link(&state, &mut bob, 1, 1, &mut rng).await;
    // The login's proof checks out, then the device is removed before the session
    // subscribes (the hub has nobody to tell yet).
    let (reached, resume) =
        (Arc::new(tokio::sync::Notify::new()), Arc::new(tokio::sync::Notify::new()));
    *state.login_pause.lock().unwrap() = Some((reached.clone(), resume.clone()));
    let mut c = Client::connect(&state).await;
    let login = c.login(&bob2, &mut rng);
    let id = c.next_id;
    c.next_id += 1;
    c.send_raw(Message::Binary(ClientFrame::request(id, login).encode_to_vec().into()));
    reached.notified().await;
    bob.client.ok(request::Body::RemoveDevice(RemoveDevice { device_id: bob2.device })).await;
    resume.notify_one();
    let r = loop {
        if let Some(server_frame::Kind::Response(r)) = c.next_frame().await.kind {
            break r;
        }
    };
    assert_eq!(r.status(), Status::Unauthorized);
    let r = c.request(request::Body::GetPreKeyCounts(GetPreKeyCounts {})).await;
    assert_eq!(r.status(), Status::Unauthenticated, "the socket stays unauthenticated");
}

#[tokio::test]
async fn test_expiry_notices_are_paged_and_kept_until_acknowledged() {
    let mut relay = Settings::for_tests(".".into(), ".".into()).relay_config();
    relay.queue_ttl = Duration::from_millis(1);
    let (state, _dir) = state_with(relay).await;
    let mut rng = SeededRng::new(47);
    let mut alice = register(&state, "alice", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    let bob_identity = bob.identity.clone();
    let bob_account = bob.account;
    drop(bob);
    for i in 0..1500u64 {
        let body = send(
            &Device {
                client: Client::connect(&state).await,
                account: bob_account,
                device: 1,
                identity: bob_identity.clone(),
                registration_id: 1,
            },
            i,
            vec![OutgoingMessage {
                account_id: bob_account.0.to_vec(),
                device_id: 1,
                registration_id: 1,
                r#type: 2,
                content: vec![1],
            }],
        );
        alice.client.ok(body).await;
        if i == 0 {
            // (the helper above only needs the account; its socket is dropped again)
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(state.storage.expire(crate::now_ms(), 0).await.unwrap(), 1500);
    // First login: a page of 1000, not acknowledged (the device died before recording it).
    let mut c = Client::connect(&state).await;
    c.ok(login_as(&c, bob_account, 1, &bob_identity, &mut rng)).await;
    let first = loop {
        let p = c.next_push().await;
        if let Some(push::Body::Expired(x)) = p.body {
            break (p.id, x.entries.len());
        }
    };
    assert_ne!(first.0, 0, "an expiry notice is acknowledged");
    assert_eq!(first.1, 1000);
    drop(c);
    // Next login: the same page again, then (after the acknowledgement) the rest.
    let mut c = Client::connect(&state).await;
    c.ok(login_as(&c, bob_account, 1, &bob_identity, &mut rng)).await;
    let mut pages = Vec::new();
    while pages.iter().sum::<usize>() < 1500 {
        let p = c.next_push().await;
        if let Some(push::Body::Expired(x)) = p.body {
            pages.push(x.entries.len());
            c.ack(p.id);
        }
    }
    assert_eq!(pages, [1000, 500]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(state.storage.expired(bob_account, 1, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn test_one_network_cannot_take_the_relays_linking() {
    let (state, _dir) = state().await;
    let mut sockets = Vec::new();
    let attacker: IpAddr = "198.51.100.7".parse().unwrap();
    let mut refused = 0;
    for i in 0..80u8 {
        // Any address of the attacker's /24.
        let peer = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i));
        let mut c = Client::connect_from(&state, Duration::from_secs(30), Some(peer)).await;
        let r = c.request(request::Body::OpenProvisioning(OpenProvisioning {})).await;
        match r.status() {
            Status::Ok => sockets.push(c),
            Status::RateLimited => refused += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(refused >= 16, "the /24 got {} addresses", sockets.len());
    assert!(sockets.len() <= crate::hub::MAX_PROVISIONING_PER_NETWORK);
    let _ = attacker;
    // Someone else can still link.
    let mut other =
        Client::connect_from(&state, Duration::from_secs(30), Some("203.0.113.5".parse().unwrap()))
            .await;
    other.ok(request::Body::OpenProvisioning(OpenProvisioning {})).await;
}

#[tokio::test]
async fn test_an_account_creates_a_bounded_number_of_groups_at_a_bounded_rate() {
    let mut relay = Settings::for_tests(".".into(), ".".into()).relay_config();
    relay.max_groups_per_account = 3;
    let (state, _dir) = state_with(relay).await;
    let mut rng = SeededRng::new(45);
    let mut alice = register(&state, "alice", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    let create = |id: u8, rng: &mut SeededRng, alice: &Device| {
        let v1 = group_state(alice, [id; 16], 1, [0; 32], &[(alice, true), (&bob, false)], rng);
        request::Body::CreateGroup(CreateGroup { signed_state: v1.as_bytes().to_vec() })
    };
    for id in 1..=3 {
        let body = create(id, &mut rng, &alice);
        alice.client.ok(body).await;
    }
    let body = create(4, &mut rng, &alice);
    let r = alice.client.request(body).await;
    assert_eq!(r.status(), Status::LimitReached);
    assert!(r.message.contains("3 groups"), "{}", r.message);
    // Under the cap, creations and changes are still rate limited per device.
    let relay = Settings::for_tests(".".into(), ".".into()).relay_config();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a small whole default"
    )]
    let burst = relay.limits.group.burst as u8;
    assert!(burst >= 1 && f64::from(burst) == relay.limits.group.burst);
    let (state, _dir) = state_with(relay).await;
    let mut carol = register(&state, "carol", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    let mut refused = None;
    for id in 1..=burst + 1 {
        let v1 =
            group_state(&carol, [id; 16], 1, [0; 32], &[(&carol, true), (&bob, false)], &mut rng);
        let body = request::Body::CreateGroup(CreateGroup { signed_state: v1.as_bytes().to_vec() });
        let r = carol.client.request(body).await;
        if r.status() == Status::RateLimited {
            refused = Some(id);
            break;
        }
        assert_eq!(r.status(), Status::Ok);
    }
    assert_eq!(refused, Some(burst + 1));
}

#[tokio::test]
async fn test_a_group_send_is_charged_for_every_copy_the_relay_stores() {
    let mut relay = Settings::for_tests(".".into(), ".".into()).relay_config();
    relay.limits.send_kib = crate::limits::Rate { burst: 64.0, per_second: 0.001 };
    let (state, _dir) = state_with(relay).await;
    let mut rng = SeededRng::new(46);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut bob = register(&state, "bob", &mut rng).await;
    let mut carol = register(&state, "carol", &mut rng).await;
    let id = [9; 16];
    let v1 = group_state(
        &alice,
        id,
        1,
        [0; 32],
        &[(&alice, true), (&bob, false), (&carol, false)],
        &mut rng,
    );
    alice
        .client
        .ok(request::Body::CreateGroup(CreateGroup { signed_state: v1.as_bytes().to_vec() }))
        .await;
    bob.client.ok(accept(id)).await;
    carol.client.ok(accept(id)).await;
    // One 30 KiB ciphertext, stored twice: 60 of the 64 KiB budget.
    let big = vec![5u8; 30 * 1024];
    alice.client.ok(group_send(id, 1, 10, &big)).await;
    // The next is refused although its one ciphertext would fit the budget alone.
    let r = alice.client.request(group_send(id, 1, 11, &big)).await;
    assert_eq!(r.status(), Status::RateLimited, "{}", r.message);
    for c in [&mut bob.client, &mut carol.client] {
        assert_eq!(c.next_envelope().await.content.len(), big.len());
    }
}

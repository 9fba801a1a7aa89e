//! A 200-member group through the real relay with native devices: everyone hears everyone,
//! a removed member's later ciphertexts are refused by every member even when the relay
//! routes them, and nothing sent after the removal reaches the removed member.

mod support;

use std::time::Duration;

use support::{TestServer, events, expect_message, forged_group_send, relay_db};
use tandem_cli::{Device, now, system_rng};
use tandem_core::client::{Event, GroupEdit, Work};

use tandem_core::transport::RelayTransport;
use tandem_core::wire::relay::Status;

/// Members besides the creator.
const OTHERS: usize = 199;

/// Registers `n` accounts at once (eight at a time).
async fn register_many(url: &str, n: usize) -> Vec<Device> {
    let mut out = Vec::with_capacity(n);
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(8) {
        let batch = chunk.iter().copied().map(|i| {
            let url = url.to_owned();
            tokio::spawn(async move { Device::register(&url, &format!("member{i}")).await })
        });
        for task in batch.collect::<Vec<_>>() {
            out.push(task.await.expect("task").expect("registered"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_200_member_group_hears_everyone_and_a_removed_member_is_refused() {
    // Two hundred registrations from one address: the per-network registration budget is
    // the only limit raised (everything a member does runs on the relay's defaults).
    let server = TestServer::start_with(|s| s.auth_per_minute = 100_000.0).await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut members = register_many(&server.url, OTHERS).await;
    let mut ids = Vec::with_capacity(OTHERS);
    for m in &members {
        ids.push(m.account_id().await);
    }
    // While the group's first state goes out to 199 people one by one, the client says how
    // far it has come (a driver shows it); it says nothing once done.
    let watched = alice.client.clone();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            if let Some(p) = watched.progress() {
                seen.push(p);
            }
            tokio::select! {
                _ = &mut stopped => return seen,
                () = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
        }
    });
    let group = alice
        .client
        .create_group(alice.connection(), "two hundred", &ids, now(), &mut system_rng())
        .await
        .unwrap();
    let _ = stop.send(());
    let seen = watcher.await.unwrap();
    assert!(!seen.is_empty(), "progress was reported");
    assert!(
        seen.iter()
            .all(|p| p.work == Work::AnnouncingGroup && p.total == OTHERS && p.done <= OTHERS)
    );
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "it only moves forward");
    assert!(seen.last().is_some_and(|p| p.done > OTHERS / 2), "{:?}", seen.last());
    assert_eq!(alice.client.progress(), None, "nothing once done");
    for m in &mut members {
        // The invitation arrives end to end, then the person joins.
        let deadline = tokio::time::Instant::now() + support::WAIT;
        while m.client.group(group).await.unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no invitation");
            m.drain_events(Duration::from_millis(20)).await;
        }
        m.client.accept_group(m.connection(), group, true, now(), &mut system_rng()).await.unwrap();
    }
    let state = alice.client.group(group).await.unwrap().unwrap();
    assert_eq!(state.state.state().members.len(), OTHERS + 1);

    let report = alice.send_group_text(group, "hello two hundred").await.unwrap();
    assert_eq!(report.devices.len(), OTHERS, "one copy per member device");
    for m in &mut members {
        expect_message(m, "hello two hundred").await;
    }
    // The member about to be removed writes while still in: everyone holds its sender key.
    members[0].send_group_text(group, "I am still in").await.unwrap();
    for m in &mut members[1..] {
        expect_message(m, "I am still in").await;
    }

    let gone = ids[0];
    let edit = GroupEdit { remove: vec![gone], ..GroupEdit::default() };
    alice
        .client
        .update_group(alice.connection(), group, &edit, now(), &mut system_rng())
        .await
        .unwrap();
    alice.send_group_text(group, "after the removal").await.unwrap();
    for m in &mut members[1..] {
        expect_message(m, "after the removal").await;
    }
    let to_gone = events(&mut members[0], Duration::from_millis(500)).await;
    assert!(
        !to_gone.iter().any(|e| matches!(e, Event::Message(m) if m.body == "after the removal")),
        "the removed member gets nothing after"
    );

    // The removed member writes again with the key every member still holds: the relay
    // refuses it, and a relay that puts it back in its member table to route it anyway
    // gets it refused by every member.
    let removed = &members[0];
    let post = forged_group_send(removed, group, "I never left", 2).await;
    let refused = removed.connection().request(post.clone()).await.unwrap();
    assert_ne!(refused.status(), Status::Ok, "the relay refuses a non-member");
    relay_db(&server)
        .execute(
            "INSERT OR REPLACE INTO group_members (group_id, account_id, accepted) VALUES (?1, ?2, 1)",
            rusqlite::params![group.as_slice(), gone.0.as_slice()],
        )
        .unwrap();
    let routed = removed.connection().request(post).await.unwrap();
    assert_eq!(routed.status(), Status::Ok, "{}", routed.message);
    for m in &mut members[1..] {
        let seen = events(m, Duration::from_millis(150)).await;
        assert!(
            !seen.iter().any(|e| matches!(e, Event::Message(m) if m.body == "I never left")),
            "a member took a removed member's message: {seen:?}"
        );
    }
    server.stop().await;
}

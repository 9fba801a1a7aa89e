//! The device runtime (`tandem_core::runtime`) as the native driver runs it, against the real
//! relay: what is acknowledged, what is kept and tried again.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{TestServer, WAIT};
use tandem_cli::{Device, DeviceEvent};
use tandem_core::client::Event;
use tandem_server::Storage;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_push_met_by_a_busy_relay_is_kept_and_stored_later() {
    // Bob may look up 5 new senders at once, then one every 4 s: the sixth and seventh
    // stranger's first messages meet a rate limit while Bob reads them.
    let server = TestServer::start_with(|s| {
        s.lookup_per_minute = 15.0;
        s.auth_per_minute = 1000.0;
    })
    .await;
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    let mut strangers = Vec::new();
    for i in 0..7 {
        let s = Device::register(&server.url, &format!("sender{i}")).await.unwrap();
        s.send_text(b, &format!("hello {i}")).await.unwrap();
        strangers.push(s);
    }
    // Every message is stored in the end, none is reported as failed, and the relay keeps
    // nothing for Bob (each was acknowledged once stored).
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 7 {
        let left = deadline.saturating_duration_since(Instant::now());
        match bob.next_event(left).await {
            Some(DeviceEvent::Engine(Event::Message(m))) => {
                got.insert(m.body.clone());
            }
            Some(DeviceEvent::Failed(e)) => panic!("a kept push was reported as failed: {e}"),
            Some(_) => {}
            None => panic!("only {got:?} within {WAIT:?}"),
        }
    }
    assert_eq!(got, (0..7).map(|i| format!("hello {i}")).collect());
    let mut left = usize::MAX;
    for _ in 0..50 {
        left = server.state.storage.fetch_queue(b, 1, 0, 100).await.unwrap().len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "every stored message was acknowledged");
    server.stop().await;
}

/// Logging in on a new socket (`runtime::log_in`): a device the account logged out is told
/// so, with the account's proof, and its socket is not this device's any more; a device
/// still listed logs in again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_removed_device_logging_in_again_is_told_with_proof() {
    use tandem_cli::{DeviceError, now, system_rng};
    use tandem_core::client::ClientError;
    let server = TestServer::start().await;
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let mut laptop = Device::link(&bob, "bob laptop").await.unwrap();
    let mut phone = Device::link(&bob, "bob phone").await.unwrap();
    let gone = laptop.device_id().await;
    bob.client.remove_device(bob.connection(), gone, now(), &mut system_rng()).await.unwrap();
    match laptop.reconnect().await {
        Err(DeviceError::Client(ClientError::Removed { proven: true })) => {}
        other => panic!("a removed device must be told, with proof: {other:?}"),
    }
    phone.reconnect().await.expect("a listed device logs in again");
    let a = Device::register(&server.url, "alice").await.unwrap();
    a.send_text(bob.account_id().await, "still here").await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match phone.next_event(left).await {
            Some(DeviceEvent::Engine(Event::Message(m))) if m.body == "still here" => break,
            Some(_) => {}
            None => panic!("the listed device still receives"),
        }
    }
}

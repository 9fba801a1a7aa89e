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

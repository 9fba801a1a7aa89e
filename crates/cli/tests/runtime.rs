//! The device runtime (`tandem_core::runtime`) as the native driver runs it, against the real
//! relay: logging in on a new socket. What is acknowledged, kept and tried again is in the
//! scenarios both drivers run (`tests/scenarios.rs`).

mod support;

use std::time::Instant;

use support::{TestServer, WAIT};
use tandem_cli::{Device, DeviceEvent};
use tandem_core::client::Event;

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

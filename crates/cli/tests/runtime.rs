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

/// Call replies that receiving produces leave at once (`PushOutcome::Stored::calls_waiting`):
/// a native device already calling someone answers another caller "busy", and the caller
/// hears it. (Without the flush, the reply sat in memory and the caller rang for 45 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_device_already_calling_answers_another_caller_busy() {
    use tandem_cli::{now, system_rng};
    use tandem_core::calls::{CallUpdate, EndReason};
    const SDP: &str = "v=0\r\na=fingerprint:sha-256 \
        0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n";
    let server = TestServer::start().await;
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let carol = Device::register(&server.url, "carol").await.unwrap();
    let mut alice = Device::register(&server.url, "alice").await.unwrap();
    let carol_id = carol.account_id().await;
    let bob_id = bob.account_id().await;
    let placed = bob
        .client
        .place_call(bob.connection(), carol_id, SDP, false, now(), &mut system_rng())
        .await
        .unwrap();
    assert_eq!(placed.devices, 1);
    let call = alice
        .client
        .place_call(alice.connection(), bob_id, SDP, true, now(), &mut system_rng())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match alice.next_event(left).await {
            Some(DeviceEvent::Engine(Event::Call(u))) => match *u {
                CallUpdate::Ended { call_id, reason, .. } if call_id == call.call_id => {
                    assert_eq!(reason, EndReason::Busy);
                    break;
                }
                _ => {}
            },
            Some(_) => {}
            None => panic!("Alice never heard that Bob is busy"),
        }
    }
}

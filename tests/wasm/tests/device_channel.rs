//! The device's command channel in a real browser, against the real relay (named at compile
//! time by `TANDEM_TEST_RELAY`): an engine registered and served on this page's thread
//! (`device::host`, the path a page without workers takes), and a `View` of it that runs
//! typed commands over the `BroadcastChannel`. Answers come back typed, and failures keep
//! their kind across the channel.
#![cfg(target_family = "wasm")]

use std::time::Duration;

use tandem_web::device::engine::{ENGINE_DB, Engine};
use tandem_web::device::{Command, Device, ErrorKind, Outcome, View, host};
use tandem_web::transport::{RelayClient, sleep};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn relay_url() -> &'static str {
    match option_env!("TANDEM_TEST_RELAY") {
        Some(url) => url,
        None => panic!("TANDEM_TEST_RELAY must name a running relay at compile time"),
    }
}

#[wasm_bindgen_test]
async fn test_a_view_runs_typed_commands_and_failures_keep_their_kind() {
    let handle = format!("chan{}", hex::encode(tandem_web::rng::random_bytes::<4>()));
    let relay = RelayClient::start(relay_url().to_owned(), |_| {});
    host::register(ENGINE_DB, relay.clone(), &handle, "Test browser").await.unwrap();
    let client = Engine::open(ENGINE_DB).await.unwrap().expect("registered");
    let view = View::start(client, false, |_| {});
    let device = Device::of_view(view).await;
    assert_eq!(device.handle(), handle);
    assert!(device.is_primary());

    // A typed answer across the channel: the account finds itself.
    let (id, found) = device.find(&handle).await.unwrap();
    assert_eq!(id, device.account_id());
    assert_eq!(found, handle);
    let devices = device.devices().await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, 1);

    // Failures keep their kind and a sentence for people.
    let e = device.find("nobody_has_this_name").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert_eq!(e.message, "No one has that name on this server.");
    let e = device.rename_device("   ").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    let e = device.verify_code(device.account_id(), "not a code").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Invalid);
    assert!(e.message.contains("tandem-code:"), "{}", e.message);

    // A renamed device is listed under its new name.
    device.rename_device("Kitchen laptop").await.unwrap();
    sleep(Duration::from_millis(50)).await;
    assert_eq!(device.devices().await.unwrap()[0].name, "Kitchen laptop");

    // The engine on this thread answers the same commands directly.
    let direct = host::run_here(Command::Find { handle: handle.clone() }).await.unwrap();
    assert_eq!(direct, Outcome::Account { id: id.0.to_vec(), handle: handle.clone() });
    device.shut_down();
}

//! A WebSocket round trip from the browser to the real relay, started by the test script
//! and named at compile time by `TANDEM_TEST_RELAY` (e.g. `ws://127.0.0.1:8790/v1/socket`).
#![cfg(target_family = "wasm")]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tandem_core::wire::relay::{ClientFrame, Ping, Status, request, response, server_frame};
use tandem_web::transport::{ConnectionState, RelayClient, RelayConnection, TransportError, sleep};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn relay_url() -> &'static str {
    match option_env!("TANDEM_TEST_RELAY") {
        Some(url) => url,
        None => panic!(
            "TANDEM_TEST_RELAY must name a running relay at compile time; run the tests through scripts/test"
        ),
    }
}

#[wasm_bindgen_test]
async fn test_connection_round_trip() {
    let (conn, mut events, welcome) = RelayConnection::connect(relay_url()).await.unwrap();
    assert!(!welcome.server_version.is_empty());
    assert!(welcome.server_time_ms > 1_700_000_000_000);
    let payload = tandem_web::rng::random_bytes::<32>().to_vec();
    conn.send(&ClientFrame::request(77, request::Body::Ping(Ping { payload: payload.clone() })))
        .unwrap();
    let frame = events.next_frame().await.unwrap();
    let Some(server_frame::Kind::Response(resp)) = frame.kind else {
        panic!("expected a response")
    };
    assert_eq!(resp.id, 77);
    assert_eq!(resp.status(), Status::Ok);
    let Some(response::Body::Pong(pong)) = resp.body else { panic!("expected a pong") };
    assert_eq!(pong.payload, payload);
    conn.close(1000, "done");
    assert!(matches!(events.next_frame().await, Err(TransportError::Closed { .. })));
}

#[wasm_bindgen_test]
async fn test_client_requests_and_reports_state() {
    let states = Rc::new(RefCell::new(Vec::new()));
    let seen = states.clone();
    let client = RelayClient::start(relay_url().to_owned(), move |s| seen.borrow_mut().push(s));
    for _ in 0..100 {
        if matches!(client.state(), ConnectionState::Connected { .. }) {
            break;
        }
        sleep(Duration::from_millis(50)).await;
    }
    assert!(matches!(client.state(), ConnectionState::Connected { .. }), "{:?}", states.borrow());
    let resp =
        client.request(request::Body::Ping(Ping { payload: b"hello".to_vec() })).await.unwrap();
    assert!(matches!(resp.body, Some(response::Body::Pong(ref p)) if p.payload == b"hello"));
    // The relay enforces its limits: an oversized ping is refused with a status, not a crash.
    let resp = client.request(request::Body::Ping(Ping { payload: vec![0; 4096] })).await.unwrap();
    assert_eq!(resp.status(), Status::TooLarge);
    client.stop();
    assert!(matches!(states.borrow()[0], ConnectionState::Connecting { attempt: 1 }));
}

#[wasm_bindgen_test]
async fn test_unreachable_server_is_an_error_not_a_hang() {
    // Port 9 (discard) on loopback refuses connections.
    let err = RelayConnection::connect("ws://127.0.0.1:9/v1/socket").await.err();
    assert_eq!(err, Some(TransportError::Unreachable));
}

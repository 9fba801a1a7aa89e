//! The relay end to end: routes via `oneshot`, the socket on port 0, and bad configuration
//! through the real binary.

use std::process::Command;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::{SinkExt, StreamExt};
use http_body_util::BodyExt;
use prost::Message as _;
use tandem_core::wire::relay::{
    ClientFrame, Ping, ServerFrame, Status, push, request, response, server_frame,
};
use tandem_server::{AppState, Server, Settings, SqliteStorage, bind, router};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tower::ServiceExt;

fn dist_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>Tandem</title>").unwrap();
    std::fs::write(dir.path().join("app.wasm"), b"\0asm").unwrap();
    dir
}

async fn state(data: &std::path::Path, dist: Option<&std::path::Path>) -> AppState<SqliteStorage> {
    let relay = Settings::for_tests(data.to_path_buf(), data.to_path_buf()).relay_config();
    AppState::new(
        SqliteStorage::open(&data.join("t.sqlite")).await.unwrap(),
        dist.map(|d| d.to_path_buf()),
        Duration::from_secs(30),
        relay,
    )
}

async fn get(app: axum::Router, uri: &str) -> (StatusCode, String, Option<String>) {
    let resp = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let ctype = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), ctype)
}

#[tokio::test]
async fn test_health_and_static_app_with_spa_fallback() {
    let data = tempfile::tempdir().unwrap();
    let dist = dist_dir();
    let app = router(state(data.path(), Some(dist.path())).await);
    let (status, body, _) = get(app.clone(), "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let (status, body, _) = get(app.clone(), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<title>Tandem</title>"));
    let (status, body, _) = get(app.clone(), "/chats/some-deep-link").await;
    assert_eq!(status, StatusCode::OK, "unknown paths fall back to the app");
    assert!(body.contains("<title>Tandem</title>"));
    let (status, _, ctype) = get(app.clone(), "/app.wasm").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype.as_deref(), Some("application/wasm"));
    let (status, _, _) = get(app, "/v1/socket").await;
    assert!(status.is_client_error(), "a plain GET is not an upgrade: {status}");
}

#[tokio::test]
async fn test_metrics_are_off_by_default_and_need_the_token() {
    let data = tempfile::tempdir().unwrap();
    let app = router(state(data.path(), None).await);
    assert_eq!(get(app, "/metrics").await.0, StatusCode::NOT_FOUND, "off without a token");
    let mut relay = Settings::for_tests(data.path().to_path_buf(), data.path().to_path_buf());
    relay.metrics_token = Some("s3cret".into());
    let state = AppState::new(
        SqliteStorage::open(&data.path().join("m.sqlite")).await.unwrap(),
        None,
        Duration::from_secs(30),
        relay.relay_config(),
    );
    let app = router(state);
    assert_eq!(get(app.clone(), "/metrics").await.0, StatusCode::NOT_FOUND);
    let with = |token: &str| {
        Request::get("/metrics")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap()
    };
    let wrong = app.clone().oneshot(with("guess")).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
    let right = app.oneshot(with("s3cret")).await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    let body = right.into_body().collect().await.unwrap().to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["queued"], 0);
}

#[tokio::test]
async fn test_api_only_serves_no_app() {
    let data = tempfile::tempdir().unwrap();
    let app = router(state(data.path(), None).await);
    assert_eq!(get(app.clone(), "/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(app, "/health").await.0, StatusCode::OK);
}

#[tokio::test]
async fn test_socket_on_port_zero_and_graceful_shutdown() {
    let data = tempfile::tempdir().unwrap();
    let dist = dist_dir();
    let settings = Settings::for_tests(data.path().to_path_buf(), dist.path().to_path_buf());
    let server = Server::prepare(&settings).await.unwrap();
    let listener = bind(settings.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.serve(listener, async move {
        let _ = stop_rx.await;
    }));

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/socket")).await.unwrap();
    let Message::Binary(first) = ws.next().await.unwrap().unwrap() else {
        panic!("binary welcome")
    };
    let welcome = ServerFrame::from_bytes(&first).unwrap();
    assert!(matches!(
        welcome.kind,
        Some(server_frame::Kind::Push(tandem_core::wire::relay::Push {
            body: Some(push::Body::Welcome(_)),
            ..
        }))
    ));
    let ping =
        ClientFrame::request(5, request::Body::Ping(Ping { payload: b"round trip".to_vec() }));
    ws.send(Message::Binary(ping.encode_to_vec().into())).await.unwrap();
    let Message::Binary(reply) = ws.next().await.unwrap().unwrap() else { panic!("binary reply") };
    let Some(server_frame::Kind::Response(resp)) = ServerFrame::from_bytes(&reply).unwrap().kind
    else {
        panic!("response")
    };
    assert_eq!((resp.id, resp.status()), (5, Status::Ok));
    assert!(matches!(resp.body, Some(response::Body::Pong(ref p)) if p.payload == b"round trip"));

    stop_tx.send(()).unwrap();
    let close =
        tokio::time::timeout(Duration::from_secs(5), ws.next()).await.unwrap().unwrap().unwrap();
    match close {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a going-away close, got {other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(10), running).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn test_oversized_websocket_message_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_tests(data.path().to_path_buf(), data.path().to_path_buf());
    settings.api_only = true;
    let server = Server::prepare(&settings).await.unwrap();
    let listener = bind(settings.listen).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/v1/socket")).await.unwrap();
    ws.next().await.unwrap().unwrap();
    let big = vec![0u8; tandem_core::wire::relay::MAX_FRAME_LEN + 1];
    let _ = ws.send(Message::Binary(big.into())).await;
    // The server drops the connection instead of buffering the message.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "connection ended");
}

fn run_server(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tandem-server"))
        .args(args)
        .env_remove("TANDEM_LISTEN")
        .env("TANDEM_LOG", "error")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_one_clear_line(stderr: &str, expected: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line, got: {stderr:?}");
    assert!(lines[0].starts_with("tandem-server: error: "), "{stderr}");
    assert!(lines[0].contains(expected), "expected {expected:?} in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn test_missing_dist_is_one_clear_line() {
    let data = tempfile::tempdir().unwrap();
    let missing = data.path().join("no-dist");
    let (ok, stderr) = run_server(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--dist",
        missing.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_one_clear_line(&stderr, "web app not found");
}

#[test]
fn test_unusable_data_dir_is_one_clear_line() {
    let dist = dist_dir();
    let file = dist.path().join("index.html");
    let under_file = file.join("data");
    let (ok, stderr) = run_server(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        under_file.to_str().unwrap(),
        "--dist",
        dist.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_one_clear_line(&stderr, "cannot use data directory");
}

#[test]
fn test_port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let dist = dist_dir();
    let (ok, stderr) = run_server(&[
        "--listen",
        &addr,
        "--data-dir",
        data.path().to_str().unwrap(),
        "--dist",
        dist.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert_one_clear_line(&stderr, &format!("cannot listen on {addr}"));
}

#[test]
fn test_bad_flag_value_exits_nonzero_without_panic() {
    let (ok, stderr) = run_server(&["--listen", "not-an-address"]);
    assert!(!ok);
    assert!(stderr.contains("invalid value 'not-an-address'"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

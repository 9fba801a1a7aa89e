//! The socket logic over in-memory channels.

use futures_channel::mpsc as fmpsc;
use futures_util::{SinkExt, StreamExt};
use tandem_core::wire::relay::{Ping, PushAck, server_frame};

use super::*;

/// A socket made of two channels: what the test sends in and what the server writes out.
struct Harness {
    to_server: fmpsc::UnboundedSender<Result<Message, String>>,
    from_server: fmpsc::UnboundedReceiver<Message>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start(idle: Duration) -> Harness {
    let (to_server, server_in) = fmpsc::unbounded::<Result<Message, String>>();
    let (server_out, from_server) = fmpsc::unbounded::<Message>();
    let sink = server_out.sink_map_err(|e| e.to_string());
    let socket = futures_util::stream::StreamExt::boxed(server_in);
    let socket = SplitJoin { stream: socket, sink: Box::pin(sink) };
    let shutdown = CancellationToken::new();
    let config = SocketConfig { idle_timeout: idle, server_version: "test".into() };
    let task = tokio::spawn(serve_socket(socket, config, shutdown.clone()));
    Harness { to_server, from_server, shutdown, task }
}

/// Joins a stream and a sink into one `Stream + Sink`.
struct SplitJoin<St, Si> {
    stream: St,
    sink: Si,
}

impl<St: Stream + Unpin, Si: Unpin> Stream for SplitJoin<St, Si> {
    type Item = St::Item;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream.poll_next_unpin(cx)
    }
}

impl<St: Unpin, Si: Sink<Message> + Unpin> Sink<Message> for SplitJoin<St, Si> {
    type Error = Si::Error;
    fn poll_ready(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.sink.poll_ready_unpin(cx)
    }
    fn start_send(mut self: std::pin::Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.sink.start_send_unpin(item)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.sink.poll_flush_unpin(cx)
    }
    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.sink.poll_close_unpin(cx)
    }
}

impl Harness {
    fn send_frame(&self, frame: &ClientFrame) {
        self.to_server.unbounded_send(Ok(Message::Binary(frame.encode_to_vec().into()))).unwrap();
    }

    async fn next(&mut self) -> Message {
        tokio::time::timeout(Duration::from_secs(5), self.from_server.next())
            .await
            .expect("server answered in time")
            .expect("server still open")
    }

    async fn next_frame(&mut self) -> ServerFrame {
        match self.next().await {
            Message::Binary(b) => ServerFrame::from_bytes(&b).unwrap(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    async fn expect_close(&mut self, code: u16) {
        match self.next().await {
            Message::Close(Some(f)) => assert_eq!(f.code, code, "close reason {}", f.reason),
            other => panic!("expected close {code}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn test_welcome_then_ping_pong() {
    let mut h = start(Duration::from_secs(30));
    let welcome = h.next_frame().await;
    assert!(matches!(
        welcome.kind,
        Some(server_frame::Kind::Push(tandem_core::wire::relay::Push {
            body: Some(push::Body::Welcome(_)),
            ..
        }))
    ));
    h.send_frame(&ClientFrame::request(42, request::Body::Ping(Ping { payload: b"abc".to_vec() })));
    let Some(server_frame::Kind::Response(resp)) = h.next_frame().await.kind else {
        panic!("expected a response")
    };
    assert_eq!(resp.id, 42);
    assert_eq!(resp.status(), Status::Ok);
    let Some(response::Body::Pong(pong)) = resp.body else { panic!("expected pong") };
    assert_eq!(pong.payload, b"abc");
    assert!(pong.server_time_ms > 1_700_000_000_000);
}

#[tokio::test]
async fn test_oversized_ping_and_empty_request_are_rejected_with_codes() {
    let mut h = start(Duration::from_secs(30));
    h.next_frame().await;
    h.send_frame(&ClientFrame::request(
        1,
        request::Body::Ping(Ping { payload: vec![0; MAX_PING_PAYLOAD + 1] }),
    ));
    let Some(server_frame::Kind::Response(resp)) = h.next_frame().await.kind else { panic!() };
    assert_eq!(resp.status(), Status::TooLarge);
    h.send_frame(&ClientFrame {
        kind: Some(client_frame::Kind::Request(tandem_core::wire::relay::Request {
            id: 2,
            body: None,
        })),
    });
    let Some(server_frame::Kind::Response(resp)) = h.next_frame().await.kind else { panic!() };
    assert_eq!((resp.id, resp.status()), (2, Status::BadRequest));
    // Acks need no answer; the socket stays usable.
    h.send_frame(&ClientFrame { kind: Some(client_frame::Kind::Ack(PushAck { push_id: 9 })) });
    h.send_frame(&ClientFrame::request(3, request::Body::Ping(Ping::default())));
    let Some(server_frame::Kind::Response(resp)) = h.next_frame().await.kind else { panic!() };
    assert_eq!((resp.id, resp.status()), (3, Status::Ok));
}

#[tokio::test]
async fn test_malformed_frame_closes_with_invalid_payload() {
    let mut h = start(Duration::from_secs(30));
    h.next_frame().await;
    h.to_server.unbounded_send(Ok(Message::Binary(vec![0xff, 0xff, 0xff].into()))).unwrap();
    h.expect_close(close_code::INVALID_PAYLOAD).await;
    h.task.await.unwrap();
}

#[tokio::test]
async fn test_text_frame_closes_with_unsupported_data() {
    let mut h = start(Duration::from_secs(30));
    h.next_frame().await;
    h.to_server.unbounded_send(Ok(Message::Text("hello".into()))).unwrap();
    h.expect_close(close_code::UNSUPPORTED_DATA).await;
}

#[tokio::test]
async fn test_shutdown_closes_with_going_away() {
    let mut h = start(Duration::from_secs(30));
    h.next_frame().await;
    h.shutdown.cancel();
    h.expect_close(close_code::GOING_AWAY).await;
    h.task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn test_idle_socket_is_closed() {
    let mut h = start(Duration::from_secs(90));
    h.next_frame().await;
    tokio::time::advance(Duration::from_secs(91)).await;
    h.expect_close(close_code::NORMAL).await;
}

#[tokio::test]
async fn test_read_error_ends_session() {
    let mut h = start(Duration::from_secs(30));
    h.next_frame().await;
    h.to_server.unbounded_send(Err("connection reset".into())).unwrap();
    tokio::time::timeout(Duration::from_secs(5), h.task).await.expect("session ended").unwrap();
    assert!(h.from_server.next().await.is_none(), "the server closed its side");
}

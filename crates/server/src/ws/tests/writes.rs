//! How frames leave: what is ready together goes out in one write, and no more than
//! [`MAX_EVENTS_PER_WRITE`] events wait for one.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::*;

/// A sink that counts its flushes (each is one write to a real socket).
struct Counting {
    inner: fmpsc::UnboundedSender<Message>,
    flushes: Arc<AtomicUsize>,
}

impl Sink<Message> for Counting {
    type Error = String;
    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), String>> {
        self.inner.poll_ready_unpin(cx).map_err(|e| e.to_string())
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), String> {
        self.inner.start_send_unpin(item).map_err(|e| e.to_string())
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), String>> {
        self.flushes.fetch_add(1, Ordering::Relaxed);
        self.inner.poll_flush_unpin(cx).map_err(|e| e.to_string())
    }
    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), String>> {
        self.inner.poll_close_unpin(cx).map_err(|e| e.to_string())
    }
}

fn ping(id: u64) -> Result<Message, String> {
    let body = request::Body::Ping(Ping { payload: id.to_le_bytes().to_vec() });
    Ok(Message::Binary(ClientFrame::request(id, body).encode_to_vec().into()))
}

/// Serves a socket whose client had already sent `pings` pings; returns the pongs' ids in
/// the order they came and how many writes carried them.
async fn answer_waiting_pings(pings: u64) -> (Vec<u64>, usize) {
    let (state, _dir) = state().await;
    let (to_server, server_in) = fmpsc::unbounded::<Result<Message, String>>();
    let (server_out, mut from_server) = fmpsc::unbounded::<Message>();
    for id in 1..=pings {
        to_server.unbounded_send(ping(id)).unwrap();
    }
    let flushes = Arc::new(AtomicUsize::new(0));
    let socket = Joined {
        stream: server_in,
        sink: Counting { inner: server_out, flushes: flushes.clone() },
    };
    let config = SocketConfig {
        idle_timeout: Duration::from_secs(30),
        server_version: "test".into(),
        peer: None,
        host: Some(HOST.into()),
    };
    let task = tokio::spawn(serve_socket(socket, config, state.clone()));
    let mut pongs = Vec::new();
    while (pongs.len() as u64) < pings {
        let Some(Message::Binary(bytes)) = from_server.next().await else { panic!("socket ended") };
        if let Some(server_frame::Kind::Response(r)) = ServerFrame::from_bytes(&bytes).unwrap().kind
        {
            assert_eq!(r.status(), Status::Ok, "{}", r.message);
            pongs.push(r.id);
        }
    }
    let writes = flushes.load(Ordering::Relaxed);
    drop(to_server);
    task.await.unwrap();
    (pongs, writes)
}

#[tokio::test]
async fn test_frames_ready_together_leave_in_one_write() {
    // The welcome and ten answers: one write, not eleven.
    let (pongs, writes) = answer_waiting_pings(10).await;
    assert_eq!(pongs, (1..=10).collect::<Vec<_>>());
    assert_eq!(writes, 1, "the welcome and ten pongs went out in {writes} writes");
}

#[tokio::test]
async fn test_a_busy_socket_still_writes_every_few_events() {
    // A client that never pauses still gets its answers while it keeps sending.
    let (pongs, writes) = answer_waiting_pings(200).await;
    assert_eq!(pongs, (1..=200).collect::<Vec<_>>());
    let least = 200_usize.div_ceil(MAX_EVENTS_PER_WRITE);
    assert!((least..=least + 2).contains(&writes), "200 pongs in {writes} writes");
}

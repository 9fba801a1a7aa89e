//! The client WebSocket: one binary protobuf frame per message (see `tandem_core::wire::relay`).
//!
//! [`serve_socket`] is generic over any `Stream + Sink` of WebSocket messages, so tests drive
//! it over in-memory channels as well as over real sockets. A reader loop handles incoming
//! frames and a writer task owns the sink; each ends the other.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use prost::Message as _;
use tandem_core::wire::relay::{
    ClientFrame, MAX_PING_PAYLOAD, Pong, ServerFrame, Status, Welcome, client_frame, push, request,
    response,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// WebSocket close codes the server uses.
pub mod close_code {
    /// Normal closure (idle timeout).
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// A text frame arrived; only binary frames are spoken.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A frame did not parse.
    pub const INVALID_PAYLOAD: u16 = 1007;
}

/// Limits and identity of one socket session.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Close the socket when the client sends nothing for this long.
    pub idle_timeout: Duration,
    /// The version string sent in the welcome.
    pub server_version: String,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

enum Outgoing {
    Frame(ServerFrame),
    Close(u16, &'static str),
}

/// Serves one client socket until it closes, errs, idles out or `shutdown` fires.
pub async fn serve_socket<S, E>(socket: S, config: SocketConfig, shutdown: CancellationToken)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Send + 'static,
    E: std::fmt::Display,
{
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(64);

    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let (msg, last) = match out {
                Outgoing::Frame(frame) => (Message::Binary(frame.encode_to_vec().into()), false),
                Outgoing::Close(code, reason) => {
                    (Message::Close(Some(CloseFrame { code, reason: reason.into() })), true)
                }
            };
            if sink.send(msg).await.is_err() || last {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let welcome = ServerFrame::push(
        0,
        push::Body::Welcome(Welcome {
            server_version: config.server_version.clone(),
            server_time_ms: now_ms(),
        }),
    );
    if tx.send(Outgoing::Frame(welcome)).await.is_ok() {
        read_loop(&mut stream, &tx, &config, &shutdown).await;
    }
    drop(tx);
    // The writer drains what is queued (including a close frame) and then stops; if the
    // peer is gone it errors out at once.
    if tokio::time::timeout(Duration::from_secs(5), writer).await.is_err() {
        tracing::debug!("socket writer did not finish in time");
    }
}

async fn read_loop<St, E>(
    stream: &mut St,
    tx: &mpsc::Sender<Outgoing>,
    config: &SocketConfig,
    shutdown: &CancellationToken,
) where
    St: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
{
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => {
                let _ = tx.send(Outgoing::Close(close_code::GOING_AWAY, "server shutting down")).await;
                return;
            }
            r = tokio::time::timeout(config.idle_timeout, stream.next()) => r,
        };
        let msg = match next {
            Err(_) => {
                let _ = tx.send(Outgoing::Close(close_code::NORMAL, "idle timeout")).await;
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "socket read failed");
                return;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        match msg {
            Message::Binary(bytes) => match ClientFrame::from_bytes(&bytes) {
                Ok(frame) => {
                    if let Some(reply) = handle_frame(frame)
                        && tx.send(Outgoing::Frame(reply)).await.is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "malformed client frame");
                    let _ = tx
                        .send(Outgoing::Close(close_code::INVALID_PAYLOAD, "malformed frame"))
                        .await;
                    return;
                }
            },
            Message::Text(_) => {
                let _ = tx
                    .send(Outgoing::Close(close_code::UNSUPPORTED_DATA, "binary frames only"))
                    .await;
                return;
            }
            Message::Close(_) => return,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
}

/// Answers one decoded frame; `None` when the frame needs no answer.
fn handle_frame(frame: ClientFrame) -> Option<ServerFrame> {
    match frame.kind? {
        client_frame::Kind::Request(req) => Some(handle_request(req)),
        client_frame::Kind::Ack(_) => None,
    }
}

fn handle_request(req: tandem_core::wire::relay::Request) -> ServerFrame {
    let id = req.id;
    match req.body {
        None => ServerFrame::response(id, Status::BadRequest, "request has no body", None),
        Some(request::Body::Ping(ping)) => {
            if ping.payload.len() > MAX_PING_PAYLOAD {
                return ServerFrame::response(
                    id,
                    Status::TooLarge,
                    format!("ping payload over {MAX_PING_PAYLOAD} bytes"),
                    None,
                );
            }
            ServerFrame::response(
                id,
                Status::Ok,
                "",
                Some(response::Body::Pong(Pong {
                    payload: ping.payload,
                    server_time_ms: now_ms(),
                })),
            )
        }
    }
}

#[cfg(test)]
mod tests;

//! A WebSocket connection to the relay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tandem_core::runtime::Requests;
use tandem_core::transport::{RelayTransport, TransportError};
use tandem_core::wire::relay::{
    ClientFrame, Push, PushAck, Response, ServerFrame, Welcome, client_frame, push, request,
    server_frame,
};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long a request waits for its answer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The socket did not open.
    #[error("cannot connect to {url}: {reason}")]
    Socket {
        /// The relay URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The relay did not greet.
    #[error("the relay did not send a welcome")]
    NoWelcome,
}

type Pending = Arc<Mutex<Requests<oneshot::Sender<Response>>>>;

/// A connection. Cheap to clone; all clones share the socket.
#[derive(Clone, Debug)]
pub struct Connection {
    out: mpsc::UnboundedSender<Message>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    welcome: Welcome,
    /// The host the socket was dialled at (what login proofs name).
    host: String,
}

/// Pushes from the relay, in arrival order; ends when the socket closes.
#[derive(Debug)]
pub struct Pushes {
    rx: mpsc::UnboundedReceiver<Push>,
    close: Arc<Mutex<Option<(u16, String)>>>,
}

impl Pushes {
    /// The next push, or `None` once the socket closed.
    pub async fn recv(&mut self) -> Option<Push> {
        self.rx.recv().await
    }

    /// How the socket closed (code and reason), once it has.
    pub fn close_reason(&self) -> Option<(u16, String)> {
        self.close.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Connection {
    /// Connects to `url` (e.g. `ws://127.0.0.1:8080/v1/socket`) and waits for the welcome.
    pub async fn connect(url: &str) -> Result<(Self, Pushes), ConnectError> {
        // Small buffers: the load generator holds thousands of these.
        let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(url, Some(config), true)
                .await
                .map_err(|e| ConnectError::Socket { url: url.to_owned(), reason: e.to_string() })?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (push_tx, mut push_rx) = mpsc::unbounded_channel::<Push>();
        let pending: Pending = Arc::default();
        let close: Arc<Mutex<Option<(u16, String)>>> = Arc::default();

        tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                let last = matches!(msg, Message::Close(_));
                if sink.send(msg).await.is_err() || last {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_pending = pending.clone();
        let reader_close = close.clone();
        let closed = Arc::new(AtomicBool::new(false));
        let reader_closed = closed.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    Message::Binary(bytes) => match ServerFrame::from_bytes(&bytes).map(|f| f.kind)
                    {
                        Ok(Some(server_frame::Kind::Response(r))) => {
                            let tx = reader_pending
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .take(r.id);
                            if let Some(tx) = tx {
                                let _ = tx.send(r);
                            }
                        }
                        Ok(Some(server_frame::Kind::Push(p))) => {
                            if push_tx.send(p).is_err() {
                                break;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "malformed frame from the relay");
                            break;
                        }
                    },
                    Message::Close(frame) => {
                        *reader_close.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                            frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                        break;
                    }
                    _ => {}
                }
            }
            // Fail every request still waiting, and every later one (see `request`).
            reader_closed.store(true, Ordering::Release);
            reader_pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain();
        });
        let welcome = match push_rx.recv().await {
            Some(Push { body: Some(push::Body::Welcome(w)), .. }) => w,
            _ => return Err(ConnectError::NoWelcome),
        };
        let host = tandem_core::auth::host_of_url(url).unwrap_or_default();
        let conn = Self { out, pending, closed, welcome, host };
        Ok((conn, Pushes { rx: push_rx, close }))
    }

    /// The relay's welcome.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// How far the relay's clock is ahead of this machine's, in ms (from the welcome).
    pub fn clock_offset_ms(&self) -> i64 {
        let local = i64::try_from(crate::now().as_millis()).unwrap_or(i64::MAX);
        i64::try_from(self.welcome.server_time_ms).unwrap_or(i64::MAX).saturating_sub(local)
    }

    /// Acknowledges a push.
    pub fn ack(&self, push_id: u64) {
        let frame = ClientFrame { kind: Some(client_frame::Kind::Ack(PushAck { push_id })) };
        let _ = self.out.send(Message::Binary(frame.encode_to_vec().into()));
    }

    /// Closes the socket.
    pub fn close(&self) {
        let _ = self.out.send(Message::Close(None));
    }

    /// Whether the socket is still open.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire) && !self.out.is_closed()
    }
}

#[async_trait]
impl RelayTransport for Connection {
    async fn request(&self, body: request::Body) -> Result<Response, TransportError> {
        let (tx, rx) = oneshot::channel();
        let id = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).start(tx);
        // Checked after registering: the reader sets the flag before it clears the pending
        // map, so a request is either failed by that clear or sees the flag here.
        if self.closed.load(Ordering::Acquire) {
            self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(id);
            return Err(TransportError::NotConnected);
        }
        let frame = ClientFrame::request(id, body);
        if self.out.send(Message::Binary(frame.encode_to_vec().into())).is_err() {
            self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(id);
            return Err(TransportError::NotConnected);
        }
        match tokio::time::timeout(REQUEST_TIMEOUT, rx).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(TransportError::Closed("the connection closed".into())),
            Err(_) => {
                self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take(id);
                Err(TransportError::Timeout)
            }
        }
    }

    fn challenge(&self) -> Result<tandem_core::auth::Challenge, tandem_core::auth::ChallengeError> {
        tandem_core::auth::Challenge::new(&self.welcome.challenge, &self.host)
    }
}

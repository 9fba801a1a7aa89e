//! The relay WebSocket in the browser.
//!
//! [`RelayConnection`] is one open socket speaking `tandem_core::wire::relay` frames.
//! [`RelayClient`] keeps a connection up: it reconnects with [`Backoff`], proves liveness
//! with keepalive pings, matches responses to requests, and reports its
//! [`ConnectionState`] to whoever displays it.

mod connection;
mod timer;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use tandem_core::runtime::Requests;
use tandem_core::transport::{Backoff, KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT};
use tandem_core::wire::relay::{
    ClientFrame, Ping, Push, PushAck, Response, Status, client_frame, request, response,
    server_frame,
};

pub use connection::{RelayConnection, RelayEvents, close_code};
pub use timer::{duration_between, now, now_ms, sleep, within, yield_now};

/// How long a request waits for its response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a request or connection failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The socket could not be opened (server down, wrong address, no network).
    #[error("cannot reach the server")]
    Unreachable,
    /// The socket closed.
    #[error("connection closed ({code}{})", if .reason.is_empty() { String::new() } else { format!(": {}", .reason) })]
    Closed {
        /// WebSocket close code.
        code: u16,
        /// Close reason from the server, if any.
        reason: String,
    },
    /// Not connected right now.
    #[error("not connected")]
    NotConnected,
    /// No response in time.
    #[error("the server did not answer in time")]
    Timeout,
    /// The server sent something that does not parse.
    #[error("the server sent a malformed frame: {0}")]
    Protocol(String),
    /// The browser refused an operation.
    #[error("the browser refused: {0}")]
    Browser(String),
}

/// What the connection to the relay is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    /// Opening a socket (attempt counts from 1).
    Connecting {
        /// Attempt number since the last successful connection.
        attempt: u32,
    },
    /// Connected and answering.
    Connected {
        /// The relay's version.
        server_version: String,
        /// Round-trip time of the last keepalive, in milliseconds.
        latency_ms: Option<u32>,
    },
    /// Not connected; the next attempt happens at `retry_at_ms` (epoch milliseconds).
    Offline {
        /// When the next attempt starts.
        retry_at_ms: f64,
        /// What went wrong, for people.
        reason: String,
    },
}

type Pending = Requests<oneshot::Sender<Result<Response, TransportError>>>;

/// What the engine hears from the connection.
pub struct Handlers {
    /// A push from the relay (envelopes, queue drained, expiry, removal).
    pub on_push: Box<dyn Fn(Push)>,
    /// A new socket is open (authenticate on it before anything else).
    pub on_connected: Box<dyn Fn()>,
}

/// `localStorage` key of the last measured offset of the relay's clock (ms), so a start
/// without a connection still stamps messages by it.
const CLOCK_KEY: &str = "tandem.clock_offset";

/// How far the relay's clock is ahead of this browser's (`server − local`, ms), as last
/// measured (from the welcome, then from keepalives), or as remembered from before.
pub fn clock_offset_ms() -> i64 {
    CLOCK_OFFSET.with(|c| {
        c.get().unwrap_or_else(|| {
            let remembered = web_sys::window()
                .and_then(|w| w.local_storage().ok().flatten())
                .and_then(|s| s.get_item(CLOCK_KEY).ok().flatten())
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0);
            c.set(Some(remembered));
            remembered
        })
    })
}

thread_local! {
    static CLOCK_OFFSET: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Records a measurement of the relay's clock: `server_ms` read at about `local_ms`.
/// Differences under two seconds count as none (network delay, not a wrong clock).
#[allow(clippy::cast_possible_truncation, reason = "epoch milliseconds fit an i64")]
fn measured_clock(server_ms: u64, local_ms: f64) {
    let raw = i64::try_from(server_ms).unwrap_or(i64::MAX).saturating_sub(local_ms as i64);
    let offset = if raw.abs() < 2_000 { 0 } else { raw };
    CLOCK_OFFSET.with(|c| c.set(Some(offset)));
    if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = s.set_item(CLOCK_KEY, &offset.to_string());
    }
}

struct Inner {
    url: RefCell<String>,
    on_state: Box<dyn Fn(ConnectionState)>,
    state: RefCell<ConnectionState>,
    current: RefCell<Option<Rc<RelayConnection>>>,
    pending: RefCell<Pending>,
    wake: RefCell<Option<oneshot::Sender<()>>>,
    stopped: Cell<bool>,
    handlers: RefCell<Option<Rc<Handlers>>>,
    /// The current socket's login challenge and the host it was dialled at.
    challenge: RefCell<Option<tandem_core::auth::Challenge>>,
}

/// A self-healing connection to the relay. Cheap to clone; all clones share one socket.
#[derive(Clone)]
pub struct RelayClient {
    inner: Rc<Inner>,
}

impl RelayClient {
    /// Starts connecting to `url` in the background; `on_state` hears every state change.
    pub fn start(url: String, on_state: impl Fn(ConnectionState) + 'static) -> Self {
        let client = Self {
            inner: Rc::new(Inner {
                url: RefCell::new(url),
                on_state: Box::new(on_state),
                state: RefCell::new(ConnectionState::Connecting { attempt: 1 }),
                current: RefCell::new(None),
                pending: RefCell::new(Requests::new()),
                wake: RefCell::new(None),
                stopped: Cell::new(false),
                handlers: RefCell::new(None),
                challenge: RefCell::new(None),
            }),
        };
        let runner = client.clone();
        wasm_bindgen_futures::spawn_local(async move { runner.run().await });
        client
    }

    /// The current state.
    pub fn state(&self) -> ConnectionState {
        self.inner.state.borrow().clone()
    }

    /// Skips the rest of the backoff wait and reconnects now (e.g. the browser came online).
    pub fn retry_now(&self) {
        if let Some(wake) = self.inner.wake.borrow_mut().take() {
            let _ = wake.send(());
        }
    }

    /// The relay's address.
    pub fn url(&self) -> String {
        self.inner.url.borrow().clone()
    }

    /// Connects to another relay from now on.
    pub fn set_url(&self, url: String) {
        *self.inner.url.borrow_mut() = url;
        if let Some(conn) = self.inner.current.borrow().as_ref() {
            conn.close(1000, "server changed");
        }
        self.retry_now();
    }

    /// Closes the socket for good.
    pub fn stop(&self) {
        self.inner.stopped.set(true);
        if let Some(conn) = self.inner.current.borrow().as_ref() {
            conn.close(1000, "client stopped");
        }
        self.retry_now();
    }

    /// Sends a request and waits for its response (at most [`REQUEST_TIMEOUT`]).
    pub async fn request(&self, body: request::Body) -> Result<Response, TransportError> {
        self.request_with_timeout(body, REQUEST_TIMEOUT).await
    }

    async fn request_with_timeout(
        &self,
        body: request::Body,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        let conn = self.inner.current.borrow().clone().ok_or(TransportError::NotConnected)?;
        let (tx, rx) = oneshot::channel();
        let id = self.inner.pending.borrow_mut().start(tx);
        if let Err(e) = conn.send(&ClientFrame::request(id, body)) {
            self.inner.pending.borrow_mut().take(id);
            return Err(e);
        }
        match within(timeout, rx).await {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(TransportError::NotConnected),
            None => {
                self.inner.pending.borrow_mut().take(id);
                Err(TransportError::Timeout)
            }
        }
    }

    /// Routes pushes and connection events to the engine (replacing earlier handlers).
    /// `on_connected` fires for sockets opened from now on.
    pub fn set_handlers(&self, handlers: Handlers) {
        *self.inner.handlers.borrow_mut() = Some(Rc::new(handlers));
    }

    /// Whether a socket is open now.
    pub fn is_connected(&self) -> bool {
        matches!(self.state(), ConnectionState::Connected { .. })
    }

    /// Acknowledges a push: the relay may delete it. Lost if the socket is down (the relay
    /// then pushes it again on the next connection).
    pub fn ack(&self, push_id: u64) {
        if let Some(conn) = self.inner.current.borrow().as_ref() {
            let _ = conn
                .send(&ClientFrame { kind: Some(client_frame::Kind::Ack(PushAck { push_id })) });
        }
    }

    fn handlers(&self) -> Option<Rc<Handlers>> {
        self.inner.handlers.borrow().clone()
    }

    fn set_state(&self, state: ConnectionState) {
        *self.inner.state.borrow_mut() = state.clone();
        (self.inner.on_state)(state);
    }

    async fn run(&self) {
        let mut backoff = Backoff::client_default();
        let mut rng = crate::rng::system_rng();
        while !self.inner.stopped.get() {
            self.set_state(ConnectionState::Connecting { attempt: backoff.attempts() + 1 });
            let url = self.inner.url.borrow().clone();
            let reason = match RelayConnection::connect(&url).await {
                Ok((conn, mut events, welcome)) => {
                    backoff.reset();
                    measured_clock(welcome.server_time_ms, now_ms());
                    let host = tandem_core::auth::host_of_url(&url).unwrap_or_default();
                    *self.inner.challenge.borrow_mut() =
                        tandem_core::auth::Challenge::new(&welcome.challenge, &host).ok();
                    let conn = Rc::new(conn);
                    *self.inner.current.borrow_mut() = Some(conn.clone());
                    self.set_state(ConnectionState::Connected {
                        server_version: welcome.server_version,
                        latency_ms: None,
                    });
                    if let Some(h) = self.handlers() {
                        (h.on_connected)();
                    }
                    let reason = self.pump(&conn, &mut events).await;
                    *self.inner.current.borrow_mut() = None;
                    self.inner.challenge.borrow_mut().take();
                    self.fail_pending(&reason);
                    reason
                }
                Err(e) => e,
            };
            if self.inner.stopped.get() {
                break;
            }
            let delay = backoff.next_delay(&mut rng);
            let (wake_tx, wake_rx) = oneshot::channel();
            *self.inner.wake.borrow_mut() = Some(wake_tx);
            self.set_state(ConnectionState::Offline {
                retry_at_ms: now_ms() + delay.as_millis() as f64,
                reason: describe(&reason),
            });
            let _ = within(delay, wake_rx).await;
            self.inner.wake.borrow_mut().take();
        }
    }

    /// Reads frames until the socket ends; returns why it ended.
    async fn pump(&self, conn: &Rc<RelayConnection>, events: &mut RelayEvents) -> TransportError {
        let mut next_keepalive = now_ms() + KEEPALIVE_INTERVAL.as_millis() as f64;
        loop {
            let wait = duration_between(now_ms(), next_keepalive);
            let frame = match within(wait, events.next_frame()).await {
                Some(frame) => frame,
                None => {
                    next_keepalive = now_ms() + KEEPALIVE_INTERVAL.as_millis() as f64;
                    self.spawn_keepalive(conn.clone());
                    continue;
                }
            };
            match frame {
                Ok(frame) => self.dispatch(frame),
                Err(e) => return e,
            }
        }
    }

    fn spawn_keepalive(&self, conn: Rc<RelayConnection>) {
        let client = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let started = now_ms();
            let ping = request::Body::Ping(Ping { payload: Vec::new() });
            match client.request_with_timeout(ping, KEEPALIVE_TIMEOUT).await {
                Ok(resp) if resp.status() == Status::Ok => {
                    if let Some(response::Body::Pong(p)) = &resp.body {
                        measured_clock(p.server_time_ms, (started + now_ms()) / 2.0);
                    }
                    if let ConnectionState::Connected { server_version, .. } = client.state() {
                        client.set_state(ConnectionState::Connected {
                            server_version,
                            latency_ms: Some(
                                u32::try_from(duration_between(started, now_ms()).as_millis())
                                    .unwrap_or(u32::MAX),
                            ),
                        });
                    }
                }
                Ok(_) | Err(TransportError::Timeout) => {
                    conn.close(close_code::KEEPALIVE_UNANSWERED, "keepalive unanswered");
                }
                Err(_) => {}
            }
        });
    }

    fn dispatch(&self, frame: tandem_core::wire::relay::ServerFrame) {
        match frame.kind {
            Some(server_frame::Kind::Response(resp)) => {
                let waiter = self.inner.pending.borrow_mut().take(resp.id);
                if let Some(tx) = waiter {
                    let _ = tx.send(Ok(resp));
                }
            }
            Some(server_frame::Kind::Push(push)) => {
                if let Some(h) = self.handlers() {
                    (h.on_push)(push);
                }
            }
            None => {}
        }
    }

    fn fail_pending(&self, reason: &TransportError) {
        let waiting = self.inner.pending.borrow_mut().drain();
        for tx in waiting {
            let _ = tx.send(Err(reason.clone()));
        }
    }
}

#[cfg(target_family = "wasm")]
#[async_trait::async_trait(?Send)]
impl tandem_core::transport::RelayTransport for RelayClient {
    async fn request(
        &self,
        body: request::Body,
    ) -> Result<Response, tandem_core::transport::TransportError> {
        use tandem_core::transport::TransportError as Core;
        RelayClient::request(self, body).await.map_err(|e| match e {
            TransportError::NotConnected | TransportError::Unreachable => Core::NotConnected,
            TransportError::Timeout => Core::Timeout,
            other => Core::Closed(other.to_string()),
        })
    }

    fn challenge(&self) -> Result<tandem_core::auth::Challenge, tandem_core::auth::ChallengeError> {
        self.inner.challenge.borrow().clone().ok_or(tandem_core::auth::ChallengeError::BadNonce)
    }
}

/// A sentence for people about why the connection is down.
pub fn describe(e: &TransportError) -> String {
    match e {
        TransportError::Unreachable => "The server can't be reached.".into(),
        TransportError::Closed { code: 1001, .. } => {
            "The server went away (it may be restarting).".into()
        }
        TransportError::Closed { code: close_code::KEEPALIVE_UNANSWERED, .. }
        | TransportError::Timeout => "The server stopped answering.".into(),
        TransportError::Closed { .. } => "The connection was closed.".into(),
        TransportError::NotConnected => "Not connected.".into(),
        TransportError::Protocol(_) => {
            "The server sent something this app doesn't understand.".into()
        }
        TransportError::Browser(detail) => {
            format!("The browser refused the connection ({detail}).")
        }
    }
}

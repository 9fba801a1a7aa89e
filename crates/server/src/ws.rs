//! The client WebSocket: one binary protobuf frame per message (see `tandem_core::wire::relay`).
//!
//! A session starts unauthenticated (only `Ping`, `RegisterAccount`, `Authenticate`,
//! `RegisterDevice` and `OpenProvisioning` are allowed; a companion waiting to be linked
//! holds a provisioning address). Once it is a device, the session delivers that device's
//! queue: at most `push_window` unacknowledged pushes, oldest first, first from the
//! database and then straight from committed sends while it keeps up.
//!
//! One task serves a socket: it reads frames, runs the device's requests and
//! acknowledgements concurrently as futures of its own (at most
//! [`MAX_CONCURRENT_REQUESTS`]; beyond that it stops reading, which pushes back on the
//! client), and writes responses and pushes, several per flush when several are ready. No
//! task is spawned and no channel crossed per message.
//!
//! [`serve_socket`] is generic over any `Stream + Sink` of WebSocket messages, so tests drive
//! it over in-memory channels as well as over real sockets.

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use prost::Message as _;
use tandem_core::auth::Challenge;
use tandem_core::wire::relay::{
    ClientFrame, DeviceLinked, DeviceRemoved, DeviceUnlinked, ExpiredEntry, ExpiredMessages,
    MAX_PING_PAYLOAD, Pong, ProvisioningAddress, ProvisioningMessage, QueueDrained, Request,
    ServerFrame, Status, Welcome, client_frame, envelope_push_frame, push, request, response,
};
use tokio::time::Instant;

use crate::AppState;
use crate::api::{self, ApiError, ApiResult, Authed};
use crate::hub::{Notify, Subscription};
use crate::storage::Storage;

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
    /// Another connection authenticated as the same device.
    pub const REPLACED: u16 = 4001;
    /// The device was removed from its account.
    pub const DEVICE_REMOVED: u16 = 4403;
}

/// Requests and acknowledgements one socket may have running at once.
pub const MAX_CONCURRENT_REQUESTS: usize = 32;

/// Most events a session handles before it writes out the frames they made.
const MAX_EVENTS_PER_WRITE: usize = 32;

/// How long a closing session waits for its requests in flight.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Expiry tombstones per `Expired` push (well under the frame limit).
const EXPIRED_PER_PUSH: u32 = 1000;

/// Push ids of `Expired` notices have this bit set; queue ids never reach it.
const EXPIRED_PUSH: u64 = 1 << 63;

/// Limits and identity of one socket session.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Close the socket when the client sends nothing for this long.
    pub idle_timeout: Duration,
    /// The version string sent in the welcome.
    pub server_version: String,
    /// The client's address (behind a trusted proxy, the forwarded one), for limiting
    /// unauthenticated requests per network.
    pub peer: Option<IpAddr>,
    /// The host the client dialled (the request's `Host`), which its proofs must name
    /// (unless the relay was configured with its public hosts).
    pub host: Option<String>,
}

/// Work a session runs beside reading: a request (answered with its id) or the storing of
/// acknowledgements (nothing to answer).
type Pending = Pin<Box<dyn Future<Output = Option<(u64, ApiResult)>> + Send>>;

/// Why a session ends.
enum End {
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// The socket is gone: nothing more can be written.
    Gone,
}

/// What woke the session.
enum Event<E> {
    Frame(Option<Result<Message, E>>),
    Finished(Option<(u64, ApiResult)>),
    Notify(Option<Notify>),
    Provisioning(Bytes),
    IdleCheck,
    Shutdown,
}

/// Serves one client socket until it closes, errs, idles out or the server shuts down.
pub async fn serve_socket<S, E, D>(mut socket: S, config: SocketConfig, state: AppState<D>)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin + Send + 'static,
    E: std::fmt::Display,
    D: Storage,
{
    let mut session = Session::new(state, &config);
    session.frame(ServerFrame::push(
        0,
        push::Body::Welcome(Welcome {
            server_version: config.server_version.clone(),
            server_time_ms: crate::now_ms(),
            challenge: session.nonce.to_vec(),
        }),
    ));
    let end = session.run(&mut socket, &config).await;
    Box::pin(session.finish(&mut socket, end)).await;
}

/// Delivery state of an authenticated session.
struct Delivery {
    subscription: Subscription,
    in_flight: HashSet<u64>,
    last_pushed: u64,
    caught_up: bool,
    drained_sent: bool,
    pushed: u64,
    /// The `Expired` notice out now: its push id and the tombstones it carries.
    expired_in_flight: Option<(u64, Vec<u64>)>,
}

struct Session<D> {
    state: AppState<D>,
    who: Option<Authed>,
    /// The rate-limit key before authentication (the peer address).
    anonymous: Authed,
    delivery: Option<Delivery>,
    pending: FuturesUnordered<Pending>,
    /// Frames to write at the next flush.
    outbox: Vec<Message>,
    /// This connection's id (for its provisioning address).
    connection: u64,
    /// Where a link message for this socket's provisioning address arrives.
    provisioning: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// This connection's login challenge.
    nonce: [u8; 32],
    /// The challenge under every host a proof on this connection may name.
    challenges: Vec<Challenge>,
    /// Counter for `Expired` push ids.
    expired_pushes: u64,
}

/// The rate-limit key of an unauthenticated connection: its network.
fn anonymous_key(peer: Option<IpAddr>) -> Authed {
    Authed { account: crate::limits::network_key(peer), device: 0 }
}

fn respond(id: u64, result: ApiResult) -> ServerFrame {
    match result {
        Ok(body) => ServerFrame::response(id, Status::Ok, "", body),
        Err(ApiError { status, message, body }) => {
            ServerFrame::response(id, status, message, body.map(|b| *b))
        }
    }
}

/// Writes every frame in `outbox` and flushes once.
async fn write_all<S: Sink<Message> + Unpin>(socket: &mut S, outbox: &mut Vec<Message>) -> bool {
    if outbox.is_empty() {
        return true;
    }
    for msg in outbox.drain(..) {
        if socket.feed(msg).await.is_err() {
            return false;
        }
    }
    socket.flush().await.is_ok()
}

impl<D: Storage> Session<D> {
    fn new(state: AppState<D>, config: &SocketConfig) -> Self {
        let connection = state.hub.connection_id();
        let mut nonce = [0u8; 32];
        rand::fill(&mut nonce);
        if let Some(fixed) = state.relay.fixed_challenge() {
            nonce = fixed;
        }
        let hosts = if state.relay.public_hosts.is_empty() {
            config.host.iter().cloned().collect()
        } else {
            state.relay.public_hosts.clone()
        };
        let challenges = hosts.iter().filter_map(|h| Challenge::new(&nonce, h).ok()).collect();
        Self {
            state,
            who: None,
            anonymous: anonymous_key(config.peer),
            delivery: None,
            pending: FuturesUnordered::new(),
            outbox: Vec::new(),
            connection,
            provisioning: None,
            nonce,
            challenges,
            expired_pushes: 0,
        }
    }

    /// Refuses a proof made for another connection's challenge.
    fn fresh(&self, challenge: &[u8]) -> Result<(), ApiError> {
        if api::secrets_equal(challenge, &self.nonce) {
            Ok(())
        } else {
            Err(ApiError::new(
                Status::StaleChallenge,
                "signed for another connection; sign this one's challenge",
            ))
        }
    }

    fn frame(&mut self, frame: ServerFrame) {
        self.outbox.push(Message::Binary(frame.encode_to_vec().into()));
    }

    fn answer(&mut self, id: u64, result: ApiResult) {
        self.frame(respond(id, result));
    }

    async fn run<S, E>(&mut self, socket: &mut S, config: &SocketConfig) -> End
    where
        S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
        E: std::fmt::Display,
    {
        let shutdown = self.state.shutdown.clone();
        // Made once: a fresh one per event would join and leave the token's waiter list.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        // One timer per idle period, not one per frame: it fires at the deadline of the
        // last activity it knows of, and is moved on if the client spoke since.
        let mut last_active = Instant::now();
        let idle = tokio::time::sleep(config.idle_timeout);
        tokio::pin!(idle);
        // Events handled since the last flush.
        let mut unflushed = 0;
        loop {
            let reading = self.pending.len() < MAX_CONCURRENT_REQUESTS;
            // Whatever else is ready now (a commit answers this device's send and brings it
            // another's message in the same moment) is handled before the frames go out,
            // so they leave in one write instead of one system call each.
            let ready = if self.outbox.is_empty() || unflushed >= MAX_EVENTS_PER_WRITE {
                None
            } else {
                self.next_event(socket, cancelled.as_mut(), idle.as_mut(), reading).now_or_never()
            };
            let event = match ready {
                Some(event) => event,
                None => {
                    unflushed = 0;
                    if !write_all(socket, &mut self.outbox).await {
                        return End::Gone;
                    }
                    self.next_event(socket, cancelled.as_mut(), idle.as_mut(), reading).await
                }
            };
            unflushed += 1;
            let outcome = match event {
                Event::Shutdown => Err(End::Close(close_code::GOING_AWAY, "server shutting down")),
                Event::IdleCheck => {
                    let deadline = last_active + config.idle_timeout;
                    if Instant::now() >= deadline {
                        Err(End::Close(close_code::NORMAL, "idle timeout"))
                    } else {
                        idle.as_mut().reset(deadline);
                        Ok(())
                    }
                }
                Event::Finished(Some((id, result))) => {
                    self.answer(id, result);
                    Ok(())
                }
                Event::Finished(None) => Ok(()),
                Event::Notify(Some(Notify::Envelopes(list))) => {
                    Box::pin(self.on_envelopes(list)).await
                }
                Event::Notify(Some(Notify::Removed)) => {
                    let signed_device_list = match self.who {
                        Some(who) => Box::pin(self.state.storage.account(who.account))
                            .await
                            .ok()
                            .flatten()
                            .map(|a| a.signed_device_list)
                            .unwrap_or_default(),
                        None => Vec::new(),
                    };
                    self.frame(ServerFrame::push(
                        0,
                        push::Body::DeviceRemoved(DeviceRemoved { signed_device_list }),
                    ));
                    Err(End::Close(
                        close_code::DEVICE_REMOVED,
                        "this device was removed from its account",
                    ))
                }
                Event::Notify(Some(Notify::DeviceLinked(device_id))) => {
                    self.frame(ServerFrame::push(
                        0,
                        push::Body::DeviceLinked(DeviceLinked { device_id }),
                    ));
                    Ok(())
                }
                Event::Notify(Some(Notify::DeviceUnlinked(device_id))) => {
                    self.frame(ServerFrame::push(
                        0,
                        push::Body::DeviceUnlinked(DeviceUnlinked { device_id }),
                    ));
                    Ok(())
                }
                Event::Provisioning(message) => {
                    self.frame(ServerFrame::push(
                        0,
                        push::Body::Provisioning(ProvisioningMessage { message: message.into() }),
                    ));
                    Ok(())
                }
                Event::Notify(Some(Notify::Replaced) | None) => Err(End::Close(
                    close_code::REPLACED,
                    "another connection took over this device",
                )),
                Event::Frame(None) => Err(End::Gone),
                Event::Frame(Some(Err(e))) => {
                    tracing::debug!(error = %e, "socket read failed");
                    Err(End::Gone)
                }
                Event::Frame(Some(Ok(msg))) => {
                    last_active = Instant::now();
                    // Boxed: logins and requests are large state machines, and inline they
                    // would size every idle socket's task by the largest of them.
                    Box::pin(self.on_message(msg)).await
                }
            };
            if let Err(end) = outcome {
                return end;
            }
            self.devices_changed();
        }
    }

    /// Waits for the next thing to do. Every branch is cancel-safe: the future may be polled
    /// once and dropped.
    async fn next_event<S, E>(
        &mut self,
        socket: &mut S,
        cancelled: Pin<&mut impl Future<Output = ()>>,
        idle: Pin<&mut tokio::time::Sleep>,
        reading: bool,
    ) -> Event<E>
    where
        S: Stream<Item = Result<Message, E>> + Unpin,
    {
        let notify = async {
            match self.delivery.as_mut() {
                Some(d) => d.subscription.rx.recv().await,
                None => std::future::pending().await,
            }
        };
        let provisioning = async {
            match self.provisioning.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancelled => Event::Shutdown,
            n = notify => Event::Notify(n),
            Some(p) = provisioning => Event::Provisioning(p),
            Some(done) = self.pending.next(), if !self.pending.is_empty() => Event::Finished(done),
            () = idle => Event::IdleCheck,
            m = socket.next(), if reading => Event::Frame(m),
        }
    }

    /// A notice that the account's devices changed that could not be queued earlier.
    fn devices_changed(&mut self) {
        let changed = self
            .delivery
            .as_ref()
            .is_some_and(|d| d.subscription.devices_changed.swap(false, Ordering::AcqRel));
        if changed {
            self.frame(ServerFrame::push(
                0,
                push::Body::DeviceLinked(DeviceLinked { device_id: 0 }),
            ));
        }
    }

    async fn on_message(&mut self, msg: Message) -> Result<(), End> {
        match msg {
            Message::Binary(bytes) => match ClientFrame::from_bytes(&bytes) {
                Ok(frame) => match frame.kind {
                    None => Ok(()),
                    Some(client_frame::Kind::Ack(ack)) if ack.push_id & EXPIRED_PUSH != 0 => {
                        self.on_expired_ack(ack.push_id).await;
                        Ok(())
                    }
                    Some(client_frame::Kind::Ack(ack)) => self.on_acks(vec![ack.push_id]).await,
                    Some(client_frame::Kind::Request(req)) => self.on_request(req).await,
                },
                Err(e) => {
                    tracing::debug!(error = %e, "malformed client frame");
                    Err(End::Close(close_code::INVALID_PAYLOAD, "malformed frame"))
                }
            },
            Message::Text(_) => Err(End::Close(close_code::UNSUPPORTED_DATA, "binary frames only")),
            Message::Close(_) => Err(End::Gone),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn on_request(&mut self, req: Request) -> Result<(), End> {
        let id = req.id;
        let Some(body) = req.body else {
            self.answer(id, Err(ApiError::bad("request has no body")));
            return Ok(());
        };
        match body {
            request::Body::Ping(ping) => {
                let result = if ping.payload.len() > MAX_PING_PAYLOAD {
                    Err(ApiError::new(
                        Status::TooLarge,
                        format!("ping payload over {MAX_PING_PAYLOAD} bytes"),
                    ))
                } else {
                    Ok(Some(response::Body::Pong(Pong {
                        payload: ping.payload,
                        server_time_ms: crate::now_ms(),
                    })))
                };
                self.answer(id, result);
                Ok(())
            }
            request::Body::RegisterAccount(r) if self.who.is_none() => {
                let result = match self.fresh(&r.challenge) {
                    Ok(()) => {
                        api::account::register(&self.state, self.anonymous, &self.challenges, r)
                            .await
                    }
                    Err(e) => Err(e),
                };
                self.become_device(
                    id,
                    result.map(|(who, body)| (who, response::Body::Registered(body))),
                )
                .await
            }
            request::Body::Authenticate(r) if self.who.is_none() => {
                let result = match self.fresh(&r.challenge) {
                    Ok(()) => {
                        api::account::authenticate(&self.state, self.anonymous, &self.challenges, r)
                            .await
                    }
                    Err(e) => Err(e),
                };
                self.become_device(
                    id,
                    result.map(|(who, body)| (who, response::Body::Authenticated(body))),
                )
                .await
            }
            request::Body::RegisterDevice(r) if self.who.is_none() => {
                let result = match self.fresh(&r.challenge) {
                    Ok(()) => {
                        api::devices::register(&self.state, self.anonymous, &self.challenges, r)
                            .await
                    }
                    Err(e) => Err(e),
                };
                self.become_device(
                    id,
                    result.map(|(who, body)| (who, response::Body::DeviceRegistered(body))),
                )
                .await
            }
            request::Body::ResetAccount(r) if self.who.is_some() => {
                let result = match (self.fresh(&r.challenge), self.who) {
                    (Ok(()), Some(who)) => {
                        api::account::reset(&self.state, who, &self.challenges, r).await
                    }
                    (Err(e), _) => Err(e),
                    (_, None) => Err(ApiError::new(Status::Unauthenticated, "authenticate first")),
                };
                self.answer(id, result);
                Ok(())
            }
            request::Body::OpenProvisioning(_) if self.who.is_none() => {
                let result = self.open_provisioning();
                self.answer(id, result);
                Ok(())
            }
            request::Body::RegisterAccount(_)
            | request::Body::Authenticate(_)
            | request::Body::RegisterDevice(_) => {
                self.answer(id, Err(ApiError::bad("this socket is already authenticated")));
                Ok(())
            }
            other => {
                if self.who.is_none() {
                    let err = ApiError::new(Status::Unauthenticated, "authenticate first");
                    self.answer(id, Err(err));
                    return Ok(());
                }
                let (state, who) = (self.state.clone(), self.who);
                self.pending.push(Box::pin(async move {
                    Some((id, api::dispatch(&state, who, other).await))
                }));
                Ok(())
            }
        }
    }

    /// A fresh provisioning address for this (unauthenticated) socket, replacing its last.
    fn open_provisioning(&mut self) -> ApiResult {
        api::limit(&self.state, self.anonymous, crate::limits::Limited::Provisioning, 1.0)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let (address, expires) =
            self.state.hub.open_provisioning(self.connection, self.anonymous.account, tx).map_err(
                |_| {
                    ApiError::new(
                        Status::RateLimited,
                        "too many devices are linking from this network; retry in a minute",
                    )
                },
            )?;
        self.provisioning = Some(rx);
        let expires_at_ms = expires
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok(Some(response::Body::ProvisioningAddress(ProvisioningAddress {
            address: address.to_vec(),
            expires_at_ms,
        })))
    }

    /// Answers an authenticating request and, on success, starts delivering the queue.
    async fn become_device(
        &mut self,
        id: u64,
        result: Result<(Authed, response::Body), ApiError>,
    ) -> Result<(), End> {
        let (who, body) = match result {
            Err(e) => {
                self.answer(id, Err(e));
                return Ok(());
            }
            Ok(ok) => ok,
        };
        #[cfg(test)]
        {
            let pause = self.state.login_pause.lock().ok().and_then(|mut p| p.take());
            if let Some((reached, resume)) = pause {
                reached.notify_one();
                resume.notified().await;
            }
        }
        // Subscribe first, then check the device is still there: a removal that ran while
        // this login was checked either found the subscription (and closes it) or is seen
        // here. Either way a removed device never stays logged in.
        let subscription = self.state.hub.subscribe(who.account, who.device);
        match self.state.storage.device(who.account, who.device).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                self.state.hub.unsubscribe(who.account, who.device, subscription.connection);
                let refusal = api::account::removed(&self.state, who.account).await;
                self.answer(id, Err(refusal));
                return Ok(());
            }
            Err(e) => {
                self.state.hub.unsubscribe(who.account, who.device, subscription.connection);
                self.answer(id, Err(e.into()));
                return Ok(());
            }
        }
        self.answer(id, Ok(Some(body)));
        self.who = Some(who);
        self.state.hub.close_provisioning(self.connection);
        self.provisioning = None;
        let _ = self.state.storage.touch_device(who.account, who.device, crate::now_ms()).await;
        self.delivery = Some(Delivery {
            subscription,
            in_flight: HashSet::new(),
            last_pushed: 0,
            caught_up: false,
            drained_sent: false,
            pushed: 0,
            expired_in_flight: None,
        });
        self.push_expired(who).await;
        self.fill().await
    }

    /// Tells the device about messages that expired before it came (a page at a time); the
    /// tombstones go only once it acknowledged, so the gap is always shown.
    async fn push_expired(&mut self, who: Authed) {
        if self.delivery.as_ref().is_none_or(|d| d.expired_in_flight.is_some()) {
            return;
        }
        match self.state.storage.expired(who.account, who.device, EXPIRED_PER_PUSH).await {
            Ok(rows) if rows.is_empty() => {}
            Ok(rows) => {
                self.expired_pushes += 1;
                let push_id = EXPIRED_PUSH | self.expired_pushes;
                let ids = rows.iter().map(|r| r.id).collect();
                let entries = rows
                    .into_iter()
                    .map(|r| ExpiredEntry {
                        source_account: r.source_account,
                        source_device: r.source_device,
                        client_timestamp: r.client_timestamp,
                        group_id: r.group_id,
                    })
                    .collect();
                if let Some(d) = self.delivery.as_mut() {
                    d.expired_in_flight = Some((push_id, ids));
                }
                self.frame(ServerFrame::push(
                    push_id,
                    push::Body::Expired(ExpiredMessages { entries }),
                ));
            }
            Err(e) => tracing::warn!(error = %e, "could not read expired messages"),
        }
    }

    /// The device recorded an `Expired` notice: its tombstones go, and the next page follows.
    async fn on_expired_ack(&mut self, push_id: u64) {
        let Some(who) = self.who else { return };
        let Some(d) = self.delivery.as_mut() else { return };
        let ids = match d.expired_in_flight.take() {
            Some((id, ids)) if id == push_id => ids,
            other => {
                d.expired_in_flight = other;
                return;
            }
        };
        if let Err(e) = self.state.storage.ack_expired(who.account, who.device, &ids).await {
            tracing::warn!(error = %e, "expiry notice acknowledgement not stored; it comes again");
            return;
        }
        self.push_expired(who).await;
    }

    fn push(&mut self, id: u64, envelope: &Bytes) {
        if let Some(d) = self.delivery.as_mut() {
            d.in_flight.insert(id);
            d.last_pushed = id;
            d.pushed += 1;
        }
        self.outbox.push(Message::Binary(envelope_push_frame(id, envelope).into()));
    }

    /// Pushes from the database while behind and the window has room.
    async fn fill(&mut self) -> Result<(), End> {
        let window = self.state.relay.push_window;
        loop {
            let (who, after, room) = match (&self.delivery, self.who) {
                (Some(d), Some(who)) if !d.caught_up && d.in_flight.len() <= window / 2 => {
                    (who, d.last_pushed, window - d.in_flight.len())
                }
                _ => return Ok(()),
            };
            if let Some(d) = self.delivery.as_mut() {
                d.subscription.lagged.store(false, Ordering::Release);
            }
            let limit = u32::try_from(room).unwrap_or(u32::MAX);
            let rows =
                match self.state.storage.fetch_queue(who.account, who.device, after, limit).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::warn!(error = %e, "queue read failed");
                        return Ok(());
                    }
                };
            let exhausted = rows.len() < room;
            for (id, envelope) in &rows {
                self.push(*id, envelope);
            }
            if !exhausted {
                continue;
            }
            let Some(d) = self.delivery.as_mut() else { return Ok(()) };
            let lagged = d.subscription.lagged.load(Ordering::Acquire);
            d.caught_up = !lagged;
            if !d.drained_sent {
                d.drained_sent = true;
                let count = d.pushed;
                self.frame(ServerFrame::push(0, push::Body::QueueDrained(QueueDrained { count })));
            }
            if !lagged {
                return Ok(());
            }
        }
    }

    async fn on_envelopes(&mut self, list: Vec<(u64, Bytes)>) -> Result<(), End> {
        let window = self.state.relay.push_window;
        for (id, envelope) in list {
            let Some(d) = self.delivery.as_mut() else { return Ok(()) };
            let lagged = d.subscription.lagged.load(Ordering::Acquire);
            if !d.caught_up || lagged || id <= d.last_pushed {
                d.caught_up &= !lagged;
                continue;
            }
            if d.in_flight.len() >= window {
                d.caught_up = false;
                continue;
            }
            self.push(id, &envelope);
        }
        self.fill().await
    }

    async fn on_acks(&mut self, ids: Vec<u64>) -> Result<(), End> {
        let (Some(who), Some(d)) = (self.who, self.delivery.as_mut()) else { return Ok(()) };
        // Only ids pushed on this socket count: a device acknowledges nothing it was not sent.
        let ids: Vec<u64> = ids.into_iter().filter(|id| d.in_flight.remove(id)).collect();
        if !ids.is_empty()
            && let Err(e) = self.state.storage.ack_later(who.account, who.device, ids)
        {
            tracing::warn!(error = %e, "acknowledgement not stored; the messages will be delivered again");
        }
        self.fill().await
    }

    /// Lets requests and acknowledgements in flight complete (a send whose copies are being
    /// committed must not be cut off half way), answers them if the socket is still there,
    /// closes it, and leaves the hub.
    async fn finish<S>(mut self, socket: &mut S, end: End)
    where
        S: Sink<Message> + Unpin,
    {
        let drain = async {
            while let Some(done) = self.pending.next().await {
                if let Some((id, result)) = done {
                    self.answer(id, result);
                }
            }
        };
        let _ = tokio::time::timeout(FINISH_TIMEOUT, drain).await;
        if let End::Close(code, reason) = end {
            self.outbox.push(Message::Close(Some(CloseFrame { code, reason: reason.into() })));
            if write_all(socket, &mut self.outbox).await {
                let _ = tokio::time::timeout(FINISH_TIMEOUT, socket.close()).await;
            }
        }
        self.state.hub.close_provisioning(self.connection);
        if let (Some(who), Some(d)) = (self.who, self.delivery.as_ref()) {
            self.state.hub.unsubscribe(who.account, who.device, d.subscription.connection);
            let _ = self.state.storage.touch_device(who.account, who.device, crate::now_ms()).await;
        }
    }
}

#[cfg(test)]
mod tests;

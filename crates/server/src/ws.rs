//! The client WebSocket: one binary protobuf frame per message (see `tandem_core::wire::relay`).
//!
//! A session starts unauthenticated (only `Ping`, `RegisterAccount`, `Authenticate` and
//! `RegisterDevice` are allowed). Once it is a device, the session delivers that device's
//! queue: at most `push_window` unacknowledged pushes, oldest first, first from the
//! database and then straight from committed sends while it keeps up. Requests run
//! concurrently (at most [`MAX_CONCURRENT_REQUESTS`]); a writer task owns the sink.
//!
//! [`serve_socket`] is generic over any `Stream + Sink` of WebSocket messages, so tests drive
//! it over in-memory channels as well as over real sockets.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use prost::Message as _;
use tandem_core::AccountId;
use tandem_core::wire::relay::{
    ClientFrame, DeviceRemoved, ExpiredEntry, ExpiredMessages, MAX_PING_PAYLOAD, Pong,
    QueueDrained, Request, ServerFrame, Status, Welcome, client_frame, envelope_push_frame, push,
    request, response,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

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

/// Requests one socket may have running at once.
pub const MAX_CONCURRENT_REQUESTS: usize = 32;

/// Limits and identity of one socket session.
#[derive(Clone, Debug)]
pub struct SocketConfig {
    /// Close the socket when the client sends nothing for this long.
    pub idle_timeout: Duration,
    /// The version string sent in the welcome.
    pub server_version: String,
    /// The peer's address, for rate limiting unauthenticated requests.
    pub peer: Option<IpAddr>,
}

enum Outgoing {
    Frame(ServerFrame),
    Raw(Vec<u8>),
    Close(u16, &'static str),
}

/// Serves one client socket until it closes, errs, idles out or the server shuts down.
pub async fn serve_socket<S, E, D>(socket: S, config: SocketConfig, state: AppState<D>)
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Send + 'static,
    E: std::fmt::Display,
    D: Storage,
{
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(64);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            let (msg, last) = match out {
                Outgoing::Frame(frame) => (Message::Binary(frame.encode_to_vec().into()), false),
                Outgoing::Raw(bytes) => (Message::Binary(bytes.into()), false),
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
            server_time_ms: crate::now_ms(),
        }),
    );
    if tx.send(Outgoing::Frame(welcome)).await.is_ok() {
        let mut session = Session::new(state.clone(), tx.clone(), &config);
        session.run(&mut stream, &config).await;
        session.finish().await;
    }
    drop(tx);
    if tokio::time::timeout(Duration::from_secs(5), writer).await.is_err() {
        tracing::debug!("socket writer did not finish in time");
    }
}

/// Delivery state of an authenticated session.
struct Delivery {
    subscription: Subscription,
    in_flight: HashSet<u64>,
    last_pushed: u64,
    caught_up: bool,
    drained_sent: bool,
    pushed: u64,
}

struct Session<D> {
    state: AppState<D>,
    tx: mpsc::Sender<Outgoing>,
    who: Option<Authed>,
    /// The rate-limit key before authentication (the peer address).
    anonymous: Authed,
    delivery: Option<Delivery>,
    requests: JoinSet<()>,
    acks: JoinSet<()>,
}

fn anonymous_key(peer: Option<IpAddr>) -> Authed {
    let bytes = match peer {
        Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped().octets(),
        Some(IpAddr::V6(v6)) => v6.octets(),
        None => [0; 16],
    };
    Authed { account: AccountId(bytes), device: 0 }
}

fn respond(id: u64, result: ApiResult) -> ServerFrame {
    match result {
        Ok(body) => ServerFrame::response(id, Status::Ok, "", body),
        Err(ApiError { status, message, body }) => {
            ServerFrame::response(id, status, message, body.map(|b| *b))
        }
    }
}

impl<D: Storage> Session<D> {
    fn new(state: AppState<D>, tx: mpsc::Sender<Outgoing>, config: &SocketConfig) -> Self {
        Self {
            state,
            tx,
            who: None,
            anonymous: anonymous_key(config.peer),
            delivery: None,
            requests: JoinSet::new(),
            acks: JoinSet::new(),
        }
    }

    async fn send(&self, out: Outgoing) -> bool {
        self.tx.send(out).await.is_ok()
    }

    async fn close(&self, code: u16, reason: &'static str) {
        let _ = self.tx.send(Outgoing::Close(code, reason)).await;
    }

    async fn run<St, E>(&mut self, stream: &mut St, config: &SocketConfig)
    where
        St: Stream<Item = Result<Message, E>> + Unpin,
        E: std::fmt::Display,
    {
        let shutdown = self.state.shutdown.clone();
        loop {
            let notify = async {
                match self.delivery.as_mut() {
                    Some(d) => d.subscription.rx.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {
                    self.close(close_code::GOING_AWAY, "server shutting down").await;
                    return;
                }
                n = notify => match n {
                    Some(Notify::Envelopes(list)) => {
                        if !self.on_envelopes(list).await {
                            return;
                        }
                    }
                    Some(Notify::Removed) => {
                        let _ = self.send(Outgoing::Frame(ServerFrame::push(0, push::Body::DeviceRemoved(DeviceRemoved {})))).await;
                        self.close(close_code::DEVICE_REMOVED, "this device was removed from its account").await;
                        return;
                    }
                    Some(Notify::Replaced) | None => {
                        self.close(close_code::REPLACED, "another connection took over this device").await;
                        return;
                    }
                },
                Some(_) = self.requests.join_next(), if !self.requests.is_empty() => {}
                Some(_) = self.acks.join_next(), if !self.acks.is_empty() => {}
                r = tokio::time::timeout(config.idle_timeout, stream.next()) => {
                    let msg = match r {
                        Err(_) => {
                            self.close(close_code::NORMAL, "idle timeout").await;
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
                                if !self.on_frame(frame).await {
                                    return;
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "malformed client frame");
                                self.close(close_code::INVALID_PAYLOAD, "malformed frame").await;
                                return;
                            }
                        },
                        Message::Text(_) => {
                            self.close(close_code::UNSUPPORTED_DATA, "binary frames only").await;
                            return;
                        }
                        Message::Close(_) => return,
                        Message::Ping(_) | Message::Pong(_) => {}
                    }
                }
            }
        }
    }

    async fn on_frame(&mut self, frame: ClientFrame) -> bool {
        match frame.kind {
            None => true,
            Some(client_frame::Kind::Ack(ack)) => self.on_acks(vec![ack.push_id]).await,
            Some(client_frame::Kind::Request(req)) => self.on_request(req).await,
        }
    }

    async fn on_request(&mut self, req: Request) -> bool {
        let id = req.id;
        let Some(body) = req.body else {
            return self
                .send(Outgoing::Frame(respond(id, Err(ApiError::bad("request has no body")))))
                .await;
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
                self.send(Outgoing::Frame(respond(id, result))).await
            }
            request::Body::RegisterAccount(r) if self.who.is_none() => {
                let result = api::account::register(&self.state, self.anonymous, r).await;
                self.become_device(
                    id,
                    result.map(|(who, body)| (who, response::Body::Registered(body))),
                )
                .await
            }
            request::Body::Authenticate(r) if self.who.is_none() => {
                let result = api::account::authenticate(&self.state, self.anonymous, r).await;
                self.become_device(
                    id,
                    result.map(|(who, body)| (who, response::Body::Authenticated(body))),
                )
                .await
            }
            request::Body::RegisterDevice(r) if self.who.is_none() => {
                let result = api::devices::register(&self.state, r).await;
                self.become_device(
                    id,
                    result.map(|(who, body)| (who, response::Body::DeviceRegistered(body))),
                )
                .await
            }
            request::Body::RegisterAccount(_)
            | request::Body::Authenticate(_)
            | request::Body::RegisterDevice(_) => {
                let err = ApiError::bad("this socket is already authenticated");
                self.send(Outgoing::Frame(respond(id, Err(err)))).await
            }
            other => {
                if self.who.is_none() {
                    let err = ApiError::new(Status::Unauthenticated, "authenticate first");
                    return self.send(Outgoing::Frame(respond(id, Err(err)))).await;
                }
                while self.requests.len() >= MAX_CONCURRENT_REQUESTS {
                    let _ = self.requests.join_next().await;
                }
                let (state, who, tx) = (self.state.clone(), self.who, self.tx.clone());
                self.requests.spawn(async move {
                    let result = api::dispatch(&state, who, other).await;
                    let _ = tx.send(Outgoing::Frame(respond(id, result))).await;
                });
                true
            }
        }
    }

    /// Answers an authenticating request and, on success, starts delivering the queue.
    async fn become_device(
        &mut self,
        id: u64,
        result: Result<(Authed, response::Body), ApiError>,
    ) -> bool {
        match result {
            Err(e) => self.send(Outgoing::Frame(respond(id, Err(e)))).await,
            Ok((who, body)) => {
                if !self.send(Outgoing::Frame(respond(id, Ok(Some(body))))).await {
                    return false;
                }
                self.who = Some(who);
                let _ =
                    self.state.storage.touch_device(who.account, who.device, crate::now_ms()).await;
                let subscription = self.state.hub.subscribe(who.account, who.device);
                self.delivery = Some(Delivery {
                    subscription,
                    in_flight: HashSet::new(),
                    last_pushed: 0,
                    caught_up: false,
                    drained_sent: false,
                    pushed: 0,
                });
                self.push_expired(who).await && self.fill().await
            }
        }
    }

    async fn push_expired(&self, who: Authed) -> bool {
        match self.state.storage.take_expired(who.account, who.device).await {
            Ok(rows) if rows.is_empty() => true,
            Ok(rows) => {
                let entries = rows
                    .into_iter()
                    .map(|r| ExpiredEntry {
                        source_account: r.source_account,
                        source_device: r.source_device,
                        client_timestamp: r.client_timestamp,
                    })
                    .collect();
                self.send(Outgoing::Frame(ServerFrame::push(
                    0,
                    push::Body::Expired(ExpiredMessages { entries }),
                )))
                .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read expired messages");
                true
            }
        }
    }

    async fn push(&mut self, id: u64, envelope: &Bytes) -> bool {
        if let Some(d) = self.delivery.as_mut() {
            d.in_flight.insert(id);
            d.last_pushed = id;
            d.pushed += 1;
        }
        self.send(Outgoing::Raw(envelope_push_frame(id, envelope))).await
    }

    /// Pushes from the database while behind and the window has room.
    async fn fill(&mut self) -> bool {
        let window = self.state.relay.push_window;
        loop {
            let (who, after, room) = match (&self.delivery, self.who) {
                (Some(d), Some(who)) if !d.caught_up && d.in_flight.len() <= window / 2 => {
                    (who, d.last_pushed, window - d.in_flight.len())
                }
                _ => return true,
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
                        return true;
                    }
                };
            let exhausted = rows.len() < room;
            for (id, envelope) in &rows {
                if !self.push(*id, envelope).await {
                    return false;
                }
            }
            if exhausted {
                let lagged = self
                    .delivery
                    .as_ref()
                    .is_some_and(|d| d.subscription.lagged.load(Ordering::Acquire));
                if let Some(d) = self.delivery.as_mut() {
                    d.caught_up = !lagged;
                    if !d.drained_sent {
                        d.drained_sent = true;
                        let count = d.pushed;
                        if !self
                            .send(Outgoing::Frame(ServerFrame::push(
                                0,
                                push::Body::QueueDrained(QueueDrained { count }),
                            )))
                            .await
                        {
                            return false;
                        }
                    }
                }
                if !lagged {
                    return true;
                }
            }
        }
    }

    async fn on_envelopes(&mut self, list: Vec<(u64, Bytes)>) -> bool {
        let window = self.state.relay.push_window;
        for (id, envelope) in list {
            let Some(d) = self.delivery.as_mut() else { return true };
            let lagged = d.subscription.lagged.load(Ordering::Acquire);
            if !d.caught_up || lagged || id <= d.last_pushed {
                d.caught_up &= !lagged;
                continue;
            }
            if d.in_flight.len() >= window {
                d.caught_up = false;
                continue;
            }
            if !self.push(id, &envelope).await {
                return false;
            }
        }
        self.fill().await
    }

    async fn on_acks(&mut self, ids: Vec<u64>) -> bool {
        let (Some(who), Some(d)) = (self.who, self.delivery.as_mut()) else { return true };
        // Only ids pushed on this socket count: a device acknowledges nothing it was not sent.
        let ids: Vec<u64> = ids.into_iter().filter(|id| d.in_flight.remove(id)).collect();
        if !ids.is_empty() {
            let storage = self.state.storage.clone();
            self.acks.spawn(async move {
                if let Err(e) = storage.ack(who.account, who.device, ids).await {
                    tracing::warn!(error = %e, "acknowledgement not stored; the messages will be delivered again");
                }
            });
        }
        self.fill().await
    }

    async fn finish(mut self) {
        // Let requests and acknowledgements in flight complete: a send whose copies are being
        // committed must not be cut off half way.
        let drain = async {
            while self.acks.join_next().await.is_some() {}
            while self.requests.join_next().await.is_some() {}
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
        if let (Some(who), Some(d)) = (self.who, self.delivery.as_ref()) {
            self.state.hub.unsubscribe(who.account, who.device, d.subscription.connection);
            let _ = self.state.storage.touch_device(who.account, who.device, crate::now_ms()).await;
        }
    }
}

#[cfg(test)]
mod tests;

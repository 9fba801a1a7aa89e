//! The relay API through the socket session over in-memory channels, on real SQLite storage.

use std::time::Duration;

use futures_channel::mpsc as fmpsc;
use futures_util::{SinkExt, StreamExt};
use tandem_core::auth::{self, Proof};
use tandem_core::crypto::{KeyPair, KyberKeyPair};
use tandem_core::devices::{
    DeviceIdentityDetails, DeviceList, DeviceListEntry, SignedDeviceIdentity, SignedDeviceList,
};
use tandem_core::group_state::{GroupMember, GroupState, SignedGroupState};
use tandem_core::testing::SeededRng;
use tandem_core::wire::relay::*;
use tandem_core::{AccountId, DeviceId, IdentityKeyPair, Timestamp};

use super::*;
use crate::{RelayConfig, Settings, SqliteStorage};
use clap::Parser;

mod attacks;
mod devices;
mod groups;
mod prekeys;
mod provisioning;
mod writes;

use groups::{accept, group_send, group_state};

/// The host test clients dial.
const HOST: &str = "relay.test";

/// A socket made of two channels.
struct Client {
    to_server: fmpsc::UnboundedSender<Result<Message, String>>,
    from_server: fmpsc::UnboundedReceiver<Message>,
    next_id: u64,
    pushes: Vec<Push>,
    task: tokio::task::JoinHandle<()>,
    /// This connection's login challenge.
    nonce: Vec<u8>,
}

struct Joined<St, Si> {
    stream: St,
    sink: Si,
}

impl<St: Stream + Unpin, Si: Unpin> Stream for Joined<St, Si> {
    type Item = St::Item;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.stream.poll_next_unpin(cx)
    }
}

impl<St: Unpin, Si: Sink<Message> + Unpin> Sink<Message> for Joined<St, Si> {
    type Error = Si::Error;
    fn poll_ready(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.sink.poll_ready_unpin(cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.sink.start_send_unpin(item)
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.sink.poll_flush_unpin(cx)
    }
    fn poll_close(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.sink.poll_close_unpin(cx)
    }
}

async fn state_with(relay: RelayConfig) -> (AppState<SqliteStorage>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    (AppState::new(storage, None, Duration::from_secs(30), relay), dir)
}

async fn state() -> (AppState<SqliteStorage>, tempfile::TempDir) {
    state_with(Settings::for_tests(".".into(), ".".into()).relay_config()).await
}

impl Client {
    async fn connect(state: &AppState<SqliteStorage>) -> Self {
        Self::connect_with(state, Duration::from_secs(30)).await
    }

    async fn connect_with(state: &AppState<SqliteStorage>, idle: Duration) -> Self {
        Self::connect_from(state, idle, None).await
    }

    async fn connect_from(
        state: &AppState<SqliteStorage>,
        idle: Duration,
        peer: Option<IpAddr>,
    ) -> Self {
        let (to_server, server_in) = fmpsc::unbounded::<Result<Message, String>>();
        let (server_out, from_server) = fmpsc::unbounded::<Message>();
        let socket = Joined { stream: server_in, sink: server_out.sink_map_err(|e| e.to_string()) };
        let config = SocketConfig {
            idle_timeout: idle,
            server_version: "test".into(),
            peer,
            host: Some(HOST.into()),
        };
        let task = tokio::spawn(serve_socket(socket, config, state.clone()));
        let mut c = Self {
            to_server,
            from_server,
            next_id: 1,
            pushes: Vec::new(),
            task,
            nonce: Vec::new(),
        };
        let welcome = c.next_frame().await;
        let Some(server_frame::Kind::Push(Push { body: Some(push::Body::Welcome(w)), .. })) =
            welcome.kind
        else {
            panic!("expected a welcome, got {welcome:?}")
        };
        assert_eq!(w.challenge.len(), 32);
        c.nonce = w.challenge;
        c
    }

    /// This connection's challenge, under the host the client dialled.
    fn challenge(&self) -> Challenge {
        Challenge::new(&self.nonce, HOST).unwrap()
    }

    /// A login request for `device` on this connection.
    fn login(&self, device: &Device, rng: &mut SeededRng) -> request::Body {
        login_as(self, device.account, device.device, &device.identity, rng)
    }

    fn send_raw(&self, msg: Message) {
        self.to_server.unbounded_send(Ok(msg)).unwrap();
    }

    async fn next(&mut self) -> Message {
        tokio::time::timeout(Duration::from_secs(10), self.from_server.next())
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

    /// Sends a request and waits for its response, keeping pushes that arrive meanwhile.
    async fn request(&mut self, body: request::Body) -> Response {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(Message::Binary(ClientFrame::request(id, body).encode_to_vec().into()));
        loop {
            match self.next_frame().await.kind {
                Some(server_frame::Kind::Response(r)) if r.id == id => return r,
                Some(server_frame::Kind::Response(r)) => {
                    panic!("response to another request: {r:?}")
                }
                Some(server_frame::Kind::Push(p)) => self.pushes.push(p),
                None => panic!("empty frame"),
            }
        }
    }

    async fn ok(&mut self, body: request::Body) -> Option<response::Body> {
        let r = self.request(body).await;
        assert_eq!(r.status(), Status::Ok, "{}", r.message);
        r.body
    }

    async fn next_push(&mut self) -> Push {
        if !self.pushes.is_empty() {
            return self.pushes.remove(0);
        }
        match self.next_frame().await.kind {
            Some(server_frame::Kind::Push(p)) => p,
            other => panic!("expected a push, got {other:?}"),
        }
    }

    /// Pushes until the queue-drained marker; returns the envelopes.
    async fn drain(&mut self) -> Vec<Envelope> {
        let mut out = Vec::new();
        loop {
            match self.next_push().await.body {
                Some(push::Body::Envelope(e)) => out.push(e),
                Some(push::Body::QueueDrained(_)) => return out,
                Some(push::Body::Expired(_)) => {}
                other => panic!("unexpected push {other:?}"),
            }
        }
    }

    async fn next_envelope(&mut self) -> Envelope {
        loop {
            if let Some(push::Body::Envelope(e)) = self.next_push().await.body {
                return e;
            }
        }
    }

    fn ack(&self, id: u64) {
        let frame = ClientFrame { kind: Some(client_frame::Kind::Ack(PushAck { push_id: id })) };
        self.send_raw(Message::Binary(frame.encode_to_vec().into()));
    }

    async fn expect_close(&mut self, code: u16) {
        loop {
            match self.next().await {
                Message::Close(Some(f)) => {
                    assert_eq!(f.code, code, "close reason {}", f.reason);
                    return;
                }
                Message::Binary(b) => {
                    if let Some(server_frame::Kind::Push(p)) =
                        ServerFrame::from_bytes(&b).unwrap().kind
                    {
                        self.pushes.push(p);
                    }
                }
                other => panic!("expected close {code}, got {other:?}"),
            }
        }
    }
}

/// A registered device: its keys, and its connection.
struct Device {
    client: Client,
    account: AccountId,
    device: u32,
    identity: IdentityKeyPair,
    registration_id: u32,
}

fn login_as(
    c: &Client,
    account: AccountId,
    device: u32,
    identity: &IdentityKeyPair,
    rng: &mut SeededRng,
) -> request::Body {
    let proof = Proof::Authenticate { account: &account, device };
    request::Body::Authenticate(Authenticate {
        account_id: account.0.to_vec(),
        device_id: device,
        signature: auth::sign(identity, &c.challenge(), &proof, rng).to_vec(),
        challenge: c.nonce.clone(),
    })
}

fn new_device(identity: &IdentityKeyPair, registration_id: u32, adv: Vec<u8>) -> NewDevice {
    NewDevice {
        registration_id,
        identity_key: identity.identity_key().serialize().to_vec(),
        name: "test device".into(),
        platform: "test".into(),
        adv_identity: adv,
    }
}

/// A `RegisterAccount` proved for `c`'s challenge.
fn register_request(
    c: &Client,
    handle: &str,
    identity: &IdentityKeyPair,
    rng: &mut SeededRng,
) -> request::Body {
    request::Body::RegisterAccount(RegisterAccount {
        handle: handle.into(),
        device: Some(new_device(identity, 1, vec![])),
        signature: auth::sign(identity, &c.challenge(), &Proof::RegisterAccount { handle }, rng)
            .to_vec(),
        challenge: c.nonce.clone(),
    })
}

async fn register(state: &AppState<SqliteStorage>, handle: &str, rng: &mut SeededRng) -> Device {
    let mut client = Client::connect(state).await;
    let identity = IdentityKeyPair::generate(rng);
    let Some(response::Body::Registered(r)) =
        client.ok(register_request(&client, handle, &identity, rng)).await
    else {
        panic!("registered")
    };
    assert!(client.drain().await.is_empty());
    Device {
        client,
        account: AccountId::from_bytes(&r.account_id).unwrap(),
        device: 1,
        identity,
        registration_id: 1,
    }
}

/// Links a companion to `primary`'s account and publishes the new signed list.
async fn link(
    state: &AppState<SqliteStorage>,
    primary: &mut Device,
    key_index: u32,
    version: u64,
    rng: &mut SeededRng,
) -> Device {
    let Some(response::Body::LinkToken(token)) =
        primary.client.ok(request::Body::CreateLinkToken(CreateLinkToken {})).await
    else {
        panic!("token")
    };
    let identity = IdentityKeyPair::generate(rng);
    let details = DeviceIdentityDetails {
        account_id: primary.account,
        key_index,
        identity_key: *identity.identity_key(),
        timestamp: Timestamp::from_millis(1),
    };
    let adv = SignedDeviceIdentity::sign_by_account(&primary.identity, details, rng)
        .countersign(&identity, primary.identity.identity_key(), rng)
        .unwrap();
    let mut client = Client::connect(state).await;
    let proof = Proof::RegisterDevice { account: &primary.account };
    let signature = auth::sign(&identity, &client.challenge(), &proof, rng).to_vec();
    let Some(response::Body::DeviceRegistered(r)) = client
        .ok(request::Body::RegisterDevice(RegisterDevice {
            account_id: primary.account.0.to_vec(),
            link_token: token.token,
            device: Some(new_device(&identity, 100 + key_index, adv.to_bytes())),
            signature,
            challenge: client.nonce.clone(),
        }))
        .await
    else {
        panic!("device registered")
    };
    client.drain().await;
    publish_list(primary, version, rng).await;
    Device {
        client,
        account: primary.account,
        device: r.device_id,
        identity,
        registration_id: 100 + key_index,
    }
}

/// Signs and publishes a list naming every device the server has for the account.
async fn publish_list(primary: &mut Device, version: u64, rng: &mut SeededRng) {
    let Some(response::Body::Devices(devices)) = primary
        .client
        .ok(request::Body::GetDevices(GetDevices {
            account_id: primary.account.0.to_vec(),
            incoming: false,
        }))
        .await
    else {
        panic!("devices")
    };
    let entries = devices
        .devices
        .iter()
        .map(|d| DeviceListEntry {
            device_id: DeviceId::new(d.device_id).unwrap(),
            key_index: if d.device_id == 1 {
                0
            } else {
                SignedDeviceIdentity::from_bytes(&d.adv_identity).unwrap().details().key_index
            },
        })
        .collect();
    let now = Timestamp::from_millis(crate::now_ms());
    let list = DeviceList {
        account_id: primary.account,
        version,
        timestamp: now,
        expires_at: now.saturating_add(Duration::from_secs(86_400)),
        entries,
        revoked: vec![],
    };
    let signed = SignedDeviceList::sign(&primary.identity, list, rng);
    primary
        .client
        .ok(request::Body::SetDeviceList(SetDeviceList { signed_device_list: signed.to_bytes() }))
        .await;
}

fn copy(to: &Device, content: &[u8]) -> OutgoingMessage {
    OutgoingMessage {
        account_id: to.account.0.to_vec(),
        device_id: to.device,
        registration_id: to.registration_id,
        r#type: 2,
        content: content.to_vec(),
    }
}

fn send(recipient: &Device, timestamp: u64, copies: Vec<OutgoingMessage>) -> request::Body {
    request::Body::SendMessages(SendMessages {
        recipient: recipient.account.0.to_vec(),
        timestamp,
        messages: copies,
    })
}

#[tokio::test]
async fn test_ice_servers_go_to_logged_in_devices_with_expiring_turn_credentials() {
    let settings = Settings::try_parse_from([
        "tandem-server",
        "--stun-url",
        "stun:turn.example.org:3478",
        "--turn-url",
        "turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349",
        "--turn-secret",
        "s3cret",
        "--turn-ttl-secs",
        "600",
    ])
    .unwrap();
    let (state, _dir) = state_with(settings.relay_config()).await;
    let mut rng = SeededRng::new(5);
    let alice = register(&state, "Alice", &mut rng).await;
    let mut c = Client::connect(&state).await;
    // A stranger without a login gets no TURN credentials.
    let r = c.request(request::Body::GetIceServers(GetIceServers {})).await;
    assert_eq!(r.status(), Status::Unauthenticated);
    c.ok(c.login(&alice, &mut rng)).await;
    let before = crate::now_ms();
    let Some(response::Body::IceServers(ice)) =
        c.ok(request::Body::GetIceServers(GetIceServers {})).await
    else {
        panic!("no ICE servers")
    };
    assert_eq!(ice.servers[0].urls, ["stun:turn.example.org:3478"]);
    let turn = &ice.servers[1];
    assert_eq!(turn.urls.len(), 2);
    let (expiry, account) = turn.username.split_once(':').unwrap();
    assert_eq!(account, hex::encode(alice.account.0));
    let expiry: u64 = expiry.parse().unwrap();
    assert!((before / 1000 + 600..=before / 1000 + 602).contains(&expiry));
    assert_eq!(ice.expires_ms, expiry * 1000);
    assert_eq!(turn.credential.len(), 28, "base64 of a 20-byte HMAC-SHA1");
}

#[tokio::test]
async fn test_register_authenticate_and_wrong_credentials() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(1);
    let alice = register(&state, "Alice", &mut rng).await;
    // The handle is taken, in any case.
    let mut c = Client::connect(&state).await;
    let other = IdentityKeyPair::generate(&mut rng);
    let r = c.request(register_request(&c, "alice", &other, &mut rng)).await;
    assert_eq!((r.status(), r.message.as_str()), (Status::Conflict, "that handle is taken"));
    // Requests before authentication are refused.
    let r = c.request(request::Body::GetPreKeyCounts(GetPreKeyCounts {})).await;
    assert_eq!(r.status(), Status::Unauthenticated);
    // Signed by another key.
    let r = c.request(login_as(&c, alice.account, 1, &other, &mut rng)).await;
    assert_eq!(r.status(), Status::Unauthorized);
    // By the device's own key.
    let Some(response::Body::Authenticated(a)) = c.ok(c.login(&alice, &mut rng)).await else {
        panic!()
    };
    assert_eq!(a.handle, "alice");
    // Bad input is a clear error.
    let mut c = Client::connect(&state).await;
    let r = c.request(register_request(&c, "x", &other, &mut rng)).await;
    assert_eq!(r.status(), Status::BadRequest);
    let r = c
        .request(request::Body::RegisterAccount(RegisterAccount {
            handle: "valid_name".into(),
            device: None,
            signature: vec![],
            challenge: c.nonce.clone(),
        }))
        .await;
    assert_eq!((r.status(), r.message.as_str()), (Status::BadRequest, "missing device"));
}

#[tokio::test]
async fn test_auth_failures_are_rate_limited() {
    let (state, _dir) = state().await;
    let mut c = Client::connect(&state).await;
    let mut rng = SeededRng::new(30);
    let nobody = IdentityKeyPair::generate(&mut rng);
    let mut statuses = Vec::new();
    for _ in 0..15 {
        let r = c.request(login_as(&c, AccountId([9; 16]), 1, &nobody, &mut rng)).await;
        statuses.push(r.status());
    }
    assert_eq!(statuses.iter().filter(|s| **s == Status::Unauthorized).count(), 10);
    assert_eq!(statuses.last(), Some(&Status::RateLimited));
}

#[tokio::test]
async fn test_send_requires_exact_device_set_and_delivers_once() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(2);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut bob = register(&state, "bob", &mut rng).await;
    let mut bob2 = link(&state, &mut bob, 1, 1, &mut rng).await;
    // Leaving out a device of the recipient: nothing is stored, the missing device is named.
    let r = alice.client.request(send(&bob, 10, vec![copy(&bob, b"one")])).await;
    assert_eq!(r.status(), Status::Conflict);
    let Some(response::Body::MismatchedDevices(m)) = r.body else { panic!() };
    assert_eq!(m.accounts.len(), 1);
    assert_eq!(
        (m.accounts[0].missing.clone(), m.accounts[0].extra.clone()),
        (vec![bob2.device], vec![])
    );
    assert_eq!(state.storage.queue_total(), 0);
    // An extra device and a stale registration id are named too.
    let mut stale = copy(&bob2, b"x");
    stale.registration_id = 9999;
    let mut extra = copy(&bob, b"x");
    extra.device_id = 7;
    let r = alice.client.request(send(&bob, 10, vec![copy(&bob, b"x"), stale, extra])).await;
    let Some(response::Body::MismatchedDevices(m)) = r.body else { panic!() };
    assert_eq!(
        (m.accounts[0].extra.clone(), m.accounts[0].stale.clone()),
        (vec![7], vec![bob2.device])
    );
    // The exact set is accepted and stored once per device.
    let Some(response::Body::Sent(sent)) = alice
        .client
        .ok(send(&bob, 11, vec![copy(&bob, b"for bob"), copy(&bob2, b"for bob2")]))
        .await
    else {
        panic!()
    };
    assert_eq!(sent.copies, 2);
    let e = bob.client.next_envelope().await;
    assert_eq!(
        (e.content.as_slice(), e.client_timestamp, e.source_device),
        (&b"for bob"[..], 11, 1)
    );
    assert_eq!(e.source_account, alice.account.0.to_vec());
    let e2 = bob2.client.next_envelope().await;
    assert_eq!(e2.content, b"for bob2");
    bob.client.ack(e.id);
    bob2.client.ack(e2.id);
    for _ in 0..50 {
        if state.storage.queue_total() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state.storage.queue_total(), 0, "acknowledged copies are deleted");
    // The sender's own companions must be included too.
    let mut alice2 = link(&state, &mut alice, 1, 1, &mut rng).await;
    let r = alice.client.request(send(&bob, 12, vec![copy(&bob, b"a"), copy(&bob2, b"b")])).await;
    let Some(response::Body::MismatchedDevices(m)) = r.body else { panic!() };
    assert_eq!(m.accounts[0].account_id, alice.account.0.to_vec());
    assert_eq!(m.accounts[0].missing, vec![alice2.device]);
    alice
        .client
        .ok(send(&bob, 12, vec![copy(&bob, b"a"), copy(&bob2, b"b"), copy(&alice2, b"transcript")]))
        .await;
    assert_eq!(alice2.client.next_envelope().await.content, b"transcript");
    // A companion sends to its own primary and the recipient, never to itself.
    let r = alice2
        .client
        .request(send(&bob, 13, vec![copy(&bob, b"a"), copy(&bob2, b"b"), copy(&alice2, b"self")]))
        .await;
    let Some(response::Body::MismatchedDevices(m)) = r.body else { panic!() };
    assert!(m.accounts.iter().any(|a| a.extra == vec![alice2.device] && a.missing == vec![1]));
}

#[tokio::test]
async fn test_queued_messages_arrive_in_order_after_reconnect() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(3);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut bob = register(&state, "bob", &mut rng).await;
    let bob_account = bob.account;
    // Bob goes offline.
    bob.client.to_server.close_channel();
    tokio::time::timeout(Duration::from_secs(5), &mut bob.client.task).await.unwrap().unwrap();
    for i in 0..600u64 {
        alice.client.ok(send(&bob, 1000 + i, vec![copy(&bob, &i.to_le_bytes())])).await;
    }
    assert_eq!(queued(&state, bob_account, 1).await, 600);
    let mut c = Client::connect(&state).await;
    c.ok(login_as(&c, bob_account, 1, &bob.identity, &mut rng)).await;
    // More than one push window: acknowledge as they come, in order.
    let mut seen = Vec::new();
    while seen.len() < 600 {
        match c.next_push().await.body {
            Some(push::Body::Envelope(e)) => {
                seen.push(e.client_timestamp);
                c.ack(e.id);
            }
            Some(push::Body::QueueDrained(d)) => assert_eq!(d.count, 600),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, (1000..1600).collect::<Vec<_>>());
    // Live messages keep flowing after the backlog.
    alice.client.ok(send(&bob, 5000, vec![copy(&bob, b"live")])).await;
    loop {
        match c.next_push().await.body {
            Some(push::Body::Envelope(e)) => {
                assert_eq!(e.content, b"live");
                break;
            }
            Some(push::Body::QueueDrained(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn test_removed_device_is_closed_and_loses_access() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(4);
    let mut bob = register(&state, "bob", &mut rng).await;
    let mut bob2 = link(&state, &mut bob, 1, 1, &mut rng).await;
    let bob3 = link(&state, &mut bob, 2, 2, &mut rng).await;
    // A companion cannot remove another device, nor anyone the primary.
    let r = bob2
        .client
        .request(request::Body::RemoveDevice(RemoveDevice { device_id: bob3.device }))
        .await;
    assert_eq!(r.status(), Status::Unauthorized);
    let r = bob.client.request(request::Body::RemoveDevice(RemoveDevice { device_id: 1 })).await;
    assert_eq!(r.status(), Status::BadRequest);
    bob.client.ok(request::Body::RemoveDevice(RemoveDevice { device_id: bob2.device })).await;
    bob2.client.expect_close(close_code::DEVICE_REMOVED).await;
    assert!(
        bob2.client.pushes.iter().any(|p| matches!(p.body, Some(push::Body::DeviceRemoved(_))))
    );
    // Its key no longer logs in; the refusal carries the account's signed list.
    let mut c = Client::connect(&state).await;
    let r = c.request(c.login(&bob2, &mut rng)).await;
    assert_eq!(r.status(), Status::Unauthorized);
    assert!(
        matches!(r.body, Some(response::Body::Removed(ref d)) if !d.signed_device_list.is_empty())
    );
    let _ = bob3;
}

#[tokio::test]
async fn test_at_most_four_companions() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(5);
    let mut bob = register(&state, "bob", &mut rng).await;
    for i in 1..=4 {
        link(&state, &mut bob, i, u64::from(i), &mut rng).await;
    }
    let r = bob.client.request(request::Body::CreateLinkToken(CreateLinkToken {})).await;
    assert_eq!(r.status(), Status::LimitReached);
    assert!(r.message.contains("4 linked devices"), "{}", r.message);
}

#[tokio::test]
async fn test_bad_sends_are_refused_with_reasons() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(8);
    let mut alice = register(&state, "alice", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    let nobody = request::Body::SendMessages(SendMessages {
        recipient: vec![3; 16],
        timestamp: 1,
        messages: vec![],
    });
    let r = alice.client.request(nobody).await;
    assert_eq!((r.status(), r.message.as_str()), (Status::NotFound, "no such account"));
    let r = alice
        .client
        .request(request::Body::SendMessages(SendMessages {
            recipient: vec![3; 5],
            timestamp: 1,
            messages: vec![],
        }))
        .await;
    assert_eq!(r.status(), Status::BadRequest);
    let huge = copy(&bob, &vec![0; MAX_CONTENT_LEN + 1]);
    assert_eq!(alice.client.request(send(&bob, 1, vec![huge])).await.status(), Status::TooLarge);
    let mut bad_type = copy(&bob, b"x");
    bad_type.r#type = 7;
    assert_eq!(
        alice.client.request(send(&bob, 1, vec![bad_type])).await.status(),
        Status::BadRequest
    );
    let twice = vec![copy(&bob, b"x"), copy(&bob, b"y")];
    assert_eq!(
        alice.client.request(send(&bob, 1, twice)).await.message,
        "a device appears twice in the send"
    );
    let mut foreign = copy(&bob, b"x");
    foreign.account_id = vec![4; 16];
    assert_eq!(
        alice.client.request(send(&bob, 1, vec![foreign])).await.status(),
        Status::BadRequest
    );
    assert_eq!(state.storage.queue_total(), 0);
}

#[tokio::test]
async fn test_acks_only_delete_this_devices_messages() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(9);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut bob = register(&state, "bob", &mut rng).await;
    let carol = register(&state, "carol", &mut rng).await;
    alice.client.ok(send(&carol, 1, vec![copy(&carol, b"for carol")])).await;
    alice.client.ok(send(&bob, 2, vec![copy(&bob, b"for bob")])).await;
    let bob_msg = bob.client.next_envelope().await;
    // Bob acknowledges every id there is: only his own copy goes.
    for id in 0..bob_msg.id + 5 {
        bob.client.ack(id);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(queued(&state, carol.account, 1).await, 1, "carol's copy stays");
    assert_eq!(queued(&state, bob.account, 1).await, 0);
}

#[tokio::test]
async fn test_malformed_and_text_frames_close_the_socket() {
    let (state, _dir) = state().await;
    let mut c = Client::connect(&state).await;
    c.send_raw(Message::Binary(vec![0xff, 0xff, 0xff].into()));
    c.expect_close(close_code::INVALID_PAYLOAD).await;
    let mut c = Client::connect(&state).await;
    c.send_raw(Message::Text("hello".into()));
    c.expect_close(close_code::UNSUPPORTED_DATA).await;
    let mut c = Client::connect(&state).await;
    let r = c.request(request::Body::Ping(Ping { payload: vec![0; MAX_PING_PAYLOAD + 1] })).await;
    assert_eq!(r.status(), Status::TooLarge);
    c.send_raw(Message::Binary(
        ClientFrame { kind: Some(client_frame::Kind::Request(Request { id: 77, body: None })) }
            .encode_to_vec()
            .into(),
    ));
    let f = c.next_frame().await;
    assert!(
        matches!(f.kind, Some(server_frame::Kind::Response(ref r)) if r.id == 77 && r.status() == Status::BadRequest)
    );
}

#[tokio::test]
async fn test_shutdown_and_idle_close_sockets() {
    let (shutting, _dir) = state().await;
    let mut c = Client::connect(&shutting).await;
    shutting.shutdown.cancel();
    c.expect_close(close_code::GOING_AWAY).await;
    tokio::time::timeout(Duration::from_secs(5), c.task).await.unwrap().unwrap();
    let (idle_state, _dir) = state().await;
    let mut c = Client::connect_with(&idle_state, Duration::from_millis(200)).await;
    c.expect_close(close_code::NORMAL).await;
}

#[tokio::test]
async fn test_a_second_connection_replaces_the_first() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(11);
    let mut bob = register(&state, "bob", &mut rng).await;
    let mut c = Client::connect(&state).await;
    c.ok(c.login(&bob, &mut rng)).await;
    bob.client.expect_close(close_code::REPLACED).await;
}

/// How many copies wait in a device's queue.
async fn queued(state: &AppState<SqliteStorage>, account: AccountId, device: u32) -> usize {
    state.storage.fetch_queue(account, device, 0, 1_000_000).await.unwrap().len()
}

/// A connected socket holds its session's future for as long as it is open. Logins, requests,
/// deliveries and the closing handshake run boxed, so an idle socket's task is not sized by
/// the largest of them (inline, the future was 7.4 KiB; the relay's budget for a whole idle
/// connection is 12 KiB).
#[tokio::test]
async fn test_an_idle_sockets_task_stays_small() {
    let (state, _dir) = state().await;
    let (_to_server, server_in) = fmpsc::unbounded::<Result<Message, String>>();
    let (server_out, _from_server) = fmpsc::unbounded::<Message>();
    let socket = Joined { stream: server_in, sink: server_out.sink_map_err(|e| e.to_string()) };
    let config = SocketConfig {
        idle_timeout: Duration::from_secs(30),
        server_version: "test".into(),
        peer: None,
        host: None,
    };
    let session = serve_socket(socket, config, state.clone());
    let size = size_of_val(&session);
    assert!(size <= 2048, "an idle socket's session future is {size} bytes");
}

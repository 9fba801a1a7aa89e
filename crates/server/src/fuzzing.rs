//! The body of the `socket_frames` fuzz target (`crates/server/fuzz`), here so the stable
//! test suite replays its corpus: arbitrary frames on two sockets at once, each
//! unauthenticated or logged in as one of two registered accounts, through real socket
//! sessions on real SQLite storage, with the rate limiters out of the way (they would stop
//! most inputs before the handlers). Nothing may panic.

use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Sink, Stream};
use prost::Message as _;
use tandem_core::auth::{self, Challenge, Proof};
use tandem_core::wire::relay::{Authenticate, ClientFrame, NewDevice, RegisterAccount, request};
use tandem_core::{AccountId, IdentityKeyPair};

use crate::limits::RateLimits;
use crate::ws::{SocketConfig, serve_socket};
use crate::{AppState, Settings, SqliteStorage};

/// The challenge every fuzzed connection gets, and the host it names.
const CHALLENGE: [u8; 32] = [0x5a; 32];
const HOST: &str = "fuzz.invalid";
/// Stand-ins in the input for the two registered accounts' ids (assigned by the relay at
/// registration, so unknown to a corpus): replaced in every frame before it is sent.
pub const ACCOUNT_A: [u8; 16] = [0xa1; 16];
/// See [`ACCOUNT_A`].
pub const ACCOUNT_B: [u8; 16] = [0xb2; 16];
/// Runs between purges of everything queued (so queues never fill up over a long campaign).
const PURGE_EVERY: u64 = 512;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    state: AppState<SqliteStorage>,
    accounts: [AccountId; 2],
    logins: [Vec<u8>; 2],
    runs: AtomicU64,
}

/// One in-memory socket: the input frames, then end of stream; output is discarded. Each
/// frame waits one turn first, so two sockets interleave.
struct Duplex {
    frames: std::vec::IntoIter<Message>,
    waited: bool,
}

impl Stream for Duplex {
    type Item = Result<Message, std::convert::Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.waited {
            self.waited = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.waited = false;
        Poll::Ready(self.frames.next().map(Ok))
    }
}

impl Sink<Message> for Duplex {
    type Error = std::convert::Infallible;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), Self::Error> {
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

fn challenge() -> Challenge {
    Challenge::new(&CHALLENGE, HOST).expect("fuzz challenge")
}

fn register_frame(identity: &IdentityKeyPair, handle: &str) -> Vec<u8> {
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    ClientFrame::request(
        1,
        request::Body::RegisterAccount(RegisterAccount {
            handle: handle.into(),
            device: Some(NewDevice {
                registration_id: 1,
                identity_key: identity.identity_key().serialize().to_vec(),
                name: "fuzz".into(),
                platform: "fuzz".into(),
                adv_identity: vec![],
            }),
            signature: auth::sign(
                identity,
                &challenge(),
                &Proof::RegisterAccount { handle },
                &mut rng,
            )
            .to_vec(),
            challenge: CHALLENGE.to_vec(),
        }),
    )
    .encode_to_vec()
}

fn login_frame(identity: &IdentityKeyPair, account: AccountId) -> Vec<u8> {
    let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
    ClientFrame::request(
        2,
        request::Body::Authenticate(Authenticate {
            account_id: account.0.to_vec(),
            device_id: 1,
            signature: auth::sign(
                identity,
                &challenge(),
                &Proof::Authenticate { account: &account, device: 1 },
                &mut rng,
            )
            .to_vec(),
            challenge: CHALLENGE.to_vec(),
        }),
    )
    .encode_to_vec()
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = std::env::temp_dir().join(format!("tandem-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let state = runtime.block_on(async {
            std::fs::create_dir_all(&dir).expect("fuzz data dir");
            let storage = SqliteStorage::open(&dir.join("fuzz.sqlite")).await.expect("storage");
            let mut relay = Settings::for_tests(dir.clone(), dir.clone()).relay_config();
            relay.fixed_challenge = Some(CHALLENGE);
            relay.limits = RateLimits::unlimited();
            AppState::new(storage, None, Duration::from_secs(5), relay)
        });
        let mut rng = rand_core::UnwrapErr(rand::rngs::SysRng);
        let identities = [IdentityKeyPair::generate(&mut rng), IdentityKeyPair::generate(&mut rng)];
        let mut fixture = Fixture {
            runtime,
            state,
            accounts: [AccountId([0; 16]); 2],
            logins: [Vec::new(), Vec::new()],
            runs: AtomicU64::new(0),
        };
        for (i, (identity, handle)) in identities.iter().zip(["fuzz_a", "fuzz_b"]).enumerate() {
            run(&fixture, [vec![Message::Binary(register_frame(identity, handle).into())], vec![]]);
            let account = fixture
                .runtime
                .block_on(crate::Storage::account_by_handle(&fixture.state.storage, handle))
                .ok()
                .flatten()
                .map_or(AccountId([0; 16]), |a| a.id);
            fixture.accounts[i] = account;
            fixture.logins[i] = login_frame(identity, account);
        }
        fixture
    })
}

fn run(fixture: &Fixture, sockets: [Vec<Message>; 2]) {
    let [first, second] = sockets.map(|frames| {
        let config = SocketConfig {
            idle_timeout: Duration::from_secs(5),
            server_version: "fuzz".into(),
            peer: None,
            host: Some(HOST.into()),
        };
        serve_socket(
            Duplex { frames: frames.into_iter(), waited: false },
            config,
            fixture.state.clone(),
        )
    });
    fixture.runtime.block_on(async { tokio::join!(first, second) });
}

/// Replaces the stand-in account ids with the registered ones.
fn substitute(frame: &mut [u8], accounts: &[AccountId; 2]) {
    let mut i = 0;
    while i + 16 <= frame.len() {
        let window = &frame[i..i + 16];
        let with = if window == ACCOUNT_A {
            Some(accounts[0])
        } else if window == ACCOUNT_B {
            Some(accounts[1])
        } else {
            None
        };
        match with {
            Some(a) => {
                frame[i..i + 16].copy_from_slice(&a.0);
                i += 16;
            }
            None => i += 1,
        }
    }
}

/// Runs one input: byte 0 holds flags (bit 0: socket 0 logs in as account A first; bit 1:
/// socket 1 logs in as account B first; bit 2: socket 0 ends with a text frame of the rest),
/// then frames as `[socket: u8 (bit 0)][length: u16 big-endian][bytes]`. The two sockets
/// run at once, their frames interleaved.
pub fn socket_frames(data: &[u8]) {
    let fixture = fixture();
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let mut sockets: [Vec<Message>; 2] = [Vec::new(), Vec::new()];
    for (i, socket) in sockets.iter_mut().enumerate() {
        if flags & (1 << i) != 0 {
            socket.push(Message::Binary(fixture.logins[i].clone().into()));
        }
    }
    while rest.len() >= 3 {
        let socket = usize::from(rest[0] & 1);
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])).min(rest.len() - 3);
        let mut frame = rest[3..3 + len].to_vec();
        substitute(&mut frame, &fixture.accounts);
        sockets[socket].push(Message::Binary(frame.into()));
        rest = &rest[3 + len..];
    }
    if flags & 4 != 0 {
        sockets[0].push(Message::Text(String::from_utf8_lossy(rest).into_owned().into()));
    }
    run(fixture, sockets);
    if fixture.runs.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == PURGE_EVERY - 1 {
        // Everything queued expires, and its tombstones go too.
        let far = 1 << 62;
        let storage = &fixture.state.storage;
        let _ = fixture.runtime.block_on(crate::Storage::expire(storage, far, far));
        let _ = fixture.runtime.block_on(crate::Storage::expire(storage, far, far + 1));
    }
}

/// Starting inputs: a conversation between the two accounts as clients hold it (lookups,
/// bundles, sends both ways with acknowledgements, groups), in the input format above.
pub fn seeds() -> Vec<Vec<u8>> {
    use tandem_core::wire::relay::{
        AcceptGroup, CreateGroup, GetDevices, GetGroup, GetPreKeyBundles, GetPreKeyCounts,
        LookupAccount, OutgoingMessage, Ping, PushAck, SendGroupMessage, SendMessages, UpdateGroup,
        client_frame,
    };
    let frame = |socket: u8, body: request::Body| {
        let bytes = ClientFrame::request(7, body).encode_to_vec();
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes();
        [&[socket][..], &len, &bytes].concat()
    };
    let ack = |socket: u8, id: u64| {
        let bytes = ClientFrame { kind: Some(client_frame::Kind::Ack(PushAck { push_id: id })) }
            .encode_to_vec();
        let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes();
        [&[socket][..], &len, &bytes].concat()
    };
    let send = |socket: u8, to: [u8; 16]| {
        frame(
            socket,
            request::Body::SendMessages(SendMessages {
                recipient: to.to_vec(),
                timestamp: 1_700_000_000_000,
                messages: vec![OutgoingMessage {
                    account_id: to.to_vec(),
                    device_id: 1,
                    registration_id: 1,
                    r#type: 3,
                    content: vec![0x33; 80],
                }],
            }),
        )
    };
    let group = [0x47; 16];
    let mut out = vec![
        [vec![3], frame(0, request::Body::Ping(Ping { payload: vec![] }))].concat(),
        [
            vec![3],
            frame(
                0,
                request::Body::LookupAccount(LookupAccount {
                    handle: "fuzz_b".into(),
                    account_id: vec![],
                }),
            ),
            frame(
                0,
                request::Body::GetDevices(GetDevices {
                    account_id: ACCOUNT_B.to_vec(),
                    incoming: false,
                }),
            ),
            frame(
                0,
                request::Body::GetPreKeyBundles(GetPreKeyBundles {
                    account_id: ACCOUNT_B.to_vec(),
                    device_ids: vec![],
                }),
            ),
            send(0, ACCOUNT_B),
            ack(1, 1),
            send(1, ACCOUNT_A),
            ack(0, 2),
            frame(1, request::Body::GetPreKeyCounts(GetPreKeyCounts {})),
        ]
        .concat(),
        [vec![1], send(0, ACCOUNT_B), send(0, ACCOUNT_B), send(0, ACCOUNT_A)].concat(),
        [
            vec![3],
            frame(0, request::Body::CreateGroup(CreateGroup { signed_state: vec![1; 120] })),
            frame(0, request::Body::UpdateGroup(UpdateGroup { signed_state: vec![2; 120] })),
            frame(
                1,
                request::Body::GetGroup(GetGroup { group_id: group.to_vec(), after_version: 0 }),
            ),
            frame(
                1,
                request::Body::AcceptGroup(AcceptGroup { group_id: group.to_vec(), accept: true }),
            ),
            frame(
                0,
                request::Body::SendGroupMessage(SendGroupMessage {
                    group_id: group.to_vec(),
                    timestamp: 1_700_000_000_000,
                    content: vec![7; 90],
                    version: 1,
                    member_devices: Vec::new(),
                }),
            ),
        ]
        .concat(),
        [
            vec![6],
            frame(1, request::Body::Ping(Ping { payload: vec![] })),
            b"{\"not\":\"binary\"}".to_vec(),
        ]
        .concat(),
    ];
    out.push(vec![0, 0, 0, 3, 1, 2, 3]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_the_harness_reaches_the_handlers_on_both_sockets() {
        let f = fixture();
        assert_ne!(f.accounts[0], f.accounts[1]);
        // Socket 0, logged in as A, sends B two messages (and one to its own account): the
        // relay stores at least B's two copies.
        let before = crate::Storage::queue_total(&f.state.storage);
        socket_frames(&seeds()[2]);
        let after = crate::Storage::queue_total(&f.state.storage);
        assert!(after >= before + 2, "{before} -> {after}");
    }
}

//! The body of the `socket_frames` fuzz target (`crates/server/fuzz`), here so the stable
//! test suite replays its corpus: arbitrary frames, unauthenticated or as a registered
//! device, through a real socket session on real SQLite storage. Nothing may panic.

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::Message;
use futures_util::{Sink, Stream};
use prost::Message as _;
use tandem_core::auth::{self, Challenge, Proof};
use tandem_core::wire::relay::{Authenticate, ClientFrame, NewDevice, RegisterAccount, request};
use tandem_core::{AccountId, IdentityKeyPair};

/// The challenge every fuzzed connection gets, and the host it names.
const CHALLENGE: [u8; 32] = [0x5a; 32];
const HOST: &str = "fuzz.invalid";

use crate::ws::{SocketConfig, serve_socket};
use crate::{AppState, Settings, SqliteStorage};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    state: AppState<SqliteStorage>,
    login: Vec<u8>,
}

/// One in-memory socket: the input frames, then end of stream; output is discarded.
struct Duplex {
    frames: std::vec::IntoIter<Message>,
}

impl Stream for Duplex {
    type Item = Result<Message, std::convert::Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
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

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = std::env::temp_dir().join(format!("tandem-fuzz-{}", std::process::id()));
        let state = runtime.block_on(async {
            std::fs::create_dir_all(&dir).expect("fuzz data dir");
            let storage = SqliteStorage::open(&dir.join("fuzz.sqlite")).await.expect("storage");
            let mut relay = Settings::for_tests(dir.clone(), dir.clone()).relay_config();
            relay.fixed_challenge = Some(CHALLENGE);
            AppState::new(storage, None, Duration::from_secs(5), relay)
        });
        // A registered device to log in as.
        let mut rng = rand_core::UnwrapErr(getrandom_rng());
        let identity = IdentityKeyPair::generate(&mut rng);
        let challenge = Challenge::new(&CHALLENGE, HOST).expect("fuzz challenge");
        let handle = "fuzz_fixture";
        let register = ClientFrame::request(
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
                    &identity,
                    &challenge,
                    &Proof::RegisterAccount { handle },
                    &mut rng,
                )
                .to_vec(),
                challenge: CHALLENGE.to_vec(),
            }),
        );
        let fixture = Fixture { runtime, state, login: Vec::new() };
        run(&fixture, vec![Message::Binary(register.encode_to_vec().into())]);
        let account = fixture
            .runtime
            .block_on(crate::Storage::account_by_handle(&fixture.state.storage, "fuzz_fixture"))
            .ok()
            .flatten()
            .map_or(AccountId([0; 16]), |a| a.id);
        let login = ClientFrame::request(
            2,
            request::Body::Authenticate(Authenticate {
                account_id: account.0.to_vec(),
                device_id: 1,
                signature: auth::sign(
                    &identity,
                    &challenge,
                    &Proof::Authenticate { account: &account, device: 1 },
                    &mut rng,
                )
                .to_vec(),
                challenge: CHALLENGE.to_vec(),
            }),
        )
        .encode_to_vec();
        Fixture { login, ..fixture }
    })
}

fn getrandom_rng() -> impl rand_core::TryCryptoRng {
    rand::rngs::SysRng
}

fn run(fixture: &Fixture, frames: Vec<Message>) {
    let config = SocketConfig {
        idle_timeout: Duration::from_secs(5),
        server_version: "fuzz".into(),
        peer: None,
        host: Some(HOST.into()),
    };
    let socket = Duplex { frames: frames.into_iter() };
    fixture.runtime.block_on(serve_socket(socket, config, fixture.state.clone()));
}

/// Runs one input: byte 0 holds flags (bit 0: log in first; bit 1: end with a text frame),
/// then frames as `[length: u16 big-endian][bytes]`.
pub fn socket_frames(data: &[u8]) {
    let fixture = fixture();
    let Some((&flags, mut rest)) = data.split_first() else { return };
    let mut frames = Vec::new();
    if flags & 1 == 1 {
        frames.push(Message::Binary(fixture.login.clone().into()));
    }
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        frames.push(Message::Binary(rest[2..2 + len].to_vec().into()));
        rest = &rest[2 + len..];
    }
    if flags & 2 == 2 {
        frames.push(Message::Text(String::from_utf8_lossy(rest).into_owned().into()));
    }
    run(fixture, frames);
}

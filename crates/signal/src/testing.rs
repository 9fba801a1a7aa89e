//! Helpers for tests in this and other crates (feature `testing`): a seeded RNG, a poller
//! for store futures that are always ready, a bundle publisher, and the protocol store
//! conformance suite.

pub mod conformance;

use std::convert::Infallible;
use std::future::Future;

use rand_core::{CryptoRng, TryCryptoRng, TryRng};
use sha2::{Digest, Sha256};

use crate::address::DeviceId;
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyBundle, PreKeyId, PreKeyRecord, SignedPreKeyId,
    SignedPreKeyRecord,
};
use crate::store::{Changes, ProtocolStore};
use crate::time::Timestamp;

/// A deterministic CSPRNG-shaped generator for tests: SHA-256 in counter mode over a seed.
/// Never use it for real keys.
#[derive(Clone, Debug)]
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
    buffer: [u8; 32],
    used: usize,
}

impl SeededRng {
    /// A generator from a 64-bit seed.
    pub fn new(seed: u64) -> Self {
        let mut s = [0u8; 32];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Self { seed: s, counter: 0, buffer: [0; 32], used: 32 }
    }

    fn refill(&mut self) {
        self.buffer = Sha256::new()
            .chain_update(self.seed)
            .chain_update(self.counter.to_le_bytes())
            .finalize()
            .into();
        self.counter += 1;
        self.used = 0;
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for byte in dst {
            if self.used == 32 {
                self.refill();
            }
            *byte = self.buffer[self.used];
            self.used += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for SeededRng {}

/// Polls a future that completes without waiting (as every `MemoryStore` future does).
///
/// # Panics
/// If the future is not ready at once.
#[allow(clippy::panic)]
pub fn now_or_never<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("future was not ready"),
    }
}

/// Generates prekeys numbered `id` for the device owning `store` (a one-time prekey if
/// `one_time`; a last-resort Kyber key if `last_resort`), saves them, and returns the bundle
/// a server would hand out.
///
/// # Panics
/// If the store fails.
#[allow(clippy::expect_used)]
pub async fn publish_bundle<S: ProtocolStore + ?Sized>(
    store: &S,
    device_id: DeviceId,
    id: u32,
    (one_time, last_resort): (bool, bool),
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> PreKeyBundle {
    let identity = store.load_identity_key_pair().await.expect("identity");
    let registration_id = store.load_local_registration_id().await.expect("registration id");
    let pre_key = one_time.then(|| PreKeyRecord::generate(PreKeyId(id), rng));
    let signed = SignedPreKeyRecord::generate(SignedPreKeyId(id), &identity, now, rng);
    let kyber = KyberPreKeyRecord::generate(KyberPreKeyId(id), &identity, now, last_resort, rng);
    let bundle = PreKeyBundle::from_records(
        registration_id,
        device_id,
        *identity.identity_key(),
        pre_key.as_ref(),
        &signed,
        &kyber,
    );
    let changes = Changes {
        pre_keys: pre_key.into_iter().collect(),
        signed_pre_keys: vec![signed],
        kyber_pre_keys: vec![kyber],
        ..Default::default()
    };
    store.save_changes(changes).await.expect("save prekeys");
    bundle
}

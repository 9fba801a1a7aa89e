//! Connection policy shared by every client transport: reconnect backoff and keepalive.
//! The transports themselves (browser WebSocket, native socket) live outside core.

use std::time::Duration;

use async_trait::async_trait;
use rand_core::Rng;

use crate::wire::relay::{Response, request};

/// Why a request to the relay did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// There is no connection right now.
    #[error("not connected to the server")]
    NotConnected,
    /// The server did not answer in time.
    #[error("the server did not answer in time")]
    Timeout,
    /// The connection closed before the answer.
    #[error("the connection closed: {0}")]
    Closed(String),
}

/// Sends requests to the relay and returns its responses. Implemented by the browser's
/// WebSocket, the native client, and test doubles; the engine in [`crate::client`] only
/// speaks through this.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait RelayTransport {
    /// One request, one response.
    async fn request(&self, body: request::Body) -> Result<Response, TransportError>;

    /// The current connection's login challenge (from the relay's welcome) and the host
    /// it was dialled at, for proofs ([`crate::auth`]).
    fn challenge(&self) -> Result<crate::auth::Challenge, crate::auth::ChallengeError>;
}

/// Exponential reconnect backoff with full jitter in the upper half.
///
/// Attempt 1 waits about `base`, each further attempt doubles it, up to `max`. The delay is
/// drawn uniformly from `[d/2, d]` so many clients dropped at once do not reconnect in step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// The policy Tandem clients use: 0.5 s doubling to at most 15 s.
    pub const fn client_default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(15))
    }

    /// A backoff from `base` doubling up to `max`.
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, attempt: 0 }
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Records a failed attempt and returns how long to wait before the next one.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let shift = self.attempt.saturating_sub(1).min(20);
        let ceiling = self.base.saturating_mul(1u32 << shift).min(self.max);
        let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
        let floor_ms = ceiling_ms / 2;
        let span = ceiling_ms - floor_ms + 1;
        Duration::from_millis(floor_ms + rng.next_u64() % span)
    }

    /// Records a success: the next failure starts from `base` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// How often a connected client proves the connection is alive.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// How long a keepalive may go unanswered before the client drops the connection.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn test_backoff_grows_caps_and_resets() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(15));
        let mut ceilings = Vec::new();
        for _ in 0..10 {
            let d = b.next_delay(&mut rng);
            ceilings.push(d);
        }
        let bounds = [500u64, 1000, 2000, 4000, 8000, 15000, 15000, 15000, 15000, 15000];
        for (d, max) in ceilings.iter().zip(bounds) {
            let ms = u64::try_from(d.as_millis()).unwrap();
            assert!(ms >= max / 2 && ms <= max, "{ms} not in [{}, {max}]", max / 2);
        }
        assert_eq!(b.attempts(), 10);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay(&mut rng) <= Duration::from_millis(500));
    }

    #[test]
    fn test_backoff_never_overflows() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut b = Backoff::new(Duration::MAX, Duration::MAX);
        for _ in 0..100 {
            b.next_delay(&mut rng);
        }
        assert_eq!(b.attempts(), 100);
    }
}

//! Rate limits: token buckets per device and kind of request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_core::AccountId;

/// What is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    /// Prekey bundle fetches (each consumes one-time keys of someone else).
    PreKeyFetch,
    /// 1:1 and group sends.
    Send,
    /// Device list and account lookups.
    Lookup,
    /// Account registrations and failed authentications, per connection.
    Auth,
}

/// A rate: `burst` requests at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Bucket size.
    pub burst: f64,
    /// Refill per second.
    pub per_second: f64,
}

/// The limits in force.
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// Bundle fetches per device.
    pub prekey_fetch: Rate,
    /// Sends per device.
    pub send: Rate,
    /// Lookups per device.
    pub lookup: Rate,
    /// Registrations and failed authentications per connection.
    pub auth: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            prekey_fetch: Rate { burst: 100.0, per_second: 2.0 },
            send: Rate { burst: 2000.0, per_second: 1000.0 },
            lookup: Rate { burst: 200.0, per_second: 10.0 },
            auth: Rate { burst: 10.0, per_second: 0.5 },
        }
    }
}

impl RateLimits {
    fn rate(&self, kind: Limited) -> Rate {
        match kind {
            Limited::PreKeyFetch => self.prekey_fetch,
            Limited::Send => self.send,
            Limited::Lookup => self.lookup,
            Limited::Auth => self.auth,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

type Buckets = HashMap<(AccountId, u32, Limited), Bucket>;

/// Token buckets keyed by device (or peer address) and kind.
#[derive(Clone)]
pub struct Limiter {
    limits: RateLimits,
    buckets: Arc<Mutex<Buckets>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self { limits, buckets: Arc::new(Mutex::new(HashMap::new())) }
    }

    /// Takes `cost` tokens for `(account, device, kind)`; `Err(retry_after)` when empty.
    pub fn check(
        &self,
        account: AccountId,
        device: u32,
        kind: Limited,
        cost: f64,
    ) -> Result<(), Duration> {
        let rate = self.limits.rate(kind);
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > 200_000 {
            map.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(600));
        }
        let bucket =
            map.entry((account, device, kind)).or_insert(Bucket { tokens: rate.burst, at: now });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate.per_second).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - bucket.tokens;
            Err(Duration::from_secs_f64(missing / rate.per_second.max(f64::MIN_POSITIVE)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_bucket_refuses_after_burst() {
        let limits = RateLimits {
            prekey_fetch: Rate { burst: 3.0, per_second: 0.001 },
            ..Default::default()
        };
        let l = Limiter::new(limits);
        let a = AccountId([1; 16]);
        for _ in 0..3 {
            l.check(a, 1, Limited::PreKeyFetch, 1.0).unwrap();
        }
        assert!(l.check(a, 1, Limited::PreKeyFetch, 1.0).is_err());
        // Another device and another kind have their own buckets.
        l.check(a, 2, Limited::PreKeyFetch, 1.0).unwrap();
        l.check(a, 1, Limited::Send, 1.0).unwrap();
    }
}

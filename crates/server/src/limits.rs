//! Rate limits: token buckets per device (or, before login, per network) and kind of request.
//!
//! Unauthenticated requests are limited per network, not per address: an IPv4 /24 or an IPv6
//! /64 (what one customer of a provider usually holds), so one attacker cannot multiply its
//! budget by rotating addresses inside its own range. Behind a trusted reverse proxy the
//! client address comes from `X-Forwarded-For` (see [`client_address`]).
//!
//! The buckets live in two generations: the current map, and the one before. A bucket not
//! touched for a whole generation is forgotten when the generations turn, which happens when
//! the current map fills up or after [`GENERATION`]; there is never a scan of all buckets on
//! a request, and memory stays bounded by twice [`MAX_BUCKETS`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_core::AccountId;
use tandem_core::wire::relay::{MAX_COMPANIONS, MAX_GROUP_MEMBERS};

/// What is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    /// Prekey bundle fetches (each consumes one-time keys of someone else).
    PreKeyFetch,
    /// Stored copies of 1:1 and group sends (a send to N devices costs N).
    Send,
    /// Stored bytes of sends, in KiB (a ciphertext to N devices costs N times its size).
    SendKib,
    /// Account lookups (by handle or id) a device makes for itself.
    Lookup,
    /// Device lists a device fetches for itself, by account id (which cannot be guessed, so
    /// these enumerate nothing): sized for a distribution to the largest group.
    DeviceList,
    /// Device list lookups checking the sender of something received.
    LookupIncoming,
    /// Account registrations and failed logins, per network.
    Auth,
    /// Provisioning addresses opened, per network.
    Provisioning,
    /// Link tokens made by a primary.
    LinkToken,
    /// Groups created, and group changes, by an account.
    Group,
}

/// Prekey bundles one sender-key distribution to the largest group may need at once (every
/// device of every other member: a primary and [`MAX_COMPANIONS`] companions each), and a
/// hundred more. One-time prekeys are an extra (PQXDH runs on the signed and last-resort
/// keys without them), so a stranger taking this many at once, then two a second, costs
/// people forward secrecy of first messages at worst, never a session.
///
/// [`MAX_COMPANIONS`]: tandem_core::wire::relay::MAX_COMPANIONS
pub const GROUP_DISTRIBUTION_BUNDLES: f64 =
    (MAX_GROUP_MEMBERS * (1 + MAX_COMPANIONS as usize) + 100) as f64;

/// Device lists a first message to the largest group needs at once (every member), twice
/// (a retry after the group changed under it), and a hundred more.
pub const GROUP_DISTRIBUTION_LISTS: f64 = (2 * MAX_GROUP_MEMBERS + 100) as f64;

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
    /// Stored copies per device.
    pub send: Rate,
    /// Stored KiB per device.
    pub send_kib: Rate,
    /// Own lookups per device.
    pub lookup: Rate,
    /// Own device-list fetches per device.
    pub device_list: Rate,
    /// Lookups for received traffic per device.
    pub lookup_incoming: Rate,
    /// Registrations and failed logins per network.
    pub auth: Rate,
    /// Provisioning addresses per network.
    pub provisioning: Rate,
    /// Link tokens per primary.
    pub link_token: Rate,
    /// Group creations and changes per device.
    pub group: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            prekey_fetch: Rate { burst: GROUP_DISTRIBUTION_BUNDLES, per_second: 2.0 },
            send: Rate { burst: 4000.0, per_second: 2000.0 },
            send_kib: Rate { burst: 8192.0, per_second: 4096.0 },
            lookup: Rate { burst: 200.0, per_second: 10.0 },
            device_list: Rate { burst: GROUP_DISTRIBUTION_LISTS, per_second: 10.0 },
            lookup_incoming: Rate { burst: 100.0, per_second: 5.0 },
            auth: Rate { burst: 10.0, per_second: 0.5 },
            provisioning: Rate { burst: 64.0, per_second: 1.0 },
            link_token: Rate { burst: 10.0, per_second: 1.0 / 30.0 },
            group: Rate { burst: 30.0, per_second: 0.1 },
        }
    }
}

impl RateLimits {
    /// No limit in practice on anything (the fuzz target, whose inputs the limiters would
    /// otherwise stop before the handlers).
    pub fn unlimited() -> Self {
        let free = Rate { burst: 1e12, per_second: 1e12 };
        Self {
            prekey_fetch: free,
            send: free,
            send_kib: free,
            lookup: free,
            device_list: free,
            lookup_incoming: free,
            auth: free,
            provisioning: free,
            link_token: free,
            group: free,
        }
    }

    fn rate(&self, kind: Limited) -> Rate {
        match kind {
            Limited::PreKeyFetch => self.prekey_fetch,
            Limited::Send => self.send,
            Limited::SendKib => self.send_kib,
            Limited::Lookup => self.lookup,
            Limited::DeviceList => self.device_list,
            Limited::LookupIncoming => self.lookup_incoming,
            Limited::Auth => self.auth,
            Limited::Provisioning => self.provisioning,
            Limited::LinkToken => self.link_token,
            Limited::Group => self.group,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

type Key = (AccountId, u32, Limited);

/// Buckets are forgotten after at most two of these without use.
pub const GENERATION: Duration = Duration::from_secs(600);
/// The current generation turns over once it holds this many buckets.
pub const MAX_BUCKETS: usize = 200_000;

struct Generations {
    current: HashMap<Key, Bucket>,
    previous: HashMap<Key, Bucket>,
    started: Instant,
}

/// Token buckets keyed by device (or network) and kind.
#[derive(Clone)]
pub struct Limiter {
    limits: RateLimits,
    buckets: Arc<Mutex<Generations>>,
    max_buckets: usize,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").field("limits", &self.limits).finish_non_exhaustive()
    }
}

impl Limiter {
    /// A limiter enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self::with_capacity(limits, MAX_BUCKETS)
    }

    /// A limiter whose generations turn at `max_buckets` (tests).
    pub fn with_capacity(limits: RateLimits, max_buckets: usize) -> Self {
        let generations = Generations {
            current: HashMap::new(),
            previous: HashMap::new(),
            started: Instant::now(),
        };
        Self { limits, buckets: Arc::new(Mutex::new(generations)), max_buckets }
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
        let mut g = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if g.current.len() >= self.max_buckets || now.duration_since(g.started) >= GENERATION {
            // The old generation goes whole; what is in use moves over as it is touched.
            g.previous = std::mem::take(&mut g.current);
            g.started = now;
        }
        let key = (account, device, kind);
        let bucket = match g.previous.remove(&key) {
            Some(b) => g.current.entry(key).or_insert(b),
            None => g.current.entry(key).or_insert(Bucket { tokens: rate.burst, at: now }),
        };
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

    /// Buckets held now (both generations).
    pub fn len(&self) -> usize {
        let g = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.current.len() + g.previous.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An IPv4-mapped IPv6 address as IPv4; others unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An address range (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not an address or range like 10.0.0.0/8");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = canonical(addr.trim().parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }
}

/// The network an address is limited as: its IPv4 /24 or IPv6 /64, as a key.
pub fn network_key(ip: Option<IpAddr>) -> AccountId {
    let mut key = [0u8; 16];
    match ip.map(canonical) {
        Some(IpAddr::V4(v4)) => {
            key[0] = 4;
            key[1..4].copy_from_slice(&v4.octets()[..3]);
        }
        Some(IpAddr::V6(v6)) => {
            key[0] = 6;
            key[1..9].copy_from_slice(&v6.octets()[..8]);
        }
        None => {}
    }
    AccountId(key)
}

/// The client's address: the peer, unless the peer is a trusted proxy, then the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = peer?;
    if !is_trusted(peer) {
        return Some(peer);
    }
    let Some(list) = forwarded_for else { return Some(peer) };
    let mut hops = list.split(',').rev().map(str::trim);
    loop {
        match hops.next().map(str::parse::<IpAddr>) {
            Some(Ok(ip)) if is_trusted(ip) => continue,
            Some(Ok(ip)) => return Some(ip),
            // A hop that does not parse: the proxy's word stops there.
            Some(Err(_)) | None => return Some(peer),
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

    #[test]
    fn test_the_limiter_stays_bounded_and_keeps_buckets_in_use() {
        let limits =
            RateLimits { auth: Rate { burst: 2.0, per_second: 0.0001 }, ..Default::default() };
        let l = Limiter::with_capacity(limits, 100);
        let hot = AccountId([9; 16]);
        l.check(hot, 0, Limited::Auth, 2.0).unwrap();
        for i in 0..10_000u32 {
            let mut k = [0u8; 16];
            k[..4].copy_from_slice(&i.to_be_bytes());
            let _ = l.check(AccountId(k), 0, Limited::Auth, 1.0);
            if i % 50 == 0 {
                // The emptied bucket stays empty across turns of generation while in use.
                assert!(l.check(hot, 0, Limited::Auth, 1.0).is_err(), "at {i}");
            }
        }
        assert!(l.len() <= 200, "{} buckets", l.len());
    }

    #[test]
    fn test_networks_are_keyed_by_prefix() {
        let a = network_key(Some("203.0.113.7".parse().unwrap()));
        assert_eq!(a, network_key(Some("203.0.113.250".parse().unwrap())));
        assert_eq!(a, network_key(Some("::ffff:203.0.113.9".parse().unwrap())));
        assert_ne!(a, network_key(Some("203.0.114.7".parse().unwrap())));
        let b = network_key(Some("2001:db8:1:2:aaaa::1".parse().unwrap()));
        assert_eq!(b, network_key(Some("2001:db8:1:2:ffff::9".parse().unwrap())));
        assert_ne!(b, network_key(Some("2001:db8:1:3::1".parse().unwrap())));
    }

    #[test]
    fn test_forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        // A stranger's header is ignored.
        assert_eq!(client_address(Some(stranger), Some("1.2.3.4"), &trusted), Some(stranger));
        // Behind the proxy: the last untrusted hop (earlier hops are the client's own word).
        assert_eq!(
            client_address(Some(proxy), Some("1.2.3.4, 5.6.7.8, 10.2.2.2"), &trusted),
            Some("5.6.7.8".parse().unwrap())
        );
        assert_eq!(client_address(Some(proxy), None, &trusted), Some(proxy));
        assert_eq!(client_address(Some(proxy), Some("junk"), &trusted), Some(proxy));
    }
}

//! Settings from flags and environment, checked at start: a value out of range stops the
//! relay with one line instead of running with a nonsense limit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::limits::IpNet;
use crate::limits::{Rate, RateLimits};
use crate::storage::QueueLimits;

/// Limits and lifetimes of the relay, derived from [`Settings`].
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How long undelivered messages wait.
    pub queue_ttl: Duration,
    /// What one device queue may hold, in all and per sending account.
    pub queue: QueueLimits,
    /// Most unacknowledged pushes per socket.
    pub push_window: usize,
    /// Rate limits.
    pub limits: RateLimits,
    /// How often expired messages are swept.
    pub expiry_interval: Duration,
    /// A send whose timestamp is further than this ahead of the relay's clock is refused
    /// (`ClockSkew`): the sender's clock is wrong, and its stamp would date the message in
    /// the future for everyone.
    pub max_clock_ahead: Duration,
    /// Most groups one account may have created (and not yet seen deleted).
    pub max_groups_per_account: u64,
    /// Hosts a login proof may name; empty: the `Host` the request came with.
    pub public_hosts: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies in front of the relay).
    pub trusted_proxies: Vec<IpNet>,
    /// The bearer token `/metrics` needs; `None`: `/metrics` is off.
    pub metrics_token: Option<String>,
    /// The STUN and TURN servers calls use.
    pub ice: IceConfig,
    /// Test only: ways this relay attacks its clients. Read through [`Self::misbehaves`],
    /// which is always `false` in a build without the `test-misbehave` feature.
    pub misbehave: Vec<Misbehaviour>,
    /// Fuzzing only (never set from flags): every connection gets this challenge, so a fuzz
    /// input can carry a valid login. Read through [`Self::fixed_challenge`], which is
    /// always `None` in a build without the `fuzzing` feature.
    pub fixed_challenge: Option<[u8; 32]>,
}

impl RelayConfig {
    /// Whether this (test) relay attacks its clients this way. A build without the
    /// `test-misbehave` feature (the production binary) compiles every attack away.
    pub fn misbehaves(&self, m: &Misbehaviour) -> bool {
        cfg!(feature = "test-misbehave") && self.misbehave.contains(m)
    }

    /// The challenge every connection gets in the fuzz harness; `None` unless built with the
    /// `fuzzing` feature.
    pub fn fixed_challenge(&self) -> Option<[u8; 32]> {
        self.fixed_challenge.filter(|_| cfg!(feature = "fuzzing"))
    }
}

/// The ICE servers the relay hands its devices for calls. TURN uses the "REST API"
/// credentials coturn checks with `use-auth-secret` and `static-auth-secret`: the user name
/// is `<expiry unix seconds>:<account>`, the credential base64(HMAC-SHA1(secret, user name)).
#[derive(Clone, Default)]
pub struct IceConfig {
    /// `stun:` URLs.
    pub stun: Vec<String>,
    /// `turn:` and `turns:` URLs.
    pub turn: Vec<String>,
    /// The secret shared with the TURN server.
    pub turn_secret: Option<String>,
    /// How long a TURN credential holds.
    pub turn_ttl: Duration,
}

impl std::fmt::Debug for IceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceConfig")
            .field("stun", &self.stun)
            .field("turn", &self.turn)
            .field("turn_secret", &self.turn_secret.as_ref().map(|_| "…"))
            .field("turn_ttl", &self.turn_ttl)
            .finish()
    }
}

/// An ICE server URL flag: the scheme it must have, and no spaces or control characters.
fn ice_url(schemes: &'static [&'static str]) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |s: &str| {
        let s = s.trim();
        let scheme_ok = schemes.iter().any(|p| {
            s.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)) && s.len() > p.len()
        });
        if scheme_ok && s.len() <= 256 && !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Ok(s.to_owned())
        } else {
            Err(format!("{s:?} is not a {} URL", schemes.join(" or ")))
        }
    }
}

/// A way a test relay attacks its clients, so end-to-end tests can show that clients defend
/// themselves against a malicious server. Never set in production; the relay logs a warning
/// at start when any is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Flip one bit of every link (provisioning) message a primary sends.
    TamperProvisioning,
    /// Add a device the account never signed to every device list served for this handle.
    InjectDevice(String),
    /// Refuse every login of this handle's devices as if they had been removed (showing the
    /// signed list it has, which revokes nothing).
    RefuseLogin(String),
}

impl std::str::FromStr for Misbehaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "tamper-provisioning" => Ok(Self::TamperProvisioning),
            Some(("inject-device", handle)) if !handle.is_empty() => {
                Ok(Self::InjectDevice(handle.to_owned()))
            }
            Some(("refuse-login", handle)) if !handle.is_empty() => {
                Ok(Self::RefuseLogin(handle.to_owned()))
            }
            _ => Err(format!(
                "unknown misbehaviour {s:?}: use tamper-provisioning, inject-device:HANDLE or refuse-login:HANDLE"
            )),
        }
    }
}

/// A number flag that is finite and within `min..=max`.
fn ranged(min: f64, max: f64) -> impl Fn(&str) -> Result<f64, String> + Clone {
    move |s: &str| {
        let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
        if v.is_finite() && (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(format!("must be between {min} and {max}"))
        }
    }
}

/// How to run the relay. Every flag also reads a `TANDEM_*` environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "tandem-server", version, about = "Tandem relay and web app server")]
pub struct Settings {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "TANDEM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database; created if missing.
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Directory with the built web app (`trunk build --release` writes `dist/`).
    #[arg(long, env = "TANDEM_DIST", default_value = "dist")]
    pub dist: PathBuf,

    /// Serve only the API, not the web app (for an app hosted elsewhere as a static site).
    #[arg(long, env = "TANDEM_API_ONLY")]
    pub api_only: bool,

    /// Log filter in `RUST_LOG` syntax.
    #[arg(long, env = "TANDEM_LOG", default_value = "info")]
    pub log: String,

    /// Seconds a client may stay silent before its socket is closed (1 to 3600).
    #[arg(long, env = "TANDEM_IDLE_TIMEOUT_SECS", default_value_t = 90,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_secs: u64,

    /// Days an undelivered message waits in a device queue before it expires (0.001 to 3650).
    #[arg(long, env = "TANDEM_QUEUE_TTL_DAYS", default_value_t = 30.0, value_parser = ranged(0.001, 3650.0))]
    pub queue_ttl_days: f64,

    /// Most undelivered messages per device queue.
    #[arg(long, env = "TANDEM_MAX_QUEUE_LEN", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_queue_len: u64,

    /// Most bytes of undelivered messages per device queue, in MiB.
    #[arg(long, env = "TANDEM_MAX_QUEUE_MIB", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_queue_mib: u64,

    /// Most undelivered messages one sending account may have in one device queue.
    #[arg(long, env = "TANDEM_MAX_QUEUE_LEN_PER_SENDER", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_queue_len_per_sender: u64,

    /// Most bytes one sending account may have in one device queue, in MiB.
    #[arg(long, env = "TANDEM_MAX_QUEUE_MIB_PER_SENDER", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_queue_mib_per_sender: u64,

    /// Stored copies per second per sending device (a send to N devices costs N; bursts of
    /// twice that are allowed).
    #[arg(long, env = "TANDEM_SEND_RATE", default_value_t = 2000.0, value_parser = ranged(0.001, 1e7))]
    pub send_rate: f64,

    /// Stored bytes per second per sending device, in KiB (a ciphertext to N devices costs N
    /// times its size; bursts of twice that are allowed).
    #[arg(long, env = "TANDEM_SEND_KIB_RATE", default_value_t = 4096.0, value_parser = ranged(1.0, 1e9))]
    pub send_kib_rate: f64,

    /// Prekey bundle fetches per minute per device (sustained; bursts big enough for one
    /// sender-key distribution to the largest group: see `limits::GROUP_DISTRIBUTION_BUNDLES`).
    #[arg(long, env = "TANDEM_PREKEY_FETCH_RATE", default_value_t = 120.0, value_parser = ranged(0.001, 1e7))]
    pub prekey_fetch_per_minute: f64,

    /// Device-list and account lookups per minute per device, for its own use; lookups that
    /// check the sender of received traffic have a budget of the same size of their own
    /// (bursts of a third of a minute's worth).
    #[arg(long, env = "TANDEM_LOOKUP_RATE", default_value_t = 600.0, value_parser = ranged(1.0, 1e7))]
    pub lookup_per_minute: f64,

    /// Registrations and failed logins per minute per network (an IPv4 /24 or IPv6 /64;
    /// bursts of 10).
    #[arg(long, env = "TANDEM_AUTH_RATE", default_value_t = 30.0, value_parser = ranged(0.001, 1e7))]
    pub auth_per_minute: f64,

    /// Provisioning (linking) addresses opened per minute per network (sustained; bursts of
    /// 64, or of a minute's worth when that is more).
    #[arg(long, env = "TANDEM_PROVISIONING_RATE", default_value_t = 60.0, value_parser = ranged(0.001, 1e7))]
    pub provisioning_per_minute: f64,

    /// Seconds a send's timestamp may be ahead of the relay's clock (60 to 604800).
    #[arg(long, env = "TANDEM_MAX_CLOCK_AHEAD_SECS", default_value_t = 900,
          value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub max_clock_ahead_secs: u64,

    /// Most groups one account may create.
    #[arg(long, env = "TANDEM_MAX_GROUPS_PER_ACCOUNT", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_groups_per_account: u64,

    /// The host names (`host[:port]`) clients dial this relay at, for checking their login
    /// proofs. Unset: the `Host` header of each connection (right unless a proxy rewrites
    /// it). Comma-separated.
    #[arg(long = "public-host", env = "TANDEM_PUBLIC_HOST", value_delimiter = ',')]
    pub public_hosts: Vec<String>,

    /// Reverse proxies in front of the relay (addresses or ranges, comma-separated): for
    /// connections from them, limits apply to the client address in `X-Forwarded-For`.
    #[arg(long = "trusted-proxy", env = "TANDEM_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Serves `/metrics` to requests with `Authorization: Bearer TOKEN`; without it,
    /// `/metrics` does not exist.
    #[arg(long, env = "TANDEM_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// STUN servers for calls (`stun:host:port`), comma-separated.
    #[arg(long = "stun-url", env = "TANDEM_STUN_URL", value_delimiter = ',', value_parser = ice_url(&["stun:", "stuns:"]))]
    pub stun_urls: Vec<String>,

    /// TURN servers for calls (`turn:host:port?transport=udp`, `turns:host:5349`),
    /// comma-separated; needs `--turn-secret`. Debian's `coturn` is the documented server
    /// (see README).
    #[arg(long = "turn-url", env = "TANDEM_TURN_URL", value_delimiter = ',', requires = "turn_secret", value_parser = ice_url(&["turn:", "turns:"]))]
    pub turn_urls: Vec<String>,

    /// The secret shared with the TURN server (coturn's `static-auth-secret`).
    #[arg(long, env = "TANDEM_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// How long the TURN credentials handed to a device hold, in seconds.
    #[arg(long, env = "TANDEM_TURN_TTL_SECS", default_value_t = 43_200,
          value_parser = clap::value_parser!(u64).range(60..=604_800))]
    pub turn_ttl_secs: u64,

    /// Test only: attack the clients (`tamper-provisioning`, `inject-device:HANDLE`,
    /// `refuse-login:HANDLE`), to test that they defend themselves. Comma-separated. Only in
    /// a build with the `test-misbehave` feature; the production binary has no such flag.
    #[cfg(feature = "test-misbehave")]
    #[arg(
        long = "test-misbehave",
        env = "TANDEM_TEST_MISBEHAVE",
        hide = true,
        value_delimiter = ','
    )]
    pub misbehave: Vec<Misbehaviour>,
}

impl Settings {
    /// Settings for tests: port 0 on loopback, the given directories, API and app.
    pub fn for_tests(data_dir: PathBuf, dist: PathBuf) -> Self {
        Self::parse_from(["tandem-server"]).with_dirs(data_dir, dist)
    }

    fn with_dirs(mut self, data_dir: PathBuf, dist: PathBuf) -> Self {
        self.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        self.data_dir = data_dir;
        self.dist = dist;
        self.log = "warn".into();
        self
    }

    /// The relay's limits and lifetimes from these settings.
    pub fn relay_config(&self) -> RelayConfig {
        let limits = RateLimits {
            send: Rate { burst: (self.send_rate * 2.0).max(1.0), per_second: self.send_rate },
            send_kib: Rate {
                burst: (self.send_kib_rate * 2.0).max(64.0),
                per_second: self.send_kib_rate,
            },
            prekey_fetch: Rate {
                burst: crate::limits::GROUP_DISTRIBUTION_BUNDLES,
                per_second: self.prekey_fetch_per_minute / 60.0,
            },
            device_list: Rate {
                burst: crate::limits::GROUP_DISTRIBUTION_LISTS,
                per_second: self.lookup_per_minute / 60.0,
            },
            lookup: Rate {
                burst: (self.lookup_per_minute / 3.0).max(5.0),
                per_second: self.lookup_per_minute / 60.0,
            },
            lookup_incoming: Rate {
                burst: (self.lookup_per_minute / 3.0).max(5.0),
                per_second: self.lookup_per_minute / 60.0,
            },
            auth: Rate {
                burst: 10.0_f64.max(self.auth_per_minute / 6.0),
                per_second: self.auth_per_minute / 60.0,
            },
            provisioning: Rate {
                burst: 64.0_f64.max(self.provisioning_per_minute),
                per_second: self.provisioning_per_minute / 60.0,
            },
            ..RateLimits::default()
        };
        const MIB: u64 = 1024 * 1024;
        RelayConfig {
            queue_ttl: Duration::from_secs_f64(self.queue_ttl_days * 86_400.0),
            queue: QueueLimits {
                max_len: self.max_queue_len,
                max_bytes: self.max_queue_mib.saturating_mul(MIB),
                max_len_per_sender: self.max_queue_len_per_sender.min(self.max_queue_len),
                max_bytes_per_sender: self.max_queue_mib_per_sender.saturating_mul(MIB),
            },
            push_window: 256,
            limits,
            expiry_interval: Duration::from_secs(60),
            max_clock_ahead: Duration::from_secs(self.max_clock_ahead_secs),
            max_groups_per_account: self.max_groups_per_account,
            public_hosts: self
                .public_hosts
                .iter()
                .filter_map(|h| tandem_core::auth::normalize_host(h))
                .collect(),
            trusted_proxies: self.trusted_proxies.clone(),
            metrics_token: self.metrics_token.clone().filter(|t| !t.is_empty()),
            ice: IceConfig {
                stun: self.stun_urls.clone(),
                turn: self.turn_urls.clone(),
                turn_secret: self.turn_secret.clone().filter(|t| !t.is_empty()),
                turn_ttl: Duration::from_secs(self.turn_ttl_secs),
            },
            #[cfg(feature = "test-misbehave")]
            misbehave: self.misbehave.clone(),
            #[cfg(not(feature = "test-misbehave"))]
            misbehave: Vec::new(),
            fixed_challenge: None,
        }
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_out_of_range_flags_are_refused_at_start() {
        for bad in [
            &["--queue-ttl-days", "1e300"][..],
            &["--queue-ttl-days", "-1"],
            &["--queue-ttl-days", "NaN"],
            &["--queue-ttl-days", "inf"],
            &["--send-rate", "0"],
            &["--send-rate", "-5"],
            &["--auth-per-minute", "NaN"],
            &["--idle-timeout-secs", "0"],
            &["--max-queue-len", "0"],
            &["--max-clock-ahead-secs", "1"],
            &["--trusted-proxy", "not-an-ip"],
            &["--trusted-proxy", "10.0.0.0/33"],
            &["--stun-url", "http://example.org"],
            &["--turn-url", "stun:example.org"],
            &["--turn-url", "turn:"],
            &["--turn-url", "turn:a b"],
            &["--turn-ttl-secs", "1"],
            &["--turn-url", "turn:example.org:3478"],
        ] {
            let args = std::iter::once("tandem-server").chain(bad.iter().copied());
            assert!(Settings::try_parse_from(args).is_err(), "{bad:?} was accepted");
        }
        let ok = Settings::try_parse_from([
            "tandem-server",
            "--queue-ttl-days",
            "0.5",
            "--trusted-proxy",
            "10.0.0.0/8,::1",
        ])
        .unwrap();
        let c = ok.relay_config();
        assert_eq!(c.queue_ttl, Duration::from_secs(43_200));
        assert!(c.trusted_proxies[0].contains("10.1.2.3".parse().unwrap()));
        assert!(!c.trusted_proxies[0].contains("11.1.2.3".parse().unwrap()));
        assert!(c.trusted_proxies[1].contains("::1".parse().unwrap()));
        assert!(c.metrics_token.is_none());
    }
}

//! Settings from flags and environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::limits::{Rate, RateLimits};

/// Limits and lifetimes of the relay, derived from [`Settings`].
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// How long undelivered messages wait.
    pub queue_ttl: Duration,
    /// Most undelivered messages per device.
    pub max_queue_len: u64,
    /// Most unacknowledged pushes per socket.
    pub push_window: usize,
    /// Rate limits.
    pub limits: RateLimits,
    /// How often expired messages are swept.
    pub expiry_interval: Duration,
    /// Test only: ways this relay attacks its clients.
    pub misbehave: Vec<Misbehaviour>,
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
}

impl std::str::FromStr for Misbehaviour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "tamper-provisioning" => Ok(Self::TamperProvisioning),
            Some(("inject-device", handle)) if !handle.is_empty() => {
                Ok(Self::InjectDevice(handle.to_owned()))
            }
            _ => Err(format!(
                "unknown misbehaviour {s:?}: use tamper-provisioning or inject-device:HANDLE"
            )),
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

    /// Seconds a client may stay silent before its socket is closed.
    #[arg(long, env = "TANDEM_IDLE_TIMEOUT_SECS", default_value_t = 90)]
    pub idle_timeout_secs: u64,

    /// Days an undelivered message waits in a device queue before it expires.
    #[arg(long, env = "TANDEM_QUEUE_TTL_DAYS", default_value_t = 30.0)]
    pub queue_ttl_days: f64,

    /// Most undelivered messages per device queue.
    #[arg(long, env = "TANDEM_MAX_QUEUE_LEN", default_value_t = 100_000)]
    pub max_queue_len: u64,

    /// Sends per second per device (sustained; bursts of twice that are allowed).
    #[arg(long, env = "TANDEM_SEND_RATE", default_value_t = 1000.0)]
    pub send_rate: f64,

    /// Prekey bundle fetches per minute per device (sustained; bursts of 100).
    #[arg(long, env = "TANDEM_PREKEY_FETCH_RATE", default_value_t = 120.0)]
    pub prekey_fetch_per_minute: f64,

    /// Registrations and failed logins per minute per network address (bursts of 10).
    #[arg(long, env = "TANDEM_AUTH_RATE", default_value_t = 30.0)]
    pub auth_per_minute: f64,

    /// Test only: attack the clients (`tamper-provisioning`, `inject-device:HANDLE`), to test
    /// that they defend themselves. Comma-separated.
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
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            dist,
            api_only: false,
            log: "warn".into(),
            idle_timeout_secs: 90,
            queue_ttl_days: 30.0,
            max_queue_len: 100_000,
            send_rate: 1000.0,
            prekey_fetch_per_minute: 120.0,
            auth_per_minute: 30.0,
            misbehave: Vec::new(),
        }
    }

    /// The relay's limits and lifetimes from these settings.
    pub fn relay_config(&self) -> RelayConfig {
        let limits = RateLimits {
            send: Rate {
                burst: (self.send_rate * 2.0).max(1.0),
                per_second: self.send_rate.max(0.001),
            },
            prekey_fetch: Rate {
                burst: 100.0,
                per_second: (self.prekey_fetch_per_minute / 60.0).max(0.001),
            },
            auth: Rate {
                burst: 10.0_f64.max(self.auth_per_minute / 6.0),
                per_second: (self.auth_per_minute / 60.0).max(0.001),
            },
            ..RateLimits::default()
        };
        RelayConfig {
            queue_ttl: Duration::try_from_secs_f64(self.queue_ttl_days.max(0.0) * 86_400.0)
                .unwrap_or(Duration::MAX),
            max_queue_len: self.max_queue_len,
            push_window: 256,
            limits,
            expiry_interval: Duration::from_secs(60),
            misbehave: self.misbehave.clone(),
        }
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

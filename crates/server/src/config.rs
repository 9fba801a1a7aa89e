//! Settings from flags and environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

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
        }
    }

    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

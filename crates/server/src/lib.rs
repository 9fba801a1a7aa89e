//! # tandem-server
//!
//! The Tandem relay: it serves the built web app and the client WebSocket (`/v1/socket`),
//! stores its state in embedded SQLite, and never sees plaintext.
//!
//! Start it from code with [`Server::prepare`] and [`Server::serve`] (tests bind port 0), or
//! run the `tandem-server` binary.

mod config;
mod error;
mod router;
mod storage;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use config::Settings;
pub use error::{AppError, StartupError};
pub use router::router;
pub use storage::{SqliteStorage, Storage, StorageError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState<D> {
    /// Persistent storage.
    pub storage: D,
    /// The built web app to serve, if any.
    pub dist: Option<PathBuf>,
    /// Cancelled when the server shuts down; sockets close with 1001 "going away".
    pub shutdown: CancellationToken,
    /// How long a silent client socket stays open.
    pub idle_timeout: Duration,
}

/// A server whose storage is open and whose configuration checked out, ready to serve.
#[derive(Debug)]
pub struct Server {
    state: AppState<SqliteStorage>,
}

impl Server {
    /// Checks the configuration and opens storage: the data directory must be usable and,
    /// unless `api_only`, `dist/index.html` must exist.
    pub async fn prepare(settings: &Settings) -> Result<Self, StartupError> {
        let dist = if settings.api_only {
            None
        } else {
            let index = settings.dist.join("index.html");
            if !index.is_file() {
                return Err(StartupError::MissingDist { path: index });
            }
            Some(settings.dist.clone())
        };
        std::fs::create_dir_all(&settings.data_dir)
            .map_err(|source| StartupError::DataDir { path: settings.data_dir.clone(), source })?;
        probe_writable(&settings.data_dir)?;
        let db_path = settings.data_dir.join("tandem.sqlite");
        let storage = SqliteStorage::open(&db_path)
            .await
            .map_err(|e| StartupError::Database { path: db_path, source: Box::new(e) })?;
        Ok(Self {
            state: AppState {
                storage,
                dist,
                shutdown: CancellationToken::new(),
                idle_timeout: settings.idle_timeout(),
            },
        })
    }

    /// Serves on `listener` until `shutdown` resolves, then closes every socket with
    /// "going away", waits for requests in flight and closes storage.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let token = self.state.shutdown.clone();
        let storage = self.state.storage.clone();
        let app = router(self.state);
        let signal = async move {
            shutdown.await;
            token.cancel();
        };
        let result = axum::serve(listener, app).with_graceful_shutdown(signal).await;
        storage.close().await;
        result.map_err(StartupError::Serve)
    }
}

fn probe_writable(dir: &std::path::Path) -> Result<(), StartupError> {
    let probe = dir.join(".write-probe");
    std::fs::write(&probe, b"ok")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| StartupError::DataDir { path: dir.to_path_buf(), source })
}

/// Binds the listen address, mapping failure to a clear [`StartupError`].
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr).await.map_err(|source| StartupError::Listen { addr, source })
}

/// Prepares, binds and serves: the whole server in one call. `on_listening` receives the
/// bound address (useful with port 0).
pub async fn launch(
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), StartupError> {
    let server = Server::prepare(settings).await?;
    let listener = bind(settings.listen).await?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartupError::Listen { addr: settings.listen, source })?;
    on_listening(addr);
    server.serve(listener, shutdown).await
}

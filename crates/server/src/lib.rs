//! # tandem-server
//!
//! The Tandem relay: it serves the built web app and the client WebSocket (`/v1/socket`),
//! stores its state in embedded SQLite, and never sees plaintext.
//!
//! Start it from code with [`Server::prepare`] and [`Server::serve`] (tests bind port 0), or
//! run the `tandem-server` binary.

pub mod api;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod hub;
pub mod limits;
mod router;
mod storage;
pub mod ws;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use config::{RelayConfig, Settings};
pub use error::{AppError, StartupError};
pub use router::router;
pub use storage::{
    AccountRow, BundleRow, CommitListener, Committed, DeviceRow, ExpiredRow, GroupRow, MemberRow,
    NewDeviceRow, PreKeyCountsRow, PreKeyRow, PreKeyUpload, QueueInsert, QueueLimits,
    SqliteStorage, Storage, StorageError,
};
use tandem_core::devices::SignedDeviceList;
use tandem_core::{AccountId, DeviceId};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::limits::Limiter;

/// Milliseconds since the epoch, from the system clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// An account's devices as sends must address them: the primary, plus the registered
/// devices its signed device list names while that list is valid.
#[derive(Debug)]
struct DeviceSet {
    primary: Option<(u32, u32)>,
    listed: Vec<(u32, u32)>,
    list_expires_at: u64,
}

/// Tests only: where a paused login tells it arrived, and what resumes it.
#[cfg(test)]
pub(crate) type LoginPause = (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>);

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
    /// Limits and lifetimes.
    pub relay: Arc<RelayConfig>,
    /// Connected devices.
    pub hub: Hub,
    /// Rate limits.
    pub limiter: Limiter,
    device_sets: Arc<Mutex<HashMap<AccountId, Arc<DeviceSet>>>>,
    /// Tests only: a login stops here after its proof was checked and before its session
    /// subscribes (tells the first `Notify`, waits for the second), to play a removal racing it.
    #[cfg(test)]
    pub(crate) login_pause: Arc<Mutex<Option<LoginPause>>>,
}

impl<D: Storage> AppState<D> {
    /// State over `storage` with these settings.
    pub fn new(
        storage: D,
        dist: Option<PathBuf>,
        idle_timeout: Duration,
        relay: RelayConfig,
    ) -> Self {
        let hub = Hub::default();
        let deliver = hub.clone();
        storage
            .set_commit_listener(Arc::new(move |committed| deliver.deliver_committed(committed)));
        Self {
            storage,
            dist,
            shutdown: CancellationToken::new(),
            idle_timeout,
            limiter: Limiter::new(relay.limits.clone()),
            relay: Arc::new(relay),
            hub,
            device_sets: Arc::new(Mutex::new(HashMap::new())),
            #[cfg(test)]
            login_pause: Arc::default(),
        }
    }

    fn sets(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, Arc<DeviceSet>>> {
        self.device_sets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `(device id, registration id)` pairs a send to `account` must address now, or
    /// `None` if there is no such account.
    pub async fn current_devices(
        &self,
        account: AccountId,
    ) -> Result<Option<Vec<(u32, u32)>>, StorageError> {
        let cached = self.sets().get(&account).cloned();
        let set = match cached {
            Some(set) => set,
            None => {
                let Some(row) = self.storage.account(account).await? else { return Ok(None) };
                let devices = self.storage.devices(account).await?;
                let list = SignedDeviceList::from_bytes(&row.signed_device_list).ok();
                let listed_ids: Vec<u32> = list
                    .as_ref()
                    .map(|l| l.list().entries.iter().map(|e| e.device_id.get()).collect())
                    .unwrap_or_default();
                let set = Arc::new(DeviceSet {
                    primary: devices
                        .iter()
                        .find(|d| d.device_id == DeviceId::PRIMARY.get())
                        .map(|d| (d.device_id, d.registration_id)),
                    listed: devices
                        .iter()
                        .filter(|d| d.device_id != 1 && listed_ids.contains(&d.device_id))
                        .map(|d| (d.device_id, d.registration_id))
                        .collect(),
                    list_expires_at: list.map(|l| l.list().expires_at.as_millis()).unwrap_or(0),
                });
                self.sets().insert(account, set.clone());
                set
            }
        };
        let mut out: Vec<(u32, u32)> = set.primary.into_iter().collect();
        if now_ms() <= set.list_expires_at {
            out.extend(set.listed.iter().copied());
        }
        Ok(Some(out))
    }

    /// Forgets the cached device set of `account` after a change.
    pub fn invalidate_devices(&self, account: AccountId) {
        self.sets().remove(&account);
    }
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
        let relay = settings.relay_config();
        if !relay.misbehave.is_empty() {
            tracing::warn!(misbehave = ?relay.misbehave, "TEST MODE: this relay attacks its clients");
        }
        Ok(Self { state: AppState::new(storage, dist, settings.idle_timeout(), relay) })
    }

    /// The state the server will serve with (for tests that reach into it).
    pub fn state(&self) -> &AppState<SqliteStorage> {
        &self.state
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
        let sweeper = tokio::spawn(sweep_expired(self.state.clone()));
        let app = router(self.state);
        let signal = async move {
            shutdown.await;
            token.cancel();
        };
        // No Nagle: frames are small and latency-bound; coalescing them waits for the peer's
        // delayed ACK (tens of milliseconds).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not disable Nagle's algorithm");
            }
        });
        let result = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(signal)
            .await;
        sweeper.abort();
        storage.close().await;
        result.map_err(StartupError::Serve)
    }
}

/// Moves expired queue entries to tombstones every `expiry_interval` until shutdown, and
/// drops tombstones a device never came back for within the queue lifetime.
async fn sweep_expired<D: Storage>(state: AppState<D>) {
    let mut tick = tokio::time::interval(state.relay.expiry_interval);
    let ttl = u64::try_from(state.relay.queue_ttl.as_millis()).unwrap_or(u64::MAX);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        match state.storage.expire(now, now.saturating_sub(ttl)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired undelivered messages"),
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
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

//! A native device: the engine, its connection, and the receive loop.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use getrandom::SysRng;
use getrandom::rand_core::UnwrapErr;
use tandem_core::client::{Client, ClientError, Event, MessageRecord, SendReport};
use tandem_core::link::LinkCode;
use tandem_core::prekeys::generate_registration_id;
use tandem_core::runtime::{
    CompanionLink, KeptPushes, LoggedIn, NextCode, PushOutcome, handle_push, log_in, offer_link,
};
use tandem_core::store::MemoryStore;
use tandem_core::wire::relay::{ExpiredEntry, Push, push};
use tandem_core::{AccountId, DeviceId, IdentityKeyPair, Timestamp};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::connection::{ConnectError, Connection, Pushes};

/// The operating system's CSPRNG as the `CryptoRng` the engine takes.
pub fn system_rng() -> UnwrapErr<SysRng> {
    UnwrapErr(SysRng)
}

/// The wall clock as a [`Timestamp`].
pub fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    Timestamp::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The relay could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The engine failed.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Something that happened on a device.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceEvent {
    /// The engine handled an envelope (and it was acknowledged).
    Engine(Event),
    /// The queue held at connection time was delivered.
    Drained,
    /// Messages expired in the queue before this device fetched them (their gaps are
    /// recorded; the notice was acknowledged).
    Expired(Vec<ExpiredEntry>),
    /// The device was removed from its account; `proven` when the account key signed it.
    Removed {
        /// The relay showed a signed list revoking this device.
        proven: bool,
    },
    /// Handling an envelope failed; it was left unacknowledged.
    Failed(String),
    /// The socket closed (code and reason, if the relay gave them).
    Closed(Option<(u16, String)>),
}

/// One device: engine, connection, receive loop.
pub struct Device {
    /// The engine.
    pub client: Arc<Client<MemoryStore>>,
    conn: Connection,
    url: String,
    events: mpsc::UnboundedReceiver<DeviceEvent>,
    events_tx: mpsc::UnboundedSender<DeviceEvent>,
    pump: Option<JoinHandle<()>>,
    /// Whether delivery receipts are sent automatically.
    pub auto_receipts: bool,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("url", &self.url).finish_non_exhaustive()
    }
}

fn fresh_store() -> MemoryStore {
    let mut rng = system_rng();
    MemoryStore::new(IdentityKeyPair::generate(&mut rng), generate_registration_id(&mut rng))
}

impl Device {
    fn start(
        client: Arc<Client<MemoryStore>>,
        conn: Connection,
        pushes: Pushes,
        url: &str,
        auto_receipts: bool,
    ) -> Self {
        let (events_tx, events) = mpsc::unbounded_channel();
        let pump = tokio::spawn(pump(
            client.clone(),
            conn.clone(),
            pushes,
            events_tx.clone(),
            auto_receipts,
        ));
        Self {
            client,
            conn,
            url: url.to_owned(),
            events,
            events_tx,
            pump: Some(pump),
            auto_receipts,
        }
    }

    /// Registers a new account with `handle`; this device is its primary.
    pub async fn register(url: &str, handle: &str) -> Result<Self, DeviceError> {
        let (conn, pushes) = Connection::connect(url).await?;
        let client = Client::register_account(
            fresh_store(),
            &conn,
            handle,
            "Native device",
            "cli",
            now(),
            &mut system_rng(),
        )
        .await?;
        client.set_clock_offset(conn.clock_offset_ms()).await;
        Ok(Self::start(Arc::new(client), conn, pushes, url, true))
    }

    /// Primary: re-registers the account under a new account key ([`Client::reset_account_key`]);
    /// this device's old state is dropped. The reset runs on a connection authenticated with
    /// the old credentials, whose pushes (copies for the old identity) are never handled; the
    /// new device then connects afresh, so it only ever sees its own queue.
    pub async fn reset_account(self) -> Result<Self, DeviceError> {
        let url = self.url.clone();
        let (old, _old_pushes) = Connection::connect(&url).await?;
        self.client.authenticate(&old, &mut system_rng()).await?;
        let previous = self.client.clone();
        drop(self);
        let client = previous
            .reset_account_key(
                fresh_store(),
                &old,
                "Native device",
                "cli",
                now(),
                &mut system_rng(),
            )
            .await?;
        drop(old);
        let (conn, pushes) = Connection::connect(&url).await?;
        client.authenticate(&conn, &mut system_rng()).await?;
        Ok(Self::start(Arc::new(client), conn, pushes, &url, true))
    }

    /// Links a new companion to `primary`'s account (the primary signs it and publishes the
    /// new device list).
    pub async fn link(primary: &Device, name: &str) -> Result<Self, DeviceError> {
        let store = fresh_store();
        let identity = tandem_core::store::IdentityKeyStore::load_identity_key_pair(&store)
            .await
            .map_err(ClientError::from)?;
        let (conn, mut pushes) = Connection::connect(&primary.url).await?;
        let mut rng = system_rng();
        // The same policy as the browser's link screen (`runtime::CompanionLink`): the
        // companion waits at a provisioning address and shows its code (here, as text handed
        // straight to the primary), compares the matching codes, then registers.
        let mut flow = CompanionLink::new(now());
        let NextCode::Offer(lifetime) = flow.next_code(now()) else {
            return Err(ClientError::UnexpectedResponse("link window").into());
        };
        let offered =
            offer_link(&conn, *identity.identity_key(), name, lifetime, now(), &mut rng).await?;
        let code = LinkCode::parse(&offered.request.code().to_text()).map_err(ClientError::from)?;
        flow.offered(offered);
        let (primary_code, key_index) = primary
            .client
            .link_companion(&primary.conn, &code, "cli primary", now(), &mut rng)
            .await?;
        let companion_code = loop {
            match pushes.recv().await {
                Some(Push { body: Some(push::Body::Provisioning(p)), .. }) => {
                    if let Some((_, matching)) =
                        flow.on_link_message(&p.message).map_err(ClientError::from)?
                    {
                        break matching;
                    }
                }
                Some(_) => {}
                None => return Err(ClientError::UnexpectedResponse("link message").into()),
            }
        };
        // Both "screens" compare the matching code before the companion registers and
        // before the primary signs it into the list.
        if companion_code != primary_code {
            flow.reject();
            return Err(ClientError::UnexpectedResponse("matching code").into());
        }
        let link = flow.confirm().ok_or(ClientError::UnexpectedResponse("link"))?;
        let client =
            match Client::register_linked(store, &conn, link, name, "cli", now(), &mut rng).await {
                Ok(c) => c,
                Err(e) => {
                    flow.registration_failed(&e);
                    return Err(e.into());
                }
            };
        flow.registered();
        client.set_clock_offset(conn.clock_offset_ms()).await;
        primary.client.confirm_link(&primary.conn, key_index, now(), &mut rng).await?;
        Ok(Self::start(Arc::new(client), conn, pushes, &primary.url, true))
    }

    /// The connection (for requests).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// This device's account.
    pub async fn account_id(&self) -> AccountId {
        self.client.whoami().await.0
    }

    /// This device's id.
    pub async fn device_id(&self) -> DeviceId {
        self.client.whoami().await.1
    }

    /// Goes offline: closes the socket and stops the receive loop.
    pub async fn disconnect(&mut self) {
        self.conn.close();
        if let Some(pump) = self.pump.take() {
            pump.abort();
            let _ = pump.await;
        }
    }

    /// Comes back online: a new socket, authenticated, with a new receive loop.
    pub async fn reconnect(&mut self) -> Result<(), DeviceError> {
        self.disconnect().await;
        let (conn, pushes) = Connection::connect(&self.url).await?;
        match log_in(&self.client, &conn, conn.clock_offset_ms(), &mut system_rng()).await {
            LoggedIn::Ready => {}
            LoggedIn::Removed { proven } => {
                return Err(ClientError::Removed { proven }.into());
            }
            LoggedIn::NextSocket(e) | LoggedIn::Failed(e) => return Err(e.into()),
        }
        self.conn = conn.clone();
        self.pump = Some(tokio::spawn(pump(
            self.client.clone(),
            conn,
            pushes,
            self.events_tx.clone(),
            self.auto_receipts,
        )));
        Ok(())
    }

    /// Sends a text to an account.
    pub async fn send_text(&self, to: AccountId, text: &str) -> Result<SendReport, ClientError> {
        self.client.send_text(&self.conn, to, text, now(), &mut system_rng()).await
    }

    /// Sends a text to a group.
    pub async fn send_group_text(
        &self,
        group: [u8; 16],
        text: &str,
    ) -> Result<SendReport, ClientError> {
        self.client.send_group_text(&self.conn, group, text, now(), &mut system_rng()).await
    }

    /// The next event, waiting at most `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<DeviceEvent> {
        tokio::time::timeout(timeout, self.events.recv()).await.ok().flatten()
    }

    /// Events until `timeout` passes with none.
    pub async fn drain_events(&mut self, timeout: Duration) -> Vec<DeviceEvent> {
        let mut out = Vec::new();
        while let Some(e) = self.next_event(timeout).await {
            out.push(e);
        }
        out
    }

    /// Waits for the next new message (skipping other events).
    pub async fn next_message(&mut self, timeout: Duration) -> Option<MessageRecord> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_event(left).await? {
                DeviceEvent::Engine(Event::Message(m)) => return Some(*m),
                _ => continue,
            }
        }
    }
}

/// The receive loop: each push goes through [`tandem_core::runtime::handle_push`]; this loop
/// only acknowledges what it says, keeps what it says to keep (offered again after the
/// runtime's retry delay, without holding up later pushes), and reports events.
async fn pump(
    client: Arc<Client<MemoryStore>>,
    conn: Connection,
    mut pushes: Pushes,
    events: mpsc::UnboundedSender<DeviceEvent>,
    auto_receipts: bool,
) {
    let mut rng = system_rng();
    let mut kept = KeptPushes::new();
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let batch = match retry_at {
            Some(at) => tokio::select! {
                p = pushes.recv() => match p { Some(p) => vec![p], None => break },
                () = tokio::time::sleep_until(at) => {
                    retry_at = None;
                    kept.due()
                }
            },
            None => match pushes.recv().await {
                Some(p) => vec![p],
                None => break,
            },
        };
        for p in batch {
            match handle_push(&client, &conn, &p, now(), &mut rng).await {
                PushOutcome::Stored { ack, events: list, expired: _, calls_waiting } => {
                    // Stored: only now is it safe to let the relay delete it.
                    conn.ack(ack);
                    kept.stored();
                    if calls_waiting
                        && let Err(e) = client.flush_calls(&conn, now(), &mut rng).await
                    {
                        tracing::debug!(error = %e, "call replies not sent");
                    }
                    for e in list {
                        let _ = events.send(DeviceEvent::Engine(e));
                    }
                    match p.body {
                        Some(push::Body::Expired(x)) => {
                            let _ = events.send(DeviceEvent::Expired(x.entries));
                        }
                        Some(push::Body::Envelope(_)) if auto_receipts => {
                            if let Err(e) = client.flush_receipts(&conn, now(), &mut rng).await {
                                tracing::debug!(error = %e, "receipts postponed");
                            }
                        }
                        _ => {}
                    }
                }
                PushOutcome::Retry { .. } => {
                    // A push let go past the bound stays unacknowledged: the relay sends it
                    // again on the next connection.
                    if let (Some(delay), _) = kept.keep(p) {
                        retry_at = Some(tokio::time::Instant::now() + delay);
                    }
                }
                PushOutcome::Failed(e) => {
                    let _ = events.send(DeviceEvent::Failed(e.to_string()));
                }
                PushOutcome::Removed { proven } => {
                    let _ = events.send(DeviceEvent::Removed { proven });
                }
                PushOutcome::DevicesChanged { error: Some(e), .. } => {
                    tracing::debug!(error = %e, "device list not renewed");
                }
                PushOutcome::Drained => {
                    let _ = events.send(DeviceEvent::Drained);
                }
                PushOutcome::DevicesChanged { error: None, .. } | PushOutcome::Ignored => {}
            }
        }
    }
    let _ = events.send(DeviceEvent::Closed(pushes.close_reason()));
}

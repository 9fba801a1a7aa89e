//! Which devices are connected, and how to reach their sockets: new messages are handed to a
//! connected device's session directly (it falls back to the database when it lags), and a
//! removed device's socket is told to close.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tandem_core::AccountId;
use tokio::sync::mpsc;

/// Something for a device's session.
#[derive(Debug)]
pub enum Notify {
    /// Newly committed envelopes for this device, in queue order: `(id, envelope without id)`.
    Envelopes(Vec<(u64, Bytes)>),
    /// The device was removed: tell it and close.
    Removed,
    /// Another connection authenticated as this device: close this one.
    Replaced,
    /// A companion joined the device's account.
    DeviceLinked(u32),
    /// A companion of the device's account was logged out.
    DeviceUnlinked(u32),
}

/// How many notifications may wait for a session before it must catch up from the database.
const NOTIFY_BUFFER: usize = 64;

struct Entry {
    connection: u64,
    tx: mpsc::Sender<Notify>,
    lagged: Arc<AtomicBool>,
    devices_changed: Arc<AtomicBool>,
}

/// A connected session's end of the hub.
#[derive(Debug)]
pub struct Subscription {
    /// Notifications for this session.
    pub rx: mpsc::Receiver<Notify>,
    /// Set when a notification was dropped: the session must read the database.
    pub lagged: Arc<AtomicBool>,
    /// Set when a notice that the account's devices changed could not be queued (the
    /// session was slow): the session tells its device to compare its devices again.
    pub devices_changed: Arc<AtomicBool>,
    /// This connection's id.
    pub connection: u64,
}

/// How long a provisioning address works.
pub const PROVISIONING_TTL: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// Most provisioning addresses open at once. Each belongs to an open socket and costs a few
/// hundred bytes, so the bound is the sockets', not this one's.
pub const MAX_PROVISIONING: usize = 1_000_000;

/// Most provisioning addresses open at once per network (IPv4 /24, IPv6 /64): one network
/// cannot take the relay's linking away from everyone else.
pub const MAX_PROVISIONING_PER_NETWORK: usize = 64;

/// One open provisioning address: whose it is, until when, and where its message goes.
struct Mailbox {
    owner: u64,
    network: AccountId,
    expires: std::time::Instant,
    tx: mpsc::Sender<Bytes>,
}

/// Open provisioning addresses, by address, by owning connection, and counted by network.
#[derive(Default)]
struct Mailboxes {
    by_address: HashMap<[u8; 16], Mailbox>,
    by_owner: HashMap<u64, [u8; 16]>,
    per_network: HashMap<AccountId, usize>,
}

impl Mailboxes {
    fn remove(&mut self, address: &[u8; 16]) -> Option<Mailbox> {
        let m = self.by_address.remove(address)?;
        self.by_owner.remove(&m.owner);
        if let Some(n) = self.per_network.get_mut(&m.network) {
            *n -= 1;
            if *n == 0 {
                self.per_network.remove(&m.network);
            }
        }
        Some(m)
    }

    fn close_owner(&mut self, owner: u64) {
        if let Some(address) = self.by_owner.get(&owner).copied() {
            self.remove(&address);
        }
    }
}

/// The registry of connected devices.
#[derive(Default, Clone)]
pub struct Hub {
    inner: Arc<Mutex<HashMap<(AccountId, u32), Entry>>>,
    next_connection: Arc<AtomicU64>,
    provisioning: Arc<Mutex<Mailboxes>>,
}

/// Why a provisioning address could not be opened.
#[derive(Debug, PartialEq, Eq)]
pub enum ProvisioningFull {
    /// The requesting network holds its share already.
    Network,
    /// The relay holds its most.
    Relay,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("connected", &self.connected()).finish()
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(AccountId, u32), Entry>> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a session for a device; an older session of the same device is told to go.
    pub fn subscribe(&self, account: AccountId, device: u32) -> Subscription {
        let connection = self.next_connection.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(NOTIFY_BUFFER);
        let lagged = Arc::new(AtomicBool::new(false));
        let devices_changed = Arc::new(AtomicBool::new(false));
        let entry = Entry {
            connection,
            tx,
            lagged: lagged.clone(),
            devices_changed: devices_changed.clone(),
        };
        let old = self.lock().insert((account, device), entry);
        if let Some(old) = old {
            let _ = old.tx.try_send(Notify::Replaced);
        }
        Subscription { rx, lagged, devices_changed, connection }
    }

    /// Removes a session's registration (if it is still the current one).
    pub fn unsubscribe(&self, account: AccountId, device: u32, connection: u64) {
        let mut map = self.lock();
        if map.get(&(account, device)).is_some_and(|e| e.connection == connection) {
            map.remove(&(account, device));
        }
    }

    /// Hands committed envelopes to a connected device; a full buffer marks it lagged.
    pub fn deliver(&self, account: AccountId, device: u32, envelopes: Vec<(u64, Bytes)>) {
        let map = self.lock();
        if let Some(e) = map.get(&(account, device))
            && e.tx.try_send(Notify::Envelopes(envelopes)).is_err()
        {
            e.lagged.store(true, Ordering::Release);
        }
    }

    /// Hands a batch of committed copies to the connected devices they are for, each
    /// device's in order, in one notification per device.
    pub fn deliver_committed(&self, committed: Vec<(AccountId, u32, u64, Bytes)>) {
        let mut per_device: HashMap<(AccountId, u32), Vec<(u64, Bytes)>> = HashMap::new();
        for (account, device, id, envelope) in committed {
            per_device.entry((account, device)).or_default().push((id, envelope));
        }
        for ((account, device), list) in per_device {
            self.deliver(account, device, list);
        }
    }

    /// Tells a removed device's session to close.
    pub fn remove(&self, account: AccountId, device: u32) {
        if let Some(e) = self.lock().remove(&(account, device)) {
            let _ = e.tx.try_send(Notify::Removed);
        }
    }

    /// Whether a device has a session.
    pub fn is_connected(&self, account: AccountId, device: u32) -> bool {
        self.lock().contains_key(&(account, device))
    }

    /// How many devices are connected.
    pub fn connected(&self) -> usize {
        self.lock().len()
    }

    /// Tells every connected device of `account`.
    pub fn notify_account(&self, account: AccountId, what: impl Fn() -> Notify) {
        self.notify_account_except(account, 0, what);
    }

    /// Like [`Hub::notify_account`], but not device `except` (the one that caused it).
    pub fn notify_account_except(
        &self,
        account: AccountId,
        except: u32,
        what: impl Fn() -> Notify,
    ) {
        for ((a, d), e) in self.lock().iter() {
            if *a == account && *d != except && e.tx.try_send(what()).is_err() {
                // Never lost: the session tells its device at its next turn.
                e.devices_changed.store(true, Ordering::Release);
            }
        }
    }

    /// A new connection id, for a session that has not authenticated.
    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn mailboxes(&self) -> std::sync::MutexGuard<'_, Mailboxes> {
        self.provisioning.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a fresh random provisioning address for connection `owner` (from `network`),
    /// closing the one it had: one link message for it goes to `tx`.
    pub fn open_provisioning(
        &self,
        owner: u64,
        network: AccountId,
        tx: mpsc::Sender<Bytes>,
    ) -> Result<([u8; 16], std::time::SystemTime), ProvisioningFull> {
        let now = std::time::Instant::now();
        let mut m = self.mailboxes();
        m.close_owner(owner);
        if m.per_network.get(&network).copied().unwrap_or(0) >= MAX_PROVISIONING_PER_NETWORK {
            return Err(ProvisioningFull::Network);
        }
        if m.by_address.len() >= MAX_PROVISIONING {
            return Err(ProvisioningFull::Relay);
        }
        let mut address = [0u8; 16];
        rand::fill(&mut address);
        m.by_address
            .insert(address, Mailbox { owner, network, expires: now + PROVISIONING_TTL, tx });
        m.by_owner.insert(owner, address);
        *m.per_network.entry(network).or_default() += 1;
        Ok((address, std::time::SystemTime::now() + PROVISIONING_TTL))
    }

    /// Closes the provisioning address of connection `owner`.
    pub fn close_provisioning(&self, owner: u64) {
        self.mailboxes().close_owner(owner);
    }

    /// Delivers a link message to an open address, which then closes (single use).
    /// `false` when there is no such address, it expired, or its socket is gone.
    pub fn send_provisioning(&self, address: &[u8; 16], message: Bytes) -> bool {
        let Some(m) = self.mailboxes().remove(address) else { return false };
        m.expires > std::time::Instant::now() && m.tx.try_send(message).is_ok()
    }

    /// Provisioning addresses open now.
    pub fn provisioning_open(&self) -> usize {
        self.mailboxes().by_address.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(n: u8) -> AccountId {
        AccountId([n; 16])
    }

    #[test]
    fn test_a_device_notice_is_never_lost_for_a_slow_session() {
        let hub = Hub::default();
        let a = AccountId([1; 16]);
        let sub = hub.subscribe(a, 2);
        // The session is busy: its notices pile up until the buffer is full.
        for _ in 0..NOTIFY_BUFFER {
            hub.deliver(a, 2, Vec::new());
        }
        assert!(!sub.devices_changed.load(Ordering::Acquire));
        hub.notify_account(a, || Notify::DeviceLinked(3));
        assert!(sub.devices_changed.load(Ordering::Acquire), "kept for the session's next turn");
    }

    #[test]
    fn test_one_network_cannot_take_every_provisioning_address() {
        let hub = Hub::default();
        let mut keep = Vec::new();
        for owner in 0..MAX_PROVISIONING_PER_NETWORK as u64 {
            let (tx, rx) = mpsc::channel(1);
            keep.push(rx);
            hub.open_provisioning(owner, net(1), tx).unwrap();
        }
        let (tx, _rx) = mpsc::channel(1);
        assert_eq!(hub.open_provisioning(1000, net(1), tx), Err(ProvisioningFull::Network));
        // Another network still links.
        let (tx, _rx2) = mpsc::channel(1);
        assert!(hub.open_provisioning(1001, net(2), tx).is_ok());
        // A connection replacing its address does not grow its network's count; closing frees.
        let (tx, _rx3) = mpsc::channel(1);
        assert!(hub.open_provisioning(0, net(1), tx).is_ok());
        hub.close_provisioning(1);
        let (tx, _rx4) = mpsc::channel(1);
        assert!(hub.open_provisioning(2000, net(1), tx).is_ok());
        assert_eq!(hub.provisioning_open(), MAX_PROVISIONING_PER_NETWORK + 1);
    }
}

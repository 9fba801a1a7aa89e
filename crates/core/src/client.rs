//! The messaging engine: accounts and devices, ADV-verified device lists, prekeys, and the
//! send and receive pipelines with client fan-out. Sans-IO: it talks to the relay through a
//! [`RelayTransport`], persists through a [`ClientStore`], and takes time and randomness as
//! arguments.
//!
//! Guarantees:
//! - it never encrypts to a device whose ADV chain does not verify or whose account's list
//!   expired (then only the primary), and never accepts a message from such a device;
//! - ratchet state advanced by an encryption is saved *before* the ciphertext leaves;
//! - a received message, its ratchet state and its records are saved in one batch, and
//!   [`Client::receive`] returns only after that save, so the caller acknowledges the
//!   envelope only once it is durable;
//! - a send is retried (bounded) after the server reports missing, extra or stale devices.
//!
//! All operations that touch protocol state hold the client's lock, so two tasks using one
//! `Client` cannot interleave a load and a save of the same session.

mod calls;
mod devices;
mod groups;
mod receive;
mod register;
mod send;
mod trust;

use std::time::Duration;

pub use crate::records::{
    AccountRecord, CallOutcome, Conversation, DeviceListRecord, GroupRecord, MAX_QUOTE_LEN,
    MAX_RECORD_LEN, MessageId, MessageRecord, Notice, OutboxEntry, OutgoingState, Quote,
    conversation_from_bytes, conversation_to_bytes, quote_text,
};
pub use calls::PlacedCall;
pub use devices::KEY_CHANGE_HOLD;
use futures_util::lock::{Mutex, MutexGuard};
pub use groups::GroupEdit;
pub use receive::{Event, RejectReason};
pub use register::LinkOffer;
pub use register::PublishReport;
#[cfg(any(test, feature = "testing"))]
pub use send::bundle_for_fuzzing;
pub use send::{MAX_TEXT_LEN, RECENT_LOCAL_IDS, SendReport};
pub use trust::ContactCode;

use crate::auth::{self, Proof};
use crate::devices::{AdvError, SignedDeviceList};
use crate::store::{ClientChanges, ClientStore, EncryptedBatch, StoreError};
use crate::transport::{RelayTransport, TransportError};
use crate::wire::WireError;
use crate::wire::relay::{Response, Status, request, response};
use tandem_signal::ProtocolError;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId, ProtocolAddress};

/// Sends tried per message before giving up (the first plus repairs after mismatches).
pub const MAX_SEND_ATTEMPTS: u32 = 3;
/// One-time prekeys generated per refill (each kind).
pub const PREKEY_BATCH: u32 = 50;
/// Refill when fewer than this many one-time prekeys remain on the server.
pub const PREKEY_REFILL_BELOW: u32 = 20;
/// A new signed prekey this often.
pub const SIGNED_PREKEY_ROTATION: Duration = Duration::from_secs(7 * 24 * 3600);
/// A cached device list is used for this long before it is fetched again.
pub const DEVICE_LIST_CACHE_TTL: Duration = Duration::from_secs(24 * 3600);
/// Something received from an account's device that its cached list does not explain
/// fetches the list afresh at most this often per account; until then the cached answer
/// stands (so a stranger's stream of junk costs at most one lookup a minute).
pub const INCOMING_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// The relay's clock is followed for message timestamps only while it is within this of the
/// device's own clock.
pub const MAX_CLOCK_OFFSET: Duration = Duration::from_secs(30 * 24 * 3600);
/// A last timestamp further than this ahead of the (corrected) clock came from a clock that
/// was wrong: timestamps restart from the clock instead of growing from it.
pub const TIMESTAMP_RESYNC: Duration = Duration::from_secs(60);

/// What went wrong in the engine. `Display` is for people and never holds secrets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A Signal operation failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The relay could not be reached.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The relay refused the request.
    #[error("the server refused: {message}")]
    Server {
        /// Its status.
        status: Status,
        /// Its reason.
        message: String,
    },
    /// An account's device list did not verify as a whole (changed account key, rollback).
    #[error("{0}")]
    Adv(#[from] AdvError),
    /// Bytes did not parse.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// This device has not registered yet.
    #[error("this device is not registered")]
    NotRegistered,
    /// Only the primary device can do this.
    #[error("only the primary device can {0}")]
    PrimaryOnly(&'static str),
    /// The server answered something that makes no sense for the request.
    #[error("unexpected answer from the server: {0}")]
    UnexpectedResponse(&'static str),
    /// A send could not be completed.
    #[error("the message could not be sent: {reason}")]
    SendFailed {
        /// Why, for people.
        reason: String,
        /// Devices the server demanded that the account did not sign.
        unverified: Vec<(AccountId, u32, AdvError)>,
    },
    /// The caller passed something invalid.
    #[error("{0}")]
    InvalidInput(String),
    /// Linking a companion failed.
    #[error(transparent)]
    Link(#[from] crate::link::LinkError),
    /// A scanned or pasted security code did not parse or is of another version.
    #[error(transparent)]
    SecurityCode(#[from] crate::fingerprint::FingerprintError),
    /// A verified contact's account key changed: nothing goes to them until the person
    /// reviews and accepts the new security code.
    #[error("the security code of this contact changed; review it before sending")]
    AccountKeyChanged(AccountId),
    /// The relay no longer accepts this device. `proven` says whether it showed a device
    /// list signed by the account key that revokes this device; only then may the device
    /// delete its data.
    #[error("the server no longer accepts this device")]
    Removed {
        /// The removal is signed by the account key.
        proven: bool,
    },
    /// A group operation was refused by this device's own checks.
    #[error("{0}")]
    Group(#[from] crate::group_state::GroupStateError),
    /// The connection has no login challenge (the relay is too old, or the URL has no host).
    #[error(transparent)]
    Challenge(#[from] auth::ChallengeError),
}

impl ClientError {
    /// Whether retrying later might work (the server was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Transport(_))
            || matches!(
                self,
                ClientError::Server {
                    status: Status::Internal
                        | Status::RateLimited
                        | Status::Unlisted
                        | Status::StaleChallenge,
                    ..
                }
            )
    }
}

/// Sends a request and returns the body of a successful response; any other status is
/// [`ClientError::Server`].
pub async fn call<T: RelayTransport + ?Sized>(
    transport: &T,
    body: request::Body,
) -> Result<Option<response::Body>, ClientError> {
    let resp = transport.request(body).await?;
    ok_body(resp)
}

fn ok_body(resp: Response) -> Result<Option<response::Body>, ClientError> {
    match resp.status() {
        Status::Ok => Ok(resp.body),
        status => Err(ClientError::Server { status, message: resp.message }),
    }
}

/// The engine of one device.
pub struct Client<S> {
    store: S,
    /// Who this device is: fixed for the client's life (a new account key is a new client),
    /// so reading it never waits for the lock.
    me: (AccountId, DeviceId, tandem_signal::IdentityKey),
    /// The account record, and the lock every protocol-state change holds.
    state: Mutex<AccountRecord>,
    /// Receipts to send after received messages were stored.
    pending_receipts: Mutex<Vec<receive::PendingReceipt>>,
    /// Who holds this device's sender key, per group (in memory: rotated after a restart).
    group_shares: Mutex<std::collections::HashMap<[u8; 16], groups::GroupShare>>,
    /// This device's sending chain per group between saves (see `groups::SendingKey`).
    /// Locked after `state`, never before.
    sending_keys: Mutex<std::collections::HashMap<[u8; 16], groups::SendingKey>>,
    /// The relay's clock minus the caller's, in ms (see [`Client::set_clock_offset`]).
    clock_offset: Mutex<i64>,
    /// When an account's list was last fetched afresh because of something received.
    refetched: Mutex<std::collections::HashMap<AccountId, Timestamp>>,
    /// When a group was last fetched from the relay.
    group_synced: Mutex<std::collections::HashMap<[u8; 16], Timestamp>>,
    /// This device's calls (in memory only: a call does not survive a restart).
    calls: Mutex<Option<crate::calls::CallBook>>,
    /// Call messages that receiving produced, for [`Client::flush_calls`].
    pending_calls: Mutex<Vec<crate::calls::CallSend>>,
    /// The long piece of work under way, for [`Client::progress`].
    progress: std::sync::Mutex<Option<Progress>>,
    /// The account record as this client last saved it: a save leaves out an unchanged one.
    saved_account: std::sync::Mutex<Option<AccountRecord>>,
    /// Messages sent whose outbox entry and sent mark wait for the next save, with the
    /// relay's time (see [`Client::settle`]).
    unsettled: std::sync::Mutex<Vec<(MessageId, u64)>>,
}

/// How far a long piece of work has come (see [`Client::progress`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What it is.
    pub work: Work,
    /// Accounts done.
    pub done: usize,
    /// Accounts in all.
    pub total: usize,
}

/// A long piece of work a person may wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// A group's new state is sent end to end to its members, one account at a time.
    AnnouncingGroup,
    /// This device's sender key is sent to the group's members who lack it.
    SharingGroupKey,
}

impl<S> std::fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl<S: ClientStore> Client<S> {
    /// Opens the engine of an already registered device.
    pub async fn open(store: S) -> Result<Self, ClientError> {
        let account = store.load_account().await?.ok_or(ClientError::NotRegistered)?;
        Ok(Self::with_account(store, account))
    }

    fn with_account(store: S, account: AccountRecord) -> Self {
        Self {
            store,
            me: (account.account_id, account.device_id, account.account_key),
            state: Mutex::new(account),
            pending_receipts: Mutex::new(Vec::new()),
            group_shares: Mutex::new(std::collections::HashMap::new()),
            sending_keys: Mutex::new(std::collections::HashMap::new()),
            progress: std::sync::Mutex::new(None),
            saved_account: std::sync::Mutex::new(None),
            unsettled: std::sync::Mutex::new(Vec::new()),
            clock_offset: Mutex::new(0),
            refetched: Mutex::new(std::collections::HashMap::new()),
            group_synced: Mutex::new(std::collections::HashMap::new()),
            calls: Mutex::new(None),
            pending_calls: Mutex::new(Vec::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// This device's account and device id.
    pub async fn whoami(&self) -> (AccountId, DeviceId) {
        (self.me.0, self.me.1)
    }

    /// The account key this device belongs to.
    pub fn account_key(&self) -> tandem_signal::IdentityKey {
        self.me.2
    }

    /// A copy of the account record.
    pub async fn account(&self) -> AccountRecord {
        self.state.lock().await.clone()
    }

    /// This device's protocol address.
    pub async fn address(&self) -> ProtocolAddress {
        self.me.0.address(self.me.1)
    }

    async fn lock(&self) -> MutexGuard<'_, AccountRecord> {
        self.state.lock().await
    }

    /// Saves encryptions together with the account record and releases their messages.
    async fn save_sealed<M>(
        &self,
        account: &AccountRecord,
        batch: EncryptedBatch<M>,
    ) -> Result<Vec<M>, ClientError> {
        Ok(batch.save_with(|changes| self.save_records(account, changes.into())).await?)
    }

    /// Saves `changes` together with the (possibly updated) account record.
    async fn save(
        &self,
        account: &AccountRecord,
        changes: impl Into<ClientChanges>,
    ) -> Result<(), ClientError> {
        Ok(self.save_records(account, changes.into()).await?)
    }

    async fn save_records(
        &self,
        account: &AccountRecord,
        mut changes: ClientChanges,
    ) -> Result<(), StoreError> {
        // Only this client writes the account record: one it saved already is not written
        // again.
        let unchanged =
            self.saved_account.lock().map(|saved| saved.as_ref() == Some(account)).unwrap_or(false);
        if !unchanged {
            changes.account = Some(account.clone());
        }
        let marks = self.fold_unsettled(&mut changes).await?;
        if let Err(e) = self.store.save_client_changes(changes).await {
            self.defer_sent(marks);
            return Err(e);
        }
        if !unchanged && let Ok(mut saved) = self.saved_account.lock() {
            *saved = Some(account.clone());
        }
        Ok(())
    }

    /// Authenticates a fresh connection as this device: signs the connection's challenge
    /// with the identity key. A relay that refuses the device gets
    /// [`ClientError::Removed`], `proven` only if it showed a signed list revoking it.
    pub async fn authenticate<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<(), ClientError> {
        let challenge = transport.challenge()?;
        let (account, device) = self.whoami().await;
        let identity = self.store.load_identity_key_pair().await?;
        let proof = Proof::Authenticate { account: &account, device: device.get() };
        let body = request::Body::Authenticate(crate::wire::relay::Authenticate {
            account_id: account.0.to_vec(),
            device_id: device.get(),
            signature: auth::sign(&identity, &challenge, &proof, rng).to_vec(),
            challenge: challenge.nonce.to_vec(),
        });
        let resp = transport.request(body).await?;
        match (resp.status(), resp.body) {
            (Status::Ok, Some(response::Body::Authenticated(_))) => Ok(()),
            (Status::Unauthorized, body) => {
                let proof = match body {
                    Some(response::Body::Removed(r)) => r.signed_device_list,
                    _ => Vec::new(),
                };
                Err(ClientError::Removed { proven: self.removal_proven(&proof).await })
            }
            (Status::Ok, _) => Err(ClientError::UnexpectedResponse("authenticate")),
            (status, _) => Err(ClientError::Server { status, message: resp.message }),
        }
    }

    /// Whether `signed_list` (from a `DeviceRemoved` push or refused login) proves that this
    /// device was logged out: a device list signed by the account key that revokes this
    /// companion's key index. Never true for the primary, which no one can remove.
    pub async fn removal_proven(&self, signed_list: &[u8]) -> bool {
        let a = self.account().await;
        if a.device_id.is_primary() || signed_list.is_empty() {
            return false;
        }
        let Ok(list) = SignedDeviceList::from_bytes(signed_list) else { return false };
        list.verify(&a.account_key).is_ok_and(|l| {
            l.account_id == a.account_id && l.revoked.binary_search(&a.key_index).is_ok()
        })
    }

    /// Tells the engine how far the relay's clock is ahead of the caller's (`server − local`,
    /// in ms, e.g. from the relay's welcome). Message timestamps follow the relay's clock,
    /// so a device whose clock is wrong still stamps plausible times; offsets beyond
    /// [`MAX_CLOCK_OFFSET`] are ignored. Expiry checks keep using the caller's clock, so a
    /// relay cannot make an expired list look valid by lying about the time.
    pub async fn set_clock_offset(&self, offset_ms: i64) {
        let max = i64::try_from(MAX_CLOCK_OFFSET.as_millis()).unwrap_or(i64::MAX);
        *self.clock_offset.lock().await = if offset_ms.abs() <= max { offset_ms } else { 0 };
    }

    /// How far the long piece of work under way has come (a group announced to, or a sender
    /// key shared with, hundreds of accounts), for a driver to show while it waits; `None`
    /// when nothing long runs.
    pub fn progress(&self) -> Option<Progress> {
        self.progress.lock().ok().and_then(|p| *p)
    }

    /// Records progress (`None`: done).
    pub(crate) fn set_progress(&self, progress: Option<Progress>) {
        if let Ok(mut p) = self.progress.lock() {
            *p = progress;
        }
    }

    /// The caller's clock corrected by the relay's (see [`Client::set_clock_offset`]).
    pub async fn message_clock(&self, now: Timestamp) -> Timestamp {
        let offset = *self.clock_offset.lock().await;
        Timestamp::from_millis(now.as_millis().saturating_add_signed(offset))
    }

    /// A fresh timestamp for something this device sends (it identifies messages): the
    /// relay-corrected clock, strictly after the last one used, unless that one lies more
    /// than [`TIMESTAMP_RESYNC`] ahead of the clock (it came from a clock that was wrong):
    /// then the clock itself, skipping times this device already used for a message.
    async fn next_timestamp(
        &self,
        account: &mut AccountRecord,
        now: Timestamp,
    ) -> Result<u64, ClientError> {
        let clock = self.message_clock(now).await.as_millis();
        let resync = u64::try_from(TIMESTAMP_RESYNC.as_millis()).unwrap_or(u64::MAX);
        let mut t = if account.last_timestamp > clock.saturating_add(resync) {
            clock
        } else {
            clock.max(account.last_timestamp.saturating_add(1))
        };
        while self.timestamp_used(account, t).await? {
            t = t.saturating_add(1);
        }
        account.last_timestamp = t;
        account.highest_timestamp = account.highest_timestamp.map(|h| h.max(t));
        Ok(t)
    }

    /// Whether one of this device's stored messages has timestamp `t` (so its id). Above
    /// the highest timestamp this device ever used none can, and nothing is read.
    async fn timestamp_used(&self, account: &AccountRecord, t: u64) -> Result<bool, ClientError> {
        if account.highest_timestamp.is_some_and(|h| t > h) {
            return Ok(false);
        }
        let id = MessageId { sender: account.account_id, device: account.device_id, timestamp: t };
        Ok(self.store.load_message(&id).await?.is_some())
    }

    /// `n` fresh timestamps at once (see [`Client::next_timestamp`]), for a batch of sends:
    /// consecutive after the first, each checked against this device's messages only when
    /// the first went back in time (a resync), where a used one could lie ahead.
    async fn next_timestamps(
        &self,
        account: &mut AccountRecord,
        now: Timestamp,
        n: usize,
    ) -> Result<Vec<u64>, ClientError> {
        let before = account.last_timestamp;
        let mut out = Vec::with_capacity(n);
        if n == 0 {
            return Ok(out);
        }
        let first = self.next_timestamp(account, now).await?;
        out.push(first);
        let mut t = first;
        while out.len() < n {
            t = t.saturating_add(1);
            while t <= before && self.timestamp_used(account, t).await? {
                t = t.saturating_add(1);
            }
            out.push(t);
        }
        account.last_timestamp = t;
        account.highest_timestamp = account.highest_timestamp.map(|h| h.max(t));
        Ok(out)
    }

    /// The messages of a conversation as stored (newest `limit`, oldest first).
    pub async fn messages(
        &self,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, ClientError> {
        Ok(self.store.load_messages(conversation, limit).await?)
    }

    /// One message as stored.
    pub async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, ClientError> {
        Ok(self.store.load_message(id).await?)
    }
}

#[cfg(test)]
mod tests;

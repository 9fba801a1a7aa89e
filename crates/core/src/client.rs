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

mod codec;
mod devices;
mod groups;
mod receive;
mod records;
mod register;
mod send;
mod trust;

use std::time::Duration;

pub use codec::{MAX_RECORD_LEN, conversation_from_bytes, conversation_to_bytes};
use futures_util::lock::{Mutex, MutexGuard};
pub use receive::Event;
pub use records::{
    AccountRecord, Conversation, DeviceListRecord, MessageId, MessageRecord, OutboxEntry,
    OutgoingState,
};
pub use register::{LinkOffer, random_password};
pub use send::{MAX_TEXT_LEN, SendReport};
pub use trust::ContactCode;

use crate::address::{AccountId, DeviceId, ProtocolAddress};
use crate::devices::AdvError;
use crate::error::ProtocolError;
use crate::store::{Changes, ClientStore, StoreError};
use crate::time::Timestamp;
use crate::transport::{RelayTransport, TransportError};
use crate::wire::WireError;
use crate::wire::relay::{Response, Status, request, response};

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
}

impl ClientError {
    /// Whether retrying later might work (the server was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Transport(_))
            || matches!(
                self,
                ClientError::Server { status: Status::Internal | Status::RateLimited, .. }
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
    /// The account record, and the lock every protocol-state change holds.
    state: Mutex<AccountRecord>,
    /// Receipts to send after received messages were stored.
    pending_receipts: Mutex<Vec<receive::PendingReceipt>>,
    /// Who holds this device's sender key, per group (in memory: rotated after a restart).
    group_shares: Mutex<std::collections::HashMap<[u8; 16], groups::GroupShare>>,
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
            state: Mutex::new(account),
            pending_receipts: Mutex::new(Vec::new()),
            group_shares: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// This device's account and device id.
    pub async fn whoami(&self) -> (AccountId, DeviceId) {
        let a = self.state.lock().await;
        (a.account_id, a.device_id)
    }

    /// A copy of the account record.
    pub async fn account(&self) -> AccountRecord {
        self.state.lock().await.clone()
    }

    /// This device's protocol address.
    pub async fn address(&self) -> ProtocolAddress {
        let a = self.state.lock().await;
        a.account_id.address(a.device_id)
    }

    async fn lock(&self) -> MutexGuard<'_, AccountRecord> {
        self.state.lock().await
    }

    /// Saves `changes` together with the (possibly updated) account record.
    async fn save(&self, account: &AccountRecord, mut changes: Changes) -> Result<(), ClientError> {
        changes.account = Some(account.clone());
        self.store.save_changes(changes).await?;
        Ok(())
    }

    /// Authenticates a fresh connection as this device.
    pub async fn authenticate<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
    ) -> Result<(), ClientError> {
        let a = self.account().await;
        let body = request::Body::Authenticate(crate::wire::relay::Authenticate {
            account_id: a.account_id.0.to_vec(),
            device_id: a.device_id.get(),
            password: a.password.to_vec(),
        });
        match call(transport, body).await? {
            Some(response::Body::Authenticated(_)) => Ok(()),
            _ => Err(ClientError::UnexpectedResponse("authenticate")),
        }
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

/// A fresh unique timestamp for a message from this device.
fn next_timestamp(account: &mut AccountRecord, now: Timestamp) -> u64 {
    let t = now.as_millis().max(account.last_timestamp + 1);
    account.last_timestamp = t;
    t
}

#[cfg(test)]
mod tests;

//! What the engine persists besides protocol state: this device's account, verified device
//! lists of contacts, messages and the outbox.

use std::collections::BTreeSet;
use std::fmt;

use crate::address::{AccountId, DeviceId};
use crate::devices::{RejectedDevice, VerifiedDevice};
use crate::identity::IdentityKey;
use crate::time::Timestamp;

/// This device's registration with the relay and its counters.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account.
    pub account_id: AccountId,
    /// This device.
    pub device_id: DeviceId,
    /// The account's handle.
    pub handle: String,
    /// This device's secret for the relay (wiped on drop).
    pub password: [u8; 32],
    /// The account identity key (the primary's identity key).
    pub account_key: IdentityKey,
    /// Next one-time prekey id.
    pub next_pre_key_id: u32,
    /// Next Kyber prekey id.
    pub next_kyber_pre_key_id: u32,
    /// Id of the current signed prekey.
    pub signed_pre_key_id: u32,
    /// When the current signed prekey was made.
    pub signed_pre_key_at: Timestamp,
    /// Primary only: the next ADV key index for a companion.
    pub next_key_index: u32,
    /// Primary only: the version of the last published device list.
    pub device_list_version: u64,
    /// The last timestamp this device used for a message (timestamps only grow).
    pub last_timestamp: u64,
}

impl fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            account_id,
            device_id,
            handle: _,
            password: _,
            account_key,
            next_pre_key_id,
            next_kyber_pre_key_id,
            signed_pre_key_id,
            signed_pre_key_at,
            next_key_index,
            device_list_version,
            last_timestamp,
        } = self;
        f.debug_struct("AccountRecord")
            .field("account_id", account_id)
            .field("device_id", device_id)
            .field("handle", &"[redacted]")
            .field("password", &"[redacted]")
            .field("account_key", account_key)
            .field("next_pre_key_id", next_pre_key_id)
            .field("next_kyber_pre_key_id", next_kyber_pre_key_id)
            .field("signed_pre_key_id", signed_pre_key_id)
            .field("signed_pre_key_at", signed_pre_key_at)
            .field("next_key_index", next_key_index)
            .field("device_list_version", device_list_version)
            .field("last_timestamp", last_timestamp)
            .finish()
    }
}

impl Drop for AccountRecord {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

/// An account's devices as last verified (ADV), cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceListRecord {
    /// The account.
    pub account_id: AccountId,
    /// Its account key, trusted on first use.
    pub account_key: IdentityKey,
    /// The newest signed list version seen (never goes back).
    pub list_version: Option<u64>,
    /// SHA-256 of that list (for the security code).
    pub list_digest: Option<[u8; 32]>,
    /// Whether the list had expired at the last check.
    pub list_expired: bool,
    /// Devices to encrypt to.
    pub devices: Vec<VerifiedDevice>,
    /// Devices the server listed that did not verify, with the reason.
    pub rejected: Vec<RejectedDevice>,
    /// When this was fetched.
    pub fetched_at: Timestamp,
    /// Set when the server said the list changed: fetch before the next use.
    pub stale: bool,
    /// The person compared security codes and marked this account key verified.
    pub verified: bool,
    /// The account key changed after this client first trusted it (the contact
    /// re-registered, or someone pretends to be them): chats show a notice until the person
    /// has seen it ([`Client::acknowledge_key_change`](super::Client::acknowledge_key_change)).
    pub key_changed: bool,
    /// A new account key the server shows for a *verified* contact. It is not trusted, and
    /// nothing is sent to the account, until the person accepts it
    /// ([`Client::acknowledge_key_change`](super::Client::acknowledge_key_change)).
    pub pending_key: Option<IdentityKey>,
}

impl DeviceListRecord {
    /// The verified device with this id.
    pub fn device(&self, id: DeviceId) -> Option<&VerifiedDevice> {
        self.devices.iter().find(|d| d.device_id == id)
    }
}

/// A conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Conversation {
    /// With one account.
    Direct(AccountId),
    /// A group.
    Group([u8; 16]),
}

/// A message's identity: who sent it, from which device, with which timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    /// The sending account.
    pub sender: AccountId,
    /// The sending device.
    pub device: DeviceId,
    /// The sender's timestamp (milliseconds).
    pub timestamp: u64,
}

/// Where an outgoing message stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutgoingState {
    /// In the outbox, not yet accepted by the server.
    Queued,
    /// Stored by the server for every device.
    Sent,
    /// Could not be sent; the reason is for people.
    Failed(String),
}

/// A message in a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageRecord {
    /// Its identity.
    pub id: MessageId,
    /// Where it belongs.
    pub conversation: Conversation,
    /// The text.
    pub body: String,
    /// Whether this account sent it (from any of its devices).
    pub outgoing: bool,
    /// For outgoing messages: send state.
    pub state: OutgoingState,
    /// When this device stored it.
    pub stored_at: Timestamp,
    /// For outgoing messages: the recipient devices that confirmed delivery.
    pub delivered_to: BTreeSet<(AccountId, DeviceId)>,
    /// For outgoing messages: the accounts that read it. For incoming: whether this account
    /// read it (on any device), as `{own account}`.
    pub read_by: BTreeSet<AccountId>,
}

impl MessageRecord {
    /// Whether at least one recipient device confirmed delivery.
    pub fn is_delivered(&self) -> bool {
        !self.delivered_to.is_empty()
    }
}

/// A message waiting to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The message.
    pub id: MessageId,
    /// Where it goes.
    pub conversation: Conversation,
    /// The text.
    pub body: String,
    /// Send attempts so far.
    pub attempts: u32,
}

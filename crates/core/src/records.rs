//! What the engine persists besides protocol state: this device's account, verified device
//! lists of contacts, messages, groups and the outbox, with their byte encodings. The store
//! traits and the engine both build on this module; it depends on neither.

mod codec;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::devices::{RejectedDevice, VerifiedDevice};
use crate::group_state::GroupChange;
use tandem_signal::IdentityKey;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};

pub use codec::{MAX_RECORD_LEN, conversation_from_bytes, conversation_to_bytes};

/// This device's registration with the relay and its counters. It holds no secret: the
/// device proves itself to the relay by signing with its identity key (see [`crate::auth`]).
#[derive(Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account.
    pub account_id: AccountId,
    /// This device.
    pub device_id: DeviceId,
    /// The account's handle.
    pub handle: String,
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
    /// The last timestamp this device used for a message (see `next_timestamp`).
    pub last_timestamp: u64,
    /// The highest timestamp this device ever used (`last_timestamp` goes back after a clock
    /// that ran ahead is corrected): a timestamp above it names no stored message of this
    /// device, so it is not looked up. `None` in a record from before it was kept: every
    /// timestamp is looked up.
    pub highest_timestamp: Option<u64>,
    /// Companion: its ADV identity as the account signed and it countersigned it (it signs
    /// group states with it). Empty for the primary.
    pub adv_identity: Vec<u8>,
    /// Companion: the key index the account gave it (0 for the primary).
    pub key_index: u32,
    /// Primary: the companions of the last published device list, device id → key index.
    /// The primary signs lists from this record, never from the relay's word alone.
    pub linked: BTreeMap<DeviceId, u32>,
    /// Primary: key indexes of logged-out companions. They are never listed again, and every
    /// signed list carries them so contacts refuse them too.
    pub revoked: BTreeSet<u32>,
    /// Primary: key indexes of links the person confirmed (both screens showed the same
    /// code) whose companion is not in a published list yet. Only these are ever added.
    pub confirmed: BTreeSet<u32>,
}

impl AccountRecord {
    /// A fresh record for a device that just registered.
    pub fn new(
        account_id: AccountId,
        device_id: DeviceId,
        handle: &str,
        account_key: IdentityKey,
        now: Timestamp,
    ) -> Self {
        Self {
            account_id,
            device_id,
            handle: handle.trim().to_lowercase(),
            account_key,
            next_pre_key_id: 1,
            next_kyber_pre_key_id: 1,
            signed_pre_key_id: 0,
            signed_pre_key_at: now,
            next_key_index: 1,
            device_list_version: 0,
            last_timestamp: 0,
            highest_timestamp: Some(0),
            adv_identity: Vec::new(),
            key_index: 0,
            linked: BTreeMap::new(),
            revoked: BTreeSet::new(),
            confirmed: BTreeSet::new(),
        }
    }
}

impl fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            account_id,
            device_id,
            handle: _,
            account_key,
            next_pre_key_id,
            next_kyber_pre_key_id,
            signed_pre_key_id,
            signed_pre_key_at,
            next_key_index,
            device_list_version,
            last_timestamp,
            highest_timestamp,
            adv_identity,
            key_index,
            linked,
            revoked,
            confirmed,
        } = self;
        f.debug_struct("AccountRecord")
            .field("account_id", account_id)
            .field("device_id", device_id)
            .field("handle", &"[redacted]")
            .field("account_key", account_key)
            .field("next_pre_key_id", next_pre_key_id)
            .field("next_kyber_pre_key_id", next_kyber_pre_key_id)
            .field("signed_pre_key_id", signed_pre_key_id)
            .field("signed_pre_key_at", signed_pre_key_at)
            .field("next_key_index", next_key_index)
            .field("device_list_version", device_list_version)
            .field("last_timestamp", last_timestamp)
            .field("highest_timestamp", highest_timestamp)
            .field("adv_identity", &adv_identity.len())
            .field("key_index", key_index)
            .field("linked", linked)
            .field("revoked", revoked)
            .field("confirmed", confirmed)
            .finish()
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
    /// has seen it ([`Client::acknowledge_key_change`](crate::client::Client::acknowledge_key_change)).
    pub key_changed: bool,
    /// A new account key the server shows for a *verified* contact, or a second change
    /// within a day for any contact. It is not trusted, and nothing is sent to the account,
    /// until the person accepts it
    /// ([`Client::acknowledge_key_change`](crate::client::Client::acknowledge_key_change)).
    pub pending_key: Option<IdentityKey>,
    /// Key indexes of the account's devices that were logged out, from every signed list
    /// seen (sorted): refused for good.
    pub revoked: Vec<u32>,
    /// When this client last trusted a new account key for the contact without the
    /// person's say (changes are taken at most once a day that way).
    pub key_changed_at: Option<Timestamp>,
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

/// A line in a conversation that no person wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The message with this record's id expired on the relay before this device fetched
    /// it: a gap in the conversation.
    Expired,
    /// The group changed (the record's sender made the change).
    Group {
        /// The group was created by this change.
        created: bool,
        /// What changed.
        change: GroupChange,
    },
    /// A call with the conversation's peer (the record's sender is the caller).
    Call {
        /// How it went, as this device saw it.
        outcome: CallOutcome,
        /// A video call.
        video: bool,
        /// How long the connected call lasted, in seconds (0 if it never connected).
        seconds: u32,
    },
}

/// How a call went, for its line in the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call connected (on this device).
    Completed,
    /// Nobody answered in time, or the caller gave up while it rang.
    Missed,
    /// The callee declined it.
    Declined,
    /// The callee was in another call.
    Busy,
    /// Another device of this account took it.
    AnsweredElsewhere,
    /// The end-to-end check of the connection failed and the call was ended.
    SecurityFailure,
    /// It could not connect (network, media).
    Failed,
}

impl CallOutcome {
    /// Its stored number.
    pub fn code(self) -> u32 {
        match self {
            Self::Completed => 1,
            Self::Missed => 2,
            Self::Declined => 3,
            Self::Busy => 4,
            Self::AnsweredElsewhere => 5,
            Self::SecurityFailure => 6,
            Self::Failed => 7,
        }
    }

    /// The outcome of a stored number.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::Completed,
            2 => Self::Missed,
            3 => Self::Declined,
            4 => Self::Busy,
            5 => Self::AnsweredElsewhere,
            6 => Self::SecurityFailure,
            7 => Self::Failed,
            _ => return None,
        })
    }
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
    /// When the relay accepted it (its clock; `None` until known). Times shown to people
    /// are never later than this, whatever the sender's clock said.
    pub server_time: Option<Timestamp>,
    /// For a line no person wrote (an expiry gap, a group change): what it says. `body` is
    /// empty then.
    pub notice: Option<Notice>,
    /// For a message this device queued: the id its composer gave it before it was durable,
    /// so a send replayed after a crash is recognised instead of queued twice. Never sent.
    pub local_id: Option<[u8; 16]>,
    /// For a reply: the message it answers, as its sender quoted it.
    pub quote: Option<Quote>,
    /// For outgoing messages: how many other accounts it went to (the group's other members
    /// when it was sent; 0 when not recorded, read as one). Ticks turn double once each of
    /// them confirmed.
    pub audience: u32,
}

/// The message a reply answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quote {
    /// The answered message (its sender, device and timestamp).
    pub id: MessageId,
    /// The start of its text, as the replying device had it (at most [`MAX_QUOTE_LEN`]
    /// bytes). Shown only while this device does not hold the message itself.
    pub text: String,
}

/// The most text of the answered message a reply carries, in bytes.
pub const MAX_QUOTE_LEN: usize = 200;

impl Quote {
    /// A quote of `message`: its id and the start of its text, cut at a character boundary.
    pub fn of(message: &MessageRecord) -> Self {
        Self { id: message.id, text: quote_text(&message.body) }
    }
}

/// The start of `text` that fits in [`MAX_QUOTE_LEN`] bytes, cut at a character boundary.
pub fn quote_text(text: &str) -> String {
    let mut end = text.len().min(MAX_QUOTE_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

impl MessageRecord {
    /// How many other accounts an outgoing message went to (at least one).
    pub fn audience(&self) -> usize {
        (self.audience as usize).max(1)
    }

    /// The accounts that confirmed delivery on at least one device.
    pub fn delivered_accounts(&self) -> usize {
        let mut n = 0;
        let mut last = None;
        for (a, _) in &self.delivered_to {
            if last != Some(a) {
                n += 1;
                last = Some(a);
            }
        }
        n
    }

    /// Whether every account it went to confirmed delivery (one device each is enough).
    pub fn is_delivered(&self) -> bool {
        self.delivered_accounts() >= self.audience()
    }

    /// Whether every account an outgoing message went to read it.
    pub fn is_read(&self) -> bool {
        self.read_by.len() >= self.audience()
    }

    /// Whether it is an incoming message nobody on this account has read (notices never
    /// count).
    pub fn is_unread(&self) -> bool {
        !self.outgoing && self.notice.is_none() && self.read_by.is_empty()
    }

    /// The time to show: the sender's, but never later than the relay's receipt of it.
    pub fn shown_time(&self) -> u64 {
        match self.server_time {
            Some(t) if !self.outgoing => self.id.timestamp.min(t.as_millis()),
            _ => self.id.timestamp,
        }
    }
}

/// A group as this device knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    /// The newest signed state this device verified. Only its successors are accepted.
    pub state: crate::group_state::SignedGroupState,
    /// Whether this account takes part: it created or accepted the group. An invitation
    /// from a stranger waits for the person; the relay routes nothing to it before.
    pub accepted: bool,
}

impl GroupRecord {
    /// The group's id.
    pub fn group_id(&self) -> [u8; 16] {
        self.state.state().group_id
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
    /// For a reply: the message it answers.
    pub quote: Option<Quote>,
    /// Group members this message goes without: the person chose to send it before
    /// accepting their changed security code ([`Client::send_without`]); no device of
    /// theirs gets the key it is encrypted with.
    ///
    /// [`Client::send_without`]: crate::client::Client::send_without
    pub without: BTreeSet<AccountId>,
}

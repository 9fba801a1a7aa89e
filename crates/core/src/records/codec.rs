//! Compact byte encodings of the engine's records, for stores that keep bytes (IndexedDB,
//! files). Protobuf, so fields can be added later; every decoder returns an error on bad
//! input, never panics.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;

use super::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MAX_QUOTE_LEN, MessageId,
    MessageRecord, Notice, OutboxEntry, OutgoingState, Quote,
};
use crate::devices::{AdvError, RejectedDevice, VerifiedDevice};
use crate::group_state::{GroupChange, SignedGroupState};
use crate::wire::{WireError, decode_bounded};
use tandem_signal::IdentityKey;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};

/// Largest encoded record accepted (a message of up to 64 KiB plus its metadata).
pub const MAX_RECORD_LEN: usize = 128 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
struct AccountProto {
    #[prost(bytes = "vec", tag = "1")]
    account_id: Vec<u8>,
    #[prost(uint32, tag = "2")]
    device_id: u32,
    #[prost(string, tag = "3")]
    handle: String,
    // Tag 4 held the relay password before logins became challenge–response.
    #[prost(bytes = "vec", tag = "5")]
    account_key: Vec<u8>,
    #[prost(uint32, tag = "6")]
    next_pre_key_id: u32,
    #[prost(uint32, tag = "7")]
    next_kyber_pre_key_id: u32,
    #[prost(uint32, tag = "8")]
    signed_pre_key_id: u32,
    #[prost(uint64, tag = "9")]
    signed_pre_key_at: u64,
    #[prost(uint32, tag = "10")]
    next_key_index: u32,
    #[prost(uint64, tag = "11")]
    device_list_version: u64,
    #[prost(uint64, tag = "12")]
    last_timestamp: u64,
    #[prost(bytes = "vec", tag = "13")]
    adv_identity: Vec<u8>,
    #[prost(uint32, tag = "14")]
    key_index: u32,
    #[prost(message, repeated, tag = "15")]
    linked: Vec<LinkedProto>,
    #[prost(uint32, repeated, tag = "16")]
    revoked: Vec<u32>,
    #[prost(uint32, repeated, tag = "17")]
    confirmed: Vec<u32>,
    #[prost(uint64, optional, tag = "18")]
    highest_timestamp: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LinkedProto {
    #[prost(uint32, tag = "1")]
    device_id: u32,
    #[prost(uint32, tag = "2")]
    key_index: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DeviceProto {
    #[prost(uint32, tag = "1")]
    device_id: u32,
    #[prost(uint32, tag = "2")]
    registration_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    identity_key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RejectedProto {
    #[prost(uint32, tag = "1")]
    device_id: u32,
    #[prost(uint32, tag = "2")]
    reason: u32,
    #[prost(uint64, tag = "3")]
    seen: u64,
    #[prost(uint64, tag = "4")]
    found: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DeviceListProto {
    #[prost(bytes = "vec", tag = "1")]
    account_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    account_key: Vec<u8>,
    #[prost(uint64, optional, tag = "3")]
    list_version: Option<u64>,
    #[prost(bytes = "vec", optional, tag = "4")]
    list_digest: Option<Vec<u8>>,
    #[prost(bool, tag = "5")]
    list_expired: bool,
    #[prost(message, repeated, tag = "6")]
    devices: Vec<DeviceProto>,
    #[prost(message, repeated, tag = "7")]
    rejected: Vec<RejectedProto>,
    #[prost(uint64, tag = "8")]
    fetched_at: u64,
    #[prost(bool, tag = "9")]
    stale: bool,
    #[prost(bool, tag = "10")]
    verified: bool,
    #[prost(bool, tag = "11")]
    key_changed: bool,
    #[prost(bytes = "vec", optional, tag = "12")]
    pending_key: Option<Vec<u8>>,
    #[prost(uint32, repeated, tag = "13")]
    revoked: Vec<u32>,
    #[prost(uint64, optional, tag = "14")]
    key_changed_at: Option<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct IdProto {
    #[prost(bytes = "vec", tag = "1")]
    sender: Vec<u8>,
    #[prost(uint32, tag = "2")]
    device: u32,
    #[prost(uint64, tag = "3")]
    timestamp: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DeliveredProto {
    #[prost(bytes = "vec", tag = "1")]
    account: Vec<u8>,
    #[prost(uint32, tag = "2")]
    device: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MessageProto {
    #[prost(message, optional, tag = "1")]
    id: Option<IdProto>,
    /// 16 bytes: direct; 17 bytes starting with `g`: group.
    #[prost(bytes = "vec", tag = "2")]
    conversation: Vec<u8>,
    #[prost(string, tag = "3")]
    body: String,
    #[prost(bool, tag = "4")]
    outgoing: bool,
    /// 0 queued, 1 sent, 2 failed.
    #[prost(uint32, tag = "5")]
    state: u32,
    #[prost(string, tag = "6")]
    failure: String,
    #[prost(uint64, tag = "7")]
    stored_at: u64,
    #[prost(message, repeated, tag = "8")]
    delivered_to: Vec<DeliveredProto>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    read_by: Vec<Vec<u8>>,
    #[prost(uint64, optional, tag = "10")]
    server_time: Option<u64>,
    #[prost(message, optional, tag = "11")]
    notice: Option<NoticeProto>,
    #[prost(bytes = "vec", optional, tag = "12")]
    local_id: Option<Vec<u8>>,
    #[prost(message, optional, tag = "13")]
    quote: Option<QuoteProto>,
    #[prost(uint32, tag = "14")]
    audience: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct QuoteProto {
    #[prost(message, optional, tag = "1")]
    id: Option<IdProto>,
    #[prost(string, tag = "2")]
    text: String,
}

fn quote_to_proto(q: &Quote) -> QuoteProto {
    QuoteProto { id: Some(id_to_proto(&q.id)), text: q.text.clone() }
}

fn quote_from_proto(what: &'static str, p: QuoteProto) -> Result<Quote, WireError> {
    if p.text.len() > MAX_QUOTE_LEN {
        return Err(malformed(what, "quoted text too long"));
    }
    Ok(Quote { id: id_from_proto(what, p.id)?, text: p.text })
}

#[derive(Clone, PartialEq, prost::Message)]
struct NoticeProto {
    /// 1 expired, 2 group change, 3 group created, 4 call.
    #[prost(uint32, tag = "1")]
    kind: u32,
    #[prost(bytes = "vec", repeated, tag = "2")]
    added: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "3")]
    removed: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "4")]
    promoted: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "5")]
    demoted: Vec<Vec<u8>>,
    #[prost(string, optional, tag = "6")]
    title: Option<String>,
    /// For calls: the outcome's code.
    #[prost(uint32, tag = "7")]
    call_outcome: u32,
    #[prost(bool, tag = "8")]
    call_video: bool,
    #[prost(uint32, tag = "9")]
    call_seconds: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GroupProto {
    #[prost(bytes = "vec", tag = "1")]
    state: Vec<u8>,
    #[prost(bool, tag = "2")]
    accepted: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OutboxProto {
    #[prost(message, optional, tag = "1")]
    id: Option<IdProto>,
    #[prost(bytes = "vec", tag = "2")]
    conversation: Vec<u8>,
    #[prost(string, tag = "3")]
    body: String,
    #[prost(uint32, tag = "4")]
    attempts: u32,
    #[prost(message, optional, tag = "5")]
    quote: Option<QuoteProto>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    without: Vec<Vec<u8>>,
}

fn malformed(what: &'static str, reason: impl Into<String>) -> WireError {
    WireError::Malformed { what, reason: reason.into() }
}

fn account_id(what: &'static str, bytes: &[u8]) -> Result<AccountId, WireError> {
    AccountId::from_bytes(bytes).map_err(|e| malformed(what, e.to_string()))
}

fn device_id(what: &'static str, id: u32) -> Result<DeviceId, WireError> {
    DeviceId::new(id).map_err(|e| malformed(what, e.to_string()))
}

fn identity_key(what: &'static str, bytes: &[u8]) -> Result<IdentityKey, WireError> {
    IdentityKey::from_bytes(bytes).map_err(|e| malformed(what, e.to_string()))
}

/// A conversation as bytes: the account id for a direct chat, `g` + id for a group. Also
/// usable as a storage key prefix.
pub fn conversation_to_bytes(c: &Conversation) -> Vec<u8> {
    match c {
        Conversation::Direct(a) => a.0.to_vec(),
        Conversation::Group(g) => {
            let mut v = Vec::with_capacity(17);
            v.push(b'g');
            v.extend_from_slice(g);
            v
        }
    }
}

/// Parses [`conversation_to_bytes`].
pub fn conversation_from_bytes(bytes: &[u8]) -> Result<Conversation, WireError> {
    match bytes {
        [b'g', rest @ ..] if rest.len() == 16 => {
            let mut g = [0u8; 16];
            g.copy_from_slice(rest);
            Ok(Conversation::Group(g))
        }
        _ => Ok(Conversation::Direct(account_id("conversation", bytes)?)),
    }
}

fn id_to_proto(id: &MessageId) -> IdProto {
    IdProto { sender: id.sender.0.to_vec(), device: id.device.get(), timestamp: id.timestamp }
}

fn id_from_proto(what: &'static str, p: Option<IdProto>) -> Result<MessageId, WireError> {
    let p = p.ok_or(WireError::MissingField { what, field: "id" })?;
    Ok(MessageId {
        sender: account_id(what, &p.sender)?,
        device: device_id(what, p.device)?,
        timestamp: p.timestamp,
    })
}

fn adv_code(e: &AdvError) -> (u32, u64, u64) {
    match e {
        AdvError::Malformed(_) => (1, 0, 0),
        AdvError::BadAccountSignature => (2, 0, 0),
        AdvError::BadDeviceSignature => (3, 0, 0),
        AdvError::IdentityMismatch => (4, 0, 0),
        AdvError::WrongAccount => (5, 0, 0),
        AdvError::NotInList => (6, 0, 0),
        AdvError::KeyIndexMismatch => (7, 0, 0),
        AdvError::ListExpired => (8, 0, 0),
        AdvError::ListRollback { seen, found } => (9, *seen, *found),
        AdvError::AccountKeyChanged => (10, 0, 0),
        AdvError::PrimaryMismatch => (11, 0, 0),
        AdvError::Revoked => (12, 0, 0),
        AdvError::ListWithdrawn { seen } => (13, *seen, 0),
    }
}

fn adv_from_code(code: u32, seen: u64, found: u64) -> AdvError {
    match code {
        2 => AdvError::BadAccountSignature,
        3 => AdvError::BadDeviceSignature,
        4 => AdvError::IdentityMismatch,
        5 => AdvError::WrongAccount,
        6 => AdvError::NotInList,
        7 => AdvError::KeyIndexMismatch,
        8 => AdvError::ListExpired,
        9 => AdvError::ListRollback { seen, found },
        10 => AdvError::AccountKeyChanged,
        11 => AdvError::PrimaryMismatch,
        12 => AdvError::Revoked,
        13 => AdvError::ListWithdrawn { seen },
        // The detail of a malformed blob is not kept.
        _ => AdvError::Malformed("device identity"),
    }
}

fn accounts_to_proto(list: &[AccountId]) -> Vec<Vec<u8>> {
    list.iter().map(|a| a.0.to_vec()).collect()
}

fn accounts_from_proto(what: &'static str, list: &[Vec<u8>]) -> Result<Vec<AccountId>, WireError> {
    list.iter().map(|a| account_id(what, a)).collect()
}

fn notice_to_proto(n: &Notice) -> NoticeProto {
    match n {
        Notice::Expired => NoticeProto { kind: 1, ..Default::default() },
        Notice::Group { created, change } => NoticeProto {
            kind: if *created { 3 } else { 2 },
            added: accounts_to_proto(&change.added),
            removed: accounts_to_proto(&change.removed),
            promoted: accounts_to_proto(&change.promoted),
            demoted: accounts_to_proto(&change.demoted),
            title: change.title.clone(),
            ..Default::default()
        },
        Notice::Call { outcome, video, seconds } => NoticeProto {
            kind: 4,
            call_outcome: outcome.code(),
            call_video: *video,
            call_seconds: *seconds,
            ..Default::default()
        },
    }
}

fn notice_from_proto(what: &'static str, p: NoticeProto) -> Result<Notice, WireError> {
    Ok(match p.kind {
        1 => Notice::Expired,
        2 | 3 => Notice::Group {
            created: p.kind == 3,
            change: GroupChange {
                added: accounts_from_proto(what, &p.added)?,
                removed: accounts_from_proto(what, &p.removed)?,
                promoted: accounts_from_proto(what, &p.promoted)?,
                demoted: accounts_from_proto(what, &p.demoted)?,
                title: p.title,
            },
        },
        4 => Notice::Call {
            outcome: crate::records::CallOutcome::from_code(p.call_outcome).ok_or_else(|| {
                malformed(what, format!("unknown call outcome {}", p.call_outcome))
            })?,
            video: p.call_video,
            seconds: p.call_seconds,
        },
        other => return Err(malformed(what, format!("unknown notice {other}"))),
    })
}

impl AccountRecord {
    /// Serializes the record.
    pub fn to_bytes(&self) -> Vec<u8> {
        let p = AccountProto {
            account_id: self.account_id.0.to_vec(),
            device_id: self.device_id.get(),
            handle: self.handle.clone(),
            account_key: self.account_key.serialize().to_vec(),
            next_pre_key_id: self.next_pre_key_id,
            next_kyber_pre_key_id: self.next_kyber_pre_key_id,
            signed_pre_key_id: self.signed_pre_key_id,
            signed_pre_key_at: self.signed_pre_key_at.as_millis(),
            next_key_index: self.next_key_index,
            device_list_version: self.device_list_version,
            last_timestamp: self.last_timestamp,
            highest_timestamp: self.highest_timestamp,
            adv_identity: self.adv_identity.clone(),
            key_index: self.key_index,
            linked: self
                .linked
                .iter()
                .map(|(d, k)| LinkedProto { device_id: d.get(), key_index: *k })
                .collect(),
            revoked: self.revoked.iter().copied().collect(),
            confirmed: self.confirmed.iter().copied().collect(),
        };
        p.encode_to_vec()
    }

    /// Parses [`AccountRecord::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "AccountRecord";
        let p: AccountProto = decode_bounded(WHAT, bytes, MAX_RECORD_LEN)?;
        let linked = p
            .linked
            .iter()
            .map(|l| Ok((device_id(WHAT, l.device_id)?, l.key_index)))
            .collect::<Result<BTreeMap<_, _>, WireError>>()?;
        Ok(Self {
            account_id: account_id(WHAT, &p.account_id)?,
            device_id: device_id(WHAT, p.device_id)?,
            handle: p.handle.clone(),
            account_key: identity_key(WHAT, &p.account_key)?,
            next_pre_key_id: p.next_pre_key_id,
            next_kyber_pre_key_id: p.next_kyber_pre_key_id,
            signed_pre_key_id: p.signed_pre_key_id,
            signed_pre_key_at: Timestamp::from_millis(p.signed_pre_key_at),
            next_key_index: p.next_key_index,
            device_list_version: p.device_list_version,
            last_timestamp: p.last_timestamp,
            highest_timestamp: p.highest_timestamp,
            adv_identity: p.adv_identity,
            key_index: p.key_index,
            linked,
            revoked: p.revoked.into_iter().collect(),
            confirmed: p.confirmed.into_iter().collect(),
        })
    }
}

impl DeviceListRecord {
    /// Serializes the record.
    pub fn to_bytes(&self) -> Vec<u8> {
        DeviceListProto {
            account_id: self.account_id.0.to_vec(),
            account_key: self.account_key.serialize().to_vec(),
            list_version: self.list_version,
            list_digest: self.list_digest.map(|d| d.to_vec()),
            list_expired: self.list_expired,
            devices: self
                .devices
                .iter()
                .map(|d| DeviceProto {
                    device_id: d.device_id.get(),
                    registration_id: d.registration_id,
                    identity_key: d.identity_key.serialize().to_vec(),
                })
                .collect(),
            rejected: self
                .rejected
                .iter()
                .map(|r| {
                    let (reason, seen, found) = adv_code(&r.reason);
                    RejectedProto { device_id: r.device_id, reason, seen, found }
                })
                .collect(),
            fetched_at: self.fetched_at.as_millis(),
            stale: self.stale,
            verified: self.verified,
            key_changed: self.key_changed,
            pending_key: self.pending_key.map(|k| k.serialize().to_vec()),
            revoked: self.revoked.clone(),
            key_changed_at: self.key_changed_at.map(Timestamp::as_millis),
        }
        .encode_to_vec()
    }

    /// Parses [`DeviceListRecord::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "DeviceListRecord";
        let p: DeviceListProto = decode_bounded(WHAT, bytes, MAX_RECORD_LEN)?;
        let list_digest = match p.list_digest {
            Some(d) => Some(d.as_slice().try_into().map_err(|_| malformed(WHAT, "digest length"))?),
            None => None,
        };
        let devices = p
            .devices
            .iter()
            .map(|d| {
                Ok(VerifiedDevice {
                    device_id: device_id(WHAT, d.device_id)?,
                    registration_id: d.registration_id,
                    identity_key: identity_key(WHAT, &d.identity_key)?,
                })
            })
            .collect::<Result<_, WireError>>()?;
        Ok(Self {
            account_id: account_id(WHAT, &p.account_id)?,
            account_key: identity_key(WHAT, &p.account_key)?,
            list_version: p.list_version,
            list_digest,
            list_expired: p.list_expired,
            devices,
            rejected: p
                .rejected
                .iter()
                .map(|r| RejectedDevice {
                    device_id: r.device_id,
                    reason: adv_from_code(r.reason, r.seen, r.found),
                })
                .collect(),
            fetched_at: Timestamp::from_millis(p.fetched_at),
            stale: p.stale,
            verified: p.verified,
            key_changed: p.key_changed,
            pending_key: p.pending_key.as_deref().map(|k| identity_key(WHAT, k)).transpose()?,
            revoked: {
                let mut r = p.revoked;
                r.sort_unstable();
                r.dedup();
                r
            },
            key_changed_at: p.key_changed_at.map(Timestamp::from_millis),
        })
    }
}

impl MessageRecord {
    /// Serializes the record.
    pub fn to_bytes(&self) -> Vec<u8> {
        let (state, failure) = match &self.state {
            OutgoingState::Queued => (0, String::new()),
            OutgoingState::Sent => (1, String::new()),
            OutgoingState::Failed(why) => (2, why.clone()),
        };
        MessageProto {
            id: Some(id_to_proto(&self.id)),
            conversation: conversation_to_bytes(&self.conversation),
            body: self.body.clone(),
            outgoing: self.outgoing,
            state,
            failure,
            stored_at: self.stored_at.as_millis(),
            delivered_to: self
                .delivered_to
                .iter()
                .map(|(a, d)| DeliveredProto { account: a.0.to_vec(), device: d.get() })
                .collect(),
            read_by: self.read_by.iter().map(|a| a.0.to_vec()).collect(),
            server_time: self.server_time.map(Timestamp::as_millis),
            notice: self.notice.as_ref().map(notice_to_proto),
            local_id: self.local_id.map(|l| l.to_vec()),
            quote: self.quote.as_ref().map(quote_to_proto),
            audience: self.audience,
        }
        .encode_to_vec()
    }

    /// Parses [`MessageRecord::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "MessageRecord";
        let p: MessageProto = decode_bounded(WHAT, bytes, MAX_RECORD_LEN)?;
        let state = match p.state {
            0 => OutgoingState::Queued,
            1 => OutgoingState::Sent,
            2 => OutgoingState::Failed(p.failure.clone()),
            other => return Err(malformed(WHAT, format!("unknown state {other}"))),
        };
        let delivered_to = p
            .delivered_to
            .iter()
            .map(|d| Ok((account_id(WHAT, &d.account)?, device_id(WHAT, d.device)?)))
            .collect::<Result<BTreeSet<_>, WireError>>()?;
        let read_by =
            p.read_by.iter().map(|a| account_id(WHAT, a)).collect::<Result<BTreeSet<_>, _>>()?;
        Ok(Self {
            id: id_from_proto(WHAT, p.id)?,
            conversation: conversation_from_bytes(&p.conversation)?,
            body: p.body,
            outgoing: p.outgoing,
            state,
            stored_at: Timestamp::from_millis(p.stored_at),
            delivered_to,
            read_by,
            server_time: p.server_time.map(Timestamp::from_millis),
            notice: p.notice.map(|n| notice_from_proto(WHAT, n)).transpose()?,
            local_id: p
                .local_id
                .map(|l| <[u8; 16]>::try_from(l.as_slice()))
                .transpose()
                .map_err(|_| malformed(WHAT, "local id length"))?,
            quote: p.quote.map(|q| quote_from_proto(WHAT, q)).transpose()?,
            audience: p.audience,
        })
    }
}

impl GroupRecord {
    /// Serializes the record.
    pub fn to_bytes(&self) -> Vec<u8> {
        GroupProto { state: self.state.as_bytes().to_vec(), accepted: self.accepted }
            .encode_to_vec()
    }

    /// Parses [`GroupRecord::to_bytes`] (the signed state is parsed, not re-verified: it was
    /// verified before it was stored).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "GroupRecord";
        let p: GroupProto = decode_bounded(WHAT, bytes, MAX_RECORD_LEN)?;
        let state =
            SignedGroupState::from_bytes(&p.state).map_err(|e| malformed(WHAT, e.to_string()))?;
        Ok(Self { state, accepted: p.accepted })
    }
}

impl OutboxEntry {
    /// Serializes the entry.
    pub fn to_bytes(&self) -> Vec<u8> {
        OutboxProto {
            id: Some(id_to_proto(&self.id)),
            conversation: conversation_to_bytes(&self.conversation),
            body: self.body.clone(),
            attempts: self.attempts,
            quote: self.quote.as_ref().map(quote_to_proto),
            without: self.without.iter().map(|a| a.0.to_vec()).collect(),
        }
        .encode_to_vec()
    }

    /// Parses [`OutboxEntry::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "OutboxEntry";
        let p: OutboxProto = decode_bounded(WHAT, bytes, MAX_RECORD_LEN)?;
        Ok(Self {
            id: id_from_proto(WHAT, p.id)?,
            conversation: conversation_from_bytes(&p.conversation)?,
            body: p.body,
            attempts: p.attempts,
            quote: p.quote.map(|q| quote_from_proto(WHAT, q)).transpose()?,
            without: p
                .without
                .iter()
                .map(|a| account_id(WHAT, a))
                .collect::<Result<BTreeSet<_>, _>>()?,
        })
    }
}

impl MessageId {
    /// A key that sorts like `(timestamp, sender, device)`, the order of a conversation:
    /// 8 bytes big-endian timestamp, 16 bytes account, 1 byte device.
    pub fn sort_key(&self) -> [u8; 25] {
        let mut k = [0u8; 25];
        k[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        k[8..24].copy_from_slice(&self.sender.0);
        k[24] = u8::try_from(self.device.get()).unwrap_or(u8::MAX);
        k
    }

    /// Parses [`MessageId::sort_key`].
    pub fn from_sort_key(bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "MessageId";
        let k: &[u8; 25] = bytes.try_into().map_err(|_| malformed(WHAT, "key length"))?;
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&k[..8]);
        Ok(Self {
            timestamp: u64::from_be_bytes(ts),
            sender: account_id(WHAT, &k[8..24])?,
            device: device_id(WHAT, u32::from(k[24]))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdentityKeyPair;
    use crate::testing::SeededRng;

    fn key(seed: u64) -> IdentityKey {
        *IdentityKeyPair::generate(&mut SeededRng::new(seed)).identity_key()
    }

    #[test]
    fn test_records_roundtrip() {
        let a = AccountId([3; 16]);
        let account = AccountRecord {
            account_id: a,
            device_id: DeviceId::new(2).unwrap(),
            handle: "alice".into(),
            account_key: key(1),
            next_pre_key_id: 5,
            next_kyber_pre_key_id: 6,
            signed_pre_key_id: 7,
            signed_pre_key_at: Timestamp::from_millis(8),
            next_key_index: 9,
            device_list_version: 10,
            last_timestamp: 11,
            highest_timestamp: Some(12),
            adv_identity: vec![1, 2, 3],
            key_index: 4,
            linked: [(DeviceId::new(3).unwrap(), 2)].into(),
            revoked: [1, 5].into(),
            confirmed: [6].into(),
        };
        assert_eq!(AccountRecord::from_bytes(&account.to_bytes()).unwrap(), account);

        let list = DeviceListRecord {
            account_id: a,
            account_key: key(1),
            list_version: Some(4),
            list_digest: Some([9; 32]),
            list_expired: false,
            devices: vec![VerifiedDevice {
                device_id: DeviceId::PRIMARY,
                registration_id: 77,
                identity_key: key(1),
            }],
            rejected: vec![RejectedDevice {
                device_id: 9,
                reason: AdvError::ListRollback { seen: 4, found: 2 },
            }],
            fetched_at: Timestamp::from_millis(100),
            stale: true,
            verified: true,
            key_changed: true,
            pending_key: Some(key(2)),
            revoked: vec![1, 4],
            key_changed_at: Some(Timestamp::from_millis(5)),
        };
        assert_eq!(DeviceListRecord::from_bytes(&list.to_bytes()).unwrap(), list);

        let id = MessageId { sender: a, device: DeviceId::PRIMARY, timestamp: 1234 };
        let message = MessageRecord {
            id,
            conversation: Conversation::Group([5; 16]),
            body: "hello ✓".into(),
            outgoing: true,
            state: OutgoingState::Failed("no".into()),
            stored_at: Timestamp::from_millis(99),
            delivered_to: [(AccountId([1; 16]), DeviceId::new(3).unwrap())].into(),
            read_by: [AccountId([1; 16])].into(),
            server_time: Some(Timestamp::from_millis(1200)),
            notice: None,
            local_id: Some([7; 16]),
            quote: Some(Quote {
                id: MessageId {
                    sender: AccountId([4; 16]),
                    device: DeviceId::new(2).unwrap(),
                    timestamp: 77,
                },
                text: "é".repeat(MAX_QUOTE_LEN / 2),
            }),
            audience: 1023,
        };
        assert_eq!(MessageRecord::from_bytes(&message.to_bytes()).unwrap(), message);
        // A stored quote longer than a quote can be is refused, not shown.
        let long = MessageRecord {
            quote: Some(Quote {
                text: "x".repeat(MAX_QUOTE_LEN + 1),
                ..message.quote.clone().unwrap()
            }),
            ..message.clone()
        };
        assert!(MessageRecord::from_bytes(&long.to_bytes()).is_err());
        for notice in [
            Notice::Expired,
            Notice::Group {
                created: true,
                change: GroupChange {
                    added: vec![AccountId([1; 16]), AccountId([2; 16])],
                    removed: vec![AccountId([3; 16])],
                    promoted: vec![AccountId([4; 16])],
                    demoted: vec![AccountId([5; 16])],
                    title: Some("t".into()),
                },
            },
            Notice::Group { created: false, change: GroupChange::default() },
            Notice::Call {
                outcome: crate::records::CallOutcome::Completed,
                video: true,
                seconds: 75,
            },
            Notice::Call { outcome: crate::records::CallOutcome::Missed, video: false, seconds: 0 },
        ] {
            let m = MessageRecord { notice: Some(notice), body: String::new(), ..message.clone() };
            assert_eq!(MessageRecord::from_bytes(&m.to_bytes()).unwrap(), m);
        }

        let entry = OutboxEntry {
            id,
            conversation: Conversation::Direct(a),
            body: "x".into(),
            attempts: 2,
            quote: message.quote.clone(),
            without: [AccountId([3; 16]), AccountId([4; 16])].into(),
        };
        assert_eq!(OutboxEntry::from_bytes(&entry.to_bytes()).unwrap(), entry);
        assert_eq!(MessageId::from_sort_key(&id.sort_key()).unwrap(), id);
    }

    #[test]
    fn test_sort_key_orders_by_time() {
        let a = MessageId { sender: AccountId([9; 16]), device: DeviceId::PRIMARY, timestamp: 1 };
        let b = MessageId { sender: AccountId([0; 16]), device: DeviceId::PRIMARY, timestamp: 2 };
        assert!(a.sort_key() < b.sort_key());
    }

    #[test]
    fn test_bad_bytes_are_errors() {
        for bytes in [&b"\xff\xff"[..], &[0x0a, 0x01, 0x00][..], &[][..]] {
            assert!(AccountRecord::from_bytes(bytes).is_err());
            assert!(MessageRecord::from_bytes(bytes).is_err());
            assert!(OutboxEntry::from_bytes(bytes).is_err());
        }
        assert!(DeviceListRecord::from_bytes(&[0x0a, 0x01, 0x00]).is_err());
        assert!(MessageId::from_sort_key(&[0; 24]).is_err());
        assert!(conversation_from_bytes(b"g123").is_err());
    }
}

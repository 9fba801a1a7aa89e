//! The chat list's read model as a store keeps it: per conversation its newest message and
//! unread count ([`StoredSummary`]), and the newest chats in one record ([`StoredRecent`],
//! at most [`RECENT_LEN`]) that a start reads in one `get` to show the first screen. Pure
//! encoding and merging, so every store (and the fuzzer) runs the same code on the same
//! bytes; the browser store seals these values at rest.
//!
//! Encoding: protobuf `StoredSummary { bytes m = 1 (the message record); uint32 u = 2;
//! uint32 n = 3 (unread messages that mention this account) }`,
//! `RecentEntry { bytes k = 1 (conversation key); uint64 t = 2 (newest message time);
//! optional string a = 3 (a direct chat's peer); optional string n = 4 (its handle);
//! StoredSummary s = 5 }`, `StoredRecent { repeated RecentEntry entries = 1 }` newest first.

use crate::records::{Conversation, MessageRecord};
use crate::store::StoreError;
use tandem_signal::AccountId;

/// How many chats the start snapshot holds (the chat list's first screen).
pub const RECENT_LEN: usize = 50;

/// Largest stored summary or recent list accepted (50 records of the largest message, with
/// room to spare).
pub const MAX_READ_MODEL_LEN: usize = 16 * 1024 * 1024;

fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what, reason: reason.to_string() }
}

/// A conversation's summary: the newest message and the unread count.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredSummary {
    /// The newest message's record bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub m: Vec<u8>,
    /// Unread incoming messages.
    #[prost(uint32, tag = "2")]
    pub u: u32,
    /// Unread incoming messages that mention this account.
    #[prost(uint32, tag = "3")]
    pub n: u32,
}

/// One chat of the start snapshot.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RecentEntry {
    /// The conversation key.
    #[prost(bytes = "vec", tag = "1")]
    pub k: Vec<u8>,
    /// Its newest message's timestamp.
    #[prost(uint64, tag = "2")]
    pub t: u64,
    /// A direct chat's peer, as its contact key.
    #[prost(string, optional, tag = "3")]
    pub a: Option<String>,
    /// The peer's handle, when known.
    #[prost(string, optional, tag = "4")]
    pub n: Option<String>,
    /// The summary.
    #[prost(message, optional, tag = "5")]
    pub s: Option<StoredSummary>,
}

/// The newest chats, newest first, at most [`RECENT_LEN`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredRecent {
    /// Newest first.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<RecentEntry>,
}

fn decode<T: prost::Message + Default>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    if bytes.len() > MAX_READ_MODEL_LEN {
        return Err(corrupt(what, "too long"));
    }
    T::decode(bytes).map_err(|e| corrupt(what, e))
}

impl StoredRecent {
    /// Parses stored (opened) bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        decode("recent chats", bytes)
    }

    /// The chats with their handles where known.
    pub fn summaries(&self) -> Result<Vec<(ConversationSummary, Option<String>)>, StoreError> {
        self.entries
            .iter()
            .map(|e| {
                let s = e.s.as_ref().ok_or_else(|| corrupt("recent chats", "no summary"))?;
                Ok((ConversationSummary::from_summary(s)?, e.n.clone()))
            })
            .collect()
    }
}

/// A summary just written, for [`merge_recent`].
#[derive(Clone, Debug)]
pub struct Fresh {
    /// The conversation key.
    pub key: Vec<u8>,
    /// The summary.
    pub summary: StoredSummary,
    /// Its newest message's timestamp.
    pub at: u64,
    /// A direct chat's peer.
    pub peer: Option<AccountId>,
    /// The peer's handle, when known.
    pub name: Option<String>,
}

impl Fresh {
    /// The summary of the conversation stored under `key`, whose newest message is `last`.
    pub fn new(
        key: Vec<u8>,
        summary: StoredSummary,
        last: &MessageRecord,
        name: Option<String>,
    ) -> Self {
        let peer = match last.conversation {
            Conversation::Direct(peer) => Some(peer),
            Conversation::Group(_) => None,
        };
        Self { key, summary, at: last.id.timestamp, peer, name }
    }
}

/// Merges freshly written summaries into the stored recent list; newest first, at most
/// [`RECENT_LEN`], one entry per conversation. Ordering changes only with new messages, and
/// every new message rewrites its summary here, so a chat that fell off the list returns as
/// soon as it is among the newest again.
pub fn merge_recent(stored: Option<StoredRecent>, fresh: Vec<Fresh>) -> StoredRecent {
    let mut entries = stored.map(|r| r.entries).unwrap_or_default();
    for Fresh { key, summary, at, peer, name } in fresh {
        entries.retain(|e| e.k != key);
        entries.push(RecentEntry {
            k: key,
            t: at,
            a: peer.map(|p| p.to_string()),
            n: name,
            s: Some(summary),
        });
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.t));
    // A damaged stored list may hold a conversation twice: keep its newest.
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert(e.k.clone()));
    entries.truncate(RECENT_LEN);
    StoredRecent { entries }
}

/// A conversation as the chat list shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// Its newest message.
    pub last: MessageRecord,
    /// Incoming messages not read on any of this account's devices.
    pub unread: u32,
    /// Those of them that mention this account (never more than `unread`).
    pub mentions: u32,
}

impl ConversationSummary {
    /// The summary a stored value holds.
    pub fn from_summary(s: &StoredSummary) -> Result<Self, StoreError> {
        s.read()
    }
}

/// The stored summary of a conversation whose newest message is `last`.
pub fn summary_value(last: &MessageRecord, unread: u32, mentions: u32) -> StoredSummary {
    StoredSummary { m: last.to_bytes(), u: unread, n: mentions.min(unread) }
}

impl StoredSummary {
    /// Parses stored (opened) bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        decode("conversation", bytes)
    }

    /// The newest message and the unread counts.
    pub fn read(&self) -> Result<ConversationSummary, StoreError> {
        let last = MessageRecord::from_bytes(&self.m).map_err(|e| corrupt("conversation", e))?;
        Ok(ConversationSummary {
            conversation: last.conversation,
            last,
            unread: self.u,
            mentions: self.n.min(self.u),
        })
    }
}

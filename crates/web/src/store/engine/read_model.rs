//! The chat list's read model: conversation summaries, the start snapshot's recent list,
//! contact names as stored.

use super::values::*;
use super::*;

pub(super) const IDENTITY_KEY: &str = "identity";
pub(super) const REGISTRATION_KEY: &str = "registration";
pub(super) const ACCOUNT_KEY: &str = "account";
/// Key in `local` of the data key ring (see [`crate::store::seal`]); never sealed.
pub(super) const KEYS_KEY: &str = "keys";
/// Key in `local` of the newest chats, for the start snapshot: a sealed [`StoredRecent`],
/// newest first, at most [`RECENT_LEN`].
pub(super) const RECENT_KEY: &str = "recent";
/// How many chats the start snapshot holds (the chat list's first screen).
pub(super) const RECENT_LEN: usize = 50;

/// A `conversations` value before sealing: the newest message and the unread count.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct StoredSummary {
    /// The newest message's record bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) m: Vec<u8>,
    /// Unread incoming messages.
    #[prost(uint32, tag = "2")]
    pub(super) u: u32,
}

/// One chat of the start snapshot.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RecentEntry {
    /// The conversation key.
    #[prost(bytes = "vec", tag = "1")]
    pub(super) k: Vec<u8>,
    /// Its newest message's timestamp.
    #[prost(uint64, tag = "2")]
    pub(super) t: u64,
    /// A direct chat's peer, as its `contacts` key.
    #[prost(string, optional, tag = "3")]
    pub(super) a: Option<String>,
    /// The peer's handle, when known.
    #[prost(string, optional, tag = "4")]
    pub(super) n: Option<String>,
    /// The summary.
    #[prost(message, optional, tag = "5")]
    pub(super) s: Option<StoredSummary>,
}

/// The `local` record `recent` before sealing.
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct StoredRecent {
    /// Newest first.
    #[prost(message, repeated, tag = "1")]
    pub(super) entries: Vec<RecentEntry>,
}

impl StoredRecent {
    /// Parses opened bytes.
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        prost::Message::decode(bytes).map_err(|e| corrupt("recent chats", e))
    }

    /// The chats with their handles where known.
    pub(super) fn summaries(
        &self,
    ) -> Result<Vec<(ConversationSummary, Option<String>)>, StoreError> {
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
pub(super) struct Fresh {
    /// The conversation key.
    pub(super) key: Vec<u8>,
    /// The summary.
    pub(super) summary: StoredSummary,
    /// Its newest message's timestamp.
    pub(super) at: u64,
    /// A direct chat's peer.
    pub(super) peer: Option<AccountId>,
    /// The peer's handle, when known.
    pub(super) name: Option<String>,
}

impl Fresh {
    pub(super) fn new(
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
/// [`RECENT_LEN`]. Ordering changes only with new messages, and every new message rewrites
/// its summary here, so a chat that fell off the list returns as soon as it is among the
/// newest again.
pub(super) fn merge_recent(stored: Option<StoredRecent>, fresh: Vec<Fresh>) -> StoredRecent {
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
    entries.truncate(RECENT_LEN);
    StoredRecent { entries }
}

pub(super) fn is_unread(m: &MessageRecord) -> bool {
    m.is_unread()
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
}

pub(super) fn summary_value(last: &MessageRecord, unread: u32) -> StoredSummary {
    StoredSummary { m: last.to_bytes(), u: unread }
}

impl StoredSummary {
    /// Parses opened bytes.
    pub(super) fn parse(bytes: &[u8]) -> Result<Self, StoreError> {
        prost::Message::decode(bytes).map_err(|e| corrupt("conversation", e))
    }

    /// The newest message and the unread count.
    pub(super) fn read(&self) -> Result<(MessageRecord, u32), StoreError> {
        let last = MessageRecord::from_bytes(&self.m).map_err(|e| corrupt("conversation", e))?;
        Ok((last, self.u))
    }
}

impl ConversationSummary {
    fn from_summary(s: &StoredSummary) -> Result<Self, StoreError> {
        let (last, unread) = s.read()?;
        Ok(Self { conversation: last.conversation, last, unread })
    }
}

//! The chat list's read model: conversation summaries, the start snapshot's recent list,
//! contact names as stored.

use super::values::*;
use super::*;

pub(super) const IDENTITY_KEY: &str = "identity";
pub(super) const REGISTRATION_KEY: &str = "registration";
pub(super) const ACCOUNT_KEY: &str = "account";
/// Key in `local` of the newest chats, for the page's start script: an array of up to
/// [`RECENT_LEN`] conversation summaries `{k, m, u, a}`, newest first (`k` the conversation
/// key, `t` its newest message's timestamp, `a` a direct chat's peer as its `contacts` key,
/// `n` its handle when known).
pub(super) const RECENT_KEY: &str = "recent";
/// How many chats the start snapshot holds (the chat list's first screen).
pub(super) const RECENT_LEN: usize = 50;

/// A summary just written, for [`merge_recent`].
pub(super) struct Fresh {
    /// The conversation key.
    pub(super) key: Vec<u8>,
    /// The stored summary value.
    pub(super) value: JsValue,
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
        value: JsValue,
        last: &MessageRecord,
        name: Option<String>,
    ) -> Self {
        let peer = match last.conversation {
            Conversation::Direct(peer) => Some(peer),
            Conversation::Group(_) => None,
        };
        Self { key, value, at: last.id.timestamp, peer, name }
    }
}

/// Merges freshly written summaries `(key, summary value, newest timestamp)` into the stored
/// recent list; newest first, at most [`RECENT_LEN`]. Ordering changes only with new
/// messages, and every new message rewrites its summary here, so a chat that fell off the
/// list returns as soon as it is among the newest again.
pub(super) fn merge_recent(stored: Option<JsValue>, fresh: &[Fresh]) -> JsValue {
    let mut entries: Vec<(Vec<u8>, u64, JsValue)> = stored
        .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let key = value_bytes("recent", &Reflect::get(&e, &"k".into()).ok()?).ok()?;
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a stored timestamp"
                    )]
                    let at = Reflect::get(&e, &"t".into()).ok()?.as_f64()? as u64;
                    Some((key, at, e))
                })
                .collect()
        })
        .unwrap_or_default();
    for Fresh { key, value, at, peer, name } in fresh {
        entries.retain(|(k, _, _)| k != key);
        let e = Object::new();
        let _ = Reflect::set(&e, &"k".into(), &bytes_value(key));
        #[allow(clippy::cast_precision_loss, reason = "millisecond timestamps fit an f64 exactly")]
        let _ = Reflect::set(&e, &"t".into(), &JsValue::from(*at as f64));
        // A direct chat's peer, as the `contacts` key, so the start script reads only the
        // names it shows.
        if let Some(peer) = peer {
            let _ = Reflect::set(&e, &"a".into(), &account_key(peer));
        }
        if let Some(n) = name {
            let _ = Reflect::set(&e, &"n".into(), &JsValue::from_str(n));
        }
        for field in ["m", "u"] {
            let _ = Reflect::set(
                &e,
                &field.into(),
                &Reflect::get(value, &field.into()).unwrap_or_default(),
            );
        }
        entries.push((key.clone(), *at, e.into()));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.1));
    entries.truncate(RECENT_LEN);
    entries.into_iter().map(|(_, _, e)| e).collect::<js_sys::Array>().into()
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

pub(super) fn summary_value(last: &MessageRecord, unread: u32) -> Result<JsValue, StoreError> {
    let o = Object::new();
    let set = |k: &str, v: &JsValue| {
        Reflect::set(&o, &k.into(), v).map(|_| ()).map_err(|_| backend("cannot build a summary"))
    };
    set("m", &bytes_value(&last.to_bytes()))?;
    set("u", &JsValue::from(unread))?;
    Ok(o.into())
}

impl ConversationSummary {
    /// Parses a stored `conversations` value (as the page's start script reads them).
    pub fn from_stored(v: &JsValue) -> Result<Self, StoreError> {
        let (last, unread) = summary_from_value(v)?;
        Ok(Self { conversation: last.conversation, last, unread })
    }
}

/// Parses the stored `contacts` keys and values (account id text → handle).
pub fn contacts_from_stored(keys: &[JsValue], values: &[JsValue]) -> HashMap<AccountId, String> {
    keys.iter()
        .zip(values)
        .filter_map(|(k, v)| {
            let id = k.as_string()?;
            let bytes = hex::decode(id).ok()?;
            Some((AccountId::from_bytes(&bytes).ok()?, v.as_string()?))
        })
        .collect()
}

pub(super) fn summary_from_value(v: &JsValue) -> Result<(MessageRecord, u32), StoreError> {
    let m = Reflect::get(v, &"m".into()).map_err(|_| corrupt("conversation", "no message"))?;
    let last = MessageRecord::from_bytes(&value_bytes("conversation", &m)?)
        .map_err(|e| corrupt("conversation", e))?;
    let unread = Reflect::get(v, &"u".into())
        .ok()
        .and_then(|u| u.as_f64())
        .ok_or_else(|| corrupt("conversation", "no unread count"))?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a stored count")]
    Ok((last, unread.max(0.0) as u32))
}

//! The chat list's read model as the browser stores it: the record keys of `local`, and the
//! summaries and recent list of [`tandem_core::store::read_model`].

use super::*;

pub(super) const IDENTITY_KEY: &str = "identity";
pub(super) const REGISTRATION_KEY: &str = "registration";
pub(super) const ACCOUNT_KEY: &str = "account";
/// Key in `local` of the data key ring (see [`crate::store::seal`]); never sealed.
pub(super) const KEYS_KEY: &str = "keys";
/// Key in `local` of the newest chats, for the start snapshot: a sealed [`StoredRecent`],
/// newest first, at most [`RECENT_LEN`](tandem_core::store::read_model::RECENT_LEN).
pub(super) const RECENT_KEY: &str = "recent";
pub use tandem_core::store::read_model::ConversationSummary;
pub(super) use tandem_core::store::read_model::{
    Fresh, StoredRecent, StoredSummary, merge_recent, summary_value,
};

/// How a stored message counts in its chat's summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Counted {
    /// Unread.
    pub(super) unread: bool,
    /// Unread and mentioning this account's `handle`.
    pub(super) mention: bool,
}

/// How `m` counts for the account whose handle is `handle` (mentions uncounted while the
/// handle is not known yet).
pub(super) fn counted(m: &MessageRecord, handle: Option<&str>) -> Counted {
    let unread = m.is_unread();
    let mention = unread && handle.is_some_and(|h| crate::text::mentions(&m.body, h));
    Counted { unread, mention }
}

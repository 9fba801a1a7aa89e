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

pub(super) fn is_unread(m: &MessageRecord) -> bool {
    m.is_unread()
}

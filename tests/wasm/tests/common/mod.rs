//! Records the browser test suites share.

use tandem_core::client::{Conversation, MessageId, MessageRecord, OutgoingState};
use tandem_core::{AccountId, DeviceId, Timestamp};

/// A database name no other test run uses: `tandem-{what}-` and 12 random hex digits.
pub(crate) fn fresh_db_name(what: &str) -> String {
    let tag: String =
        tandem_web::rng::random_bytes::<6>().iter().map(|b| format!("{b:02x}")).collect();
    format!("tandem-{what}-{tag}")
}

/// An unread direct message from `sender`'s primary device, stamped and stored at
/// `timestamp`.
pub(crate) fn incoming(
    sender: AccountId,
    timestamp: u64,
    body: impl Into<String>,
) -> MessageRecord {
    MessageRecord {
        id: MessageId { sender, device: DeviceId::PRIMARY, timestamp },
        conversation: Conversation::Direct(sender),
        body: body.into(),
        outgoing: false,
        state: OutgoingState::Sent,
        stored_at: Timestamp::from_millis(timestamp),
        delivered_to: Default::default(),
        read_by: Default::default(),
        server_time: None,
        notice: None,
        local_id: None,
        quote: None,
        audience: 0,
    }
}

//! Sending, queues and delivery.

/// Most envelopes in one 1:1 send (5 devices of the recipient + 4 own companions, with room).
pub const MAX_MESSAGES_PER_SEND: usize = 16;
/// Largest ciphertext accepted per device.
pub const MAX_CONTENT_LEN: usize = 64 * 1024;

/// One ciphertext for one device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OutgoingMessage {
    /// The device's account (the recipient, or the sender's own account).
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// The device.
    #[prost(uint32, tag = "2")]
    pub device_id: u32,
    /// The registration id the sender's session has for it (stale ones are reported).
    #[prost(uint32, tag = "3")]
    pub registration_id: u32,
    /// 2 = Signal message, 3 = PreKey message.
    #[prost(uint32, tag = "4")]
    pub r#type: u32,
    /// The ciphertext.
    #[prost(bytes = "vec", tag = "5")]
    pub content: Vec<u8>,
}

/// A 1:1 message: one ciphertext per current device of `recipient` and per current device
/// of the sender's account other than the sending one. Accepted only for exactly that set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SendMessages {
    /// The recipient account.
    #[prost(bytes = "vec", tag = "1")]
    pub recipient: Vec<u8>,
    /// The sender's timestamp, which also identifies the message.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// The ciphertexts.
    #[prost(message, repeated, tag = "3")]
    pub messages: Vec<OutgoingMessage>,
}

/// The send was stored durably for every device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sent {
    /// The server's clock when it accepted the send.
    #[prost(uint64, tag = "1")]
    pub server_timestamp_ms: u64,
    /// How many device queues received a copy.
    #[prost(uint32, tag = "2")]
    pub copies: u32,
}

/// Why a send was refused: per account, the devices missing from it, the extra ones, and
/// those whose registration id is stale (re-fetch their bundles).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MismatchedDevices {
    /// One entry per account with a mismatch.
    #[prost(message, repeated, tag = "1")]
    pub accounts: Vec<AccountMismatch>,
}

/// The device mismatch for one account.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AccountMismatch {
    /// The account.
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// Current devices the send left out.
    #[prost(uint32, repeated, tag = "2")]
    pub missing: Vec<u32>,
    /// Devices in the send that are not current.
    #[prost(uint32, repeated, tag = "3")]
    pub extra: Vec<u32>,
    /// Devices whose registration id changed.
    #[prost(uint32, repeated, tag = "4")]
    pub stale: Vec<u32>,
}

/// A message waiting in this device's queue.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// The queue position; acknowledge with it.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The sending account.
    #[prost(bytes = "vec", tag = "2")]
    pub source_account: Vec<u8>,
    /// The sending device.
    #[prost(uint32, tag = "3")]
    pub source_device: u32,
    /// 2, 3 (pairwise) or 7 (sender key).
    #[prost(uint32, tag = "4")]
    pub r#type: u32,
    /// The ciphertext.
    #[prost(bytes = "vec", tag = "5")]
    pub content: Vec<u8>,
    /// The sender's timestamp.
    #[prost(uint64, tag = "6")]
    pub client_timestamp: u64,
    /// When the server accepted it.
    #[prost(uint64, tag = "7")]
    pub server_timestamp: u64,
    /// For a group message: the group.
    #[prost(bytes = "vec", tag = "8")]
    pub group_id: Vec<u8>,
}

/// Everything queued at authentication time was pushed.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QueueDrained {
    /// How many envelopes were pushed.
    #[prost(uint64, tag = "1")]
    pub count: u64,
}

/// Messages that expired undelivered.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExpiredMessages {
    /// One per expired envelope.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<ExpiredEntry>,
}

/// One expired envelope (no content).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExpiredEntry {
    /// The sending account.
    #[prost(bytes = "vec", tag = "1")]
    pub source_account: Vec<u8>,
    /// The sending device.
    #[prost(uint32, tag = "2")]
    pub source_device: u32,
    /// The sender's timestamp.
    #[prost(uint64, tag = "3")]
    pub client_timestamp: u64,
    /// For a group message: the group.
    #[prost(bytes = "vec", tag = "4")]
    pub group_id: Vec<u8>,
}

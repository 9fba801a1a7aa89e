//! What travels inside the encryption: one [`Content`] per message, padded.
//!
//! Padding: the serialized `Content` is followed by `0x80` and zero bytes up to a multiple
//! of [`PADDING_BLOCK`], so ciphertext lengths reveal only a coarse size.

use prost::Message;

use super::WireError;

/// Plaintexts are padded to a multiple of this many bytes.
pub const PADDING_BLOCK: usize = 160;
/// Largest content accepted after unpadding.
pub const MAX_CONTENT_LEN: usize = 64 * 1024;

/// The plaintext of every pairwise or group message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Content {
    /// What it is.
    #[prost(oneof = "content::Body", tags = "1, 2, 3, 4, 5, 6")]
    pub body: Option<content::Body>,
}

/// The variants of [`Content`].
#[allow(clippy::module_inception)]
pub mod content {
    /// What a content carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Body {
        /// A message people read.
        #[prost(message, tag = "1")]
        Data(super::DataMessage),
        /// Something for the sender's own other devices.
        #[prost(message, tag = "2")]
        Sync(super::SyncMessage),
        /// Delivery or read receipts.
        #[prost(message, tag = "3")]
        Receipt(super::ReceiptMessage),
        /// A sender key for a group (`SenderKeyDistributionMessage` bytes).
        #[prost(bytes, tag = "4")]
        SenderKeyDistribution(Vec<u8>),
        /// A group's new signed state (`SignedGroupState` bytes), sent by the device that
        /// signed it to every member (old and new) and to its own account's devices.
        #[prost(bytes, tag = "5")]
        GroupUpdate(Vec<u8>),
        /// Call signalling (offer, answer, ICE candidates, hangup), pairwise only.
        #[prost(message, tag = "6")]
        Call(super::CallMessage),
    }
}

/// One step of a call's signalling. Every device of both accounts gets each step (client
/// fan-out); the copies for the sender's own other devices say whom the call is with.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallMessage {
    /// The call, chosen at random by the caller.
    #[prost(uint64, tag = "1")]
    pub call_id: u64,
    /// In the copies for the sender's own devices: the other party's account.
    #[prost(bytes = "vec", tag = "2")]
    pub peer: Vec<u8>,
    /// What this step is.
    #[prost(oneof = "call_message::Kind", tags = "3, 4, 5, 6, 7, 8")]
    pub kind: Option<call_message::Kind>,
}

/// The variants of [`CallMessage`].
pub mod call_message {
    /// What a call step carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// The caller's offer.
        #[prost(message, tag = "3")]
        Offer(super::CallOffer),
        /// The answering device's answer.
        #[prost(message, tag = "4")]
        Answer(super::CallAnswer),
        /// ICE candidates (trickle).
        #[prost(message, tag = "5")]
        Ice(super::CallIce),
        /// The call ends (or is refused).
        #[prost(message, tag = "6")]
        Hangup(super::CallHangup),
        /// The sender's microphone or camera was turned off or on.
        #[prost(message, tag = "7")]
        Media(super::CallMedia),
        /// A new offer or answer for a connected call (an ICE restart after a network change).
        #[prost(message, tag = "8")]
        Renegotiate(super::CallRenegotiate),
    }
}

/// A call offer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallOffer {
    /// The caller's SDP offer.
    #[prost(string, tag = "1")]
    pub sdp: String,
    /// The SHA-256 fingerprint of the caller's DTLS certificate (32 bytes): the peer
    /// connection's remote certificate must have it.
    #[prost(bytes = "vec", tag = "2")]
    pub fingerprint: Vec<u8>,
    /// Whether the caller sends video.
    #[prost(bool, tag = "3")]
    pub video: bool,
    /// The 32-byte master secret for this callee device (empty in the copies for the
    /// caller's own devices).
    #[prost(bytes = "vec", tag = "4")]
    pub secret: Vec<u8>,
    /// When the caller placed the call (its corrected clock, milliseconds): with the caller's
    /// account and device it names the call's line in the conversation on every device, and
    /// an offer older than the ringing time no longer rings.
    #[prost(uint64, tag = "5")]
    pub timestamp: u64,
}

/// A call answer, from the callee device that took the call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallAnswer {
    /// The callee's SDP answer.
    #[prost(string, tag = "1")]
    pub sdp: String,
    /// The SHA-256 fingerprint of the callee's DTLS certificate (32 bytes).
    #[prost(bytes = "vec", tag = "2")]
    pub fingerprint: Vec<u8>,
    /// The caller's device the call was offered from.
    #[prost(uint32, tag = "3")]
    pub caller_device: u32,
    /// Whether the callee sends video.
    #[prost(bool, tag = "4")]
    pub video: bool,
}

/// ICE candidates for the device at the other end of the call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallIce {
    /// The device they are for (the other end's).
    #[prost(uint32, tag = "1")]
    pub to_device: u32,
    /// Each an `RTCIceCandidateInit` as JSON; an empty string marks the end of candidates.
    #[prost(string, repeated, tag = "2")]
    pub candidates: Vec<String>,
    /// The ICE generation (0, then one more per ICE restart).
    #[prost(uint32, tag = "3")]
    pub generation: u32,
}

/// What the sender of a connected call sends now, for the other end's screen.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallMedia {
    /// The device it is for (the other end's).
    #[prost(uint32, tag = "1")]
    pub to_device: u32,
    /// The microphone is off.
    #[prost(bool, tag = "2")]
    pub muted: bool,
    /// The camera is off (or the call has none).
    #[prost(bool, tag = "3")]
    pub camera_off: bool,
}

/// A renegotiation of a connected call: the caller's device sends a new offer (an ICE
/// restart), the callee's device its answer. The DTLS certificates stay the ones the first
/// offer and answer named.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallRenegotiate {
    /// The device it is for (the other end's).
    #[prost(uint32, tag = "1")]
    pub to_device: u32,
    /// The new SDP.
    #[prost(string, tag = "2")]
    pub sdp: String,
    /// An offer (else an answer).
    #[prost(bool, tag = "3")]
    pub offer: bool,
    /// The ICE generation it starts (one more per restart).
    #[prost(uint32, tag = "4")]
    pub generation: u32,
}

/// Why a call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HangupReason {
    /// Not set: read as a normal hangup.
    Unspecified = 0,
    /// Someone hung up.
    Normal = 1,
    /// The callee declined.
    Declined = 2,
    /// The callee is in another call.
    Busy = 3,
    /// Another device of the callee took the call.
    AnsweredElsewhere = 4,
    /// Nobody answered in time.
    Timeout = 5,
    /// A device of the callee declined it.
    DeclinedElsewhere = 6,
    /// The call's end-to-end check failed (a DTLS fingerprint that does not match).
    SecurityFailure = 7,
}

/// The end of a call.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CallHangup {
    /// Why.
    #[prost(enumeration = "HangupReason", tag = "1")]
    pub reason: i32,
    /// For [`HangupReason::AnsweredElsewhere`]: the device that answered.
    #[prost(uint32, tag = "2")]
    pub device: u32,
}

/// A message people read.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DataMessage {
    /// The text.
    #[prost(string, tag = "1")]
    pub body: String,
    /// The sender's timestamp; with the sender's account it identifies the message.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// For a group message: the group.
    #[prost(bytes = "vec", tag = "3")]
    pub group_id: Vec<u8>,
    /// For a reply: the message it answers.
    #[prost(message, optional, tag = "4")]
    pub quote: Option<QuotedMessage>,
}

/// The message a reply answers, in the same conversation.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuotedMessage {
    /// Its sender's account (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub author: Vec<u8>,
    /// Its sender's device.
    #[prost(uint32, tag = "2")]
    pub author_device: u32,
    /// Its timestamp.
    #[prost(uint64, tag = "3")]
    pub timestamp: u64,
    /// The start of its text (at most 200 bytes), shown where the reader lacks the message.
    #[prost(string, tag = "4")]
    pub text: String,
}

/// For the sender's own devices.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SyncMessage {
    /// What it is.
    #[prost(oneof = "sync_message::Kind", tags = "1, 2, 3")]
    pub kind: Option<sync_message::Kind>,
}

/// The variants of [`SyncMessage`].
pub mod sync_message {
    /// What a sync message carries.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        /// A message this account sent from another device.
        #[prost(message, tag = "1")]
        Sent(super::SentTranscript),
        /// Messages this account read on another device.
        #[prost(message, tag = "2")]
        Read(super::ReadSync),
        /// The person answered a group's invitation on another device.
        #[prost(message, tag = "3")]
        GroupAnswer(super::GroupAnswer),
    }
}

/// A copy of a sent message for the sender's other devices.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SentTranscript {
    /// The recipient account (empty for a group message).
    #[prost(bytes = "vec", tag = "1")]
    pub destination: Vec<u8>,
    /// The message.
    #[prost(message, optional, tag = "2")]
    pub message: Option<DataMessage>,
}

/// The answer to a group's invitation, given on another device of this account.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GroupAnswer {
    /// The group (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub group_id: Vec<u8>,
    /// Joined, else declined.
    #[prost(bool, tag = "2")]
    pub accept: bool,
}

/// Messages read on another device.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadSync {
    /// Which ones.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<ReadEntry>,
}

/// One read message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadEntry {
    /// Its sender account.
    #[prost(bytes = "vec", tag = "1")]
    pub sender: Vec<u8>,
    /// Its timestamp.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
    /// The device that sent it.
    #[prost(uint32, tag = "3")]
    pub sender_device: u32,
}

/// A message of the receipt's recipient: the device that sent it and its timestamp.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MessageRef {
    /// The sending device.
    #[prost(uint32, tag = "1")]
    pub device: u32,
    /// The sender's timestamp.
    #[prost(uint64, tag = "2")]
    pub timestamp: u64,
}

/// What a receipt says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ReceiptType {
    /// Not set: ignored.
    Unspecified = 0,
    /// The device received the messages.
    Delivery = 1,
    /// The person read them.
    Read = 2,
}

/// Receipts for messages from the receipt's recipient.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReceiptMessage {
    /// Delivery or read.
    #[prost(enumeration = "ReceiptType", tag = "1")]
    pub r#type: i32,
    /// The messages.
    #[prost(message, repeated, tag = "2")]
    pub messages: Vec<MessageRef>,
}

impl Content {
    /// Serializes and pads.
    pub fn to_padded_bytes(&self) -> Vec<u8> {
        let mut out = self.encode_to_vec();
        out.push(0x80);
        let padded = out.len().div_ceil(PADDING_BLOCK) * PADDING_BLOCK;
        out.resize(padded, 0);
        out
    }

    /// Removes padding and parses.
    pub fn from_padded_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let what = "Content";
        let end = bytes
            .iter()
            .rposition(|&b| b != 0)
            .filter(|&i| bytes[i] == 0x80)
            .ok_or(WireError::Malformed { what, reason: "bad padding".into() })?;
        super::decode_bounded(what, &bytes[..end], MAX_CONTENT_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_padding_roundtrip_and_lengths() {
        for len in [0usize, 1, 150, 158, 159, 160, 400] {
            let c = Content {
                body: Some(content::Body::Data(DataMessage {
                    body: "x".repeat(len),
                    timestamp: 1,
                    group_id: vec![],
                    quote: None,
                })),
            };
            let padded = c.to_padded_bytes();
            assert_eq!(padded.len() % PADDING_BLOCK, 0);
            assert_eq!(Content::from_padded_bytes(&padded).unwrap(), c);
        }
        assert!(Content::from_padded_bytes(&[]).is_err());
        assert!(Content::from_padded_bytes(&[0; 160]).is_err());
        assert!(Content::from_padded_bytes(&[1, 2, 0]).is_err());
    }
}

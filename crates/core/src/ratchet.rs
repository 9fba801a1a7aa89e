//! The state the protocol keeps between messages, apart from the operations on it: the
//! Double Ratchet's chain and root keys, session states and records, and sender-key records.
//! The store traits hold these records, and the session and sender-key operations read
//! and return them, so they sit below both.

pub(crate) mod chain;
pub(crate) mod sender_key;
pub(crate) mod session_record;
pub(crate) mod state;

/// A group distribution id (a UUID: one per group and sending device).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DistributionId(pub [u8; 16]);

//! Error types: the crate-wide [`Error`] and [`ProtocolError`] for Signal operations.

use crate::address::ProtocolAddress;
use crate::codec::WireError;
use crate::crypto::CryptoError;
use crate::ids::{KyberPreKeyId, PreKeyId, SignedPreKeyId};

/// Everything that can go wrong in `tandem-core`.
///
/// `Display` never contains plaintext, key material or account identifiers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cryptographic operation failed (bad key, bad signature, bad MAC, ...).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Bytes from the network or storage did not parse.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A Signal protocol operation failed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a session, sender-key or bundle operation failed. Each threat has its own variant,
/// so callers (and tests) can tell a replay from a forgery from a bug.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The peer presented an identity key other than the one trusted for its address.
    /// The address is kept for the caller but never printed.
    #[error("the identity key of a contact's device changed")]
    UntrustedIdentity(ProtocolAddress),
    /// A prekey bundle's signed prekey or Kyber prekey signature does not verify under its
    /// identity key: the bundle was forged or corrupted.
    #[error("prekey bundle has an invalid {which} signature")]
    InvalidBundleSignature {
        /// `"signed prekey"` or `"Kyber prekey"`.
        which: &'static str,
    },
    /// The MAC of a message does not verify: it was tampered with, or is for another session.
    #[error("message authentication failed")]
    BadMac,
    /// The message was already decrypted (replay or duplicate delivery).
    #[error("duplicate message (counter {counter}, chain already at {chain_index})")]
    DuplicatedMessage {
        /// The chain index reached so far.
        chain_index: u32,
        /// The message's counter.
        counter: u32,
    },
    /// The message claims to be further ahead in its chain than any honest sender gets.
    #[error("message is {jump} steps ahead of its chain, more than the limit of {limit}")]
    TooFarIntoFuture {
        /// How far ahead.
        jump: u32,
        /// The allowed maximum.
        limit: u32,
    },
    /// The message is from a protocol version this implementation does not speak.
    #[error("unsupported message version {0}")]
    UnsupportedVersion(u8),
    /// No session exists with this address (or none can decrypt the message).
    #[error("no session with this device")]
    NoSession,
    /// The session was never acknowledged by the peer and is too old to keep using.
    #[error("the session was never answered and has expired; fetch a new prekey bundle")]
    StaleSession,
    /// A PreKey message names a one-time prekey this device does not have (used or never made).
    #[error("unknown one-time prekey {0:?}")]
    MissingPreKey(PreKeyId),
    /// A PreKey message names a signed prekey this device does not have.
    #[error("unknown signed prekey {0:?}")]
    MissingSignedPreKey(SignedPreKeyId),
    /// A PreKey message names a Kyber prekey this device does not have.
    #[error("unknown Kyber prekey {0:?}")]
    MissingKyberPreKey(KyberPreKeyId),
    /// A PreKey message reuses a (Kyber prekey, base key) pair already consumed: a replay.
    #[error("prekey message replayed")]
    ReplayedPreKeyMessage,
    /// A base key is not a canonical curve point.
    #[error("invalid base key")]
    InvalidBaseKey,
    /// A message is structurally wrong (missing field, bad key, wrong length).
    #[error("invalid message: {0}")]
    InvalidMessage(&'static str),
    /// No sender-key state for this sender, distribution and chain.
    #[error("no sender key state for this sender and chain")]
    NoSenderKeyState,
    /// A sender-key message's signature does not verify.
    #[error("sender key message signature is invalid")]
    SignatureValidationFailed,
    /// A cryptographic primitive failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Bytes did not parse.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (I/O, IndexedDB, SQL). JS errors are converted to owned strings.
    #[error("storage backend failed: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// A stored record does not parse.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt {
        /// Which record family.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The store has no identity yet (the device was never set up).
    #[error("this device has no identity key yet")]
    NoIdentity,
    /// A batch holding an encryption was refused: the chain it advanced moved on since the
    /// encryption read it (another encryption on it was saved, or two were combined).
    /// Nothing of the batch was saved and its messages were dropped: encrypt again.
    #[error("{0} moved on since this encryption read it; nothing was saved: encrypt again")]
    ChainMoved(String),
}

impl StoreError {
    /// Wraps a backend error.
    pub fn backend(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Backend(e.into())
    }
}

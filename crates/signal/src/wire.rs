//! libsignal's message formats, byte for byte (see `tests/vectors/README.md` §2.6–2.10).
//!
//! Each type keeps the exact bytes it was parsed from (or serialized to): MACs and
//! signatures cover those bytes, including fields this implementation ignores
//! (`pq_ratchet`, field 5 of `SignalMessage`).

use prost::Message;
use subtle::ConstantTimeEq;

pub use crate::codec::{WireError, decode_bounded};

use crate::crypto::{KyberCiphertext, PrivateKey, PublicKey, hmac_sha256};
use crate::error::ProtocolError;
use crate::identity::IdentityKey;
use crate::prekeys::{KyberPreKeyId, PreKeyId, SignedPreKeyId};

/// The message version of PQXDH sessions.
pub const CIPHERTEXT_MESSAGE_VERSION: u8 = 4;
/// The version byte of sender-key messages: `(3 << 4) | 3`.
pub const SENDER_KEY_VERSION_BYTE: u8 = 0x33;
/// Length of the truncated MAC on a `SignalMessage`.
pub const MAC_LENGTH: usize = 8;
/// The largest Signal message accepted (the relay's frame limit bounds it anyway).
pub const MAX_MESSAGE_LENGTH: usize = 256 * 1024;

/// `CiphertextMessageType` numbers, as libsignal and Signal's servers use them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CiphertextMessageType {
    /// A `SignalMessage` on an established session ("Whisper").
    Whisper = 2,
    /// A `PreKeySignalMessage` that starts (or repeats the start of) a session.
    PreKey = 3,
    /// A `SenderKeyMessage` for a group.
    SenderKey = 7,
}

impl TryFrom<u32> for CiphertextMessageType {
    type Error = ProtocolError;

    /// Reads a type number off the wire; one libsignal does not define is an error.
    fn try_from(number: u32) -> Result<Self, ProtocolError> {
        match number {
            2 => Ok(Self::Whisper),
            3 => Ok(Self::PreKey),
            7 => Ok(Self::SenderKey),
            _ => Err(ProtocolError::InvalidMessage("unknown ciphertext message type")),
        }
    }
}

impl From<CiphertextMessageType> for u32 {
    fn from(kind: CiphertextMessageType) -> u32 {
        kind as u32
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct SignalMessageProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    ratchet_key: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    counter: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    previous_counter: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    ciphertext: Option<Vec<u8>>,
    /// SPQR's message. Never written by this implementation (libsignal 0.90 would parse it
    /// as SPQR); on input it is ignored but stays covered by the MAC.
    #[prost(bytes = "vec", optional, tag = "5")]
    pq_ratchet: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PreKeySignalMessageProto {
    #[prost(uint32, optional, tag = "1")]
    pre_key_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    base_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "3")]
    identity_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "4")]
    message: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "5")]
    registration_id: Option<u32>,
    #[prost(uint32, optional, tag = "6")]
    signed_pre_key_id: Option<u32>,
    #[prost(uint32, optional, tag = "7")]
    kyber_pre_key_id: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "8")]
    kyber_ciphertext: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SenderKeyMessageProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    distribution_uuid: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    chain_id: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    iteration: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    ciphertext: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SenderKeyDistributionMessageProto {
    #[prost(bytes = "vec", optional, tag = "1")]
    distribution_uuid: Option<Vec<u8>>,
    #[prost(uint32, optional, tag = "2")]
    chain_id: Option<u32>,
    #[prost(uint32, optional, tag = "3")]
    iteration: Option<u32>,
    #[prost(bytes = "vec", optional, tag = "4")]
    chain_key: Option<Vec<u8>>,
    #[prost(bytes = "vec", optional, tag = "5")]
    signing_key: Option<Vec<u8>>,
}

fn version_of(byte: u8) -> Result<u8, ProtocolError> {
    let version = byte >> 4;
    if !(3..=4).contains(&version) {
        return Err(ProtocolError::UnsupportedVersion(version));
    }
    Ok(version)
}

fn check_len(bytes: &[u8], min: usize) -> Result<(), ProtocolError> {
    if bytes.len() > MAX_MESSAGE_LENGTH {
        return Err(ProtocolError::InvalidMessage("message too long"));
    }
    if bytes.len() < min {
        return Err(ProtocolError::InvalidMessage("message too short"));
    }
    Ok(())
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, ProtocolError> {
    M::decode(bytes).map_err(|_| ProtocolError::InvalidMessage("protobuf does not parse"))
}

fn key(bytes: Option<Vec<u8>>, missing: &'static str) -> Result<PublicKey, ProtocolError> {
    let bytes = bytes.ok_or(ProtocolError::InvalidMessage(missing))?;
    Ok(PublicKey::from_bytes(&bytes)?)
}

/// A message on an established session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalMessage {
    message_version: u8,
    ratchet_key: PublicKey,
    counter: u32,
    previous_counter: u32,
    ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

impl SignalMessage {
    /// Builds and MACs a message: `version ‖ protobuf ‖ HMAC(mac_key, sender ‖ receiver ‖
    /// version ‖ protobuf)[..8]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        message_version: u8,
        mac_key: &[u8; 32],
        ratchet_key: PublicKey,
        counter: u32,
        previous_counter: u32,
        ciphertext: Vec<u8>,
        sender_identity: &IdentityKey,
        receiver_identity: &IdentityKey,
    ) -> Self {
        Self::build(
            message_version,
            mac_key,
            ratchet_key,
            (counter, previous_counter),
            ciphertext,
            None,
            sender_identity,
            receiver_identity,
        )
    }

    /// Like [`new`](Self::new) with a `pq_ratchet` field: only for reproducing libsignal's
    /// bytes in tests (libsignal 0.90 would treat it as SPQR).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        message_version: u8,
        mac_key: &[u8; 32],
        ratchet_key: PublicKey,
        (counter, previous_counter): (u32, u32),
        ciphertext: Vec<u8>,
        pq_ratchet: Option<Vec<u8>>,
        sender_identity: &IdentityKey,
        receiver_identity: &IdentityKey,
    ) -> Self {
        let proto = SignalMessageProto {
            ratchet_key: Some(ratchet_key.serialize().to_vec()),
            counter: Some(counter),
            previous_counter: Some(previous_counter),
            ciphertext: Some(ciphertext.clone()),
            pq_ratchet,
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len() + MAC_LENGTH);
        serialized.push((message_version << 4) | CIPHERTEXT_MESSAGE_VERSION);
        proto.encode(&mut serialized).unwrap_or_default();
        let mac = Self::compute_mac(sender_identity, receiver_identity, mac_key, &serialized);
        serialized.extend_from_slice(&mac);
        Self { message_version, ratchet_key, counter, previous_counter, ciphertext, serialized }
    }

    /// Parses a serialized message. Unknown fields (SPQR's `pq_ratchet`) are ignored but stay
    /// in the MACed bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        check_len(bytes, 1 + MAC_LENGTH)?;
        let message_version = version_of(bytes[0])?;
        let proto: SignalMessageProto = decode(&bytes[1..bytes.len() - MAC_LENGTH])?;
        let ratchet_key = key(proto.ratchet_key, "missing ratchet key")?;
        let counter = proto.counter.ok_or(ProtocolError::InvalidMessage("missing counter"))?;
        let ciphertext =
            proto.ciphertext.ok_or(ProtocolError::InvalidMessage("missing ciphertext"))?;
        Ok(Self {
            message_version,
            ratchet_key,
            counter,
            previous_counter: proto.previous_counter.unwrap_or(0),
            ciphertext,
            serialized: bytes.to_vec(),
        })
    }

    fn compute_mac(
        sender: &IdentityKey,
        receiver: &IdentityKey,
        mac_key: &[u8; 32],
        message: &[u8],
    ) -> [u8; MAC_LENGTH] {
        let full = hmac_sha256(mac_key, &[&sender.serialize(), &receiver.serialize(), message]);
        let mut out = [0u8; MAC_LENGTH];
        out.copy_from_slice(&full[..MAC_LENGTH]);
        out
    }

    /// Checks the MAC in constant time.
    pub fn verify_mac(
        &self,
        sender: &IdentityKey,
        receiver: &IdentityKey,
        mac_key: &[u8; 32],
    ) -> bool {
        let (body, mac) = self.serialized.split_at(self.serialized.len() - MAC_LENGTH);
        let expected = Self::compute_mac(sender, receiver, mac_key, body);
        bool::from(expected.ct_eq(mac))
    }

    /// The message version (high nibble of the first byte).
    pub fn message_version(&self) -> u8 {
        self.message_version
    }
    /// The sender's ratchet key.
    pub fn ratchet_key(&self) -> &PublicKey {
        &self.ratchet_key
    }
    /// The index in the sending chain.
    pub fn counter(&self) -> u32 {
        self.counter
    }
    /// The length of the sender's previous chain.
    pub fn previous_counter(&self) -> u32 {
        self.previous_counter
    }
    /// The AES-CBC body.
    pub fn body(&self) -> &[u8] {
        &self.ciphertext
    }
    /// The wire bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }

    /// The `pq_ratchet` bytes a libsignal sender included (tests reproduce them).
    #[cfg(test)]
    pub(crate) fn pq_ratchet_for_tests(&self) -> Option<Vec<u8>> {
        let body = &self.serialized[1..self.serialized.len() - MAC_LENGTH];
        SignalMessageProto::decode(body).ok().and_then(|p| p.pq_ratchet)
    }
}

/// The first message(s) of a session: PQXDH parameters plus a `SignalMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreKeySignalMessage {
    message_version: u8,
    registration_id: u32,
    pre_key_id: Option<PreKeyId>,
    signed_pre_key_id: SignedPreKeyId,
    kyber_pre_key_id: KyberPreKeyId,
    kyber_ciphertext: KyberCiphertext,
    base_key: PublicKey,
    identity_key: IdentityKey,
    message: SignalMessage,
    serialized: Vec<u8>,
}

impl PreKeySignalMessage {
    /// Builds a message (fields written in field-number order, as libsignal does).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        message_version: u8,
        registration_id: u32,
        pre_key_id: Option<PreKeyId>,
        signed_pre_key_id: SignedPreKeyId,
        kyber_pre_key_id: KyberPreKeyId,
        kyber_ciphertext: KyberCiphertext,
        base_key: PublicKey,
        identity_key: IdentityKey,
        message: SignalMessage,
    ) -> Self {
        let proto = PreKeySignalMessageProto {
            pre_key_id: pre_key_id.map(|id| id.0),
            base_key: Some(base_key.serialize().to_vec()),
            identity_key: Some(identity_key.serialize().to_vec()),
            message: Some(message.serialized().to_vec()),
            registration_id: Some(registration_id),
            signed_pre_key_id: Some(signed_pre_key_id.0),
            kyber_pre_key_id: Some(kyber_pre_key_id.0),
            kyber_ciphertext: Some(kyber_ciphertext.serialize()),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len());
        serialized.push((message_version << 4) | CIPHERTEXT_MESSAGE_VERSION);
        proto.encode(&mut serialized).unwrap_or_default();
        Self {
            message_version,
            registration_id,
            pre_key_id,
            signed_pre_key_id,
            kyber_pre_key_id,
            kyber_ciphertext,
            base_key,
            identity_key,
            message,
            serialized,
        }
    }

    /// Parses a serialized message. Version 4 requires the Kyber fields.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        check_len(bytes, 1)?;
        let message_version = version_of(bytes[0])?;
        if message_version != CIPHERTEXT_MESSAGE_VERSION {
            // Version 3 (X3DH without Kyber) is gone from libsignal since 0.75.
            return Err(ProtocolError::UnsupportedVersion(message_version));
        }
        let proto: PreKeySignalMessageProto = decode(&bytes[1..])?;
        let base_key = key(proto.base_key, "missing base key")?;
        let identity_key = IdentityKey::new(key(proto.identity_key, "missing identity key")?);
        let inner = proto.message.ok_or(ProtocolError::InvalidMessage("missing inner message"))?;
        let message = SignalMessage::from_bytes(&inner)?;
        if message.message_version() != message_version {
            return Err(ProtocolError::InvalidMessage("inner message version differs"));
        }
        let signed_pre_key_id = proto
            .signed_pre_key_id
            .ok_or(ProtocolError::InvalidMessage("missing signed prekey id"))?;
        let (Some(kyber_id), Some(kyber_ct)) = (proto.kyber_pre_key_id, proto.kyber_ciphertext)
        else {
            return Err(ProtocolError::InvalidMessage("missing Kyber prekey fields"));
        };
        Ok(Self {
            message_version,
            registration_id: proto.registration_id.unwrap_or(0),
            pre_key_id: proto.pre_key_id.map(PreKeyId),
            signed_pre_key_id: SignedPreKeyId(signed_pre_key_id),
            kyber_pre_key_id: KyberPreKeyId(kyber_id),
            kyber_ciphertext: KyberCiphertext::from_bytes(&kyber_ct)?,
            base_key,
            identity_key,
            message,
            serialized: bytes.to_vec(),
        })
    }

    /// The message version.
    pub fn message_version(&self) -> u8 {
        self.message_version
    }
    /// The sender's registration id.
    pub fn registration_id(&self) -> u32 {
        self.registration_id
    }
    /// The one-time prekey used, if any.
    pub fn pre_key_id(&self) -> Option<PreKeyId> {
        self.pre_key_id
    }
    /// The signed prekey used.
    pub fn signed_pre_key_id(&self) -> SignedPreKeyId {
        self.signed_pre_key_id
    }
    /// The Kyber prekey used.
    pub fn kyber_pre_key_id(&self) -> KyberPreKeyId {
        self.kyber_pre_key_id
    }
    /// The Kyber ciphertext.
    pub fn kyber_ciphertext(&self) -> &KyberCiphertext {
        &self.kyber_ciphertext
    }
    /// The sender's base key (identifies the session).
    pub fn base_key(&self) -> &PublicKey {
        &self.base_key
    }
    /// The sender's identity key.
    pub fn identity_key(&self) -> &IdentityKey {
        &self.identity_key
    }
    /// The inner message.
    pub fn message(&self) -> &SignalMessage {
        &self.message
    }
    /// The wire bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// A group message under a sender key, signed by the sender's signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderKeyMessage {
    distribution_id: [u8; 16],
    chain_id: u32,
    iteration: u32,
    ciphertext: Vec<u8>,
    serialized: Vec<u8>,
}

fn uuid(bytes: Option<Vec<u8>>) -> Result<[u8; 16], ProtocolError> {
    bytes
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .ok_or(ProtocolError::InvalidMessage("distribution id is not 16 bytes"))
}

impl SenderKeyMessage {
    /// Builds and signs a message.
    pub fn new(
        distribution_id: [u8; 16],
        chain_id: u32,
        iteration: u32,
        ciphertext: Vec<u8>,
        signing_key: &PrivateKey,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Self {
        let proto = SenderKeyMessageProto {
            distribution_uuid: Some(distribution_id.to_vec()),
            chain_id: Some(chain_id),
            iteration: Some(iteration),
            ciphertext: Some(ciphertext.clone()),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len() + 64);
        serialized.push(SENDER_KEY_VERSION_BYTE);
        proto.encode(&mut serialized).unwrap_or_default();
        let signature = signing_key.sign(&serialized, rng);
        serialized.extend_from_slice(&signature);
        Self { distribution_id, chain_id, iteration, ciphertext, serialized }
    }

    /// Parses a serialized message (the signature is checked by [`verify_signature`](Self::verify_signature)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        check_len(bytes, 1 + 64)?;
        if bytes[0] != SENDER_KEY_VERSION_BYTE {
            return Err(ProtocolError::UnsupportedVersion(bytes[0] >> 4));
        }
        let proto: SenderKeyMessageProto = decode(&bytes[1..bytes.len() - 64])?;
        Ok(Self {
            distribution_id: uuid(proto.distribution_uuid)?,
            chain_id: proto.chain_id.ok_or(ProtocolError::InvalidMessage("missing chain id"))?,
            iteration: proto.iteration.ok_or(ProtocolError::InvalidMessage("missing iteration"))?,
            ciphertext: proto
                .ciphertext
                .ok_or(ProtocolError::InvalidMessage("missing ciphertext"))?,
            serialized: bytes.to_vec(),
        })
    }

    /// Checks the signature under the sender's signing key.
    pub fn verify_signature(&self, signing_key: &PublicKey) -> Result<(), ProtocolError> {
        let (body, sig) = self.serialized.split_at(self.serialized.len() - 64);
        signing_key
            .verify_signature(body, sig)
            .map_err(|_| ProtocolError::SignatureValidationFailed)
    }

    /// The group distribution this message belongs to.
    pub fn distribution_id(&self) -> [u8; 16] {
        self.distribution_id
    }
    /// The sender's chain.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }
    /// The index in the chain.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }
    /// The AES-CBC body.
    pub fn body(&self) -> &[u8] {
        &self.ciphertext
    }
    /// The wire bytes.
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// Hands a sender's chain key and signing key to a group member (sent over a pairwise
/// session, never in the clear).
#[derive(Clone, PartialEq, Eq)]
pub struct SenderKeyDistributionMessage {
    distribution_id: [u8; 16],
    chain_id: u32,
    iteration: u32,
    chain_key: [u8; 32],
    signing_key: PublicKey,
    serialized: Vec<u8>,
}

impl std::fmt::Debug for SenderKeyDistributionMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyDistributionMessage")
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.iteration)
            .field("chain_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Drop for SenderKeyDistributionMessage {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.chain_key);
        zeroize::Zeroize::zeroize(&mut self.serialized);
    }
}

impl SenderKeyDistributionMessage {
    /// Builds a distribution message.
    pub fn new(
        distribution_id: [u8; 16],
        chain_id: u32,
        iteration: u32,
        chain_key: [u8; 32],
        signing_key: PublicKey,
    ) -> Self {
        let proto = SenderKeyDistributionMessageProto {
            distribution_uuid: Some(distribution_id.to_vec()),
            chain_id: Some(chain_id),
            iteration: Some(iteration),
            chain_key: Some(chain_key.to_vec()),
            signing_key: Some(signing_key.serialize().to_vec()),
        };
        let mut serialized = Vec::with_capacity(1 + proto.encoded_len());
        serialized.push(SENDER_KEY_VERSION_BYTE);
        proto.encode(&mut serialized).unwrap_or_default();
        Self { distribution_id, chain_id, iteration, chain_key, signing_key, serialized }
    }

    /// Parses a serialized message.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        check_len(bytes, 1)?;
        if bytes[0] != SENDER_KEY_VERSION_BYTE {
            return Err(ProtocolError::UnsupportedVersion(bytes[0] >> 4));
        }
        let mut proto: SenderKeyDistributionMessageProto = decode(&bytes[1..])?;
        let chain_key = proto
            .chain_key
            .take()
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or(ProtocolError::InvalidMessage("chain key is not 32 bytes"))?;
        Ok(Self {
            distribution_id: uuid(proto.distribution_uuid)?,
            chain_id: proto.chain_id.ok_or(ProtocolError::InvalidMessage("missing chain id"))?,
            iteration: proto.iteration.ok_or(ProtocolError::InvalidMessage("missing iteration"))?,
            chain_key,
            signing_key: key(proto.signing_key, "missing signing key")?,
            serialized: bytes.to_vec(),
        })
    }

    /// The group distribution.
    pub fn distribution_id(&self) -> [u8; 16] {
        self.distribution_id
    }
    /// The sender's chain.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }
    /// The chain's current iteration.
    pub fn iteration(&self) -> u32 {
        self.iteration
    }
    /// The chain key at `iteration`.
    pub fn chain_key(&self) -> &[u8; 32] {
        &self.chain_key
    }
    /// The sender's signing key.
    pub fn signing_key(&self) -> &PublicKey {
        &self.signing_key
    }
    /// The wire bytes (secret: they hold the chain key).
    pub fn serialized(&self) -> &[u8] {
        &self.serialized
    }
}

/// An encrypted pairwise message of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CiphertextMessage {
    /// On an established session.
    Signal(SignalMessage),
    /// Starting a session.
    PreKey(PreKeySignalMessage),
}

impl CiphertextMessage {
    /// The message type number.
    pub fn message_type(&self) -> CiphertextMessageType {
        match self {
            Self::Signal(_) => CiphertextMessageType::Whisper,
            Self::PreKey(_) => CiphertextMessageType::PreKey,
        }
    }

    /// The wire bytes.
    pub fn serialized(&self) -> &[u8] {
        match self {
            Self::Signal(m) => m.serialized(),
            Self::PreKey(m) => m.serialized(),
        }
    }

    /// Parses bytes of a pairwise type (a number off the wire converts with
    /// `CiphertextMessageType::try_from`); a sender-key message is parsed by
    /// [`SenderKeyMessage::from_bytes`] instead and is an error here.
    pub fn from_bytes(
        message_type: CiphertextMessageType,
        bytes: &[u8],
    ) -> Result<Self, ProtocolError> {
        match message_type {
            CiphertextMessageType::Whisper => SignalMessage::from_bytes(bytes).map(Self::Signal),
            CiphertextMessageType::PreKey => {
                PreKeySignalMessage::from_bytes(bytes).map(Self::PreKey)
            }
            CiphertextMessageType::SenderKey => {
                Err(ProtocolError::InvalidMessage("a sender-key message is not a pairwise one"))
            }
        }
    }
}

#[cfg(test)]
mod tests;

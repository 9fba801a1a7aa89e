//! A session record: the current state plus up to 40 archived ones, and its storage form.

use std::collections::VecDeque;

use prost::Message;

use crate::crypto::{CryptoError, KeyPair, KyberCiphertext, PrivateKey, PublicKey};
use crate::identity::IdentityKey;
use crate::prekeys::{KyberPreKeyId, PreKeyId, SignedPreKeyId};
use crate::ratchet::chain::{ChainKey, RootKey};
use crate::ratchet::state::{PendingPreKey, ReceiverChain, SenderChain, SessionState};
use crate::time::Timestamp;
use crate::wire::{WireError, decode_bounded};

/// Archived states kept per record (`ARCHIVED_STATES_MAX_LENGTH`).
pub const ARCHIVED_STATES_MAX_LENGTH: usize = 40;

/// All session states with one peer device: the current one first, then archived ones
/// (most recent first), tried in that order when a message arrives.
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    pub(crate) current: Option<SessionState>,
    pub(crate) previous: VecDeque<SessionState>,
}

impl SessionRecord {
    /// A record holding only `state`.
    pub fn new(state: SessionState) -> Self {
        Self { current: Some(state), previous: VecDeque::new() }
    }

    /// The current state, if any.
    pub fn current(&self) -> Option<&SessionState> {
        self.current.as_ref()
    }

    /// Archived states, most recent first.
    pub fn previous(&self) -> impl Iterator<Item = &SessionState> {
        self.previous.iter()
    }

    /// Makes `state` current, archiving the old current state.
    pub(crate) fn promote_state(&mut self, state: SessionState) {
        if let Some(old) = self.current.replace(state) {
            self.previous.push_front(old);
            self.previous.truncate(ARCHIVED_STATES_MAX_LENGTH);
        }
    }

    /// Replaces archived state `index` by `state` and makes it current.
    pub(crate) fn promote_archived(&mut self, index: usize, state: SessionState) {
        self.previous.remove(index);
        self.promote_state(state);
    }

    /// Archives the current state (e.g. on a session reset); the next send needs a new bundle.
    pub fn archive_current_state(&mut self) {
        if let Some(old) = self.current.take() {
            self.previous.push_front(old);
            self.previous.truncate(ARCHIVED_STATES_MAX_LENGTH);
        }
    }

    /// Whether some state (current or archived) was started with this base key.
    pub(crate) fn has_state_for_base_key(&self, version: u8, base_key: &PublicKey) -> bool {
        self.current
            .iter()
            .chain(self.previous.iter())
            .any(|s| s.version == version && s.alice_base_key == *base_key)
    }

    /// Serializes for storage. The bytes hold ratchet secrets: store them in protected
    /// storage and never log them.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let pickle = SessionRecordPickle {
            current: self.current.as_ref().map(StatePickle::from_state),
            previous: self.previous.iter().map(StatePickle::from_state).collect(),
        };
        zeroize::Zeroizing::new(pickle.encode_to_vec())
    }

    /// Serializes like [`to_bytes`](Self::to_bytes) but leaves the current state's pending
    /// Kyber ciphertext out, returning it apart. That ciphertext never changes during the
    /// state's life and is most of a fresh session (1 569 of about 1 700 bytes), so a store
    /// that rewrites a session on every message can keep it aside and write it once. Parse
    /// with [`from_detached_bytes`](Self::from_detached_bytes).
    pub fn to_detached_bytes(&self) -> (zeroize::Zeroizing<Vec<u8>>, Option<DetachedKyber>) {
        let mut pickle = SessionRecordPickle {
            current: self.current.as_ref().map(StatePickle::from_state),
            previous: self.previous.iter().map(StatePickle::from_state).collect(),
        };
        let detached = pickle.current.as_mut().and_then(|c| c.pending_pre_key.as_mut()).map(|p| {
            DetachedKyber {
                base_key: p.base_key.clone(),
                ciphertext: std::mem::take(&mut p.kyber_ciphertext),
            }
        });
        (zeroize::Zeroizing::new(pickle.encode_to_vec()), detached)
    }

    /// Parses [`to_detached_bytes`](Self::to_detached_bytes)' bytes, given the ciphertext it
    /// detached (or `None` if it detached none; bytes from [`to_bytes`](Self::to_bytes) parse
    /// too). A ciphertext for another state is refused.
    ///
    /// # Errors
    /// [`WireError::MissingField`] with field `"pending Kyber ciphertext"` when the bytes need
    /// the ciphertext and `kyber` is `None`; the errors of [`from_bytes`](Self::from_bytes).
    pub fn from_detached_bytes(
        bytes: &[u8],
        kyber: Option<&DetachedKyber>,
    ) -> Result<Self, WireError> {
        let mut pickle: SessionRecordPickle =
            decode_bounded("SessionRecord", bytes, 4 * 1024 * 1024)?;
        if let Some(p) = pickle.current.as_mut().and_then(|c| c.pending_pre_key.as_mut())
            && p.kyber_ciphertext.is_empty()
        {
            let kyber = kyber.ok_or(WireError::MissingField {
                what: "SessionRecord",
                field: DETACHED_KYBER_FIELD,
            })?;
            if kyber.base_key != p.base_key {
                return Err(WireError::Malformed {
                    what: "SessionRecord",
                    reason: "the detached Kyber ciphertext belongs to another state".into(),
                });
            }
            p.kyber_ciphertext.clone_from(&kyber.ciphertext);
        }
        Self::from_pickle(&pickle)
    }

    /// Parses [`to_bytes`](Self::to_bytes)' output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let pickle: SessionRecordPickle = decode_bounded("SessionRecord", bytes, 4 * 1024 * 1024)?;
        Self::from_pickle(&pickle)
    }

    fn from_pickle(pickle: &SessionRecordPickle) -> Result<Self, WireError> {
        Ok(Self {
            current: pickle.current.as_ref().map(StatePickle::to_state).transpose()?,
            previous: pickle
                .previous
                .iter()
                .map(StatePickle::to_state)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The field [`SessionRecord::from_detached_bytes`] reports missing when it needs the
/// detached ciphertext.
pub const DETACHED_KYBER_FIELD: &str = "pending Kyber ciphertext";

/// The current state's pending Kyber ciphertext, kept apart by
/// [`SessionRecord::to_detached_bytes`]. Not secret: it is sent in every PreKey message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedKyber {
    /// Which state it belongs to: that state's base key (33 bytes).
    pub base_key: Vec<u8>,
    /// The ciphertext, `0x08 ‖ 1568 bytes`.
    pub ciphertext: Vec<u8>,
}

impl DetachedKyber {
    /// `base key length (1 byte) ‖ base key ‖ ciphertext`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.base_key.len() + self.ciphertext.len());
        out.push(u8::try_from(self.base_key.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.base_key);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses [`to_bytes`](Self::to_bytes)' output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let bad = |reason: &str| WireError::Malformed {
            what: "detached Kyber ciphertext",
            reason: reason.to_owned(),
        };
        let (&n, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        let n = usize::from(n);
        if rest.len() < n {
            return Err(bad("shorter than its base key"));
        }
        let (base_key, ciphertext) = rest.split_at(n);
        Ok(Self { base_key: base_key.to_vec(), ciphertext: ciphertext.to_vec() })
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct SessionRecordPickle {
    #[prost(message, optional, tag = "1")]
    current: Option<StatePickle>,
    #[prost(message, repeated, tag = "2")]
    previous: Vec<StatePickle>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StatePickle {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(bytes = "vec", tag = "2")]
    local_identity: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    remote_identity: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    root_key: Vec<u8>,
    #[prost(uint32, tag = "5")]
    previous_counter: u32,
    #[prost(message, optional, tag = "6")]
    sender_chain: Option<ChainPickle>,
    #[prost(message, repeated, tag = "7")]
    receiver_chains: Vec<ChainPickle>,
    #[prost(message, optional, tag = "8")]
    pending_pre_key: Option<PendingPickle>,
    #[prost(uint32, tag = "9")]
    local_registration_id: u32,
    #[prost(uint32, tag = "10")]
    remote_registration_id: u32,
    #[prost(bytes = "vec", tag = "11")]
    alice_base_key: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ChainPickle {
    #[prost(bytes = "vec", tag = "1")]
    ratchet_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    ratchet_private: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    chain_key: Vec<u8>,
    #[prost(uint32, tag = "4")]
    index: u32,
    #[prost(message, repeated, tag = "5")]
    message_keys: Vec<MessageKeyPickle>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct MessageKeyPickle {
    #[prost(uint32, tag = "1")]
    index: u32,
    #[prost(bytes = "vec", tag = "2")]
    seed: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct PendingPickle {
    #[prost(uint32, optional, tag = "1")]
    pre_key_id: Option<u32>,
    #[prost(uint32, tag = "2")]
    signed_pre_key_id: u32,
    #[prost(uint32, tag = "3")]
    kyber_pre_key_id: u32,
    #[prost(bytes = "vec", tag = "4")]
    kyber_ciphertext: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    base_key: Vec<u8>,
    #[prost(uint64, tag = "6")]
    timestamp: u64,
}

impl Drop for StatePickle {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.root_key);
    }
}

impl Drop for ChainPickle {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.ratchet_private);
        zeroize::Zeroize::zeroize(&mut self.chain_key);
        for k in &mut self.message_keys {
            zeroize::Zeroize::zeroize(&mut k.seed);
        }
    }
}

const WHAT: &str = "SessionRecord";

fn bad(reason: impl ToString) -> WireError {
    WireError::Malformed { what: WHAT, reason: reason.to_string() }
}

fn array32(bytes: &[u8], field: &str) -> Result<[u8; 32], WireError> {
    bytes.try_into().map_err(|_| bad(format!("{field} is not 32 bytes")))
}

fn public(bytes: &[u8]) -> Result<PublicKey, WireError> {
    PublicKey::from_bytes(bytes).map_err(|e: CryptoError| bad(e))
}

impl StatePickle {
    fn from_state(s: &SessionState) -> Self {
        Self {
            version: u32::from(s.version),
            local_identity: s.local_identity.serialize().to_vec(),
            remote_identity: s.remote_identity.serialize().to_vec(),
            root_key: s.root_key.0.to_vec(),
            previous_counter: s.previous_counter,
            sender_chain: s.sender_chain.as_ref().map(|c| ChainPickle {
                ratchet_key: c.ratchet_key.public_key.serialize().to_vec(),
                ratchet_private: c.ratchet_key.private_key.serialize().to_vec(),
                chain_key: c.chain_key.key.to_vec(),
                index: c.chain_key.index,
                message_keys: Vec::new(),
            }),
            receiver_chains: s
                .receiver_chains
                .iter()
                .map(|c| ChainPickle {
                    ratchet_key: c.ratchet_key.serialize().to_vec(),
                    ratchet_private: Vec::new(),
                    chain_key: c.chain_key.key.to_vec(),
                    index: c.chain_key.index,
                    message_keys: c
                        .message_keys
                        .iter()
                        .map(|(index, seed)| MessageKeyPickle {
                            index: *index,
                            seed: seed.to_vec(),
                        })
                        .collect(),
                })
                .collect(),
            pending_pre_key: s.pending_pre_key.as_ref().map(|p| PendingPickle {
                pre_key_id: p.pre_key_id.map(|id| id.0),
                signed_pre_key_id: p.signed_pre_key_id.0,
                kyber_pre_key_id: p.kyber_pre_key_id.0,
                kyber_ciphertext: p.kyber_ciphertext.serialize(),
                base_key: p.base_key.serialize().to_vec(),
                timestamp: p.timestamp.as_millis(),
            }),
            local_registration_id: s.local_registration_id,
            remote_registration_id: s.remote_registration_id,
            alice_base_key: s.alice_base_key.serialize().to_vec(),
        }
    }

    fn to_state(&self) -> Result<SessionState, WireError> {
        let version = u8::try_from(self.version).map_err(|_| bad("version out of range"))?;
        let sender_chain = self
            .sender_chain
            .as_ref()
            .map(|c| -> Result<SenderChain, WireError> {
                let private_key = PrivateKey::from_bytes(&c.ratchet_private).map_err(bad)?;
                let public_key = public(&c.ratchet_key)?;
                if private_key.public_key() != public_key {
                    return Err(bad("sender ratchet key halves do not match"));
                }
                Ok(SenderChain {
                    ratchet_key: KeyPair { public_key, private_key },
                    chain_key: ChainKey {
                        key: array32(&c.chain_key, "chain key")?,
                        index: c.index,
                    },
                })
            })
            .transpose()?;
        let receiver_chains = self
            .receiver_chains
            .iter()
            .map(|c| -> Result<ReceiverChain, WireError> {
                Ok(ReceiverChain {
                    ratchet_key: public(&c.ratchet_key)?,
                    chain_key: ChainKey {
                        key: array32(&c.chain_key, "chain key")?,
                        index: c.index,
                    },
                    message_keys: c
                        .message_keys
                        .iter()
                        .map(|k| Ok((k.index, array32(&k.seed, "message key")?)))
                        .collect::<Result<_, WireError>>()?,
                })
            })
            .collect::<Result<_, _>>()?;
        let pending_pre_key = self
            .pending_pre_key
            .as_ref()
            .map(|p| -> Result<PendingPreKey, WireError> {
                Ok(PendingPreKey {
                    pre_key_id: p.pre_key_id.map(PreKeyId),
                    signed_pre_key_id: SignedPreKeyId(p.signed_pre_key_id),
                    kyber_pre_key_id: KyberPreKeyId(p.kyber_pre_key_id),
                    kyber_ciphertext: KyberCiphertext::from_bytes(&p.kyber_ciphertext)
                        .map_err(bad)?,
                    base_key: public(&p.base_key)?,
                    timestamp: Timestamp::from_millis(p.timestamp),
                })
            })
            .transpose()?;
        Ok(SessionState {
            version,
            local_identity: IdentityKey::new(public(&self.local_identity)?),
            remote_identity: IdentityKey::new(public(&self.remote_identity)?),
            root_key: RootKey(array32(&self.root_key, "root key")?),
            previous_counter: self.previous_counter,
            sender_chain,
            receiver_chains,
            pending_pre_key,
            local_registration_id: self.local_registration_id,
            remote_registration_id: self.remote_registration_id,
            alice_base_key: public(&self.alice_base_key)?,
        })
    }
}

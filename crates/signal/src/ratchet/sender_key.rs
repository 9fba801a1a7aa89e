//! Sender-key chains and records, and their storage form.

use std::collections::VecDeque;
use std::fmt;

use prost::Message;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{CryptoError, KeyPair, PrivateKey, PublicKey, hkdf_sha256, hmac_sha256};
use crate::error::ProtocolError;
use crate::ratchet::state::{MAX_FORWARD_JUMPS, MAX_MESSAGE_KEYS};
use crate::wire::SenderKeyDistributionMessage;
use crate::wire::{WireError, decode_bounded};

/// Chains kept per sender and distribution.
pub const MAX_SENDER_KEY_STATES: usize = 5;

/// A sender chain key at an iteration.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SenderChainKey {
    pub(crate) iteration: u32,
    pub(crate) seed: [u8; 32],
}

/// The keys of one group message.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SenderMessageKeys {
    pub(crate) iteration: u32,
    pub(crate) iv: [u8; 16],
    pub(crate) cipher_key: [u8; 32],
}

impl SenderMessageKeys {
    fn derive(iteration: u32, seed: &[u8; 32]) -> Result<Self, CryptoError> {
        let mut okm = zeroize::Zeroizing::new([0u8; 48]);
        hkdf_sha256(None, seed, b"WhisperGroup", okm.as_mut())?;
        let mut keys = Self { iteration, iv: [0; 16], cipher_key: [0; 32] };
        keys.iv.copy_from_slice(&okm[..16]);
        keys.cipher_key.copy_from_slice(&okm[16..]);
        Ok(keys)
    }
}

impl SenderChainKey {
    fn message_seed(&self) -> [u8; 32] {
        hmac_sha256(&self.seed, &[&[0x01]])
    }

    fn next(&self) -> Self {
        Self {
            iteration: self.iteration.wrapping_add(1),
            seed: hmac_sha256(&self.seed, &[&[0x02]]),
        }
    }

    pub(crate) fn message_keys(&self) -> Result<SenderMessageKeys, CryptoError> {
        let mut seed = self.message_seed();
        let keys = SenderMessageKeys::derive(self.iteration, &seed);
        seed.zeroize();
        keys
    }
}

/// One sender chain: id, chain key, signing key (private only on the sender's own device),
/// and the seeds of skipped iterations (oldest first, as libsignal keeps them).
#[derive(Clone)]
pub struct SenderKeyState {
    pub(crate) chain_id: u32,
    pub(crate) chain_key: SenderChainKey,
    pub(crate) signing_public: PublicKey,
    pub(crate) signing_private: Option<PrivateKey>,
    pub(crate) skipped: VecDeque<(u32, [u8; 32])>,
}

impl fmt::Debug for SenderKeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SenderKeyState")
            .field("chain_id", &self.chain_id)
            .field("iteration", &self.chain_key.iteration)
            .field("signing_public", &self.signing_public)
            .field("can_send", &self.signing_private.is_some())
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

impl Drop for SenderKeyState {
    fn drop(&mut self) {
        for (_, seed) in self.skipped.iter_mut() {
            seed.zeroize();
        }
    }
}

impl SenderKeyState {
    pub(crate) fn new(chain_id: u32, iteration: u32, seed: [u8; 32], signing: KeyPair) -> Self {
        Self {
            chain_id,
            chain_key: SenderChainKey { iteration, seed },
            signing_public: signing.public_key,
            signing_private: Some(signing.private_key),
            skipped: VecDeque::new(),
        }
    }

    pub(crate) fn from_distribution(m: &SenderKeyDistributionMessage) -> Self {
        Self {
            chain_id: m.chain_id(),
            chain_key: SenderChainKey { iteration: m.iteration(), seed: *m.chain_key() },
            signing_public: *m.signing_key(),
            signing_private: None,
            skipped: VecDeque::new(),
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// The next iteration this chain will send or expects.
    pub fn iteration(&self) -> u32 {
        self.chain_key.iteration
    }

    /// The public signing key.
    pub fn signing_public(&self) -> &PublicKey {
        &self.signing_public
    }

    /// Whether this is our own chain (we hold the signing key).
    pub fn can_send(&self) -> bool {
        self.signing_private.is_some()
    }

    pub(crate) fn signing_private(&self) -> Option<&PrivateKey> {
        self.signing_private.as_ref()
    }

    pub(crate) fn chain_key(&self) -> &SenderChainKey {
        &self.chain_key
    }

    pub(crate) fn advance(&mut self) {
        self.chain_key = self.chain_key.next();
    }

    pub(crate) fn distribution_message(
        &self,
        distribution_id: super::DistributionId,
    ) -> SenderKeyDistributionMessage {
        SenderKeyDistributionMessage::new(
            distribution_id.0,
            self.chain_id,
            self.chain_key.iteration,
            self.chain_key.seed,
            self.signing_public,
        )
    }

    /// The keys for `iteration`: a stored skipped seed, or the chain stepped forward.
    pub(crate) fn message_keys_for(
        &mut self,
        iteration: u32,
    ) -> Result<SenderMessageKeys, ProtocolError> {
        let current = self.chain_key.iteration;
        if current > iteration {
            let at = self.skipped.iter().position(|(i, _)| *i == iteration).ok_or(
                ProtocolError::DuplicatedMessage { chain_index: current, counter: iteration },
            )?;
            let (_, mut seed) = self.skipped.remove(at).ok_or(ProtocolError::NoSenderKeyState)?;
            let keys = SenderMessageKeys::derive(iteration, &seed);
            seed.zeroize();
            return Ok(keys?);
        }
        let jump = iteration - current;
        if jump > MAX_FORWARD_JUMPS {
            return Err(ProtocolError::TooFarIntoFuture { jump, limit: MAX_FORWARD_JUMPS });
        }
        let mut chain = self.chain_key.clone();
        while chain.iteration < iteration {
            self.skipped.push_back((chain.iteration, chain.message_seed()));
            while self.skipped.len() > MAX_MESSAGE_KEYS {
                if let Some((_, mut old)) = self.skipped.pop_front() {
                    old.zeroize();
                }
            }
            chain = chain.next();
        }
        self.chain_key = chain.next();
        Ok(chain.message_keys()?)
    }
}

/// All chains of one sender in one distribution, newest first.
#[derive(Clone, Debug, Default)]
pub struct SenderKeyRecord {
    states: VecDeque<SenderKeyState>,
}

impl SenderKeyRecord {
    pub(crate) fn from_state(state: SenderKeyState) -> Self {
        Self { states: VecDeque::from([state]) }
    }

    /// The newest chain.
    pub fn current(&self) -> Option<&SenderKeyState> {
        self.states.front()
    }

    pub(crate) fn current_mut(&mut self) -> Option<&mut SenderKeyState> {
        self.states.front_mut()
    }

    /// Testing only (feature `testing`): moves the newest chain `steps` messages ahead, as if
    /// they had been sent and lost — how a fuzz target makes a sender run far ahead cheaply.
    #[cfg(any(test, feature = "testing"))]
    pub fn skip_ahead(&mut self, steps: u32) {
        if let Some(state) = self.current_mut() {
            for _ in 0..steps {
                state.advance();
            }
        }
    }

    /// All chains, newest first.
    pub fn states(&self) -> impl Iterator<Item = &SenderKeyState> {
        self.states.iter()
    }

    pub(crate) fn state_for_chain(&mut self, chain_id: u32) -> Option<&mut SenderKeyState> {
        self.states.iter_mut().find(|s| s.chain_id == chain_id)
    }

    /// Adds a received chain. A chain already known with the same signing key is kept as is
    /// (so a repeated distribution message cannot rewind or skip it); the same chain id
    /// with another signing key replaces the old one. At most five chains are kept.
    pub(crate) fn add_state(&mut self, state: SenderKeyState) {
        let same = self
            .states
            .iter()
            .position(|s| s.chain_id == state.chain_id && s.signing_public == state.signing_public);
        let keep = match same {
            Some(i) => self.states.remove(i),
            None => None,
        };
        self.states.retain(|s| s.chain_id != state.chain_id);
        self.states.push_front(keep.unwrap_or(state));
        self.states.truncate(MAX_SENDER_KEY_STATES);
    }

    /// Serializes for storage (holds chain keys and, for our own chain, the signing key).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let pickle = RecordPickle {
            states: self
                .states
                .iter()
                .map(|s| StatePickle {
                    chain_id: s.chain_id,
                    iteration: s.chain_key.iteration,
                    seed: s.chain_key.seed.to_vec(),
                    signing_public: s.signing_public.serialize().to_vec(),
                    signing_private: s
                        .signing_private
                        .as_ref()
                        .map(|k| k.serialize().to_vec())
                        .unwrap_or_default(),
                    skipped: s
                        .skipped
                        .iter()
                        .map(|(i, seed)| SkippedPickle { iteration: *i, seed: seed.to_vec() })
                        .collect(),
                })
                .collect(),
        };
        zeroize::Zeroizing::new(pickle.encode_to_vec())
    }

    /// Parses [`to_bytes`](Self::to_bytes)' output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let what = "SenderKeyRecord";
        let bad = |reason: String| WireError::Malformed { what, reason };
        let pickle: RecordPickle = decode_bounded(what, bytes, 1024 * 1024)?;
        let mut states = VecDeque::new();
        for p in &pickle.states {
            let seed: [u8; 32] = p
                .seed
                .as_slice()
                .try_into()
                .map_err(|_| bad("chain key is not 32 bytes".into()))?;
            let signing_public =
                PublicKey::from_bytes(&p.signing_public).map_err(|e| bad(e.to_string()))?;
            let signing_private = if p.signing_private.is_empty() {
                None
            } else {
                let k =
                    PrivateKey::from_bytes(&p.signing_private).map_err(|e| bad(e.to_string()))?;
                if k.public_key() != signing_public {
                    return Err(bad("signing key halves do not match".into()));
                }
                Some(k)
            };
            let skipped = p
                .skipped
                .iter()
                .map(|k| {
                    Ok((
                        k.iteration,
                        k.seed
                            .as_slice()
                            .try_into()
                            .map_err(|_| bad("skipped key is not 32 bytes".into()))?,
                    ))
                })
                .collect::<Result<_, WireError>>()?;
            states.push_back(SenderKeyState {
                chain_id: p.chain_id,
                chain_key: SenderChainKey { iteration: p.iteration, seed },
                signing_public,
                signing_private,
                skipped,
            });
        }
        Ok(Self { states })
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct RecordPickle {
    #[prost(message, repeated, tag = "1")]
    states: Vec<StatePickle>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StatePickle {
    #[prost(uint32, tag = "1")]
    chain_id: u32,
    #[prost(uint32, tag = "2")]
    iteration: u32,
    #[prost(bytes = "vec", tag = "3")]
    seed: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    signing_public: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    signing_private: Vec<u8>,
    #[prost(message, repeated, tag = "6")]
    skipped: Vec<SkippedPickle>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SkippedPickle {
    #[prost(uint32, tag = "1")]
    iteration: u32,
    #[prost(bytes = "vec", tag = "2")]
    seed: Vec<u8>,
}

impl Drop for StatePickle {
    fn drop(&mut self) {
        self.seed.zeroize();
        self.signing_private.zeroize();
        for s in &mut self.skipped {
            s.seed.zeroize();
        }
    }
}

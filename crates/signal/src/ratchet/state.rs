//! One Double Ratchet session state: root key, sending chain, receiving chains, and the
//! PQXDH parameters to repeat until the peer answers.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use crate::crypto::{KeyPair, KyberCiphertext, PublicKey};
use crate::identity::IdentityKey;
use crate::prekeys::{KyberPreKeyId, PreKeyId, SignedPreKeyId};
use crate::ratchet::chain::{ChainKey, RootKey};
use crate::time::Timestamp;

/// Receiving chains kept per state (`MAX_RECEIVER_CHAINS`).
pub const MAX_RECEIVER_CHAINS: usize = 5;
/// Skipped message keys kept per receiving chain (`MAX_MESSAGE_KEYS`).
pub const MAX_MESSAGE_KEYS: usize = 2000;
/// The furthest a message may jump ahead in its chain (`MAX_FORWARD_JUMPS`).
pub const MAX_FORWARD_JUMPS: u32 = 25_000;
/// How long an initiator keeps using a session the peer never answered.
pub const MAX_UNACKNOWLEDGED_SESSION_AGE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Our sending chain.
#[derive(Clone, Debug)]
pub(crate) struct SenderChain {
    pub(crate) ratchet_key: KeyPair,
    pub(crate) chain_key: ChainKey,
}

/// A receiving chain with its skipped message-key seeds (newest first).
#[derive(Clone)]
pub(crate) struct ReceiverChain {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) chain_key: ChainKey,
    pub(crate) message_keys: VecDeque<(u32, [u8; 32])>,
}

impl fmt::Debug for ReceiverChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceiverChain")
            .field("ratchet_key", &self.ratchet_key)
            .field("chain_key", &self.chain_key)
            .field("skipped_keys", &self.message_keys.len())
            .finish()
    }
}

impl Drop for ReceiverChain {
    fn drop(&mut self) {
        for (_, seed) in self.message_keys.iter_mut() {
            zeroize::Zeroize::zeroize(seed);
        }
    }
}

/// The PQXDH parameters an initiator repeats in every message until the peer answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PendingPreKey {
    pub(crate) pre_key_id: Option<PreKeyId>,
    pub(crate) signed_pre_key_id: SignedPreKeyId,
    pub(crate) kyber_pre_key_id: KyberPreKeyId,
    pub(crate) kyber_ciphertext: KyberCiphertext,
    pub(crate) base_key: PublicKey,
    pub(crate) timestamp: Timestamp,
}

/// One session state with a peer device.
#[derive(Clone, Debug)]
pub struct SessionState {
    pub(crate) version: u8,
    pub(crate) local_identity: IdentityKey,
    pub(crate) remote_identity: IdentityKey,
    pub(crate) root_key: RootKey,
    pub(crate) previous_counter: u32,
    pub(crate) sender_chain: Option<SenderChain>,
    /// Oldest first.
    pub(crate) receiver_chains: VecDeque<ReceiverChain>,
    pub(crate) pending_pre_key: Option<PendingPreKey>,
    pub(crate) local_registration_id: u32,
    pub(crate) remote_registration_id: u32,
    /// The initiator's base key: names the session for PreKey-message matching.
    pub(crate) alice_base_key: PublicKey,
}

impl SessionState {
    /// The message version of this session.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The peer's identity key.
    pub fn remote_identity(&self) -> &IdentityKey {
        &self.remote_identity
    }

    /// Our identity key.
    pub fn local_identity(&self) -> &IdentityKey {
        &self.local_identity
    }

    /// The peer's registration id.
    pub fn remote_registration_id(&self) -> u32 {
        self.remote_registration_id
    }

    /// The initiator's base key.
    pub fn alice_base_key(&self) -> &PublicKey {
        &self.alice_base_key
    }

    /// Whether we still wait for the peer's first answer (our messages are PreKey messages).
    pub fn has_unacknowledged_pre_key(&self) -> bool {
        self.pending_pre_key.is_some()
    }

    /// Whether this state can send at `now`: it has a sending chain and, if unanswered, is
    /// not older than [`MAX_UNACKNOWLEDGED_SESSION_AGE`].
    pub fn has_usable_sender_chain(&self, now: Timestamp) -> bool {
        self.sender_chain.is_some()
            && self.pending_pre_key.as_ref().is_none_or(|p| {
                now.saturating_duration_since(p.timestamp) <= MAX_UNACKNOWLEDGED_SESSION_AGE
            })
    }

    pub(crate) fn receiver_chain_index(&self, ratchet_key: &PublicKey) -> Option<usize> {
        self.receiver_chains.iter().position(|c| c.ratchet_key == *ratchet_key)
    }

    pub(crate) fn add_receiver_chain(&mut self, ratchet_key: PublicKey, chain_key: ChainKey) {
        self.receiver_chains.push_back(ReceiverChain {
            ratchet_key,
            chain_key,
            message_keys: VecDeque::new(),
        });
        while self.receiver_chains.len() > MAX_RECEIVER_CHAINS {
            self.receiver_chains.pop_front();
        }
    }

    pub(crate) fn clear_pending_pre_key(&mut self) {
        self.pending_pre_key = None;
    }
}

impl ReceiverChain {
    /// Removes and returns the stored seed for `counter`.
    pub(crate) fn take_message_key(&mut self, counter: u32) -> Option<[u8; 32]> {
        let at = self.message_keys.iter().position(|(i, _)| *i == counter)?;
        self.message_keys.remove(at).map(|(_, seed)| seed)
    }

    /// Stores a skipped seed, dropping the oldest beyond [`MAX_MESSAGE_KEYS`].
    pub(crate) fn store_message_key(&mut self, counter: u32, seed: [u8; 32]) {
        self.message_keys.push_front((counter, seed));
        while self.message_keys.len() > MAX_MESSAGE_KEYS {
            if let Some((_, mut old)) = self.message_keys.pop_back() {
                zeroize::Zeroize::zeroize(&mut old);
            }
        }
    }
}

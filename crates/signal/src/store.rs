//! Storage for protocol state: one small async trait per record family, and one atomic
//! [`Changes`] batch per operation.
//!
//! Protocol operations read through the traits and *return* the changes they made instead
//! of writing them; the caller commits the batch with [`ProtocolStore::save_changes`],
//! which must apply all of it or nothing. That lets a client persist a decrypted message
//! together with the ratchet state that decrypted it in one transaction, and acknowledge the
//! message to the server only after that transaction committed.
//!
//! Operations on *different* addresses may run before their batches are saved and the
//! batches merged ([`Changes::merge`]); two operations on the *same* session must be
//! separated by a save, because the second reads the stored state.

mod memory;
mod sealed;
mod traits;

use std::collections::HashMap;

pub use memory::{MemoryStore, MemoryStoreWith};
pub use sealed::{Chain, ChainPosition, Encrypted, EncryptedBatch, Guard};
pub use traits::{
    IdentityKeyStore, KyberPreKeyStore, PreKeyStore, ProtocolStore, SenderKeyStore, SessionStore,
    SignedPreKeyStore,
};

use crate::address::ProtocolAddress;
use crate::crypto::PublicKey;
use crate::identity::IdentityKey;
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use crate::ratchet::DistributionId;
use crate::ratchet::sender_key::SenderKeyRecord;
use crate::ratchet::session_record::SessionRecord;

pub use crate::error::StoreError;

/// Who owns a sender key: the sending device and the group distribution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SenderKeyName {
    /// The sending device.
    pub sender: ProtocolAddress,
    /// The distribution (one per group and sending device).
    pub distribution_id: DistributionId,
}

/// A consumed Kyber prekey, with what it was combined with. A last-resort key stays, and the
/// store remembers each `(signed prekey, base key)` it served so a replayed PreKey message is
/// recognised.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KyberPreKeyUse {
    /// The Kyber prekey.
    pub kyber_pre_key_id: KyberPreKeyId,
    /// The signed prekey used with it.
    pub signed_pre_key_id: SignedPreKeyId,
    /// The initiator's base key.
    pub base_key: PublicKey,
}

/// Everything one protocol operation changed, applied atomically by
/// [`ProtocolStore::save_changes`]. Only protocol state: an application that stores its own
/// records in the same transaction wraps this batch in its own (as tandem-core's
/// `ClientChanges` does).
#[must_use = "nothing changes until the batch is saved with `ProtocolStore::save_changes`"]
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// Identity keys now trusted for addresses (first use, or accepted change).
    pub identities: HashMap<ProtocolAddress, IdentityKey>,
    /// Session records to store (replacing the old ones).
    pub sessions: HashMap<ProtocolAddress, SessionRecord>,
    /// Sessions to delete.
    pub removed_sessions: Vec<ProtocolAddress>,
    /// One-time prekeys to add.
    pub pre_keys: Vec<PreKeyRecord>,
    /// One-time prekeys to delete (used, or withdrawn).
    pub removed_pre_keys: Vec<PreKeyId>,
    /// Signed prekeys to add.
    pub signed_pre_keys: Vec<SignedPreKeyRecord>,
    /// Signed prekeys to delete (rotated out).
    pub removed_signed_pre_keys: Vec<SignedPreKeyId>,
    /// Kyber prekeys to add.
    pub kyber_pre_keys: Vec<KyberPreKeyRecord>,
    /// Kyber prekeys consumed: one-time ones are deleted, last-resort ones remember the use.
    pub used_kyber_pre_keys: Vec<KyberPreKeyUse>,
    /// Sender-key records to store.
    pub sender_keys: HashMap<SenderKeyName, SenderKeyRecord>,
    /// Sending chains an encryption in this batch advanced, with where each stood when the
    /// encryption read it. A store must refuse the batch ([`Changes::check_guards`]) unless
    /// every one still stands there, so a message key is never used twice.
    pub guards: HashMap<Chain, Guard>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
            && self.sessions.is_empty()
            && self.removed_sessions.is_empty()
            && self.pre_keys.is_empty()
            && self.removed_pre_keys.is_empty()
            && self.signed_pre_keys.is_empty()
            && self.removed_signed_pre_keys.is_empty()
            && self.kyber_pre_keys.is_empty()
            && self.used_kyber_pre_keys.is_empty()
            && self.sender_keys.is_empty()
            && self.guards.is_empty()
    }

    /// Adds `later`'s changes; where both touch one record, `later` wins.
    pub fn merge(&mut self, later: Changes) {
        self.guard_merge(&later);
        let Changes {
            identities,
            sessions,
            removed_sessions,
            pre_keys,
            removed_pre_keys,
            signed_pre_keys,
            removed_signed_pre_keys,
            kyber_pre_keys,
            used_kyber_pre_keys,
            sender_keys,
            guards: _,
        } = later;
        self.identities.extend(identities);
        for address in &removed_sessions {
            self.sessions.remove(address);
        }
        for address in sessions.keys() {
            self.removed_sessions.retain(|a| a != address);
        }
        self.sessions.extend(sessions);
        self.removed_sessions.extend(removed_sessions);
        self.pre_keys.extend(pre_keys);
        self.removed_pre_keys.extend(removed_pre_keys);
        self.signed_pre_keys.extend(signed_pre_keys);
        self.removed_signed_pre_keys.extend(removed_signed_pre_keys);
        self.kyber_pre_keys.extend(kyber_pre_keys);
        self.used_kyber_pre_keys.extend(used_kyber_pre_keys);
        self.sender_keys.extend(sender_keys);
    }
}

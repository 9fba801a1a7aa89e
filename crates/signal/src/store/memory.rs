//! `MemoryStore`: the reference protocol store, in memory. Used by tests, by applications that
//! keep their own persistence, and as the model every other store is checked against.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Chain, ChainPosition, Changes, IdentityKeyStore, KyberPreKeyStore, KyberPreKeyUse, PreKeyStore,
    ProtocolStore, SenderKeyName, SenderKeyStore, SessionStore, SignedPreKeyStore, StoreError,
};
use crate::address::ProtocolAddress;
use crate::crypto::PublicKey;
use crate::identity::{IdentityKey, IdentityKeyPair};
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use crate::ratchet::sender_key::SenderKeyRecord;
use crate::ratchet::session_record::SessionRecord;

#[derive(Default)]
struct Inner {
    identities: HashMap<ProtocolAddress, IdentityKey>,
    sessions: HashMap<ProtocolAddress, SessionRecord>,
    pre_keys: HashMap<PreKeyId, PreKeyRecord>,
    signed_pre_keys: HashMap<SignedPreKeyId, SignedPreKeyRecord>,
    kyber_pre_keys: HashMap<KyberPreKeyId, KyberPreKeyRecord>,
    kyber_uses: HashSet<KyberPreKeyUse>,
    sender_keys: HashMap<SenderKeyName, SenderKeyRecord>,
}

/// An in-memory [`ProtocolStore`].
pub struct MemoryStore {
    identity: IdentityKeyPair,
    registration_id: u32,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("identity", self.identity.identity_key())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store for a device with this identity.
    pub fn new(identity: IdentityKeyPair, registration_id: u32) -> Self {
        Self { identity, registration_id, inner: Mutex::new(Inner::default()) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock means a panic mid-update elsewhere; the maps are still consistent
        // because every update below is applied only after all checks passed.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`ProtocolStore::save_changes`] without the future: checks the batch's guards and
    /// applies all of it, or nothing. An application that keeps its own records next to this
    /// store calls it while holding its own lock, so both parts change together.
    pub fn apply(&self, changes: Changes) -> Result<(), StoreError> {
        let mut inner = self.lock();
        changes.check_guards(|chain| match chain {
            Chain::Session(a) => inner.sessions.get(a).and_then(ChainPosition::of_session),
            Chain::SenderKey(n) => inner.sender_keys.get(n).and_then(ChainPosition::of_sender_key),
        })?;
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
        } = changes;
        inner.identities.extend(identities);
        for address in removed_sessions {
            inner.sessions.remove(&address);
        }
        inner.sessions.extend(sessions);
        inner.pre_keys.extend(pre_keys.into_iter().map(|k| (k.id, k)));
        for id in removed_pre_keys {
            inner.pre_keys.remove(&id);
        }
        inner.signed_pre_keys.extend(signed_pre_keys.into_iter().map(|k| (k.id, k)));
        for id in removed_signed_pre_keys {
            inner.signed_pre_keys.remove(&id);
        }
        inner.kyber_pre_keys.extend(kyber_pre_keys.into_iter().map(|k| (k.id, k)));
        for used in used_kyber_pre_keys {
            match inner.kyber_pre_keys.get(&used.kyber_pre_key_id) {
                Some(k) if k.last_resort => {
                    inner.kyber_uses.insert(used);
                }
                Some(_) => {
                    inner.kyber_pre_keys.remove(&used.kyber_pre_key_id);
                }
                None => {}
            }
        }
        inner.sender_keys.extend(sender_keys);
        Ok(())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl IdentityKeyStore for MemoryStore {
    async fn load_identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        Ok(self.identity.clone())
    }
    async fn load_local_registration_id(&self) -> Result<u32, StoreError> {
        Ok(self.registration_id)
    }
    async fn load_identity(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<IdentityKey>, StoreError> {
        Ok(self.lock().identities.get(address).copied())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl PreKeyStore for MemoryStore {
    async fn load_pre_key(&self, id: PreKeyId) -> Result<Option<PreKeyRecord>, StoreError> {
        Ok(self.lock().pre_keys.get(&id).cloned())
    }
    async fn count_pre_keys(&self) -> Result<usize, StoreError> {
        Ok(self.lock().pre_keys.len())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SignedPreKeyStore for MemoryStore {
    async fn load_signed_pre_key(
        &self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        Ok(self.lock().signed_pre_keys.get(&id).cloned())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl KyberPreKeyStore for MemoryStore {
    async fn load_kyber_pre_key(
        &self,
        id: KyberPreKeyId,
    ) -> Result<Option<KyberPreKeyRecord>, StoreError> {
        Ok(self.lock().kyber_pre_keys.get(&id).cloned())
    }
    async fn kyber_pre_key_used_with(
        &self,
        id: KyberPreKeyId,
        signed_pre_key_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> Result<bool, StoreError> {
        let probe = KyberPreKeyUse { kyber_pre_key_id: id, signed_pre_key_id, base_key: *base_key };
        Ok(self.lock().kyber_uses.contains(&probe))
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SessionStore for MemoryStore {
    async fn load_session(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock().sessions.get(address).cloned())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SenderKeyStore for MemoryStore {
    async fn load_sender_key(
        &self,
        name: &SenderKeyName,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        Ok(self.lock().sender_keys.get(name).cloned())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl ProtocolStore for MemoryStore {
    async fn pause(&self) {}

    async fn save_changes(&self, changes: Changes) -> Result<(), StoreError> {
        self.apply(changes)
    }
}

//! `MemoryStore`: the reference protocol store, in memory. Used by tests, by applications that
//! keep their own persistence, and as the model every other store is checked against.
//! `MemoryStoreWith<X>` keeps an application's own records `X` under the same lock, so an
//! application's in-memory store is this one with its records, not a wrapper around it.

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
struct Inner<X> {
    identities: HashMap<ProtocolAddress, IdentityKey>,
    sessions: HashMap<ProtocolAddress, SessionRecord>,
    pre_keys: HashMap<PreKeyId, PreKeyRecord>,
    signed_pre_keys: HashMap<SignedPreKeyId, SignedPreKeyRecord>,
    kyber_pre_keys: HashMap<KyberPreKeyId, KyberPreKeyRecord>,
    kyber_uses: HashSet<KyberPreKeyUse>,
    sender_keys: HashMap<SenderKeyName, SenderKeyRecord>,
    records: X,
}

/// An in-memory [`ProtocolStore`].
pub type MemoryStore = MemoryStoreWith<()>;

/// An in-memory [`ProtocolStore`] that also keeps an application's records `X` (a messenger's
/// messages, say) under the same lock: [`apply_with`](Self::apply_with) changes both at once,
/// [`records`](Self::records) reads them.
pub struct MemoryStoreWith<X> {
    identity: IdentityKeyPair,
    registration_id: u32,
    inner: Mutex<Inner<X>>,
}

impl<X> std::fmt::Debug for MemoryStoreWith<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("identity", self.identity.identity_key())
            .finish_non_exhaustive()
    }
}

impl<X: Default> MemoryStoreWith<X> {
    /// An empty store for a device with this identity.
    pub fn new(identity: IdentityKeyPair, registration_id: u32) -> Self {
        Self { identity, registration_id, inner: Mutex::new(Inner::default()) }
    }
}

impl<X> MemoryStoreWith<X> {
    fn lock(&self) -> MutexGuard<'_, Inner<X>> {
        // A poisoned lock means a panic mid-update elsewhere; the maps are still consistent
        // because every update below is applied only after all checks passed.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the application's records.
    pub fn records<R>(&self, read: impl FnOnce(&X) -> R) -> R {
        read(&self.lock().records)
    }

    /// [`ProtocolStore::save_changes`] and a change to the application's records, as one:
    /// checks the batch's guards, then applies the protocol changes and `also`, or nothing.
    pub fn apply_with(
        &self,
        changes: Changes,
        also: impl FnOnce(&mut X),
    ) -> Result<(), StoreError> {
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
        also(&mut inner.records);
        Ok(())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl<X: Send> IdentityKeyStore for MemoryStoreWith<X> {
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
impl<X: Send> PreKeyStore for MemoryStoreWith<X> {
    async fn load_pre_key(&self, id: PreKeyId) -> Result<Option<PreKeyRecord>, StoreError> {
        Ok(self.lock().pre_keys.get(&id).cloned())
    }
    async fn count_pre_keys(&self) -> Result<usize, StoreError> {
        Ok(self.lock().pre_keys.len())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl<X: Send> SignedPreKeyStore for MemoryStoreWith<X> {
    async fn load_signed_pre_key(
        &self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        Ok(self.lock().signed_pre_keys.get(&id).cloned())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl<X: Send> KyberPreKeyStore for MemoryStoreWith<X> {
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
impl<X: Send> SessionStore for MemoryStoreWith<X> {
    async fn load_session(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock().sessions.get(address).cloned())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl<X: Send> SenderKeyStore for MemoryStoreWith<X> {
    async fn load_sender_key(
        &self,
        name: &SenderKeyName,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        Ok(self.lock().sender_keys.get(name).cloned())
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl<X: Send> ProtocolStore for MemoryStoreWith<X> {
    async fn pause(&self) {}

    async fn save_changes(&self, changes: Changes) -> Result<(), StoreError> {
        self.apply_with(changes, |_| {})
    }
}

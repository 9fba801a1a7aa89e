//! `MemoryStore`: the reference store, in memory. Used by tests, the native client, and as
//! the model every other store is checked against.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    Chain, ChainPosition, Changes, ClientChanges, ClientStore, IdentityKeyStore, KyberPreKeyStore,
    KyberPreKeyUse, PreKeyStore, ProtocolStore, SenderKeyName, SenderKeyStore, SessionStore,
    SignedPreKeyStore, StoreError,
};
use crate::address::{AccountId, ProtocolAddress};
use crate::crypto::PublicKey;
use crate::identity::{IdentityKey, IdentityKeyPair};
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use crate::ratchet::sender_key::SenderKeyRecord;
use crate::ratchet::session_record::SessionRecord;
use crate::records::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MessageId, MessageRecord,
    OutboxEntry,
};

#[derive(Default)]
struct Inner {
    identities: HashMap<ProtocolAddress, IdentityKey>,
    sessions: HashMap<ProtocolAddress, SessionRecord>,
    pre_keys: HashMap<PreKeyId, PreKeyRecord>,
    signed_pre_keys: HashMap<SignedPreKeyId, SignedPreKeyRecord>,
    kyber_pre_keys: HashMap<KyberPreKeyId, KyberPreKeyRecord>,
    kyber_uses: HashSet<KyberPreKeyUse>,
    sender_keys: HashMap<SenderKeyName, SenderKeyRecord>,
    account: Option<AccountRecord>,
    device_lists: HashMap<AccountId, DeviceListRecord>,
    messages: HashMap<MessageId, MessageRecord>,
    groups: HashMap<[u8; 16], GroupRecord>,
    outbox: Vec<OutboxEntry>,
    contacts: HashMap<AccountId, String>,
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
        self.save_client_changes(changes.into()).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl ClientStore for MemoryStore {
    async fn save_client_changes(&self, changes: ClientChanges) -> Result<(), StoreError> {
        let mut inner = self.lock();
        changes.check_guards(|chain| match chain {
            Chain::Session(a) => inner.sessions.get(a).and_then(ChainPosition::of_session),
            Chain::SenderKey(n) => inner.sender_keys.get(n).and_then(ChainPosition::of_sender_key),
        })?;
        let ClientChanges {
            protocol,
            account,
            device_lists,
            messages,
            removed_messages,
            groups,
            outbox,
            removed_outbox,
            contacts,
        } = changes;
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
        } = protocol;
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
        if account.is_some() {
            inner.account = account;
        }
        inner.device_lists.extend(device_lists);
        for id in &removed_messages {
            inner.messages.remove(id);
        }
        inner.messages.extend(messages);
        inner.groups.extend(groups);
        inner.outbox.retain(|e| !removed_outbox.contains(&e.id) && !outbox.contains_key(&e.id));
        inner.outbox.extend(outbox.into_values());
        inner.outbox.sort_by_key(|e| (e.id.timestamp, e.id.sender, e.id.device));
        inner.contacts.extend(contacts);
        Ok(())
    }

    async fn load_account(&self) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().account.clone())
    }
    async fn load_device_list(
        &self,
        account: &AccountId,
    ) -> Result<Option<DeviceListRecord>, StoreError> {
        Ok(self.lock().device_lists.get(account).cloned())
    }
    async fn load_message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.lock().messages.get(id).cloned())
    }
    async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.lock().outbox.clone())
    }
    async fn load_contact(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        Ok(self.lock().contacts.get(account).cloned())
    }
    async fn load_messages(
        &self,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let inner = self.lock();
        let mut list: Vec<MessageRecord> =
            inner.messages.values().filter(|m| m.conversation == *conversation).cloned().collect();
        list.sort_by_key(|m| (m.id.timestamp, m.id.sender, m.id.device));
        let skip = list.len().saturating_sub(limit);
        Ok(list.split_off(skip))
    }
    async fn load_messages_before(
        &self,
        conversation: &Conversation,
        before: &MessageId,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let inner = self.lock();
        let mut list: Vec<MessageRecord> = inner
            .messages
            .values()
            .filter(|m| m.conversation == *conversation && m.id.sort_key() < before.sort_key())
            .cloned()
            .collect();
        list.sort_by_key(|m| m.id.sort_key());
        let skip = list.len().saturating_sub(limit);
        Ok(list.split_off(skip))
    }
    async fn load_group(&self, group_id: &[u8; 16]) -> Result<Option<GroupRecord>, StoreError> {
        Ok(self.lock().groups.get(group_id).cloned())
    }
}

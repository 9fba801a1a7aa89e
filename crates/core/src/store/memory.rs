//! `MemoryStore`: the reference messenger store, in memory — tandem-signal's protocol
//! `MemoryStore` with the engine's records next to it. Used by tests and the native client,
//! and the model every other [`ClientStore`] is checked against.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use tandem_signal::crypto::PublicKey;
use tandem_signal::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use tandem_signal::sender_keys::SenderKeyRecord;
use tandem_signal::session::SessionRecord;
use tandem_signal::{AccountId, IdentityKey, IdentityKeyPair, ProtocolAddress};

use super::{
    Changes, ClientChanges, ClientStore, IdentityKeyStore, KyberPreKeyStore, PreKeyStore,
    ProtocolStore, SenderKeyName, SenderKeyStore, SessionStore, SignedPreKeyStore, StoreError,
};
use crate::records::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MessageId, MessageRecord,
    OutboxEntry,
};

#[derive(Default)]
struct Records {
    account: Option<AccountRecord>,
    device_lists: HashMap<AccountId, DeviceListRecord>,
    messages: HashMap<MessageId, MessageRecord>,
    groups: HashMap<[u8; 16], GroupRecord>,
    outbox: Vec<OutboxEntry>,
    contacts: HashMap<AccountId, String>,
}

/// An in-memory [`ClientStore`].
#[derive(Debug)]
pub struct MemoryStore {
    protocol: tandem_signal::store::MemoryStore,
    records: Mutex<Records>,
}

impl MemoryStore {
    /// An empty store for a device with this identity.
    pub fn new(identity: IdentityKeyPair, registration_id: u32) -> Self {
        Self {
            protocol: tandem_signal::store::MemoryStore::new(identity, registration_id),
            records: Mutex::new(Records::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A poisoned lock means a panic mid-update elsewhere; the maps are still consistent
        // because every update below is applied only after all checks passed.
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("messages", &self.messages.len()).finish_non_exhaustive()
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl IdentityKeyStore for MemoryStore {
    async fn load_identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        self.protocol.load_identity_key_pair().await
    }
    async fn load_local_registration_id(&self) -> Result<u32, StoreError> {
        self.protocol.load_local_registration_id().await
    }
    async fn load_identity(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<IdentityKey>, StoreError> {
        self.protocol.load_identity(address).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl PreKeyStore for MemoryStore {
    async fn load_pre_key(&self, id: PreKeyId) -> Result<Option<PreKeyRecord>, StoreError> {
        self.protocol.load_pre_key(id).await
    }
    async fn count_pre_keys(&self) -> Result<usize, StoreError> {
        self.protocol.count_pre_keys().await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SignedPreKeyStore for MemoryStore {
    async fn load_signed_pre_key(
        &self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        self.protocol.load_signed_pre_key(id).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl KyberPreKeyStore for MemoryStore {
    async fn load_kyber_pre_key(
        &self,
        id: KyberPreKeyId,
    ) -> Result<Option<KyberPreKeyRecord>, StoreError> {
        self.protocol.load_kyber_pre_key(id).await
    }
    async fn kyber_pre_key_used_with(
        &self,
        id: KyberPreKeyId,
        signed_pre_key_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> Result<bool, StoreError> {
        self.protocol.kyber_pre_key_used_with(id, signed_pre_key_id, base_key).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SessionStore for MemoryStore {
    async fn load_session(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<SessionRecord>, StoreError> {
        self.protocol.load_session(address).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SenderKeyStore for MemoryStore {
    async fn load_sender_key(
        &self,
        name: &SenderKeyName,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        self.protocol.load_sender_key(name).await
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
        // Records are locked first and kept locked while the protocol half is applied, so
        // two batches never interleave; a refused protocol half leaves the records alone.
        let mut records = self.lock();
        self.protocol.apply(protocol)?;
        if account.is_some() {
            records.account = account;
        }
        records.device_lists.extend(device_lists);
        for id in &removed_messages {
            records.messages.remove(id);
        }
        records.messages.extend(messages);
        records.groups.extend(groups);
        records.outbox.retain(|e| !removed_outbox.contains(&e.id) && !outbox.contains_key(&e.id));
        records.outbox.extend(outbox.into_values());
        records.outbox.sort_by_key(|e| (e.id.timestamp, e.id.sender, e.id.device));
        records.contacts.extend(contacts);
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
        let records = self.lock();
        let mut list: Vec<MessageRecord> = records
            .messages
            .values()
            .filter(|m| m.conversation == *conversation)
            .cloned()
            .collect();
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
        let records = self.lock();
        let mut list: Vec<MessageRecord> = records
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

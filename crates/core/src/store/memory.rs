//! `MemoryStore`: the reference messenger store, in memory — tandem-signal's protocol
//! `MemoryStoreWith` keeping the engine's records under the same lock. Used by tests and the
//! native client, and the model every other [`ClientStore`] is checked against.

use std::collections::HashMap;

use async_trait::async_trait;
use tandem_signal::AccountId;
use tandem_signal::store::MemoryStoreWith;

use super::{ClientChanges, ClientStore, StoreError};
use crate::records::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MessageId, MessageRecord,
    OutboxEntry,
};

/// An in-memory [`ClientStore`]: the protocol store with the messenger's records.
pub type MemoryStore = MemoryStoreWith<MessengerRecords>;

/// The engine's records as [`MemoryStore`] keeps them.
#[derive(Debug, Default)]
pub struct MessengerRecords {
    account: Option<AccountRecord>,
    device_lists: HashMap<AccountId, DeviceListRecord>,
    messages: HashMap<MessageId, MessageRecord>,
    groups: HashMap<[u8; 16], GroupRecord>,
    outbox: Vec<OutboxEntry>,
    contacts: HashMap<AccountId, String>,
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
        // One lock for both halves: a refused protocol half leaves the records alone.
        self.apply_with(protocol, |records| {
            if account.is_some() {
                records.account = account;
            }
            records.device_lists.extend(device_lists);
            for id in &removed_messages {
                records.messages.remove(id);
            }
            records.messages.extend(messages);
            records.groups.extend(groups);
            records
                .outbox
                .retain(|e| !removed_outbox.contains(&e.id) && !outbox.contains_key(&e.id));
            records.outbox.extend(outbox.into_values());
            records.outbox.sort_by_key(|e| (e.id.timestamp, e.id.sender, e.id.device));
            records.contacts.extend(contacts);
        })
    }

    async fn load_account(&self) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.records(|r| r.account.clone()))
    }
    async fn load_device_list(
        &self,
        account: &AccountId,
    ) -> Result<Option<DeviceListRecord>, StoreError> {
        Ok(self.records(|r| r.device_lists.get(account).cloned()))
    }
    async fn load_message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.records(|r| r.messages.get(id).cloned()))
    }
    async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        Ok(self.records(|r| r.outbox.clone()))
    }
    async fn load_contact(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        Ok(self.records(|r| r.contacts.get(account).cloned()))
    }
    async fn load_messages(
        &self,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let mut list: Vec<MessageRecord> = self.records(|r| {
            r.messages.values().filter(|m| m.conversation == *conversation).cloned().collect()
        });
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
        let mut list: Vec<MessageRecord> = self.records(|r| {
            r.messages
                .values()
                .filter(|m| m.conversation == *conversation && m.id.sort_key() < before.sort_key())
                .cloned()
                .collect()
        });
        list.sort_by_key(|m| m.id.sort_key());
        let skip = list.len().saturating_sub(limit);
        Ok(list.split_off(skip))
    }
    async fn load_group(&self, group_id: &[u8; 16]) -> Result<Option<GroupRecord>, StoreError> {
        Ok(self.records(|r| r.groups.get(group_id).cloned()))
    }
}

//! The messenger's store trait: the protocol store plus the engine's records.

use async_trait::async_trait;
use tandem_signal::AccountId;

use super::{ClientChanges, ProtocolStore, StoreError};
use crate::records::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MessageId, MessageRecord,
    OutboxEntry,
};

/// What the messaging engine keeps besides protocol state.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait ClientStore: ProtocolStore {
    /// Applies a messenger batch (protocol changes and the engine's records) atomically, with
    /// [`ProtocolStore::save_changes`]'s contract; `save_changes(c)` must equal
    /// `save_client_changes(c.into())`.
    async fn save_client_changes(&self, changes: ClientChanges) -> Result<(), StoreError>;
    /// This device's account record, once registered.
    async fn load_account(&self) -> Result<Option<AccountRecord>, StoreError>;
    /// The cached verified device list of an account.
    async fn load_device_list(
        &self,
        account: &AccountId,
    ) -> Result<Option<DeviceListRecord>, StoreError>;
    /// A message by id.
    async fn load_message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError>;
    /// The outbox, oldest first.
    async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The handle of an account, as last saved in [`ClientChanges::contacts`].
    async fn load_contact(&self, account: &AccountId) -> Result<Option<String>, StoreError>;
    /// The newest `limit` messages of a conversation, oldest first.
    async fn load_messages(
        &self,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError>;
    /// The `limit` messages of a conversation just older than `before` (in message order),
    /// oldest first: one page of history, whatever the history's length.
    async fn load_messages_before(
        &self,
        conversation: &Conversation,
        before: &MessageId,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError>;
    /// A group as this device last verified it.
    async fn load_group(&self, group_id: &[u8; 16]) -> Result<Option<GroupRecord>, StoreError>;
}

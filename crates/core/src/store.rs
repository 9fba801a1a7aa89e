//! Storage: the protocol store of `tandem_signal::store` (re-exported here: the async store
//! traits, atomic [`Changes`] batches, sealed encryptions) and, next to it, the messenger's
//! own records: a [`ClientStore`] applies a [`ClientChanges`] — protocol changes together with
//! accounts, device lists, messages, groups and the outbox — in one transaction.
//!
//! Operations read through the traits and *return* the changes they made instead of writing
//! them. That lets a client persist a decrypted message together with the ratchet state that
//! decrypted it, and acknowledge the message to the server only after that transaction
//! committed.

mod memory;
pub mod read_model;
mod session_log;
mod traits;

use std::collections::HashMap;

pub use memory::{MemoryStore, MessengerRecords};
pub use session_log::{MAX_LOG_ENTRY_LEN, SessionLogEntry};
use tandem_signal::AccountId;
pub use tandem_signal::store::{
    Chain, ChainPosition, Changes, Encrypted, EncryptedBatch, Guard, IdentityKeyStore,
    KyberPreKeyStore, KyberPreKeyUse, PreKeyStore, ProtocolStore, SenderKeyName, SenderKeyStore,
    SessionStore, SignedPreKeyStore, StoreError,
};
pub use traits::ClientStore;

use crate::records::{
    AccountRecord, DeviceListRecord, GroupRecord, MessageId, MessageRecord, OutboxEntry,
};

/// A messenger's batch: protocol [`Changes`] (reached through `Deref`) together with the
/// engine's own records, applied atomically by [`ClientStore::save_client_changes`] — so a
/// decrypted message is stored in the same transaction as the ratchet step that decrypted it.
#[must_use = "nothing changes until the batch is saved with `ClientStore::save_client_changes`"]
#[derive(Clone, Debug, Default)]
pub struct ClientChanges {
    /// The protocol state changed.
    pub protocol: Changes,
    /// This device's account record (replaced whole).
    pub account: Option<AccountRecord>,
    /// Verified device lists to store.
    pub device_lists: HashMap<AccountId, DeviceListRecord>,
    /// Messages to store (replacing one with the same id).
    pub messages: HashMap<MessageId, MessageRecord>,
    /// Messages to delete (an unsent message stamped afresh under a new id).
    pub removed_messages: Vec<MessageId>,
    /// Groups to store (replacing the record with the same id).
    pub groups: HashMap<[u8; 16], GroupRecord>,
    /// Outbox entries to add or replace.
    pub outbox: HashMap<MessageId, OutboxEntry>,
    /// Outbox entries to remove (sent or given up).
    pub removed_outbox: Vec<MessageId>,
    /// Handles of accounts, as a lookup found them (the chat list names chats by them).
    pub contacts: HashMap<AccountId, String>,
}

impl std::ops::Deref for ClientChanges {
    type Target = Changes;
    fn deref(&self) -> &Changes {
        &self.protocol
    }
}

impl std::ops::DerefMut for ClientChanges {
    fn deref_mut(&mut self) -> &mut Changes {
        &mut self.protocol
    }
}

impl From<Changes> for ClientChanges {
    fn from(protocol: Changes) -> Self {
        Self { protocol, ..Self::default() }
    }
}

impl ClientChanges {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.protocol.is_empty()
            && self.account.is_none()
            && self.device_lists.is_empty()
            && self.messages.is_empty()
            && self.removed_messages.is_empty()
            && self.groups.is_empty()
            && self.outbox.is_empty()
            && self.removed_outbox.is_empty()
            && self.contacts.is_empty()
    }

    /// Adds `later`'s changes (a protocol batch or a messenger one); where both touch one
    /// record, `later` wins.
    pub fn merge(&mut self, later: impl Into<ClientChanges>) {
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
        } = later.into();
        self.protocol.merge(protocol);
        if account.is_some() {
            self.account = account;
        }
        self.device_lists.extend(device_lists);
        for id in &removed_messages {
            self.messages.remove(id);
        }
        for id in messages.keys() {
            self.removed_messages.retain(|r| r != id);
        }
        self.messages.extend(messages);
        self.removed_messages.extend(removed_messages);
        self.groups.extend(groups);
        for id in &removed_outbox {
            self.outbox.remove(id);
        }
        for id in outbox.keys() {
            self.removed_outbox.retain(|r| r != id);
        }
        self.outbox.extend(outbox);
        self.removed_outbox.extend(removed_outbox);
        self.contacts.extend(contacts);
    }
}

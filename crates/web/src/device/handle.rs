//! The [`Device`] handle a tab's UI holds, and the [`DeviceActions`] both hosts implement.

use std::rc::Rc;

use async_trait::async_trait;
use tandem_core::AccountId;
use tandem_core::client::{
    Client, ClientError, Conversation, DeviceListRecord, MessageId, MessageRecord,
};
use tandem_core::link::LinkCode;
use tandem_core::store::ClientStore;
use tandem_core::wire::relay::DeviceInfo;

use super::engine::CodeView;
use super::host::Host;
use super::view::View;
use super::{ActionError, Command, Outcome, Scan};
use crate::store::{ConversationSummary, IdbStore};

/// What a tab can do with its device: run a command on the engine (here or in another tab),
/// read the store, and end.
#[async_trait(?Send)]
pub trait DeviceActions {
    /// Runs `command` on the device's engine.
    async fn run(&self, command: Command) -> Result<Outcome, ActionError>;
    /// The store this tab reads messages and chats from.
    fn store(&self) -> &IdbStore;
    /// This tab wrote a text to the send journal.
    fn journal_written(&self);
    /// This device was logged out: stop, tell the other tabs, close the store so it can be
    /// deleted.
    fn shut_down(&self);
}

/// Who this device is.
#[derive(Clone, Debug)]
struct Me {
    handle: String,
    account: AccountId,
    device: u32,
    primary: bool,
}

/// This browser's device, for the UI.
#[derive(Clone)]
pub struct Device {
    actions: Rc<dyn DeviceActions>,
    view: Rc<View>,
    me: Rc<Me>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device").field("me", &self.me).finish_non_exhaustive()
    }
}

impl Device {
    /// The device `view` shows.
    pub async fn of_view(view: Rc<View>) -> Self {
        let me = who(view.client()).await;
        Self { actions: view.clone(), view, me: Rc::new(me) }
    }

    /// Runs `command` on the device's engine (wherever it runs).
    pub async fn run(&self, command: Command) -> Result<Outcome, ActionError> {
        self.actions.run(command).await
    }

    /// The view (the hosting tab hands it its engine).
    pub fn view(&self) -> &Rc<View> {
        &self.view
    }

    /// Where this tab runs the engine, when it hosts it.
    pub fn host(&self) -> Option<Host> {
        self.view.host()
    }

    /// Whether this tab only views an engine that runs in another tab.
    pub fn is_viewer(&self) -> bool {
        !self.view.is_host()
    }

    /// This account's handle.
    pub fn handle(&self) -> &str {
        &self.me.handle
    }

    /// This device's account.
    pub fn account_id(&self) -> AccountId {
        self.me.account
    }

    /// This device's id.
    pub fn device_id(&self) -> u32 {
        self.me.device
    }

    /// Whether this is the account's primary device.
    pub fn is_primary(&self) -> bool {
        self.me.primary
    }

    /// The store (for reading).
    pub fn store(&self) -> &IdbStore {
        self.actions.store()
    }

    /// This device was logged out (see [`DeviceActions::shut_down`]).
    pub fn shut_down(&self) {
        self.actions.shut_down();
    }

    /// Finds an account by handle and remembers it as a contact.
    pub async fn find(&self, handle: &str) -> Result<(AccountId, String), ActionError> {
        match self.actions.run(Command::Find { handle: handle.to_owned() }).await? {
            Outcome::Account { id, handle } => Ok((account(&id)?, handle)),
            _ => Err(ActionError::unexpected("lookup")),
        }
    }

    /// The name to show for an account: its handle, learned from the relay once.
    pub async fn name_of(&self, account: AccountId) -> String {
        if let Ok(Some(h)) = self.store().contact(&account).await {
            return h;
        }
        match self.actions.run(Command::Name { account: account.0.to_vec() }).await {
            Ok(Outcome::Name(n)) => n,
            _ => short_name(account),
        }
    }

    /// Sends `text` to `conversation`: writes it to the send journal at once (durable before
    /// this returns, so the composer may clear); the engine queues it in the outbox and sends
    /// it (see [`crate::journal`]).
    pub fn send(
        &self,
        conversation: Conversation,
        text: &str,
        reply_to: Option<MessageId>,
    ) -> Result<(), ActionError> {
        if text.trim().is_empty() {
            return Err(ActionError::invalid("The message is empty."));
        }
        if text.len() > tandem_core::client::MAX_TEXT_LEN {
            return Err(ActionError::invalid(format!(
                "A message is at most {} bytes.",
                tandem_core::client::MAX_TEXT_LEN
            )));
        }
        crate::journal::add(&conversation, text, reply_to).map_err(ActionError::invalid)?;
        self.actions.journal_written();
        Ok(())
    }

    /// Marks a direct conversation read (read receipts to the peer, read sync to this
    /// account's other devices). Best effort: a failure leaves it unread.
    pub async fn mark_read(&self, peer: AccountId) {
        let _ = self.actions.run(Command::MarkRead { peer: peer.0.to_vec() }).await;
    }

    /// Marks a group's messages read on this device. Best effort.
    pub async fn mark_group_read(&self, group: [u8; 16]) {
        let _ = self.actions.run(Command::MarkGroupRead { group: group.to_vec() }).await;
    }

    /// The newest `limit` messages of a conversation, oldest first.
    pub async fn messages(
        &self,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, ActionError> {
        self.store()
            .load_messages(conversation, limit)
            .await
            .map_err(|e| ActionError::from(ClientError::from(e)))
    }

    /// The `limit` messages of a conversation just older than `before`, oldest first.
    pub async fn messages_before(
        &self,
        conversation: &Conversation,
        before: &MessageId,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, ActionError> {
        self.store()
            .load_messages_before(conversation, before, limit)
            .await
            .map_err(|e| ActionError::from(ClientError::from(e)))
    }

    /// The chat list.
    pub async fn conversations(&self) -> Result<Vec<ConversationSummary>, ActionError> {
        self.store().conversations().await.map_err(|e| ActionError::from(ClientError::from(e)))
    }

    /// What this browser knows about trusting `contact` (for the chat's notices).
    pub async fn trust(&self, contact: AccountId) -> Option<DeviceListRecord> {
        self.store().load_device_list(&contact).await.ok().flatten()
    }

    /// The account's devices as the relay lists them, primary first.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, ActionError> {
        match self.actions.run(Command::Devices).await? {
            Outcome::Devices(list) => list
                .iter()
                .map(|b| prost::Message::decode(b.as_slice()))
                .collect::<Result<_, _>>()
                .map_err(|_| ActionError::unexpected("devices")),
            _ => Err(ActionError::unexpected("devices")),
        }
    }

    /// Primary: links the companion showing `code`. Returns the matching code both screens
    /// show and the link's key index (see [`Device::confirm_link`]).
    pub async fn link_device(&self, code: &LinkCode) -> Result<(String, u32), ActionError> {
        match self.actions.run(Command::Link { code: code.to_text().to_string() }).await? {
            Outcome::Matching { code, key_index } => Ok((code, key_index)),
            _ => Err(ActionError::unexpected("link")),
        }
    }

    /// Primary: both screens showed the same code: the companion is signed into the list.
    pub async fn confirm_link(&self, key_index: u32) -> Result<(), ActionError> {
        self.done(Command::ConfirmLink { key_index }).await
    }

    /// Primary: the codes differed (or the person cancelled): the link is revoked.
    pub async fn reject_link(&self, key_index: u32) -> Result<(), ActionError> {
        self.done(Command::RejectLink { key_index }).await
    }

    /// Logs a device out: the primary any companion, a companion itself.
    pub async fn remove_device(&self, device: u32) -> Result<(), ActionError> {
        self.done(Command::RemoveDevice { device }).await
    }

    /// Renames this device (1 to 64 characters).
    pub async fn rename_device(&self, name: &str) -> Result<(), ActionError> {
        self.done(Command::Rename { name: name.to_owned() }).await
    }

    /// The security code with `contact`, fresh from the relay.
    pub async fn security_code(&self, contact: AccountId) -> Result<CodeView, ActionError> {
        match self.actions.run(Command::SecurityCode { contact: contact.0.to_vec() }).await? {
            Outcome::Code { digits, text, list } => Ok(CodeView {
                digits,
                text,
                list: DeviceListRecord::from_bytes(&list)
                    .map_err(|_| ActionError::unexpected("security code"))?,
            }),
            _ => Err(ActionError::unexpected("security code")),
        }
    }

    /// Checks `contact`'s code text; marks them verified if it matches.
    pub async fn verify_code(&self, contact: AccountId, text: &str) -> Result<Scan, ActionError> {
        let command = Command::VerifyCode { contact: contact.0.to_vec(), text: text.to_owned() };
        match self.actions.run(command).await? {
            Outcome::Scan(s) => Ok(s),
            _ => Err(ActionError::unexpected("verify")),
        }
    }

    /// Marks `contact` verified (digits compared by eye) or not.
    pub async fn set_verified(
        &self,
        contact: AccountId,
        verified: bool,
    ) -> Result<(), ActionError> {
        self.done(Command::SetVerified { contact: contact.0.to_vec(), verified }).await
    }

    /// The person saw that `contact`'s security code changed.
    pub async fn acknowledge_key_change(&self, contact: AccountId) -> Result<(), ActionError> {
        self.done(Command::AcknowledgeKeyChange { contact: contact.0.to_vec() }).await
    }

    /// Primary: starts the account over with a new account key (the engine's host then runs
    /// the new device, and views reopen).
    pub async fn reset_account(&self) -> Result<(), ActionError> {
        self.done(Command::ResetAccount).await
    }

    async fn done(&self, command: Command) -> Result<(), ActionError> {
        match self.actions.run(command).await? {
            Outcome::Done => Ok(()),
            _ => Err(ActionError::unexpected("done")),
        }
    }
}

/// Who the device of `client` is.
async fn who(client: &Client<IdbStore>) -> Me {
    let a = client.account().await;
    Me {
        handle: a.handle.clone(),
        account: a.account_id,
        device: a.device_id.get(),
        primary: a.device_id.is_primary(),
    }
}

/// An account id from a command's bytes.
pub(crate) fn account(bytes: &[u8]) -> Result<AccountId, ActionError> {
    AccountId::from_bytes(bytes).map_err(|_| ActionError::invalid("That account does not exist."))
}

/// A group id from its 16 bytes.
pub(crate) fn group(bytes: &[u8]) -> Result<[u8; 16], ActionError> {
    <[u8; 16]>::try_from(bytes).map_err(|_| ActionError::invalid("That group does not exist."))
}

/// What to call an account whose handle is not known yet.
pub(crate) fn short_name(account: AccountId) -> String {
    format!("{}…", &account.to_string()[..8])
}

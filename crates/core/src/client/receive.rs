//! Receiving: verify the sending device (ADV), decrypt, de-duplicate, apply the content, and
//! save everything in one batch before returning, so the caller acknowledges only what is
//! durable.

use rand_core::CryptoRng;

use super::{Client, ClientError, Conversation, MessageId, MessageRecord, OutgoingState};
use crate::address::{AccountId, DeviceId};
use crate::error::ProtocolError;
use crate::sender_keys::{DistributionId, group_decrypt, process_sender_key_distribution_message};
use crate::session::message_decrypt;
use crate::store::{Changes, ClientStore};
use crate::time::Timestamp;
use crate::transport::RelayTransport;
use crate::wire::content::{Content, DataMessage, MessageRef, ReceiptType, content, sync_message};
use crate::wire::relay::Envelope;
use crate::wire::signal::{CiphertextMessage, SenderKeyDistributionMessage};

/// A delivery receipt owed to a sender once its message is stored.
#[derive(Clone, Debug)]
pub(crate) struct PendingReceipt {
    pub(crate) to: AccountId,
    pub(crate) message: MessageRef,
}

/// What receiving one envelope did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new message: from a contact, or sent by this account from another device.
    Message(MessageRecord),
    /// One of this account's messages reached a recipient device.
    Delivered {
        /// The message.
        id: MessageId,
        /// The device that confirmed.
        by: (AccountId, DeviceId),
    },
    /// One of this account's messages was read.
    Read {
        /// The message.
        id: MessageId,
        /// Who read it.
        by: AccountId,
    },
    /// A message was read on another device of this account.
    ReadElsewhere {
        /// The message.
        id: MessageId,
    },
    /// A group member's sender key arrived.
    SenderKey {
        /// The sender.
        from: AccountId,
        /// The group.
        group: [u8; 16],
    },
    /// The envelope was already handled (a redelivery).
    Duplicate,
    /// The sending device is not one the account signed, or its key is not the signed one:
    /// the message was dropped unread.
    Rejected {
        /// The claimed sender.
        sender: AccountId,
        /// The claimed device.
        device: u32,
        /// Why.
        reason: String,
    },
    /// The message could not be decrypted (it is lost; the sender is not told).
    Undecryptable {
        /// The sender.
        sender: AccountId,
        /// The device.
        device: u32,
        /// The sender's timestamp as the server reported it.
        timestamp: u64,
        /// Why.
        reason: String,
    },
}

impl<S: ClientStore> Client<S> {
    /// Handles one envelope from the relay. `Ok` means everything it changed is saved: the
    /// caller should now acknowledge `envelope.id`. `Err` means nothing was saved (store or
    /// network failure): leave it unacknowledged and it will come again.
    pub async fn receive<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        envelope: &Envelope,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Event>, ClientError> {
        let Ok(sender) = AccountId::from_bytes(&envelope.source_account) else {
            return Ok(vec![Event::Rejected {
                sender: AccountId([0; 16]),
                device: envelope.source_device,
                reason: "bad sender".into(),
            }]);
        };
        let rejected = |reason: String| {
            Ok(vec![Event::Rejected { sender, device: envelope.source_device, reason }])
        };
        let verified =
            match self.verified_sender(transport, sender, envelope.source_device, now).await? {
                Ok(v) => v,
                Err(reason) => return rejected(reason),
            };
        let (me, my_device) = self.whoami().await;
        if sender == me && verified.device_id == my_device {
            return rejected("a message claiming to come from this very device".into());
        }
        let addr = sender.address(verified.device_id);
        let undecryptable = |reason: String| {
            Ok(vec![Event::Undecryptable {
                sender,
                device: envelope.source_device,
                timestamp: envelope.client_timestamp,
                reason,
            }])
        };

        let account = self.lock().await;
        let (plaintext, mut changes) = match envelope.r#type {
            2 | 3 => {
                let Ok(type_byte) = u8::try_from(envelope.r#type) else {
                    return undecryptable("bad type".into());
                };
                let msg = match CiphertextMessage::from_bytes(type_byte, &envelope.content) {
                    Ok(m) => m,
                    Err(e) => return undecryptable(e.to_string()),
                };
                if let CiphertextMessage::PreKey(p) = &msg
                    && *p.identity_key() != verified.identity_key
                {
                    return rejected("its identity key is not the one the account signed".into());
                }
                // The ADV-verified key is the one to trust for this device.
                let mut pre = Changes::default();
                if self.store.load_identity(&addr).await? != Some(verified.identity_key) {
                    pre.identities.insert(addr.clone(), verified.identity_key);
                    self.save(&account, pre).await?;
                }
                match message_decrypt(&self.store, &addr, &msg, rng).await {
                    Ok((plain, changes)) => {
                        let session_key = changes
                            .sessions
                            .get(&addr)
                            .and_then(|r| r.current())
                            .map(|s| *s.remote_identity());
                        if session_key != Some(verified.identity_key) {
                            return rejected(
                                "the session is not with the key the account signed".into(),
                            );
                        }
                        (plain, changes)
                    }
                    Err(ProtocolError::DuplicatedMessage { .. }) => {
                        return Ok(vec![Event::Duplicate]);
                    }
                    Err(ProtocolError::Store(e)) => return Err(ClientError::Store(e)),
                    Err(e) => return undecryptable(e.to_string()),
                }
            }
            7 => match group_decrypt(&self.store, &addr, &envelope.content).await {
                Ok(r) => r,
                Err(ProtocolError::DuplicatedMessage { .. }) => return Ok(vec![Event::Duplicate]),
                Err(ProtocolError::Store(e)) => return Err(ClientError::Store(e)),
                Err(e) => return undecryptable(e.to_string()),
            },
            other => return undecryptable(format!("unknown envelope type {other}")),
        };
        let content = match Content::from_padded_bytes(&plaintext) {
            Ok(c) => c,
            Err(e) => return undecryptable(e.to_string()),
        };
        let mut receipts = Vec::new();
        let events = self
            .apply(
                &content,
                me,
                sender,
                verified.device_id,
                envelope,
                now,
                &mut changes,
                &mut receipts,
            )
            .await?;
        self.save(&account, changes).await?;
        drop(account);
        self.pending_receipts.lock().await.extend(receipts);
        Ok(events)
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &self,
        content: &Content,
        me: AccountId,
        sender: AccountId,
        device: DeviceId,
        envelope: &Envelope,
        now: Timestamp,
        changes: &mut Changes,
        receipts: &mut Vec<PendingReceipt>,
    ) -> Result<Vec<Event>, ClientError> {
        // Called with the engine lock held: never take it again here.
        let own = sender == me;
        let mut events = Vec::new();
        match &content.body {
            Some(content::Body::Data(data)) => {
                let conversation = conversation_of(data, if own { me } else { sender });
                let id = MessageId { sender, device, timestamp: data.timestamp };
                if self.known(id, changes).await? {
                    events.push(Event::Duplicate);
                } else {
                    let record = incoming(id, conversation, data, own, now);
                    changes.messages.insert(id, record.clone());
                    events.push(Event::Message(record));
                    if !own && envelope.group_id.is_empty() {
                        receipts.push(PendingReceipt {
                            to: sender,
                            message: MessageRef { device: device.get(), timestamp: data.timestamp },
                        });
                    }
                }
            }
            Some(content::Body::Sync(sync)) if own => match &sync.kind {
                Some(sync_message::Kind::Sent(sent)) => {
                    let Some(data) = &sent.message else { return Ok(events) };
                    let destination = AccountId::from_bytes(&sent.destination).unwrap_or(me);
                    let id = MessageId { sender: me, device, timestamp: data.timestamp };
                    if self.known(id, changes).await? {
                        events.push(Event::Duplicate);
                    } else {
                        let mut record =
                            incoming(id, conversation_of(data, destination), data, true, now);
                        record.state = OutgoingState::Sent;
                        changes.messages.insert(id, record.clone());
                        events.push(Event::Message(record));
                    }
                }
                Some(sync_message::Kind::Read(read)) => {
                    for entry in &read.entries {
                        let (Ok(from), Ok(d)) = (
                            AccountId::from_bytes(&entry.sender),
                            DeviceId::new(entry.sender_device),
                        ) else {
                            continue;
                        };
                        let id = MessageId { sender: from, device: d, timestamp: entry.timestamp };
                        if let Some(mut m) = self.load(id, changes).await?
                            && m.read_by.insert(me)
                        {
                            changes.messages.insert(id, m);
                            events.push(Event::ReadElsewhere { id });
                        }
                    }
                }
                None => {}
            },
            Some(content::Body::Sync(_)) => {
                events.push(Event::Rejected {
                    sender,
                    device: device.get(),
                    reason: "a sync message from another account".into(),
                });
            }
            Some(content::Body::Receipt(receipt)) if !own => {
                let kind =
                    ReceiptType::try_from(receipt.r#type).unwrap_or(ReceiptType::Unspecified);
                for r in &receipt.messages {
                    let Ok(d) = DeviceId::new(r.device) else { continue };
                    let id = MessageId { sender: me, device: d, timestamp: r.timestamp };
                    let Some(mut m) = self.load(id, changes).await? else { continue };
                    let changed = match kind {
                        ReceiptType::Delivery => {
                            let new = m.delivered_to.insert((sender, device));
                            if new {
                                events.push(Event::Delivered { id, by: (sender, device) });
                            }
                            new
                        }
                        ReceiptType::Read => {
                            // A read message was delivered too.
                            m.delivered_to.insert((sender, device));
                            let new = m.read_by.insert(sender);
                            if new {
                                events.push(Event::Read { id, by: sender });
                            }
                            new
                        }
                        ReceiptType::Unspecified => false,
                    };
                    if changed {
                        changes.messages.insert(id, m);
                    }
                }
            }
            Some(content::Body::Receipt(_)) => {}
            Some(content::Body::SenderKeyDistribution(bytes)) => {
                let skdm = SenderKeyDistributionMessage::from_bytes(bytes)?;
                let c = process_sender_key_distribution_message(
                    &self.store,
                    &sender.address(device),
                    &skdm,
                )
                .await?;
                let group = DistributionId(skdm.distribution_id()).0;
                changes.merge(c);
                events.push(Event::SenderKey { from: sender, group });
            }
            None => {}
        }
        Ok(events)
    }

    async fn load(
        &self,
        id: MessageId,
        changes: &Changes,
    ) -> Result<Option<MessageRecord>, ClientError> {
        if let Some(m) = changes.messages.get(&id) {
            return Ok(Some(m.clone()));
        }
        Ok(self.store.load_message(&id).await?)
    }

    async fn known(&self, id: MessageId, changes: &Changes) -> Result<bool, ClientError> {
        Ok(self.load(id, changes).await?.is_some())
    }
}

fn conversation_of(data: &DataMessage, peer: AccountId) -> Conversation {
    match <[u8; 16]>::try_from(data.group_id.as_slice()) {
        Ok(g) => Conversation::Group(g),
        Err(_) => Conversation::Direct(peer),
    }
}

fn incoming(
    id: MessageId,
    conversation: Conversation,
    data: &DataMessage,
    outgoing: bool,
    now: Timestamp,
) -> MessageRecord {
    // Incoming messages carry no send state; `Sent` reads as "arrived".
    MessageRecord {
        id,
        conversation,
        body: data.body.clone(),
        outgoing,
        state: OutgoingState::Sent,
        stored_at: now,
        delivered_to: Default::default(),
        read_by: Default::default(),
    }
}

//! Receiving: verify the sending device (ADV), decrypt, de-duplicate, apply the content, and
//! save everything in one batch before returning, so the caller acknowledges only what is
//! durable.
//!
//! What is accepted from whom:
//! - pairwise messages only from devices the sender's account signed (a PreKey message only
//!   under the identity the account signed for that device);
//! - group messages only as sender-key messages whose distribution id is the envelope's
//!   group, from members of the group's *verified* signed state; a pairwise message that
//!   names a group is refused;
//! - sender keys and group states only from members / signers the verified state allows;
//! - receipts only for messages sent to the receipt's sender (or its group);
//! - sync messages only from this account's own devices.

use rand_core::CryptoRng;

use super::{Client, ClientError, Conversation, MessageId, MessageRecord, Notice, OutgoingState};
use crate::devices::{AdvError, VerifiedDevice};
use crate::group_state::GroupStateError;
use crate::sender_keys::{DistributionId, group_decrypt, process_sender_key_distribution_message};
use crate::session::{accept_identity, message_decrypt};
use crate::store::{ClientChanges, ClientStore};
use crate::transport::RelayTransport;
use crate::wire::content::{Content, DataMessage, MessageRef, ReceiptType, content, sync_message};
use crate::wire::relay::{Envelope, ExpiredEntry};
use crate::wire::signal::{
    CiphertextMessage, CiphertextMessageType, SenderKeyDistributionMessage, SenderKeyMessage,
};
use tandem_signal::ProtocolError;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};

/// A delivery receipt owed to a sender once its message is stored.
#[derive(Clone, Debug)]
pub(crate) struct PendingReceipt {
    pub(crate) to: AccountId,
    pub(crate) message: MessageRef,
}

/// Why an envelope was refused unread (or its content ignored).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The envelope names no valid sender account.
    #[error("the sender is not a valid account")]
    BadSender,
    /// The sending device did not verify (ADV).
    #[error("{0}")]
    Adv(AdvError),
    /// The envelope claims to come from this very device.
    #[error("a message claiming to come from this very device")]
    OwnDevice,
    /// The session is not with the identity the account signed.
    #[error("the session is not with the key the account signed")]
    SessionMismatch,
    /// A sync message from another account.
    #[error("a sync message from another account")]
    ForeignSync,
    /// Group content outside a sender-key message of that group (a pairwise message naming
    /// a group, or a group envelope whose key or content names another group).
    #[error("group content that is not a sender-key message of that group")]
    NotGroupMessage,
    /// The sender is not a member of the group's verified state (or the group is unknown).
    #[error("the sender is not a member of the group")]
    NotGroupMember,
    /// A group state that does not verify or does not follow the one held.
    #[error("{0}")]
    GroupState(GroupStateError),
    /// A receipt for a message that was not sent to its sender.
    #[error("a receipt for a message that was not sent to its sender")]
    ReceiptFromStranger,
}

/// What receiving one envelope did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new message (or a notice: a group change, an expiry gap): from a contact, or sent by
    /// this account from another device.
    Message(Box<MessageRecord>),
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
    /// A group's verified state moved on (the change itself comes as a notice message).
    GroupUpdated {
        /// The group.
        group: [u8; 16],
        /// Whether this account is invited and has not accepted yet.
        invited: bool,
    },
    /// A call changed: ringing, answered, candidates, ended (see [`crate::calls`]).
    Call(Box<crate::calls::CallUpdate>),
    /// The envelope was already handled (a redelivery).
    Duplicate,
    /// The envelope (or what it carried) was refused unread.
    Rejected {
        /// The claimed sender.
        sender: AccountId,
        /// The claimed device.
        device: u32,
        /// Why.
        reason: RejectReason,
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

/// Where a decrypted content came from.
pub(super) struct Origin<'a> {
    pub(super) sender: AccountId,
    pub(super) device: DeviceId,
    pub(super) verified: &'a VerifiedDevice,
    pub(super) envelope: &'a Envelope,
    /// The group whose sender key decrypted it, for sender-key messages.
    pub(super) group: Option<[u8; 16]>,
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
                reason: RejectReason::BadSender,
            }]);
        };
        let rejected = |reason: RejectReason| {
            Ok(vec![Event::Rejected { sender, device: envelope.source_device, reason }])
        };
        let undecryptable = |reason: String| {
            Ok(vec![Event::Undecryptable {
                sender,
                device: envelope.source_device,
                timestamp: envelope.client_timestamp,
                reason,
            }])
        };
        let pairwise = match CiphertextMessageType::try_from(envelope.r#type) {
            Ok(CiphertextMessageType::SenderKey) => None,
            Ok(kind) => match CiphertextMessage::from_bytes(kind, &envelope.content) {
                Ok(m) => Some(m),
                Err(e) => return undecryptable(e.to_string()),
            },
            Err(_) => return undecryptable(format!("unknown envelope type {}", envelope.r#type)),
        };
        let claimed = match &pairwise {
            Some(CiphertextMessage::PreKey(p)) => Some(*p.identity_key()),
            _ => None,
        };
        let verified = match self
            .verified_sender(transport, sender, envelope.source_device, claimed.as_ref(), now)
            .await?
        {
            Ok(v) => v,
            Err(reason) => return rejected(RejectReason::Adv(reason)),
        };
        let (me, my_device) = self.whoami().await;
        if sender == me && verified.device_id == my_device {
            return rejected(RejectReason::OwnDevice);
        }
        let addr = sender.address(verified.device_id);
        // A group message: only from a member of the verified state of the group it names,
        // under that group's sender key. The state may have to be fetched first (a new
        // group, or a change whose announcement was lost).
        let group = match &pairwise {
            Some(_) => None,
            None => {
                let message = match SenderKeyMessage::from_bytes(&envelope.content) {
                    Ok(m) => m,
                    Err(e) => return undecryptable(e.to_string()),
                };
                let Ok(group) = <[u8; 16]>::try_from(envelope.group_id.as_slice()) else {
                    return rejected(RejectReason::NotGroupMessage);
                };
                if message.distribution_id() != group {
                    return rejected(RejectReason::NotGroupMessage);
                }
                if !self.is_group_member(transport, group, sender, now).await? {
                    return rejected(RejectReason::NotGroupMember);
                }
                Some(group)
            }
        };

        let account = self.lock().await;
        let (plaintext, changes) = match &pairwise {
            Some(msg) => {
                // The ADV-verified key is the one to trust for this device.
                if self.store.load_identity(&addr).await? != Some(verified.identity_key) {
                    self.save(&account, accept_identity(&addr, verified.identity_key)).await?;
                }
                match message_decrypt(&self.store, &addr, msg, rng).await {
                    Ok((plain, changes)) => {
                        let session_key = changes
                            .sessions
                            .get(&addr)
                            .and_then(|r| r.current())
                            .map(|s| *s.remote_identity());
                        if session_key != Some(verified.identity_key) {
                            return rejected(RejectReason::SessionMismatch);
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
            None => match async {
                group_decrypt(&self.store, &addr, &SenderKeyMessage::from_bytes(&envelope.content)?)
                    .await
            }
            .await
            {
                Ok(r) => r,
                Err(ProtocolError::DuplicatedMessage { .. }) => return Ok(vec![Event::Duplicate]),
                Err(ProtocolError::Store(e)) => return Err(ClientError::Store(e)),
                Err(e) => return undecryptable(e.to_string()),
            },
        };
        let mut changes = ClientChanges::from(changes);
        let content = match Content::from_padded_bytes(&plaintext) {
            Ok(c) => c,
            Err(e) => return undecryptable(e.to_string()),
        };
        let origin =
            Origin { sender, device: verified.device_id, verified: &verified, envelope, group };
        let mut receipts = Vec::new();
        let mut rotate = Vec::new();
        let events = self
            .apply(transport, &content, &origin, now, &mut changes, &mut receipts, &mut rotate)
            .await?;
        self.save(&account, changes).await?;
        drop(account);
        self.pending_receipts.lock().await.extend(receipts);
        if !rotate.is_empty() {
            let mut shares = self.group_shares.lock().await;
            for g in rotate {
                shares.remove(&g);
            }
        }
        Ok(events)
    }

    /// Applies a decrypted content. Called with the engine lock held: never takes it again.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn apply<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        content: &Content,
        origin: &Origin<'_>,
        now: Timestamp,
        changes: &mut ClientChanges,
        receipts: &mut Vec<PendingReceipt>,
        rotate: &mut Vec<[u8; 16]>,
    ) -> Result<Vec<Event>, ClientError> {
        let (me, _) = self.whoami().await;
        let Origin { sender, device, envelope, group, .. } = *origin;
        let own = sender == me;
        let rejected = |reason| Event::Rejected { sender, device: device.get(), reason };
        let mut events = Vec::new();
        let server_time = Some(Timestamp::from_millis(envelope.server_timestamp));
        match &content.body {
            Some(content::Body::Data(data)) => {
                // Group content only inside its group's sender-key message, and the other way
                // round.
                let named = <[u8; 16]>::try_from(data.group_id.as_slice()).ok();
                if named != group || (named.is_none() && !data.group_id.is_empty()) {
                    events.push(rejected(RejectReason::NotGroupMessage));
                    return Ok(events);
                }
                let conversation = conversation_of(data, if own { me } else { sender });
                let id = MessageId { sender, device, timestamp: data.timestamp };
                if self.known(id, changes).await? {
                    events.push(Event::Duplicate);
                } else {
                    let mut record = incoming(id, conversation, data, own, now);
                    record.server_time = server_time;
                    if own {
                        record.audience = self.audience(&conversation).await?;
                    }
                    changes.messages.insert(id, record.clone());
                    events.push(Event::Message(Box::new(record)));
                    // Delivery receipts go to the sender's account, in groups too (pairwise:
                    // only the sender learns who got it).
                    if !own {
                        receipts.push(PendingReceipt {
                            to: sender,
                            message: MessageRef { device: device.get(), timestamp: data.timestamp },
                        });
                    }
                }
            }
            Some(_) if group.is_some() => {
                // A sender-key message carries data messages only.
                events.push(rejected(RejectReason::NotGroupMessage));
            }
            Some(content::Body::Sync(sync)) if own => match &sync.kind {
                Some(sync_message::Kind::Sent(sent)) => {
                    let Some(data) = &sent.message else { return Ok(events) };
                    let destination = AccountId::from_bytes(&sent.destination).unwrap_or(me);
                    let id = MessageId { sender: me, device, timestamp: data.timestamp };
                    if self.known(id, changes).await? {
                        events.push(Event::Duplicate);
                    } else {
                        let conversation = conversation_of(data, destination);
                        let mut record = incoming(id, conversation, data, true, now);
                        record.audience = self.audience(&conversation).await?;
                        record.state = OutgoingState::Sent;
                        record.server_time = server_time;
                        changes.messages.insert(id, record.clone());
                        events.push(Event::Message(Box::new(record)));
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
                Some(sync_message::Kind::GroupAnswer(answer)) => {
                    events.extend(self.apply_group_answer(transport, answer, now, changes).await?);
                }
                None => {}
            },
            Some(content::Body::Sync(_)) => events.push(rejected(RejectReason::ForeignSync)),
            Some(content::Body::Receipt(receipt)) if !own => {
                self.apply_receipt(receipt, sender, device, changes, &mut events).await?;
            }
            Some(content::Body::Receipt(_)) => {}
            Some(content::Body::SenderKeyDistribution(bytes)) => {
                let skdm = SenderKeyDistributionMessage::from_bytes(bytes)?;
                let group = DistributionId(skdm.distribution_id()).0;
                // Only a member of the verified state hands out a key for the group.
                if !self.is_group_member(transport, group, sender, now).await? {
                    events.push(rejected(RejectReason::NotGroupMember));
                    return Ok(events);
                }
                let c = process_sender_key_distribution_message(
                    &self.store,
                    &sender.address(device),
                    &skdm,
                )
                .await?;
                changes.merge(c);
                events.push(Event::SenderKey { from: sender, group });
            }
            Some(content::Body::Call(call)) => {
                // Pairwise only (a sender-key message carrying one was refused above).
                let clock = self.message_clock(now).await;
                let effects =
                    self.with_calls(|book| book.receive(sender, device, call, clock)).await;
                let updates = self.keep_effects(effects, changes, now).await?;
                events.extend(updates.into_iter().map(|u| Event::Call(Box::new(u))));
            }
            Some(content::Body::GroupUpdate(bytes)) => {
                match self
                    .apply_group_update(transport, origin, bytes, now, changes, rotate)
                    .await?
                {
                    Ok(mut e) => events.append(&mut e),
                    Err(reason) => events.push(rejected(reason)),
                }
            }
            None => {}
        }
        Ok(events)
    }

    /// Fuzzing (feature `testing`): applies a decrypted content as if `device` of `sender`
    /// (its verified identity `identity`) sent it, inside `group`'s sender-key message when
    /// given, and saves the outcome: the receive path after decryption (and the membership
    /// gate in front of group decryption), without the cryptography.
    #[cfg(any(test, feature = "testing"))]
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_for_fuzzing<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        content: &Content,
        sender: AccountId,
        device: DeviceId,
        identity: tandem_signal::IdentityKey,
        group: Option<[u8; 16]>,
        now: Timestamp,
    ) -> Result<Vec<Event>, ClientError> {
        let verified =
            VerifiedDevice { device_id: device, registration_id: 1, identity_key: identity };
        let envelope = Envelope {
            source_account: sender.0.to_vec(),
            source_device: device.get(),
            server_timestamp: now.as_millis(),
            group_id: group.map(|g| g.to_vec()).unwrap_or_default(),
            ..Envelope::default()
        };
        // The gate in front of group decryption, as `receive` has it.
        if let Some(g) = group
            && !self.is_group_member(transport, g, sender, now).await?
        {
            let reason = RejectReason::NotGroupMember;
            return Ok(vec![Event::Rejected { sender, device: device.get(), reason }]);
        }
        let origin = Origin { sender, device, verified: &verified, envelope: &envelope, group };
        let account = self.lock().await;
        let mut changes = ClientChanges::default();
        let (mut receipts, mut rotate) = (Vec::new(), Vec::new());
        let events = self
            .apply(transport, content, &origin, now, &mut changes, &mut receipts, &mut rotate)
            .await?;
        self.save(&account, changes).await?;
        Ok(events)
    }

    /// Delivery and read receipts: only for this account's messages that were sent to the
    /// receipt's sender (directly, or in a group it is in).
    async fn apply_receipt(
        &self,
        receipt: &crate::wire::content::ReceiptMessage,
        sender: AccountId,
        device: DeviceId,
        changes: &mut ClientChanges,
        events: &mut Vec<Event>,
    ) -> Result<(), ClientError> {
        let (me, _) = self.whoami().await;
        let kind = ReceiptType::try_from(receipt.r#type).unwrap_or(ReceiptType::Unspecified);
        let mut foreign = false;
        for r in &receipt.messages {
            let Ok(d) = DeviceId::new(r.device) else { continue };
            let id = MessageId { sender: me, device: d, timestamp: r.timestamp };
            let Some(mut m) = self.load(id, changes).await? else { continue };
            let addressed = match m.conversation {
                Conversation::Direct(peer) => peer == sender,
                Conversation::Group(g) => self
                    .store
                    .load_group(&g)
                    .await?
                    .is_some_and(|rec| rec.state.state().is_member(&sender)),
            };
            if !addressed {
                foreign = true;
                continue;
            }
            // In a group one device per member is kept (the record stays small with a
            // thousand members); in a direct chat every device (the info shows each).
            let per_account = matches!(m.conversation, Conversation::Group(_));
            let deliver = |m: &mut MessageRecord| {
                if per_account && m.delivered_to.iter().any(|(a, _)| *a == sender) {
                    return false;
                }
                m.delivered_to.insert((sender, device))
            };
            let changed = match kind {
                ReceiptType::Delivery => {
                    let new = deliver(&mut m);
                    if new {
                        events.push(Event::Delivered { id, by: (sender, device) });
                    }
                    new
                }
                ReceiptType::Read => {
                    // A read message was delivered too.
                    deliver(&mut m);
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
        if foreign {
            events.push(Event::Rejected {
                sender,
                device: device.get(),
                reason: RejectReason::ReceiptFromStranger,
            });
        }
        Ok(())
    }

    /// Records that messages expired on the relay before this device fetched them: one gap
    /// notice per lost message, in its conversation, where the message would have been.
    /// Saved before returning, so the caller acknowledges the relay's notice only once the
    /// gaps are durable.
    pub async fn record_expired(
        &self,
        entries: &[ExpiredEntry],
        now: Timestamp,
    ) -> Result<Vec<Event>, ClientError> {
        let (me, _) = self.whoami().await;
        let account = self.lock().await;
        let mut changes = ClientChanges::default();
        let mut events = Vec::new();
        for e in entries {
            let (Ok(sender), Ok(device)) =
                (AccountId::from_bytes(&e.source_account), DeviceId::new(e.source_device))
            else {
                continue;
            };
            // Copies from this account's own devices carry no destination: the lost message
            // cannot be placed (the relay's notice still tells the person how many).
            if sender == me {
                continue;
            }
            let id = MessageId { sender, device, timestamp: e.client_timestamp };
            if self.known(id, &changes).await? {
                continue;
            }
            let conversation = match <[u8; 16]>::try_from(e.group_id.as_slice()) {
                Ok(g) => Conversation::Group(g),
                Err(_) => Conversation::Direct(sender),
            };
            let record = MessageRecord {
                id,
                conversation,
                body: String::new(),
                outgoing: false,
                state: OutgoingState::Sent,
                stored_at: now,
                delivered_to: Default::default(),
                read_by: Default::default(),
                server_time: None,
                notice: Some(Notice::Expired),
                local_id: None,
                quote: None,
                audience: 0,
            };
            changes.messages.insert(id, record.clone());
            events.push(Event::Message(Box::new(record)));
        }
        self.save(&account, changes).await?;
        Ok(events)
    }

    pub(super) async fn load(
        &self,
        id: MessageId,
        changes: &ClientChanges,
    ) -> Result<Option<MessageRecord>, ClientError> {
        if let Some(m) = changes.messages.get(&id) {
            return Ok(Some(m.clone()));
        }
        Ok(self.store.load_message(&id).await?)
    }

    pub(super) async fn known(
        &self,
        id: MessageId,
        changes: &ClientChanges,
    ) -> Result<bool, ClientError> {
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
        server_time: None,
        notice: None,
        local_id: None,
        quote: data.quote.as_ref().and_then(super::send::quote_from_wire),
        audience: 0,
    }
}

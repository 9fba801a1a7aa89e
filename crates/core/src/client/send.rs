//! Sending: the durable outbox, client fan-out to every verified device of the recipient and
//! of this account, repair after a device mismatch, receipts.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use zeroize::Zeroize;

use super::receive::PendingReceipt;
use super::{
    Client, ClientError, Conversation, MAX_SEND_ATTEMPTS, MessageId, MessageRecord, OutboxEntry,
    OutgoingState, Quote, quote_text,
};
use crate::crypto::{KyberPublicKey, PublicKey};
use crate::devices::{AdvError, RejectedDevice, VerifiedDevice};
use crate::prekeys::{KyberPreKeyId, PreKeyBundle, PreKeyId, SignedPreKeyId};
use crate::session::{accept_identity, message_encrypt, process_prekey_bundle};
use crate::store::{ClientChanges, ClientStore, EncryptedBatch};
use crate::transport::RelayTransport;
use crate::wire::content::{
    Content, DataMessage, MessageRef, QuotedMessage, ReadEntry, ReadSync, ReceiptMessage,
    ReceiptType, SentTranscript, SyncMessage, content, sync_message,
};
use crate::wire::relay::{
    GetPreKeyBundles, MismatchedDevices, OutgoingMessage, PreKeyBundleMessage, SendMessages,
    Status, request, response,
};
use tandem_signal::IdentityKey;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};

/// Fuzzing (feature `testing`): a relay's bundle message as the engine reads it.
#[cfg(any(test, feature = "testing"))]
pub fn bundle_for_fuzzing(b: PreKeyBundleMessage) -> Option<PreKeyBundle> {
    bundle_from(b)
}

/// Longest message text accepted.
pub const MAX_TEXT_LEN: usize = 16 * 1024;

/// What a send achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReport {
    /// The message, for sends of messages (not receipts).
    pub id: Option<MessageId>,
    /// When the server accepted it.
    pub server_timestamp: u64,
    /// The devices that got a copy.
    pub devices: Vec<(AccountId, DeviceId)>,
    /// Devices the server listed that did not verify: never encrypted to.
    pub rejected: Vec<(AccountId, RejectedDevice)>,
    /// How many sends it took (more than one after a device-set repair).
    pub attempts: u32,
}

/// What a fan-out encrypts for each device.
enum Plaintexts<'a> {
    /// One plaintext for the recipient's devices, one for this account's own.
    Same { to_recipient: &'a [u8], to_own: &'a [u8] },
    /// Made per device.
    PerDevice(&'a (dyn Fn(AccountId, DeviceId, bool) -> Vec<u8> + Sync)),
}

struct Target {
    account: AccountId,
    device: VerifiedDevice,
    own: bool,
}

/// A bundle as the relay sent it, if its fields parse (signatures are checked when a
/// session is made from it).
fn bundle_from(b: PreKeyBundleMessage) -> Option<PreKeyBundle> {
    let signed = b.signed_pre_key?;
    let kyber = b.kyber?;
    Some(PreKeyBundle {
        registration_id: b.registration_id,
        device_id: DeviceId::new(b.device_id).ok()?,
        pre_key: match b.one_time {
            Some(k) => Some((PreKeyId(k.key_id), PublicKey::from_bytes(&k.public_key).ok()?)),
            None => None,
        },
        signed_pre_key_id: SignedPreKeyId(signed.key_id),
        signed_pre_key: PublicKey::from_bytes(&signed.public_key).ok()?,
        signed_pre_key_signature: signed.signature,
        kyber_pre_key_id: KyberPreKeyId(kyber.key_id),
        kyber_pre_key: KyberPublicKey::from_bytes(&kyber.public_key).ok()?,
        kyber_pre_key_signature: kyber.signature,
        identity_key: IdentityKey::from_bytes(&b.identity_key).ok()?,
    })
}

fn pad(c: &Content) -> Vec<u8> {
    c.to_padded_bytes()
}

/// A reply's quote as it travels.
pub(super) fn quote_to_wire(q: &Quote) -> QuotedMessage {
    QuotedMessage {
        author: q.id.sender.0.to_vec(),
        author_device: q.id.device.get(),
        timestamp: q.id.timestamp,
        text: q.text.clone(),
    }
}

/// A received quote, or `None` when it names no valid message (the reply is kept, without
/// its quote). A text longer than a quote carries is cut.
pub(super) fn quote_from_wire(q: &QuotedMessage) -> Option<Quote> {
    let id = MessageId {
        sender: AccountId::from_bytes(&q.author).ok()?,
        device: DeviceId::new(q.author_device).ok()?,
        timestamp: q.timestamp,
    };
    Some(Quote { id, text: quote_text(&q.text) })
}

/// How many of a conversation's newest messages [`Client::queue_text_once`] searches for a
/// composer's id.
pub const RECENT_LOCAL_IDS: usize = 200;

/// Messages marked read per page (and referenced per read receipt).
const MARK_READ_PAGE: usize = 500;

impl<S: ClientStore> Client<S> {
    /// Queues a text message (durably, in the outbox) and returns its id.
    pub async fn queue_text(
        &self,
        conversation: Conversation,
        text: &str,
        now: Timestamp,
    ) -> Result<MessageId, ClientError> {
        self.queue_text_once(conversation, text, None, None, now).await
    }

    /// Queues a reply to `reply_to`, a message of the same conversation this device holds.
    pub async fn queue_reply(
        &self,
        conversation: Conversation,
        text: &str,
        reply_to: MessageId,
        now: Timestamp,
    ) -> Result<MessageId, ClientError> {
        self.queue_text_once(conversation, text, Some(reply_to), None, now).await
    }

    /// Like [`Client::queue_text`] (a reply when `reply_to` names a message of the
    /// conversation), for a text its composer gave `local_id` before it was durable: if a
    /// message of the conversation's newest [`RECENT_LOCAL_IDS`] already has that id (the
    /// text was queued before a crash), its id is returned and nothing is queued twice.
    pub async fn queue_text_once(
        &self,
        conversation: Conversation,
        text: &str,
        reply_to: Option<MessageId>,
        local_id: Option<[u8; 16]>,
        now: Timestamp,
    ) -> Result<MessageId, ClientError> {
        if text.trim().is_empty() {
            return Err(ClientError::InvalidInput("the message is empty".into()));
        }
        if text.len() > MAX_TEXT_LEN {
            return Err(ClientError::InvalidInput(format!(
                "a message is at most {MAX_TEXT_LEN} bytes"
            )));
        }
        let mut account = self.lock().await;
        if let Some(local) = local_id {
            let recent = self.store.load_messages(&conversation, RECENT_LOCAL_IDS).await?;
            if let Some(m) = recent.iter().find(|m| m.local_id == Some(local)) {
                return Ok(m.id);
            }
        }
        let quote = match reply_to {
            Some(to) => match self.store.load_message(&to).await? {
                Some(m) if m.conversation == conversation && m.notice.is_none() => {
                    Some(Quote::of(&m))
                }
                _ => {
                    return Err(ClientError::InvalidInput(
                        "the message you reply to is not in this conversation any more".into(),
                    ));
                }
            },
            None => None,
        };
        let audience = self.audience(&conversation).await?;
        let id = MessageId {
            sender: account.account_id,
            device: account.device_id,
            timestamp: self.next_timestamp(&mut account, now).await?,
        };
        let mut changes = ClientChanges::default();
        changes.messages.insert(
            id,
            MessageRecord {
                id,
                conversation,
                body: text.to_owned(),
                outgoing: true,
                state: OutgoingState::Queued,
                stored_at: now,
                delivered_to: Default::default(),
                read_by: Default::default(),
                server_time: None,
                notice: None,
                local_id,
                quote: quote.clone(),
                audience,
            },
        );
        changes.outbox.insert(
            id,
            OutboxEntry {
                id,
                conversation,
                body: text.to_owned(),
                attempts: 0,
                quote,
                without: BTreeSet::new(),
            },
        );
        self.save(&account, changes).await?;
        Ok(id)
    }

    /// Queues and sends a text message to an account.
    pub async fn send_text<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        to: AccountId,
        text: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let id = self.queue_text(Conversation::Direct(to), text, now).await?;
        self.send_and_settle(transport, id, now, rng).await
    }

    /// [`Client::send_queued`], then [`Client::settle`]: for one-off sends that want the
    /// outcome saved before they return.
    pub(super) async fn send_and_settle<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        id: MessageId,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let report = self.send_queued(transport, id, now, rng).await;
        self.settle().await?;
        report
    }

    /// Sends everything in the outbox, oldest first; stops at the first transient failure
    /// (offline), leaving the rest queued. Like [`Client::send_queued`], the messages sent
    /// leave the outbox with this client's next save, or at [`Client::settle`].
    pub async fn flush_outbox<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<(MessageId, Result<SendReport, ClientError>)>, ClientError> {
        let mut out = Vec::new();
        let mut sent = Vec::new();
        for entry in self.store.load_outbox().await? {
            if self.unsettled_at(&entry.id).is_some() {
                continue;
            }
            let result = self.send_queued_marking(transport, entry.id, now, rng, &mut sent).await;
            let stop = result.as_ref().is_err_and(ClientError::is_transient);
            out.push((entry.id, result));
            if stop {
                break;
            }
        }
        self.defer_sent(sent);
        Ok(out)
    }

    /// Saves what sending left to the next save now: the messages sent since leave the
    /// outbox and are marked sent. Until then a crash sends them again, and recipients, who
    /// know their ids, drop the copies.
    pub async fn settle(&self) -> Result<(), ClientError> {
        let account = self.lock().await;
        self.save(&account, ClientChanges::default()).await
    }

    /// When the relay took a message that was sent and waits for [`Client::settle`] (or the
    /// next save); `None` for any other message.
    fn unsettled_at(&self, id: &MessageId) -> Option<u64> {
        self.unsettled.lock().ok()?.iter().find(|(m, _)| m == id).map(|(_, at)| *at)
    }

    pub(super) fn defer_sent(&self, sent: Vec<(MessageId, u64)>) {
        if let Ok(mut u) = self.unsettled.lock() {
            u.extend(sent);
        }
    }

    /// Adds the sent messages waiting for a save to `changes`: out of the outbox, marked
    /// sent. Returns them, to put back if the save fails.
    pub(super) async fn fold_unsettled(
        &self,
        changes: &mut ClientChanges,
    ) -> Result<Vec<(MessageId, u64)>, crate::store::StoreError> {
        let marks = self.unsettled.lock().map(|mut u| std::mem::take(&mut *u)).unwrap_or_default();
        for (id, server_timestamp) in &marks {
            changes.removed_outbox.push(*id);
            if changes.removed_messages.contains(id) {
                continue;
            }
            let record = match changes.messages.remove(id) {
                Some(r) => Some(r),
                None => match self.store.load_message(id).await {
                    Ok(r) => r,
                    Err(e) => {
                        self.defer_sent(marks);
                        return Err(e);
                    }
                },
            };
            if let Some(mut r) = record {
                r.state = OutgoingState::Sent;
                r.server_time = Some(Timestamp::from_millis(*server_timestamp));
                changes.messages.insert(*id, r);
            }
        }
        Ok(marks)
    }

    /// Sends one outbox entry. A permanent failure removes it from the outbox and records the
    /// outcome on the message; a transient failure keeps it queued; success leaves both to
    /// this client's next save (or [`Client::settle`]), so a message sent costs no save of
    /// its own. A message the
    /// relay refuses as stamped by a wrong clock (nobody has it yet) is stamped afresh with
    /// the corrected clock, under a new id, and sent once more.
    pub async fn send_queued<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        id: MessageId,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        if let Some(at) = self.unsettled_at(&id) {
            // Sent already; its mark waits for the next save.
            return Ok(SendReport {
                id: Some(id),
                server_timestamp: at,
                devices: Vec::new(),
                rejected: Vec::new(),
                attempts: 0,
            });
        }
        let mut sent = Vec::new();
        let result = self.send_queued_marking(transport, id, now, rng, &mut sent).await;
        self.defer_sent(sent);
        result
    }

    /// [`Client::send_queued`], leaving a sent message's outbox entry and mark to the
    /// caller: it is added to `sent` with the relay's time.
    async fn send_queued_marking<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        id: MessageId,
        now: Timestamp,
        rng: &mut impl CryptoRng,
        sent: &mut Vec<(MessageId, u64)>,
    ) -> Result<SendReport, ClientError> {
        let mut id = id;
        let mut restamped = false;
        loop {
            let result = self.send_queued_once(transport, id, now, rng, sent).await;
            match result {
                Err(ClientError::Server { status: Status::ClockSkew, .. }) if !restamped => {
                    restamped = true;
                    id = self.restamp(id, now).await?;
                }
                other => return other,
            }
        }
    }

    async fn send_queued_once<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        id: MessageId,
        now: Timestamp,
        rng: &mut impl CryptoRng,
        sent: &mut Vec<(MessageId, u64)>,
    ) -> Result<SendReport, ClientError> {
        let entry =
            self.store.load_outbox().await?.into_iter().find(|e| e.id == id).ok_or_else(|| {
                ClientError::InvalidInput("that message is not in the outbox".into())
            })?;
        let result = match entry.conversation {
            Conversation::Direct(to) => {
                let data = DataMessage {
                    body: entry.body.clone(),
                    timestamp: id.timestamp,
                    group_id: Vec::new(),
                    quote: entry.quote.as_ref().map(quote_to_wire),
                };
                let to_recipient = Content { body: Some(content::Body::Data(data.clone())) };
                let to_own = Content {
                    body: Some(content::Body::Sync(SyncMessage {
                        kind: Some(sync_message::Kind::Sent(SentTranscript {
                            destination: to.0.to_vec(),
                            message: Some(data),
                        })),
                    })),
                };
                let own = if to == id.sender { &to_recipient } else { &to_own };
                self.fan_out(transport, to, &pad(&to_recipient), &pad(own), id.timestamp, now, rng)
                    .await
            }
            Conversation::Group(group) => {
                self.send_group_entry(transport, group, &entry, now, rng).await
            }
        };
        let error = match result {
            Ok(report) => {
                sent.push((id, report.server_timestamp));
                return Ok(SendReport { id: Some(id), ..report });
            }
            Err(e) => e,
        };
        let account = self.lock().await;
        let mut changes = ClientChanges::default();
        let mut record = self.store.load_message(&id).await?;
        match &error {
            e if e.is_transient() => {
                changes.outbox.insert(id, OutboxEntry { attempts: entry.attempts + 1, ..entry });
            }
            // Held until the person accepts the contact's new security code; stamped afresh.
            ClientError::AccountKeyChanged(_)
            | ClientError::Server { status: Status::ClockSkew, .. } => {}
            e => {
                changes.removed_outbox.push(id);
                if let Some(r) = record.as_mut() {
                    r.state = OutgoingState::Failed(e.to_string());
                }
            }
        }
        if let Some(r) = record {
            changes.messages.insert(id, r);
        }
        self.save(&account, changes).await?;
        Err(error)
    }

    /// How many other accounts a message to `conversation` goes to now: one for a direct
    /// chat, the group's other members for a group.
    pub(super) async fn audience(&self, conversation: &Conversation) -> Result<u32, ClientError> {
        Ok(match conversation {
            Conversation::Direct(_) => 1,
            Conversation::Group(g) => {
                let (me, _) = self.whoami().await;
                self.store.load_group(g).await?.map_or(0, |rec| {
                    let members = &rec.state.state().members;
                    u32::try_from(members.iter().filter(|m| m.account_id != me).count())
                        .unwrap_or(u32::MAX)
                })
            }
        })
    }

    /// Gives a queued, never-delivered message a fresh timestamp (and so a new id): the old
    /// message record and outbox entry go, new ones come, in one batch. Returns the new id.
    async fn restamp(&self, id: MessageId, now: Timestamp) -> Result<MessageId, ClientError> {
        let mut account = self.lock().await;
        let entry =
            self.store.load_outbox().await?.into_iter().find(|e| e.id == id).ok_or_else(|| {
                ClientError::InvalidInput("that message is not in the outbox".into())
            })?;
        let new = MessageId { timestamp: self.next_timestamp(&mut account, now).await?, ..id };
        let mut changes = ClientChanges::default();
        if let Some(mut record) = self.store.load_message(&id).await? {
            record.id = new;
            record.stored_at = now;
            changes.messages.insert(new, record);
        }
        changes.removed_messages.push(id);
        changes.removed_outbox.push(id);
        changes.outbox.insert(new, OutboxEntry { id: new, ..entry });
        self.save(&account, changes).await?;
        Ok(new)
    }

    /// Makes sure there is a usable session with every target whose identity is the
    /// ADV-verified one, fetching bundles for the others. Returns a target the relay had no
    /// prekeys for (the sessions made before it are kept).
    async fn ensure_sessions<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        targets: &[Target],
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<DeviceId>, ClientError> {
        let mut need: BTreeMap<AccountId, Vec<&Target>> = BTreeMap::new();
        for t in targets {
            let addr = t.account.address(t.device.device_id);
            let usable = self.store.load_session(&addr).await?.is_some_and(|r| {
                r.current().is_some_and(|s| {
                    s.has_usable_sender_chain(now)
                        && *s.remote_identity() == t.device.identity_key
                        && s.remote_registration_id() == t.device.registration_id
                })
            });
            if !usable {
                need.entry(t.account).or_default().push(t);
            }
        }
        for (account, wanted) in need {
            let ids = wanted.iter().map(|t| t.device.device_id.get()).collect();
            let body = request::Body::GetPreKeyBundles(GetPreKeyBundles {
                account_id: account.0.to_vec(),
                device_ids: ids,
            });
            let Some(response::Body::PreKeyBundles(bundles)) = super::call(transport, body).await?
            else {
                return Err(ClientError::UnexpectedResponse("prekey bundles"));
            };
            let mut by_device: BTreeMap<u32, PreKeyBundle> = BTreeMap::new();
            for b in bundles.bundles {
                let id = b.device_id;
                if let Some(bundle) = bundle_from(b) {
                    by_device.insert(id, bundle);
                }
            }
            for t in wanted {
                self.store.pause().await;
                let device = t.device.device_id;
                let Some(bundle) = by_device.remove(&device.get()) else {
                    return Ok(Some(device));
                };
                if bundle.identity_key != t.device.identity_key {
                    return Err(ClientError::SendFailed {
                        reason: format!(
                            "the server's prekeys for device {device} are not for the key the account signed"
                        ),
                        unverified: vec![(account, device.get(), AdvError::IdentityMismatch)],
                    });
                }
                let addr = account.address(device);
                let guard = self.lock().await;
                if self.store.load_identity(&addr).await? != Some(t.device.identity_key) {
                    // ADV vouches for this key: it replaces whatever was trusted before.
                    self.save(&guard, accept_identity(&addr, t.device.identity_key)).await?;
                }
                let changes = process_prekey_bundle(&self.store, &addr, &bundle, now, rng).await?;
                self.save(&guard, changes).await?;
            }
        }
        Ok(None)
    }

    /// Encrypts one content for every verified device of `recipient` (and `to_own` for this
    /// account's other devices), saves the advanced ratchets, submits, and repairs after a
    /// device mismatch (at most [`MAX_SEND_ATTEMPTS`] sends).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fan_out<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        recipient: AccountId,
        to_recipient: &[u8],
        to_own: &[u8],
        timestamp: u64,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        self.fan_out_with(
            transport,
            recipient,
            Plaintexts::Same { to_recipient, to_own },
            timestamp,
            now,
            rng,
        )
        .await
    }

    /// Like [`Client::fan_out`], with each device's plaintext made by `plaintext(account,
    /// device, own)` (wiped once encrypted): for contents that differ per device.
    pub(crate) async fn fan_out_each<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        recipient: AccountId,
        plaintext: &(dyn Fn(AccountId, DeviceId, bool) -> Vec<u8> + Sync),
        timestamp: u64,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        self.fan_out_with(
            transport,
            recipient,
            Plaintexts::PerDevice(plaintext),
            timestamp,
            now,
            rng,
        )
        .await
    }

    async fn fan_out_with<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        recipient: AccountId,
        plaintexts: Plaintexts<'_>,
        timestamp: u64,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let (me, my_device) = self.whoami().await;
        let mut force = false;
        let mut last_mismatch: Option<MismatchedDevices> = None;
        for attempt in 1..=MAX_SEND_ATTEMPTS {
            let theirs = self.device_list(transport, recipient, now, force).await?;
            let mine = if recipient == me {
                None
            } else {
                Some(self.device_list(transport, me, now, force).await?)
            };
            let mut rejected: Vec<(AccountId, RejectedDevice)> =
                theirs.rejected.iter().map(|r| (recipient, r.clone())).collect();
            let mut targets: Vec<Target> = theirs
                .devices
                .iter()
                .filter(|d| !(recipient == me && d.device_id == my_device))
                .map(|d| Target { account: recipient, device: d.clone(), own: recipient == me })
                .collect();
            if let Some(mine) = &mine {
                rejected.extend(mine.rejected.iter().map(|r| (me, r.clone())));
                targets.extend(
                    mine.devices.iter().filter(|d| d.device_id != my_device).map(|d| Target {
                        account: me,
                        device: d.clone(),
                        own: true,
                    }),
                );
            }
            // Devices the server insists on that did not verify: never encrypted to.
            if let Some(m) = &last_mismatch {
                let unverified: Vec<(AccountId, u32, AdvError)> = m
                    .accounts
                    .iter()
                    .filter_map(|a| AccountId::from_bytes(&a.account_id).ok().map(|id| (id, a)))
                    .flat_map(|(id, a)| a.missing.iter().map(move |d| (id, *d)))
                    .filter(|(id, d)| {
                        !targets.iter().any(|t| t.account == *id && t.device.device_id.get() == *d)
                    })
                    .map(|(id, d)| {
                        let reason = rejected
                            .iter()
                            .find(|(a, r)| *a == id && r.device_id == d)
                            .map(|(_, r)| r.reason.clone())
                            .unwrap_or(AdvError::NotInList);
                        (id, d, reason)
                    })
                    .collect();
                if !unverified.is_empty() {
                    return Err(ClientError::SendFailed {
                        reason: "the server requires a device that the account did not sign; nothing was sent to it".into(),
                        unverified,
                    });
                }
            }
            if let Some(device) = self.ensure_sessions(transport, &targets, now, rng).await? {
                // A cached list may still hold a device that was removed since (its prekeys
                // went with it): fetch the lists again once before giving up.
                if !force {
                    force = true;
                    continue;
                }
                return Err(ClientError::SendFailed {
                    reason: format!("device {device} of a recipient has no prekeys on the server"),
                    unverified: Vec::new(),
                });
            }
            let copies = {
                let account = self.lock().await;
                let mut batch = EncryptedBatch::new();
                for t in &targets {
                    self.store.pause().await;
                    let addr = t.account.address(t.device.device_id);
                    let encrypted = match &plaintexts {
                        Plaintexts::Same { to_recipient, to_own } => {
                            let plain = if t.own { to_own } else { to_recipient };
                            message_encrypt(&self.store, &addr, plain, now).await?
                        }
                        Plaintexts::PerDevice(make) => {
                            let mut plain = make(t.account, t.device.device_id, t.own);
                            let encrypted = message_encrypt(&self.store, &addr, &plain, now).await;
                            plain.zeroize();
                            encrypted?
                        }
                    };
                    batch.push(encrypted);
                }
                // The ratchets advance durably before any ciphertext leaves.
                let messages = self.save_sealed(&account, batch).await?;
                targets
                    .iter()
                    .zip(messages)
                    .map(|(t, msg)| OutgoingMessage {
                        account_id: t.account.0.to_vec(),
                        device_id: t.device.device_id.get(),
                        registration_id: t.device.registration_id,
                        r#type: msg.message_type().into(),
                        content: msg.serialized().to_vec(),
                    })
                    .collect::<Vec<_>>()
            };
            let send =
                SendMessages { recipient: recipient.0.to_vec(), timestamp, messages: copies };
            let resp = transport.request(request::Body::SendMessages(send)).await?;
            match (resp.status(), resp.body) {
                (Status::Ok, Some(response::Body::Sent(sent))) => {
                    return Ok(SendReport {
                        id: None,
                        server_timestamp: sent.server_timestamp_ms,
                        devices: targets.iter().map(|t| (t.account, t.device.device_id)).collect(),
                        rejected,
                        attempts: attempt,
                    });
                }
                (Status::Conflict, Some(response::Body::MismatchedDevices(m))) => {
                    self.repair(&m).await?;
                    force = true;
                    last_mismatch = Some(m);
                }
                (status, _) => return Err(ClientError::Server { status, message: resp.message }),
            }
        }
        Err(ClientError::SendFailed {
            reason: format!("the recipient's devices kept changing ({MAX_SEND_ATTEMPTS} attempts)"),
            unverified: Vec::new(),
        })
    }

    /// Tests only (feature `testing`): sends an arbitrary content to every device of `to`
    /// (and this account's other devices), the way a misbehaving client could, to check
    /// what receivers accept.
    #[cfg(any(test, feature = "testing"))]
    pub async fn hazmat_send_content<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        to: AccountId,
        content: &Content,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let timestamp = {
            let mut account = self.lock().await;
            let t = self.next_timestamp(&mut account, now).await?;
            self.save(&account, ClientChanges::default()).await?;
            t
        };
        let bytes = pad(content);
        self.fan_out(transport, to, &bytes, &bytes, timestamp, now, rng).await
    }

    /// After a mismatch: lists go stale, sessions with stale registration ids are archived.
    async fn repair(&self, m: &MismatchedDevices) -> Result<(), ClientError> {
        for a in &m.accounts {
            let Ok(account) = AccountId::from_bytes(&a.account_id) else { continue };
            self.mark_list_stale(account).await?;
            let guard = self.lock().await;
            let mut changes = ClientChanges::default();
            for d in a.stale.iter().chain(&a.extra) {
                let Ok(device) = DeviceId::new(*d) else { continue };
                let addr = account.address(device);
                if let Some(mut record) = self.store.load_session(&addr).await? {
                    record.archive_current_state();
                    changes.sessions.insert(addr, record);
                }
            }
            self.save(&guard, changes).await?;
        }
        Ok(())
    }

    /// Sends a delivery or read receipt for `messages` to `to`. Own devices get a read sync
    /// for read receipts (and an empty sync for delivery receipts).
    pub(crate) async fn send_receipt<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        to: AccountId,
        kind: ReceiptType,
        messages: Vec<MessageRef>,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let timestamp = {
            let mut account = self.lock().await;
            let t = self.next_timestamp(&mut account, now).await?;
            self.save(&account, ClientChanges::default()).await?;
            t
        };
        let own_sync = match kind {
            ReceiptType::Read => Some(sync_message::Kind::Read(ReadSync {
                entries: messages
                    .iter()
                    .map(|m| ReadEntry {
                        sender: to.0.to_vec(),
                        timestamp: m.timestamp,
                        sender_device: m.device,
                    })
                    .collect(),
            })),
            _ => None,
        };
        let receipt = Content {
            body: Some(content::Body::Receipt(ReceiptMessage { r#type: kind as i32, messages })),
        };
        let own = Content { body: Some(content::Body::Sync(SyncMessage { kind: own_sync })) };
        self.fan_out(transport, to, &pad(&receipt), &pad(&own), timestamp, now, rng).await
    }

    /// Sends the delivery receipts owed for stored messages; keeps them on transient failure.
    pub async fn flush_receipts<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<usize, ClientError> {
        let pending: Vec<PendingReceipt> = std::mem::take(&mut *self.pending_receipts.lock().await);
        let mut grouped: BTreeMap<AccountId, Vec<MessageRef>> = BTreeMap::new();
        for p in pending {
            grouped.entry(p.to).or_default().push(p.message);
        }
        let mut sent = 0;
        let mut failed = Vec::new();
        let mut first_error = None;
        for (to, refs) in grouped {
            match self
                .send_receipt(transport, to, ReceiptType::Delivery, refs.clone(), now, rng)
                .await
            {
                Ok(_) => sent += refs.len(),
                Err(e) if e.is_transient() => {
                    failed.extend(refs.into_iter().map(|message| PendingReceipt { to, message }));
                    first_error.get_or_insert(e);
                }
                // A permanent failure (the sender's account is gone): drop those receipts.
                Err(_) => {}
            }
        }
        self.pending_receipts.lock().await.extend(failed);
        match first_error {
            Some(e) => Err(e),
            None => Ok(sent),
        }
    }

    /// Marks the conversation with `peer` read: sends read receipts to `peer` (and a read sync
    /// to this account's other devices). Returns how many messages were newly read.
    pub async fn mark_read<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        peer: AccountId,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<usize, ClientError> {
        let unread = self.mark_read_here(Conversation::Direct(peer)).await?;
        if unread.is_empty() {
            return Ok(0);
        }
        // Receipts in bounded messages (one relay frame each).
        for chunk in unread.chunks(MARK_READ_PAGE) {
            let refs = chunk
                .iter()
                .map(|m| MessageRef { device: m.id.device.get(), timestamp: m.id.timestamp })
                .collect();
            self.send_receipt(transport, peer, ReceiptType::Read, refs, now, rng).await?;
        }
        Ok(unread.len())
    }

    /// Marks a group's messages read: its unread count goes to zero here, each sender gets a
    /// read receipt for its messages (pairwise, so only the sender learns who read), and this
    /// account's other devices a read sync. Returns how many were unread. A sender whose
    /// account is gone is skipped; the first transient failure is returned once every
    /// sender was tried.
    pub async fn mark_group_read<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<usize, ClientError> {
        let unread = self.mark_read_here(Conversation::Group(group)).await?;
        let mut by_sender: BTreeMap<AccountId, Vec<MessageRef>> = BTreeMap::new();
        for m in &unread {
            by_sender
                .entry(m.id.sender)
                .or_default()
                .push(MessageRef { device: m.id.device.get(), timestamp: m.id.timestamp });
        }
        let mut first_error = None;
        for (sender, refs) in by_sender {
            for chunk in refs.chunks(MARK_READ_PAGE) {
                match self
                    .send_receipt(transport, sender, ReceiptType::Read, chunk.to_vec(), now, rng)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if e.is_transient() => {
                        first_error.get_or_insert(e);
                    }
                    Err(_) => break,
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(unread.len()),
        }
    }

    /// Marks a conversation's unread messages read in the store; returns them.
    async fn mark_read_here(
        &self,
        conversation: Conversation,
    ) -> Result<Vec<MessageRecord>, ClientError> {
        let (me, _) = self.whoami().await;
        // Unread messages are the newest: walk back a page at a time, saving each page's
        // read marks, and stop at the first page with nothing unread. A long history is
        // never read whole, and no transaction grows with it.
        let mut unread: Vec<MessageRecord> = Vec::new();
        let mut page = self.store.load_messages(&conversation, MARK_READ_PAGE).await?;
        loop {
            let oldest = page.first().map(|m| m.id);
            let found: Vec<MessageRecord> = page
                .into_iter()
                .filter(|m| !m.outgoing && m.notice.is_none() && !m.read_by.contains(&me))
                .collect();
            if found.is_empty() {
                break;
            }
            {
                let guard = self.lock().await;
                let mut changes = ClientChanges::default();
                for m in &found {
                    let mut m = m.clone();
                    m.read_by.insert(me);
                    changes.messages.insert(m.id, m);
                }
                self.save(&guard, changes).await?;
            }
            unread.extend(found);
            let Some(oldest) = oldest else { break };
            page = self.store.load_messages_before(&conversation, &oldest, MARK_READ_PAGE).await?;
        }
        Ok(unread)
    }
}

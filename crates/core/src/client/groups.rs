//! Groups on signed state (see [`crate::group_state`]) with Sender Keys.
//!
//! - Membership is what the newest *verified* signed state says, never the relay's word: a
//!   state is taken only from the device that signed it (pairwise, end to end) or from the
//!   relay's chain, and only if it follows the state held (next version, naming its digest,
//!   signed by a current device of an admin of the state before it).
//! - This device's sender key goes only to devices of members of that state, and group
//!   messages and sender keys are accepted only from them.
//! - The key is replaced whenever a member or a device that held it is gone, and after every
//!   restart (this device does not remember who holds its key across restarts).
//! - Invitations from strangers wait for the person ([`Client::accept_group`]); the relay
//!   routes a group's messages only to members who accepted.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;

use super::receive::{Origin, RejectReason};
use super::{
    Client, ClientError, Conversation, Event, GroupRecord, MessageId, MessageRecord, Notice,
    OutboxEntry, OutgoingState, Progress, SendReport, Work, call,
};
use crate::devices::{AdvError, SignedDeviceIdentity};
use crate::group_state::{GroupChange, GroupMember, GroupState, GroupStateError, SignedGroupState};
use crate::sender_keys::{
    DistributionId, SenderKeyRecord, create_sender_key_distribution_message, group_encrypt_in,
    reserve_ahead, rotate_sender_key,
};
use crate::store::{
    Chain, ChainPosition, Changes, ClientChanges, ClientStore, Guard, SenderKeyName,
};
use crate::transport::RelayTransport;
use crate::wire::content::{Content, DataMessage, GroupAnswer, SyncMessage, content, sync_message};
use crate::wire::relay::{
    AcceptGroup, CreateGroup, DEVICE_SET_TAG_LEN, GetGroup, MAX_GROUP_MEMBERS, SendGroupMessage,
    Status, UpdateGroup, device_set_tag, request, response,
};
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};

/// Group messages a sending chain may send between two saves of it.
pub(crate) const RESERVED_MESSAGES: u32 = 32;

/// This device's sending chain of a group, kept in memory between saves: the store holds the
/// chain [`RESERVED_MESSAGES`] messages ahead of where it sent last, so a message needs no
/// save of its own until the reserve is spent, and a crash (the memory lost, the stored
/// record reloaded) skips at most the unused ones — never uses a key twice.
pub(crate) struct SendingKey {
    /// The chain as it sends next.
    record: SenderKeyRecord,
    /// Where the stored record stands: on the same chain at or beyond `record`.
    stored: ChainPosition,
}

/// A device that holds a sender key: the account, the device id and the device's identity
/// key (a device id comes back with another identity after its account started over, and
/// that one has not got the key).
pub(crate) type Holder = (AccountId, DeviceId, [u8; 33]);

/// Who holds this device's current sender key for one group.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupShare {
    pub(crate) members: BTreeSet<AccountId>,
    pub(crate) holders: BTreeSet<Holder>,
}

/// A change to a group, made by an admin (or, for leaving, by the member itself).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupEdit {
    /// Accounts to add (as members who are not admins).
    pub add: Vec<AccountId>,
    /// Accounts to remove.
    pub remove: Vec<AccountId>,
    /// Members to make admins.
    pub promote: Vec<AccountId>,
    /// Admins to make plain members.
    pub demote: Vec<AccountId>,
    /// A new title.
    pub title: Option<String>,
}

/// Most pages of states fetched in one catch-up (64 states each).
const MAX_SYNC_PAGES: usize = 64;
/// A group is fetched afresh from the relay, because of something received that its held
/// state does not explain, at most this often.
const GROUP_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

impl<S: ClientStore> Client<S> {
    /// The group as this device last verified it.
    pub async fn group(&self, group: [u8; 16]) -> Result<Option<GroupRecord>, ClientError> {
        Ok(self.store.load_group(&group).await?)
    }

    /// Creates a group titled `title` with `members` (this account is its admin); the
    /// signed first state goes to the relay and, end to end, to every member (who accept
    /// it, or are asked to). Returns the group id.
    pub async fn create_group<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        title: &str,
        members: &[AccountId],
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<[u8; 16], ClientError> {
        let (me, my_device) = self.whoami().await;
        let mut list: BTreeMap<AccountId, bool> = members.iter().map(|m| (*m, false)).collect();
        list.insert(me, true);
        if list.len() > MAX_GROUP_MEMBERS {
            return Err(ClientError::InvalidInput(format!(
                "a group has at most {MAX_GROUP_MEMBERS} members"
            )));
        }
        let mut group_id = [0u8; 16];
        rng.fill_bytes(&mut group_id);
        let timestamp = self.stamp(now).await?;
        let state = GroupState {
            group_id,
            version: 1,
            previous: [0; 32],
            title: title.trim().to_owned(),
            members: list
                .into_iter()
                .map(|(account_id, admin)| GroupMember { account_id, admin })
                .collect(),
            signer: me,
            signer_device: my_device,
            timestamp,
        };
        let signed = self.sign_group_state(state, rng).await?;
        call(
            transport,
            request::Body::CreateGroup(CreateGroup { signed_state: signed.as_bytes().to_vec() }),
        )
        .await?;
        let mut changes = ClientChanges::default();
        self.record_state(None, &signed, true, now, &mut changes);
        self.store.save_client_changes(changes).await?;
        self.announce(transport, None, &signed, now, rng).await;
        Ok(group_id)
    }

    /// Changes a group (this account must be an admin of it, or be leaving): signs the next
    /// state, publishes it (catching up and retrying when another change came first), and
    /// announces it end to end to every member, old and new. Removing anyone replaces this
    /// device's sender key before its next message.
    pub async fn update_group<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        edit: &GroupEdit,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let (me, my_device) = self.whoami().await;
        for _ in 0..super::MAX_SEND_ATTEMPTS {
            self.sync_group_now(transport, group, now).await?;
            let record = self.store.load_group(&group).await?.ok_or_else(|| {
                ClientError::InvalidInput("this device does not know that group".into())
            })?;
            let current = record.state.state();
            let mut members: BTreeMap<AccountId, bool> =
                current.members.iter().map(|m| (m.account_id, m.admin)).collect();
            for a in &edit.add {
                members.entry(*a).or_insert(false);
            }
            for a in &edit.remove {
                members.remove(a);
            }
            for a in &edit.promote {
                if let Some(admin) = members.get_mut(a) {
                    *admin = true;
                }
            }
            for a in &edit.demote {
                if let Some(admin) = members.get_mut(a) {
                    *admin = false;
                }
            }
            let timestamp = self.stamp(now).await?;
            let next = GroupState {
                version: current.version + 1,
                previous: record.state.digest(),
                title: edit
                    .title
                    .as_deref()
                    .map_or_else(|| current.title.clone(), |t| t.trim().to_owned()),
                members: members
                    .into_iter()
                    .map(|(account_id, admin)| GroupMember { account_id, admin })
                    .collect(),
                signer: me,
                signer_device: my_device,
                timestamp,
                ..current.clone()
            };
            // The same rule every member applies: refuse here what they would refuse.
            current.check_successor(&record.state.digest(), &next)?;
            let signed = self.sign_group_state(next, rng).await?;
            let body = request::Body::UpdateGroup(UpdateGroup {
                signed_state: signed.as_bytes().to_vec(),
            });
            match call(transport, body).await {
                Ok(_) => {}
                // Another change came first: catch up and make this one on top of it.
                Err(ClientError::Server { status: Status::Conflict, .. }) => continue,
                Err(e) => return Err(e),
            }
            let mut changes = ClientChanges::default();
            let previous = record.state.state().clone();
            self.record_state(Some(&previous), &signed, record.accepted, now, &mut changes);
            self.store.save_client_changes(changes).await?;
            if previous.accounts().any(|a| !signed.state().is_member(&a)) {
                self.group_shares.lock().await.remove(&group);
            }
            self.announce(transport, Some(&previous), &signed, now, rng).await;
            return Ok(());
        }
        Err(ClientError::SendFailed {
            reason: format!("the group kept changing ({} attempts)", super::MAX_SEND_ATTEMPTS),
            unverified: Vec::new(),
        })
    }

    /// Leaves a group: signs the version without this account.
    pub async fn leave_group<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let (me, _) = self.whoami().await;
        let edit = GroupEdit { remove: vec![me], ..GroupEdit::default() };
        self.update_group(transport, group, &edit, now, rng).await
    }

    /// Accepts (or declines) a group this account was invited to: the relay routes its
    /// messages to this account only after an accept. This account's other devices are told
    /// end to end, so they stop asking (best effort: one that missed it learns the answer
    /// from the relay when it next needs the group).
    pub async fn accept_group<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        accept: bool,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        self.answer_on_relay(transport, group, accept).await?;
        let (me, _) = self.whoami().await;
        let answer = Content {
            body: Some(content::Body::Sync(SyncMessage {
                kind: Some(sync_message::Kind::GroupAnswer(GroupAnswer {
                    group_id: group.to_vec(),
                    accept,
                })),
            })),
        }
        .to_padded_bytes();
        if let Ok(timestamp) = self.stamp(now).await {
            let _ = self.fan_out(transport, me, &answer, &answer, timestamp, now, rng).await;
        }
        Ok(())
    }

    /// Tells the relay the answer to a group's invitation, and keeps it here.
    async fn answer_on_relay<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        accept: bool,
    ) -> Result<(), ClientError> {
        call(
            transport,
            request::Body::AcceptGroup(AcceptGroup { group_id: group.to_vec(), accept }),
        )
        .await?;
        if let Some(mut record) = self.store.load_group(&group).await? {
            record.accepted = accept;
            let mut changes = ClientChanges::default();
            changes.groups.insert(group, record);
            self.store.save_client_changes(changes).await?;
        }
        Ok(())
    }

    /// Brings the group's verified state up to the relay's newest, checking every step.
    /// Returns the notices of the changes taken. Steps that do not verify are refused and
    /// the state stays where it was.
    pub async fn sync_group<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        now: Timestamp,
    ) -> Result<Vec<Event>, ClientError> {
        self.group_synced.lock().await.insert(group, now);
        let held = self.store.load_group(&group).await?;
        let after = held.as_ref().map_or(0, |r| r.state.state().version);
        let mut states = Vec::new();
        let mut accepted_on_relay = false;
        let mut next = after;
        for _ in 0..MAX_SYNC_PAGES {
            let body =
                request::Body::GetGroup(GetGroup { group_id: group.to_vec(), after_version: next });
            let answer = match call(transport, body).await {
                Ok(Some(response::Body::GroupStates(s))) => s,
                Ok(_) => return Err(ClientError::UnexpectedResponse("group states")),
                // Not a member (any more), or no such group: nothing to take.
                Err(ClientError::Server { status: Status::NotFound, .. }) => break,
                Err(e) => return Err(e),
            };
            accepted_on_relay = answer.accepted;
            let got = answer.states.len();
            for bytes in &answer.states {
                let Ok(s) = SignedGroupState::from_bytes(bytes) else { break };
                next = next.max(s.state().version);
                states.push(s);
            }
            if got == 0 || next >= answer.latest_version {
                break;
            }
        }
        let mut current = held.as_ref().map(|r| r.state.clone());
        let mut changes = ClientChanges::default();
        let mut events = Vec::new();
        for s in states {
            let follows = match &current {
                None => s.check_genesis(),
                Some(c) => c.state().check_successor(&c.digest(), s.state()),
            };
            if follows.is_err() || self.check_signer(transport, &s, now).await?.is_err() {
                break;
            }
            let accepted = held.as_ref().is_some_and(|h| h.accepted) || accepted_on_relay;
            if let Some(e) = self.record_state(
                current.as_ref().map(SignedGroupState::state),
                &s,
                accepted,
                now,
                &mut changes,
            ) {
                events.push(e);
            }
            current = Some(s);
        }
        // Accepted on another device of this account: the relay says so.
        if accepted_on_relay
            && let Some(h) = held.as_ref().filter(|h| !h.accepted)
            && !changes.groups.contains_key(&group)
        {
            changes.groups.insert(group, GroupRecord { accepted: true, ..h.clone() });
        }
        if !changes.is_empty() {
            self.store.save_client_changes(changes).await?;
            if let (Some(before), Some(after)) = (&held, &current)
                && before.state.state().accounts().any(|a| !after.state().is_member(&a))
            {
                self.group_shares.lock().await.remove(&group);
            }
        }
        Ok(events)
    }

    /// [`Client::sync_group`] without its events.
    async fn sync_group_now<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        now: Timestamp,
    ) -> Result<(), ClientError> {
        self.sync_group(transport, group, now).await.map(|_| ())
    }

    /// Whether `account` is a member of the group's verified state. If the held state does
    /// not say so (or the group is unknown), it is brought up to date from the relay first,
    /// at most once per [`GROUP_SYNC_INTERVAL`].
    pub(super) async fn is_group_member<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        account: AccountId,
        now: Timestamp,
    ) -> Result<bool, ClientError> {
        let member = |r: &Option<GroupRecord>| {
            r.as_ref().is_some_and(|r| r.state.state().is_member(&account))
        };
        if member(&self.store.load_group(&group).await?) {
            return Ok(true);
        }
        let recently = self
            .group_synced
            .lock()
            .await
            .get(&group)
            .is_some_and(|at| now.saturating_duration_since(*at) < GROUP_SYNC_INTERVAL);
        if recently {
            return Ok(false);
        }
        self.sync_group_now(transport, group, now).await?;
        Ok(member(&self.store.load_group(&group).await?))
    }

    /// The answer to a group's invitation that another device of this account gave (it
    /// comes only over a pairwise session with one of this account's devices).
    pub(super) async fn apply_group_answer<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        answer: &GroupAnswer,
        now: Timestamp,
        changes: &mut ClientChanges,
    ) -> Result<Vec<Event>, ClientError> {
        let (me, _) = self.whoami().await;
        let Ok(group) = <[u8; 16]>::try_from(answer.group_id.as_slice()) else {
            return Ok(Vec::new());
        };
        let held = match changes.groups.get(&group) {
            Some(r) => Some(r.clone()),
            None => self.store.load_group(&group).await?,
        };
        match held {
            Some(r) if r.accepted == answer.accept => Ok(vec![Event::Duplicate]),
            Some(r) => {
                let invited = !answer.accept && r.state.state().is_member(&me);
                changes.groups.insert(group, GroupRecord { accepted: answer.accept, ..r });
                Ok(vec![Event::GroupUpdated { group, invited }])
            }
            // The group's state has not reached this device yet: take it from the relay's
            // chain (each step checked), with the answer the relay now holds.
            None if answer.accept => self.sync_group(transport, group, now).await,
            None => Ok(Vec::new()),
        }
    }

    /// A signed group state received end to end from the device that signed it.
    pub(super) async fn apply_group_update<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        origin: &Origin<'_>,
        bytes: &[u8],
        now: Timestamp,
        changes: &mut ClientChanges,
        rotate: &mut Vec<[u8; 16]>,
    ) -> Result<Result<Vec<Event>, RejectReason>, ClientError> {
        let (me, _) = self.whoami().await;
        let signed = match SignedGroupState::from_bytes(bytes) {
            Ok(s) => s,
            Err(e) => return Ok(Err(RejectReason::GroupState(e))),
        };
        let state = signed.state();
        // Only the signing device announces a state, over its own session.
        if state.signer != origin.sender || state.signer_device != origin.device {
            return Ok(Err(RejectReason::GroupState(GroupStateError::NotAllowed)));
        }
        let list = match self.device_list(transport, origin.sender, now, false).await {
            Ok(l) => l,
            Err(ClientError::AccountKeyChanged(_)) => {
                return Ok(Err(RejectReason::Adv(AdvError::AccountKeyChanged)));
            }
            Err(e) => return Err(e),
        };
        match signed.verify(&list.account_key) {
            Ok(v) if v.signer_key == origin.verified.identity_key => {}
            Ok(_) => return Ok(Err(RejectReason::GroupState(GroupStateError::BadSignature))),
            Err(e) => return Ok(Err(RejectReason::GroupState(e))),
        }
        let group = state.group_id;
        let held = match changes.groups.get(&group) {
            Some(r) => Some(r.clone()),
            None => self.store.load_group(&group).await?,
        };
        let (previous, accepted) = match &held {
            None if state.version == 1 => {
                if let Err(e) = signed.check_genesis() {
                    return Ok(Err(RejectReason::GroupState(e)));
                }
                (None, None)
            }
            // An invitation into a group that existed before: the inviter's own signed word,
            // end to end, is the starting point.
            None if state.is_member(&me) => (None, None),
            None => return Ok(Ok(vec![Event::Duplicate])),
            Some(h) => {
                let current = h.state.state();
                if state.version <= current.version {
                    return Ok(
                        if state.version == current.version && signed.digest() != h.state.digest() {
                            Err(RejectReason::GroupState(GroupStateError::Fork))
                        } else {
                            Ok(vec![Event::Duplicate])
                        },
                    );
                }
                let base = if state.version > current.version + 1 {
                    // ClientChanges in between were not announced to this device: take them from
                    // the relay's chain, each one checked, then this one must follow.
                    self.sync_group_now(transport, group, now).await?;
                    match self.store.load_group(&group).await? {
                        Some(r) if r.state.state().version >= state.version => {
                            return Ok(Ok(vec![Event::GroupUpdated {
                                group,
                                invited: !r.accepted,
                            }]));
                        }
                        Some(r) => r,
                        None => h.clone(),
                    }
                } else {
                    h.clone()
                };
                if let Err(e) = base.state.state().check_successor(&base.state.digest(), state) {
                    return Ok(Err(RejectReason::GroupState(e)));
                }
                (Some(base.state.state().clone()), Some(base.accepted))
            }
        };
        let accepted = match accepted {
            Some(a) => a,
            // New to this device: its own account made it, or an inviter this account
            // already talks to (then the relay hears the accept now); otherwise the person
            // decides.
            None if origin.sender == me => true,
            None => {
                let known = !self
                    .store
                    .load_messages(&Conversation::Direct(origin.sender), 1)
                    .await?
                    .is_empty();
                if known {
                    self.answer_on_relay(transport, group, true).await?;
                }
                known
            }
        };
        let mut events = Vec::new();
        if let Some(e) = self.record_state(previous.as_ref(), &signed, accepted, now, changes) {
            events.push(e);
        }
        if previous.as_ref().is_some_and(|p| p.accounts().any(|a| !state.is_member(&a))) {
            rotate.push(group);
        }
        events.push(Event::GroupUpdated { group, invited: !accepted && state.is_member(&me) });
        Ok(Ok(events))
    }

    /// Checks that a state from the relay's chain was signed by a device its account lists
    /// now, under that device's key.
    async fn check_signer<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        signed: &SignedGroupState,
        now: Timestamp,
    ) -> Result<Result<(), GroupStateError>, ClientError> {
        let state = signed.state();
        let list = match self.device_list(transport, state.signer, now, false).await {
            Ok(l) => l,
            Err(ClientError::AccountKeyChanged(_)) => {
                return Ok(Err(GroupStateError::Adv(AdvError::AccountKeyChanged)));
            }
            Err(e) => return Err(e),
        };
        let verified = match signed.verify(&list.account_key) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let listed = |l: &super::DeviceListRecord| {
            l.device(state.signer_device).is_some_and(|d| d.identity_key == verified.signer_key)
        };
        if listed(&list) {
            return Ok(Ok(()));
        }
        let fresh = self.device_list(transport, state.signer, now, true).await?;
        Ok(if listed(&fresh) { Ok(()) } else { Err(GroupStateError::Adv(AdvError::NotInList)) })
    }

    /// Puts a verified state in `changes`, with the line its chat shows. Returns the notice's
    /// event, unless the line was there already.
    fn record_state(
        &self,
        previous: Option<&GroupState>,
        signed: &SignedGroupState,
        accepted: bool,
        now: Timestamp,
        changes: &mut ClientChanges,
    ) -> Option<Event> {
        let state = signed.state();
        changes.groups.insert(state.group_id, GroupRecord { state: signed.clone(), accepted });
        let id = MessageId {
            sender: state.signer,
            device: state.signer_device,
            timestamp: state.timestamp,
        };
        if changes.messages.contains_key(&id) {
            return None;
        }
        let record = MessageRecord {
            id,
            conversation: Conversation::Group(state.group_id),
            body: String::new(),
            outgoing: state.signer == self.me.0,
            state: OutgoingState::Sent,
            stored_at: now,
            delivered_to: Default::default(),
            // A notice is never unread.
            read_by: std::iter::once(self.me.0).collect(),
            server_time: None,
            notice: Some(Notice::Group {
                created: previous.is_none() && state.version == 1,
                change: GroupChange::between(previous, state),
            }),
            local_id: None,
            quote: None,
            audience: 0,
        };
        changes.messages.insert(id, record.clone());
        Some(Event::Message(Box::new(record)))
    }

    /// Signs a state with this device: the primary with the account key, a companion with
    /// its identity key and its ADV identity.
    async fn sign_group_state(
        &self,
        state: GroupState,
        rng: &mut impl CryptoRng,
    ) -> Result<SignedGroupState, ClientError> {
        let identity = self.store.load_identity_key_pair().await?;
        let account = self.account().await;
        let adv = if account.device_id.is_primary() {
            None
        } else {
            Some(SignedDeviceIdentity::from_bytes(&account.adv_identity)?)
        };
        Ok(SignedGroupState::sign(state, &identity, adv, rng)?)
    }

    /// A fresh timestamp, saved.
    async fn stamp(&self, now: Timestamp) -> Result<u64, ClientError> {
        Ok(self.stamps(now, 1).await?[0])
    }

    /// `n` timestamps for a batch of sends, kept with one write.
    async fn stamps(&self, now: Timestamp, n: usize) -> Result<Vec<u64>, ClientError> {
        let mut account = self.lock().await;
        let t = self.next_timestamps(&mut account, now, n.max(1)).await?;
        self.save(&account, ClientChanges::default()).await?;
        Ok(t)
    }

    /// Sends the new state end to end to every member of it and of the state before (so
    /// removed members learn it too), and to this account's other devices. Failures are
    /// not fatal: members who missed it catch up from the relay's chain.
    async fn announce<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        previous: Option<&GroupState>,
        signed: &SignedGroupState,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) {
        let (me, _) = self.whoami().await;
        let mut recipients: BTreeSet<AccountId> = signed.state().accounts().collect();
        if let Some(p) = previous {
            recipients.extend(p.accounts());
        }
        recipients.remove(&me);
        let update = Content { body: Some(content::Body::GroupUpdate(signed.as_bytes().to_vec())) }
            .to_padded_bytes();
        let nothing = Content { body: Some(content::Body::Sync(SyncMessage { kind: None })) }
            .to_padded_bytes();
        let mut own_told = false;
        let Ok(stamps) = self.stamps(now, recipients.len() + 1).await else { return };
        let accounts = recipients.iter().copied().chain(std::iter::once(me));
        let total = recipients.len();
        for (done, (account, timestamp)) in accounts.zip(stamps).enumerate() {
            self.set_progress(Some(Progress { work: Work::AnnouncingGroup, done, total }));
            if account == me && own_told {
                break;
            }
            let to_own = if own_told { &nothing } else { &update };
            if self.fan_out(transport, account, &update, to_own, timestamp, now, rng).await.is_ok()
            {
                own_told = true;
            }
        }
        self.set_progress(None);
    }

    /// Queues and sends a text to a group.
    pub async fn send_group_text<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        text: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let id = self.queue_text(Conversation::Group(group), text, now).await?;
        self.send_and_settle(transport, id, now, rng).await
    }

    /// The person chose to send a group's waiting messages without `member`, whose changed
    /// security code they have not accepted (a verified member's new key holds every send to
    /// the group, see [`Client::device_list`]): each message of the group in the outbox goes
    /// on the next flush to every other member, and no device of `member`'s gets the key it
    /// is encrypted with (the key changes, so their old devices lose it too). Messages
    /// queued later wait again. Returns how many messages were released.
    pub async fn send_without(
        &self,
        group: [u8; 16],
        member: AccountId,
    ) -> Result<usize, ClientError> {
        let record = self.store.load_group(&group).await?.ok_or_else(|| {
            ClientError::InvalidInput("this device does not know that group".into())
        })?;
        if !record.state.state().is_member(&member) {
            return Err(ClientError::InvalidInput("they are not a member of the group".into()));
        }
        let pending =
            self.store.load_device_list(&member).await?.is_some_and(|l| l.pending_key.is_some());
        if !pending {
            return Err(ClientError::InvalidInput(
                "no message waits for them: their security code did not change".into(),
            ));
        }
        let account = self.lock().await;
        let mut changes = ClientChanges::default();
        for mut entry in self.store.load_outbox().await? {
            if entry.conversation != Conversation::Group(group) || !entry.without.insert(member) {
                continue;
            }
            // The ticks count the members it goes to.
            if let Some(mut m) = self.store.load_message(&entry.id).await? {
                m.audience = m.audience.saturating_sub(1).max(1);
                changes.messages.insert(entry.id, m);
            }
            changes.outbox.insert(entry.id, entry);
        }
        let released = changes.outbox.len();
        self.save(&account, changes).await?;
        Ok(released)
    }

    pub(crate) async fn send_group_entry<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        entry: &OutboxEntry,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        for _ in 0..super::MAX_SEND_ATTEMPTS {
            match self.send_group_once(transport, group, entry, now, rng).await {
                // The relay holds a newer state: learn it (removals rotate the key), resend.
                Err(ClientError::Server { status: Status::Conflict, .. }) => {
                    self.sync_group_now(transport, group, now).await?;
                }
                other => return other,
            }
        }
        Err(ClientError::SendFailed {
            reason: format!("the group kept changing ({} attempts)", super::MAX_SEND_ATTEMPTS),
            unverified: Vec::new(),
        })
    }

    async fn send_group_once<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        entry: &OutboxEntry,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let (me, my_device) = self.whoami().await;
        let own_address = me.address(my_device);
        let distribution = DistributionId(group);
        let mut record = self.store.load_group(&group).await?;
        if record.as_ref().is_none_or(|r| !r.accepted) {
            // Another device of this account may have accepted it: the relay knows.
            self.sync_group_now(transport, group, now).await?;
            record = self.store.load_group(&group).await?;
        }
        let record = record.ok_or_else(|| {
            ClientError::InvalidInput("this device does not know that group".into())
        })?;
        let state = record.state.state();
        if !state.is_member(&me) {
            return Err(ClientError::InvalidInput(
                "this account is not a member of the group".into(),
            ));
        }
        if !record.accepted {
            return Err(ClientError::InvalidInput("accept the group's invitation first".into()));
        }
        // Every verified device of every member of the verified state, except this one.
        let members: BTreeSet<AccountId> = state.accounts().collect();
        let mut devices: BTreeMap<AccountId, Vec<(DeviceId, [u8; 33])>> = BTreeMap::new();
        // What the relay must hold too (see `SendGroupMessage::member_devices`).
        let mut member_devices = Vec::with_capacity(members.len() * DEVICE_SET_TAG_LEN);
        for m in &members {
            let list = match self.device_list(transport, *m, now, false).await {
                Err(ClientError::AccountKeyChanged(_)) if entry.without.contains(m) => {
                    // Sent without them: none of their devices is given the key. The relay
                    // is told the devices it lists for them (it delivers the ciphertext,
                    // which they cannot read).
                    member_devices.extend(self.served_device_tag(transport, *m).await?);
                    devices.insert(*m, Vec::new());
                    continue;
                }
                other => other?,
            };
            let theirs: Vec<_> =
                list.devices.iter().filter(|d| (*m, d.device_id) != (me, my_device)).collect();
            member_devices.extend(device_set_tag(
                m,
                theirs.iter().map(|d| (d.device_id.get(), d.registration_id)),
            ));
            devices.insert(
                *m,
                theirs.iter().map(|d| (d.device_id, d.identity_key.serialize())).collect(),
            );
        }
        let current: BTreeSet<Holder> =
            devices.iter().flat_map(|(a, ds)| ds.iter().map(move |(d, k)| (*a, *d, *k))).collect();
        let mut shares = self.group_shares.lock().await;
        let share = shares.get(&group).cloned();
        let rotate = match &share {
            None => true,
            Some(s) => !s.members.is_subset(&members) || !s.holders.is_subset(&current),
        };
        let mut share = share.unwrap_or_default();
        if rotate {
            let account = self.lock().await;
            self.sending_keys.lock().await.remove(&group);
            self.save(&account, rotate_sender_key(&own_address, distribution, rng)).await?;
            share = GroupShare { members: members.clone(), holders: BTreeSet::new() };
        }
        // The members with a device that lacks the current key (none, in a steady group:
        // then no distribution message is made).
        let lacking: Vec<AccountId> = devices
            .iter()
            .filter(|(m, ds)| !ds.iter().all(|(d, k)| share.holders.contains(&(**m, *d, *k))))
            .map(|(m, _)| *m)
            .collect();
        if !lacking.is_empty() {
            // The key handed out is where the chain sends next, not where its reserve ends.
            self.settle_sending_key(group, &own_address).await?;
            let (skdm, c) = create_sender_key_distribution_message(
                &self.store,
                &own_address,
                distribution,
                rng,
            )
            .await?;
            {
                let account = self.lock().await;
                self.save(&account, c).await?;
            }
            let skdm_content = Content {
                body: Some(content::Body::SenderKeyDistribution(skdm.serialized().to_vec())),
            }
            .to_padded_bytes();
            let stamps = self.stamps(now, lacking.len()).await?;
            let total = lacking.len();
            for (done, (member, timestamp)) in lacking.iter().zip(stamps).enumerate() {
                self.set_progress(Some(Progress { work: Work::SharingGroupKey, done, total }));
                let sent = self
                    .fan_out(transport, *member, &skdm_content, &skdm_content, timestamp, now, rng)
                    .await;
                let report = match sent {
                    Ok(r) => r,
                    Err(e) => {
                        self.set_progress(None);
                        return Err(e);
                    }
                };
                // Holders by the identity this device encrypted to (the list just used).
                share.holders.extend(report.devices.iter().filter_map(|(a, d)| {
                    let key = devices.get(a)?.iter().find(|(id, _)| id == d)?.1;
                    Some((*a, *d, key))
                }));
            }
            self.set_progress(None);
        }
        share.members = members.clone();
        shares.insert(group, share);
        drop(shares);

        let data = DataMessage {
            body: entry.body.clone(),
            timestamp: entry.id.timestamp,
            group_id: group.to_vec(),
            quote: entry.quote.as_ref().map(super::send::quote_to_wire),
        };
        let padded = Content { body: Some(content::Body::Data(data)) }.to_padded_bytes();
        let message = self.encrypt_for_group(group, &own_address, &padded, rng).await?;
        let body = request::Body::SendGroupMessage(SendGroupMessage {
            group_id: group.to_vec(),
            timestamp: entry.id.timestamp,
            content: message.serialized().to_vec(),
            version: state.version,
            member_devices,
        });
        let resp = transport.request(body).await?;
        let sent = match (resp.status(), resp.body) {
            (Status::Ok, Some(response::Body::Sent(sent))) => sent,
            (Status::Ok, _) => return Err(ClientError::UnexpectedResponse("group send")),
            // Some members' devices are not what this device shared its key with: their
            // lists are fetched afresh before the next try (a new device gets the key, a
            // removed one makes the key change, a new account key holds the send).
            (Status::Conflict, Some(response::Body::MismatchedDevices(m))) => {
                for a in &m.accounts {
                    if let Ok(account) = AccountId::from_bytes(&a.account_id)
                        && members.contains(&account)
                    {
                        self.mark_list_stale(account).await?;
                    }
                }
                return Err(ClientError::Server {
                    status: Status::Conflict,
                    message: resp.message,
                });
            }
            (status, _) => return Err(ClientError::Server { status, message: resp.message }),
        };
        Ok(SendReport {
            id: None,
            server_timestamp: sent.server_timestamp_ms,
            devices: current.into_iter().map(|(a, d, _)| (a, d)).collect(),
            rejected: Vec::new(),
            attempts: 1,
        })
    }

    /// The relay's device-set tag for `account` from the devices it serves, unverified: only
    /// for a member whose new account key the person has not accepted (see
    /// [`Client::send_without`]), to whom nothing readable goes.
    async fn served_device_tag<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account: AccountId,
    ) -> Result<[u8; DEVICE_SET_TAG_LEN], ClientError> {
        let body = request::Body::GetDevices(crate::wire::relay::GetDevices {
            account_id: account.0.to_vec(),
            incoming: false,
        });
        let Some(response::Body::Devices(served)) = call(transport, body).await? else {
            return Err(ClientError::UnexpectedResponse("devices"));
        };
        Ok(device_set_tag(
            &account,
            served.devices.iter().map(|d| (d.device_id, d.registration_id)),
        ))
    }

    /// Encrypts one group message with this device's chain in memory, saving the chain
    /// [`RESERVED_MESSAGES`] ahead first when the stored one does not already stand beyond
    /// it (one save per that many messages).
    async fn encrypt_for_group(
        &self,
        group: [u8; 16],
        own_address: &tandem_signal::ProtocolAddress,
        padded: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<crate::wire::signal::SenderKeyMessage, ClientError> {
        let name = sending_key_name(own_address, group);
        let account = self.lock().await;
        let mut keys = self.sending_keys.lock().await;
        // Taken out: an error below leaves nothing behind, and the next message reloads.
        let mut key = match keys.remove(&group) {
            Some(k) => k,
            None => {
                let record = self
                    .store
                    .load_sender_key(&name)
                    .await?
                    .ok_or(tandem_signal::ProtocolError::NoSenderKeyState)?;
                SendingKey { stored: position(&record)?, record }
            }
        };
        if !position(&key.record)?.precedes(&key.stored) {
            let ahead = reserve_ahead(&key.record, RESERVED_MESSAGES)?;
            let stored = position(&ahead)?;
            self.save_sending_chain(&account, name, ahead, key.stored).await?;
            key.stored = stored;
        }
        let message = group_encrypt_in(&mut key.record, DistributionId(group), padded, rng)?;
        keys.insert(group, key);
        Ok(message)
    }

    /// Saves this device's chain of `group` where it sends next (ending its reserve), so
    /// what is read from the store next — a distribution message — starts there.
    async fn settle_sending_key(
        &self,
        group: [u8; 16],
        own_address: &tandem_signal::ProtocolAddress,
    ) -> Result<(), ClientError> {
        let account = self.lock().await;
        let Some(key) = self.sending_keys.lock().await.remove(&group) else { return Ok(()) };
        if ChainPosition::of_sender_key(&key.record) == Some(key.stored) {
            return Ok(());
        }
        let name = sending_key_name(own_address, group);
        self.save_sending_chain(&account, name, key.record, key.stored).await
    }

    /// Saves this device's chain as `record`, if the stored one still stands at `stored`
    /// (where this client last saved or read it).
    async fn save_sending_chain(
        &self,
        account: &super::AccountRecord,
        name: SenderKeyName,
        record: SenderKeyRecord,
        stored: ChainPosition,
    ) -> Result<(), ClientError> {
        let mut changes = Changes::default();
        changes.guards.insert(Chain::SenderKey(name.clone()), Guard::At(stored));
        changes.sender_keys.insert(name, record);
        self.save(account, changes).await
    }
}

/// The name of this device's sender key for `group`.
fn sending_key_name(
    own_address: &tandem_signal::ProtocolAddress,
    group: [u8; 16],
) -> SenderKeyName {
    SenderKeyName { sender: own_address.clone(), distribution_id: DistributionId(group) }
}

/// Where a sending chain stands; a record that cannot send has no position.
fn position(record: &SenderKeyRecord) -> Result<ChainPosition, tandem_signal::ProtocolError> {
    ChainPosition::of_sender_key(record).ok_or(tandem_signal::ProtocolError::NoSenderKeyState)
}

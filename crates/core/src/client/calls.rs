//! Calls on the client: the device's [`CallBook`] under the engine, its messages sent by
//! client fan-out (each callee device's offer with its own secret), and each call's line in
//! the conversation stored when it ends.

use rand_core::CryptoRng;

use super::{Client, ClientError, Conversation, MessageRecord, Notice, OutgoingState};
use crate::calls::{
    CallBook, CallError, CallRecord, CallSecret, CallSend, CallUpdate, Effects, device_secret,
};
use crate::store::{ClientChanges, ClientStore};
use crate::transport::RelayTransport;
use crate::wire::content::{CallMessage, Content, call_message, content};
use crate::wire::relay::{GetIceServers, IceServers, MAX_ICE_SERVERS, request, response};
use tandem_signal::{AccountId, DeviceId, Timestamp};

/// Call messages kept for [`Client::flush_calls`] at most.
const MAX_PENDING_SENDS: usize = 32;

impl From<CallError> for ClientError {
    fn from(e: CallError) -> Self {
        ClientError::InvalidInput(e.to_string())
    }
}

/// A call this device placed: its id, and what the UI needs to check the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedCall {
    /// The call.
    pub call_id: u64,
    /// How many devices of the callee it rings on.
    pub devices: usize,
}

/// A call's line in the conversation, as a message record.
pub(crate) fn call_line(record: &CallRecord, now: Timestamp) -> MessageRecord {
    MessageRecord {
        id: record.id,
        conversation: Conversation::Direct(record.peer),
        body: String::new(),
        outgoing: record.outgoing,
        state: OutgoingState::Sent,
        stored_at: now,
        delivered_to: Default::default(),
        read_by: Default::default(),
        server_time: None,
        notice: Some(Notice::Call {
            outcome: record.outcome,
            video: record.video,
            seconds: record.seconds,
        }),
        local_id: None,
        quote: None,
        audience: 0,
    }
}

impl<S: ClientStore> Client<S> {
    /// Runs `step` on this device's call book.
    pub(crate) async fn with_calls<R>(&self, step: impl FnOnce(&mut CallBook) -> R) -> R {
        let mut book = self.calls.lock().await;
        let (me, device) = self.whoami().await;
        let book = book.get_or_insert_with(|| CallBook::new(me, device));
        step(book)
    }

    /// Keeps what a step of the call book produced: lines into `changes`, messages for
    /// [`Client::flush_calls`]; returns the updates for the UI.
    pub(crate) async fn keep_effects(
        &self,
        effects: Effects,
        changes: &mut ClientChanges,
        now: Timestamp,
    ) -> Result<Vec<CallUpdate>, ClientError> {
        for record in &effects.records {
            // A line already stored (a redelivered hangup, a second device's view) stays.
            if self.load(record.id, changes).await?.is_none() {
                changes.messages.insert(record.id, call_line(record, now));
            }
        }
        let mut pending = self.pending_calls.lock().await;
        pending.extend(effects.sends);
        // A driver that does not send them (or cannot, offline) keeps only the newest:
        // older call steps are stale anyway.
        let over = pending.len().saturating_sub(MAX_PENDING_SENDS);
        pending.drain(..over);
        Ok(effects.updates)
    }

    /// Whether call messages wait for [`Client::flush_calls`].
    pub async fn calls_waiting(&self) -> bool {
        !self.pending_calls.lock().await.is_empty()
    }

    /// Applies a local step's effects: stores lines, sends messages. Returns the updates.
    async fn run_effects<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        effects: Effects,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<CallUpdate>, ClientError> {
        let mut changes = ClientChanges::default();
        let updates = self.keep_effects(effects, &mut changes, now).await?;
        if !changes.messages.is_empty() {
            let account = self.lock().await;
            self.save(&account, changes).await?;
        }
        self.flush_calls(transport, now, rng).await?;
        Ok(updates)
    }

    /// Calls `peer` with this device's SDP offer `sdp`: every verified device of `peer` gets
    /// the offer with its own master secret, this account's other devices hear of the call.
    pub async fn place_call<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        peer: AccountId,
        sdp: &str,
        video: bool,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<PlacedCall, ClientError> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let seed = CallSecret(seed);
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        // 53 bits: the id crosses JavaScript as a number.
        let call_id = (u64::from_le_bytes(id) >> 11).max(1);
        let clock = self.message_clock(now).await;
        let placed = clock.as_millis();
        let offer = self
            .with_calls(|book| book.start(peer, call_id, seed.clone(), sdp, video, placed, clock))
            .await?;
        let message =
            CallMessage { call_id, peer: Vec::new(), kind: Some(call_message::Kind::Offer(offer)) };
        let send = CallSend {
            peer,
            own: CallMessage { peer: peer.0.to_vec(), ..message.clone() },
            message,
        };
        match self.send_call(transport, &send, Some(&seed), now, rng).await {
            Ok(devices) => Ok(PlacedCall { call_id, devices }),
            Err(e) => {
                self.with_calls(|book| book.abandon(call_id)).await;
                Err(e)
            }
        }
    }

    /// Answers the call ringing here with this device's SDP answer.
    pub async fn answer_call<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        call_id: u64,
        sdp: &str,
        video: bool,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<CallUpdate>, ClientError> {
        let clock = self.message_clock(now).await;
        let effects = self.with_calls(|book| book.answer(call_id, sdp, video, clock)).await?;
        self.run_effects(transport, effects, now, rng).await
    }

    /// Declines the call ringing here (on every device of this account).
    pub async fn decline_call<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        call_id: u64,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<CallUpdate>, ClientError> {
        let effects = self.with_calls(|book| book.decline(call_id)).await?;
        self.run_effects(transport, effects, now, rng).await
    }

    /// Hangs up this device's call; with `security_failure`, because its connection failed
    /// the end-to-end check.
    pub async fn hang_up_call<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        call_id: u64,
        security_failure: bool,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<CallUpdate>, ClientError> {
        let clock = self.message_clock(now).await;
        let effects = self
            .with_calls(|book| {
                if security_failure {
                    book.security_failure(call_id, clock)
                } else {
                    book.hang_up(call_id, clock)
                }
            })
            .await?;
        self.run_effects(transport, effects, now, rng).await
    }

    /// Sends ICE candidates this device gathered for its call.
    pub async fn send_call_candidates<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        call_id: u64,
        candidates: Vec<String>,
        generation: u32,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let effects =
            self.with_calls(|book| book.candidates(call_id, candidates, generation)).await?;
        self.run_effects(transport, effects, now, rng).await.map(|_| ())
    }

    /// Tells the other end of this device's connected call that the microphone or camera
    /// went off or on.
    pub async fn send_call_media<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        call_id: u64,
        muted: bool,
        camera_off: bool,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let effects = self.with_calls(|book| book.media(call_id, muted, camera_off)).await?;
        self.run_effects(transport, effects, now, rng).await.map(|_| ())
    }

    /// Sends a new offer (the caller's device, for an ICE restart) or the answer to one.
    #[allow(clippy::too_many_arguments)]
    pub async fn renegotiate_call<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        call_id: u64,
        sdp: String,
        offer: bool,
        generation: u32,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let effects =
            self.with_calls(|book| book.renegotiate(call_id, sdp, offer, generation)).await?;
        self.run_effects(transport, effects, now, rng).await.map(|_| ())
    }

    /// The STUN and TURN servers the relay names for calls (TURN with credentials that
    /// expire at `expires_ms`, the relay's clock). Each server's URLs are checked: only
    /// `stun:`, `stuns:`, `turn:` and `turns:` URLs of sane length are kept.
    pub async fn ice_servers<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
    ) -> Result<IceServers, ClientError> {
        let body = super::call(transport, request::Body::GetIceServers(GetIceServers {})).await?;
        let Some(response::Body::IceServers(mut ice)) = body else {
            return Err(ClientError::UnexpectedResponse("ice servers"));
        };
        ice.servers.truncate(MAX_ICE_SERVERS);
        for server in &mut ice.servers {
            server.urls.retain(|u| {
                let scheme = u.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
                u.len() <= 256
                    && matches!(scheme.as_deref(), Some("stun" | "stuns" | "turn" | "turns"))
            });
            server.urls.truncate(MAX_ICE_SERVERS);
        }
        ice.servers
            .retain(|s| !s.urls.is_empty() && s.username.len() <= 256 && s.credential.len() <= 256);
        Ok(ice)
    }

    /// Ends calls that rang too long; returns the updates, and how long until the next
    /// ringing call times out (to tick again then).
    pub async fn tick_calls<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(Vec<CallUpdate>, Option<std::time::Duration>), ClientError> {
        let clock = self.message_clock(now).await;
        let effects = self.with_calls(|book| book.tick(clock)).await;
        let updates = self.run_effects(transport, effects, now, rng).await?;
        let next = self.with_calls(|book| book.next_deadline()).await;
        Ok((updates, next.map(|t| t.saturating_duration_since(clock))))
    }

    /// Sends the call messages that receiving produced (busy replies, hangups to late
    /// answers). Call messages are not retried later: a call step that cannot leave now is
    /// stale by the time it could.
    pub async fn flush_calls<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let pending: Vec<CallSend> = std::mem::take(&mut *self.pending_calls.lock().await);
        let mut first_error = None;
        for send in pending {
            if let Err(e) = self.send_call(transport, &send, None, now, rng).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends one call message by fan-out; with `seed`, each callee device's offer carries
    /// its own secret. Returns how many devices of the peer got it.
    async fn send_call<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        send: &CallSend,
        seed: Option<&CallSecret>,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<usize, ClientError> {
        let timestamp = {
            let mut account = self.lock().await;
            let t = self.next_timestamp(&mut account, now).await?;
            self.save(&account, ClientChanges::default()).await?;
            t
        };
        let pad = |m: &CallMessage| {
            Content { body: Some(content::Body::Call(m.clone())) }.to_padded_bytes()
        };
        let own = pad(&send.own);
        let plain = pad(&send.message);
        let per_device = |_: AccountId, device: DeviceId, is_own: bool| -> Vec<u8> {
            if is_own {
                return own.clone();
            }
            match (seed, &send.message.kind) {
                (Some(seed), Some(call_message::Kind::Offer(offer))) => {
                    let mut offer = offer.clone();
                    offer.secret = device_secret(seed, device).0.to_vec();
                    let m = CallMessage {
                        kind: Some(call_message::Kind::Offer(offer)),
                        ..send.message.clone()
                    };
                    pad(&m)
                }
                _ => plain.clone(),
            }
        };
        let report =
            self.fan_out_each(transport, send.peer, &per_device, timestamp, now, rng).await?;
        Ok(report.devices.iter().filter(|(a, _)| *a == send.peer).count())
    }
}

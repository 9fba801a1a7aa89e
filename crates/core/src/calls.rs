//! 1:1 calls: the signalling state of every call this device takes part in or hears of
//! ([`CallBook`], sans-IO: it returns what to send, show and record), the per-device master
//! secrets, and the end-to-end frame layer ([`FrameCrypter`], SFrame) that media carries on
//! top of WebRTC's DTLS-SRTP.
//!
//! The caller picks a random call id and a random 32-byte seed; each callee device's master
//! secret is HKDF of the seed and that device's id ([`device_secret`]), so every device gets
//! its own and only the caller can compute all of them. The offer (SDP, the DTLS certificate
//! fingerprint, the device's secret) goes to every device of the callee by the usual client
//! fan-out, and to the caller's own other devices without a secret. Every callee device
//! rings; the first answer wins, and the caller hangs up on any later one with
//! "answered elsewhere". The answer, ICE candidates and hangups travel the same way. The
//! relay routes ciphertext only: it sees that two accounts exchanged some messages.
//!
//! Media frames are protected with SFrame under the answering device's secret, one KID per
//! direction and media kind, so no key and nonce pair is ever used by two senders.

pub mod sframe;

use std::collections::BTreeMap;
use std::time::Duration;

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::records::{CallOutcome, MessageId};
use crate::wire::content::{
    CallAnswer, CallHangup, CallIce, CallMedia, CallMessage, CallOffer, CallRenegotiate,
    HangupReason, call_message,
};
use sframe::{Receiver, Sender, SframeError};
use tandem_signal::{AccountId, DeviceId, Timestamp};

/// How long a call rings before it counts as missed.
pub const RING_TIMEOUT: Duration = Duration::from_secs(45);
/// Longest SDP accepted in a call message.
pub const MAX_SDP_LEN: usize = 16 * 1024;
/// Most ICE candidates in one call message.
pub const MAX_CANDIDATES: usize = 32;
/// Longest ICE candidate accepted.
pub const MAX_CANDIDATE_LEN: usize = 1024;
/// Calls remembered at once (ringing, in progress or heard of); the oldest ended go first.
const MAX_CALLS: usize = 16;
/// Ended calls remembered, so their redelivered messages change nothing.
const MAX_ENDED: usize = 64;

/// A 32-byte call master secret. Lives only in memory; zeroized when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct CallSecret(pub [u8; 32]);

impl std::fmt::Debug for CallSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallSecret(..)")
    }
}

/// The master secret the caller's `seed` gives callee device `device`.
pub fn device_secret(seed: &CallSecret, device: DeviceId) -> CallSecret {
    let hk = Hkdf::<Sha256>::new(Some(b"Tandem call secret v1"), &seed.0);
    let mut out = [0u8; 32];
    // 32 bytes are far below HKDF-SHA256's limit.
    if hk.expand(&device.get().to_be_bytes(), &mut out).is_err() {
        unreachable!("HKDF output of 32 bytes");
    }
    CallSecret(out)
}

/// The SHA-256 fingerprint an SDP's `a=fingerprint:sha-256` line states (the first one), or
/// `None` if it has none or it is malformed.
pub fn sdp_fingerprint(sdp: &str) -> Option<[u8; 32]> {
    let line = sdp.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("a=fingerprint:")?;
        let (algo, value) = rest.split_once(' ')?;
        algo.eq_ignore_ascii_case("sha-256").then_some(value.trim())
    })?;
    parse_fingerprint(line)
}

/// A fingerprint in its colon-separated hex form (`AB:CD:…`, 32 bytes).
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut n = 0;
    for part in text.split(':') {
        if n == 32 || part.len() != 2 {
            return None;
        }
        out[n] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 32).then_some(out)
}

/// Whether two fingerprints are equal (in constant time).
pub fn fingerprints_match(a: &[u8], b: &[u8]) -> bool {
    a.len() == 32 && a.ct_eq(b).into()
}

/// A media stream's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// Opus audio.
    Audio,
    /// VP8 video.
    Video,
}

/// Which end of the call this device is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It placed the call.
    Caller,
    /// It answered.
    Callee,
}

/// The SFrame KID of what `role` sends of `kind`: caller audio 0, caller video 1, callee
/// audio 2, callee video 3.
pub fn kid(role: Role, kind: MediaKind) -> u64 {
    let base = match role {
        Role::Caller => 0,
        Role::Callee => 2,
    };
    base + u64::from(kind == MediaKind::Video)
}

/// Bytes at the start of a frame left in clear (and authenticated) so the browser's
/// packetizer and depacketizer can read the codec header: Opus's TOC byte; VP8's payload
/// header (10 bytes on a key frame, with the picture size, 3 otherwise).
pub fn clear_prefix(kind: MediaKind, key_frame: bool) -> usize {
    match (kind, key_frame) {
        (MediaKind::Audio, _) => 1,
        (MediaKind::Video, true) => 10,
        (MediaKind::Video, false) => 3,
    }
}

/// The most bytes of a frame's start that [`FrameCrypter::seal_plan`] and
/// [`FrameCrypter::open_plans`] read: the longest clear prefix and the longest SFrame header.
pub const PLAN_HEAD: usize = 10 + sframe::MAX_HEADER_LEN;

/// Frames protected and opened, and refused, since the call started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Frames protected.
    pub sent: u64,
    /// Frames opened.
    pub opened: u64,
    /// Frames dropped because they did not authenticate (or named an unknown key).
    pub unauthentic: u64,
    /// Frames dropped as replays.
    pub replayed: u64,
}

/// One call's end-to-end frame layer on one device: protects what it sends under its own
/// KIDs and opens what the other end sends under theirs.
#[derive(Debug)]
pub struct FrameCrypter {
    audio: Sender,
    video: Sender,
    receiver: Receiver,
    other: Role,
    counts: FrameCounts,
}

/// How one frame is sealed or opened: `frame[..clear]` stays in clear (authenticated as
/// SFrame metadata), the SFrame header and the AES-GCM of the rest follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FramePlan {
    /// Bytes at the frame's start left in clear.
    pub clear: usize,
    /// The AES-GCM inputs.
    pub aead: sframe::Aead,
}

impl FramePlan {
    /// Where the sealed part (`ciphertext ‖ tag`) starts in the protected frame.
    pub fn body_start(&self) -> usize {
        self.clear + self.aead.header_len
    }
}

impl FrameCrypter {
    /// The layer of the device in `role` of a call keyed by `secret`.
    pub fn new(secret: &CallSecret, role: Role) -> Self {
        let other = match role {
            Role::Caller => Role::Callee,
            Role::Callee => Role::Caller,
        };
        let mut receiver = Receiver::new();
        for kind in [MediaKind::Audio, MediaKind::Video] {
            receiver.add_key(kid(other, kind), &secret.0);
        }
        Self {
            audio: Sender::new(kid(role, MediaKind::Audio), &secret.0),
            video: Sender::new(kid(role, MediaKind::Video), &secret.0),
            receiver,
            other,
            counts: FrameCounts::default(),
        }
    }

    /// Each KID's AES-128 key (its own two and the other end's two), for an AES-GCM outside
    /// this crate: the media worker imports them into WebCrypto (hardware AES) as keys that
    /// cannot be exported again. The copies are zeroized when dropped.
    pub fn aes_keys(&self) -> Vec<(u64, zeroize::Zeroizing<[u8; 16]>)> {
        let mut keys: Vec<_> =
            [&self.audio, &self.video].into_iter().map(|s| (s.kid(), s.keys().aes_key())).collect();
        for kind in [MediaKind::Audio, MediaKind::Video] {
            let kid = kid(self.other, kind);
            if let Some(k) = self.receiver.keys(kid) {
                keys.push((kid, k.aes_key()));
            }
        }
        keys
    }

    /// How to make an encoded frame of `len` bytes ready to send with an AES-GCM run
    /// elsewhere: keep `frame[..clear]` in clear, then put `aead.header()` and the AES-GCM
    /// sealing of `frame[clear..]` under the AAD and nonce of `aead`. `head` is the frame's
    /// start, at least its first [`PLAN_HEAD`] bytes (or all of a shorter frame): a plan
    /// reads no more, so a large frame need not be copied to make one. `None` for an empty
    /// frame (no media: the browser sends some around silence), which goes as it is.
    pub fn seal_plan(
        &mut self,
        kind: MediaKind,
        key_frame: bool,
        len: usize,
        head: &[u8],
    ) -> Result<Option<FramePlan>, SframeError> {
        if len == 0 {
            return Ok(None);
        }
        // A frame no longer than its prefix goes all encrypted (see `open_plans`).
        let prefix_len = clear_prefix(kind, key_frame);
        let clear = if len > prefix_len { prefix_len } else { 0 };
        let prefix = head.get(..clear).ok_or(SframeError::MalformedHeader)?;
        let sender = match kind {
            MediaKind::Audio => &mut self.audio,
            MediaKind::Video => &mut self.video,
        };
        let aead = sender.plan(prefix)?;
        self.counts.sent += 1;
        Ok(Some(FramePlan { clear, aead }))
    }

    /// An encoded frame made ready to send: its clear prefix, then the SFrame of the rest
    /// (the prefix authenticated as metadata).
    pub fn protect(
        &mut self,
        kind: MediaKind,
        key_frame: bool,
        frame: &[u8],
    ) -> Result<Vec<u8>, SframeError> {
        let Some(plan) = self.seal_plan(kind, key_frame, frame.len(), frame)? else {
            return Ok(Vec::new());
        };
        let sender = match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        };
        let sealed = sender.keys().seal(&plan.aead, &frame[plan.clear..]);
        let mut out = Vec::with_capacity(plan.body_start() + sealed.len());
        out.extend_from_slice(&frame[..plan.clear]);
        out.extend_from_slice(plan.aead.header());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The ways a received non-empty frame of `len` bytes may open, to try in order with an
    /// AES-GCM run elsewhere (`frame[plan.body_start()..]` under `plan.aead`): one, or two
    /// for a frame short enough to have been sent without its clear prefix. `head` is the
    /// frame's start, at least its first [`PLAN_HEAD`] bytes (or all of a shorter frame).
    /// Refused (count it with [`FrameCrypter::refused`]) for a malformed header, a KID that
    /// is not the other end's for this kind, or a replay. Changes nothing:
    /// [`FrameCrypter::opened`] does.
    pub fn open_plans(
        &self,
        kind: MediaKind,
        key_frame: bool,
        len: usize,
        head: &[u8],
    ) -> Result<Vec<FramePlan>, SframeError> {
        if head.len() < len.min(PLAN_HEAD) {
            return Err(SframeError::MalformedHeader);
        }
        let head = &head[..head.len().min(len)];
        let prefix_len = clear_prefix(kind, key_frame);
        let plan = |clear: usize| {
            let (prefix, sealed) =
                head.split_at_checked(clear).ok_or(SframeError::MalformedHeader)?;
            let aead = self.receiver.plan(prefix, sealed)?;
            // Audio under the video key (or the other way round) is refused too.
            if aead.frame.kid != kid(self.other, kind) {
                return Err(SframeError::UnknownKey);
            }
            Ok(FramePlan { clear, aead })
        };
        let smallest_with_prefix = prefix_len + 1 + sframe::TAG_LEN + 1;
        if len < smallest_with_prefix {
            return plan(0).map(|p| vec![p]);
        }
        let with_prefix = plan(prefix_len);
        // A frame that was no longer than its prefix was sent without one: such frames are
        // short enough to be tried both ways.
        if len > prefix_len + sframe::MAX_HEADER_LEN + sframe::TAG_LEN {
            return with_prefix.map(|p| vec![p]);
        }
        match (with_prefix, plan(0)) {
            (Ok(a), Ok(b)) => Ok(vec![a, b]),
            (Ok(p), Err(_)) | (Err(_), Ok(p)) => Ok(vec![p]),
            (Err(e), Err(_)) => Err(e),
        }
    }

    /// Records that the frame of this header (`plan.aead.frame`) authenticated: refused (and
    /// counted) if a copy of it was opened meanwhile.
    pub fn opened(&mut self, frame: sframe::Header) -> Result<(), SframeError> {
        match self.receiver.accept(frame) {
            Ok(()) => {
                self.counts.opened += 1;
                Ok(())
            }
            Err(e) => {
                self.refused(e);
                Err(e)
            }
        }
    }

    /// Counts a received frame that was dropped, and why.
    pub fn refused(&mut self, e: SframeError) {
        match e {
            SframeError::Replayed => self.counts.replayed += 1,
            _ => self.counts.unauthentic += 1,
        }
    }

    /// The encoded frame inside a received one, or why it was dropped. A frame must carry
    /// the other end's KID for its kind.
    pub fn unprotect(
        &mut self,
        kind: MediaKind,
        key_frame: bool,
        frame: &[u8],
    ) -> Result<Vec<u8>, SframeError> {
        if frame.is_empty() {
            return Ok(Vec::new());
        }
        let plans = self
            .open_plans(kind, key_frame, frame.len(), frame)
            .inspect_err(|&e| self.refused(e))?;
        for plan in plans {
            let Some(keys) = self.receiver.keys(plan.aead.frame.kid) else { continue };
            let Ok(body) = keys.open(&plan.aead, &frame[plan.body_start()..]) else { continue };
            self.opened(plan.aead.frame)?;
            let mut out = Vec::with_capacity(plan.clear + body.len());
            out.extend_from_slice(&frame[..plan.clear]);
            out.extend_from_slice(&body);
            return Ok(out);
        }
        self.refused(SframeError::Unauthentic);
        Err(SframeError::Unauthentic)
    }

    /// What it did so far.
    pub fn counts(&self) -> FrameCounts {
        self.counts
    }
}

/// Why a call ended, for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// One side hung up.
    HungUp,
    /// The callee declined.
    Declined,
    /// The callee is in another call.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// The caller stopped calling before anyone answered.
    Cancelled,
    /// Another device of this account took the call.
    AnsweredElsewhere,
    /// Another device of this account declined it.
    DeclinedElsewhere,
    /// The connection's end-to-end check failed: the call was ended.
    SecurityFailure,
}

/// What the UI should show or do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallUpdate {
    /// An incoming call rings on this device.
    Ringing {
        /// The call.
        call_id: u64,
        /// Who calls.
        peer: AccountId,
        /// The caller's device.
        peer_device: DeviceId,
        /// A video call.
        video: bool,
        /// The caller's SDP offer.
        sdp: String,
        /// The caller's DTLS certificate fingerprint.
        fingerprint: [u8; 32],
        /// This device's master secret.
        secret: CallSecret,
    },
    /// This device's outgoing call was answered.
    Answered {
        /// The call.
        call_id: u64,
        /// The device that answered.
        device: DeviceId,
        /// Its SDP answer.
        sdp: String,
        /// Its DTLS certificate fingerprint.
        fingerprint: [u8; 32],
        /// The master secret the call runs under (that device's).
        secret: CallSecret,
        /// Whether the callee sends video.
        video: bool,
    },
    /// ICE candidates from the other end.
    Candidates {
        /// The call.
        call_id: u64,
        /// `RTCIceCandidateInit`s as JSON.
        candidates: Vec<String>,
        /// Their ICE generation.
        generation: u32,
    },
    /// The other end turned its microphone or camera off or on.
    Media {
        /// The call.
        call_id: u64,
        /// Its microphone is off.
        muted: bool,
        /// Its camera is off.
        camera_off: bool,
    },
    /// The other end renegotiates the connected call (an ICE restart).
    Renegotiate {
        /// The call.
        call_id: u64,
        /// Its new SDP.
        sdp: String,
        /// An offer (answer it with [`CallBook::renegotiate`]), else the answer to ours.
        offer: bool,
        /// The ICE generation it starts.
        generation: u32,
    },
    /// A call of this account on another device (calling, ringing there, or in progress).
    Elsewhere {
        /// The call.
        call_id: u64,
        /// Whom it is with.
        peer: AccountId,
        /// Whether it is connected there.
        connected: bool,
    },
    /// The call ended (or stopped ringing).
    Ended {
        /// The call.
        call_id: u64,
        /// Whom it was with.
        peer: AccountId,
        /// Why.
        reason: EndReason,
    },
}

/// A call message to send to `peer` (every device of it, and this account's other devices
/// get `own`).
#[derive(Clone, Debug, PartialEq)]
pub struct CallSend {
    /// The other party.
    pub peer: AccountId,
    /// For the peer's devices.
    pub message: CallMessage,
    /// For this account's other devices.
    pub own: CallMessage,
}

/// A call's line in the conversation with `peer`, to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// The line's id: the caller's account and device and the offer's timestamp, the same on
    /// every device of both people.
    pub id: MessageId,
    /// The other party.
    pub peer: AccountId,
    /// Whether this account placed the call.
    pub outgoing: bool,
    /// How it went.
    pub outcome: CallOutcome,
    /// A video call.
    pub video: bool,
    /// Seconds connected.
    pub seconds: u32,
}

/// What a step of the call book produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    /// For the UI.
    pub updates: Vec<CallUpdate>,
    /// To send.
    pub sends: Vec<CallSend>,
    /// Lines to store.
    pub records: Vec<CallRecord>,
}

/// Why a local call action was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No such call (it ended, or never rang here).
    #[error("that call is over")]
    NoSuchCall,
    /// This device is already in a call.
    #[error("you are already in a call")]
    Busy,
    /// The step does not fit the call's state (answering a call that is not ringing here).
    #[error("that call is not ringing on this device")]
    WrongState,
    /// SDP or candidates too large, or an SDP without a SHA-256 fingerprint.
    #[error("{0}")]
    Invalid(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// This device calls and waits for an answer.
    Calling,
    /// It rings on this device.
    Ringing,
    /// This device is in the call (connected or connecting).
    Active,
    /// Another device of this account calls, rings or is in the call.
    Elsewhere,
}

#[derive(Debug)]
struct Call {
    peer: AccountId,
    /// The caller's device.
    caller_device: DeviceId,
    outgoing: bool,
    video: bool,
    state: State,
    /// The offer's timestamp (the caller's clock): names the call's line.
    placed: u64,
    /// When this device learned of the call (its clock): for the ringing timeout.
    seen: Timestamp,
    /// When it was answered (this device's clock), if it was.
    answered_at: Option<Timestamp>,
    /// The device at the other end, once one answered.
    remote_device: Option<DeviceId>,
    /// The caller's seed (outgoing calls on this device).
    seed: Option<CallSecret>,
    /// An answer on another device of the callee's account was seen.
    answered_elsewhere: bool,
}

/// Every call this device takes part in or hears of.
#[derive(Debug)]
pub struct CallBook {
    me: AccountId,
    my_device: DeviceId,
    calls: BTreeMap<u64, Call>,
    /// The ids of the calls that ended last, so a redelivered offer does not ring again.
    ended: std::collections::VecDeque<u64>,
}

fn message(call_id: u64, kind: call_message::Kind) -> CallMessage {
    CallMessage { call_id, peer: Vec::new(), kind: Some(kind) }
}

fn hangup(call_id: u64, reason: HangupReason, device: u32) -> CallMessage {
    message(call_id, call_message::Kind::Hangup(CallHangup { reason: reason as i32, device }))
}

impl CallBook {
    /// The call book of device `my_device` of account `me`.
    pub fn new(me: AccountId, my_device: DeviceId) -> Self {
        Self { me, my_device, calls: BTreeMap::new(), ended: std::collections::VecDeque::new() }
    }

    /// Whether this device is in a call, calling, or ringing.
    pub fn busy(&self) -> bool {
        self.calls.values().any(|c| matches!(c.state, State::Calling | State::Active))
    }

    /// The call this device takes part in (calling or in it), if any.
    pub fn current(&self) -> Option<u64> {
        self.calls
            .iter()
            .find(|(_, c)| matches!(c.state, State::Calling | State::Active))
            .map(|(id, _)| *id)
    }

    fn send(&self, peer: AccountId, message: CallMessage) -> CallSend {
        let mut own = message.clone();
        own.peer = peer.0.to_vec();
        if let Some(call_message::Kind::Answer(a)) = &mut own.kind {
            a.sdp.clear();
        }
        CallSend { peer, message, own }
    }

    /// Keeps `call`; when the book is full the oldest call heard of elsewhere goes, and if
    /// every call rings here or is this device's, the new one is refused (a flood of offers
    /// cannot grow the book).
    fn remember(&mut self, call_id: u64, call: Call) -> bool {
        if self.calls.len() >= MAX_CALLS {
            let oldest = self
                .calls
                .iter()
                .filter(|(_, c)| c.state == State::Elsewhere)
                .min_by_key(|(_, c)| c.seen)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => {
                    self.calls.remove(&id);
                }
                None => return false,
            }
        }
        self.calls.insert(call_id, call);
        true
    }

    /// Starts an outgoing call to `peer`: its id and the offer to send with
    /// [`crate::client::Client::place_call`] (which gives each callee device its own
    /// secret from `seed`). `sdp` is this device's offer.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        peer: AccountId,
        call_id: u64,
        seed: CallSecret,
        sdp: &str,
        video: bool,
        placed: u64,
        now: Timestamp,
    ) -> Result<CallOffer, CallError> {
        if self.busy() {
            return Err(CallError::Busy);
        }
        if peer == self.me {
            return Err(CallError::Invalid("you cannot call your own account"));
        }
        let fingerprint = checked_sdp(sdp)?;
        if self.calls.contains_key(&call_id) {
            return Err(CallError::Invalid("that call id is taken"));
        }
        let kept = self.remember(
            call_id,
            Call {
                peer,
                caller_device: self.my_device,
                outgoing: true,
                video,
                state: State::Calling,
                placed,
                seen: now,
                answered_at: None,
                remote_device: None,
                seed: Some(seed),
                answered_elsewhere: false,
            },
        );
        if !kept {
            return Err(CallError::Invalid("too many calls are ringing"));
        }
        Ok(CallOffer {
            sdp: sdp.to_owned(),
            fingerprint: fingerprint.to_vec(),
            video,
            secret: Vec::new(),
            timestamp: placed,
        })
    }

    /// The outgoing call could not be offered (no device reached): it is forgotten.
    pub fn abandon(&mut self, call_id: u64) {
        self.calls.remove(&call_id);
    }

    /// Answers the call ringing here with this device's SDP answer.
    pub fn answer(
        &mut self,
        call_id: u64,
        sdp: &str,
        video: bool,
        now: Timestamp,
    ) -> Result<Effects, CallError> {
        let fingerprint = checked_sdp(sdp)?;
        if self.busy() {
            return Err(CallError::Busy);
        }
        let call = self.calls.get_mut(&call_id).ok_or(CallError::NoSuchCall)?;
        if call.state != State::Ringing {
            return Err(CallError::WrongState);
        }
        call.state = State::Active;
        call.answered_at = Some(now);
        call.remote_device = Some(call.caller_device);
        let answer = CallAnswer {
            sdp: sdp.to_owned(),
            fingerprint: fingerprint.to_vec(),
            caller_device: call.caller_device.get(),
            video,
        };
        let peer = call.peer;
        let send = self.send(peer, message(call_id, call_message::Kind::Answer(answer)));
        Ok(Effects { sends: vec![send], ..Effects::default() })
    }

    /// Declines the call ringing here: it stops ringing on every device.
    pub fn decline(&mut self, call_id: u64) -> Result<Effects, CallError> {
        let call = self.calls.get(&call_id).ok_or(CallError::NoSuchCall)?;
        if call.state != State::Ringing {
            return Err(CallError::WrongState);
        }
        let device = self.my_device.get();
        let send = self.send(call.peer, hangup(call_id, HangupReason::Declined, device));
        let mut effects = Effects { sends: vec![send], ..Effects::default() };
        self.end(call_id, EndReason::Declined, CallOutcome::Declined, None, &mut effects);
        Ok(effects)
    }

    /// Hangs up this device's call (or stops calling).
    pub fn hang_up(&mut self, call_id: u64, now: Timestamp) -> Result<Effects, CallError> {
        self.hang_up_with(call_id, HangupReason::Normal, now)
    }

    /// Ends this device's call because its connection failed the end-to-end check (the
    /// remote DTLS certificate is not the one the encrypted offer or answer named).
    pub fn security_failure(&mut self, call_id: u64, now: Timestamp) -> Result<Effects, CallError> {
        self.hang_up_with(call_id, HangupReason::SecurityFailure, now)
    }

    fn hang_up_with(
        &mut self,
        call_id: u64,
        reason: HangupReason,
        now: Timestamp,
    ) -> Result<Effects, CallError> {
        let call = self.calls.get(&call_id).ok_or(CallError::NoSuchCall)?;
        if !matches!(call.state, State::Calling | State::Active) {
            return Err(CallError::WrongState);
        }
        let (end, outcome) = match (reason, call.answered_at) {
            (HangupReason::SecurityFailure, _) => {
                (EndReason::SecurityFailure, CallOutcome::SecurityFailure)
            }
            (_, Some(_)) => (EndReason::HungUp, CallOutcome::Completed),
            (_, None) => (EndReason::Cancelled, CallOutcome::Missed),
        };
        let device = self.my_device.get();
        let send = self.send(call.peer, hangup(call_id, reason, device));
        let mut effects = Effects { sends: vec![send], ..Effects::default() };
        self.end(call_id, end, outcome, Some(now), &mut effects);
        Ok(effects)
    }

    /// ICE candidates this device gathered for its call.
    pub fn candidates(
        &self,
        call_id: u64,
        candidates: Vec<String>,
        generation: u32,
    ) -> Result<Effects, CallError> {
        let call = self.calls.get(&call_id).ok_or(CallError::NoSuchCall)?;
        if !matches!(call.state, State::Calling | State::Active) {
            return Err(CallError::WrongState);
        }
        if candidates.len() > MAX_CANDIDATES
            || candidates.iter().any(|c| c.len() > MAX_CANDIDATE_LEN)
        {
            return Err(CallError::Invalid("too many or too long ICE candidates"));
        }
        // Before an answer the caller's candidates go to every callee device (0: any).
        let to_device = call.remote_device.map_or(0, DeviceId::get);
        let ice = CallIce { to_device, candidates, generation };
        let send = self.send(call.peer, message(call_id, call_message::Kind::Ice(ice)));
        Ok(Effects { sends: vec![send], ..Effects::default() })
    }

    /// The device at the other end of this device's connected call.
    fn connected(&self, call_id: u64) -> Result<(AccountId, u32), CallError> {
        let call = self.calls.get(&call_id).ok_or(CallError::NoSuchCall)?;
        match (call.state, call.remote_device) {
            (State::Active, Some(d)) => Ok((call.peer, d.get())),
            _ => Err(CallError::WrongState),
        }
    }

    /// This device's microphone or camera was turned off or on: the other end's screen says so.
    pub fn media(&self, call_id: u64, muted: bool, camera_off: bool) -> Result<Effects, CallError> {
        let (peer, to_device) = self.connected(call_id)?;
        let media = CallMedia { to_device, muted, camera_off };
        let send = self.send(peer, message(call_id, call_message::Kind::Media(media)));
        Ok(Effects { sends: vec![send], ..Effects::default() })
    }

    /// A new offer (from the caller's device: an ICE restart) or the answer to one, for the
    /// connected call. Only the caller's device offers, so both ends never offer at once.
    pub fn renegotiate(
        &self,
        call_id: u64,
        sdp: String,
        offer: bool,
        generation: u32,
    ) -> Result<Effects, CallError> {
        let (peer, to_device) = self.connected(call_id)?;
        let outgoing = self.calls.get(&call_id).is_some_and(|c| c.outgoing);
        if offer != outgoing {
            return Err(CallError::WrongState);
        }
        if sdp.len() > MAX_SDP_LEN {
            return Err(CallError::Invalid("the call's description is too large"));
        }
        let r = CallRenegotiate { to_device, sdp, offer, generation };
        let send = self.send(peer, message(call_id, call_message::Kind::Renegotiate(r)));
        Ok(Effects { sends: vec![send], ..Effects::default() })
    }

    /// Time passed: calls that rang too long end as missed (and the caller tells the callee).
    pub fn tick(&mut self, now: Timestamp) -> Effects {
        let mut effects = Effects::default();
        let due: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                c.answered_at.is_none()
                    && !c.answered_elsewhere
                    && now.saturating_duration_since(c.seen) >= RING_TIMEOUT
            })
            .map(|(id, _)| *id)
            .collect();
        for call_id in due {
            let Some(call) = self.calls.get(&call_id) else { continue };
            if call.state == State::Calling {
                let device = self.my_device.get();
                effects
                    .sends
                    .push(self.send(call.peer, hangup(call_id, HangupReason::Timeout, device)));
            }
            self.end(call_id, EndReason::NoAnswer, CallOutcome::Missed, None, &mut effects);
        }
        effects
    }

    /// When the next ringing call times out, for a timer.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.calls
            .values()
            .filter(|c| c.answered_at.is_none() && !c.answered_elsewhere)
            .map(|c| c.seen.saturating_add(RING_TIMEOUT))
            .min()
    }

    /// A call message from device `device` of `sender` (already decrypted and verified:
    /// `sender` is a contact, or this account for copies from its own devices). `now` is
    /// this device's relay-corrected clock.
    pub fn receive(
        &mut self,
        sender: AccountId,
        device: DeviceId,
        message: &CallMessage,
        now: Timestamp,
    ) -> Effects {
        let mut effects = Effects::default();
        let own = sender == self.me;
        let peer = if own {
            match AccountId::from_bytes(&message.peer) {
                Ok(p) if p != self.me => p,
                _ => return effects,
            }
        } else {
            sender
        };
        let call_id = message.call_id;
        let Some(kind) = &message.kind else { return effects };
        match kind {
            call_message::Kind::Offer(offer) => {
                self.on_offer(call_id, peer, device, own, offer, now, &mut effects);
            }
            call_message::Kind::Answer(answer) => {
                self.on_answer(call_id, peer, device, own, answer, now, &mut effects);
            }
            call_message::Kind::Ice(ice) => {
                let Some(call) = self.calls.get(&call_id) else { return effects };
                let from_the_other_end = !own
                    && call.peer == sender
                    && matches!(call.state, State::Calling | State::Active)
                    && call.remote_device.is_none_or(|d| d == device)
                    && (ice.to_device == 0 || ice.to_device == self.my_device.get());
                let sane = ice.candidates.len() <= MAX_CANDIDATES
                    && ice.candidates.iter().all(|c| c.len() <= MAX_CANDIDATE_LEN);
                // Before the answer, only the caller's candidates reach a ringing device
                // (they wait in the UI until it answers).
                let ringing_from_caller =
                    !own && call.state == State::Ringing && call.caller_device == device;
                if sane && (from_the_other_end || ringing_from_caller) {
                    effects.updates.push(CallUpdate::Candidates {
                        call_id,
                        candidates: ice.candidates.clone(),
                        generation: ice.generation,
                    });
                }
            }
            call_message::Kind::Hangup(h) => {
                self.on_hangup(call_id, sender, device, own, h, now, &mut effects);
            }
            call_message::Kind::Media(m) => {
                if !own && self.is_other_end(call_id, sender, device, m.to_device) {
                    effects.updates.push(CallUpdate::Media {
                        call_id,
                        muted: m.muted,
                        camera_off: m.camera_off,
                    });
                }
            }
            call_message::Kind::Renegotiate(r) => {
                // The caller's device offers, the callee's answers; never the other way.
                let outgoing = self.calls.get(&call_id).is_some_and(|c| c.outgoing);
                if !own
                    && self.is_other_end(call_id, sender, device, r.to_device)
                    && r.offer != outgoing
                    && r.sdp.len() <= MAX_SDP_LEN
                {
                    effects.updates.push(CallUpdate::Renegotiate {
                        call_id,
                        sdp: r.sdp.clone(),
                        offer: r.offer,
                        generation: r.generation,
                    });
                }
            }
        }
        effects
    }

    /// Whether a message from device `device` of `sender`, for device `to_device`, comes from
    /// the other end of this device's connected call `call_id`.
    fn is_other_end(
        &self,
        call_id: u64,
        sender: AccountId,
        device: DeviceId,
        to_device: u32,
    ) -> bool {
        self.calls.get(&call_id).is_some_and(|c| {
            c.state == State::Active
                && c.peer == sender
                && c.remote_device == Some(device)
                && to_device == self.my_device.get()
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn on_offer(
        &mut self,
        call_id: u64,
        peer: AccountId,
        device: DeviceId,
        own: bool,
        offer: &CallOffer,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        if self.calls.contains_key(&call_id) || self.ended.contains(&call_id) {
            return;
        }
        let call = Call {
            peer,
            caller_device: device,
            outgoing: own,
            video: offer.video,
            state: State::Elsewhere,
            placed: offer.timestamp,
            seen: now,
            answered_at: None,
            remote_device: None,
            seed: None,
            answered_elsewhere: false,
        };
        let age = Duration::from_millis(now.as_millis().saturating_sub(offer.timestamp));
        let stale = age >= RING_TIMEOUT;
        if own {
            // Another device of this account calls.
            if !self.remember(call_id, call) {
                return;
            }
            if stale {
                self.end(call_id, EndReason::NoAnswer, CallOutcome::Missed, None, effects);
            } else {
                effects.updates.push(CallUpdate::Elsewhere { call_id, peer, connected: false });
            }
            return;
        }
        let secret = <[u8; 32]>::try_from(offer.secret.as_slice()).ok();
        let fingerprint = <[u8; 32]>::try_from(offer.fingerprint.as_slice()).ok();
        let (Some(secret), Some(fingerprint)) = (secret, fingerprint) else { return };
        if offer.sdp.len() > MAX_SDP_LEN {
            return;
        }
        if !self.remember(call_id, Call { state: State::Ringing, ..call }) {
            return;
        }
        if stale {
            self.end(call_id, EndReason::NoAnswer, CallOutcome::Missed, None, effects);
        } else if self.busy() {
            let send = self.send(peer, hangup(call_id, HangupReason::Busy, self.my_device.get()));
            effects.sends.push(send);
            // Busy here: a missed call for the person, without ringing.
            self.end(call_id, EndReason::Busy, CallOutcome::Missed, None, effects);
        } else {
            effects.updates.push(CallUpdate::Ringing {
                call_id,
                peer,
                peer_device: device,
                video: offer.video,
                sdp: offer.sdp.clone(),
                fingerprint,
                secret: CallSecret(secret),
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_answer(
        &mut self,
        call_id: u64,
        peer: AccountId,
        device: DeviceId,
        own: bool,
        answer: &CallAnswer,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let my_device = self.my_device;
        let Some(call) = self.calls.get_mut(&call_id) else { return };
        if call.peer != peer {
            return;
        }
        if own {
            // Another device of this account answered.
            if call.state == State::Ringing {
                call.state = State::Elsewhere;
                call.answered_elsewhere = true;
                effects.updates.push(CallUpdate::Ended {
                    call_id,
                    peer,
                    reason: EndReason::AnsweredElsewhere,
                });
            } else if call.state == State::Elsewhere {
                call.answered_elsewhere = true;
                effects.updates.push(CallUpdate::Elsewhere { call_id, peer, connected: true });
            }
            return;
        }
        // The callee answered: the call's caller device takes the first answer.
        match call.state {
            State::Calling if answer.caller_device == my_device.get() => {
                let fingerprint = <[u8; 32]>::try_from(answer.fingerprint.as_slice()).ok();
                let (Some(fingerprint), Some(seed)) = (fingerprint, call.seed.as_ref()) else {
                    return;
                };
                if answer.sdp.len() > MAX_SDP_LEN {
                    return;
                }
                let secret = device_secret(seed, device);
                call.state = State::Active;
                call.answered_at = Some(now);
                call.remote_device = Some(device);
                effects.updates.push(CallUpdate::Answered {
                    call_id,
                    device,
                    sdp: answer.sdp.clone(),
                    fingerprint,
                    secret,
                    video: answer.video,
                });
            }
            State::Active if call.outgoing && call.remote_device != Some(device) => {
                // A second device of the callee answered too late.
                let winner = call.remote_device.map_or(0, DeviceId::get);
                let peer = call.peer;
                effects.sends.push(
                    self.send(peer, hangup(call_id, HangupReason::AnsweredElsewhere, winner)),
                );
            }
            State::Elsewhere => {
                call.answered_elsewhere = true;
                effects.updates.push(CallUpdate::Elsewhere { call_id, peer, connected: true });
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_hangup(
        &mut self,
        call_id: u64,
        sender: AccountId,
        device: DeviceId,
        own: bool,
        h: &CallHangup,
        now: Timestamp,
        effects: &mut Effects,
    ) {
        let my_device = self.my_device.get();
        let Some(call) = self.calls.get(&call_id) else { return };
        let peer = call.peer;
        if !own && sender != peer {
            return;
        }
        let reason = HangupReason::try_from(h.reason).unwrap_or(HangupReason::Normal);
        match call.state {
            State::Calling => {
                if own {
                    return;
                }
                let (end, outcome) = match reason {
                    HangupReason::Declined => (EndReason::Declined, CallOutcome::Declined),
                    HangupReason::Busy => (EndReason::Busy, CallOutcome::Busy),
                    _ => (EndReason::HungUp, CallOutcome::Missed),
                };
                // Every other callee device stops ringing.
                let tell = match reason {
                    HangupReason::Declined => Some(HangupReason::DeclinedElsewhere),
                    HangupReason::Busy => Some(HangupReason::Busy),
                    _ => None,
                };
                if let Some(tell) = tell {
                    effects.sends.push(self.send(peer, hangup(call_id, tell, device.get())));
                }
                self.end(call_id, end, outcome, Some(now), effects);
            }
            State::Active => {
                // Only the device at the other end hangs up an active call.
                if own || call.remote_device.is_some_and(|d| d != device) {
                    return;
                }
                let (end, outcome) = match reason {
                    // The caller took another device's answer: this one lost the race.
                    HangupReason::AnsweredElsewhere if h.device == my_device => return,
                    HangupReason::AnsweredElsewhere => {
                        (EndReason::AnsweredElsewhere, CallOutcome::AnsweredElsewhere)
                    }
                    HangupReason::SecurityFailure => {
                        (EndReason::SecurityFailure, CallOutcome::SecurityFailure)
                    }
                    _ => (EndReason::HungUp, CallOutcome::Completed),
                };
                self.end(call_id, end, outcome, Some(now), effects);
            }
            State::Ringing => {
                let (end, outcome) = match reason {
                    HangupReason::AnsweredElsewhere if !own && h.device != my_device => {
                        (EndReason::AnsweredElsewhere, CallOutcome::AnsweredElsewhere)
                    }
                    HangupReason::AnsweredElsewhere => return,
                    HangupReason::Declined | HangupReason::DeclinedElsewhere => {
                        (EndReason::DeclinedElsewhere, CallOutcome::Declined)
                    }
                    HangupReason::Timeout => (EndReason::NoAnswer, CallOutcome::Missed),
                    HangupReason::Busy => (EndReason::Busy, CallOutcome::Missed),
                    _ if own => return,
                    _ => (EndReason::Cancelled, CallOutcome::Missed),
                };
                self.end(call_id, end, outcome, Some(now), effects);
            }
            State::Elsewhere => {
                let outcome = match reason {
                    _ if call.answered_elsewhere && call.outgoing => CallOutcome::Completed,
                    _ if call.answered_elsewhere => CallOutcome::AnsweredElsewhere,
                    HangupReason::Declined | HangupReason::DeclinedElsewhere => {
                        CallOutcome::Declined
                    }
                    HangupReason::Busy => CallOutcome::Busy,
                    _ => CallOutcome::Missed,
                };
                self.end(call_id, EndReason::HungUp, outcome, None, effects);
            }
        }
    }

    /// Forgets the call, telling the UI and recording its line.
    fn end(
        &mut self,
        call_id: u64,
        reason: EndReason,
        outcome: CallOutcome,
        now: Option<Timestamp>,
        effects: &mut Effects,
    ) {
        let Some(call) = self.calls.remove(&call_id) else { return };
        if self.ended.len() >= MAX_ENDED {
            self.ended.pop_front();
        }
        self.ended.push_back(call_id);
        let seconds = match (call.answered_at, now) {
            (Some(a), Some(n)) => {
                u32::try_from(n.saturating_duration_since(a).as_secs()).unwrap_or(u32::MAX)
            }
            _ => 0,
        };
        effects.updates.push(CallUpdate::Ended { call_id, peer: call.peer, reason });
        let caller = if call.outgoing { self.me } else { call.peer };
        effects.records.push(CallRecord {
            id: MessageId { sender: caller, device: call.caller_device, timestamp: call.placed },
            peer: call.peer,
            outgoing: call.outgoing,
            outcome,
            video: call.video,
            seconds,
        });
    }
}

/// The fingerprint of an SDP this device made, checked for size.
fn checked_sdp(sdp: &str) -> Result<[u8; 32], CallError> {
    if sdp.len() > MAX_SDP_LEN {
        return Err(CallError::Invalid("the call description is too long"));
    }
    sdp_fingerprint(sdp).ok_or(CallError::Invalid("the call description has no DTLS fingerprint"))
}

#[cfg(test)]
mod tests;

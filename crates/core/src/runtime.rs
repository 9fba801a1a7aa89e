//! The device driver's policy, without IO: what a device does with each push from the relay
//! and when it tries again. The browser and the native client are thin loops around it (they
//! own the socket, the timers and the UI); neither decides what to acknowledge.
//!
//! Acknowledgement follows one rule: a push is acknowledged only after what it carried is
//! stored ([`PushOutcome::Stored`] names the id to acknowledge). A push that could not be
//! stored for a reason that passes (the relay busy or unreachable, a key change the person
//! has not accepted yet) is kept and offered again after [`RetryPolicy::next_delay`]; one
//! that can never be read is left unacknowledged for the relay's expiry, and said.

use std::time::Duration;

use rand_core::CryptoRng;

use crate::client::{Client, ClientError, Event, PublishReport, call};
use crate::link::{LinkError, LinkRequest, MatchCode, VerifiedLink};
use crate::store::ClientStore;
use crate::transport::RelayTransport;
use crate::wire::relay::{OpenProvisioning, Push, push, request, response};
use tandem_signal::IdentityKey;
use tandem_signal::Timestamp;

/// What handling one push came to, for the driver to act on.
#[derive(Debug)]
pub enum PushOutcome {
    /// Stored: acknowledge push `ack` now, and show `events`. `expired` counts the messages
    /// the relay let expire before this device came (their gaps are among `events`).
    Stored {
        /// The push id to acknowledge.
        ack: u64,
        /// What changed.
        events: Vec<Event>,
        /// Messages that expired undelivered (an `Expired` push), 0 otherwise.
        expired: usize,
        /// Receiving produced call messages (a busy reply, a hangup to a late answer): send
        /// them now with [`Client::flush_calls`], after the acknowledgement (a call step
        /// that waits is stale).
        calls_waiting: bool,
    },
    /// Not stored for now: keep the push and offer it again after the retry delay.
    /// `held` when it waits for the person to accept a contact's new key (offer it again
    /// at once when they do).
    Retry {
        /// A key change waits for the person.
        held: bool,
    },
    /// It cannot be read: left unacknowledged (the relay expires it), and said.
    Failed(ClientError),
    /// The relay says this device was removed; `proven` when the account key signed the
    /// removal (then the device's data may go), else the keys stay until the person decides.
    Removed {
        /// The account key signed the removal.
        proven: bool,
    },
    /// The account's devices changed; the upkeep ran (on the primary it signs a new list
    /// from its own record; `report` says what it refused to list).
    DevicesChanged {
        /// The list the primary published, if it published one.
        report: Option<PublishReport>,
        /// The upkeep failed (it runs again at the next connection and on a timer).
        error: Option<ClientError>,
    },
    /// The relay delivered everything it held for this device.
    Drained,
    /// Nothing to do.
    Ignored,
}

/// What logging in on a new socket came to, for the driver to act on.
#[derive(Debug)]
pub enum LoggedIn {
    /// The socket is this device's: flush the outbox, do the upkeep.
    Ready,
    /// The relay says this device was removed; `proven` when the account key signed it
    /// (only then does a companion delete its data).
    Removed {
        /// Whether the removal came with the account's signature.
        proven: bool,
    },
    /// A passing failure (the socket closed, a stale challenge, a busy relay): log in on the
    /// next socket.
    NextSocket(ClientError),
    /// Anything else: say it.
    Failed(ClientError),
}

/// Logs in on a new socket: takes the relay's clock offset (`clock_offset_ms`, measured by
/// the driver's transport), proves the device, and says what follows.
pub async fn log_in<S: ClientStore, T: RelayTransport + ?Sized>(
    client: &Client<S>,
    transport: &T,
    clock_offset_ms: i64,
    rng: &mut impl CryptoRng,
) -> LoggedIn {
    client.set_clock_offset(clock_offset_ms).await;
    match client.authenticate(transport, rng).await {
        Ok(()) => LoggedIn::Ready,
        Err(ClientError::Removed { proven }) => LoggedIn::Removed { proven },
        Err(e) if e.is_transient() => LoggedIn::NextSocket(e),
        Err(e) => LoggedIn::Failed(e),
    }
}

/// Handles one push: stores what it carries (or keeps it for later) and says what the
/// driver must do. Never acknowledges by itself.
pub async fn handle_push<S: ClientStore, T: RelayTransport + ?Sized>(
    client: &Client<S>,
    transport: &T,
    push: &Push,
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> PushOutcome {
    match &push.body {
        Some(push::Body::Envelope(envelope)) => {
            match client.receive(transport, envelope, now, rng).await {
                Ok(events) => PushOutcome::Stored {
                    ack: envelope.id,
                    events,
                    expired: 0,
                    calls_waiting: client.calls_waiting().await,
                },
                Err(e) => keep_or_fail(e),
            }
        }
        Some(push::Body::Expired(x)) => match client.record_expired(&x.entries, now).await {
            // The gaps are recorded before the relay may forget them.
            Ok(events) => PushOutcome::Stored {
                ack: push.id,
                events,
                expired: x.entries.len(),
                calls_waiting: false,
            },
            Err(e) => keep_or_fail(e),
        },
        Some(push::Body::DeviceRemoved(r)) => {
            PushOutcome::Removed { proven: client.removal_proven(&r.signed_device_list).await }
        }
        Some(push::Body::DeviceLinked(_) | push::Body::DeviceUnlinked(_)) => {
            match client.maintain(transport, now, rng).await {
                Ok(report) => PushOutcome::DevicesChanged { report, error: None },
                Err(e) => PushOutcome::DevicesChanged { report: None, error: Some(e) },
            }
        }
        Some(push::Body::QueueDrained(_)) => PushOutcome::Drained,
        Some(push::Body::Welcome(_) | push::Body::Provisioning(_)) | None => PushOutcome::Ignored,
    }
}

fn keep_or_fail(e: ClientError) -> PushOutcome {
    match e {
        e if e.is_transient() => PushOutcome::Retry { held: false },
        ClientError::AccountKeyChanged(_) => PushOutcome::Retry { held: true },
        e => PushOutcome::Failed(e),
    }
}

/// When to offer kept pushes again: 1 s after the first failure, doubling to 30 s while
/// the relay stays busy, back to 1 s after a success. Returns delays; the driver sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    next: Duration,
}

impl RetryPolicy {
    /// The first delay.
    pub const FIRST: Duration = Duration::from_secs(1);
    /// The longest delay.
    pub const MAX: Duration = Duration::from_secs(30);

    /// A policy that has seen no failure.
    pub const fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The delay before the next attempt after a failure (each failure doubles the next).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        d
    }

    /// A push was stored: the next failure starts again from [`Self::FIRST`].
    pub fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

/// Pushes kept for another try (see [`PushOutcome::Retry`]), with the delay before it. At
/// most [`KeptPushes::MAX`]: past that the oldest are let go, which loses nothing, because
/// a kept push is not acknowledged and the relay sends it again on the next connection.
#[derive(Debug, Default)]
pub struct KeptPushes {
    kept: std::collections::VecDeque<Push>,
    policy: RetryPolicy,
    scheduled: bool,
}

impl KeptPushes {
    /// Most pushes kept.
    pub const MAX: usize = 256;

    /// Nothing kept.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `push`. Returns the delay after which the driver hands the kept pushes back
    /// ([`due`](Self::due)), when no try is scheduled yet, and the push let go to stay
    /// within [`MAX`](Self::MAX), if any.
    pub fn keep(&mut self, push: Push) -> (Option<Duration>, Option<Push>) {
        self.kept.push_back(push);
        let dropped = if self.kept.len() > Self::MAX { self.kept.pop_front() } else { None };
        let delay = (!self.scheduled).then(|| {
            self.scheduled = true;
            self.policy.next_delay()
        });
        (delay, dropped)
    }

    /// The scheduled try is due: every kept push, oldest first.
    pub fn due(&mut self) -> Vec<Push> {
        self.scheduled = false;
        self.kept.drain(..).collect()
    }

    /// Try again at once (the person accepted a held key): every kept push, and the delays
    /// start over.
    pub fn now(&mut self) -> Vec<Push> {
        self.policy = RetryPolicy::new();
        self.due()
    }

    /// A push was stored: the next failure waits the first delay again.
    pub fn stored(&mut self) {
        self.policy.succeeded();
    }

    /// Forget everything (the device is going away).
    pub fn clear(&mut self) {
        self.kept.clear();
        self.scheduled = false;
    }

    /// How many are kept.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// When a driver flushes the outbox again by itself: after a send met a passing failure
/// (the relay busy or unreachable), [`RetryPolicy`]'s delay; never for a send held for the
/// person (a changed key) or refused for good, which wait for the person or are settled.
#[derive(Debug, Default)]
pub struct SendRetry {
    policy: RetryPolicy,
    scheduled: bool,
}

impl SendRetry {
    /// No failure yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// After a flush that gave `results`: the delay before the next flush, if one is owed
    /// and none is scheduled yet (one try at a time; [`due`](Self::due) when it fires).
    pub fn after_flush<T>(
        &mut self,
        results: &[(crate::records::MessageId, Result<T, ClientError>)],
    ) -> Option<Duration> {
        if results.iter().any(|(_, r)| r.as_ref().is_err_and(ClientError::is_transient)) {
            return self.schedule();
        }
        if results.iter().any(|(_, r)| r.is_ok()) {
            self.policy.succeeded();
        }
        None
    }

    /// The flush itself failed (the outbox could not be read, or the socket is down): the
    /// delay before trying again, when the failure passes and no try is scheduled.
    pub fn after_error(&mut self, error: &ClientError) -> Option<Duration> {
        if error.is_transient() { self.schedule() } else { None }
    }

    /// The scheduled try fired: the driver flushes now.
    pub fn due(&mut self) {
        self.scheduled = false;
    }

    fn schedule(&mut self) -> Option<Duration> {
        (!self.scheduled).then(|| {
            self.scheduled = true;
            self.policy.next_delay()
        })
    }
}

/// Requests waiting for their responses: the id each goes out with, and who waits for it.
/// Both drivers match responses (and fail what a closed socket leaves) through this.
#[derive(Debug)]
pub struct Requests<W> {
    next: u64,
    waiting: std::collections::HashMap<u64, W>,
}

impl<W> Requests<W> {
    /// No request waiting; ids start at 1.
    pub fn new() -> Self {
        Self { next: 1, waiting: std::collections::HashMap::new() }
    }

    /// Registers `waiter` and returns the id its request goes out with (never 0).
    pub fn start(&mut self, waiter: W) -> u64 {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.waiting.insert(id, waiter);
        id
    }

    /// The waiter for request `id` (its response came, or it was given up), if still waiting.
    pub fn take(&mut self, id: u64) -> Option<W> {
        self.waiting.remove(&id)
    }

    /// Every waiter (the connection closed under them).
    pub fn drain(&mut self) -> Vec<W> {
        self.waiting.drain().map(|(_, w)| w).collect()
    }

    /// How many wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

impl<W> Default for Requests<W> {
    fn default() -> Self {
        Self::new()
    }
}

/// How long a companion's first link code is shown before a new one replaces it.
pub const FIRST_CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How long each later code is shown.
pub const CODE_LIFETIME: Duration = Duration::from_secs(20);
/// How long a companion offers codes before it stops and asks the person.
pub const LINK_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A companion's link code, waiting at its provisioning address on the relay.
#[derive(Debug)]
pub struct OfferedLink {
    /// The request (its code is shown; it opens the link message that arrives).
    pub request: LinkRequest,
    /// When the code expires and a new one should replace it.
    pub rotates_at: Timestamp,
}

/// The companion's first linking step: a provisioning address from the relay and a link
/// code for it, valid for `lifetime` ([`FIRST_CODE_LIFETIME`] for the first code of an
/// attempt, [`CODE_LIFETIME`] after). The code names `identity` (the device's new identity
/// key) and `name` (what the primary will list it as).
pub async fn offer_link<T: RelayTransport + ?Sized>(
    transport: &T,
    identity: IdentityKey,
    name: &str,
    lifetime: Duration,
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> Result<OfferedLink, ClientError> {
    let body = request::Body::OpenProvisioning(OpenProvisioning {});
    let Some(response::Body::ProvisioningAddress(a)) = call(transport, body).await? else {
        return Err(ClientError::UnexpectedResponse("provisioning address"));
    };
    let address = <[u8; 16]>::try_from(a.address.as_slice())
        .map_err(|_| ClientError::UnexpectedResponse("provisioning address"))?;
    // By this device's clock: the relay keeps the address longer than any code lifetime, and
    // its expiry is by its own clock, which may be off.
    let rotates_at = now.saturating_add(lifetime);
    let request = LinkRequest::new(address, identity, rotates_at, name, rng);
    Ok(OfferedLink { request, rotates_at })
}

/// What a companion does when a link code is due (the start, a rotation, a code used up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextCode {
    /// Offer a new code living this long ([`offer_link`]).
    Offer(Duration),
    /// The attempt has run [`LINK_WINDOW`]: stop and ask the person to start again.
    Expired,
    /// A link message is being compared or registered: no new code.
    Busy,
}

/// What a companion does when its socket is (re)connected.
#[derive(Debug)]
pub enum OnConnected {
    /// Repeat the confirmed registration (the relay answers a repeat with the same device).
    Register(Box<VerifiedLink>),
    /// The person is comparing the codes: wait for them.
    Wait,
    /// Offer a fresh code (the old address may be gone with the old socket).
    NewCode,
}

/// Where a companion's link stands.
#[derive(Debug)]
enum Stage {
    /// Showing codes; the current one, once offered.
    Offering(Option<LinkRequest>),
    /// A link message opened: the person compares the codes.
    Comparing(Box<VerifiedLink>, MatchCode),
    /// The person said the codes match: registering (again after a dropped socket).
    Confirmed(Box<VerifiedLink>, MatchCode),
    /// Registered.
    Done,
}

/// The companion's side of linking, without IO: which code to offer and when, what a link
/// message leads to, and what survives a dropped socket. The driver owns the socket, the
/// timers and the screens; it asks this what to do at each event.
#[derive(Debug)]
pub struct CompanionLink {
    started: Timestamp,
    rotations: u32,
    stage: Stage,
}

impl CompanionLink {
    /// A new attempt, started at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self { started: now, rotations: 0, stage: Stage::Offering(None) }
    }

    /// The person starts over (after an expiry): a new window, a new first code.
    pub fn restart(&mut self, now: Timestamp) {
        *self = Self::new(now);
    }

    /// A code is due at `now`: offer one (the first lives [`FIRST_CODE_LIFETIME`], later ones
    /// [`CODE_LIFETIME`]), or stop after [`LINK_WINDOW`]. The current code stops working.
    pub fn next_code(&mut self, now: Timestamp) -> NextCode {
        if !matches!(self.stage, Stage::Offering(_)) {
            return NextCode::Busy;
        }
        self.stage = Stage::Offering(None);
        let window = u64::try_from(LINK_WINDOW.as_millis()).unwrap_or(u64::MAX);
        if now.as_millis().saturating_sub(self.started.as_millis()) > window {
            return NextCode::Expired;
        }
        NextCode::Offer(if self.rotations == 0 { FIRST_CODE_LIFETIME } else { CODE_LIFETIME })
    }

    /// The code offered for [`NextCode::Offer`]; `false` (and dropped) when the link moved
    /// on meanwhile (a link message arrived first).
    pub fn offered(&mut self, offered: OfferedLink) -> bool {
        match &mut self.stage {
            Stage::Offering(current) => {
                *current = Some(offered.request);
                self.rotations += 1;
                true
            }
            _ => false,
        }
    }

    /// The code being shown, if any.
    pub fn code(&self) -> Option<&LinkRequest> {
        match &self.stage {
            Stage::Offering(r) => r.as_ref(),
            _ => None,
        }
    }

    /// A link message arrived at the provisioning address. `Ok(Some(..))`: it opened, show the
    /// matching code and the account for the person to compare; `Ok(None)`: ignored (no code
    /// out, or one is already being compared); `Err`: it did not open, and the code is used
    /// up (offer a new one with [`next_code`](Self::next_code) and say why).
    pub fn on_link_message(
        &mut self,
        sealed: &[u8],
    ) -> Result<Option<(&VerifiedLink, MatchCode)>, LinkError> {
        let Stage::Offering(Some(request)) = &self.stage else { return Ok(None) };
        match request.open(sealed) {
            Ok((link, matching)) => {
                self.stage = Stage::Comparing(Box::new(link), matching);
                match &self.stage {
                    Stage::Comparing(link, matching) => Ok(Some((link, *matching))),
                    _ => Ok(None),
                }
            }
            Err(e) => {
                self.stage = Stage::Offering(None);
                Err(e)
            }
        }
    }

    /// The person saw the same code on both screens: the link to register with.
    pub fn confirm(&mut self) -> Option<VerifiedLink> {
        let stage = std::mem::replace(&mut self.stage, Stage::Offering(None));
        match stage {
            Stage::Comparing(link, m) | Stage::Confirmed(link, m) => {
                let out = (*link).clone();
                self.stage = Stage::Confirmed(link, m);
                Some(out)
            }
            other => {
                self.stage = other;
                None
            }
        }
    }

    /// The codes differ: the link is dropped; offer a new code.
    pub fn reject(&mut self) {
        if matches!(self.stage, Stage::Comparing(..) | Stage::Confirmed(..)) {
            self.stage = Stage::Offering(None);
        }
    }

    /// The person left linking: the code and any link being compared are dropped.
    pub fn stop(&mut self) {
        if !matches!(self.stage, Stage::Done) {
            self.stage = Stage::Offering(None);
        }
    }

    /// The registration failed: a transient failure keeps the confirmed link for the next
    /// socket (`true`: wait for it); any other drops it (`false`: offer a new code and say
    /// why).
    pub fn registration_failed(&mut self, error: &ClientError) -> bool {
        if error.is_transient() && matches!(self.stage, Stage::Confirmed(..)) {
            return true;
        }
        self.stage = Stage::Offering(None);
        false
    }

    /// The registration succeeded.
    pub fn registered(&mut self) {
        self.stage = Stage::Done;
    }

    /// The matching code of a link being compared or registered.
    pub fn matching(&self) -> Option<MatchCode> {
        match &self.stage {
            Stage::Comparing(_, m) | Stage::Confirmed(_, m) => Some(*m),
            _ => None,
        }
    }

    /// The socket is (re)connected.
    pub fn on_connected(&self) -> OnConnected {
        match &self.stage {
            Stage::Confirmed(link, _) => OnConnected::Register(link.clone()),
            Stage::Comparing(..) | Stage::Done => OnConnected::Wait,
            Stage::Offering(_) => OnConnected::NewCode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::relay::Status;

    /// A relay that answers every request with `answer`.
    struct Answers(Option<response::Body>, Status);

    #[cfg_attr(target_family = "wasm", async_trait::async_trait(?Send))]
    #[cfg_attr(not(target_family = "wasm"), async_trait::async_trait)]
    impl RelayTransport for Answers {
        async fn request(
            &self,
            _: request::Body,
        ) -> Result<crate::wire::relay::Response, crate::transport::TransportError> {
            Ok(crate::wire::relay::Response {
                id: 1,
                status: self.1 as i32,
                message: "no".into(),
                body: self.0.clone(),
            })
        }
        fn challenge(&self) -> Result<crate::auth::Challenge, crate::auth::ChallengeError> {
            Err(crate::auth::ChallengeError::BadNonce)
        }
    }

    #[tokio::test]
    async fn test_a_link_code_names_the_relays_address_and_rotates_after_its_lifetime() {
        let mut rng = crate::testing::SeededRng::new(3);
        let identity = *tandem_signal::IdentityKeyPair::generate(&mut rng).identity_key();
        let now = Timestamp::from_millis(1_000_000);
        let address =
            response::Body::ProvisioningAddress(crate::wire::relay::ProvisioningAddress {
                address: vec![7; 16],
                expires_at_ms: 1,
            });
        let relay = Answers(Some(address), Status::Ok);
        let offered = offer_link(&relay, identity, "laptop", FIRST_CODE_LIFETIME, now, &mut rng)
            .await
            .unwrap();
        let code = offered.request.code();
        assert_eq!(
            (code.address, code.identity_key, code.name.as_str()),
            ([7; 16], identity, "laptop")
        );
        assert_eq!(offered.rotates_at, Timestamp::from_millis(1_060_000));
        assert_eq!(code.expires_at, offered.rotates_at, "the code says when it stops working");
        // A short address, another answer, a refusal: errors, never a code.
        let short = response::Body::ProvisioningAddress(crate::wire::relay::ProvisioningAddress {
            address: vec![7; 15],
            expires_at_ms: 0,
        });
        for relay in [
            Answers(Some(short), Status::Ok),
            Answers(None, Status::Ok),
            Answers(None, Status::RateLimited),
        ] {
            assert!(offer_link(&relay, identity, "x", CODE_LIFETIME, now, &mut rng).await.is_err());
        }
    }

    /// A code offered at `now` by a fresh companion, and a primary's sealed answer to it.
    fn offered_and_sealed(
        rng: &mut crate::testing::SeededRng,
        now: Timestamp,
    ) -> (OfferedLink, Vec<u8>, MatchCode) {
        use crate::devices::{DeviceIdentityDetails, SignedDeviceIdentity};
        use tandem_signal::IdentityKeyPair;
        let account = IdentityKeyPair::generate(rng);
        let companion = IdentityKeyPair::generate(rng);
        let rotates_at = now.saturating_add(FIRST_CODE_LIFETIME);
        let request =
            LinkRequest::new([7; 16], *companion.identity_key(), rotates_at, "laptop", rng);
        let account_id = tandem_signal::AccountId([3; 16]);
        let details = DeviceIdentityDetails {
            account_id,
            key_index: 1,
            identity_key: *companion.identity_key(),
            timestamp: now,
        };
        let message = crate::link::LinkMessage {
            account_id: account_id.0.to_vec(),
            handle: "alice".into(),
            account_key: account.identity_key().serialize().to_vec(),
            link_token: vec![9; 32],
            adv_identity: SignedDeviceIdentity::sign_by_account(&account, details, rng).to_bytes(),
            primary_name: "phone".into(),
        };
        let code = crate::link::LinkCode::parse(&request.code().to_text()).unwrap();
        let (sealed, matching) =
            crate::link::seal(&code, account.identity_key(), &message, rng).unwrap();
        (OfferedLink { request, rotates_at }, sealed, matching)
    }

    #[test]
    fn test_a_companion_link_rotates_codes_then_expires_and_compares_before_registering() {
        let mut rng = crate::testing::SeededRng::new(8);
        let t0 = Timestamp::from_millis(10_000_000);
        let mut flow = CompanionLink::new(t0);
        // First code 60 s, later ones 20 s, until the window closes.
        assert_eq!(flow.next_code(t0), NextCode::Offer(FIRST_CODE_LIFETIME));
        let (offered, sealed, matching) = offered_and_sealed(&mut rng, t0);
        assert!(flow.offered(offered));
        assert!(flow.code().is_some());
        assert_eq!(
            flow.next_code(t0.saturating_add(FIRST_CODE_LIFETIME)),
            NextCode::Offer(CODE_LIFETIME)
        );
        assert!(flow.code().is_none(), "a rotated code stops working");
        assert!(flow.on_link_message(&sealed).unwrap().is_none(), "no code out: ignored");
        assert!(matches!(flow.on_connected(), OnConnected::NewCode));
        let late = t0.saturating_add(LINK_WINDOW).saturating_add(Duration::from_millis(1));
        assert_eq!(flow.next_code(late), NextCode::Expired);
        flow.restart(late);
        assert_eq!(flow.next_code(late), NextCode::Offer(FIRST_CODE_LIFETIME), "a new window");

        // A message for another code does not open and uses the code up.
        let (offered, _, _) = offered_and_sealed(&mut rng, late);
        assert!(flow.offered(offered));
        let (_, foreign, _) = offered_and_sealed(&mut rng, late);
        assert!(flow.on_link_message(&foreign).is_err());
        assert!(flow.code().is_none());

        // The right message: compared, then confirmed, then registered.
        assert_eq!(flow.next_code(late), NextCode::Offer(CODE_LIFETIME));
        let (offered, sealed, primary_code) = offered_and_sealed(&mut rng, late);
        assert!(flow.offered(offered));
        let (link, shown) = flow.on_link_message(&sealed).unwrap().expect("opens");
        assert_eq!((link.handle.as_str(), shown), ("alice", primary_code));
        assert_ne!(shown, matching, "each attempt has its own code");
        assert_eq!(flow.next_code(late), NextCode::Busy, "no rotation while comparing");
        assert!(flow.on_link_message(&sealed).unwrap().is_none(), "a second message is ignored");
        assert!(matches!(flow.on_connected(), OnConnected::Wait), "the person is comparing");
        let (offered, _, _) = offered_and_sealed(&mut rng, late);
        assert!(!flow.offered(offered), "a code that arrives late is dropped");

        // The person confirms; the socket drops during registration: kept for the next one.
        let link = flow.confirm().expect("a link to register");
        assert_eq!(link.handle, "alice");
        let dropped = ClientError::Transport(crate::transport::TransportError::Timeout);
        assert!(flow.registration_failed(&dropped), "wait for the next socket");
        assert!(matches!(flow.on_connected(), OnConnected::Register(l) if l.handle == "alice"));
        // A refusal drops it: a new code.
        let refused = ClientError::InvalidInput("token used".into());
        assert!(!flow.registration_failed(&refused));
        assert!(matches!(flow.on_connected(), OnConnected::NewCode));
        assert!(flow.confirm().is_none(), "nothing left to confirm");
    }

    #[test]
    fn test_rejected_codes_drop_the_link_and_a_registered_link_stays_done() {
        let mut rng = crate::testing::SeededRng::new(9);
        let t0 = Timestamp::from_millis(5_000_000);
        let mut flow = CompanionLink::new(t0);
        assert_eq!(flow.next_code(t0), NextCode::Offer(FIRST_CODE_LIFETIME));
        let (offered, sealed, _) = offered_and_sealed(&mut rng, t0);
        assert!(flow.offered(offered));
        assert!(flow.on_link_message(&sealed).unwrap().is_some());
        assert!(flow.matching().is_some());
        flow.reject();
        assert!(flow.matching().is_none());
        assert!(flow.confirm().is_none(), "a rejected link cannot be confirmed");
        assert_eq!(flow.next_code(t0), NextCode::Offer(CODE_LIFETIME), "a new code follows");
        let (offered, sealed, _) = offered_and_sealed(&mut rng, t0);
        assert!(flow.offered(offered));
        assert!(flow.on_link_message(&sealed).unwrap().is_some());
        assert!(flow.confirm().is_some());
        flow.registered();
        assert_eq!(flow.next_code(t0), NextCode::Busy);
        assert!(matches!(flow.on_connected(), OnConnected::Wait));
    }

    #[test]
    fn test_responses_find_their_request_once_and_a_close_fails_the_rest() {
        let mut r = Requests::new();
        let (a, b, c) = (r.start('a'), r.start('b'), r.start('c'));
        assert_eq!((a, b, c), (1, 2, 3));
        assert_eq!(r.take(b), Some('b'));
        assert_eq!(r.take(b), None, "a response is matched once");
        assert_eq!(r.take(99), None, "an unknown id matches nothing");
        let mut rest = r.drain();
        rest.sort_unstable();
        assert_eq!(rest, ['a', 'c']);
        assert!(r.is_empty());
        r.next = u64::MAX;
        assert_eq!((r.start('x'), r.start('y')), (u64::MAX, 1), "ids wrap, never 0");
    }

    #[test]
    fn test_kept_pushes_are_bounded_scheduled_once_and_handed_back_in_order() {
        let push = |id: u64| Push { id, body: None };
        let mut k = KeptPushes::new();
        assert_eq!(k.keep(push(1)), (Some(RetryPolicy::FIRST), None), "the first schedules");
        assert_eq!(k.keep(push(2)), (None, None), "one try at a time");
        assert_eq!(k.due().iter().map(|p| p.id).collect::<Vec<_>>(), [1, 2]);
        assert!(k.is_empty());
        assert_eq!(k.keep(push(3)).0, Some(Duration::from_secs(2)), "the delay doubles");
        k.stored();
        k.due();
        assert_eq!(k.keep(push(4)).0, Some(RetryPolicy::FIRST), "a success starts over");
        for id in 5..5 + KeptPushes::MAX as u64 {
            let (_, dropped) = k.keep(push(id));
            if id == 4 + KeptPushes::MAX as u64 {
                assert_eq!(dropped.map(|p| p.id), Some(4), "the oldest goes");
            } else {
                assert!(dropped.is_none());
            }
        }
        assert_eq!(k.len(), KeptPushes::MAX);
        let all = k.now();
        assert_eq!(all.first().map(|p| p.id), Some(5));
        assert_eq!(k.keep(push(9)).0, Some(RetryPolicy::FIRST), "now() starts the delays over");
        k.clear();
        assert!(k.is_empty());
    }

    #[test]
    fn test_a_busy_relay_owes_a_later_flush_a_held_or_refused_send_does_not() {
        use crate::records::MessageId;
        let id = MessageId {
            sender: tandem_signal::AccountId([1; 16]),
            device: tandem_signal::DeviceId::PRIMARY,
            timestamp: 5,
        };
        let busy = || ClientError::Server { status: Status::RateLimited, message: String::new() };
        let mut r = SendRetry::new();
        assert_eq!(r.after_flush::<()>(&[]), None, "an empty outbox owes nothing");
        assert_eq!(r.after_flush::<()>(&[(id, Err(busy()))]), Some(RetryPolicy::FIRST));
        assert_eq!(r.after_flush::<()>(&[(id, Err(busy()))]), None, "one try scheduled at a time");
        r.due();
        assert_eq!(r.after_flush::<()>(&[(id, Err(busy()))]), Some(Duration::from_secs(2)));
        r.due();
        let held = ClientError::AccountKeyChanged(tandem_signal::AccountId([2; 16]));
        assert_eq!(r.after_flush::<()>(&[(id, Err(held))]), None, "held for the person");
        let refused = ClientError::InvalidInput("too long".into());
        assert_eq!(r.after_flush::<()>(&[(id, Err(refused))]), None, "settled for good");
        assert_eq!(r.after_flush(&[(id, Ok(()))]), None);
        assert_eq!(r.after_flush::<()>(&[(id, Err(busy()))]), Some(RetryPolicy::FIRST), "reset");
        r.due();
        let down = ClientError::Transport(crate::transport::TransportError::Timeout);
        assert_eq!(r.after_error(&down), Some(Duration::from_secs(2)));
        assert_eq!(r.after_error(&ClientError::InvalidInput("x".into())), None);
    }

    #[test]
    fn test_retry_delays_double_to_the_cap_and_reset_after_a_success() {
        let mut p = RetryPolicy::new();
        let delays: Vec<u64> = (0..7).map(|_| p.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        p.succeeded();
        assert_eq!(p.next_delay(), RetryPolicy::FIRST);
    }

    #[test]
    fn test_transient_failures_and_held_keys_are_kept_other_failures_are_not() {
        let transient = ClientError::Transport(crate::transport::TransportError::Timeout);
        assert!(matches!(keep_or_fail(transient), PushOutcome::Retry { held: false }));
        let held = ClientError::AccountKeyChanged(tandem_signal::AccountId([1; 16]));
        assert!(matches!(keep_or_fail(held), PushOutcome::Retry { held: true }));
        let bad = ClientError::InvalidInput("x".into());
        assert!(matches!(keep_or_fail(bad), PushOutcome::Failed(_)));
    }
}

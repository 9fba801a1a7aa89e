//! The messaging engine in the browser: `tandem-core`'s [`Client`] over the IndexedDB store
//! and the relay socket.
//!
//! - Every new socket is authenticated first, then the outbox and owed receipts are flushed
//!   and prekeys maintained.
//! - Pushed envelopes are handled one at a time, in order: decrypted and stored in one
//!   IndexedDB transaction, and acknowledged only after it committed.
//! - A sent text is written to the send journal synchronously (see [`crate::journal`]),
//!   then queued in the durable outbox and sent from there, so a message typed while
//!   offline, or in a tab that was closed a moment after Enter, is sent once the device is
//!   back, exactly once (the outbox de-duplicates journal entries, recipients message ids).
//! - The relay is not trusted to end this device: a removal counts only with a device list
//!   signed by the account key that revokes it, and a primary never deletes its keys on the
//!   relay's word (see [`Notice::RemovalUnproven`]).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_channel::mpsc;
use futures_util::StreamExt;
use tandem_core::client::call;
use tandem_core::client::{Client, ClientError, Conversation, DeviceListRecord, Event};
use tandem_core::fingerprint::{FingerprintError, ScanOutcome};
use tandem_core::link::LinkCode;
use tandem_core::prekeys::generate_registration_id;
use tandem_core::runtime::{self, KeptPushes, LoggedIn, PushOutcome, SendRetry};
use tandem_core::wire::relay::{
    DeviceInfo, GetDevices, LookupAccount, Push, UpdateDevice, push, request, response,
};
use tandem_core::{AccountId, IdentityKeyPair};

use crate::device::tabs::{TabChannel, TabMessage};
use crate::device::{self, ActionError, Command, DeviceActions, Outcome};
use crate::rng::system_rng;
use crate::store::IdbStore;
use crate::text::describe;
use crate::transport::{Handlers, RelayClient, now};

/// How long a command that needs the relay waits for the socket to log in.
const LOGIN_WAIT: Duration = Duration::from_secs(10);

/// The database holding this browser's device.
pub const ENGINE_DB: &str = "tandem-browser";

/// What changed, for the UI to reload.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Notice {
    /// Messages or conversations changed.
    Changed,
    /// Something failed that people should know about.
    Error(String),
    /// This device was removed from its account, as the account key signed it (or it logged
    /// itself out): its data may go.
    Removed,
    /// The relay refuses this device but showed no removal the account key signed (a relay
    /// that misbehaves, or a reset done on another device): the keys stay until the person
    /// decides.
    RemovalUnproven,
    /// The account's devices changed (a companion joined).
    DevicesChanged,
    /// The relay listed devices that were not signed into the account (a logged-out device
    /// brought back, an identity the account never issued): a warning for people.
    DevicesRefused(Vec<u32>),
    /// The device starts over with new keys in this tab's worker: its store is closed.
    Restarting,
    /// The worker runs the new device: reopen it.
    Restarted,
    /// A call changed.
    Call(device::command::CallNotice),
    /// How far a long piece of work has come (`None`: it ended): a group announced to, or a
    /// sender key shared with, hundreds of people.
    Progress(Option<WorkProgress>),
}

/// How far a long piece of work has come, for people.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkProgress {
    /// What it is, as a sentence's start ("Telling the group's members").
    pub what: String,
    /// People done.
    pub done: u32,
    /// People in all.
    pub total: u32,
}

impl WorkProgress {
    fn of(p: tandem_core::client::Progress) -> Self {
        use tandem_core::client::Work;
        let what = match p.work {
            Work::AnnouncingGroup => "Telling the group's members",
            Work::SharingGroupKey => "Sending the group's key",
        };
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self { what: what.into(), done: count(p.done), total: count(p.total) }
    }
}

/// Deletes everything this browser stored for its device (after [`Engine::shut_down`] in
/// every tab). Waits at most 10 s for other tabs to let go of the database.
pub async fn wipe() -> Result<(), String> {
    let delete = async {
        rexie::Rexie::delete(ENGINE_DB)
            .await
            .map_err(|e| crate::store::StoreError::from(e).to_string())?;
        crate::store::BrowserDb::delete(crate::store::BrowserDb::NAME)
            .await
            .map_err(|e| e.to_string())
    };
    crate::transport::within(Duration::from_secs(10), delete).await.unwrap_or_else(|| {
        Err("another Tandem tab is still using this browser's data; close it to finish".into())
    })
}

pub use crate::device::Scan;
pub use trust::CodeView;

mod devices;
mod incoming;
mod trust;

use incoming::{maintain_loop, progress_loop, receive_loop, typed_loop};

/// Starts the engine of the device a reset made.
type Successor = Box<dyn FnOnce(Client<IdbStore>)>;

/// The running engine of this browser's device.
pub struct Engine {
    client: Client<IdbStore>,
    relay: RelayClient,
    on_notice: Box<dyn Fn(Notice)>,
    handle: String,
    authenticated: Cell<bool>,
    /// Commands waiting for the socket to be logged in (see [`Engine::logged_in`]).
    login_waiters: RefCell<Vec<futures_channel::oneshot::Sender<()>>>,
    flushing: Cell<bool>,
    flush_again: Cell<bool>,
    /// When a send that met a busy relay is tried again (the runtime's policy).
    send_retry: RefCell<SendRetry>,
    /// This engine, for tasks it starts later.
    me: RefCell<std::rc::Weak<Engine>>,
    incoming: RefCell<Option<mpsc::UnboundedSender<Push>>>,
    /// Pushes that met a busy relay, waiting for their next try (the runtime's policy; see
    /// `retry_later`).
    kept: RefCell<KeptPushes>,
    /// Wakes the task that moves send-journal entries into the outbox (one task, so they
    /// are queued in the order typed).
    typed: RefCell<Option<mpsc::UnboundedSender<()>>>,
    channel: RefCell<Option<Rc<TabChannel>>>,
    /// The `storage` listener that hears other tabs' journal entries.
    journal_listener: RefCell<Option<leptos::prelude::WindowListenerHandle>>,
    /// Stopped for good (logged out, or replaced by a reset).
    halted: Cell<bool>,
    /// A task ticks the calls' ringing timeouts.
    call_timer: Cell<bool>,
    /// Starts the engine of the device a reset made (see [`Engine::on_replaced`]).
    successor: RefCell<Option<Successor>>,
}

/// The Web Lock and channel names of the device stored in `db`.
pub fn tab_names(db: &str) -> (String, String) {
    (format!("tandem-engine:{db}"), format!("tandem-tabs:{db}"))
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the registered device stored in `db`, if there is one.
    pub async fn open(db: &str) -> Result<Option<Client<IdbStore>>, ClientError> {
        let Some(store) = IdbStore::open(db).await? else {
            return Ok(None);
        };
        match Client::open(store).await {
            Ok(c) => Ok(Some(c)),
            Err(ClientError::NotRegistered) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a new account named `handle`; this browser becomes its primary device.
    pub async fn create_account(
        db: &str,
        relay: &RelayClient,
        handle: &str,
        device_name: &str,
    ) -> Result<Client<IdbStore>, ClientError> {
        let mut rng = system_rng();
        let identity = IdentityKeyPair::generate(&mut rng);
        let store = IdbStore::create(db, identity, generate_registration_id(&mut rng)).await?;
        Client::register_account(store, relay, handle, device_name, "Web", now(), &mut rng).await
    }

    /// Starts the engine on `relay`; `on_notice` hears about changes. `registered_now` says
    /// the current socket already belongs to this device (it just registered on it).
    pub async fn start(
        client: Client<IdbStore>,
        relay: RelayClient,
        registered_now: bool,
        on_notice: impl Fn(Notice) + 'static,
    ) -> Rc<Self> {
        let handle = client.account().await.handle.clone();
        // Every write goes through this store: it may keep device lists in memory.
        client.store().remember_engine_records();
        let (tx, rx) = mpsc::unbounded();
        let (typed_tx, typed_rx) = mpsc::unbounded();
        let engine = Rc::new(Self {
            client,
            relay: relay.clone(),
            on_notice: Box::new(on_notice),
            handle,
            authenticated: Cell::new(false),
            login_waiters: RefCell::new(Vec::new()),
            flushing: Cell::new(false),
            flush_again: Cell::new(false),
            send_retry: RefCell::new(SendRetry::new()),
            me: RefCell::new(std::rc::Weak::new()),
            incoming: RefCell::new(Some(tx)),
            kept: RefCell::new(KeptPushes::new()),
            typed: RefCell::new(Some(typed_tx)),
            channel: RefCell::new(None),
            journal_listener: RefCell::new(None),
            halted: Cell::new(false),
            call_timer: Cell::new(false),
            successor: RefCell::new(None),
        });
        let weak = Rc::downgrade(&engine);
        *engine.me.borrow_mut() = weak.clone();
        // Other tabs of this device hand their actions to this one.
        let serving = weak.clone();
        let names = tab_names(engine.client.store().name());
        let channel = TabChannel::open(&names.1, move |msg| {
            if let (Some(e), TabMessage::LoggedOut) = (serving.upgrade(), &msg) {
                // A view logged this device out (its engine tab is this one).
                e.notify(Notice::Removed);
                return;
            }
            if let (Some(e), TabMessage::Request { id, command }) = (serving.upgrade(), msg) {
                wasm_bindgen_futures::spawn_local(async move {
                    let result = e.run_command(command).await;
                    if let Some(c) = e.channel.borrow().as_ref() {
                        c.post(&TabMessage::Reply { id, result });
                    }
                });
            }
        });
        *engine.channel.borrow_mut() = channel.ok().map(Rc::new);
        wasm_bindgen_futures::spawn_local(receive_loop(weak.clone(), rx));
        wasm_bindgen_futures::spawn_local(typed_loop(weak.clone(), typed_rx));
        // Entries left by a tab that died, and those other tabs write from now on.
        engine.kick_journal();
        let on_storage = weak.clone();
        *engine.journal_listener.borrow_mut() = crate::journal::on_change(move || {
            if let Some(e) = on_storage.upgrade() {
                e.kick_journal();
            }
        });
        wasm_bindgen_futures::spawn_local(maintain_loop(weak.clone()));
        wasm_bindgen_futures::spawn_local(progress_loop(weak.clone()));
        let (on_push, on_connected) = (weak.clone(), weak);
        relay.set_handlers(Handlers {
            on_push: Box::new(move |p| {
                if let Some(e) = on_push.upgrade()
                    && let Some(tx) = e.incoming.borrow().as_ref()
                {
                    let _ = tx.unbounded_send(p);
                }
            }),
            on_connected: Box::new(move || {
                if let Some(e) = on_connected.upgrade() {
                    e.authenticated.set(false);
                    wasm_bindgen_futures::spawn_local(async move { e.connected().await });
                }
            }),
        });
        if relay.is_connected() {
            let e = engine.clone();
            if registered_now {
                e.set_logged_in();
                wasm_bindgen_futures::spawn_local(async move { e.flush().await });
            } else {
                wasm_bindgen_futures::spawn_local(async move { e.connected().await });
            }
        }
        engine
    }

    /// The socket is logged in as this device: waiting commands go ahead.
    fn set_logged_in(&self) {
        self.authenticated.set(true);
        for w in self.login_waiters.borrow_mut().drain(..) {
            let _ = w.send(());
        }
    }

    /// Waits (at most [`LOGIN_WAIT`]) until the socket is logged in, so that a command asked
    /// for just after a start or a reconnect does not fail for being early; a relay that
    /// stays away fails it as offline.
    async fn logged_in(&self) {
        if self.authenticated.get() {
            return;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        self.login_waiters.borrow_mut().push(tx);
        let _ = crate::transport::within(LOGIN_WAIT, rx).await;
    }

    /// Whether the socket is logged in as this device, once it is or [`LOGIN_WAIT`] passed.
    pub async fn wait_logged_in(&self) -> bool {
        self.logged_in().await;
        self.authenticated.get()
    }

    /// Runs a command of this tab's UI or of a view.
    pub async fn run_command(&self, command: Command) -> Result<Outcome, ActionError> {
        if command.needs_relay() {
            self.logged_in().await;
        }
        match command {
            Command::Find { handle } => {
                let (id, handle) = self.find(&handle).await?;
                Ok(Outcome::Account { id: id.0.to_vec(), handle })
            }
            Command::Name { account } => {
                Ok(Outcome::Name(self.name_of(device::account(&account)?).await))
            }
            Command::MarkRead { peer } => {
                self.mark_read(device::account(&peer)?).await;
                Ok(Outcome::Done)
            }
            Command::MarkGroupRead { group } => {
                let group = device::group(&group)?;
                // The read marks are stored before the receipts go out: a failed receipt
                // still changed what the views show.
                match self
                    .client
                    .mark_group_read(&self.relay, group, now(), &mut system_rng())
                    .await
                {
                    Ok(0) => {}
                    Ok(_) | Err(_) => self.notify(Notice::Changed),
                }
                Ok(Outcome::Done)
            }
            Command::Devices => Ok(Outcome::Devices(
                self.devices().await?.iter().map(prost::Message::encode_to_vec).collect(),
            )),
            Command::Link { code } => {
                let link =
                    |e: ClientError| ActionError::explained(&e, crate::text::link_problem(&e));
                let code = LinkCode::parse(&code).map_err(|e| link(e.into()))?;
                let (code, key_index) = self.link_device(&code).await.map_err(link)?;
                Ok(Outcome::Matching { code, key_index })
            }
            Command::ConfirmLink { key_index } => done(self.confirm_link(key_index).await),
            Command::RejectLink { key_index } => done(self.reject_link(key_index).await),
            Command::RemoveDevice { device } => done(self.remove_device(device).await),
            Command::Rename { name } => done(self.rename_device(&name).await),
            Command::SecurityCode { contact } => {
                let c = self.security_code(device::account(&contact)?).await?;
                Ok(Outcome::Code { digits: c.digits, text: c.text, list: c.list.to_bytes() })
            }
            Command::VerifyCode { contact, text } => {
                Ok(Outcome::Scan(self.verify_code(device::account(&contact)?, &text).await?))
            }
            Command::SetVerified { contact, verified } => {
                done(self.set_verified(device::account(&contact)?, verified).await)
            }
            Command::AcknowledgeKeyChange { contact } => {
                done(self.acknowledge_key_change(device::account(&contact)?).await)
            }
            Command::QueueTexts { entries } => {
                Ok(Outcome::Handled(self.queue_entries(entries).await))
            }
            Command::PlaceCall { peer, sdp, video } => {
                let peer = device::account(&peer)?;
                let placed = self
                    .client
                    .place_call(&self.relay, peer, &sdp, video, now(), &mut system_rng())
                    .await?;
                self.calls_changed(Vec::new());
                let devices = u32::try_from(placed.devices).unwrap_or(u32::MAX);
                Ok(Outcome::CallPlaced { call_id: placed.call_id, devices })
            }
            Command::AnswerCall { call_id, sdp, video } => {
                let updates = self
                    .client
                    .answer_call(&self.relay, call_id, &sdp, video, now(), &mut system_rng())
                    .await?;
                self.calls_changed(updates);
                Ok(Outcome::Done)
            }
            Command::DeclineCall { call_id } => {
                let updates = self
                    .client
                    .decline_call(&self.relay, call_id, now(), &mut system_rng())
                    .await?;
                self.calls_changed(updates);
                Ok(Outcome::Done)
            }
            Command::HangUp { call_id, security_failure } => {
                let updates = self
                    .client
                    .hang_up_call(&self.relay, call_id, security_failure, now(), &mut system_rng())
                    .await?;
                self.calls_changed(updates);
                Ok(Outcome::Done)
            }
            Command::CallCandidates { call_id, candidates, generation } => {
                self.client
                    .send_call_candidates(
                        &self.relay,
                        call_id,
                        candidates,
                        generation,
                        now(),
                        &mut system_rng(),
                    )
                    .await?;
                Ok(Outcome::Done)
            }
            Command::IceServers => {
                let ice = self.client.ice_servers(&self.relay).await?;
                let servers = ice
                    .servers
                    .into_iter()
                    .map(|s| device::command::IceServerEntry {
                        urls: s.urls,
                        username: s.username,
                        credential: s.credential,
                    })
                    .collect();
                Ok(Outcome::IceServers { servers, expires_ms: ice.expires_ms })
            }
            Command::CallMedia { call_id, muted, camera_off } => {
                self.client
                    .send_call_media(
                        &self.relay,
                        call_id,
                        muted,
                        camera_off,
                        now(),
                        &mut system_rng(),
                    )
                    .await?;
                Ok(Outcome::Done)
            }
            Command::CreateGroup { title, members } => {
                let members =
                    members.iter().map(|m| device::account(m)).collect::<Result<Vec<_>, _>>()?;
                let group = self
                    .client
                    .create_group(&self.relay, &title, &members, now(), &mut system_rng())
                    .await?;
                self.notify(Notice::Changed);
                Ok(Outcome::GroupCreated { group: group.to_vec() })
            }
            Command::AcceptGroup { group, accept } => {
                let group = device::group(&group)?;
                self.client
                    .accept_group(&self.relay, group, accept, now(), &mut system_rng())
                    .await?;
                self.notify(Notice::Changed);
                Ok(Outcome::Done)
            }
            Command::EditGroup { group, add, remove, promote, demote, title } => {
                let group = device::group(&group)?;
                let accounts = |list: Vec<Vec<u8>>| {
                    list.iter().map(|m| device::account(m)).collect::<Result<Vec<_>, _>>()
                };
                let edit = tandem_core::client::GroupEdit {
                    add: accounts(add)?,
                    remove: accounts(remove)?,
                    promote: accounts(promote)?,
                    demote: accounts(demote)?,
                    title,
                };
                self.client
                    .update_group(&self.relay, group, &edit, now(), &mut system_rng())
                    .await?;
                self.notify(Notice::Changed);
                Ok(Outcome::Done)
            }
            Command::SendWithout { group, member } => {
                let (group, member) = (device::group(&group)?, device::account(&member)?);
                self.client.send_without(group, member).await?;
                self.notify(Notice::Changed);
                self.flush().await;
                Ok(Outcome::Done)
            }
            Command::LeaveGroup { group } => {
                let group = device::group(&group)?;
                self.client.leave_group(&self.relay, group, now(), &mut system_rng()).await?;
                self.notify(Notice::Changed);
                Ok(Outcome::Done)
            }
            Command::RenegotiateCall { call_id, sdp, offer, generation } => {
                self.client
                    .renegotiate_call(
                        &self.relay,
                        call_id,
                        sdp,
                        offer,
                        generation,
                        now(),
                        &mut system_rng(),
                    )
                    .await?;
                Ok(Outcome::Done)
            }
            Command::ResetAccount => {
                // Only a host that can start the new device's engine takes it (the worker,
                // see `device::worker`); an engine in a tab is reset by its own tab.
                let Some(successor) = self.successor.borrow_mut().take() else {
                    return Err(ActionError::new(
                        device::ErrorKind::Failed,
                        "Reset the keys in the tab where Tandem runs.",
                    ));
                };
                match self.reset_account().await {
                    Ok(client) => {
                        successor(client);
                        Ok(Outcome::Done)
                    }
                    // The old device stays (see `reset_account`): its engine starts again.
                    Err(e) => {
                        if let Ok(Some(client)) = Engine::open(self.store().name()).await {
                            successor(client);
                        }
                        Err(e.into())
                    }
                }
            }
        }
    }

    /// Lets views reset the account through this engine: `start` runs the new device's
    /// engine once the reset is done.
    pub fn on_replaced(&self, start: impl FnOnce(Client<IdbStore>) + 'static) {
        *self.successor.borrow_mut() = Some(Box::new(start));
    }

    /// This device's account.
    pub async fn account_id(&self) -> AccountId {
        self.client.whoami().await.0
    }

    /// Whether this is the account's primary device.
    pub async fn is_primary(&self) -> bool {
        self.client.whoami().await.1.is_primary()
    }

    /// Stops this engine, tells the other tabs `what`, closes the database.
    fn halt(&self, what: &TabMessage) {
        if self.halted.replace(true) {
            return;
        }
        self.stop();
        self.kept.borrow_mut().clear();
        self.authenticated.set(false);
        self.relay
            .set_handlers(Handlers { on_push: Box::new(|_| {}), on_connected: Box::new(|| {}) });
        if let Some(c) = self.channel.borrow().as_ref() {
            c.post(what);
        }
        self.client.store().close_now();
    }

    /// The store (for reading messages and conversations).
    pub fn store(&self) -> &IdbStore {
        self.client.store()
    }

    /// Tells the tabs what changed in calls, stores' lines show, and keeps the ringing
    /// timeout ticking (one timer task at a time).
    pub(super) fn calls_changed(&self, updates: Vec<tandem_core::calls::CallUpdate>) {
        self.tell_calls(updates);
        if self.call_timer.replace(true) {
            return;
        }
        let weak = self.me.borrow().clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                let Some(engine) = weak.upgrade() else { return };
                let ticked =
                    engine.client.tick_calls(&engine.relay, now(), &mut system_rng()).await;
                let next = match ticked {
                    Ok((updates, next)) => {
                        engine.tell_calls(updates);
                        next
                    }
                    Err(_) => Some(Duration::from_secs(1)),
                };
                let Some(next) = next else {
                    engine.call_timer.set(false);
                    return;
                };
                drop(engine);
                crate::transport::sleep(next.max(Duration::from_millis(200))).await;
            }
        });
    }

    /// Tells the tabs each call update; an ended call stored its line, so views reload.
    fn tell_calls(&self, updates: Vec<tandem_core::calls::CallUpdate>) {
        let lines =
            updates.iter().any(|u| matches!(u, tandem_core::calls::CallUpdate::Ended { .. }));
        for u in updates {
            self.notify(Notice::Call(device::command::CallNotice::of(u)));
        }
        if lines {
            self.notify(Notice::Changed);
        }
    }

    fn notify(&self, n: Notice) {
        if matches!(n, Notice::Changed | Notice::DevicesChanged)
            && let Some(c) = self.channel.borrow().as_ref()
        {
            c.post(&TabMessage::Changed);
        }
        (self.on_notice)(n);
    }

    async fn connected(&self) {
        let offset = crate::transport::clock_offset_ms();
        match runtime::log_in(&self.client, &self.relay, offset, &mut system_rng()).await {
            LoggedIn::Ready => self.set_logged_in(),
            LoggedIn::Removed { proven: true } => {
                self.notify(Notice::Removed);
                return;
            }
            LoggedIn::Removed { proven: false } => {
                self.notify(Notice::RemovalUnproven);
                return;
            }
            // The socket was replaced while signing: the next one logs in.
            LoggedIn::NextSocket(_) => return,
            LoggedIn::Failed(e) => {
                self.notify(Notice::Error(describe(&e)));
                return;
            }
        }
        self.flush().await;
        self.maintain().await;
    }

    /// Prekeys, signed prekey, and (primary) the device list when the relay's devices
    /// changed unheard of or the list nears expiry.
    async fn maintain(&self) {
        match self.client.maintain(&self.relay, now(), &mut system_rng()).await {
            Ok(Some(report)) => {
                self.report_refused(&report);
                self.notify(Notice::DevicesChanged);
            }
            Ok(None) => {}
            Err(e) => web_sys::console::warn_1(&format!("upkeep failed: {e}").into()),
        }
    }

    /// Flushes again after `delay` (a send met a busy relay; the runtime schedules one such
    /// try at a time).
    fn flush_later(&self, delay: Duration) {
        let weak = self.me.borrow().clone();
        wasm_bindgen_futures::spawn_local(async move {
            crate::transport::sleep(delay).await;
            let Some(e) = weak.upgrade() else { return };
            e.send_retry.borrow_mut().due();
            e.flush().await;
        });
    }

    /// Sends what waits in the outbox and the receipts owed; a send that met a busy relay is
    /// tried again after the runtime's delay.
    async fn flush(&self) {
        if !self.authenticated.get() {
            return;
        }
        // One flush at a time; a request during it makes it go round once more.
        self.flush_again.set(true);
        if self.flushing.replace(true) {
            return;
        }
        let mut rng = system_rng();
        while self.flush_again.replace(false) {
            let flushed = self.client.flush_outbox(&self.relay, now(), &mut rng).await;
            let later = match &flushed {
                Ok(results) => self.send_retry.borrow_mut().after_flush(results),
                Err(e) => self.send_retry.borrow_mut().after_error(e),
            };
            if let Some(delay) = later {
                self.flush_later(delay);
            }
            match flushed {
                Ok(results) => {
                    for (_, r) in results {
                        // A held send is shown in its chat, not as an error.
                        if let Err(e) = r
                            && !e.is_transient()
                            && !matches!(e, ClientError::AccountKeyChanged(_))
                        {
                            self.notify(Notice::Error(describe(&e)));
                        }
                    }
                }
                Err(e) => self.notify(Notice::Error(describe(&e))),
            }
            let _ = self.client.flush_receipts(&self.relay, now(), &mut rng).await;
            // The messages sent leave the outbox in one save for the whole burst.
            if let Err(e) = self.client.settle().await {
                self.notify(Notice::Error(describe(&e)));
            }
            self.notify(Notice::Changed);
        }
        self.flushing.set(false);
        self.tidy().await;
    }

    /// Background upkeep of the store once a burst of work is done: folds a grown session
    /// log back into per-session records.
    async fn tidy(&self) {
        if self.store().wants_compaction()
            && let Err(e) = self.store().compact_sessions().await
        {
            web_sys::console::warn_1(&format!("session log compaction failed: {e}").into());
        }
    }

    /// Finds an account by handle and remembers it as a contact.
    pub async fn find(&self, handle: &str) -> Result<(AccountId, String), ClientError> {
        let body = request::Body::LookupAccount(LookupAccount {
            handle: handle.into(),
            account_id: Vec::new(),
        });
        self.lookup(body).await
    }

    async fn lookup(&self, body: request::Body) -> Result<(AccountId, String), ClientError> {
        let Some(response::Body::Account(info)) = call(&self.relay, body).await? else {
            return Err(ClientError::UnexpectedResponse("lookup"));
        };
        let id = AccountId::from_bytes(&info.account_id)
            .map_err(|_| ClientError::UnexpectedResponse("lookup"))?;
        let mut changes = tandem_core::store::ClientChanges::default();
        changes.contacts.insert(id, info.handle.clone());
        tandem_core::store::ClientStore::save_client_changes(self.store(), changes).await?;
        Ok((id, info.handle))
    }

    /// The name to show for an account: its handle, learned from the server once.
    pub async fn name_of(&self, account: AccountId) -> String {
        if let Ok(Some(h)) = self.store().contact(&account).await {
            return h;
        }
        let body = request::Body::LookupAccount(LookupAccount {
            handle: String::new(),
            account_id: account.0.to_vec(),
        });
        match self.lookup(body).await {
            Ok((_, h)) => h,
            Err(_) => device::short_name(account),
        }
    }

    /// Wakes the task that queues journal entries.
    fn kick_journal(&self) {
        if let Some(tx) = self.typed.borrow().as_ref() {
            let _ = tx.unbounded_send(());
        }
    }

    /// Marks a direct conversation read (read receipts to the peer, read sync to this
    /// account's other devices).
    pub async fn mark_read(&self, peer: AccountId) {
        if let Ok(n) = self.client.mark_read(&self.relay, peer, now(), &mut system_rng()).await
            && n > 0
        {
            self.notify(Notice::Changed);
        }
    }

    /// Stops listening to the relay.
    pub fn stop(&self) {
        self.incoming.borrow_mut().take();
        self.typed.borrow_mut().take();
        if let Some(l) = self.journal_listener.borrow_mut().take() {
            l.remove();
        }
    }
}

#[async_trait::async_trait(?Send)]
impl DeviceActions for Engine {
    async fn run(&self, command: Command) -> Result<Outcome, ActionError> {
        self.run_command(command).await
    }

    fn store(&self) -> &IdbStore {
        self.client.store()
    }

    fn journal_written(&self) {
        self.kick_journal();
    }

    /// Stops handling pushes and typed texts, tells the other tabs, and closes the database
    /// so [`wipe`] can delete it.
    fn shut_down(&self) {
        self.halt(&TabMessage::LoggedOut);
    }
}

/// A command that returns nothing.
fn done(result: Result<(), ClientError>) -> Result<Outcome, ActionError> {
    result.map(|()| Outcome::Done).map_err(ActionError::from)
}

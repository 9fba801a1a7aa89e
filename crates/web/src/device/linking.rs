//! Linking this browser as a companion: show a rotating link code, wait for the primary's
//! sealed link message at a provisioning address, verify it, register.
//!
//! The policy (when codes rotate and expire, what a link message leads to, what survives a
//! dropped socket) is `tandem_core::runtime::CompanionLink`'s; this is the browser's loop
//! around it: the socket, the timers and the screens.
//!
//! - Each rotation is a new provisioning address, a new ephemeral key and a new linking
//!   secret, so an old photo of the code is useless.
//! - A dropped socket invalidates the address: the next socket gets a fresh code.
//! - The device exists on the server only once `RegisterDevice` succeeded, and it registers
//!   only after the person confirmed that this screen and the primary's show the same
//!   matching code; until then the browser holds an identity and nothing else, which
//!   reopens as "not set up".

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use tandem_core::IdentityKeyPair;
use tandem_core::client::{Client, ClientError};
use tandem_core::link::MatchCode;
use tandem_core::prekeys::generate_registration_id;
use tandem_core::runtime::{CompanionLink, NextCode, OnConnected, RetryPolicy, offer_link};
use tandem_core::wire::relay::push;

use crate::rng::system_rng;
use crate::store::IdbStore;
use crate::text::link_problem as problem;
use crate::transport::{Handlers, RelayClient, now, sleep};

/// What the link screen shows.
#[derive(Clone, Debug, PartialEq)]
pub enum LinkView {
    /// Getting a code from the server.
    Preparing,
    /// A code to scan or copy.
    Code {
        /// The text form.
        text: String,
        /// The QR code as an SVG document.
        svg: String,
        /// When it will be replaced (epoch ms).
        rotates_at_ms: f64,
    },
    /// The link message arrived and verified: the person compares the codes before this
    /// browser joins the account.
    Confirm {
        /// The code both screens show.
        matching: String,
        /// The account's handle.
        handle: String,
        /// The primary's name.
        primary: String,
    },
    /// The codes matched; registering.
    Linking {
        /// The code both screens show.
        matching: String,
        /// The account's handle.
        handle: String,
        /// The primary's name.
        primary: String,
    },
    /// The attempt timed out.
    Expired,
    /// Waiting for the server (offline).
    Offline,
}

/// What the linker tells the app.
pub enum LinkOutcome {
    /// The screen changed.
    View(LinkView),
    /// Something went wrong; the screen goes on (a new code follows).
    Problem(String),
    /// This browser is now a device of the account.
    Linked(Box<Client<IdbStore>>, MatchCode),
}

/// A linking attempt in progress.
pub struct Linker {
    db: String,
    relay: RelayClient,
    store: RefCell<Option<IdbStore>>,
    identity: tandem_core::IdentityKey,
    name: String,
    /// The link's state and policy.
    flow: RefCell<CompanionLink>,
    /// Bumped by every new code: a timer of an older code does nothing.
    generation: Cell<u64>,
    /// A registration is running (a new socket must not start a second one).
    registering: Cell<bool>,
    /// When a code that could not be had is asked for again.
    retry: Cell<RetryPolicy>,
    on_outcome: Box<dyn Fn(LinkOutcome)>,
}

impl std::fmt::Debug for Linker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linker").field("name", &self.name).finish_non_exhaustive()
    }
}

/// The QR code of `text` as an SVG document (dark modules on white, with a quiet zone).
pub fn qr_svg(text: &str) -> Result<String, String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .map_err(|e| format!("the link code does not fit a QR code: {e}"))?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .dark_color(svg::Color("#111827"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Drop the XML declaration: the document goes inside HTML.
    Ok(image.split_once("?>").map_or(image.clone(), |(_, svg)| svg.to_owned()))
}

impl Linker {
    /// Starts linking on `relay` with a fresh identity stored in `db` (replacing whatever
    /// half-finished state it held).
    pub async fn start(
        db: &str,
        relay: RelayClient,
        name: String,
        on_outcome: impl Fn(LinkOutcome) + 'static,
    ) -> Result<Rc<Self>, ClientError> {
        let mut rng = system_rng();
        let identity = IdentityKeyPair::generate(&mut rng);
        let public = *identity.identity_key();
        let store = IdbStore::create(db, identity, generate_registration_id(&mut rng)).await?;
        let linker = Rc::new(Self {
            db: db.to_owned(),
            relay: relay.clone(),
            store: RefCell::new(Some(store)),
            identity: public,
            name,
            flow: RefCell::new(CompanionLink::new(now())),
            generation: Cell::new(0),
            registering: Cell::new(false),
            retry: Cell::new(RetryPolicy::new()),
            on_outcome: Box::new(on_outcome),
        });
        let (on_push, on_connected) = (Rc::downgrade(&linker), Rc::downgrade(&linker));
        relay.set_handlers(Handlers {
            on_push: Box::new(move |p| {
                if let (Some(l), Some(push::Body::Provisioning(m))) = (on_push.upgrade(), p.body) {
                    wasm_bindgen_futures::spawn_local(async move { l.on_message(m.message).await });
                }
            }),
            on_connected: Box::new(move || {
                if let Some(l) = on_connected.upgrade() {
                    wasm_bindgen_futures::spawn_local(async move { l.on_connected().await });
                }
            }),
        });
        if relay.is_connected() {
            let l = linker.clone();
            wasm_bindgen_futures::spawn_local(async move { l.new_code().await });
        } else {
            linker.tell(LinkOutcome::View(LinkView::Offline));
        }
        Ok(linker)
    }

    fn tell(&self, o: LinkOutcome) {
        (self.on_outcome)(o);
    }

    /// Stops: no more codes; the current address dies with the next code or socket.
    pub fn cancel(&self) {
        self.generation.set(self.generation.get() + 1);
        self.flow.borrow_mut().stop();
        self.store.borrow_mut().take();
    }

    /// Starts over after an expiry: a new window, a new first code.
    pub fn restart(self: &Rc<Self>) {
        self.flow.borrow_mut().restart(now());
        let me = self.clone();
        wasm_bindgen_futures::spawn_local(async move { me.new_code().await });
    }

    async fn new_code(self: Rc<Self>) {
        if self.store.borrow().is_none() {
            return;
        }
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        let lifetime = match self.flow.borrow_mut().next_code(now()) {
            NextCode::Offer(lifetime) => lifetime,
            NextCode::Expired => {
                self.tell(LinkOutcome::View(LinkView::Expired));
                return;
            }
            NextCode::Busy => return,
        };
        self.tell(LinkOutcome::View(LinkView::Preparing));
        let offered =
            offer_link(&self.relay, self.identity, &self.name, lifetime, now(), &mut system_rng())
                .await;
        let offered = match offered {
            Ok(o) => o,
            Err(ClientError::Server { message, .. }) => {
                self.tell(LinkOutcome::Problem(format!("The server refused: {message}.")));
                return;
            }
            Err(e @ ClientError::UnexpectedResponse(_)) => {
                // Not a code: say so, and ask again a little later.
                let mut retry = self.retry.get();
                let delay = retry.next_delay();
                self.retry.set(retry);
                self.tell(LinkOutcome::Problem(format!(
                    "The server did not give a link code ({e}). Trying again in {} s.",
                    delay.as_secs()
                )));
                self.new_code_after(delay, generation);
                return;
            }
            Err(_) => {
                self.tell(LinkOutcome::View(LinkView::Offline));
                return;
            }
        };
        if self.generation.get() != generation {
            return;
        }
        let mut retry = self.retry.get();
        retry.succeeded();
        self.retry.set(retry);
        let text = offered.request.code().to_text();
        let rotates_at = offered.rotates_at;
        if !self.flow.borrow_mut().offered(offered) {
            return;
        }
        let svg = match qr_svg(&text) {
            Ok(svg) => svg,
            Err(e) => {
                self.tell(LinkOutcome::Problem(e));
                String::new()
            }
        };
        #[allow(clippy::cast_precision_loss, reason = "epoch ms fit an f64 exactly")]
        self.tell(LinkOutcome::View(LinkView::Code {
            text: text.to_string(),
            svg,
            rotates_at_ms: rotates_at.as_millis() as f64,
        }));
        self.new_code_after(lifetime, generation);
    }

    /// Asks for a new code after `delay`, unless a newer code (a later `generation`) or a
    /// dropped linker came first.
    fn new_code_after(self: &Rc<Self>, delay: std::time::Duration, generation: u64) {
        let weak: Weak<Self> = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            sleep(delay).await;
            if let Some(l) = weak.upgrade()
                && l.generation.get() == generation
            {
                l.new_code().await;
            }
        });
    }

    async fn on_message(self: Rc<Self>, sealed: Vec<u8>) {
        let opened = self.flow.borrow_mut().on_link_message(&sealed).map(|o| {
            o.map(|(link, matching)| LinkView::Confirm {
                matching: matching.to_string(),
                handle: link.handle.clone(),
                primary: link.primary_name.clone(),
            })
        });
        match opened {
            Ok(None) => {}
            Ok(Some(view)) => {
                // No more rotations: this code is being used. Nothing is registered before
                // the person said the codes match.
                self.generation.set(self.generation.get() + 1);
                self.tell(LinkOutcome::View(view));
            }
            Err(e) => {
                // The address was used up: show a fresh code, then say what happened (a
                // new code clears older problems).
                self.clone().new_code().await;
                self.tell(LinkOutcome::Problem(problem(&ClientError::Link(e))));
            }
        }
    }

    /// The person saw the same code on both screens: join the account.
    pub fn confirm(self: &Rc<Self>) {
        let me = self.clone();
        wasm_bindgen_futures::spawn_local(async move { me.register().await });
    }

    /// The codes differ: this link is dropped, and a new code is shown.
    pub fn reject(self: &Rc<Self>) {
        self.flow.borrow_mut().reject();
        let me = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            me.clone().new_code().await;
            me.tell(LinkOutcome::Problem(
                "The codes did not match, so this browser was not linked. Scan the new code, and make sure you are linking your own device.".into(),
            ));
        });
    }

    /// Registers with the confirmed link. A dropped connection keeps it: the next socket
    /// repeats the same registration (same token, the same identity proving itself), which
    /// the relay answers with the same device, so a lost answer never leaves a device nobody
    /// holds.
    async fn register(self: &Rc<Self>) {
        if self.registering.get() {
            return;
        }
        let Some(link) = self.flow.borrow_mut().confirm() else { return };
        let Some(matching) = self.flow.borrow().matching() else { return };
        self.tell(LinkOutcome::View(LinkView::Linking {
            matching: matching.to_string(),
            handle: link.handle.clone(),
            primary: link.primary_name.clone(),
        }));
        let Some(store) = self.store.borrow_mut().take() else { return };
        self.registering.set(true);
        let result = Client::register_linked(
            store,
            &self.relay,
            link,
            &self.name,
            "Web",
            now(),
            &mut system_rng(),
        )
        .await;
        self.registering.set(false);
        let error = match result {
            Ok(client) => {
                self.flow.borrow_mut().registered();
                self.tell(LinkOutcome::Linked(Box::new(client), matching));
                return;
            }
            Err(e) => e,
        };
        // The identity stays; reopen the store for the next attempt.
        match IdbStore::open(&self.db).await {
            Ok(Some(store)) => *self.store.borrow_mut() = Some(store),
            _ => return,
        }
        if self.flow.borrow_mut().registration_failed(&error) {
            // Finish on the next socket (see `on_connected`).
            self.tell(LinkOutcome::Problem(
                "The connection dropped while linking. It finishes as soon as the connection is back; keep this tab open.".into(),
            ));
            return;
        }
        self.clone().new_code().await;
        self.tell(LinkOutcome::Problem(problem(&error)));
    }

    /// A new socket: finish a confirmed registration; a link still being compared waits for
    /// the person; otherwise a fresh code.
    async fn on_connected(self: Rc<Self>) {
        let next = self.flow.borrow().on_connected();
        match next {
            OnConnected::Register(_) => self.register().await,
            OnConnected::Wait => {}
            OnConnected::NewCode => self.new_code().await,
        }
    }
}

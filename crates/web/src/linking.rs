//! Linking this browser as a companion: show a rotating link code, wait for the primary's
//! sealed link message at a provisioning address, verify it, register.
//!
//! - A code rotates first after [`FIRST_CODE_LIFETIME`], then every [`CODE_LIFETIME`], and the whole
//!   attempt expires after [`LINK_WINDOW`]: each rotation is a new provisioning address, a
//!   new ephemeral key and a new linking secret, so an old photo of the code is useless.
//! - A dropped socket invalidates the address: the next socket gets a fresh code.
//! - The device exists on the server only once `RegisterDevice` succeeded, and it registers
//!   only after the person confirmed that this screen and the primary's show the same
//!   matching code; until then the browser holds an identity and nothing else, which
//!   reopens as "not set up".

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use tandem_core::IdentityKeyPair;
use tandem_core::client::{Client, ClientError};
use tandem_core::link::{LinkRequest, MatchCode, VerifiedLink};
use tandem_core::prekeys::generate_registration_id;
use tandem_core::runtime::{
    CODE_LIFETIME, FIRST_CODE_LIFETIME, LINK_WINDOW, OfferedLink, offer_link,
};
use tandem_core::wire::relay::push;

use crate::rng::system_rng;
use crate::store::IdbStore;
use crate::text::link_problem as problem;
use crate::transport::{Handlers, RelayClient, now, now_ms, sleep};

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
    request: RefCell<Option<LinkRequest>>,
    generation: Cell<u64>,
    /// When the current window of [`LINK_WINDOW`] began.
    started_ms: Cell<f64>,
    rotations: Cell<u32>,
    busy: Cell<bool>,
    pending: RefCell<Option<Pending>>,
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
            request: RefCell::new(None),
            generation: Cell::new(0),
            started_ms: Cell::new(now_ms()),
            rotations: Cell::new(0),
            busy: Cell::new(false),
            pending: RefCell::new(None),
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
        self.pending.borrow_mut().take();
        self.request.borrow_mut().take();
        self.store.borrow_mut().take();
    }

    /// Starts over after an expiry: a new window of [`LINK_WINDOW`], first code for
    /// [`FIRST_CODE_LIFETIME`].
    pub fn restart(self: &Rc<Self>) {
        self.started_ms.set(now_ms());
        self.rotations.set(0);
        let me = self.clone();
        wasm_bindgen_futures::spawn_local(async move { me.new_code().await });
    }

    async fn new_code(self: Rc<Self>) {
        if self.store.borrow().is_none() || self.busy.get() {
            return;
        }
        let generation = self.generation.get() + 1;
        self.generation.set(generation);
        if now_ms() - self.started_ms.get() > LINK_WINDOW.as_secs_f64() * 1000.0 {
            self.request.borrow_mut().take();
            self.tell(LinkOutcome::View(LinkView::Expired));
            return;
        }
        self.tell(LinkOutcome::View(LinkView::Preparing));
        let lifetime = if self.rotations.get() == 0 { FIRST_CODE_LIFETIME } else { CODE_LIFETIME };
        let offered =
            offer_link(&self.relay, self.identity, &self.name, lifetime, now(), &mut system_rng())
                .await;
        let OfferedLink { request, rotates_at } = match offered {
            Ok(o) => o,
            Err(ClientError::Server { message, .. }) => {
                self.tell(LinkOutcome::Problem(format!("The server refused: {message}.")));
                return;
            }
            Err(ClientError::UnexpectedResponse(_)) => return,
            Err(_) => {
                self.tell(LinkOutcome::View(LinkView::Offline));
                return;
            }
        };
        if self.generation.get() != generation {
            return;
        }
        self.rotations.set(self.rotations.get() + 1);
        let text = request.code().to_text();
        let svg = match qr_svg(&text) {
            Ok(svg) => svg,
            Err(e) => {
                self.tell(LinkOutcome::Problem(e));
                String::new()
            }
        };
        *self.request.borrow_mut() = Some(request);
        #[allow(clippy::cast_precision_loss, reason = "epoch ms fit an f64 exactly")]
        self.tell(LinkOutcome::View(LinkView::Code {
            text: text.to_string(),
            svg,
            rotates_at_ms: rotates_at.as_millis() as f64,
        }));
        let weak: Weak<Self> = Rc::downgrade(&self);
        wasm_bindgen_futures::spawn_local(async move {
            sleep(lifetime).await;
            if let Some(l) = weak.upgrade()
                && l.generation.get() == generation
                && !l.busy.get()
            {
                l.new_code().await;
            }
        });
    }

    async fn on_message(self: Rc<Self>, sealed: Vec<u8>) {
        if self.busy.replace(true) {
            return;
        }
        let opened = self.request.borrow().as_ref().map(|r| r.open(&sealed));
        let (link, matching) = match opened {
            None => {
                self.busy.set(false);
                return;
            }
            Some(Err(e)) => {
                self.busy.set(false);
                // The address was used up: show a fresh code, then say what happened (a
                // new code clears older problems).
                self.clone().new_code().await;
                self.tell(LinkOutcome::Problem(problem(&ClientError::Link(e))));
                return;
            }
            Some(Ok(ok)) => ok,
        };
        // No more rotations: this code is being used. Nothing is registered before the
        // person said the codes match.
        self.generation.set(self.generation.get() + 1);
        self.tell(LinkOutcome::View(LinkView::Confirm {
            matching: matching.to_string(),
            handle: link.handle.clone(),
            primary: link.primary_name.clone(),
        }));
        *self.pending.borrow_mut() = Some(Pending { link, matching, confirmed: false });
    }

    /// The person saw the same code on both screens: join the account.
    pub fn confirm(self: &Rc<Self>) {
        if let Some(p) = self.pending.borrow_mut().as_mut() {
            p.confirmed = true;
        }
        let me = self.clone();
        wasm_bindgen_futures::spawn_local(async move { me.register().await });
    }

    /// The codes differ: this link is dropped, and a new code is shown.
    pub fn reject(self: &Rc<Self>) {
        self.pending.borrow_mut().take();
        self.busy.set(false);
        let me = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            me.clone().new_code().await;
            me.tell(LinkOutcome::Problem(
                "The codes did not match, so this browser was not linked. Scan the new code, and make sure you are linking your own device.".into(),
            ));
        });
    }

    /// Registers with the pending link. A dropped connection keeps it pending: the next
    /// socket repeats the same registration (same token, the same identity proving itself), which the relay
    /// answers with the same device, so a lost answer never leaves a device nobody holds.
    async fn register(self: &Rc<Self>) {
        let Some((link, matching)) = self
            .pending
            .borrow()
            .as_ref()
            .filter(|p| p.confirmed)
            .map(|p| (p.link.clone(), p.matching))
        else {
            return;
        };
        self.tell(LinkOutcome::View(LinkView::Linking {
            matching: matching.to_string(),
            handle: link.handle.clone(),
            primary: link.primary_name.clone(),
        }));
        let Some(store) = self.store.borrow_mut().take() else { return };
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
        let error = match result {
            Ok(client) => {
                self.pending.borrow_mut().take();
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
        if error.is_transient() {
            // Finish on the next socket (see `on_connected`).
            self.tell(LinkOutcome::Problem(
                "The connection dropped while linking. It finishes as soon as the connection is back; keep this tab open.".into(),
            ));
            return;
        }
        self.pending.borrow_mut().take();
        self.busy.set(false);
        self.clone().new_code().await;
        self.tell(LinkOutcome::Problem(problem(&error)));
    }

    /// A new socket: finish a confirmed registration; a link still being compared waits for
    /// the person; otherwise a fresh code.
    async fn on_connected(self: Rc<Self>) {
        let pending = self.pending.borrow().as_ref().map(|p| p.confirmed);
        match pending {
            Some(true) => self.register().await,
            Some(false) => {}
            None => self.new_code().await,
        }
    }
}

/// A link message that verified, waiting for the person and then to be registered.
struct Pending {
    link: VerifiedLink,
    matching: MatchCode,
    /// The person saw the same code on both screens.
    confirmed: bool,
}

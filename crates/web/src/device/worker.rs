//! The engine in a dedicated Worker, off the page's thread.
//!
//! The tab that holds the device's Web Lock starts the worker ([`WorkerHost::spawn`]) and
//! sends it the WebAssembly module it already compiled; the worker opens the store, dials
//! the relay on its own socket, and serves the [`Command`](super::Command)s of every tab over
//! the device's `BroadcastChannel`, exactly as an engine running in a tab does. Every tab,
//! the hosting one included, is then a [`View`](super::View). What a worker cannot reach the
//! host does for it: the send journal lives in `localStorage`, so the host hands its entries
//! over ([`Command::QueueTexts`]); an unlocked data key is passed with the start message (a
//! `CryptoKey` is cloned, never exported). When the hosting tab closes, the worker ends with
//! it and the lock goes to the next tab.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use futures_util::future::{Either, select};
use js_sys::{Object, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use super::engine::tab_names;
use super::tabs::TabChannel;
use super::{Command, Outcome};
use crate::store::seal::{self, DataKey};
use crate::transport::RelayClient;

/// How long the host waits for the worker to open the store and start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the engine's worker needs to start.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Start {
    /// The device's database.
    db: String,
    /// The relay's address.
    relay: String,
    /// Create the account first: its handle and this device's name.
    register: Option<(String, String)>,
}

/// What the worker tells its host once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Started {
    /// The engine runs.
    Ready,
    /// It does not, and why.
    Failed {
        /// The store is locked (the host holds no unlocked key).
        locked: bool,
        /// What happened.
        error: String,
    },
}

/// Why the engine did not start in a worker.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    /// This page cannot run it in a worker (no module workers, no app script to load); the
    /// engine runs in the tab instead.
    #[error("the engine cannot run in a worker here: {0}")]
    Unsupported(String),
    /// The worker started but the engine did not.
    #[error("{0}")]
    Failed(String),
}

// ------------------------------------------------------------------------------------------
// In the worker.

/// The worker's entry point (called by `www/static/engine-worker.js` once the module is
/// instantiated): starts the engine described by `start`, with `key` (an unlocked data key,
/// or null), and tells the host how that went.
#[wasm_bindgen]
pub fn tandem_engine_worker(start: JsValue, key: JsValue) {
    console_error_panic_hook::set_once();
    wasm_bindgen_futures::spawn_local(async move {
        let started = match serde_wasm_bindgen::from_value::<Start>(start) {
            Ok(start) => {
                if let Ok(key) = key.dyn_into::<web_sys::CryptoKey>() {
                    seal::remember(&start.db, DataKey::from_crypto_key(key));
                }
                // Its own socket logs in, even after the page's registered the device.
                let relay = RelayClient::start(start.relay.clone(), |_| {});
                let served = match &start.register {
                    Some((handle, name)) => {
                        super::host::register(&start.db, relay, handle, name).await
                    }
                    None => super::host::serve(&start.db, relay, false).await,
                };
                match served {
                    Ok(()) => Started::Ready,
                    Err(e) => Started::Failed { locked: e.locked, error: e.error },
                }
            }
            Err(e) => Started::Failed { locked: false, error: format!("bad start message: {e}") },
        };
        tell_host(&started);
    });
}

/// Posts `started` to the page that started this worker.
fn tell_host(started: &Started) {
    let scope: web_sys::DedicatedWorkerGlobalScope = js_sys::global().unchecked_into();
    if let Ok(v) = serde_wasm_bindgen::to_value(started) {
        let _ = scope.post_message(&v);
    }
}

// ------------------------------------------------------------------------------------------
// In the hosting tab.

/// The engine's worker, as its hosting tab holds it.
pub struct WorkerHost {
    worker: web_sys::Worker,
    /// For handing journal entries over.
    channel: TabChannel,
    pumping: Cell<bool>,
    again: Cell<bool>,
    me: RefCell<std::rc::Weak<WorkerHost>>,
    journal_listener: RefCell<Option<leptos::prelude::WindowListenerHandle>>,
}

impl std::fmt::Debug for WorkerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHost").finish_non_exhaustive()
    }
}

/// The address of the app's JavaScript glue, as the page preloaded it.
pub(crate) fn glue_url() -> Option<String> {
    let document = web_sys::window()?.document()?;
    let link = document.query_selector("link[rel=modulepreload][href]").ok()??;
    Some(link.dyn_into::<web_sys::HtmlLinkElement>().ok()?.href())
}

impl WorkerHost {
    /// Starts the engine of the device stored in `db` in a worker that dials `relay`, and
    /// waits until it runs.
    pub async fn spawn(db: &str, relay: &str) -> Result<Rc<Self>, SpawnError> {
        Self::start(Start { db: db.to_owned(), relay: relay.to_owned(), register: None }).await
    }

    /// Creates an account named `handle` in a worker (this browser its primary device,
    /// named `device_name`), whose engine then runs there; waits until it does. A refusal
    /// (the name is taken, the relay is away) is [`SpawnError::Failed`], explained.
    pub async fn register(
        db: &str,
        relay: &str,
        handle: &str,
        device_name: &str,
    ) -> Result<Rc<Self>, SpawnError> {
        let register = Some((handle.to_owned(), device_name.to_owned()));
        Self::start(Start { db: db.to_owned(), relay: relay.to_owned(), register }).await
    }

    async fn start(start: Start) -> Result<Rc<Self>, SpawnError> {
        let db = start.db.clone();
        let db = db.as_str();
        let unsupported = |why: &str| SpawnError::Unsupported(why.to_owned());
        let glue = glue_url().ok_or_else(|| unsupported("the page does not name its script"))?;
        let script = web_sys::Url::new_with_base("static/engine-worker.js", &glue)
            .map_err(|_| unsupported("no address for the worker script"))?
            .href();
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        let worker = web_sys::Worker::new_with_options(&script, &options)
            .map_err(|_| unsupported("this browser has no module workers"))?;

        let (tx, rx) = oneshot::channel::<Result<(), SpawnError>>();
        let tx = RefCell::new(Some(tx));
        let on_message =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let result = match serde_wasm_bindgen::from_value::<Started>(ev.data()) {
                    Ok(Started::Ready) => Ok(()),
                    Ok(Started::Failed { error, .. }) => Err(SpawnError::Failed(error)),
                    Err(_) => return,
                };
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(result);
                }
            });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        let (etx, erx) = oneshot::channel::<()>();
        let etx = RefCell::new(Some(etx));
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            if let Some(tx) = etx.borrow_mut().take() {
                let _ = tx.send(());
            }
        });
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));

        let message = Object::new();
        let set = |k: &str, v: &JsValue| Reflect::set(&message, &k.into(), v).is_ok();
        let key = seal::remembered(db).map_or(JsValue::NULL, |k| k.crypto_key().clone().into());
        let posted = set("glue", &glue.into())
            && set("module", &wasm_bindgen::module())
            && set("key", &key)
            && serde_wasm_bindgen::to_value(&start).is_ok_and(|s| set("start", &s))
            && worker.post_message(&message).is_ok();
        if !posted {
            worker.terminate();
            return Err(unsupported("the worker could not be started"));
        }
        let outcome = crate::transport::within(START_TIMEOUT, async {
            match select(rx, erx).await {
                Either::Left((Ok(r), _)) => r,
                Either::Left((Err(_), _)) | Either::Right(_) => {
                    Err(unsupported("the worker script failed to load"))
                }
            }
        })
        .await;
        worker.set_onmessage(None);
        worker.set_onerror(None);
        drop((on_message, on_error));
        match outcome {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                worker.terminate();
                return Err(e);
            }
            None => {
                worker.terminate();
                return Err(unsupported("the worker did not start in time"));
            }
        }
        let channel = TabChannel::open(&tab_names(db).1, |_| {})
            .map_err(|e| SpawnError::Failed(e.clone()))?;
        let host = Rc::new(Self {
            worker,
            channel,
            pumping: Cell::new(false),
            again: Cell::new(false),
            me: RefCell::new(std::rc::Weak::new()),
            journal_listener: RefCell::new(None),
        });
        *host.me.borrow_mut() = Rc::downgrade(&host);
        // Entries other tabs write reach the worker through this tab.
        let weak = Rc::downgrade(&host);
        *host.journal_listener.borrow_mut() = crate::journal::on_change(move || {
            if let Some(h) = weak.upgrade() {
                h.kick();
            }
        });
        host.kick();
        // For tests and profiles: this page's engine runs in a worker.
        crate::platform::mark("tandem-engine-worker");
        Ok(host)
    }

    /// Hands the send journal's entries to the worker (one pass at a time; a kick during a
    /// pass makes it go round once more). An entry leaves the journal only once the worker
    /// queued it in the outbox.
    pub fn kick(&self) {
        self.again.set(true);
        if self.pumping.replace(true) {
            return;
        }
        let Some(me) = self.me.borrow().upgrade() else {
            self.pumping.set(false);
            return;
        };
        wasm_bindgen_futures::spawn_local(async move {
            while me.again.replace(false) {
                let entries = crate::journal::entries();
                if entries.is_empty() {
                    break;
                }
                match me.channel.request(Command::QueueTexts { entries }).await {
                    Ok(Outcome::Handled(ids)) => {
                        for id in ids {
                            crate::journal::remove(&id);
                        }
                    }
                    // The entries stay; the next kick tries again.
                    _ => break,
                }
            }
            me.pumping.set(false);
        });
    }

    /// Ends the worker (this device was logged out; its store closes with it).
    pub fn terminate(&self) {
        if let Some(l) = self.journal_listener.borrow_mut().take() {
            l.remove();
        }
        self.worker.terminate();
    }
}

impl Drop for WorkerHost {
    fn drop(&mut self) {
        self.terminate();
    }
}

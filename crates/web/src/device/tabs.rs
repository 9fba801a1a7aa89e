//! One engine per device across tabs: the tab holding the Web Lock runs the engine (the only
//! one that authenticates, decrypts and writes ratchet state); the other tabs are views that
//! read IndexedDB, hear "changed" over a `BroadcastChannel`, and hand their actions to the
//! engine tab over the same channel. When the engine tab closes, its lock is released and a
//! waiting tab takes over.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_channel::oneshot;
use js_sys::{Function, Object, Promise, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::device::{ActionError, Command, ErrorKind, Outcome};
use crate::transport::within;

/// How long a view waits for the engine tab to answer.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// A message between tabs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TabMessage {
    /// The engine stored something: views reload.
    Changed,
    /// This device was logged out: every tab closes the database so it can be deleted.
    LoggedOut,
    /// The device started over (new account key): views reload.
    Reload,
    /// The engine's worker runs again after a reset: the tab that hosts it reopens.
    Restarted,
    /// Something the engine (in its worker) tells every tab.
    Notice(super::engine::Notice),
    /// A view's command.
    Request {
        /// Random, so views never collide.
        id: u64,
        /// What to do.
        command: Command,
    },
    /// The engine tab's answer to request `id`.
    Reply {
        /// The request.
        id: u64,
        /// The outcome, or the failure with its kind.
        result: Result<Outcome, ActionError>,
    },
}

type Pending = HashMap<u64, oneshot::Sender<Result<Outcome, ActionError>>>;

/// This tab's end of the device's channel.
pub struct TabChannel {
    channel: web_sys::BroadcastChannel,
    pending: Rc<RefCell<Pending>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl std::fmt::Debug for TabChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabChannel").finish_non_exhaustive()
    }
}

impl TabChannel {
    /// Opens the channel `name`; `on_message` hears every message that is not a reply to
    /// this tab.
    pub fn open(name: &str, on_message: impl Fn(TabMessage) + 'static) -> Result<Self, String> {
        let channel = web_sys::BroadcastChannel::new(name)
            .map_err(|_| "this browser cannot coordinate tabs".to_owned())?;
        let pending: Rc<RefCell<Pending>> = Rc::default();
        let mine = pending.clone();
        let closure =
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |ev: web_sys::MessageEvent| {
                let Ok(msg) = serde_wasm_bindgen::from_value::<TabMessage>(ev.data()) else {
                    return;
                };
                if let TabMessage::Reply { id, result } = &msg
                    && let Some(tx) = mine.borrow_mut().remove(id)
                {
                    let _ = tx.send(result.clone());
                    return;
                }
                on_message(msg);
            });
        channel.set_onmessage(Some(closure.as_ref().unchecked_ref()));
        Ok(Self { channel, pending, _on_message: closure })
    }

    /// Tells the other tabs.
    pub fn post(&self, msg: &TabMessage) {
        match serde_wasm_bindgen::to_value(msg) {
            Ok(v) => {
                let _ = self.channel.post_message(&v);
            }
            Err(e) => web_sys::console::error_1(&format!("tab message not sent: {e}").into()),
        }
    }

    /// Asks the engine tab to run `command`, and waits for its answer.
    pub async fn request(&self, command: Command) -> Result<Outcome, ActionError> {
        let bytes = crate::rng::random_bytes::<8>();
        // 53 bits: a JavaScript number holds it exactly (serde-wasm-bindgen refuses more).
        let id = u64::from_le_bytes(bytes) >> 11;
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(id, tx);
        self.post(&TabMessage::Request { id, command });
        match within(REPLY_TIMEOUT, rx).await {
            Some(Ok(r)) => r,
            _ => {
                self.pending.borrow_mut().remove(&id);
                Err(ActionError::new(
                    ErrorKind::Unreachable,
                    "The tab running Tandem did not answer. Reload this tab.",
                ))
            }
        }
    }
}

impl Drop for TabChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

/// Asks for the Web Lock `name`. Resolves `true` at once when this tab got it; otherwise
/// resolves `false` and calls `on_acquired` later, when the holder released it. The lock is
/// held until this tab closes. Without Web Locks, every tab runs its own engine.
pub async fn claim(name: &str, on_acquired: impl FnOnce() + 'static) -> bool {
    let Some(locks) = web_sys::window()
        .and_then(|w| Reflect::get(&w.navigator(), &"locks".into()).ok())
        .filter(|l| !l.is_undefined())
    else {
        return true;
    };
    let Ok(request) = Reflect::get(&locks, &"request".into()) else { return true };
    let Ok(request) = request.dyn_into::<Function>() else { return true };
    // A promise that never settles: returning it from the callback holds the lock.
    let forever = || Promise::new(&mut |_, _| {});

    let (got_tx, got_rx) = oneshot::channel::<bool>();
    let got_tx = RefCell::new(Some(got_tx));
    let first = Closure::once(move |lock: JsValue| -> JsValue {
        let acquired = !lock.is_null() && !lock.is_undefined();
        if let Some(tx) = got_tx.borrow_mut().take() {
            let _ = tx.send(acquired);
        }
        if acquired { forever().into() } else { JsValue::UNDEFINED }
    });
    let options = Object::new();
    let _ = Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE);
    if request.call3(&locks, &name.into(), &options, first.as_ref().unchecked_ref()).is_err() {
        return true;
    }
    first.forget();
    let acquired = got_rx.await.unwrap_or(true);
    if acquired {
        return true;
    }
    let later = Closure::once(move |_lock: JsValue| -> JsValue {
        on_acquired();
        forever().into()
    });
    let _ = request.call2(&locks, &name.into(), later.as_ref().unchecked_ref());
    later.forget();
    false
}

//! The start snapshot: what the chat list needs, read by the page's own script
//! (`index.html`) while the app's WebAssembly downloads and compiles, so a signed-in start
//! shows the chats as soon as the app runs instead of after the engine's store opens.
//!
//! The script leaves a promise in `window.__tandemBoot` resolving to `null` (no database,
//! an old schema, any failure) or `{ account, conversations, contactKeys, contactNames }`:
//! the stored account record, the newest chats (the `local` record `recent`, or every
//! `conversations` value when it is missing) and the `contacts`. The app
//! takes it once and removes the promise; the account record holds no credential (the
//! device proves itself to the relay by signing), and its bytes are wiped all the same.

use std::collections::HashMap;

use js_sys::{Array, Reflect, Uint8Array};
use tandem_core::AccountId;
use tandem_core::client::AccountRecord;
use wasm_bindgen::{JsCast, JsValue};

use crate::store::{ConversationSummary, contacts_from_stored};

/// The chat list as stored when the page loaded.
#[derive(Clone, Debug)]
pub struct Boot {
    /// This device's account handle.
    pub handle: String,
    /// The conversations, newest first.
    pub conversations: Vec<ConversationSummary>,
    /// Known handles, by account.
    pub names: HashMap<AccountId, String>,
}

fn field(o: &JsValue, name: &str) -> Option<JsValue> {
    Reflect::get(o, &name.into()).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

fn list(o: &JsValue, name: &str) -> Vec<JsValue> {
    field(o, name).and_then(|v| v.dyn_into::<Array>().ok()).map(|a| a.to_vec()).unwrap_or_default()
}

/// Takes the start snapshot, if the page read one and this browser has an account. Anything
/// that does not parse gives `None`: the app then waits for the engine as before.
pub async fn take() -> Option<Boot> {
    let global = js_sys::global();
    let promise = field(&global, "__tandemBoot")?.dyn_into::<js_sys::Promise>().ok()?;
    let _ =
        Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &"__tandemBoot".into());
    let read = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let account = field(&read, "account")?.dyn_into::<Uint8Array>().ok()?;
    let bytes = zeroize::Zeroizing::new(account.to_vec());
    account.fill(0, 0, account.length());
    let handle = AccountRecord::from_bytes(&bytes).ok()?.handle.clone();
    let mut conversations: Vec<ConversationSummary> = list(&read, "conversations")
        .iter()
        .map(ConversationSummary::from_stored)
        .collect::<Result<_, _>>()
        .ok()?;
    conversations.sort_by_key(|s| std::cmp::Reverse(s.last.id.timestamp));
    let names = contacts_from_stored(&list(&read, "contactKeys"), &list(&read, "contactNames"));
    Some(Boot { handle, conversations, names })
}

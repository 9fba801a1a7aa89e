//! The start snapshot: what the chat list needs, read by the page's own script
//! (`index.html`) while the app's WebAssembly downloads and compiles, so a signed-in start
//! shows the chats as soon as the app runs instead of after the engine's store opens.
//!
//! The script leaves a promise in `window.__tandemBoot` resolving to `null` (no database,
//! an old schema, any failure) or `{ keys, account, recent }`: the `local` store's data key
//! ring and the sealed account record and recent-chats list (see `crate::store::seal`). The
//! app takes it once, removes the promise and opens the values with the data key, a
//! non-extractable `CryptoKey`, so no readable secret or message text sits in a global. A
//! locked browser has no usable key there: it gets no snapshot and asks to be unlocked.

use std::collections::HashMap;

use js_sys::Reflect;
use tandem_core::AccountId;
use wasm_bindgen::{JsCast, JsValue};

use crate::store::{ConversationSummary, open_snapshot};

/// The chat list as stored when the page loaded.
#[derive(Clone, Debug)]
pub struct Boot {
    /// This device's account.
    pub account: AccountId,
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

/// Takes the start snapshot, if the page read one and this browser has an open account.
/// Anything that does not open or parse gives `None`: the app then waits for the engine.
pub async fn take() -> Option<Boot> {
    let global = js_sys::global();
    let promise = field(&global, "__tandemBoot")?.dyn_into::<js_sys::Promise>().ok()?;
    let _ =
        Reflect::delete_property(global.unchecked_ref::<js_sys::Object>(), &"__tandemBoot".into());
    let read = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let (account, chats) =
        open_snapshot(&field(&read, "keys")?, field(&read, "account")?, field(&read, "recent"))
            .await
            .ok()?;
    let mut conversations = Vec::with_capacity(chats.len());
    let mut names = HashMap::new();
    for (summary, name) in chats {
        if let (tandem_core::client::Conversation::Direct(peer), Some(name)) =
            (summary.conversation, name)
        {
            names.insert(peer, name);
        }
        conversations.push(summary);
    }
    conversations.sort_by_key(|s| std::cmp::Reverse(s.last.id.timestamp));
    Some(Boot { account: account.account_id, handle: account.handle.clone(), conversations, names })
}

//! `use_device`: this browser's device record, loaded (or created) from IndexedDB.

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::store::{BrowserDb, DeviceRecord};

/// Where the device record stands.
#[derive(Clone, Debug, PartialEq)]
pub enum DeviceStatus {
    /// Opening the database.
    Loading,
    /// The record, and whether it was created on this load.
    Ready {
        /// The record.
        record: DeviceRecord,
        /// Created just now (first visit from this browser profile).
        created: bool,
        /// Whether the browser promised to keep the data (`navigator.storage.persisted()`).
        persistent: Option<bool>,
    },
    /// Browser storage is unavailable (private mode, disabled, full).
    Failed(String),
}

/// Loads the device record from the `db_name` database, creating it on first use.
pub fn use_device(db_name: &'static str) -> ReadSignal<DeviceStatus> {
    let (status, set_status) = signal(DeviceStatus::Loading);
    spawn_local(async move {
        let result = async {
            let db = BrowserDb::open(db_name).await?;
            let out = db.load_or_create_device(fresh_device).await;
            db.close();
            out
        }
        .await;
        match result {
            Ok((record, created)) => {
                let persistent = persist_storage(created).await;
                set_status.set(DeviceStatus::Ready { record, created, persistent });
            }
            Err(e) => set_status.set(DeviceStatus::Failed(e.to_string())),
        }
    });
    status
}

pub fn fresh_device() -> DeviceRecord {
    DeviceRecord {
        key: String::new(),
        id: hex::encode(crate::rng::random_bytes::<16>()),
        created_at_ms: crate::transport::now_ms(),
        name: crate::platform::this_browser(),
        passkey: None,
    }
}

/// Asks the browser to keep this origin's data (on first creation) and reports whether it
/// will. `None` when the Storage API is missing.
async fn persist_storage(ask: bool) -> Option<bool> {
    let storage = web_sys::window()?.navigator().storage();
    let promise = if ask { storage.persist().ok()? } else { storage.persisted().ok()? };
    wasm_bindgen_futures::JsFuture::from(promise).await.ok()?.as_bool()
}

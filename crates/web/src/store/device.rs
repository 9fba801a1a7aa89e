//! This browser's device record: created once, kept across reloads.

use rexie::{Rexie, TransactionMode};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::StoreError;
use super::migrations::{self, DEVICE_STORE};

const SELF_KEY: &str = "self";

/// The persistent identity of this browser profile as a Tandem device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Always `"self"`: the record's key in the object store.
    pub key: String,
    /// 128 random bits, hex: identifies this browser's local data.
    pub id: String,
    /// When the record was created, milliseconds since the epoch.
    pub created_at_ms: f64,
    /// A human name, e.g. "Chromium on Linux".
    pub name: String,
    /// The passkey that approves links on this (primary) browser, if one was enrolled.
    #[serde(default)]
    pub passkey: Option<Passkey>,
}

impl DeviceRecord {
    /// The id grouped for display: `3f9a 12c0 77de 0b41`.
    pub fn display_id(&self) -> String {
        self.id
            .as_bytes()
            .chunks(4)
            .take(4)
            .map(|c| String::from_utf8_lossy(c))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The `tandem-browser` IndexedDB database.
pub struct BrowserDb {
    db: Rexie,
}

impl BrowserDb {
    /// The database name every Tandem tab of this browser profile shares.
    pub const NAME: &'static str = "tandem-browser";

    /// Opens (creating or upgrading) the database called `name`.
    pub async fn open(name: &str) -> Result<Self, StoreError> {
        Ok(Self { db: migrations::open(name).await? })
    }

    /// The device record, if one was created.
    pub async fn load_device(&self) -> Result<Option<DeviceRecord>, StoreError> {
        let tx = self.db.transaction(&[DEVICE_STORE], TransactionMode::ReadOnly)?;
        let value = tx.store(DEVICE_STORE)?.get(JsValue::from_str(SELF_KEY)).await?;
        tx.done().await?;
        value.map(|v| serde_wasm_bindgen::from_value(v).map_err(Into::into)).transpose()
    }

    /// Returns the device record, creating it with `fresh()` if there is none. Get and put
    /// happen in one read-write transaction, so two tabs starting at once agree on one record.
    /// The flag says whether the record was created now.
    pub async fn load_or_create_device(
        &self,
        fresh: impl FnOnce() -> DeviceRecord,
    ) -> Result<(DeviceRecord, bool), StoreError> {
        let tx = self.db.transaction(&[DEVICE_STORE], TransactionMode::ReadWrite)?;
        let store = tx.store(DEVICE_STORE)?;
        if let Some(existing) = store.get(JsValue::from_str(SELF_KEY)).await? {
            let record: DeviceRecord = serde_wasm_bindgen::from_value(existing)?;
            tx.done().await?;
            return Ok((record, false));
        }
        let record = DeviceRecord { key: SELF_KEY.to_owned(), ..fresh() };
        store.put(&serde_wasm_bindgen::to_value(&record)?, None).await?;
        tx.done().await?;
        Ok((record, true))
    }

    /// Replaces the device record (e.g. after renaming the device).
    pub async fn save_device(&self, record: &DeviceRecord) -> Result<(), StoreError> {
        let tx = self.db.transaction(&[DEVICE_STORE], TransactionMode::ReadWrite)?;
        let record = DeviceRecord { key: SELF_KEY.to_owned(), ..record.clone() };
        tx.store(DEVICE_STORE)?.put(&serde_wasm_bindgen::to_value(&record)?, None).await?;
        tx.done().await?;
        Ok(())
    }

    /// Closes the connection (other tabs keep theirs).
    pub fn close(self) {
        self.db.close();
    }

    /// Deletes the whole database called `name`.
    pub async fn delete(name: &str) -> Result<(), StoreError> {
        Rexie::delete(name).await.map_err(Into::into)
    }
}

/// An enrolled passkey, as this browser's device record keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passkey {
    /// The credential id.
    pub credential_id: Vec<u8>,
    /// The SEC1 uncompressed P-256 public key.
    pub public_key: Vec<u8>,
}

//! Browser storage in IndexedDB through rexie.
//!
//! One database per browser profile, `tandem-browser`, holds this browser's device record.
//! Schema versions are listed in [`migrations`]; a version is never edited once released.

mod device;
#[cfg(target_family = "wasm")]
mod engine;
pub mod migrations;
#[cfg(target_family = "wasm")]
pub mod seal;

use std::error::Error as _;

pub use device::{BrowserDb, DeviceRecord, Passkey};
#[cfg(target_family = "wasm")]
pub use engine::{ConversationSummary, IdbStore, LockState, open_snapshot};

/// A failure of the browser store. JS errors are turned into owned strings at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// IndexedDB refused or failed an operation.
    #[error("browser storage failed: {0}")]
    Backend(String),
    /// A stored record did not have the expected shape.
    #[error("stored {what} is unreadable: {reason}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// What was wrong.
        reason: String,
    },
}

impl From<rexie::Error> for StoreError {
    fn from(e: rexie::Error) -> Self {
        let detail = match e.source() {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        };
        StoreError::Backend(detail)
    }
}

impl From<serde_wasm_bindgen::Error> for StoreError {
    fn from(e: serde_wasm_bindgen::Error) -> Self {
        StoreError::Corrupt { what: "record", reason: e.to_string() }
    }
}

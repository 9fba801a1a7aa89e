//! IndexedDB schema versions of the `tandem-browser` database.
//!
//! | version | change |
//! | --- | --- |
//! | 1 | object store `device` (key path `key`): this browser's device record |
//!
//! Policy: every version only adds object stores or indexes; a released version is never
//! edited. A browser that finds a database newer than [`SCHEMA_VERSION`] (a rollback of the
//! app) gets an error asking to reload the newest version, never a silent downgrade.

use rexie::{ObjectStore, Rexie, RexieBuilder};

use super::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;
/// Object store holding the device record.
pub const DEVICE_STORE: &str = "device";

/// Opens `name` at [`SCHEMA_VERSION`], creating or upgrading it.
pub async fn open(name: &str) -> Result<Rexie, StoreError> {
    let builder: RexieBuilder = Rexie::builder(name)
        .version(SCHEMA_VERSION)
        .add_object_store(ObjectStore::new(DEVICE_STORE).key_path("key"));
    builder.build().await.map_err(|e| match StoreError::from(e) {
        StoreError::Backend(detail) if detail.contains("VersionError") => StoreError::Backend(
            "this browser holds data from a newer version of Tandem; reload the page to get it"
                .into(),
        ),
        other => other,
    })
}

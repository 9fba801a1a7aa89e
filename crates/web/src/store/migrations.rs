//! IndexedDB schema versions of the `tandem-browser` database.
//!
//! | version | change |
//! | --- | --- |
//! | 1 | object store `device` (key path `key`): this browser's device record |
//! | 2 | the engine's stores, out-of-line keys, values are `tandem-core` record bytes: `local`, `identities`, `pre_keys`, `signed_pre_keys`, `kyber_pre_keys`, `kyber_uses`, `sessions`, `sender_keys`, `device_lists`, `messages` (objects `{c, v}`, unique index `by_conversation` on `c`), `outbox`, `conversations` (per conversation: newest message, unread count), `contacts` (account → handle) |
//! | 3 | object store `session_log` (numeric keys): each entry all the session records one batch saved (`tandem_core::store::SessionLogEntry`), replayed over `sessions` and folded back into it by compaction; `session_kyber` (by address): the current state's pending Kyber ciphertext (`DetachedKyber`), which session records written from now on leave out |
//! | 4 | object store `groups` (by group id, hex): each group's newest verified signed state and whether this account accepted it (`tandem_core::client::GroupRecord`) |
//! | 5 | no new store: every engine value is sealed (AES-256-GCM, `crate::store::seal`) under the data key ring kept in `local` as `keys`; `messages` objects are `{c, v}` with `v` sealed; `conversations` and `local`'s `recent` hold sealed protobuf summaries; a version-4 database is sealed in place when it first opens (`IdbStore::open`) |
//!
//! Policy: every version only adds object stores or indexes; a released version is never
//! edited. A browser that finds a database newer than [`SCHEMA_VERSION`] (a rollback of the
//! app) gets an error asking to reload the newest version, never a silent downgrade.

use rexie::{Index, ObjectStore, Rexie, RexieBuilder};

use super::StoreError;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 5;
/// Object store holding the device record.
pub const DEVICE_STORE: &str = "device";
/// This device's identity, registration id and account record.
pub const LOCAL: &str = "local";
/// Trusted identity keys by address.
pub const IDENTITIES: &str = "identities";
/// One-time prekeys by id.
pub const PRE_KEYS: &str = "pre_keys";
/// Signed prekeys by id.
pub const SIGNED_PRE_KEYS: &str = "signed_pre_keys";
/// Kyber prekeys by id.
pub const KYBER_PRE_KEYS: &str = "kyber_pre_keys";
/// Uses of last-resort Kyber prekeys.
pub const KYBER_USES: &str = "kyber_uses";
/// Session records by address.
pub const SESSIONS: &str = "sessions";
/// Session log entries by number (see `IdbStore`'s session log).
pub const SESSION_LOG: &str = "session_log";
/// Per address, the pending Kyber ciphertext detached from its session record.
pub const SESSION_KYBER: &str = "session_kyber";
/// Sender-key records by sender and distribution.
pub const SENDER_KEYS: &str = "sender_keys";
/// Verified device lists by account.
pub const DEVICE_LISTS: &str = "device_lists";
/// Messages by id sort key.
pub const MESSAGES: &str = "messages";
/// Index of [`MESSAGES`] on conversation ‖ id sort key.
pub const MESSAGES_BY_CONVERSATION: &str = "by_conversation";
/// Outgoing messages not yet accepted by the relay.
pub const OUTBOX: &str = "outbox";
/// Per conversation: its newest message and unread count (kept by `save_changes`).
pub const CONVERSATIONS: &str = "conversations";
/// Handles of accounts, by account id.
pub const CONTACTS: &str = "contacts";
/// Groups as last verified, by group id.
pub const GROUPS: &str = "groups";
/// Every store the engine writes.
pub const ENGINE_STORES: &[&str] = &[
    LOCAL,
    IDENTITIES,
    PRE_KEYS,
    SIGNED_PRE_KEYS,
    KYBER_PRE_KEYS,
    KYBER_USES,
    SESSIONS,
    SESSION_LOG,
    SESSION_KYBER,
    SENDER_KEYS,
    DEVICE_LISTS,
    MESSAGES,
    OUTBOX,
    CONVERSATIONS,
    CONTACTS,
    GROUPS,
];

/// Opens `name` at [`SCHEMA_VERSION`], creating or upgrading it.
pub async fn open(name: &str) -> Result<Rexie, StoreError> {
    let mut builder: RexieBuilder = Rexie::builder(name)
        .version(SCHEMA_VERSION)
        .add_object_store(ObjectStore::new(DEVICE_STORE).key_path("key"));
    for store in ENGINE_STORES {
        let mut s = ObjectStore::new(store);
        if *store == MESSAGES {
            s = s.add_index(Index::new(MESSAGES_BY_CONVERSATION, "c").unique(true));
        }
        builder = builder.add_object_store(s);
    }
    builder.build().await.map_err(|e| match StoreError::from(e) {
        StoreError::Backend(detail) if detail.contains("VersionError") => StoreError::Backend(
            "this browser holds data from a newer version of Tandem; reload the page to get it"
                .into(),
        ),
        other => other,
    })
}

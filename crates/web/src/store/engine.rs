//! The engine's store in IndexedDB: protocol state (identity, prekeys, sessions, sender
//! keys) and the engine's records (account, device lists, messages, outbox).
//!
//! Every record is stored as the bytes of its `tandem-core` encoding. `save_changes` writes a
//! whole [`Changes`] batch in one read-write transaction over every store it touches, so a
//! decrypted message, its ratchet state and its records commit together or not at all; it
//! returns only after the transaction committed.
//!
//! Keys: addresses as `name.device` strings, prekey ids as numbers, messages by
//! [`MessageId::sort_key`] (binary keys sort byte-wise, so by time) with an index on
//! conversation ‖ sort key for "the newest N of a conversation".
//!
//! Sessions go to a log first: each batch writes all its changed sessions as one
//! [`SessionLogEntry`] record, because IndexedDB's cost is per record (a 1 000-device fan-out
//! would otherwise write 1 000 records in its transaction). Loads replay the log over the
//! per-address `sessions` records; [`IdbStore::compact_sessions`] folds the log back into
//! them in the background, a few hundred records per transaction.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use async_trait::async_trait;
use js_sys::{Object, Reflect, Uint8Array};
use rexie::{Direction, KeyRange, Rexie, TransactionMode};
use tandem_core::client::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MessageId, MessageRecord,
    OutboxEntry, conversation_to_bytes,
};
use tandem_core::crypto::PublicKey;
use tandem_core::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use tandem_core::sender_keys::SenderKeyRecord;
use tandem_core::session::{DETACHED_KYBER_FIELD, DetachedKyber, SessionRecord};
use tandem_core::store::{
    Changes, ClientStore, IdentityKeyStore, KyberPreKeyStore, PreKeyStore, ProtocolStore,
    SenderKeyName, SenderKeyStore, SessionLogEntry, SessionStore, SignedPreKeyStore, StoreError,
};
use tandem_core::{AccountId, IdentityKey, IdentityKeyPair, ProtocolAddress};
use wasm_bindgen::{JsCast, JsValue};

mod client;
mod protocol;
mod read_model;
mod save;
mod values;

use save::{delete_all, put_all};

use read_model::*;
pub use read_model::{ConversationSummary, contacts_from_stored};
use values::*;

use super::migrations::{
    CONTACTS, CONVERSATIONS, DEVICE_LISTS, GROUPS, IDENTITIES, KYBER_PRE_KEYS, KYBER_USES, LOCAL,
    MESSAGES, MESSAGES_BY_CONVERSATION, OUTBOX, PRE_KEYS, SENDER_KEYS, SESSION_KYBER, SESSION_LOG,
    SESSIONS, SIGNED_PRE_KEYS,
};

/// Most records [`Cache`] keeps before it starts over.
const CACHE_LIMIT: usize = 8_192;

/// Sessions and peer identities this tab read or wrote, so a fan-out to many devices reads
/// each from IndexedDB once. Only the engine tab writes (Web Locks), and every write goes
/// through [`IdbStore::save_changes`], which updates the cache after the commit.
#[derive(Default)]
struct Cache {
    sessions: HashMap<ProtocolAddress, Option<SessionRecord>>,
    identities: HashMap<ProtocolAddress, Option<IdentityKey>>,
}

impl Cache {
    fn make_room(&mut self) {
        if self.sessions.len() + self.identities.len() >= CACHE_LIMIT {
            self.sessions.clear();
            self.identities.clear();
        }
    }
}

/// Log entries that make compaction worth it.
const COMPACT_ENTRIES: usize = 64;
/// Logged bytes that make compaction worth it.
const COMPACT_BYTES: usize = 4 * 1024 * 1024;
/// Session records written per compaction transaction.
const COMPACT_CHUNK: usize = 250;

/// Stored session bytes (secret: ratchet state), shared between the log and compaction.
type SessionBytes = Rc<zeroize::Zeroizing<Vec<u8>>>;

/// Sessions saved in the log and not yet folded back into per-address records.
#[derive(Default)]
struct SessionLog {
    /// Whether the log was read (it is read on the first session load or save).
    loaded: bool,
    /// Per address, the newest logged record bytes (`None`: removed) and the entry that
    /// logged them.
    overlay: HashMap<ProtocolAddress, (Option<SessionBytes>, u64)>,
    /// The entries in the store, oldest first: key and size.
    entries: Vec<(u64, usize)>,
    /// The key of the next entry.
    next_key: u64,
    /// Per address, the base key of the state whose detached Kyber ciphertext is stored.
    kyber: HashMap<ProtocolAddress, Vec<u8>>,
}

impl SessionLog {
    fn apply(&mut self, key: u64, entry: SessionLogEntry, size: usize) {
        // Entries may be applied out of order (two batches finishing together): the newer
        // entry's record wins.
        for (address, record) in entry.items {
            match self.overlay.get(&address) {
                Some((_, newer)) if *newer > key => {}
                _ => {
                    self.overlay.insert(address, (record.map(Rc::new), key));
                }
            }
        }
        let at = self.entries.partition_point(|(k, _)| *k < key);
        self.entries.insert(at, (key, size));
        self.next_key = self.next_key.max(key + 1);
    }
}

/// `tandem-core`'s stores over one IndexedDB database.
pub struct IdbStore {
    /// `None` once closed (this device was logged out and its data is being deleted).
    db: RefCell<Option<Rexie>>,
    identity: IdentityKeyPair,
    registration_id: u32,
    cache: RefCell<Cache>,
    log: RefCell<SessionLog>,
    compacting: std::cell::Cell<bool>,
    /// When work last let the UI thread go (see [`ProtocolStore::pause`]).
    last_yield: std::cell::Cell<f64>,
    /// Whether this start rebuilt the recent-chats record (see `conversations`).
    recent_written: std::cell::Cell<bool>,
}

/// Longest stretch long work holds the UI thread before [`ProtocolStore::pause`] yields.
const WORK_SLICE_MS: f64 = 8.0;

impl Drop for IdbStore {
    fn drop(&mut self) {
        self.close_now();
    }
}

impl std::fmt::Debug for IdbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbStore").finish_non_exhaustive()
    }
}

impl IdbStore {
    /// Opens the database `name`; `None` when it holds no identity yet.
    pub async fn open(name: &str) -> Result<Option<Self>, StoreError> {
        let db = super::migrations::open(name).await.map_err(backend)?;
        let tx = db.transaction(&[LOCAL], TransactionMode::ReadOnly).map_err(rexie_err)?;
        let store = tx.store(LOCAL).map_err(rexie_err)?;
        let identity = store.get(JsValue::from_str(IDENTITY_KEY)).await.map_err(rexie_err)?;
        let registration =
            store.get(JsValue::from_str(REGISTRATION_KEY)).await.map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let (Some(identity), Some(registration)) = (identity, registration) else {
            // Nothing here: let go of the connection at once (a connection left to the
            // garbage collector blocks deleting the database).
            db.close();
            return Ok(None);
        };
        let identity = IdentityKeyPair::from_bytes(&zeroize::Zeroizing::new(value_bytes(
            "identity", &identity,
        )?))
        .map_err(|e| corrupt("identity", e))?;
        let registration = value_bytes("registration id", &registration)?;
        let registration_id = u32::from_be_bytes(
            registration.as_slice().try_into().map_err(|_| corrupt("registration id", "length"))?,
        );
        Ok(Some(Self::with(db, identity, registration_id)))
    }

    /// Opens the database `name` and gives it this identity, replacing any state it held
    /// (a fresh device).
    pub async fn create(
        name: &str,
        identity: IdentityKeyPair,
        registration_id: u32,
    ) -> Result<Self, StoreError> {
        let db = super::migrations::open(name).await.map_err(backend)?;
        let all = super::migrations::ENGINE_STORES;
        let tx = db.transaction(all, TransactionMode::ReadWrite).map_err(rexie_err)?;
        for s in all {
            tx.store(s).map_err(rexie_err)?.clear().await.map_err(rexie_err)?;
        }
        let local = tx.store(LOCAL).map_err(rexie_err)?;
        let secret = identity.serialize();
        local
            .put(&bytes_value(&secret), Some(&JsValue::from_str(IDENTITY_KEY)))
            .await
            .map_err(rexie_err)?;
        local
            .put(
                &bytes_value(&registration_id.to_be_bytes()),
                Some(&JsValue::from_str(REGISTRATION_KEY)),
            )
            .await
            .map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let store = Self::with(db, identity, registration_id);
        store.log.borrow_mut().loaded = true;
        Ok(store)
    }

    fn with(db: Rexie, identity: IdentityKeyPair, registration_id: u32) -> Self {
        Self {
            db: RefCell::new(Some(db)),
            identity,
            registration_id,
            cache: RefCell::default(),
            log: RefCell::default(),
            compacting: std::cell::Cell::new(false),
            last_yield: std::cell::Cell::new(js_sys::Date::now()),
            recent_written: std::cell::Cell::new(false),
        }
    }

    /// Reads the session log, once.
    async fn load_log(&self) -> Result<(), StoreError> {
        if self.log.borrow().loaded {
            return Ok(());
        }
        let tx = self.transaction(&[SESSION_LOG], TransactionMode::ReadOnly)?;
        let rows = tx
            .store(SESSION_LOG)
            .map_err(rexie_err)?
            .scan(None, None, None, None)
            .await
            .map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let mut parsed = Vec::with_capacity(rows.len());
        for (k, v) in &rows {
            let key = k.as_f64().ok_or_else(|| corrupt("session log", "key is not a number"))?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "our keys")]
            let key = key.max(0.0) as u64;
            let bytes = zeroize::Zeroizing::new(value_bytes("session log", v)?);
            let entry =
                SessionLogEntry::from_bytes(&bytes).map_err(|e| corrupt("session log", e))?;
            parsed.push((key, entry, bytes.len()));
        }
        let mut log = self.log.borrow_mut();
        // Another load finished first: it read the same entries, and saves since are in it.
        if !log.loaded {
            for (key, entry, size) in parsed {
                log.apply(key, entry, size);
            }
            log.loaded = true;
        }
        Ok(())
    }

    /// Parses stored session bytes, fetching the detached Kyber ciphertext when they need it.
    async fn parse_session(
        &self,
        address: &ProtocolAddress,
        bytes: &[u8],
    ) -> Result<SessionRecord, StoreError> {
        match SessionRecord::from_detached_bytes(bytes, None) {
            Err(tandem_core::wire::WireError::MissingField { field, .. })
                if field == DETACHED_KYBER_FIELD =>
            {
                let detached = self
                    .load("session", SESSION_KYBER, address_key(address), DetachedKyber::from_bytes)
                    .await?
                    .ok_or_else(|| corrupt("session", "its Kyber ciphertext is missing"))?;
                let record = SessionRecord::from_detached_bytes(bytes, Some(&detached))
                    .map_err(|e| corrupt("session", e))?;
                self.log.borrow_mut().kyber.insert(address.clone(), detached.base_key);
                Ok(record)
            }
            other => other.map_err(|e| corrupt("session", e)),
        }
    }

    /// Whether the session log has grown enough that [`compact_sessions`](Self::compact_sessions)
    /// should run.
    pub fn wants_compaction(&self) -> bool {
        let log = self.log.borrow();
        !self.compacting.get()
            && (log.entries.len() >= COMPACT_ENTRIES
                || log.entries.iter().map(|(_, n)| n).sum::<usize>() >= COMPACT_BYTES)
    }

    /// Folds the session log back into per-address records, [`COMPACT_CHUNK`] per
    /// transaction, then deletes the entries it folded (in the last transaction). Saves may
    /// run meanwhile: what they log stays in the log. A crash part way leaves the log whole,
    /// and replaying it gives the same sessions. Returns how many sessions were written.
    pub async fn compact_sessions(&self) -> Result<usize, StoreError> {
        self.load_log().await?;
        if self.compacting.replace(true) {
            return Ok(0);
        }
        let result = self.compact_inner().await;
        self.compacting.set(false);
        result
    }

    async fn compact_inner(&self) -> Result<usize, StoreError> {
        let (upto, items) = {
            let log = self.log.borrow();
            let Some(&(upto, _)) = log.entries.last() else { return Ok(0) };
            let items: Vec<(ProtocolAddress, Option<SessionBytes>)> = log
                .overlay
                .iter()
                .filter(|(_, (_, key))| *key <= upto)
                .map(|(a, (r, _))| (a.clone(), r.clone()))
                .collect();
            (upto, items)
        };
        let chunks: Vec<_> = items.chunks(COMPACT_CHUNK).collect();
        let last = chunks.len().saturating_sub(1);
        for i in 0..chunks.len().max(1) {
            let chunk = chunks.get(i).copied().unwrap_or(&[]);
            let (mut puts, mut deletes) = (Vec::new(), Vec::new());
            for (address, record) in chunk {
                match record {
                    Some(bytes) => puts.push((address_key(address), bytes_value(bytes))),
                    None => deletes.push(address_key(address)),
                }
            }
            let folded = KeyRange::upper_bound(&JsValue::from(upto as f64), Some(false))
                .map_err(|e| backend(format!("key range: {e}")))?;
            let tx = self.transaction(&[SESSIONS, SESSION_LOG], TransactionMode::ReadWrite)?;
            let result = async {
                delete_all(&tx, SESSIONS, deletes).await?;
                put_all(&tx, SESSIONS, puts).await?;
                if i == last {
                    tx.store(SESSION_LOG)
                        .map_err(rexie_err)?
                        .delete(folded.into())
                        .await
                        .map_err(rexie_err)?;
                }
                Ok::<_, StoreError>(())
            }
            .await;
            match result {
                Ok(()) => tx.done().await.map_err(rexie_err)?,
                Err(e) => {
                    let _ = tx.abort().await;
                    return Err(e);
                }
            };
        }
        let mut log = self.log.borrow_mut();
        log.overlay.retain(|_, (_, key)| *key > upto);
        log.entries.retain(|(key, _)| *key > upto);
        Ok(items.len())
    }

    /// Closes the database (tests delete it afterwards).
    pub fn close(self) {
        self.close_now();
    }

    /// Closes the connection at once, so the database can be deleted; every later use fails.
    pub fn close_now(&self) {
        if let Some(db) = self.db.borrow_mut().take() {
            db.close();
        }
    }

    fn transaction(
        &self,
        stores: &[&str],
        mode: TransactionMode,
    ) -> Result<rexie::Transaction, StoreError> {
        let db = self.db.borrow();
        let db = db.as_ref().ok_or_else(|| backend("this browser's data was deleted"))?;
        db.transaction(stores, mode).map_err(rexie_err)
    }

    async fn get(&self, store: &str, key: JsValue) -> Result<Option<JsValue>, StoreError> {
        let tx = self.transaction(&[store], TransactionMode::ReadOnly)?;
        let v = tx.store(store).map_err(rexie_err)?.get(key).await.map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        Ok(v)
    }

    /// Loads the record under `key` and parses it; a record that does not parse is
    /// `Corrupt` with `what`.
    async fn load<T, E: std::fmt::Display>(
        &self,
        what: &'static str,
        store: &str,
        key: JsValue,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError> {
        let Some(v) = self.get(store, key).await? else { return Ok(None) };
        let bytes = zeroize::Zeroizing::new(value_bytes(what, &v)?);
        parse(&bytes).map(Some).map_err(|e| corrupt(what, e))
    }

    async fn count(&self, store: &str) -> Result<u32, StoreError> {
        let tx = self.transaction(&[store], TransactionMode::ReadOnly)?;
        let n = tx.store(store).map_err(rexie_err)?.count(None).await.map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        Ok(n)
    }

    /// Every conversation with its newest message and unread count, newest first.
    pub async fn conversations(&self) -> Result<Vec<ConversationSummary>, StoreError> {
        let tx = self.transaction(&[CONVERSATIONS], TransactionMode::ReadOnly)?;
        let rows = tx
            .store(CONVERSATIONS)
            .map_err(rexie_err)?
            .scan(None, None, None, None)
            .await
            .map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let mut out = rows
            .iter()
            .map(|(_, v)| ConversationSummary::from_stored(v))
            .collect::<Result<Vec<_>, StoreError>>()?;
        if !self.recent_written.replace(true) {
            // A database from before the recent list, or one a crash left behind: rebuild it
            // from the whole list once per start.
            let names = self.contacts().await?;
            let fresh: Vec<Fresh> = rows
                .iter()
                .zip(&out)
                .filter_map(|((k, v), s)| {
                    let key = value_bytes("conversation key", k).ok()?;
                    let name = match s.conversation {
                        Conversation::Direct(peer) => names.get(&peer).cloned(),
                        Conversation::Group(_) => None,
                    };
                    Some(Fresh::new(key, v.clone(), &s.last, name))
                })
                .collect();
            let tx = self.transaction(&[LOCAL], TransactionMode::ReadWrite)?;
            put_all(&tx, LOCAL, vec![(JsValue::from_str(RECENT_KEY), merge_recent(None, &fresh))])
                .await?;
            tx.done().await.map_err(rexie_err)?;
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.last.id.timestamp));
        Ok(out)
    }

    /// The newest chats as the start snapshot holds them (newest first, at most
    /// [`RECENT_LEN`]) with the peer's handle where known; empty before the first save or
    /// rebuild.
    pub async fn recent(&self) -> Result<Vec<(ConversationSummary, Option<String>)>, StoreError> {
        let Some(v) = self.get(LOCAL, JsValue::from_str(RECENT_KEY)).await? else {
            return Ok(Vec::new());
        };
        let list =
            v.dyn_into::<js_sys::Array>().map_err(|_| corrupt("recent chats", "not a list"))?;
        list.iter()
            .map(|e| {
                let name = Reflect::get(&e, &"n".into()).ok().and_then(|n| n.as_string());
                Ok((ConversationSummary::from_stored(&e)?, name))
            })
            .collect()
    }

    /// The handle of an account, if known.
    pub async fn contact(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        Ok(self.get(CONTACTS, account_key(account)).await?.and_then(|v| v.as_string()))
    }

    /// Every known handle, by account.
    pub async fn contacts(&self) -> Result<HashMap<AccountId, String>, StoreError> {
        let tx = self.transaction(&[CONTACTS], TransactionMode::ReadOnly)?;
        let store = tx.store(CONTACTS).map_err(rexie_err)?;
        let rows = store.scan(None, None, None, None).await.map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let (keys, values): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
        Ok(contacts_from_stored(&keys, &values))
    }

    /// Remembers the handle of an account.
    pub async fn save_contact(&self, account: &AccountId, handle: &str) -> Result<(), StoreError> {
        let tx = self.transaction(&[CONTACTS, LOCAL], TransactionMode::ReadWrite)?;
        tx.store(CONTACTS)
            .map_err(rexie_err)?
            .put(&JsValue::from_str(handle), Some(&account_key(account)))
            .await
            .map_err(rexie_err)?;
        // The start snapshot's entry for this chat, if it has one, gets the name too.
        let locals = tx.store(LOCAL).map_err(rexie_err)?;
        if let Some(recent) = locals.get(JsValue::from_str(RECENT_KEY)).await.map_err(rexie_err)?
            && let Ok(list) = recent.dyn_into::<js_sys::Array>()
        {
            let peer = account_key(account);
            let mut changed = false;
            for e in list.iter() {
                if Reflect::get(&e, &"a".into()).ok().as_ref() == Some(&peer) {
                    let _ = Reflect::set(&e, &"n".into(), &JsValue::from_str(handle));
                    changed = true;
                }
            }
            if changed {
                put_all(&tx, LOCAL, vec![(JsValue::from_str(RECENT_KEY), list.into())]).await?;
            }
        }
        tx.done().await.map_err(rexie_err)?;
        Ok(())
    }

    /// How many messages are stored (for status displays and benchmarks).
    pub async fn count_messages(&self) -> Result<u32, StoreError> {
        self.count(MESSAGES).await
    }
}

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
use std::collections::{BTreeMap, HashMap, HashSet};
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
    Chain, ChainPosition, Changes, ClientChanges, ClientStore, IdentityKeyStore, KyberPreKeyStore,
    PreKeyStore, ProtocolStore, SenderKeyName, SenderKeyStore, SessionLogEntry, SessionStore,
    SignedPreKeyStore, StoreError,
};
use tandem_core::{AccountId, IdentityKey, IdentityKeyPair, ProtocolAddress};
use wasm_bindgen::{JsCast, JsValue};

mod client;
mod migrate;
mod protocol;
mod read_model;
mod save;
mod values;

use save::{delete_all, put_all};

pub use read_model::ConversationSummary;
use read_model::*;
use values::*;

use crate::store::seal::{DataKey, Ring, SealError};

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
///
/// Device lists, sender keys, groups and the outbox are kept too, but only by the engine's
/// own store ([`IdbStore::remember_engine_records`]): a view's store reads them for what it
/// shows, and the engine (another store, maybe in a worker) writes them.
#[derive(Default)]
struct Cache {
    sessions: HashMap<ProtocolAddress, Option<SessionRecord>>,
    identities: HashMap<ProtocolAddress, Option<IdentityKey>>,
    /// `None` until enabled; then every record of these kinds read or written.
    remembered: Option<Remembered>,
}

/// The engine store's memory of the records a group send reads for every message.
#[derive(Default)]
struct Remembered {
    device_lists: HashMap<AccountId, Option<DeviceListRecord>>,
    sender_keys: HashMap<SenderKeyName, Option<SenderKeyRecord>>,
    groups: HashMap<[u8; 16], Option<GroupRecord>>,
    /// The whole outbox by message key, once read.
    outbox: Option<BTreeMap<[u8; 25], OutboxEntry>>,
    /// This device's messages written while queued (what marking them sent reads), until
    /// written otherwise.
    queued: HashMap<MessageId, MessageRecord>,
}

impl Remembered {
    fn len(&self) -> usize {
        self.device_lists.len()
            + self.sender_keys.len()
            + self.groups.len()
            + self.outbox.as_ref().map_or(0, BTreeMap::len)
            + self.queued.len()
    }
}

impl Cache {
    fn make_room(&mut self) {
        let remembered = self.remembered.as_ref().map_or(0, Remembered::len);
        if self.sessions.len() + self.identities.len() + remembered >= CACHE_LIMIT {
            self.sessions.clear();
            self.identities.clear();
            if let Some(r) = self.remembered.as_mut() {
                *r = Remembered::default();
            }
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

/// Whether a store holds data, and whether its data key is locked.
#[derive(Clone, Debug)]
pub enum LockState {
    /// No data key: nothing stored yet (or data from before encryption at rest).
    Empty,
    /// The data key is usable as stored.
    Open,
    /// The app lock is on; its `lock` description (see [`crate::lock`]).
    Locked(JsValue),
}

/// Opens the start snapshot the page's script read (the `keys`, `account` and `recent`
/// values of `local`): this account's record and the newest chats, with handles where known.
/// Fails when the store is locked.
pub async fn open_snapshot(
    ring: &JsValue,
    account: JsValue,
    recent: Option<JsValue>,
) -> Result<(AccountRecord, Vec<(ConversationSummary, Option<String>)>), StoreError> {
    let key = match Ring::from_stored(ring).map_err(seal_err)? {
        Ring::Open { key, .. } => key,
        Ring::Locked { .. } => return Err(backend(SealError::Locked)),
    };
    let mut rows = vec![(JsValue::from_str(ACCOUNT_KEY), account)];
    if let Some(r) = recent {
        rows.push((JsValue::from_str(RECENT_KEY), r));
    }
    let opened = open_rows(&key, "start snapshot", LOCAL, &rows).await?;
    let account = AccountRecord::from_bytes(&opened[0]).map_err(|e| corrupt("account", e))?;
    let chats = match opened.get(1) {
        Some(bytes) => StoredRecent::parse(bytes)?.summaries()?,
        None => Vec::new(),
    };
    Ok((account, chats))
}

/// `tandem-core`'s stores over one IndexedDB database.
pub struct IdbStore {
    /// The database's name.
    name: String,
    /// `None` once closed (this device was logged out and its data is being deleted).
    db: RefCell<Option<Rexie>>,
    identity: IdentityKeyPair,
    registration_id: u32,
    cache: RefCell<Cache>,
    log: RefCell<SessionLog>,
    compacting: std::cell::Cell<bool>,
    /// When work last let the UI thread go (see [`ProtocolStore::pause`]).
    last_yield: std::cell::Cell<f64>,
    /// Seals and opens every value (see [`crate::store::seal`]).
    key: DataKey,
    /// Held by each write that reads before it writes (values are opened and sealed outside
    /// the transaction), so two such writes never interleave.
    writing: futures_util::lock::Mutex<()>,
    /// The read model as stored (see [`save::ModelCache`]).
    model: RefCell<save::ModelCache>,
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
    /// Opens the database `name`; `None` when it holds no identity yet. The data key is the
    /// one this page unlocked, or the stored one when the app lock is off; a locked store
    /// gives [`SealError::Locked`] as the backend error (callers ask
    /// [`IdbStore::lock_state`] first).
    pub async fn open(name: &str) -> Result<Option<Self>, StoreError> {
        let db = super::migrations::open(name).await.map_err(backend)?;
        let tx = db.transaction(&[LOCAL], TransactionMode::ReadOnly).map_err(rexie_err)?;
        let store = tx.store(LOCAL).map_err(rexie_err)?;
        let ring = store.get(JsValue::from_str(KEYS_KEY)).await.map_err(rexie_err)?;
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
        let key = match (crate::store::seal::remembered(name), ring) {
            (Some(key), Some(_)) => key,
            (None, Some(ring)) => match Ring::from_stored(&ring).map_err(seal_err)? {
                Ring::Open { key, .. } => key,
                Ring::Locked { .. } => {
                    db.close();
                    return Err(StoreError::Backend(Box::new(SealError::Locked)));
                }
            },
            (_, None) => {
                // Written before encryption at rest: seal it now, then open it as usual.
                let sealed = Self::seal_clear_database(&db).await;
                db.close();
                sealed?;
                return Box::pin(Self::open(name)).await;
            }
        };
        let rows = [
            (JsValue::from_str(IDENTITY_KEY), identity),
            (JsValue::from_str(REGISTRATION_KEY), registration),
        ];
        let opened = match open_rows(&key, "identity", LOCAL, &rows).await {
            Ok(o) => o,
            Err(e) => {
                db.close();
                return Err(e);
            }
        };
        let identity =
            IdentityKeyPair::from_bytes(&opened[0]).map_err(|e| corrupt("identity", e))?;
        let registration_id = u32::from_be_bytes(
            opened[1].as_slice().try_into().map_err(|_| corrupt("registration id", "length"))?,
        );
        Ok(Some(Self::with(db, identity, registration_id, key)))
    }

    /// Opens the database `name` and gives it this identity, replacing any state it held (a
    /// fresh device, or new keys for this one). The data key ring stays when this page holds
    /// its key (so an app lock survives starting over with new keys); otherwise a fresh data
    /// key is made.
    pub async fn create(
        name: &str,
        identity: IdentityKeyPair,
        registration_id: u32,
    ) -> Result<Self, StoreError> {
        let kept = match Self::read_ring(name).await {
            Ok(Some(ring)) => ring
                .data_key()
                .cloned()
                .or_else(|| crate::store::seal::remembered(name))
                .map(|key| (key, ring.to_stored())),
            _ => None,
        };
        let (key, stored_ring) = match kept {
            Some(k) => k,
            None => {
                let (ring, stored) = Ring::generate().await.map_err(seal_err)?;
                let key =
                    ring.data_key().cloned().ok_or_else(|| backend("a fresh key is locked"))?;
                crate::store::seal::forget(name);
                (key, stored)
            }
        };
        let mut sealing = Sealing::default();
        sealing.put(LOCAL, JsValue::from_str(IDENTITY_KEY), identity.serialize().to_vec());
        sealing.put(
            LOCAL,
            JsValue::from_str(REGISTRATION_KEY),
            registration_id.to_be_bytes().to_vec(),
        );
        let mut sealed = sealing.seal(&key).await?;
        let db = super::migrations::open(name).await.map_err(backend)?;
        let all = super::migrations::ENGINE_STORES;
        let tx = db.transaction(all, TransactionMode::ReadWrite).map_err(rexie_err)?;
        for s in all {
            tx.store(s).map_err(rexie_err)?.clear().await.map_err(rexie_err)?;
        }
        let mut local = sealed.take(LOCAL);
        local.push((JsValue::from_str(KEYS_KEY), stored_ring));
        put_all(&tx, LOCAL, local).await?;
        tx.done().await.map_err(rexie_err)?;
        let store = Self::with(db, identity, registration_id, key);
        store.log.borrow_mut().loaded = true;
        Ok(store)
    }

    /// A record of one of the kinds the engine's store remembers (`map` picks which): from
    /// memory when remembered, else by `load`, then remembered. Without the memory, `load`.
    async fn remembered_or<K, V>(
        &self,
        map: fn(&mut Remembered) -> &mut HashMap<K, Option<V>>,
        key: &K,
        load: impl Future<Output = Result<Option<V>, StoreError>>,
    ) -> Result<Option<V>, StoreError>
    where
        K: std::hash::Hash + Eq + Clone,
        V: Clone,
    {
        if let Some(known) =
            self.cache.borrow_mut().remembered.as_mut().and_then(|r| map(r).get(key))
        {
            return Ok(known.clone());
        }
        let loaded = load.await?;
        let mut cache = self.cache.borrow_mut();
        cache.make_room();
        match cache.remembered.as_mut() {
            // A save that committed meanwhile has put the newer record: keep it.
            Some(r) => Ok(map(r).entry(key.clone()).or_insert(loaded).clone()),
            None => Ok(loaded),
        }
    }

    /// Keeps the device lists, sender keys, groups and outbox this store reads and writes in
    /// memory (a group send reads every member's list, the group, its sender key and the
    /// outbox for every message). Only for the store the engine writes through: another
    /// store's writes would not reach this one's memory.
    pub fn remember_engine_records(&self) {
        let mut cache = self.cache.borrow_mut();
        if cache.remembered.is_none() {
            cache.remembered = Some(Remembered::default());
        }
    }

    fn with(db: Rexie, identity: IdentityKeyPair, registration_id: u32, key: DataKey) -> Self {
        Self {
            name: db.name(),
            db: RefCell::new(Some(db)),
            identity,
            registration_id,
            cache: RefCell::default(),
            log: RefCell::default(),
            compacting: std::cell::Cell::new(false),
            last_yield: std::cell::Cell::new(js_sys::Date::now()),
            key,
            writing: futures_util::lock::Mutex::new(()),
            model: RefCell::default(),
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The data key ring of the store `name`, if it has one.
    pub async fn read_ring(name: &str) -> Result<Option<Ring>, StoreError> {
        let db = super::migrations::open(name).await.map_err(backend)?;
        let result = async {
            let tx = db.transaction(&[LOCAL], TransactionMode::ReadOnly).map_err(rexie_err)?;
            let v = tx
                .store(LOCAL)
                .map_err(rexie_err)?
                .get(JsValue::from_str(KEYS_KEY))
                .await
                .map_err(rexie_err)?;
            tx.done().await.map_err(rexie_err)?;
            Ok::<_, StoreError>(v)
        }
        .await;
        db.close();
        result?.map(|v| Ring::from_stored(&v).map_err(seal_err)).transpose()
    }

    /// Replaces the data key ring of the store `name` (locking or unlocking it; the data key
    /// itself stays the same, so nothing is sealed again).
    pub async fn write_ring(name: &str, ring: &Ring) -> Result<(), StoreError> {
        let db = super::migrations::open(name).await.map_err(backend)?;
        let result = async {
            let tx = db.transaction(&[LOCAL], TransactionMode::ReadWrite).map_err(rexie_err)?;
            put_all(&tx, LOCAL, vec![(JsValue::from_str(KEYS_KEY), ring.to_stored())]).await?;
            tx.done().await.map_err(rexie_err).map(drop)
        }
        .await;
        db.close();
        result
    }

    /// Whether the store `name` holds data and whether it is locked.
    pub async fn lock_state(name: &str) -> Result<LockState, StoreError> {
        Ok(match Self::read_ring(name).await? {
            None => LockState::Empty,
            Some(Ring::Open { .. }) => LockState::Open,
            Some(Ring::Locked { lock, .. }) => LockState::Locked(lock),
        })
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
        let opened = open_rows(&self.key, "session log", SESSION_LOG, &rows).await?;
        let mut parsed = Vec::with_capacity(rows.len());
        for ((k, _), bytes) in rows.iter().zip(opened) {
            let key = k.as_f64().ok_or_else(|| corrupt("session log", "key is not a number"))?;
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "our keys")]
            let key = key.max(0.0) as u64;
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
            let (mut sealing, mut deletes) = (Sealing::default(), Vec::new());
            for (address, record) in chunk {
                match record {
                    Some(bytes) => sealing.put(SESSIONS, address_key(address), bytes.to_vec()),
                    None => deletes.push(address_key(address)),
                }
            }
            let puts = sealing.seal(&self.key).await?.take(SESSIONS);
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
        let Some(bytes) = self.get_open(what, store, key).await? else { return Ok(None) };
        parse(&bytes).map(Some).map_err(|e| corrupt(what, e))
    }

    /// The opened value under `key`.
    async fn get_open(
        &self,
        what: &'static str,
        store: &str,
        key: JsValue,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, StoreError> {
        let Some(v) = self.get(store, key.clone()).await? else { return Ok(None) };
        let mut opened = open_rows(&self.key, what, store, &[(key, v)]).await?;
        Ok(opened.pop())
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
        let opened = open_rows(&self.key, "conversation", CONVERSATIONS, &rows).await?;
        let summaries =
            opened.iter().map(|b| StoredSummary::parse(b)).collect::<Result<Vec<_>, _>>()?;
        // Read only: the chat list's read model has one writer, `save_changes`.
        let mut out =
            summaries.iter().map(StoredSummary::read).collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|s| std::cmp::Reverse(s.last.id.timestamp));
        Ok(out)
    }

    /// The stored recent list.
    async fn stored_recent(&self) -> Result<Option<StoredRecent>, StoreError> {
        self.load("recent chats", LOCAL, JsValue::from_str(RECENT_KEY), StoredRecent::parse).await
    }

    /// The newest chats as the start snapshot holds them (newest first, at most
    /// [`RECENT_LEN`]) with the peer's handle where known; empty before the first save or
    /// rebuild.
    pub async fn recent(&self) -> Result<Vec<(ConversationSummary, Option<String>)>, StoreError> {
        match self.stored_recent().await? {
            Some(r) => r.summaries(),
            None => Ok(Vec::new()),
        }
    }

    /// The handle of an account, if known.
    pub async fn contact(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        let bytes = self.get_open("contact", CONTACTS, account_key(account)).await?;
        Ok(bytes.and_then(|b| String::from_utf8(b.to_vec()).ok()))
    }

    /// Every known handle, by account.
    pub async fn contacts(&self) -> Result<HashMap<AccountId, String>, StoreError> {
        let tx = self.transaction(&[CONTACTS], TransactionMode::ReadOnly)?;
        let store = tx.store(CONTACTS).map_err(rexie_err)?;
        let rows = store.scan(None, None, None, None).await.map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let opened = open_rows(&self.key, "contact", CONTACTS, &rows).await?;
        Ok(rows
            .iter()
            .zip(opened)
            .filter_map(|((k, _), v)| {
                let id = AccountId::from_bytes(&hex::decode(k.as_string()?).ok()?).ok()?;
                Some((id, String::from_utf8(v.to_vec()).ok()?))
            })
            .collect())
    }

    /// How many messages are stored (for status displays and benchmarks).
    pub async fn count_messages(&self) -> Result<u32, StoreError> {
        self.count(MESSAGES).await
    }
}

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

use super::migrations::{
    CONTACTS, CONVERSATIONS, DEVICE_LISTS, GROUPS, IDENTITIES, KYBER_PRE_KEYS, KYBER_USES, LOCAL,
    MESSAGES, MESSAGES_BY_CONVERSATION, OUTBOX, PRE_KEYS, SENDER_KEYS, SESSION_KYBER, SESSION_LOG,
    SESSIONS, SIGNED_PRE_KEYS,
};

const IDENTITY_KEY: &str = "identity";
const REGISTRATION_KEY: &str = "registration";
const ACCOUNT_KEY: &str = "account";
/// Key in `local` of the newest chats, for the page's start script: an array of up to
/// [`RECENT_LEN`] conversation summaries `{k, m, u, a}`, newest first (`k` the conversation
/// key, `t` its newest message's timestamp, `a` a direct chat's peer as its `contacts` key,
/// `n` its handle when known).
const RECENT_KEY: &str = "recent";
/// How many chats the start snapshot holds (the chat list's first screen).
pub const RECENT_LEN: usize = 50;

/// A summary just written, for [`merge_recent`].
struct Fresh {
    /// The conversation key.
    key: Vec<u8>,
    /// The stored summary value.
    value: JsValue,
    /// Its newest message's timestamp.
    at: u64,
    /// A direct chat's peer.
    peer: Option<AccountId>,
    /// The peer's handle, when known.
    name: Option<String>,
}

impl Fresh {
    fn new(key: Vec<u8>, value: JsValue, last: &MessageRecord, name: Option<String>) -> Self {
        let peer = match last.conversation {
            Conversation::Direct(peer) => Some(peer),
            Conversation::Group(_) => None,
        };
        Self { key, value, at: last.id.timestamp, peer, name }
    }
}

/// Merges freshly written summaries `(key, summary value, newest timestamp)` into the stored
/// recent list; newest first, at most [`RECENT_LEN`]. Ordering changes only with new
/// messages, and every new message rewrites its summary here, so a chat that fell off the
/// list returns as soon as it is among the newest again.
fn merge_recent(stored: Option<JsValue>, fresh: &[Fresh]) -> JsValue {
    let mut entries: Vec<(Vec<u8>, u64, JsValue)> = stored
        .and_then(|v| v.dyn_into::<js_sys::Array>().ok())
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    let key = value_bytes("recent", &Reflect::get(&e, &"k".into()).ok()?).ok()?;
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a stored timestamp"
                    )]
                    let at = Reflect::get(&e, &"t".into()).ok()?.as_f64()? as u64;
                    Some((key, at, e))
                })
                .collect()
        })
        .unwrap_or_default();
    for Fresh { key, value, at, peer, name } in fresh {
        entries.retain(|(k, _, _)| k != key);
        let e = Object::new();
        let _ = Reflect::set(&e, &"k".into(), &bytes_value(key));
        #[allow(clippy::cast_precision_loss, reason = "millisecond timestamps fit an f64 exactly")]
        let _ = Reflect::set(&e, &"t".into(), &JsValue::from(*at as f64));
        // A direct chat's peer, as the `contacts` key, so the start script reads only the
        // names it shows.
        if let Some(peer) = peer {
            let _ = Reflect::set(&e, &"a".into(), &account_key(peer));
        }
        if let Some(n) = name {
            let _ = Reflect::set(&e, &"n".into(), &JsValue::from_str(n));
        }
        for field in ["m", "u"] {
            let _ = Reflect::set(
                &e,
                &field.into(),
                &Reflect::get(value, &field.into()).unwrap_or_default(),
            );
        }
        entries.push((key.clone(), *at, e.into()));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.1));
    entries.truncate(RECENT_LEN);
    entries.into_iter().map(|(_, _, e)| e).collect::<js_sys::Array>().into()
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::backend(e.to_string())
}

fn corrupt(what: &'static str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what, reason: reason.to_string() }
}

fn rexie_err(e: rexie::Error) -> StoreError {
    backend(super::StoreError::from(e))
}

fn bytes_value(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

fn value_bytes(what: &'static str, v: &JsValue) -> Result<Vec<u8>, StoreError> {
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(a.to_vec());
    }
    if let Some(b) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(b).to_vec());
    }
    Err(corrupt(what, "not bytes"))
}

fn address_key(a: &ProtocolAddress) -> JsValue {
    JsValue::from_str(&a.to_string())
}

fn sender_key_key(n: &SenderKeyName) -> JsValue {
    JsValue::from_str(&format!("{}/{}", n.sender, hex::encode(n.distribution_id.0)))
}

fn kyber_use_key(kyber: KyberPreKeyId, signed: SignedPreKeyId, base_key: &PublicKey) -> JsValue {
    JsValue::from_str(&format!("{}/{}/{}", kyber.0, signed.0, hex::encode(base_key.serialize())))
}

fn account_key(a: &AccountId) -> JsValue {
    JsValue::from_str(&a.to_string())
}

fn message_key(id: &MessageId) -> JsValue {
    bytes_value(&id.sort_key())
}

fn conversation_key(c: &Conversation, id_key: &[u8]) -> JsValue {
    let mut k = conversation_to_bytes(c);
    k.extend_from_slice(id_key);
    bytes_value(&k)
}

/// The stored object of a message: its bytes and the conversation index key.
fn message_value(m: &MessageRecord) -> Result<JsValue, StoreError> {
    let o = Object::new();
    let ck = conversation_key(&m.conversation, &m.id.sort_key());
    Reflect::set(&o, &"c".into(), &ck).map_err(|_| backend("cannot build a message object"))?;
    Reflect::set(&o, &"v".into(), &bytes_value(&m.to_bytes()))
        .map_err(|_| backend("cannot build a message object"))?;
    Ok(o.into())
}

fn message_from_value(v: &JsValue) -> Result<MessageRecord, StoreError> {
    let bytes = Reflect::get(v, &"v".into()).map_err(|_| corrupt("message", "no value"))?;
    MessageRecord::from_bytes(&value_bytes("message", &bytes)?).map_err(|e| corrupt("message", e))
}

fn is_unread(m: &MessageRecord) -> bool {
    m.is_unread()
}

/// A conversation as the chat list shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConversationSummary {
    /// The conversation.
    pub conversation: Conversation,
    /// Its newest message.
    pub last: MessageRecord,
    /// Incoming messages not read on any of this account's devices.
    pub unread: u32,
}

fn summary_value(last: &MessageRecord, unread: u32) -> Result<JsValue, StoreError> {
    let o = Object::new();
    let set = |k: &str, v: &JsValue| {
        Reflect::set(&o, &k.into(), v).map(|_| ()).map_err(|_| backend("cannot build a summary"))
    };
    set("m", &bytes_value(&last.to_bytes()))?;
    set("u", &JsValue::from(unread))?;
    Ok(o.into())
}

impl ConversationSummary {
    /// Parses a stored `conversations` value (as the page's start script reads them).
    pub fn from_stored(v: &JsValue) -> Result<Self, StoreError> {
        let (last, unread) = summary_from_value(v)?;
        Ok(Self { conversation: last.conversation, last, unread })
    }
}

/// Parses the stored `contacts` keys and values (account id text → handle).
pub fn contacts_from_stored(keys: &[JsValue], values: &[JsValue]) -> HashMap<AccountId, String> {
    keys.iter()
        .zip(values)
        .filter_map(|(k, v)| {
            let id = k.as_string()?;
            let bytes = hex::decode(id).ok()?;
            Some((AccountId::from_bytes(&bytes).ok()?, v.as_string()?))
        })
        .collect()
}

fn summary_from_value(v: &JsValue) -> Result<(MessageRecord, u32), StoreError> {
    let m = Reflect::get(v, &"m".into()).map_err(|_| corrupt("conversation", "no message"))?;
    let last = MessageRecord::from_bytes(&value_bytes("conversation", &m)?)
        .map_err(|e| corrupt("conversation", e))?;
    let unread = Reflect::get(v, &"u".into())
        .ok()
        .and_then(|u| u.as_f64())
        .ok_or_else(|| corrupt("conversation", "no unread count"))?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a stored count")]
    Ok((last, unread.max(0.0) as u32))
}

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

#[async_trait(?Send)]
impl IdentityKeyStore for IdbStore {
    async fn load_identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        Ok(self.identity.clone())
    }
    async fn load_local_registration_id(&self) -> Result<u32, StoreError> {
        Ok(self.registration_id)
    }
    async fn load_identity(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<IdentityKey>, StoreError> {
        if let Some(known) = self.cache.borrow().identities.get(address) {
            return Ok(*known);
        }
        let loaded = self
            .load("identity", IDENTITIES, address_key(address), IdentityKey::from_bytes)
            .await?;
        // A save that committed meanwhile has put the newer value: keep it.
        let mut cache = self.cache.borrow_mut();
        cache.make_room();
        Ok(*cache.identities.entry(address.clone()).or_insert(loaded))
    }
}

#[async_trait(?Send)]
impl PreKeyStore for IdbStore {
    async fn load_pre_key(&self, id: PreKeyId) -> Result<Option<PreKeyRecord>, StoreError> {
        self.load("prekey", PRE_KEYS, JsValue::from(id.0), PreKeyRecord::from_bytes).await
    }
    async fn count_pre_keys(&self) -> Result<usize, StoreError> {
        Ok(self.count(PRE_KEYS).await? as usize)
    }
}

#[async_trait(?Send)]
impl SignedPreKeyStore for IdbStore {
    async fn load_signed_pre_key(
        &self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        self.load(
            "signed prekey",
            SIGNED_PRE_KEYS,
            JsValue::from(id.0),
            SignedPreKeyRecord::from_bytes,
        )
        .await
    }
}

#[async_trait(?Send)]
impl KyberPreKeyStore for IdbStore {
    async fn load_kyber_pre_key(
        &self,
        id: KyberPreKeyId,
    ) -> Result<Option<KyberPreKeyRecord>, StoreError> {
        self.load(
            "Kyber prekey",
            KYBER_PRE_KEYS,
            JsValue::from(id.0),
            KyberPreKeyRecord::from_bytes,
        )
        .await
    }
    async fn kyber_pre_key_used_with(
        &self,
        id: KyberPreKeyId,
        signed_pre_key_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> Result<bool, StoreError> {
        Ok(self.get(KYBER_USES, kyber_use_key(id, signed_pre_key_id, base_key)).await?.is_some())
    }
}

#[async_trait(?Send)]
impl SessionStore for IdbStore {
    async fn load_session(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<SessionRecord>, StoreError> {
        if let Some(known) = self.cache.borrow().sessions.get(address) {
            return Ok(known.clone());
        }
        self.load_log().await?;
        let logged = self.log.borrow().overlay.get(address).map(|(r, _)| r.clone());
        let bytes = match logged {
            Some(Some(bytes)) => Some(bytes),
            Some(None) => None,
            None => match self.get(SESSIONS, address_key(address)).await? {
                Some(v) => Some(Rc::new(zeroize::Zeroizing::new(value_bytes("session", &v)?))),
                None => None,
            },
        };
        let loaded = match bytes {
            Some(bytes) => Some(self.parse_session(address, &bytes).await?),
            None => None,
        };
        // A save that committed meanwhile has put the newer record: keep it.
        let mut cache = self.cache.borrow_mut();
        cache.make_room();
        Ok(cache.sessions.entry(address.clone()).or_insert(loaded).clone())
    }
}

#[async_trait(?Send)]
impl SenderKeyStore for IdbStore {
    async fn load_sender_key(
        &self,
        name: &SenderKeyName,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        self.load("sender key", SENDER_KEYS, sender_key_key(name), SenderKeyRecord::from_bytes)
            .await
    }
}

/// Puts `(key, value)` pairs into one store of a transaction, awaiting only the last request.
async fn put_all(
    tx: &rexie::Transaction,
    store: &str,
    items: Vec<(JsValue, JsValue)>,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    tx.store(store)
        .map_err(rexie_err)?
        .put_all(items.into_iter().map(|(k, v)| (v, Some(k))))
        .await
        .map_err(rexie_err)
}

async fn delete_all(
    tx: &rexie::Transaction,
    store: &str,
    keys: Vec<JsValue>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let s = tx.store(store).map_err(rexie_err)?;
    for k in keys {
        s.delete(k).await.map_err(rexie_err)?;
    }
    Ok(())
}

#[async_trait(?Send)]
impl ProtocolStore for IdbStore {
    async fn pause(&self) {
        let now = js_sys::Date::now();
        if now - self.last_yield.get() >= WORK_SLICE_MS {
            crate::transport::yield_now().await;
            self.last_yield.set(js_sys::Date::now());
        } else if now < self.last_yield.get() {
            self.last_yield.set(now);
        }
    }

    async fn save_changes(&self, changes: Changes) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        if !changes.sessions.is_empty() || !changes.removed_sessions.is_empty() {
            self.load_log().await?;
        }
        let Changes {
            identities,
            sessions,
            removed_sessions,
            pre_keys,
            removed_pre_keys,
            signed_pre_keys,
            removed_signed_pre_keys,
            kyber_pre_keys,
            used_kyber_pre_keys,
            sender_keys,
            account,
            device_lists,
            messages,
            removed_messages,
            groups,
            outbox,
            removed_outbox,
        } = changes;
        // Encode everything before the transaction opens: an IndexedDB transaction commits
        // as soon as no request is pending, so no other work may run inside it.
        let identity_values: Vec<_> =
            identities.iter().map(|(a, k)| (address_key(a), bytes_value(&k.serialize()))).collect();
        // Every changed session in one log entry: removals first, as the batch applies them.
        let (mut kyber_values, mut kyber_written) = (Vec::new(), Vec::new());
        let log_entry = (!sessions.is_empty() || !removed_sessions.is_empty()).then(|| {
            let mut items: Vec<(ProtocolAddress, Option<zeroize::Zeroizing<Vec<u8>>>)> =
                removed_sessions.iter().map(|a| (a.clone(), None)).collect();
            let log = self.log.borrow();
            for (a, r) in &sessions {
                // A state's Kyber ciphertext is written once, the first time the state is.
                let (bytes, detached) = r.to_detached_bytes();
                if let Some(d) = detached
                    && log.kyber.get(a) != Some(&d.base_key)
                {
                    kyber_values.push((address_key(a), bytes_value(&d.to_bytes())));
                    kyber_written.push((a.clone(), d.base_key));
                }
                items.push((a.clone(), Some(bytes)));
            }
            drop(log);
            let entry = SessionLogEntry { items };
            let bytes = entry.to_bytes();
            // Reserved now: batches saved concurrently get increasing keys in the order
            // their transactions open, which is the order they commit.
            let mut log = self.log.borrow_mut();
            let key = log.next_key;
            log.next_key += 1;
            (key, entry, bytes)
        });
        let log_values: Vec<_> = log_entry
            .iter()
            .map(|(key, _, bytes)| (JsValue::from(*key as f64), bytes_value(bytes)))
            .collect();
        let pre_keys: Vec<_> =
            pre_keys.iter().map(|k| (JsValue::from(k.id.0), bytes_value(&k.to_bytes()))).collect();
        let removed_pre_keys: Vec<_> =
            removed_pre_keys.iter().map(|id| JsValue::from(id.0)).collect();
        let signed_pre_keys: Vec<_> = signed_pre_keys
            .iter()
            .map(|k| (JsValue::from(k.id.0), bytes_value(&k.to_bytes())))
            .collect();
        let removed_signed: Vec<_> =
            removed_signed_pre_keys.iter().map(|id| JsValue::from(id.0)).collect();
        let new_kyber: HashSet<u32> = kyber_pre_keys.iter().map(|k| k.id.0).collect();
        let kyber_pre_keys: Vec<_> = kyber_pre_keys
            .iter()
            .map(|k| (JsValue::from(k.id.0), bytes_value(&k.to_bytes())))
            .collect();
        let sender_keys: Vec<_> = sender_keys
            .iter()
            .map(|(n, r)| (sender_key_key(n), bytes_value(&r.to_bytes())))
            .collect();
        let mut local = Vec::new();
        if let Some(account) = &account {
            local.push((JsValue::from_str(ACCOUNT_KEY), bytes_value(&account.to_bytes())));
        }
        let device_lists: Vec<_> = device_lists
            .iter()
            .map(|(a, l)| (account_key(a), bytes_value(&l.to_bytes())))
            .collect();
        let mut touched: Vec<(Vec<u8>, Vec<MessageRecord>)> = Vec::new();
        for m in messages.values() {
            let k = conversation_to_bytes(&m.conversation);
            match touched.iter_mut().find(|(c, _)| *c == k) {
                Some((_, list)) => list.push(m.clone()),
                None => touched.push((k, vec![m.clone()])),
            }
        }
        let messages = messages
            .values()
            .map(|m| Ok((message_key(&m.id), message_value(m)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let removed: Vec<_> = removed_messages.iter().map(message_key).collect();
        let groups: Vec<_> = groups
            .iter()
            .map(|(id, g)| (JsValue::from_str(&hex::encode(id)), bytes_value(&g.to_bytes())))
            .collect();
        let removed_outbox: Vec<_> =
            removed_outbox.iter().filter(|id| !outbox.contains_key(id)).map(message_key).collect();
        let outbox: Vec<_> =
            outbox.values().map(|e| (message_key(&e.id), bytes_value(&e.to_bytes()))).collect();

        let tx = self.transaction(super::migrations::ENGINE_STORES, TransactionMode::ReadWrite)?;
        let result = async {
            put_all(&tx, LOCAL, local).await?;
            put_all(&tx, IDENTITIES, identity_values).await?;
            put_all(&tx, SESSION_LOG, log_values).await?;
            put_all(&tx, SESSION_KYBER, kyber_values).await?;
            put_all(&tx, PRE_KEYS, pre_keys).await?;
            delete_all(&tx, PRE_KEYS, removed_pre_keys).await?;
            put_all(&tx, SIGNED_PRE_KEYS, signed_pre_keys).await?;
            delete_all(&tx, SIGNED_PRE_KEYS, removed_signed).await?;
            put_all(&tx, KYBER_PRE_KEYS, kyber_pre_keys).await?;
            // A one-time Kyber key goes on use; a last-resort one remembers each use.
            let kyber = tx.store(KYBER_PRE_KEYS).map_err(rexie_err)?;
            for used in &used_kyber_pre_keys {
                let id = used.kyber_pre_key_id.0;
                let Some(v) = kyber.get(JsValue::from(id)).await.map_err(rexie_err)? else {
                    continue;
                };
                let record = KyberPreKeyRecord::from_bytes(&value_bytes("Kyber prekey", &v)?)
                    .map_err(|e| corrupt("Kyber prekey", e))?;
                if record.last_resort {
                    let key = kyber_use_key(
                        used.kyber_pre_key_id,
                        used.signed_pre_key_id,
                        &used.base_key,
                    );
                    put_all(&tx, KYBER_USES, vec![(key, JsValue::TRUE)]).await?;
                } else if !new_kyber.contains(&id) {
                    kyber.delete(JsValue::from(id)).await.map_err(rexie_err)?;
                }
            }
            put_all(&tx, SENDER_KEYS, sender_keys).await?;
            put_all(&tx, DEVICE_LISTS, device_lists).await?;
            // Conversation summaries: compare with the stored copies before replacing them.
            let stored = tx.store(MESSAGES).map_err(rexie_err)?;
            let summaries = tx.store(CONVERSATIONS).map_err(rexie_err)?;
            let mut fresh: Vec<Fresh> = Vec::new();
            let names = tx.store(CONTACTS).map_err(rexie_err)?;
            for (key_bytes, list) in &touched {
                let key = bytes_value(key_bytes);
                let (mut last, mut unread) =
                    match summaries.get(key.clone()).await.map_err(rexie_err)? {
                        Some(v) => {
                            let (m, u) = summary_from_value(&v)?;
                            // A removed newest message (stamped afresh) gives way to the rest.
                            let gone = removed_messages.contains(&m.id);
                            ((!gone).then_some(m), i64::from(u))
                        }
                        None => (None, 0),
                    };
                // All lookups at once: one round of IndexedDB events, not one per message.
                let olds = futures_util::future::join_all(
                    list.iter().map(|m| stored.get(message_key(&m.id))),
                )
                .await;
                for (m, old) in list.iter().zip(olds) {
                    let old = match old.map_err(rexie_err)? {
                        Some(v) => Some(message_from_value(&v)?),
                        None => None,
                    };
                    unread +=
                        i64::from(is_unread(m)) - i64::from(old.as_ref().is_some_and(is_unread));
                    if last.as_ref().is_none_or(|l| l.id.sort_key() <= m.id.sort_key()) {
                        last = Some(m.clone());
                    }
                }
                if let Some(last) = &last {
                    let unread = u32::try_from(unread.max(0)).unwrap_or(u32::MAX);
                    let value = summary_value(last, unread)?;
                    let name = match last.conversation {
                        Conversation::Direct(peer) => names
                            .get(account_key(&peer))
                            .await
                            .map_err(rexie_err)?
                            .and_then(|v| v.as_string()),
                        Conversation::Group(_) => None,
                    };
                    fresh.push(Fresh::new(key_bytes.clone(), value.clone(), last, name));
                    put_all(&tx, CONVERSATIONS, vec![(key, value)]).await?;
                }
            }
            if !fresh.is_empty() {
                let locals = tx.store(LOCAL).map_err(rexie_err)?;
                let stored = locals.get(JsValue::from_str(RECENT_KEY)).await.map_err(rexie_err)?;
                put_all(
                    &tx,
                    LOCAL,
                    vec![(JsValue::from_str(RECENT_KEY), merge_recent(stored, &fresh))],
                )
                .await?;
            }
            delete_all(&tx, MESSAGES, removed).await?;
            put_all(&tx, MESSAGES, messages).await?;
            put_all(&tx, GROUPS, groups).await?;
            delete_all(&tx, OUTBOX, removed_outbox).await?;
            put_all(&tx, OUTBOX, outbox).await?;
            Ok::<_, StoreError>(())
        }
        .await;
        match result {
            Ok(()) => {
                tx.done().await.map_err(rexie_err)?;
                // Committed: the log and the cache follow.
                if let Some((key, entry, bytes)) = log_entry {
                    let mut log = self.log.borrow_mut();
                    log.apply(key, entry, bytes.len());
                    log.kyber.extend(kyber_written);
                }
                let mut cache = self.cache.borrow_mut();
                cache.make_room();
                for a in removed_sessions {
                    cache.sessions.insert(a, None);
                }
                for (a, r) in sessions {
                    cache.sessions.insert(a, Some(r));
                }
                for (a, k) in identities {
                    cache.identities.insert(a, Some(k));
                }
                Ok(())
            }
            Err(e) => {
                let _ = tx.abort().await;
                Err(e)
            }
        }
    }
}

#[async_trait(?Send)]
impl ClientStore for IdbStore {
    async fn load_account(&self) -> Result<Option<AccountRecord>, StoreError> {
        self.load("account", LOCAL, JsValue::from_str(ACCOUNT_KEY), AccountRecord::from_bytes).await
    }

    async fn load_device_list(
        &self,
        account: &AccountId,
    ) -> Result<Option<DeviceListRecord>, StoreError> {
        self.load("device list", DEVICE_LISTS, account_key(account), DeviceListRecord::from_bytes)
            .await
    }

    async fn load_message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        self.get(MESSAGES, message_key(id)).await?.map(|v| message_from_value(&v)).transpose()
    }

    async fn load_group(&self, group_id: &[u8; 16]) -> Result<Option<GroupRecord>, StoreError> {
        self.load(
            "group",
            GROUPS,
            JsValue::from_str(&hex::encode(group_id)),
            GroupRecord::from_bytes,
        )
        .await
    }

    async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let tx = self.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
        let values =
            tx.store(OUTBOX).map_err(rexie_err)?.get_all(None, None).await.map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        values
            .iter()
            .map(|v| {
                OutboxEntry::from_bytes(&value_bytes("outbox entry", v)?)
                    .map_err(|e| corrupt("outbox entry", e))
            })
            .collect()
    }

    async fn load_messages(
        &self,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.scan_messages(conversation, &[0xffu8; 25], false, limit).await
    }

    async fn load_messages_before(
        &self,
        conversation: &Conversation,
        before: &MessageId,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.scan_messages(conversation, &before.sort_key(), true, limit).await
    }
}

impl IdbStore {
    /// The newest `limit` messages of a conversation up to the sort key `upper` (excluded
    /// when `open`), oldest first, read through the conversation index.
    async fn scan_messages(
        &self,
        conversation: &Conversation,
        upper: &[u8],
        open: bool,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let range = KeyRange::bound(
            &conversation_key(conversation, &[0u8; 25]),
            &conversation_key(conversation, upper),
            Some(false),
            Some(open),
        )
        .map_err(|e| backend(format!("key range: {e}")))?;
        let tx = self.transaction(&[MESSAGES], TransactionMode::ReadOnly)?;
        let index = tx
            .store(MESSAGES)
            .map_err(rexie_err)?
            .index(MESSAGES_BY_CONVERSATION)
            .map_err(rexie_err)?;
        let rows = index
            .scan(
                Some(range),
                Some(u32::try_from(limit).unwrap_or(u32::MAX)),
                None,
                Some(Direction::Prev),
            )
            .await
            .map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let mut out =
            rows.iter().map(|(_, v)| message_from_value(v)).collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        Ok(out)
    }
}

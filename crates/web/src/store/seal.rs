//! Encryption at rest: every value of the engine's store is sealed with AES-256-GCM under a
//! data key that JavaScript cannot read back.
//!
//! The data key is a WebCrypto `CryptoKey` made non-extractable: code in the page (ours, an
//! extension's, an injected script's) can use it while the page runs, but no script can export
//! its bytes. It is kept in the `local` record `keys`, in one of two forms:
//!
//! - **open** `{v: 1, k, w, d}`: `k` the non-extractable data key (AES-GCM), `w` a
//!   non-extractable wrapping key (AES-KW), `d` the data key wrapped under `w`. A copied browser
//!   profile holds the key material (the browser stores a `CryptoKey`'s bytes in its files), so
//!   this form protects against scripts, not against someone with the disk.
//! - **locked** `{v: 1, d, lock}`: only the data key wrapped under a key derived from the app
//!   lock (a passphrase through Argon2id, or a passkey's PRF output through HKDF). Nothing in the
//!   profile opens it without the passphrase or the passkey (see [`crate::lock`]).
//!
//! A sealed value is `0x01 ‖ iv (12) ‖ AES-256-GCM(data key, iv, aad, plaintext)` with
//! `aad = "tandem-at-rest/1" ‖ 0 ‖ store ‖ 0 ‖ record key`: a value moved to another record
//! or store does not open. IVs are random (96 bits); a device writes far fewer than 2³² values
//! under one key.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};
use zeroize::Zeroizing;

/// First byte of a sealed value.
const SEALED_V1: u8 = 1;
/// AES-GCM IV length.
const IV_LEN: usize = 12;
/// The same, as a typed-array offset.
const IV_LEN_U32: u32 = 12;
/// AES-GCM tag length.
const TAG_LEN: usize = 16;
/// Version of the `keys` record.
const RING_VERSION: u32 = 1;

/// Why sealing, opening or a key operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// WebCrypto is missing (an insecure page) or refused.
    #[error("the browser's cryptography failed: {0}")]
    Crypto(String),
    /// A sealed value did not authenticate: changed, moved, or sealed under another key.
    #[error("a stored {0} failed its integrity check")]
    Tampered(&'static str),
    /// The store is locked and no key was given.
    #[error("Tandem is locked on this browser; unlock it first")]
    Locked,
    /// The passphrase or passkey given does not open the key.
    #[error("that does not unlock Tandem on this browser")]
    WrongSecret,
    /// The `keys` record is not one this build understands.
    #[error("the stored keys are unreadable: {0}")]
    Corrupt(String),
}

fn crypto_err(e: &JsValue) -> SealError {
    let name = Reflect::get(e, &"name".into()).ok().and_then(|n| n.as_string());
    let message = Reflect::get(e, &"message".into()).ok().and_then(|n| n.as_string());
    SealError::Crypto(match (name, message) {
        (Some(n), Some(m)) => format!("{n}: {m}"),
        (Some(n), None) => n,
        _ => "unknown error".into(),
    })
}

fn is_operation_error(e: &JsValue) -> bool {
    Reflect::get(e, &"name".into()).ok().and_then(|n| n.as_string()).as_deref()
        == Some("OperationError")
}

/// The page's (or worker's) `crypto.subtle`.
pub fn subtle() -> Result<SubtleCrypto, SealError> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .filter(|c| !c.is_undefined())
        .ok_or_else(|| SealError::Crypto("no crypto object".into()))?;
    let subtle = Reflect::get(&crypto, &"subtle".into())
        .ok()
        .filter(|s| !s.is_undefined())
        .ok_or_else(|| SealError::Crypto("WebCrypto needs a secure page (https)".into()))?;
    Ok(subtle.unchecked_into())
}

async fn wait(p: Result<Promise, JsValue>) -> Result<JsValue, JsValue> {
    JsFuture::from(p?).await
}

fn object(fields: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&o, &(*k).into(), v);
    }
    o
}

fn usages(list: &[&str]) -> JsValue {
    list.iter().map(|u| JsValue::from_str(u)).collect::<Array>().into()
}

fn aes_gcm_256() -> Object {
    object(&[("name", "AES-GCM".into()), ("length", 256.into())])
}

fn aes_kw() -> Object {
    object(&[("name", "AES-KW".into()), ("length", 256.into())])
}

/// The additional data binding a sealed value to its store and record key.
pub fn aad(store: &str, key: &JsValue) -> Vec<u8> {
    let mut out = b"tandem-at-rest/1\0".to_vec();
    out.extend_from_slice(store.as_bytes());
    out.push(0);
    if let Some(s) = key.as_string() {
        out.push(b's');
        out.extend_from_slice(s.as_bytes());
    } else if let Some(n) = key.as_f64() {
        out.push(b'n');
        out.extend_from_slice(&n.to_be_bytes());
    } else if let Some(a) = key.dyn_ref::<Uint8Array>() {
        // Binary keys are written as views and read back as buffers: the same bytes.
        out.push(b'b');
        out.extend_from_slice(&a.to_vec());
    } else if let Some(b) = key.dyn_ref::<js_sys::ArrayBuffer>() {
        out.push(b'b');
        out.extend_from_slice(&Uint8Array::new(b).to_vec());
    }
    out
}

/// How many values one batch of WebCrypto calls seals or opens (each call costs some 25 µs
/// of the calling thread: 1 000 at once held a page's thread over 50 ms).
const CHUNK: usize = 256;

/// How long a page's thread is held between batches before it is let go.
const SLICE_MS: f64 = 16.0;

/// Between two batches: lets a page's thread go once this call has held it [`SLICE_MS`]
/// since `since` (a worker's thread goes on: nothing waits for it).
async fn between_batches(since: &mut f64) {
    if web_sys::window().is_none() {
        return;
    }
    if js_sys::Date::now() - *since >= SLICE_MS {
        crate::transport::yield_now().await;
        *since = js_sys::Date::now();
    }
}

/// The data key: seals and opens values of the engine's store.
#[derive(Clone)]
pub struct DataKey {
    key: CryptoKey,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// Uses `key`, a non-extractable AES-GCM key.
    pub fn from_crypto_key(key: CryptoKey) -> Self {
        Self { key }
    }

    /// The key itself (usable, never readable), to hand to the engine's worker.
    pub fn crypto_key(&self) -> &CryptoKey {
        &self.key
    }

    /// Seals each `(aad, plaintext)`, [`CHUNK`] at once (see [`between_batches`]).
    pub async fn seal_all(
        &self,
        items: &[(Vec<u8>, Zeroizing<Vec<u8>>)],
    ) -> Result<Vec<Uint8Array>, SealError> {
        let mut out = Vec::with_capacity(items.len());
        let mut since = js_sys::Date::now();
        for (i, chunk) in items.chunks(CHUNK).enumerate() {
            if i > 0 {
                between_batches(&mut since).await;
            }
            out.extend(self.seal_chunk(chunk).await?);
        }
        Ok(out)
    }

    async fn seal_chunk(
        &self,
        items: &[(Vec<u8>, Zeroizing<Vec<u8>>)],
    ) -> Result<Vec<Uint8Array>, SealError> {
        let subtle = subtle()?;
        let mut ivs = Vec::with_capacity(items.len());
        let mut promises = Vec::with_capacity(items.len());
        for (aad, plain) in items {
            let iv: [u8; IV_LEN] = crate::rng::random_bytes();
            let params = object(&[
                ("name", "AES-GCM".into()),
                ("iv", Uint8Array::from(&iv[..]).into()),
                ("additionalData", Uint8Array::from(aad.as_slice()).into()),
            ]);
            // WebCrypto copies the bytes at the call: the view into wasm memory is not kept.
            let p = subtle
                .encrypt_with_object_and_u8_array(&params, &self.key, plain)
                .map_err(|e| crypto_err(&e))?;
            ivs.push(iv);
            promises.push(JsFuture::from(p));
        }
        let sealed = futures_util::future::join_all(promises).await;
        ivs.into_iter()
            .zip(sealed)
            .map(|(iv, ct)| {
                let ct = Uint8Array::new(&ct.map_err(|e| crypto_err(&e))?);
                let out = Uint8Array::new_with_length(1 + IV_LEN_U32 + ct.length());
                out.set_index(0, SEALED_V1);
                out.set(&Uint8Array::from(&iv[..]), 1);
                out.set(&ct, 1 + IV_LEN_U32);
                Ok(out)
            })
            .collect()
    }

    /// Seals one value.
    pub async fn seal(
        &self,
        aad: Vec<u8>,
        plain: Zeroizing<Vec<u8>>,
    ) -> Result<Uint8Array, SealError> {
        let mut out = self.seal_all(&[(aad, plain)]).await?;
        out.pop().ok_or_else(|| SealError::Crypto("nothing sealed".into()))
    }

    /// Opens each `(aad, sealed value)`, [`CHUNK`] at once (see [`between_batches`]); `what`
    /// names the record family in errors.
    pub async fn open_all(
        &self,
        what: &'static str,
        items: &[(Vec<u8>, JsValue)],
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
        let mut out = Vec::with_capacity(items.len());
        let mut since = js_sys::Date::now();
        for (i, chunk) in items.chunks(CHUNK).enumerate() {
            if i > 0 {
                between_batches(&mut since).await;
            }
            out.extend(self.open_chunk(what, chunk).await?);
        }
        Ok(out)
    }

    async fn open_chunk(
        &self,
        what: &'static str,
        items: &[(Vec<u8>, JsValue)],
    ) -> Result<Vec<Zeroizing<Vec<u8>>>, SealError> {
        let subtle = subtle()?;
        let mut promises = Vec::with_capacity(items.len());
        for (aad, sealed) in items {
            let bytes = sealed
                .dyn_ref::<Uint8Array>()
                .map(Uint8Array::to_vec)
                .or_else(|| {
                    sealed.dyn_ref::<js_sys::ArrayBuffer>().map(|b| Uint8Array::new(b).to_vec())
                })
                .ok_or(SealError::Tampered(what))?;
            if bytes.len() < 1 + IV_LEN + TAG_LEN || bytes[0] != SEALED_V1 {
                return Err(SealError::Tampered(what));
            }
            let params = object(&[
                ("name", "AES-GCM".into()),
                ("iv", Uint8Array::from(&bytes[1..1 + IV_LEN]).into()),
                ("additionalData", Uint8Array::from(aad.as_slice()).into()),
            ]);
            let p = subtle
                .decrypt_with_object_and_u8_array(&params, &self.key, &bytes[1 + IV_LEN..])
                .map_err(|e| crypto_err(&e))?;
            promises.push(JsFuture::from(p));
        }
        futures_util::future::join_all(promises)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(buf) => {
                    let view = Uint8Array::new(&buf);
                    let plain = Zeroizing::new(view.to_vec());
                    view.fill(0, 0, view.length());
                    Ok(plain)
                }
                Err(e) if is_operation_error(&e) => Err(SealError::Tampered(what)),
                Err(e) => Err(crypto_err(&e)),
            })
            .collect()
    }

    /// Opens one value.
    pub async fn open(
        &self,
        what: &'static str,
        aad: Vec<u8>,
        sealed: JsValue,
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let mut out = self.open_all(what, &[(aad, sealed)]).await?;
        out.pop().ok_or(SealError::Tampered(what))
    }
}

/// How the data key is kept, as read from the `keys` record.
pub enum Ring {
    /// Open: the data key is usable as stored.
    Open {
        /// The data key.
        key: DataKey,
        /// The wrapping key.
        wrapping: CryptoKey,
        /// The data key wrapped under `wrapping`.
        wrapped: Vec<u8>,
    },
    /// Locked: the data key wrapped under the app lock's key.
    Locked {
        /// The wrapped data key.
        wrapped: Vec<u8>,
        /// How the lock key is derived (the `lock` object, see [`crate::lock::LockParams`]).
        lock: JsValue,
    },
}

impl Ring {
    /// Makes a fresh data key, open. Its bytes exist only inside WebCrypto.
    pub async fn generate() -> Result<(Ring, JsValue), SealError> {
        let subtle = subtle()?;
        // Extractable only long enough to be wrapped; the usable copy is unwrapped
        // non-extractable.
        let temporary: CryptoKey = wait(subtle.generate_key_with_object(
            &aes_gcm_256(),
            true,
            &usages(&["encrypt", "decrypt"]),
        ))
        .await
        .map_err(|e| crypto_err(&e))?
        .unchecked_into();
        let ring = Self::open_under_new_wrapping(&temporary).await?;
        let stored = ring.to_stored();
        Ok((ring, stored))
    }

    /// The `keys` record's value.
    pub fn to_stored(&self) -> JsValue {
        match self {
            Ring::Open { key, wrapping, wrapped } => object(&[
                ("v", RING_VERSION.into()),
                ("k", key.key.clone().into()),
                ("w", wrapping.clone().into()),
                ("d", Uint8Array::from(wrapped.as_slice()).into()),
            ])
            .into(),
            Ring::Locked { wrapped, lock } => object(&[
                ("v", RING_VERSION.into()),
                ("d", Uint8Array::from(wrapped.as_slice()).into()),
                ("lock", lock.clone()),
            ])
            .into(),
        }
    }

    /// Reads a stored `keys` value.
    pub fn from_stored(v: &JsValue) -> Result<Ring, SealError> {
        let field = |name: &str| Reflect::get(v, &name.into()).ok().filter(|x| !x.is_undefined());
        if field("v").and_then(|x| x.as_f64()) != Some(f64::from(RING_VERSION)) {
            return Err(SealError::Corrupt("unknown version".into()));
        }
        let wrapped = field("d")
            .and_then(|d| d.dyn_into::<Uint8Array>().ok())
            .map(|d| d.to_vec())
            .ok_or_else(|| SealError::Corrupt("no wrapped key".into()))?;
        if let Some(lock) = field("lock") {
            return Ok(Ring::Locked { wrapped, lock });
        }
        let key = field("k").and_then(|k| k.dyn_into::<CryptoKey>().ok());
        let wrapping = field("w").and_then(|k| k.dyn_into::<CryptoKey>().ok());
        match (key, wrapping) {
            (Some(key), Some(wrapping)) => {
                Ok(Ring::Open { key: DataKey::from_crypto_key(key), wrapping, wrapped })
            }
            _ => Err(SealError::Corrupt("no key".into())),
        }
    }

    /// Locks an open ring under `lock_key` (an AES-KW key derived from the app lock);
    /// `lock` describes the derivation. The data key stays the same, so nothing is re-sealed.
    pub async fn lock(&self, lock_key: &CryptoKey, lock: JsValue) -> Result<Ring, SealError> {
        let Ring::Open { wrapping, wrapped, .. } = self else {
            return Err(SealError::Corrupt("already locked".into()));
        };
        // The data key is unwrapped extractable only to be wrapped again, inside WebCrypto.
        let temporary = unwrap(wrapped, wrapping, true).await?;
        let wrapped = wrap(&temporary, lock_key).await?;
        Ok(Ring::Locked { wrapped, lock })
    }

    /// The data key of a locked ring, unwrapped with `lock_key` (an open ring's own key).
    pub async fn unlock(&self, lock_key: &CryptoKey) -> Result<DataKey, SealError> {
        match self {
            Ring::Open { key, .. } => Ok(key.clone()),
            Ring::Locked { wrapped, .. } => match unwrap(wrapped, lock_key, false).await {
                Ok(k) => Ok(DataKey::from_crypto_key(k)),
                Err(SealError::Crypto(_)) => Err(SealError::WrongSecret),
                Err(e) => Err(e),
            },
        }
    }

    /// The usable data key of an open ring.
    pub fn data_key(&self) -> Option<&DataKey> {
        match self {
            Ring::Open { key, .. } => Some(key),
            Ring::Locked { .. } => None,
        }
    }

    /// Removes the lock: the data key wrapped under a fresh wrapping key, open.
    pub async fn unlocked(&self, lock_key: &CryptoKey) -> Result<Ring, SealError> {
        let Ring::Locked { wrapped, .. } = self else {
            return Err(SealError::Corrupt("not locked".into()));
        };
        let temporary =
            unwrap(wrapped, lock_key, true).await.map_err(|_| SealError::WrongSecret)?;
        Self::open_under_new_wrapping(&temporary).await
    }

    /// An open ring for the (extractable) data key `temporary`: wrapped under a fresh
    /// non-extractable wrapping key, and unwrapped again as the non-extractable copy in use.
    async fn open_under_new_wrapping(temporary: &CryptoKey) -> Result<Ring, SealError> {
        let wrapping: CryptoKey = wait(subtle()?.generate_key_with_object(
            &aes_kw(),
            false,
            &usages(&["wrapKey", "unwrapKey"]),
        ))
        .await
        .map_err(|e| crypto_err(&e))?
        .unchecked_into();
        let wrapped = wrap(temporary, &wrapping).await?;
        let key = unwrap(&wrapped, &wrapping, false).await?;
        Ok(Ring::Open { key: DataKey::from_crypto_key(key), wrapping, wrapped })
    }
}

async fn wrap(key: &CryptoKey, wrapping: &CryptoKey) -> Result<Vec<u8>, SealError> {
    let subtle = subtle()?;
    let out = wait(subtle.wrap_key_with_str("raw", key, wrapping, "AES-KW"))
        .await
        .map_err(|e| crypto_err(&e))?;
    Ok(Uint8Array::new(&out).to_vec())
}

async fn unwrap(
    wrapped: &[u8],
    wrapping: &CryptoKey,
    extractable: bool,
) -> Result<CryptoKey, SealError> {
    let subtle = subtle()?;
    let p = subtle.unwrap_key_with_u8_array_and_str_and_object(
        "raw",
        wrapped,
        wrapping,
        "AES-KW",
        &object(&[("name", "AES-GCM".into())]),
        extractable,
        &usages(&["encrypt", "decrypt"]),
    );
    Ok(wait(p).await.map_err(|e| crypto_err(&e))?.unchecked_into())
}

/// Imports 32 derived bytes as a non-extractable AES-KW key (the app lock's key).
pub async fn lock_key_from_bytes(bytes: &[u8; 32]) -> Result<CryptoKey, SealError> {
    let subtle = subtle()?;
    let p = subtle.import_key_with_object(
        "raw",
        &Uint8Array::from(&bytes[..]).into(),
        &object(&[("name", "AES-KW".into())]),
        false,
        &usages(&["wrapKey", "unwrapKey"]),
    );
    Ok(wait(p).await.map_err(|e| crypto_err(&e))?.unchecked_into())
}

thread_local! {
    /// The data keys this page unlocked, by database, for every store it opens afterwards.
    static UNLOCKED: RefCell<HashMap<String, DataKey>> = RefCell::new(HashMap::new());
}

/// Keeps `key` for this page's later opens of the database `db` (after an unlock).
pub fn remember(db: &str, key: DataKey) {
    UNLOCKED.with(|k| k.borrow_mut().insert(db.to_owned(), key));
}

/// Forgets the key of `db` (the app locked itself again, or the data was replaced).
pub fn forget(db: &str) {
    UNLOCKED.with(|k| k.borrow_mut().remove(db));
}

/// Whether `e` says the store is locked (see [`SealError::Locked`]).
pub fn is_locked(e: &tandem_core::client::ClientError) -> bool {
    matches!(
        e,
        tandem_core::client::ClientError::Store(tandem_core::store::StoreError::Backend(b))
            if matches!(b.downcast_ref::<SealError>(), Some(SealError::Locked))
    )
}

/// The key this page unlocked for `db`, if it did.
pub fn remembered(db: &str) -> Option<DataKey> {
    UNLOCKED.with(|k| k.borrow().get(db).cloned())
}

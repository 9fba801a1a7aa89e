//! The app lock: the store's data key wrapped under a key only the person can give, so a
//! copied browser profile reveals no key and no message.
//!
//! Two ways to give it:
//! - a **passphrase**, stretched with Argon2id (19 MiB, 2 passes, 1 lane: OWASP's minimum for
//!   Argon2id) over a random 16-byte salt;
//! - a **passkey** with the WebAuthn PRF extension: the authenticator's secret for a random
//!   32-byte salt, after user verification, hashed with a label.
//!
//! Either gives 32 bytes, imported as a non-extractable AES-KW key that wraps the data key
//! (see [`crate::store::seal`]). Locking, unlocking and removing the lock only rewrap the data
//! key: nothing is sealed again. A wrong passphrase or another passkey fails AES-KW's
//! integrity check and unlocks nothing. The unlocked data key lives in this page's memory
//! until it closes or is locked again.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::passkey::PasskeyError;
use crate::store::IdbStore;
use crate::store::seal::{self, Ring, SealError};

/// Shortest passphrase accepted, in characters.
pub const MIN_PASSPHRASE: usize = 8;
/// Argon2id memory, KiB.
const ARGON_M_KIB: u32 = 19_456;
/// Argon2id passes.
const ARGON_T: u32 = 2;
/// Argon2id lanes.
const ARGON_P: u32 = 1;
/// Largest Argon2id memory a stored lock may ask for, KiB (256 MiB).
const MAX_ARGON_M_KIB: u32 = 256 * 1024;

/// How the lock key is derived, as the `keys` record keeps it (no secret in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LockParams {
    /// Argon2id over a passphrase.
    Passphrase {
        /// Random salt.
        salt: Vec<u8>,
        /// Memory, KiB.
        m_kib: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
    },
    /// A passkey's PRF output.
    Passkey {
        /// The PRF input.
        salt: Vec<u8>,
        /// The credential.
        credential_id: Vec<u8>,
    },
}

/// What the person gives to unlock.
pub enum Secret<'a> {
    /// The passphrase typed.
    Passphrase(&'a str),
    /// Ask the passkey.
    Passkey,
}

/// Why locking or unlocking failed; `Display` is for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The passphrase is too short.
    #[error("Choose a passphrase of at least {MIN_PASSPHRASE} characters.")]
    Short,
    /// The two passphrases typed differ.
    #[error("The two passphrases are not the same.")]
    Mismatch,
    /// The passphrase or passkey given does not open the key.
    #[error("That passphrase or passkey does not unlock Tandem on this browser. Try again.")]
    Wrong,
    /// The passkey step failed.
    #[error("{0}")]
    Passkey(#[from] PasskeyError),
    /// The lock is not in the state the action needs.
    #[error("{0}")]
    State(&'static str),
    /// Storage or the browser's cryptography failed.
    #[error("The app lock could not be changed: {0}. Nothing was changed; try again.")]
    Store(String),
    /// The lock's settings stored in this browser are not ones Tandem writes (damaged, or
    /// edited to make unlocking exhaust the browser's memory or time).
    #[error(
        "This browser's app lock settings are damaged ({0}), so Tandem cannot unlock its data here. Link this browser again from your main device."
    )]
    Damaged(String),
}

impl From<SealError> for LockError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::WrongSecret => LockError::Wrong,
            other => LockError::Store(other.to_string()),
        }
    }
}

fn store_err(e: impl std::fmt::Display) -> LockError {
    LockError::Store(e.to_string())
}

impl LockParams {
    /// Reads the `lock` object of a locked ring, refusing settings Tandem never writes.
    pub fn from_stored(v: &wasm_bindgen::JsValue) -> Result<Self, LockError> {
        let params: Self = serde_wasm_bindgen::from_value(v.clone())
            .map_err(|e| LockError::Damaged(e.to_string()))?;
        params.check().map_err(|why| LockError::Damaged(why.into()))?;
        Ok(params)
    }

    /// Whether these are settings Tandem could have written: a salt of 16 to 64 bytes, a
    /// credential id of 1 to 1 023 bytes, and Argon2id costs that a browser can pay (at most
    /// 256 MiB, 16 passes, 4 lanes; at least what Argon2 itself requires). Anything the
    /// profile's files say is checked before it is used, so an edited profile cannot make
    /// unlocking abort on memory or run for hours.
    pub fn check(&self) -> Result<(), &'static str> {
        match self {
            LockParams::Passphrase { salt, m_kib, t, p } => {
                if !(16..=64).contains(&salt.len()) {
                    return Err("salt length");
                }
                if !(1..=4).contains(p) || !(1..=16).contains(t) {
                    return Err("passes or lanes");
                }
                if *m_kib < 8 * p || *m_kib > MAX_ARGON_M_KIB {
                    return Err("memory cost");
                }
                Ok(())
            }
            LockParams::Passkey { salt, credential_id } => {
                if !(16..=64).contains(&salt.len()) {
                    return Err("salt length");
                }
                if !(1..=1023).contains(&credential_id.len()) {
                    return Err("credential id length");
                }
                Ok(())
            }
        }
    }

    fn to_stored(&self) -> Result<wasm_bindgen::JsValue, LockError> {
        serde_wasm_bindgen::to_value(self).map_err(store_err)
    }

    /// Whether unlocking asks for a passkey (else a passphrase).
    pub fn is_passkey(&self) -> bool {
        matches!(self, LockParams::Passkey { .. })
    }
}

/// The 32 bytes the lock key is imported from.
async fn lock_bytes(
    params: &LockParams,
    secret: &Secret<'_>,
) -> Result<Zeroizing<[u8; 32]>, LockError> {
    let mut out = Zeroizing::new([0u8; 32]);
    match (params, secret) {
        (LockParams::Passphrase { salt, m_kib, t, p }, Secret::Passphrase(pass)) => {
            let params = argon2::Params::new(*m_kib, *t, *p, Some(32)).map_err(store_err)?;
            // Argon2id takes a moment: let the page show that it is working first.
            crate::transport::yield_now().await;
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(pass.as_bytes(), salt, out.as_mut())
                .map_err(store_err)?;
        }
        (LockParams::Passkey { salt, credential_id }, Secret::Passkey) => {
            let salt: [u8; 32] =
                salt.as_slice().try_into().map_err(|_| store_err("the passkey salt is damaged"))?;
            let prf = crate::passkey::prf_secret(credential_id, &salt).await?;
            let mut h = Sha256::new();
            h.update(b"tandem app lock/1\0");
            h.update(prf.as_slice());
            out.copy_from_slice(&h.finalize());
        }
        (LockParams::Passphrase { .. }, Secret::Passkey) => {
            return Err(LockError::State("This browser is locked with a passphrase."));
        }
        (LockParams::Passkey { .. }, Secret::Passphrase(_)) => {
            return Err(LockError::State("This browser is locked with a passkey."));
        }
    }
    Ok(out)
}

async fn lock_key(
    params: &LockParams,
    secret: &Secret<'_>,
) -> Result<web_sys::CryptoKey, LockError> {
    let bytes = lock_bytes(params, secret).await?;
    Ok(seal::lock_key_from_bytes(&bytes).await?)
}

/// The lock of the store `db`: `None` when it is off (or there is no data).
pub async fn current(db: &str) -> Result<Option<LockParams>, LockError> {
    match IdbStore::read_ring(db).await.map_err(store_err)? {
        Some(Ring::Locked { lock, .. }) => Ok(Some(LockParams::from_stored(&lock)?)),
        _ => Ok(None),
    }
}

/// How to lock.
pub enum NewLock {
    /// A passphrase, typed twice.
    Passphrase(String, String),
    /// A new passkey for this account (`account` id bytes, `handle`).
    Passkey(Vec<u8>, String),
}

/// Turns the app lock on for the store `db`.
pub async fn lock(db: &str, how: NewLock) -> Result<(), LockError> {
    let ring = IdbStore::read_ring(db).await.map_err(store_err)?;
    let Some(ring @ Ring::Open { .. }) = ring else {
        return Err(LockError::State("The app lock is already on."));
    };
    let (params, secret_pass) = match how {
        NewLock::Passphrase(a, b) => {
            if a != b {
                return Err(LockError::Mismatch);
            }
            if a.chars().count() < MIN_PASSPHRASE {
                return Err(LockError::Short);
            }
            let salt = crate::rng::random_bytes::<16>().to_vec();
            (
                LockParams::Passphrase { salt, m_kib: ARGON_M_KIB, t: ARGON_T, p: ARGON_P },
                Some(Zeroizing::new(a)),
            )
        }
        NewLock::Passkey(account, handle) => {
            // Its own user id, so the link-approval passkey is not replaced.
            let mut h = Sha256::new();
            h.update(b"tandem app lock user/1\0");
            h.update(&account);
            let user = h.finalize();
            let passkey = crate::passkey::enrol_for_lock(&user[..16], &handle).await?;
            let salt = crate::rng::random_bytes::<32>().to_vec();
            (LockParams::Passkey { salt, credential_id: passkey.credential_id }, None)
        }
    };
    let secret = match &secret_pass {
        Some(p) => Secret::Passphrase(p.as_str()),
        None => Secret::Passkey,
    };
    let key = lock_key(&params, &secret).await?;
    if let Some(data) = ring.data_key() {
        seal::remember(db, data.clone());
    }
    let locked = ring.lock(&key, params.to_stored()?).await?;
    IdbStore::write_ring(db, &locked).await.map_err(store_err)
}

/// The locked ring of `db` and its lock key from `secret`; `not_locked` says why not.
async fn open_lock(
    db: &str,
    secret: &Secret<'_>,
    not_locked: &'static str,
) -> Result<(Ring, web_sys::CryptoKey), LockError> {
    let ring = IdbStore::read_ring(db).await.map_err(store_err)?;
    let Some(ring) = ring else { return Err(LockError::State(not_locked)) };
    let Ring::Locked { lock, .. } = &ring else { return Err(LockError::State(not_locked)) };
    let params = LockParams::from_stored(lock)?;
    let key = lock_key(&params, secret).await?;
    Ok((ring, key))
}

/// Unlocks the store `db` for this page.
pub async fn unlock(db: &str, secret: Secret<'_>) -> Result<(), LockError> {
    let (ring, key) = open_lock(db, &secret, "This browser is not locked.").await?;
    seal::remember(db, ring.unlock(&key).await?);
    Ok(())
}

/// Turns the app lock off for the store `db` (the passphrase or passkey is asked again).
pub async fn remove(db: &str, secret: Secret<'_>) -> Result<(), LockError> {
    let (ring, key) = open_lock(db, &secret, "The app lock is already off.").await?;
    let open = ring.unlocked(&key).await?;
    IdbStore::write_ring(db, &open).await.map_err(store_err)?;
    if let Some(data) = open.data_key() {
        seal::remember(db, data.clone());
    }
    Ok(())
}

/// Forgets the unlocked key of `db` and reloads: the page opens locked.
pub fn lock_now(db: &str) {
    seal::forget(db);
    if let Some(w) = web_sys::window() {
        let _ = w.location().reload();
    }
}

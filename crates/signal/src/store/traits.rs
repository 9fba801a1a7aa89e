//! The store traits. Every method documents its contract; `save_changes` is the only write.

use async_trait::async_trait;

use super::{Changes, SenderKeyName, StoreError};
use crate::address::ProtocolAddress;
use crate::crypto::PublicKey;
use crate::identity::{IdentityKey, IdentityKeyPair};
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use crate::ratchet::sender_key::SenderKeyRecord;
use crate::ratchet::session_record::SessionRecord;

/// This device's identity and the identities trusted for peers.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait IdentityKeyStore {
    /// This device's identity key pair; [`StoreError::NoIdentity`] before setup.
    async fn load_identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError>;
    /// This device's registration id; [`StoreError::NoIdentity`] before setup.
    async fn load_local_registration_id(&self) -> Result<u32, StoreError>;
    /// The identity key trusted for `address`, if one was ever saved.
    async fn load_identity(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<IdentityKey>, StoreError>;
}

/// One-time Curve25519 prekeys.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait PreKeyStore {
    /// The prekey with `id`, or `None` if it was never made or already used.
    async fn load_pre_key(&self, id: PreKeyId) -> Result<Option<PreKeyRecord>, StoreError>;
    /// How many one-time prekeys remain (for refilling the server).
    async fn count_pre_keys(&self) -> Result<usize, StoreError>;
}

/// Signed Curve25519 prekeys.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait SignedPreKeyStore {
    /// The signed prekey with `id`, or `None`.
    async fn load_signed_pre_key(
        &self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>, StoreError>;
}

/// Kyber prekeys (one-time and last-resort).
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait KyberPreKeyStore {
    /// The Kyber prekey with `id`, or `None` (a used one-time key is gone).
    async fn load_kyber_pre_key(
        &self,
        id: KyberPreKeyId,
    ) -> Result<Option<KyberPreKeyRecord>, StoreError>;
    /// Whether the last-resort key `id` was already used with this signed prekey and base key.
    async fn kyber_pre_key_used_with(
        &self,
        id: KyberPreKeyId,
        signed_pre_key_id: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> Result<bool, StoreError>;
}

/// Pairwise session records.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait SessionStore {
    /// The session record with `address`, or `None`.
    async fn load_session(
        &self,
        address: &ProtocolAddress,
    ) -> Result<Option<SessionRecord>, StoreError>;
}

/// Sender-key records.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait SenderKeyStore {
    /// The sender-key record of `name`, or `None`.
    async fn load_sender_key(
        &self,
        name: &SenderKeyName,
    ) -> Result<Option<SenderKeyRecord>, StoreError>;
}

/// A complete protocol store.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait ProtocolStore:
    IdentityKeyStore
    + PreKeyStore
    + SignedPreKeyStore
    + KyberPreKeyStore
    + SessionStore
    + SenderKeyStore
{
    /// Applies every change in `changes` atomically: after an error, the store is as before.
    /// Used one-time Kyber prekeys are deleted; last-resort ones remember the use.
    async fn save_changes(&self, changes: Changes) -> Result<(), StoreError>;

    /// A point inside long work (generating a batch of prekeys, encrypting for many
    /// devices) where the caller's event loop may run. A store on a single-threaded runtime
    /// (the browser's UI thread) yields there once the work has held the thread for a few
    /// milliseconds, so input is never blocked for long; other stores return at once. It
    /// must not change what the store holds.
    async fn pause(&self);
}

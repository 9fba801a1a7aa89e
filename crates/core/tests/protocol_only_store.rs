//! A store that keeps protocol state only — no account, messages, outbox or contacts — is a
//! complete `ProtocolStore` and passes the protocol part of the conformance suite: a library
//! user of the protocol never has to accept (or even name) a messenger record. It keeps its
//! records by delegating to `MemoryStore`'s protocol half; what matters here is the surface
//! it had to implement.

use async_trait::async_trait;
use tandem_core::crypto::PublicKey;
use tandem_core::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use tandem_core::sender_keys::SenderKeyRecord;
use tandem_core::session::SessionRecord;
use tandem_core::store::{
    Changes, IdentityKeyStore, KyberPreKeyStore, MemoryStore, PreKeyStore, ProtocolStore,
    SenderKeyName, SenderKeyStore, SessionStore, SignedPreKeyStore, StoreError,
};
use tandem_core::testing::conformance;
use tandem_core::{IdentityKey, IdentityKeyPair, ProtocolAddress};

struct ProtocolOnly(MemoryStore);

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl IdentityKeyStore for ProtocolOnly {
    async fn load_identity_key_pair(&self) -> Result<IdentityKeyPair, StoreError> {
        self.0.load_identity_key_pair().await
    }
    async fn load_local_registration_id(&self) -> Result<u32, StoreError> {
        self.0.load_local_registration_id().await
    }
    async fn load_identity(&self, a: &ProtocolAddress) -> Result<Option<IdentityKey>, StoreError> {
        self.0.load_identity(a).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl PreKeyStore for ProtocolOnly {
    async fn load_pre_key(&self, id: PreKeyId) -> Result<Option<PreKeyRecord>, StoreError> {
        self.0.load_pre_key(id).await
    }
    async fn count_pre_keys(&self) -> Result<usize, StoreError> {
        self.0.count_pre_keys().await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SignedPreKeyStore for ProtocolOnly {
    async fn load_signed_pre_key(
        &self,
        id: SignedPreKeyId,
    ) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        self.0.load_signed_pre_key(id).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl KyberPreKeyStore for ProtocolOnly {
    async fn load_kyber_pre_key(
        &self,
        id: KyberPreKeyId,
    ) -> Result<Option<KyberPreKeyRecord>, StoreError> {
        self.0.load_kyber_pre_key(id).await
    }
    async fn kyber_pre_key_used_with(
        &self,
        id: KyberPreKeyId,
        signed: SignedPreKeyId,
        base_key: &PublicKey,
    ) -> Result<bool, StoreError> {
        self.0.kyber_pre_key_used_with(id, signed, base_key).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SessionStore for ProtocolOnly {
    async fn load_session(&self, a: &ProtocolAddress) -> Result<Option<SessionRecord>, StoreError> {
        self.0.load_session(a).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl SenderKeyStore for ProtocolOnly {
    async fn load_sender_key(
        &self,
        name: &SenderKeyName,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        self.0.load_sender_key(name).await
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl ProtocolStore for ProtocolOnly {
    async fn save_changes(&self, changes: Changes) -> Result<(), StoreError> {
        self.0.save_changes(changes).await
    }
    async fn pause(&self) {}
}

async fn make(identity: IdentityKeyPair, registration_id: u32) -> ProtocolOnly {
    ProtocolOnly(MemoryStore::new(identity, registration_id))
}

#[tokio::test]
async fn test_a_protocol_only_store_passes_the_protocol_conformance_suite() {
    conformance::local_identity(make).await;
    conformance::trusted_identities(make).await;
    conformance::pre_keys(make).await;
    conformance::signed_pre_keys(make).await;
    conformance::kyber_pre_keys(make).await;
    conformance::sessions(make).await;
    conformance::encryptions_never_repeat_a_key(make).await;
    conformance::sender_keys(make).await;
}

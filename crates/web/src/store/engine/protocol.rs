//! The protocol stores (identity, prekeys, sessions, sender keys) as reads over IndexedDB.

use super::*;

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
            None => self.get_open("session", SESSIONS, address_key(address)).await?.map(Rc::new),
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
        let load =
            self.load("sender key", SENDER_KEYS, sender_key_key(name), SenderKeyRecord::from_bytes);
        self.remembered_or(|r| &mut r.sender_keys, name, load).await
    }
}

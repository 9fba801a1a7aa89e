//! Prekey upload, bundle fetch (one-time keys handed out once), counts.

use tandem_core::IdentityKey;
use tandem_core::crypto::{KyberPublicKey, PublicKey};
use tandem_core::wire::relay::{
    GetPreKeyBundles, KyberPreKeyMessage, MAX_PREKEYS_PER_UPLOAD, MAX_STORED_PREKEYS,
    OneTimePreKeyMessage, PreKeyBundleMessage, PreKeyBundles, PreKeyCounts, SignedPreKeyMessage,
    Status, UploadPreKeys, response,
};

use super::{ApiError, ApiResult, Authed, account_id, limit};
use crate::AppState;
use crate::limits::Limited;
use crate::storage::{PreKeyRow, PreKeyUpload, Storage};

fn signed_row(identity: &IdentityKey, k: SignedPreKeyMessage) -> Result<PreKeyRow, ApiError> {
    let key = PublicKey::from_bytes(&k.public_key)
        .map_err(|e| ApiError::bad(format!("signed prekey: {e}")))?;
    identity
        .public_key()
        .verify_signature(&key.serialize(), &k.signature)
        .map_err(|_| ApiError::bad("signed prekey signature does not verify"))?;
    Ok(PreKeyRow { key_id: k.key_id, public_key: k.public_key, signature: k.signature })
}

fn kyber_row(identity: &IdentityKey, k: KyberPreKeyMessage) -> Result<PreKeyRow, ApiError> {
    let key = KyberPublicKey::from_bytes(&k.public_key)
        .map_err(|e| ApiError::bad(format!("Kyber prekey: {e}")))?;
    identity
        .public_key()
        .verify_signature(&key.serialize(), &k.signature)
        .map_err(|_| ApiError::bad("Kyber prekey signature does not verify"))?;
    Ok(PreKeyRow { key_id: k.key_id, public_key: k.public_key, signature: k.signature })
}

/// Stores the caller's prekeys after checking every key and signature.
pub async fn upload<D: Storage>(state: &AppState<D>, who: Authed, r: UploadPreKeys) -> ApiResult {
    if r.one_time.len() > MAX_PREKEYS_PER_UPLOAD || r.kyber.len() > MAX_PREKEYS_PER_UPLOAD {
        return Err(ApiError::new(
            Status::TooLarge,
            format!("at most {MAX_PREKEYS_PER_UPLOAD} prekeys of each kind per upload"),
        ));
    }
    let device = state
        .storage
        .device(who.account, who.device)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such device"))?;
    let identity = IdentityKey::from_bytes(&device.identity_key)
        .map_err(|_| ApiError::new(Status::Internal, "bad identity key"))?;
    let one_time = r
        .one_time
        .into_iter()
        .map(|k| {
            PublicKey::from_bytes(&k.public_key)
                .map_err(|e| ApiError::bad(format!("one-time prekey: {e}")))?;
            Ok(PreKeyRow { key_id: k.key_id, public_key: k.public_key, signature: Vec::new() })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let upload = PreKeyUpload {
        signed: r.signed_pre_key.map(|k| signed_row(&identity, k)).transpose()?,
        one_time,
        kyber: r.kyber.into_iter().map(|k| kyber_row(&identity, k)).collect::<Result<_, _>>()?,
        last_resort: r.last_resort_kyber.map(|k| kyber_row(&identity, k)).transpose()?,
    };
    state
        .storage
        .upload_prekeys(who.account, who.device, upload, MAX_STORED_PREKEYS)
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::LimitReached => ApiError::new(
                Status::LimitReached,
                format!("at most {MAX_STORED_PREKEYS} stored prekeys of each kind"),
            ),
            other => other.into(),
        })?;
    Ok(None)
}

/// Bundles for the asked devices (rate-limited: each fetch consumes one-time keys).
pub async fn bundles<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    r: GetPreKeyBundles,
) -> ApiResult {
    let account = account_id(&r.account_id)?;
    let cost = if r.device_ids.is_empty() { 1.0 } else { r.device_ids.len() as f64 };
    limit(state, who, Limited::PreKeyFetch, cost)?;
    if r.device_ids.len() > 16 {
        return Err(ApiError::bad("at most 16 devices per fetch"));
    }
    let rows = state.storage.take_bundles(account, &r.device_ids).await?;
    let bundles = rows
        .into_iter()
        .filter(|b| b.signed.is_some() && b.kyber.is_some())
        .map(|b| PreKeyBundleMessage {
            device_id: b.device_id,
            registration_id: b.registration_id,
            identity_key: b.identity_key,
            signed_pre_key: b.signed.map(|k| SignedPreKeyMessage {
                key_id: k.key_id,
                public_key: k.public_key,
                signature: k.signature,
            }),
            one_time: b
                .one_time
                .map(|k| OneTimePreKeyMessage { key_id: k.key_id, public_key: k.public_key }),
            kyber: b.kyber.map(|k| KyberPreKeyMessage {
                key_id: k.key_id,
                public_key: k.public_key,
                signature: k.signature,
            }),
        })
        .collect();
    Ok(Some(response::Body::PreKeyBundles(PreKeyBundles { bundles })))
}

/// The caller's remaining prekeys.
pub async fn counts<D: Storage>(state: &AppState<D>, who: Authed) -> ApiResult {
    let c = state.storage.prekey_counts(who.account, who.device).await?;
    Ok(Some(response::Body::PreKeyCounts(PreKeyCounts {
        one_time: c.one_time,
        kyber: c.kyber,
        has_signed: c.has_signed,
        has_last_resort: c.has_last_resort,
    })))
}

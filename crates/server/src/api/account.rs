//! Registering accounts, authenticating sockets, finding accounts by handle.
//!
//! Every login and registration is a proof by the device's identity key over the
//! connection's challenge and host (`tandem_core::auth`); the relay stores public keys only.

use tandem_core::auth::{self, Challenge, Proof};
use tandem_core::wire::relay::{
    AccountInfo, Authenticate, Authenticated, DeviceRemoved, LookupAccount, NewDevice,
    RegisterAccount, Registered, ResetAccount, Status, response,
};
use tandem_core::{AccountId, IdentityKey};

use super::{ApiError, ApiResult, Authed, account_id, limit};
use crate::AppState;
use crate::limits::Limited;
use crate::storage::{NewDeviceRow, Storage, StorageError};

/// Normalizes and checks a handle: 3–32 of `a-z 0-9 _ .`, not starting or ending with `.`.
pub fn normalize_handle(handle: &str) -> Result<String, ApiError> {
    let h = handle.trim().to_lowercase();
    let valid_chars =
        h.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if !(3..=32).contains(&h.len()) || !valid_chars || h.starts_with('.') || h.ends_with('.') {
        return Err(ApiError::bad(
            "a handle is 3 to 32 letters, digits, '_' or '.', not starting or ending with '.'",
        ));
    }
    Ok(h)
}

/// Checks a new device's fields; returns its row and identity key.
pub fn new_device_row(d: Option<NewDevice>) -> Result<(NewDeviceRow, IdentityKey), ApiError> {
    let d = d.ok_or_else(|| ApiError::bad("missing device"))?;
    let key = IdentityKey::from_bytes(&d.identity_key)
        .map_err(|e| ApiError::bad(format!("identity key: {e}")))?;
    if !(1..=tandem_core::prekeys::MAX_REGISTRATION_ID).contains(&d.registration_id) {
        return Err(ApiError::bad("registration id must be in 1..=16380"));
    }
    if d.name.chars().count() > 64 || d.platform.chars().count() > 32 {
        return Err(ApiError::bad("device name (64) or platform (32) too long"));
    }
    if d.adv_identity.len() > tandem_core::devices::MAX_ADV_LEN {
        return Err(ApiError::bad("ADV identity too large"));
    }
    let row = NewDeviceRow {
        registration_id: d.registration_id,
        identity_key: d.identity_key,
        adv_identity: d.adv_identity,
        name: d.name,
        platform: d.platform,
    };
    Ok((row, key))
}

/// Checks a proof by `key` for this connection (under any host the relay answers to);
/// refusals count against the network's login budget.
pub fn check_proof<D: Storage>(
    state: &AppState<D>,
    connection: Authed,
    challenges: &[Challenge],
    key: &IdentityKey,
    proof: &Proof<'_>,
    signature: &[u8],
) -> Result<(), ApiError> {
    if challenges.iter().any(|c| auth::verify(key, c, proof, signature)) {
        return Ok(());
    }
    limit(state, connection, Limited::Auth, 1.0)?;
    Err(ApiError::new(
        Status::Unauthorized,
        "the proof does not verify for this connection (wrong key, or signed for another server)",
    ))
}

/// Creates an account; the caller's socket becomes its primary.
pub async fn register<D: Storage>(
    state: &AppState<D>,
    connection: Authed,
    challenges: &[Challenge],
    r: RegisterAccount,
) -> Result<(Authed, Registered), ApiError> {
    limit(state, connection, Limited::Auth, 1.0)?;
    let (mut device, key) = new_device_row(r.device)?;
    check_proof(
        state,
        connection,
        challenges,
        &key,
        &Proof::RegisterAccount { handle: &r.handle },
        &r.signature,
    )?;
    let handle = normalize_handle(&r.handle)?;
    device.adv_identity.clear();
    let mut id = [0u8; 16];
    rand::fill(&mut id);
    let id = AccountId(id);
    match state.storage.create_account(id, &handle, device, crate::now_ms()).await {
        Ok(()) => Ok((
            Authed { account: id, device: 1 },
            Registered { account_id: id.0.to_vec(), device_id: 1 },
        )),
        Err(StorageError::Conflict) => Err(ApiError::new(Status::Conflict, "that handle is taken")),
        Err(e) => Err(e.into()),
    }
}

/// Primary: re-registers the account under a new account key (see `ResetAccount`), proved by
/// the current account key and by the new one over this connection's challenge. The
/// companions' sockets close at once; contacts fetch the new key with the next device list.
pub async fn reset<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    challenges: &[Challenge],
    r: ResetAccount,
) -> ApiResult {
    if !who.is_primary() {
        return Err(ApiError::new(
            Status::Unauthorized,
            "only the main device can reset the account",
        ));
    }
    limit(state, who, Limited::Auth, 1.0)?;
    let (mut device, new_key) = new_device_row(r.device)?;
    let row = state
        .storage
        .account(who.account)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such account"))?;
    let old_key = IdentityKey::from_bytes(&row.identity_key)
        .map_err(|_| ApiError::new(Status::Internal, "bad account key"))?;
    let proof = Proof::ResetAccount { account: &who.account, new_key: &new_key };
    check_proof(state, who, challenges, &old_key, &proof, &r.account_signature)?;
    check_proof(state, who, challenges, &new_key, &proof, &r.device_signature)?;
    device.adv_identity.clear();
    let removed = state.storage.reset_account(who.account, device).await?;
    state.invalidate_devices(who.account);
    for d in removed {
        state.hub.remove(who.account, d);
    }
    Ok(None)
}

/// Authenticates the socket as a device: the device's identity key signed this connection's
/// challenge. A device that is gone gets `Unauthorized` with the account's signed device
/// list, for it to check whether it was really logged out.
pub async fn authenticate<D: Storage>(
    state: &AppState<D>,
    connection: Authed,
    challenges: &[Challenge],
    r: Authenticate,
) -> Result<(Authed, Authenticated), ApiError> {
    let account = account_id(&r.account_id)?;
    let Some(device) = state.storage.device(account, r.device_id).await? else {
        limit(state, connection, Limited::Auth, 1.0)?;
        return Err(removed(state, account).await);
    };
    let key = IdentityKey::from_bytes(&device.identity_key)
        .map_err(|_| ApiError::new(Status::Internal, "bad identity key"))?;
    let proof = Proof::Authenticate { account: &account, device: r.device_id };
    check_proof(state, connection, challenges, &key, &proof, &r.signature)?;
    let row = state
        .storage
        .account(account)
        .await?
        .ok_or_else(|| ApiError::new(Status::Unauthorized, "no such account"))?;
    if state.relay.misbehaves(&crate::config::Misbehaviour::RefuseLogin(row.handle.clone())) {
        return Err(removed(state, account).await);
    }
    Ok((
        Authed { account, device: r.device_id },
        Authenticated {
            account_id: account.0.to_vec(),
            device_id: r.device_id,
            handle: row.handle,
        },
    ))
}

/// `Unauthorized` for a device that is gone, with the account's signed device list.
pub async fn removed<D: Storage>(state: &AppState<D>, account: AccountId) -> ApiError {
    let signed_device_list = state
        .storage
        .account(account)
        .await
        .ok()
        .flatten()
        .map(|a| a.signed_device_list)
        .unwrap_or_default();
    ApiError {
        status: Status::Unauthorized,
        message: "this device is not registered (any more)".into(),
        body: Some(Box::new(response::Body::Removed(DeviceRemoved { signed_device_list }))),
    }
}

/// Finds an account by handle.
pub async fn lookup<D: Storage>(state: &AppState<D>, who: Authed, r: LookupAccount) -> ApiResult {
    limit(state, who, Limited::Lookup, 1.0)?;
    let row = if r.account_id.is_empty() {
        let handle = normalize_handle(&r.handle)?;
        state.storage.account_by_handle(&handle).await?
    } else {
        state.storage.account(account_id(&r.account_id)?).await?
    };
    let missing =
        if r.account_id.is_empty() { "no account has that handle" } else { "no such account" };
    let row = row.ok_or_else(|| ApiError::new(Status::NotFound, missing))?;
    Ok(Some(response::Body::Account(AccountInfo {
        account_id: row.id.0.to_vec(),
        handle: row.handle,
        account_identity_key: row.identity_key,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_handles() {
        assert_eq!(normalize_handle(" Alice.B_2 ").unwrap(), "alice.b_2");
        for bad in ["ab", ".alice", "alice.", "al ice", "ällo", &"x".repeat(33)] {
            assert!(normalize_handle(bad).is_err(), "{bad}");
        }
    }
}

//! Registering accounts, authenticating sockets, finding accounts by handle.

use tandem_core::wire::relay::{
    AccountInfo, Authenticate, Authenticated, DEVICE_PASSWORD_LEN, LookupAccount, NewDevice,
    RegisterAccount, Registered, Status, response,
};
use tandem_core::{AccountId, IdentityKey};

use super::{ApiError, ApiResult, Authed, account_id, hashes_equal, limit, secret_hash};
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

/// Checks a new device's fields and hashes its secret.
pub fn new_device_row(d: Option<NewDevice>) -> Result<NewDeviceRow, ApiError> {
    let d = d.ok_or_else(|| ApiError::bad("missing device"))?;
    IdentityKey::from_bytes(&d.identity_key)
        .map_err(|e| ApiError::bad(format!("identity key: {e}")))?;
    if !(1..=tandem_core::prekeys::MAX_REGISTRATION_ID).contains(&d.registration_id) {
        return Err(ApiError::bad("registration id must be in 1..=16380"));
    }
    if d.password.len() != DEVICE_PASSWORD_LEN {
        return Err(ApiError::bad("a device secret is 32 bytes"));
    }
    if d.name.chars().count() > 64 || d.platform.chars().count() > 32 {
        return Err(ApiError::bad("device name (64) or platform (32) too long"));
    }
    if d.adv_identity.len() > tandem_core::devices::MAX_ADV_LEN {
        return Err(ApiError::bad("ADV identity too large"));
    }
    Ok(NewDeviceRow {
        registration_id: d.registration_id,
        identity_key: d.identity_key,
        adv_identity: d.adv_identity,
        password_hash: secret_hash(&d.password),
        name: d.name,
        platform: d.platform,
    })
}

/// Creates an account; the caller's socket becomes its primary.
pub async fn register<D: Storage>(
    state: &AppState<D>,
    connection: Authed,
    r: RegisterAccount,
) -> Result<(Authed, Registered), ApiError> {
    limit(state, connection, Limited::Auth, 1.0)?;
    let handle = normalize_handle(&r.handle)?;
    let mut device = new_device_row(r.device)?;
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

/// Primary: re-registers the account under a new account key (see `ResetAccount`). The
/// companions' sockets close at once; contacts fetch the new key with the next device list.
pub async fn reset<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    r: tandem_core::wire::relay::ResetAccount,
) -> ApiResult {
    if !who.is_primary() {
        return Err(ApiError::new(
            Status::Unauthorized,
            "only the main device can reset the account",
        ));
    }
    limit(state, who, Limited::Auth, 1.0)?;
    let mut device = new_device_row(r.device)?;
    device.adv_identity.clear();
    let removed = state.storage.reset_account(who.account, device).await?;
    state.invalidate_devices(who.account);
    for d in removed {
        state.hub.remove(who.account, d);
    }
    Ok(None)
}

/// Authenticates the socket as a device.
pub async fn authenticate<D: Storage>(
    state: &AppState<D>,
    connection: Authed,
    r: Authenticate,
) -> Result<(Authed, Authenticated), ApiError> {
    let wrong = || ApiError::new(Status::Unauthorized, "wrong account, device or secret");
    let account = account_id(&r.account_id)?;
    let device = state.storage.device(account, r.device_id).await?;
    let ok =
        device.as_ref().is_some_and(|d| hashes_equal(&d.password_hash, &secret_hash(&r.password)));
    if !ok {
        limit(state, connection, Limited::Auth, 1.0)?;
        return Err(wrong());
    }
    let row = state.storage.account(account).await?.ok_or_else(wrong)?;
    Ok((
        Authed { account, device: r.device_id },
        Authenticated {
            account_id: account.0.to_vec(),
            device_id: r.device_id,
            handle: row.handle,
        },
    ))
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

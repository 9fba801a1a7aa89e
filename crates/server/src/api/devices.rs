//! Companion linking tokens, device registration and removal, device lists.

use std::time::Duration;

use tandem_core::auth::{Challenge, Proof};
use tandem_core::devices::{DeviceIdentityDetails, SignedDeviceIdentity, SignedDeviceList};
use tandem_core::wire::relay::{
    DeviceInfo, DeviceRegistered, Devices, GetDevices, LinkToken, MAX_COMPANIONS,
    MAX_PROVISIONING_MESSAGE, RegisterDevice, RemoveDevice, SendProvisioning, SetDeviceList,
    Status, UpdateDevice, response,
};
use tandem_core::{IdentityKey, IdentityKeyPair, Timestamp};

use super::{ApiError, ApiResult, Authed, account_id, limit, secret_hash};
use crate::AppState;
use crate::config::Misbehaviour;
use crate::limits::Limited;
use crate::storage::Storage;

/// How long a link token works.
pub const LINK_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// Most unexpired link tokens one account may hold.
pub const MAX_LINK_TOKENS: u64 = 20;

fn primary_only(who: Authed, what: &str) -> Result<(), ApiError> {
    if who.is_primary() {
        Ok(())
    } else {
        Err(ApiError::new(Status::Unauthorized, format!("only the primary device can {what}")))
    }
}

async fn companions<D: Storage>(state: &AppState<D>, who: Authed) -> Result<u32, ApiError> {
    let devices = state.storage.devices(who.account).await?;
    Ok(u32::try_from(devices.iter().filter(|d| d.device_id > 1).count()).unwrap_or(u32::MAX))
}

/// Primary: a single-use token for one companion (rate limited, and at most
/// [`MAX_LINK_TOKENS`] unexpired at once).
pub async fn create_link_token<D: Storage>(state: &AppState<D>, who: Authed) -> ApiResult {
    primary_only(who, "link devices")?;
    limit(state, who, Limited::LinkToken, 1.0)?;
    let count = companions(state, who).await?;
    if count >= MAX_COMPANIONS {
        return Err(ApiError::new(
            Status::LimitReached,
            format!("this account already has {MAX_COMPANIONS} linked devices; log one out first"),
        ));
    }
    let mut token = [0u8; 32];
    rand::fill(&mut token);
    let expires_at =
        crate::now_ms() + u64::try_from(LINK_TOKEN_TTL.as_millis()).unwrap_or(u64::MAX);
    state
        .storage
        .create_link_token(
            who.account,
            secret_hash(&token),
            crate::now_ms(),
            expires_at,
            MAX_LINK_TOKENS,
        )
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::LimitReached => ApiError::new(
                Status::LimitReached,
                "too many link codes are open; wait until they expire",
            ),
            other => other.into(),
        })?;
    Ok(Some(response::Body::LinkToken(LinkToken {
        token: token.to_vec(),
        expires_at_ms: expires_at,
        companions: count,
        max_companions: MAX_COMPANIONS,
    })))
}

/// Registers a companion; its ADV identity must verify under the account key, and it must
/// prove it holds its identity key (a proof over this connection's challenge).
pub async fn register<D: Storage>(
    state: &AppState<D>,
    connection: Authed,
    challenges: &[Challenge],
    r: RegisterDevice,
) -> Result<(Authed, DeviceRegistered), ApiError> {
    let account = account_id(&r.account_id)?;
    let (device, key) = super::account::new_device_row(r.device)?;
    let proof = Proof::RegisterDevice { account: &account };
    super::account::check_proof(state, connection, challenges, &key, &proof, &r.signature)?;
    let row = state
        .storage
        .account(account)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such account"))?;
    let account_key = IdentityKey::from_bytes(&row.identity_key)
        .map_err(|_| ApiError::new(Status::Internal, "bad account key"))?;
    let adv = SignedDeviceIdentity::from_bytes(&device.adv_identity)
        .map_err(|e| ApiError::bad(format!("ADV identity: {e}")))?;
    let details =
        adv.verify(&account_key).map_err(|e| ApiError::bad(format!("ADV identity: {e}")))?;
    if details.account_id != account
        || details.identity_key.serialize()[..] != device.identity_key[..]
    {
        return Err(ApiError::bad("ADV identity is for another account or key"));
    }
    let token = <[u8; 32]>::try_from(r.link_token.as_slice())
        .map_err(|_| ApiError::bad("a link token is 32 bytes"))?;
    let id = state
        .storage
        .register_device(account, secret_hash(&token), device, crate::now_ms(), MAX_COMPANIONS)
        .await
        .map_err(|e| match e {
            crate::storage::StorageError::LimitReached => ApiError::new(
                Status::LimitReached,
                format!("this account already has {MAX_COMPANIONS} linked devices"),
            ),
            other => other.into(),
        })?;
    state.invalidate_devices(account);
    state.hub.notify_account(account, || crate::hub::Notify::DeviceLinked(id));
    Ok((Authed { account, device: id }, DeviceRegistered { device_id: id }))
}

/// Primary: hands a sealed link message to the socket holding a provisioning address.
pub async fn send_provisioning<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    r: SendProvisioning,
) -> ApiResult {
    primary_only(who, "link devices")?;
    limit(state, who, Limited::Lookup, 1.0)?;
    if r.message.len() > MAX_PROVISIONING_MESSAGE {
        return Err(ApiError::new(
            Status::TooLarge,
            format!("a link message is at most {MAX_PROVISIONING_MESSAGE} bytes"),
        ));
    }
    let address = <[u8; 16]>::try_from(r.address.as_slice())
        .map_err(|_| ApiError::bad("a provisioning address is 16 bytes"))?;
    let mut message = r.message;
    if state.relay.misbehaves(&Misbehaviour::TamperProvisioning)
        && let Some(last) = message.last_mut()
    {
        *last ^= 1;
    }
    if !state.hub.send_provisioning(&address, message.into()) {
        return Err(ApiError::new(
            Status::NotFound,
            "that link code has expired or was already used",
        ));
    }
    Ok(None)
}

/// Removes a device: the primary any companion, a companion itself.
pub async fn remove<D: Storage>(state: &AppState<D>, who: Authed, r: RemoveDevice) -> ApiResult {
    if r.device_id == 1 {
        return Err(ApiError::bad("the primary device cannot be removed"));
    }
    if !who.is_primary() && who.device != r.device_id {
        return Err(ApiError::new(Status::Unauthorized, "a companion can only log itself out"));
    }
    if !state.storage.remove_device(who.account, r.device_id).await? {
        return Err(ApiError::new(Status::NotFound, "no such device"));
    }
    state.invalidate_devices(who.account);
    // The removed socket hears why with the signed list as it is now; the primary's new
    // list (revoking the device) follows, and the device checks that one at its next login.
    state.hub.remove(who.account, r.device_id);
    state.hub.notify_account_except(who.account, who.device, || {
        crate::hub::Notify::DeviceUnlinked(r.device_id)
    });
    Ok(None)
}

/// An account's devices; names and activity only for the account's own devices. Lookups
/// that check the sender of received traffic draw on their own budget.
pub async fn get<D: Storage>(state: &AppState<D>, who: Authed, r: GetDevices) -> ApiResult {
    let kind = if r.incoming { Limited::LookupIncoming } else { Limited::DeviceList };
    limit(state, who, kind, 1.0)?;
    let account = account_id(&r.account_id)?;
    let row = state
        .storage
        .account(account)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such account"))?;
    let own = account == who.account;
    let mut devices: Vec<DeviceInfo> = state
        .storage
        .devices(account)
        .await?
        .into_iter()
        .map(|d| DeviceInfo {
            device_id: d.device_id,
            registration_id: d.registration_id,
            identity_key: d.identity_key,
            adv_identity: d.adv_identity,
            name: if own { d.name } else { String::new() },
            platform: if own { d.platform } else { String::new() },
            created_at_ms: d.created_at,
            last_seen_ms: if own { d.last_seen } else { 0 },
        })
        .collect();
    if state.relay.misbehaves(&Misbehaviour::InjectDevice(row.handle.clone())) {
        devices.push(injected_device(account));
    }
    Ok(Some(response::Body::Devices(Devices {
        account_id: account.0.to_vec(),
        account_identity_key: row.identity_key,
        signed_device_list: row.signed_device_list,
        devices,
    })))
}

/// Test mode only: a device the server made up for `account`, with its own identity key and
/// an ADV identity signed by a key that is not the account's (the server has no other).
fn injected_device(account: tandem_core::AccountId) -> DeviceInfo {
    let mut rng = rand::rng();
    let key = IdentityKeyPair::generate(&mut rng);
    let forger = IdentityKeyPair::generate(&mut rng);
    let details = DeviceIdentityDetails {
        account_id: account,
        key_index: 99,
        identity_key: *key.identity_key(),
        timestamp: Timestamp::from_millis(crate::now_ms()),
    };
    let adv = SignedDeviceIdentity::sign_by_account(&forger, details, &mut rng)
        .countersign(&key, forger.identity_key(), &mut rng)
        .map(|s| s.to_bytes())
        .unwrap_or_default();
    DeviceInfo {
        device_id: INJECTED_DEVICE,
        registration_id: 4242,
        identity_key: key.identity_key().serialize().to_vec(),
        adv_identity: adv,
        created_at_ms: crate::now_ms(),
        ..Default::default()
    }
}

/// The device id a test relay injects.
pub const INJECTED_DEVICE: u32 = 99;

/// Primary: publishes a signed device list (checked like any client would).
pub async fn set_list<D: Storage>(state: &AppState<D>, who: Authed, r: SetDeviceList) -> ApiResult {
    primary_only(who, "sign the device list")?;
    let row = state
        .storage
        .account(who.account)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such account"))?;
    let account_key = IdentityKey::from_bytes(&row.identity_key)
        .map_err(|_| ApiError::new(Status::Internal, "bad account key"))?;
    let signed = SignedDeviceList::from_bytes(&r.signed_device_list)
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let list = signed.verify(&account_key).map_err(|e| ApiError::bad(e.to_string()))?;
    if list.account_id != who.account {
        return Err(ApiError::bad("the list is for another account"));
    }
    if list.is_expired(Timestamp::from_millis(crate::now_ms())) {
        return Err(ApiError::bad("the list has already expired"));
    }
    state.storage.set_device_list(who.account, &r.signed_device_list, list.version).await?;
    state.invalidate_devices(who.account);
    Ok(None)
}

/// Renames the caller's device.
pub async fn update<D: Storage>(state: &AppState<D>, who: Authed, r: UpdateDevice) -> ApiResult {
    let name = r.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(ApiError::bad("a device name is 1 to 64 characters"));
    }
    state.storage.rename_device(who.account, who.device, name).await?;
    Ok(None)
}

//! Verified device lists: fetched from the relay, checked with ADV, cached, and never rolled
//! back.

use super::{Client, ClientError, DEVICE_LIST_CACHE_TTL, DeviceListRecord, call};
use crate::address::{AccountId, DeviceId};
use crate::devices::{AdvError, VerifiedDevice, verify_devices};
use crate::store::{Changes, ClientStore};
use crate::time::Timestamp;
use crate::transport::RelayTransport;
use crate::wire::relay::{GetDevices, request, response};

impl<S: ClientStore> Client<S> {
    /// The verified devices of `account`: from the cache while it is fresh, else fetched and
    /// checked. `force` always fetches.
    ///
    /// Fails as a whole when the account key changed ([`AdvError::AccountKeyChanged`]) or
    /// the server served an older list than one already seen; devices that do not verify
    /// are listed in [`DeviceListRecord::rejected`] and never used.
    pub async fn device_list<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account: AccountId,
        now: Timestamp,
        force: bool,
    ) -> Result<DeviceListRecord, ClientError> {
        let cached = self.store.load_device_list(&account).await?;
        if let Some(c) = &cached
            && !force
            && !c.stale
            && now.saturating_duration_since(c.fetched_at) < DEVICE_LIST_CACHE_TTL
        {
            return Ok(c.clone());
        }
        let Some(response::Body::Devices(devices)) = call(
            transport,
            request::Body::GetDevices(GetDevices { account_id: account.0.to_vec() }),
        )
        .await?
        else {
            return Err(ClientError::UnexpectedResponse("devices"));
        };
        let me = self.account().await;
        let trusted = match &cached {
            Some(c) => Some(c.account_key),
            None if account == me.account_id => Some(me.account_key),
            None => None,
        };
        let seen = cached.as_ref().and_then(|c| c.list_version);
        let verified = verify_devices(account, &devices, trusted.as_ref(), seen, now)?;
        let record = DeviceListRecord {
            account_id: account,
            account_key: verified.account_key,
            list_version: verified.list_version.or(seen),
            list_digest: verified.list_digest,
            list_expired: verified.list_expired,
            devices: verified.devices,
            rejected: verified.rejected,
            fetched_at: now,
            stale: false,
        };
        let mut changes = Changes::default();
        changes.device_lists.insert(account, record.clone());
        self.store.save_changes(changes).await?;
        Ok(record)
    }

    /// The verified identity of a device that sent us something, fetching the account's list
    /// once more if the device is not known yet. `Err` with the reason if it does not verify.
    pub(crate) async fn verified_sender<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account: AccountId,
        device: u32,
        now: Timestamp,
    ) -> Result<Result<VerifiedDevice, String>, ClientError> {
        let Ok(device_id) = DeviceId::new(device) else {
            return Ok(Err(format!("device id {device} is invalid")));
        };
        let cached = self.device_list(transport, account, now, false).await?;
        if let Some(d) = cached.device(device_id) {
            return Ok(Ok(d.clone()));
        }
        let fresh = self.device_list(transport, account, now, true).await?;
        if let Some(d) = fresh.device(device_id) {
            return Ok(Ok(d.clone()));
        }
        let reason = fresh
            .rejected
            .iter()
            .find(|r| r.device_id == device)
            .map(|r| r.reason.to_string())
            .unwrap_or_else(|| AdvError::NotInList.to_string());
        Ok(Err(reason))
    }

    /// Marks an account's cached list stale so the next use fetches it.
    pub(crate) async fn mark_list_stale(&self, account: AccountId) -> Result<(), ClientError> {
        if let Some(mut record) = self.store.load_device_list(&account).await? {
            record.stale = true;
            let mut changes = Changes::default();
            changes.device_lists.insert(account, record);
            self.store.save_changes(changes).await?;
        }
        Ok(())
    }
}

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
    /// A contact's changed account key is trusted at once (and the record says
    /// [`key_changed`](DeviceListRecord::key_changed)) unless the person had verified the old
    /// one: then the new key waits in [`pending_key`](DeviceListRecord::pending_key) and this
    /// fails with [`ClientError::AccountKeyChanged`] until they accept it. Fails as a whole
    /// when this account's own key changed or the server served an older list than one
    /// already seen; devices that do not verify are listed in
    /// [`DeviceListRecord::rejected`] and never used.
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
            if c.pending_key.is_some() {
                return Err(ClientError::AccountKeyChanged(account));
            }
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
        let own = account == me.account_id;
        let trusted = match &cached {
            Some(c) => Some(c.account_key),
            None if own => Some(me.account_key),
            None => None,
        };
        drop(me);
        let served = crate::identity::IdentityKey::from_bytes(&devices.account_identity_key).ok();
        let key_changed = !own && trusted.is_some() && served.is_some() && served != trusted;
        let record = match (&cached, key_changed) {
            (Some(c), true) if c.verified => {
                // Held: the verified key stays, the new one waits for the person.
                let mut held = c.clone();
                held.pending_key = served;
                held.fetched_at = now;
                held.stale = false;
                let mut changes = Changes::default();
                changes.device_lists.insert(account, held);
                self.store.save_changes(changes).await?;
                return Err(ClientError::AccountKeyChanged(account));
            }
            (Some(_), true) => {
                // Not verified: the new key is trusted from now on (its list versions start
                // afresh), and chats show that it changed.
                let verified = verify_devices(account, &devices, None, None, now)?;
                DeviceListRecord {
                    list_version: verified.list_version,
                    key_changed: true,
                    ..Self::list_record(account, verified, now)
                }
            }
            _ => {
                let seen = cached.as_ref().and_then(|c| c.list_version);
                let verified = verify_devices(account, &devices, trusted.as_ref(), seen, now)?;
                DeviceListRecord {
                    list_version: verified.list_version.or(seen),
                    // The server shows the verified key again: nothing is pending.
                    verified: cached.as_ref().is_some_and(|c| c.verified),
                    key_changed: cached.as_ref().is_some_and(|c| c.key_changed),
                    ..Self::list_record(account, verified, now)
                }
            }
        };
        let mut changes = Changes::default();
        changes.device_lists.insert(account, record.clone());
        self.store.save_changes(changes).await?;
        Ok(record)
    }

    fn list_record(
        account: AccountId,
        verified: crate::devices::VerifiedDevices,
        now: Timestamp,
    ) -> DeviceListRecord {
        DeviceListRecord {
            account_id: account,
            account_key: verified.account_key,
            list_version: verified.list_version,
            list_digest: verified.list_digest,
            list_expired: verified.list_expired,
            devices: verified.devices,
            rejected: verified.rejected,
            fetched_at: now,
            stale: false,
            verified: false,
            key_changed: false,
            pending_key: None,
        }
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

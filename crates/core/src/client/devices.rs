//! Verified device lists: fetched from the relay, checked with ADV, cached, and never rolled
//! back.

use std::time::Duration;

use super::{
    Client, ClientError, DEVICE_LIST_CACHE_TTL, DeviceListRecord, INCOMING_REFETCH_INTERVAL, call,
};
use crate::devices::{AdvError, KnownList, VerifiedDevice, verify_devices};
use crate::store::{ClientChanges, ClientStore};
use crate::transport::RelayTransport;
use crate::wire::relay::{GetDevices, request, response};
use tandem_signal::IdentityKey;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};

/// After a contact's account key changed without the person's say, a further change within
/// this time is held for the person (like a verified contact's).
pub const KEY_CHANGE_HOLD: Duration = Duration::from_secs(24 * 3600);

impl<S: ClientStore> Client<S> {
    /// The verified devices of `account`: from the cache while it is fresh, else fetched and
    /// checked. `force` always fetches.
    ///
    /// A contact's changed account key is trusted at once (and the record says
    /// [`key_changed`](DeviceListRecord::key_changed)) unless the person had verified the old
    /// one, or if the key already changed once within [`KEY_CHANGE_HOLD`]: then the new key
    /// waits in [`pending_key`](DeviceListRecord::pending_key) and this fails with
    /// [`ClientError::AccountKeyChanged`] until they accept it. Fails as a whole when this
    /// account's own key changed, the server served an older list than one already seen, or
    /// withheld the list; devices that do not verify (or were ever revoked) are listed in
    /// [`DeviceListRecord::rejected`] and never used.
    pub async fn device_list<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account: AccountId,
        now: Timestamp,
        force: bool,
    ) -> Result<DeviceListRecord, ClientError> {
        self.fetch_device_list(transport, account, now, force, false).await
    }

    async fn fetch_device_list<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account: AccountId,
        now: Timestamp,
        force: bool,
        incoming: bool,
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
            request::Body::GetDevices(GetDevices { account_id: account.0.to_vec(), incoming }),
        )
        .await?
        else {
            return Err(ClientError::UnexpectedResponse("devices"));
        };
        let own = account == self.whoami().await.0;
        let trusted = match &cached {
            Some(c) => Some(c.account_key),
            None if own => Some(self.account_key()),
            None => None,
        };
        let served = IdentityKey::from_bytes(&devices.account_identity_key).ok();
        let key_changed = !own && trusted.is_some() && served.is_some() && served != trusted;
        let recent_change = |c: &DeviceListRecord| {
            c.key_changed_at.is_some_and(|at| now.saturating_duration_since(at) < KEY_CHANGE_HOLD)
        };
        let record = match (&cached, key_changed) {
            (Some(c), true) if c.verified || recent_change(c) => {
                // Held: the trusted key stays, the new one waits for the person. (A relay
                // flipping an unverified contact's key back and forth gets one change a day
                // taken silently; every further one needs the person.)
                let mut held = c.clone();
                held.pending_key = served;
                held.fetched_at = now;
                held.stale = false;
                let mut changes = ClientChanges::default();
                changes.device_lists.insert(account, held);
                self.store.save_client_changes(changes).await?;
                return Err(ClientError::AccountKeyChanged(account));
            }
            (Some(_), true) => {
                // Not verified: the new key is trusted from now on (its list versions and
                // revocations start afresh), and chats show that it changed.
                let verified = verify_devices(account, &devices, KnownList::default(), now)?;
                DeviceListRecord {
                    list_version: verified.list_version,
                    key_changed: true,
                    key_changed_at: Some(now),
                    ..Self::list_record(account, verified, now)
                }
            }
            _ => {
                let seen = cached.as_ref().and_then(|c| c.list_version);
                let revoked = cached.as_ref().map(|c| c.revoked.as_slice()).unwrap_or_default();
                let known = KnownList { account_key: trusted.as_ref(), version: seen, revoked };
                let verified = verify_devices(account, &devices, known, now)?;
                DeviceListRecord {
                    list_version: verified.list_version.or(seen),
                    // The server shows the verified key again: nothing is pending.
                    verified: cached.as_ref().is_some_and(|c| c.verified),
                    key_changed: cached.as_ref().is_some_and(|c| c.key_changed),
                    key_changed_at: cached.as_ref().and_then(|c| c.key_changed_at),
                    ..Self::list_record(account, verified, now)
                }
            }
        };
        let mut changes = ClientChanges::default();
        changes.device_lists.insert(account, record.clone());
        self.store.save_client_changes(changes).await?;
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
            revoked: verified.revoked,
            key_changed_at: None,
        }
    }

    /// The verified identity of a device that sent us something. If the cached list does
    /// not explain it (an unknown device, or `claimed` — the identity a PreKey message names —
    /// differs from the verified one), the list is fetched afresh, at most once per
    /// [`INCOMING_REFETCH_INTERVAL`] per account and from the budget for incoming traffic,
    /// so a stranger's junk never uses up this device's own lookups. A contact who
    /// re-registered is found this way instead of being dropped. `Err` with the reason if it
    /// does not verify.
    pub(crate) async fn verified_sender<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account: AccountId,
        device: u32,
        claimed: Option<&IdentityKey>,
        now: Timestamp,
    ) -> Result<Result<VerifiedDevice, AdvError>, ClientError> {
        let Ok(device_id) = DeviceId::new(device) else {
            return Ok(Err(AdvError::Malformed("device id")));
        };
        let explains = |list: &DeviceListRecord| {
            list.device(device_id).filter(|d| claimed.is_none_or(|k| *k == d.identity_key)).cloned()
        };
        let cached = self.fetch_device_list(transport, account, now, false, true).await?;
        if let Some(d) = explains(&cached) {
            return Ok(Ok(d));
        }
        let recently = self
            .refetched
            .lock()
            .await
            .get(&account)
            .is_some_and(|at| now.saturating_duration_since(*at) < INCOMING_REFETCH_INTERVAL);
        let list = if recently || cached.fetched_at == now {
            cached
        } else {
            self.refetched.lock().await.insert(account, now);
            self.fetch_device_list(transport, account, now, true, true).await?
        };
        if let Some(d) = explains(&list) {
            return Ok(Ok(d));
        }
        let reason = match list.rejected.iter().find(|r| r.device_id == device) {
            Some(r) => r.reason.clone(),
            None if list.device(device_id).is_some() => AdvError::IdentityMismatch,
            None => AdvError::NotInList,
        };
        Ok(Err(reason))
    }

    /// Marks an account's cached list stale so the next use fetches it.
    pub(crate) async fn mark_list_stale(&self, account: AccountId) -> Result<(), ClientError> {
        if let Some(mut record) = self.store.load_device_list(&account).await? {
            record.stale = true;
            let mut changes = ClientChanges::default();
            changes.device_lists.insert(account, record);
            self.store.save_client_changes(changes).await?;
        }
        Ok(())
    }
}

//! Trust in contacts: the security code between this account and a contact, marking the
//! contact verified, and what happens when a contact's account key changes.
//!
//! The code compares *accounts* (see [`crate::fingerprint`]): thanks to ADV it does not
//! change when a contact links or removes a device. A verified contact whose account key
//! changes is held: nothing is sent to them until the person accepts the new code
//! ([`Client::acknowledge_key_change`]).

use super::{Client, ClientError, DeviceListRecord};
use crate::fingerprint::{AccountView, ScanOutcome, SecurityCode};
use crate::store::{ClientChanges, ClientStore};
use crate::transport::RelayTransport;
use tandem_signal::AccountId;
use tandem_signal::Timestamp;

/// The security code with one contact, and what this client knows of their devices.
#[derive(Clone, Debug)]
pub struct ContactCode {
    /// The code: 60 digits and the QR payload.
    pub code: SecurityCode,
    /// The contact's devices as last verified, with the trust flags.
    pub list: DeviceListRecord,
}

/// The digest a security code carries for a list: SHA-256 of the signed list, or zeros for
/// an account that has not published one.
fn digest(list: &DeviceListRecord) -> [u8; 32] {
    list.list_digest.unwrap_or([0; 32])
}

impl<S: ClientStore> Client<S> {
    /// The security code with `contact`, from freshly fetched device lists of both accounts
    /// (so both people see the current lists). For a verified contact whose key changed, the
    /// code is still the one of the verified key, and [`DeviceListRecord::pending_key`] says
    /// a new one waits.
    pub async fn security_code<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        contact: AccountId,
        now: Timestamp,
    ) -> Result<ContactCode, ClientError> {
        let (me, _) = self.whoami().await;
        if contact == me {
            return Err(ClientError::InvalidInput(
                "a security code is between you and someone else".into(),
            ));
        }
        let own = self.device_list(transport, me, now, true).await?;
        let list = match self.device_list(transport, contact, now, true).await {
            Ok(l) => l,
            Err(ClientError::AccountKeyChanged(_)) => self
                .store
                .load_device_list(&contact)
                .await?
                .ok_or(ClientError::UnexpectedResponse("device list"))?,
            Err(e) => return Err(e),
        };
        let code = SecurityCode::new(
            AccountView {
                account_id: &me.0,
                account_key: &own.account_key,
                device_list_digest: digest(&own),
            },
            AccountView {
                account_id: &contact.0,
                account_key: &list.account_key,
                device_list_digest: digest(&list),
            },
        )
        .map_err(|e| ClientError::InvalidInput(e.to_string()))?;
        Ok(ContactCode { code, list })
    }

    /// Compares `scanned` (the contact's QR payload) with the code this client computes;
    /// marks the contact verified only on [`ScanOutcome::Verified`]. A payload that does not
    /// parse changes nothing and fails with the reason.
    pub async fn verify_scanned<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        contact: AccountId,
        scanned: &[u8],
        now: Timestamp,
    ) -> Result<ScanOutcome, ClientError> {
        let current = self.security_code(transport, contact, now).await?;
        if current.list.pending_key.is_some() {
            return Err(ClientError::AccountKeyChanged(contact));
        }
        let outcome = current.code.compare(scanned)?;
        if outcome == ScanOutcome::Verified {
            self.set_verified(contact, true).await?;
        }
        Ok(outcome)
    }

    /// Marks `contact` verified (after comparing the digits) or not.
    pub async fn set_verified(
        &self,
        contact: AccountId,
        verified: bool,
    ) -> Result<(), ClientError> {
        let mut list = self.store.load_device_list(&contact).await?.ok_or_else(|| {
            ClientError::InvalidInput("no security code for that contact yet".into())
        })?;
        if verified && list.pending_key.is_some() {
            return Err(ClientError::AccountKeyChanged(contact));
        }
        list.verified = verified;
        if verified {
            list.key_changed = false;
        }
        let mut changes = ClientChanges::default();
        changes.device_lists.insert(contact, list);
        self.store.save_client_changes(changes).await?;
        Ok(())
    }

    /// The person has seen that `contact`'s account key changed: a held new key becomes the
    /// trusted one (no longer verified, its list fetched and checked afresh before the next
    /// send), and the notice goes away.
    pub async fn acknowledge_key_change(&self, contact: AccountId) -> Result<(), ClientError> {
        let Some(mut list) = self.store.load_device_list(&contact).await? else {
            return Ok(());
        };
        if let Some(new) = list.pending_key.take() {
            list.account_key = new;
            list.verified = false;
            list.list_version = None;
            list.list_digest = None;
            list.devices.clear();
            list.rejected.clear();
            list.stale = true;
        }
        list.key_changed = false;
        let mut changes = ClientChanges::default();
        changes.device_lists.insert(contact, list);
        self.store.save_client_changes(changes).await?;
        Ok(())
    }
}

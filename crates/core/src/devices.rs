//! Automatic Device Verification (ADV): the account key vouches for every device, so a
//! server cannot add one.
//!
//! - The **account key** is the primary's identity key (device 1). It never leaves the
//!   primary.
//! - Linking a companion, the primary signs a [`DeviceIdentityDetails`] naming the
//!   companion's identity key and a fresh **key index** (the *account signature*, domain
//!   prefix [`ACCOUNT_SIGNATURE_PREFIX`]); the companion countersigns the details together
//!   with the account key (the *device signature*, prefix [`DEVICE_SIGNATURE_PREFIX`]).
//!   The result, a [`SignedDeviceIdentity`], is stored by the server next to the device.
//! - The primary signs the **device list**: which device id holds which key index, a version
//!   that only grows, a timestamp and an expiry ([`SignedDeviceList`], prefix
//!   [`DEVICE_LIST_PREFIX`]). Only the primary can renew it.
//! - Clients check the whole chain on every fetch ([`verify_devices`]) and never encrypt to
//!   a device that fails. An expired list leaves only the primary.

use std::time::Duration;

use prost::Message;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::wire::relay::Devices;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};
use tandem_signal::{IdentityKey, IdentityKeyPair};

/// Domain separation for the account's signature over a device identity.
pub const ACCOUNT_SIGNATURE_PREFIX: &[u8] = b"Tandem ADV account signature v1\x00";
/// Domain separation for the device's countersignature.
pub const DEVICE_SIGNATURE_PREFIX: &[u8] = b"Tandem ADV device signature v1\x00";
/// Domain separation for the signed device list.
pub const DEVICE_LIST_PREFIX: &[u8] = b"Tandem ADV device list v1\x00";
/// How long a signed device list is valid.
pub const DEVICE_LIST_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The primary renews its list when less than this is left.
pub const DEVICE_LIST_RENEW_BEFORE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest ADV blob accepted.
pub const MAX_ADV_LEN: usize = 4096;

/// Why a device or device list did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdvError {
    /// The bytes do not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The account's signature does not verify.
    #[error("the account key did not sign this")]
    BadAccountSignature,
    /// The device's countersignature is missing or does not verify.
    #[error("the device did not countersign its identity")]
    BadDeviceSignature,
    /// The identity key the server serves differs from the signed one.
    #[error("the device's identity key is not the one the account signed")]
    IdentityMismatch,
    /// The signed data names another account.
    #[error("signed for another account")]
    WrongAccount,
    /// The device is not in the signed device list.
    #[error("the device is not in the account's signed device list")]
    NotInList,
    /// The device's key index differs from the list's entry for its id.
    #[error("the device's key index does not match the signed device list")]
    KeyIndexMismatch,
    /// The signed device list has expired; only the primary is trusted until it is renewed.
    #[error("the signed device list expired")]
    ListExpired,
    /// The server served an older device list than one already seen.
    #[error("the device list is older (version {found}) than one already seen (version {seen})")]
    ListRollback {
        /// The newest version seen before.
        seen: u64,
        /// The version served now.
        found: u64,
    },
    /// The account identity key differs from the trusted one (re-registration, or a forgery).
    #[error("the account identity key changed")]
    AccountKeyChanged,
    /// The primary's identity key is not the account key.
    #[error("the primary device's identity key is not the account key")]
    PrimaryMismatch,
    /// The device's key index was revoked (the device was logged out); it never comes back.
    #[error("the device was logged out of its account")]
    Revoked,
    /// The server served no signed list for an account that had one (a rollback).
    #[error("the server withheld the device list (version {seen} was seen before)")]
    ListWithdrawn {
        /// The newest version seen before.
        seen: u64,
    },
}

#[derive(Clone, PartialEq, prost::Message)]
struct DetailsProto {
    #[prost(bytes = "vec", tag = "1")]
    account_id: Vec<u8>,
    #[prost(uint32, tag = "2")]
    key_index: u32,
    #[prost(bytes = "vec", tag = "3")]
    identity_key: Vec<u8>,
    #[prost(uint64, tag = "4")]
    timestamp: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SignedIdentityProto {
    #[prost(bytes = "vec", tag = "1")]
    details: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    account_signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    device_signature: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListEntryProto {
    #[prost(uint32, tag = "1")]
    device_id: u32,
    #[prost(uint32, tag = "2")]
    key_index: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListProto {
    #[prost(bytes = "vec", tag = "1")]
    account_id: Vec<u8>,
    #[prost(uint64, tag = "2")]
    version: u64,
    #[prost(uint64, tag = "3")]
    timestamp: u64,
    #[prost(uint64, tag = "4")]
    expires_at: u64,
    #[prost(message, repeated, tag = "5")]
    entries: Vec<ListEntryProto>,
    #[prost(uint32, repeated, tag = "6")]
    revoked: Vec<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SignedListProto {
    #[prost(bytes = "vec", tag = "1")]
    details: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    account_signature: Vec<u8>,
}

fn decode<M: Message + Default>(what: &'static str, bytes: &[u8]) -> Result<M, AdvError> {
    if bytes.len() > MAX_ADV_LEN {
        return Err(AdvError::Malformed(what));
    }
    M::decode(bytes).map_err(|_| AdvError::Malformed(what))
}

fn signature(what: &'static str, bytes: &[u8]) -> Result<[u8; 64], AdvError> {
    bytes.try_into().map_err(|_| AdvError::Malformed(what))
}

/// What the account key vouches for about one companion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceIdentityDetails {
    /// The account.
    pub account_id: AccountId,
    /// The index the primary assigned (unique per account, never reused).
    pub key_index: u32,
    /// The companion's identity key.
    pub identity_key: IdentityKey,
    /// When the primary signed it.
    pub timestamp: Timestamp,
}

/// A companion's identity, signed by the account key and countersigned by the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDeviceIdentity {
    details: DeviceIdentityDetails,
    details_bytes: Vec<u8>,
    account_signature: [u8; 64],
    device_signature: Option<[u8; 64]>,
}

impl SignedDeviceIdentity {
    /// The primary signs a companion's identity.
    pub fn sign_by_account(
        account: &IdentityKeyPair,
        details: DeviceIdentityDetails,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let details_bytes = DetailsProto {
            account_id: details.account_id.0.to_vec(),
            key_index: details.key_index,
            identity_key: details.identity_key.serialize().to_vec(),
            timestamp: details.timestamp.as_millis(),
        }
        .encode_to_vec();
        let account_signature =
            account.private_key().sign_parts(&[ACCOUNT_SIGNATURE_PREFIX, &details_bytes], rng);
        Self { details, details_bytes, account_signature, device_signature: None }
    }

    /// The companion countersigns, after checking the account signed its own key.
    pub fn countersign(
        mut self,
        device: &IdentityKeyPair,
        account_key: &IdentityKey,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, AdvError> {
        self.check_account_signature(account_key)?;
        if self.details.identity_key != *device.identity_key() {
            return Err(AdvError::IdentityMismatch);
        }
        let sig = device.private_key().sign_parts(
            &[DEVICE_SIGNATURE_PREFIX, &self.details_bytes, &account_key.serialize()],
            rng,
        );
        self.device_signature = Some(sig);
        Ok(self)
    }

    fn check_account_signature(&self, account_key: &IdentityKey) -> Result<(), AdvError> {
        account_key
            .public_key()
            .verify_signature_parts(
                &[ACCOUNT_SIGNATURE_PREFIX, &self.details_bytes],
                &self.account_signature,
            )
            .map_err(|_| AdvError::BadAccountSignature)
    }

    /// Checks the account's signature only (before the device countersigned); returns what
    /// it vouches for.
    pub fn verify_account_signature(
        &self,
        account_key: &IdentityKey,
    ) -> Result<&DeviceIdentityDetails, AdvError> {
        self.check_account_signature(account_key)?;
        Ok(&self.details)
    }

    /// Checks both signatures; returns what they vouch for.
    pub fn verify(&self, account_key: &IdentityKey) -> Result<&DeviceIdentityDetails, AdvError> {
        self.check_account_signature(account_key)?;
        let device_sig = self.device_signature.as_ref().ok_or(AdvError::BadDeviceSignature)?;
        self.details
            .identity_key
            .public_key()
            .verify_signature_parts(
                &[DEVICE_SIGNATURE_PREFIX, &self.details_bytes, &account_key.serialize()],
                device_sig,
            )
            .map_err(|_| AdvError::BadDeviceSignature)?;
        Ok(&self.details)
    }

    /// The details (unverified until [`verify`](Self::verify)).
    pub fn details(&self) -> &DeviceIdentityDetails {
        &self.details
    }

    /// Serializes for the server.
    pub fn to_bytes(&self) -> Vec<u8> {
        SignedIdentityProto {
            details: self.details_bytes.clone(),
            account_signature: self.account_signature.to_vec(),
            device_signature: self.device_signature.map(|s| s.to_vec()).unwrap_or_default(),
        }
        .encode_to_vec()
    }

    /// Parses (without verifying).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AdvError> {
        let what = "signed device identity";
        let p: SignedIdentityProto = decode(what, bytes)?;
        let d: DetailsProto = decode(what, &p.details)?;
        let details = DeviceIdentityDetails {
            account_id: AccountId::from_bytes(&d.account_id)
                .map_err(|_| AdvError::Malformed(what))?,
            key_index: d.key_index,
            identity_key: IdentityKey::from_bytes(&d.identity_key)
                .map_err(|_| AdvError::Malformed(what))?,
            timestamp: Timestamp::from_millis(d.timestamp),
        };
        Ok(Self {
            details,
            details_bytes: p.details,
            account_signature: signature(what, &p.account_signature)?,
            device_signature: if p.device_signature.is_empty() {
                None
            } else {
                Some(signature(what, &p.device_signature)?)
            },
        })
    }
}

/// One device in the signed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceListEntry {
    /// The server's device id.
    pub device_id: DeviceId,
    /// The key index the primary signed for it (0 for the primary itself).
    pub key_index: u32,
}

/// The account's devices as the primary declares them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceList {
    /// The account.
    pub account_id: AccountId,
    /// Grows with every new list.
    pub version: u64,
    /// When it was signed.
    pub timestamp: Timestamp,
    /// When it stops being valid.
    pub expires_at: Timestamp,
    /// The devices, primary included.
    pub entries: Vec<DeviceListEntry>,
    /// Key indexes of devices that were logged out, sorted: never valid again, whatever a
    /// later list or the server says.
    pub revoked: Vec<u32>,
}

impl DeviceList {
    /// Whether the list is past its expiry at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now > self.expires_at
    }

    /// Whether the primary should sign a fresh one at `now`.
    pub fn needs_renewal(&self, now: Timestamp) -> bool {
        now.saturating_add(DEVICE_LIST_RENEW_BEFORE) > self.expires_at
    }

    /// The entry for a device id.
    pub fn entry(&self, device_id: DeviceId) -> Option<&DeviceListEntry> {
        self.entries.iter().find(|e| e.device_id == device_id)
    }
}

/// A device list signed by the account key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDeviceList {
    list: DeviceList,
    details_bytes: Vec<u8>,
    signature: [u8; 64],
}

impl SignedDeviceList {
    /// The primary signs a list.
    pub fn sign(account: &IdentityKeyPair, list: DeviceList, rng: &mut impl CryptoRng) -> Self {
        let details_bytes = ListProto {
            account_id: list.account_id.0.to_vec(),
            version: list.version,
            timestamp: list.timestamp.as_millis(),
            expires_at: list.expires_at.as_millis(),
            entries: list
                .entries
                .iter()
                .map(|e| ListEntryProto { device_id: e.device_id.get(), key_index: e.key_index })
                .collect(),
            revoked: list.revoked.clone(),
        }
        .encode_to_vec();
        let signature =
            account.private_key().sign_parts(&[DEVICE_LIST_PREFIX, &details_bytes], rng);
        Self { list, details_bytes, signature }
    }

    /// Checks the signature; returns the list.
    pub fn verify(&self, account_key: &IdentityKey) -> Result<&DeviceList, AdvError> {
        account_key
            .public_key()
            .verify_signature_parts(&[DEVICE_LIST_PREFIX, &self.details_bytes], &self.signature)
            .map_err(|_| AdvError::BadAccountSignature)?;
        Ok(&self.list)
    }

    /// The list (unverified until [`verify`](Self::verify)).
    pub fn list(&self) -> &DeviceList {
        &self.list
    }

    /// Serializes for the server.
    pub fn to_bytes(&self) -> Vec<u8> {
        SignedListProto {
            details: self.details_bytes.clone(),
            account_signature: self.signature.to_vec(),
        }
        .encode_to_vec()
    }

    /// SHA-256 of the serialized list: what the security code's QR carries.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.to_bytes()).into()
    }

    /// Parses (without verifying).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AdvError> {
        let what = "signed device list";
        let p: SignedListProto = decode(what, bytes)?;
        let l: ListProto = decode(what, &p.details)?;
        let entries = l
            .entries
            .iter()
            .map(|e| {
                Ok(DeviceListEntry {
                    device_id: DeviceId::new(e.device_id).map_err(|_| AdvError::Malformed(what))?,
                    key_index: e.key_index,
                })
            })
            .collect::<Result<Vec<_>, AdvError>>()?;
        if l.revoked.windows(2).any(|w| w[0] >= w[1])
            || entries.iter().any(|e| l.revoked.binary_search(&e.key_index).is_ok())
            || entries
                .iter()
                .enumerate()
                .any(|(i, e)| entries[..i].iter().any(|o| o.device_id == e.device_id))
        {
            // Revocations unsorted or repeated, a revoked index listed as live, a device twice.
            return Err(AdvError::Malformed(what));
        }
        let list = DeviceList {
            account_id: AccountId::from_bytes(&l.account_id)
                .map_err(|_| AdvError::Malformed(what))?,
            version: l.version,
            timestamp: Timestamp::from_millis(l.timestamp),
            expires_at: Timestamp::from_millis(l.expires_at),
            entries,
            revoked: l.revoked,
        };
        Ok(Self {
            list,
            details_bytes: p.details,
            signature: signature(what, &p.account_signature)?,
        })
    }
}

/// A device whose whole chain verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDevice {
    /// The device.
    pub device_id: DeviceId,
    /// Its registration id (from the server; a wrong one only makes sends fail).
    pub registration_id: u32,
    /// Its identity key, vouched for by the account key.
    pub identity_key: IdentityKey,
}

/// A device the server listed that did not verify, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedDevice {
    /// The device id the server used.
    pub device_id: u32,
    /// Why it is not trusted.
    pub reason: AdvError,
}

/// The outcome of checking an account's devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDevices {
    /// The account.
    pub account_id: AccountId,
    /// Its account key.
    pub account_key: IdentityKey,
    /// The verified list's version, if there was a valid unexpired list.
    pub list_version: Option<u64>,
    /// SHA-256 of the signed list, if any (for the security code).
    pub list_digest: Option<[u8; 32]>,
    /// Whether the list had expired (then only the primary is trusted).
    pub list_expired: bool,
    /// Devices to encrypt to.
    pub devices: Vec<VerifiedDevice>,
    /// Devices the server listed that must not be used.
    pub rejected: Vec<RejectedDevice>,
    /// Every revoked key index known for the account: those the verified list revokes and
    /// those known before (`known_revoked`), sorted.
    pub revoked: Vec<u32>,
}

impl VerifiedDevices {
    /// The verified device with this id.
    pub fn device(&self, id: DeviceId) -> Option<&VerifiedDevice> {
        self.devices.iter().find(|d| d.device_id == id)
    }
}

/// What a client already knows about an account's lists, to check a new answer against.
#[derive(Clone, Copy, Debug, Default)]
pub struct KnownList<'a> {
    /// The account key trusted (`None` on first contact: trust on first use).
    pub account_key: Option<&'a IdentityKey>,
    /// The newest signed list version seen.
    pub version: Option<u64>,
    /// Key indexes known to be revoked (sorted).
    pub revoked: &'a [u32],
}

/// Checks a server's answer about `account_id` against what this client knows.
///
/// Errors only for problems with the account as a whole (changed key, rollback, a withheld
/// list, wrong account); single bad devices are listed in [`VerifiedDevices::rejected`]. A
/// device whose key index was ever seen revoked is rejected for good.
pub fn verify_devices(
    account_id: AccountId,
    response: &Devices,
    known: KnownList<'_>,
    now: Timestamp,
) -> Result<VerifiedDevices, AdvError> {
    let KnownList { account_key: trusted_account_key, version: seen_version, revoked } = known;
    if response.account_id != account_id.0 {
        return Err(AdvError::WrongAccount);
    }
    let account_key = IdentityKey::from_bytes(&response.account_identity_key)
        .map_err(|_| AdvError::Malformed("account key"))?;
    if trusted_account_key.is_some_and(|k| *k != account_key) {
        return Err(AdvError::AccountKeyChanged);
    }
    let mut out = VerifiedDevices {
        account_id,
        account_key,
        list_version: None,
        list_digest: None,
        list_expired: false,
        devices: Vec::new(),
        rejected: Vec::new(),
        revoked: revoked.to_vec(),
    };
    let list = if response.signed_device_list.is_empty() {
        if let Some(seen) = seen_version {
            return Err(AdvError::ListWithdrawn { seen });
        }
        None
    } else {
        let signed = SignedDeviceList::from_bytes(&response.signed_device_list)?;
        let list = signed.verify(&account_key)?.clone();
        if list.account_id != account_id {
            return Err(AdvError::WrongAccount);
        }
        if let Some(seen) = seen_version
            && list.version < seen
        {
            return Err(AdvError::ListRollback { seen, found: list.version });
        }
        out.list_digest = Some(signed.digest());
        out.revoked.extend(&list.revoked);
        out.revoked.sort_unstable();
        out.revoked.dedup();
        if list.is_expired(now) {
            out.list_expired = true;
            None
        } else {
            out.list_version = Some(list.version);
            Some(list)
        }
    };
    // A device the relay lists twice is taken in neither form: which one would be trusted
    // must not depend on the order of the relay's answer.
    let mut ids: Vec<u32> = response.devices.iter().map(|d| d.device_id).collect();
    ids.sort_unstable();
    let repeated = |id: u32| {
        let at = ids.partition_point(|&x| x < id);
        ids.get(at + 1) == Some(&id)
    };
    for d in &response.devices {
        if repeated(d.device_id) {
            let reason = AdvError::Malformed("device listed twice");
            out.rejected.push(RejectedDevice { device_id: d.device_id, reason });
            continue;
        }
        match verify_one(account_id, &account_key, list.as_ref(), &out.revoked, d) {
            Ok(v) => out.devices.push(v),
            Err(reason) => {
                let reason = if out.list_expired && reason == AdvError::NotInList {
                    AdvError::ListExpired
                } else {
                    reason
                };
                out.rejected.push(RejectedDevice { device_id: d.device_id, reason });
            }
        }
    }
    Ok(out)
}

fn verify_one(
    account_id: AccountId,
    account_key: &IdentityKey,
    list: Option<&DeviceList>,
    revoked: &[u32],
    d: &crate::wire::relay::DeviceInfo,
) -> Result<VerifiedDevice, AdvError> {
    let device_id = DeviceId::new(d.device_id).map_err(|_| AdvError::Malformed("device id"))?;
    let identity_key = IdentityKey::from_bytes(&d.identity_key)
        .map_err(|_| AdvError::Malformed("identity key"))?;
    if device_id.is_primary() {
        if identity_key != *account_key {
            return Err(AdvError::PrimaryMismatch);
        }
        return Ok(VerifiedDevice { device_id, registration_id: d.registration_id, identity_key });
    }
    let entry = list.and_then(|l| l.entry(device_id)).ok_or(AdvError::NotInList)?;
    let signed = SignedDeviceIdentity::from_bytes(&d.adv_identity)?;
    let details = signed.verify(account_key)?;
    if details.account_id != account_id {
        return Err(AdvError::WrongAccount);
    }
    if details.identity_key != identity_key {
        return Err(AdvError::IdentityMismatch);
    }
    if details.key_index != entry.key_index {
        return Err(AdvError::KeyIndexMismatch);
    }
    if revoked.binary_search(&details.key_index).is_ok() {
        return Err(AdvError::Revoked);
    }
    Ok(VerifiedDevice { device_id, registration_id: d.registration_id, identity_key })
}

#[cfg(test)]
mod tests;

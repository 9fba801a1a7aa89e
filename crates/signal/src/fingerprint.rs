//! Safety numbers, libsignal-compatible, and Tandem's security code built on them.
//!
//! ## Safety numbers (libsignal's `Fingerprint`)
//!
//! Per side, with identifier bytes `id` and the 33-byte identity key `K`:
//! `h = SHA-512(0x0000 ‖ K ‖ id ‖ K)`, then `iterations − 1` times `h = SHA-512(h ‖ K)`.
//! The displayable half is `h[0..30]` as six 5-byte big-endian numbers mod 100 000, five
//! digits each; the 60-digit number puts the smaller half first, so both parties see the
//! same digits. The scannable form is `CombinedFingerprints {1: version, 2: {1: local
//! h[0..32]}, 3: {1: remote h[0..32]}}`.
//!
//! ## Tandem's security code
//!
//! Tandem compares *accounts*, not devices. The 60 digits are the safety number of the two
//! **account identity keys** (version 2, 5 200 iterations, the 16-byte account ids as
//! identifiers). Because ADV chains every device identity to its account key, the digits do
//! not change when a contact links or removes a companion, only when the account key does
//! (re-registration).
//!
//! The QR form also binds the **device sets**: `TandemSecurityCode {1: version = 100,
//! 2: {1: local h[0..32], 2: SHA-256 of the local account's signed device list},
//! 3: {1: remote h[0..32], 2: SHA-256 of the remote account's signed device list as this
//! client sees it}}`. Scanning the other person's code checks the account keys *and*
//! whether both people see the same signed device lists: a server that shows one of them a
//! different (e.g. older, still signed) list is caught. See [`SecurityCode::compare`].

use prost::Message;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::identity::IdentityKey;
use crate::wire::{WireError, decode_bounded};

/// Iterations Signal apps and Tandem use.
pub const FINGERPRINT_ITERATIONS: u32 = 5200;
/// The `version` of Tandem's scannable security code (Signal uses 1 and 2).
pub const SECURITY_CODE_VERSION: u32 = 100;

/// Why a fingerprint could not be built or compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Iterations outside 2..=1 000 000.
    #[error("fingerprint iterations {0} outside 2..=1000000")]
    BadIterations(u32),
    /// The scanned code does not parse.
    #[error("the scanned code is not a security code: {0}")]
    Malformed(WireError),
    /// The scanned code is of another version.
    #[error("the scanned code has version {theirs}, this app uses {ours}")]
    VersionMismatch {
        /// Our version.
        ours: u32,
        /// The scanned code's version.
        theirs: u32,
    },
}

fn iterate(iterations: u32, id: &[u8], key: &IdentityKey) -> [u8; 64] {
    let k = key.serialize();
    let mut h: [u8; 64] = Sha512::new()
        .chain_update([0u8, 0])
        .chain_update(k)
        .chain_update(id)
        .chain_update(k)
        .finalize()
        .into();
    for _ in 1..iterations {
        h = Sha512::new().chain_update(h).chain_update(k).finalize().into();
    }
    h
}

fn digits(h: &[u8; 64]) -> String {
    let mut out = String::with_capacity(30);
    for chunk in h[..30].chunks(5) {
        let mut v: u64 = 0;
        for b in chunk {
            v = (v << 8) | u64::from(*b);
        }
        out.push_str(&format!("{:05}", v % 100_000));
    }
    out
}

fn first32(h: &[u8; 64]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&h[..32]);
    out
}

/// A safety number between two parties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    version: u32,
    local_digits: String,
    remote_digits: String,
    local: [u8; 32],
    remote: [u8; 32],
}

impl Fingerprint {
    /// Computes the safety number of `local` and `remote` (identifier bytes and identity key).
    pub fn new(
        version: u32,
        iterations: u32,
        local_id: &[u8],
        local_key: &IdentityKey,
        remote_id: &[u8],
        remote_key: &IdentityKey,
    ) -> Result<Self, FingerprintError> {
        if !(2..=1_000_000).contains(&iterations) {
            return Err(FingerprintError::BadIterations(iterations));
        }
        let l = iterate(iterations, local_id, local_key);
        let r = iterate(iterations, remote_id, remote_key);
        Ok(Self {
            version,
            local_digits: digits(&l),
            remote_digits: digits(&r),
            local: first32(&l),
            remote: first32(&r),
        })
    }

    /// The 60 digits, identical for both parties.
    pub fn displayable(&self) -> String {
        if self.local_digits <= self.remote_digits {
            format!("{}{}", self.local_digits, self.remote_digits)
        } else {
            format!("{}{}", self.remote_digits, self.local_digits)
        }
    }

    /// The scannable `CombinedFingerprints` bytes.
    pub fn scannable(&self) -> Vec<u8> {
        CombinedFingerprints {
            version: Some(self.version),
            local: Some(FingerprintData {
                content: Some(self.local.to_vec()),
                device_list_digest: None,
            }),
            remote: Some(FingerprintData {
                content: Some(self.remote.to_vec()),
                device_list_digest: None,
            }),
        }
        .encode_to_vec()
    }

    /// Compares with the other party's scannable bytes: equal when their local half is our
    /// remote half and vice versa.
    pub fn compare(&self, theirs: &[u8]) -> Result<bool, FingerprintError> {
        let c = parse_combined(theirs, self.version)?;
        let (their_local, their_remote) = halves(&c)?;
        Ok(bool::from(their_local.0.ct_eq(&self.remote) & their_remote.0.ct_eq(&self.local)))
    }
}

#[derive(Clone, PartialEq, prost::Message)]
struct CombinedFingerprints {
    #[prost(uint32, optional, tag = "1")]
    version: Option<u32>,
    #[prost(message, optional, tag = "2")]
    local: Option<FingerprintData>,
    #[prost(message, optional, tag = "3")]
    remote: Option<FingerprintData>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct FingerprintData {
    #[prost(bytes = "vec", optional, tag = "1")]
    content: Option<Vec<u8>>,
    /// Tandem only: SHA-256 of the side's signed device list.
    #[prost(bytes = "vec", optional, tag = "2")]
    device_list_digest: Option<Vec<u8>>,
}

fn parse_combined(bytes: &[u8], ours: u32) -> Result<CombinedFingerprints, FingerprintError> {
    let c: CombinedFingerprints =
        decode_bounded("security code", bytes, 1024).map_err(FingerprintError::Malformed)?;
    let theirs = c.version.unwrap_or(0);
    if theirs != ours {
        return Err(FingerprintError::VersionMismatch { ours, theirs });
    }
    Ok(c)
}

fn bytes32(v: Option<&Vec<u8>>, field: &'static str) -> Result<[u8; 32], FingerprintError> {
    v.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok()).ok_or(FingerprintError::Malformed(
        WireError::MissingField { what: "security code", field },
    ))
}

type Half = ([u8; 32], Option<[u8; 32]>);

fn half(d: Option<&FingerprintData>, field: &'static str) -> Result<Half, FingerprintError> {
    let d = d.ok_or(FingerprintError::Malformed(WireError::MissingField {
        what: "security code",
        field,
    }))?;
    let digest = d
        .device_list_digest
        .as_ref()
        .map(|_| bytes32(d.device_list_digest.as_ref(), "device list digest"))
        .transpose()?;
    Ok((bytes32(d.content.as_ref(), field)?, digest))
}

fn halves(c: &CombinedFingerprints) -> Result<(Half, Half), FingerprintError> {
    Ok((half(c.local.as_ref(), "local")?, half(c.remote.as_ref(), "remote")?))
}

/// One account as the security code sees it.
#[derive(Clone, Copy, Debug)]
pub struct AccountView<'a> {
    /// The account id (16 bytes in Tandem).
    pub account_id: &'a [u8],
    /// The account identity key (the primary's).
    pub account_key: &'a IdentityKey,
    /// SHA-256 of the account's signed device list as this client has it.
    pub device_list_digest: [u8; 32],
}

/// What scanning the other person's security code showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOutcome {
    /// Same account keys, same device lists on both sides: mark the contact verified.
    Verified,
    /// The account keys differ: this is not the person, or one side's key changed.
    KeysDiffer,
    /// The account keys match but the device lists differ: someone is being shown a
    /// different set of devices. Do not mark verified; warn.
    DeviceListsDiffer {
        /// The contact's own list differs from the one this client sees for them.
        their_list: bool,
        /// The contact sees a different list for this account than this client has.
        our_list: bool,
    },
}

/// Tandem's security code between two accounts (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityCode {
    fingerprint: Fingerprint,
    local_digest: [u8; 32],
    remote_digest: [u8; 32],
}

impl SecurityCode {
    /// The code between `local` (this account) and `remote` (the contact).
    pub fn new(local: AccountView<'_>, remote: AccountView<'_>) -> Result<Self, FingerprintError> {
        let fingerprint = Fingerprint::new(
            SECURITY_CODE_VERSION,
            FINGERPRINT_ITERATIONS,
            local.account_id,
            local.account_key,
            remote.account_id,
            remote.account_key,
        )?;
        Ok(Self {
            fingerprint,
            local_digest: local.device_list_digest,
            remote_digest: remote.device_list_digest,
        })
    }

    /// The 60 digits, in twelve groups of five for display.
    pub fn digits(&self) -> String {
        self.fingerprint.displayable()
    }

    /// The QR payload.
    pub fn scannable(&self) -> Vec<u8> {
        CombinedFingerprints {
            version: Some(SECURITY_CODE_VERSION),
            local: Some(FingerprintData {
                content: Some(self.fingerprint.local.to_vec()),
                device_list_digest: Some(self.local_digest.to_vec()),
            }),
            remote: Some(FingerprintData {
                content: Some(self.fingerprint.remote.to_vec()),
                device_list_digest: Some(self.remote_digest.to_vec()),
            }),
        }
        .encode_to_vec()
    }

    /// Compares with the contact's scanned QR payload.
    pub fn compare(&self, scanned: &[u8]) -> Result<ScanOutcome, FingerprintError> {
        let c = parse_combined(scanned, SECURITY_CODE_VERSION)?;
        let ((their_local, their_local_digest), (their_remote, their_remote_digest)) = halves(&c)?;
        let keys_match = bool::from(
            their_local.ct_eq(&self.fingerprint.remote)
                & their_remote.ct_eq(&self.fingerprint.local),
        );
        if !keys_match {
            return Ok(ScanOutcome::KeysDiffer);
        }
        let missing = || {
            FingerprintError::Malformed(WireError::MissingField {
                what: "security code",
                field: "device list digest",
            })
        };
        let their_list =
            !bool::from(their_local_digest.ok_or_else(missing)?.ct_eq(&self.remote_digest));
        let our_list =
            !bool::from(their_remote_digest.ok_or_else(missing)?.ct_eq(&self.local_digest));
        Ok(if their_list || our_list {
            ScanOutcome::DeviceListsDiffer { their_list, our_list }
        } else {
            ScanOutcome::Verified
        })
    }
}

/// The prefix of a security code's text form.
pub const SECURITY_CODE_PREFIX: &str = "tandem-code:";

/// The text form of a QR payload, for copying instead of scanning: the prefix and the
/// payload in unpadded base64url.
pub fn code_text(payload: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    format!("{SECURITY_CODE_PREFIX}{}", Base64UrlUnpadded::encode_string(payload))
}

/// Parses [`code_text`] (surrounding white space allowed) back into the QR payload. Only
/// the form is checked here; [`SecurityCode::compare`] checks the contents.
pub fn parse_code_text(text: &str) -> Result<Vec<u8>, FingerprintError> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let bad = |what: &'static str| {
        FingerprintError::Malformed(WireError::MissingField { what: "security code", field: what })
    };
    let body = text.trim().strip_prefix(SECURITY_CODE_PREFIX).ok_or(bad("prefix"))?;
    if body.len() > 1024 {
        return Err(bad("length"));
    }
    Base64UrlUnpadded::decode_vec(body).map_err(|_| bad("base64url text"))
}

#[cfg(test)]
mod tests;

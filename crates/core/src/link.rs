//! Linking a companion by QR code: the link code the companion shows, and the sealed link
//! message the primary sends back through the relay.
//!
//! 1. The companion opens a provisioning address on the relay and shows a [`LinkCode`]
//!    (QR and text): the address, a fresh ephemeral X25519 key, its identity key, a
//!    32-byte one-time linking secret, an expiry and its name. Each rotation makes a new
//!    ephemeral key, secret and address ([`LinkRequest::new`]).
//! 2. The primary reads the code, confirms, and seals a [`LinkMessage`] (account, handle,
//!    account key, registration token, the companion's identity signed by the account key)
//!    to it with [`seal`]: an ephemeral key of its own, X25519 with the companion's, HKDF
//!    to an AES-256-CBC key and an HMAC-SHA256 key, and a second HMAC under the linking
//!    secret over everything, so only a holder of the code can have written it.
//! 3. The companion checks both MACs in constant time before decrypting
//!    ([`LinkRequest::open`]), and that the account signed *its* identity.
//! 4. Both sides show the same [`MatchCode`], computed from the account key, the
//!    companion's identity and both ephemeral keys, so a person sees they linked the right
//!    device.
//!
//! The relay sees the address and the sealed bytes only.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use prost::Message;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{
    KeyPair, PublicKey, aes256_cbc_decrypt, aes256_cbc_encrypt, ct_eq, hkdf_sha256, hmac_sha256,
};
use crate::devices::SignedDeviceIdentity;
use tandem_signal::AccountId;
use tandem_signal::IdentityKey;
use tandem_signal::Timestamp;

/// What a link code's text starts with.
pub const LINK_CODE_PREFIX: &str = "tandem-link:";
/// The longest link code text accepted.
pub const MAX_LINK_CODE_LEN: usize = 512;
/// The longest device name carried in a link code.
pub const MAX_LINK_NAME_LEN: usize = 64;
/// The version byte of a sealed link message.
pub const LINK_MESSAGE_VERSION: u8 = 1;
/// A code is accepted this long past its expiry, for clocks that disagree.
pub const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(120);

const KDF_INFO: &[u8] = b"Tandem link message v1";
const SECRET_MAC_PREFIX: &[u8] = b"Tandem link secret v1";
const MATCH_PREFIX: &[u8] = b"Tandem link match v1";
const HEADER_LEN: usize = 1 + 33 + 16;
const MAC_LEN: usize = 32;
const MAX_SEALED_LEN: usize = crate::wire::relay::MAX_PROVISIONING_MESSAGE;

/// Why linking failed. `Display` is for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The text is not a Tandem link code.
    #[error("that is not a Tandem link code; copy the whole text shown on the other device")]
    Malformed,
    /// The code's time is up.
    #[error("that link code has expired; the other device shows a new one")]
    Expired,
    /// The sealed message was changed, or not written for this code.
    #[error("the link message was damaged or forged; nothing was linked")]
    Tampered,
    /// The message decrypted but does not link this device.
    #[error("the link message is not for this device; nothing was linked")]
    WrongDevice,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LinkCodeProto {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(bytes = "vec", tag = "2")]
    address: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    ephemeral_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    identity_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    secret: Vec<u8>,
    #[prost(uint64, tag = "6")]
    expires_at_ms: u64,
    #[prost(string, tag = "7")]
    name: String,
}

/// What the companion shows: everything a primary needs to seal a link message to it.
#[derive(Clone)]
pub struct LinkCode {
    /// The relay's provisioning address (16 bytes).
    pub address: [u8; 16],
    /// The companion's ephemeral key for this code.
    pub ephemeral_key: PublicKey,
    /// The companion's identity key (the one the account will sign).
    pub identity_key: IdentityKey,
    /// The one-time linking secret.
    pub secret: Zeroizing<[u8; 32]>,
    /// When the code stops working (relay clock).
    pub expires_at: Timestamp,
    /// The companion's name, to show on the primary ("Chrome on Linux").
    pub name: String,
}

impl fmt::Debug for LinkCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkCode")
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl LinkCode {
    /// The text form (also what the QR code holds).
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = LinkCodeProto {
            version: 1,
            address: self.address.to_vec(),
            ephemeral_key: self.ephemeral_key.serialize().to_vec(),
            identity_key: self.identity_key.serialize().to_vec(),
            secret: self.secret.to_vec(),
            expires_at_ms: self.expires_at.as_millis(),
            name: self.name.clone(),
        }
        .encode_to_vec();
        let text = format!("{LINK_CODE_PREFIX}{}", Base64UrlUnpadded::encode_string(&bytes));
        bytes.zeroize();
        Zeroizing::new(text)
    }

    /// Parses a code's text (surrounding white space and line breaks inside are ignored,
    /// for codes that were pasted). Expiry is checked separately ([`Self::check_fresh`]).
    pub fn parse(text: &str) -> Result<Self, LinkError> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if text.len() > MAX_LINK_CODE_LEN {
            return Err(LinkError::Malformed);
        }
        let body = text.strip_prefix(LINK_CODE_PREFIX).ok_or(LinkError::Malformed)?;
        let bytes =
            Zeroizing::new(Base64UrlUnpadded::decode_vec(body).map_err(|_| LinkError::Malformed)?);
        let mut p = LinkCodeProto::decode(bytes.as_slice()).map_err(|_| LinkError::Malformed)?;
        let mut secret = Zeroizing::new([0u8; 32]);
        let length_ok = p.secret.len() == 32;
        if length_ok {
            secret.copy_from_slice(&p.secret);
        }
        p.secret.zeroize();
        if !length_ok || p.version != 1 {
            return Err(LinkError::Malformed);
        }
        if p.name.chars().count() > MAX_LINK_NAME_LEN || p.name.chars().any(char::is_control) {
            return Err(LinkError::Malformed);
        }
        Ok(Self {
            address: p.address.as_slice().try_into().map_err(|_| LinkError::Malformed)?,
            ephemeral_key: PublicKey::from_bytes(&p.ephemeral_key)
                .map_err(|_| LinkError::Malformed)?,
            identity_key: IdentityKey::from_bytes(&p.identity_key)
                .map_err(|_| LinkError::Malformed)?,
            secret,
            expires_at: Timestamp::from_millis(p.expires_at_ms),
            name: p.name,
        })
    }

    /// [`LinkError::Expired`] once the code is past its expiry (with [`CLOCK_SKEW`]).
    pub fn check_fresh(&self, now: Timestamp) -> Result<(), LinkError> {
        if now > self.expires_at.saturating_add(CLOCK_SKEW) {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

/// The companion's side of one code: the private half of its ephemeral key and the secret.
pub struct LinkRequest {
    ephemeral: KeyPair,
    code: LinkCode,
}

impl fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkRequest").field("code", &self.code).finish_non_exhaustive()
    }
}

/// What the primary tells a companion so it can join the account.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinkMessage {
    /// The account (16 bytes).
    #[prost(bytes = "vec", tag = "1")]
    pub account_id: Vec<u8>,
    /// Its handle.
    #[prost(string, tag = "2")]
    pub handle: String,
    /// The account key (33 bytes).
    #[prost(bytes = "vec", tag = "3")]
    pub account_key: Vec<u8>,
    /// The single-use registration token.
    #[prost(bytes = "vec", tag = "4")]
    pub link_token: Vec<u8>,
    /// The companion's identity signed by the account key
    /// ([`SignedDeviceIdentity`] bytes, without the device's countersignature).
    #[prost(bytes = "vec", tag = "5")]
    pub adv_identity: Vec<u8>,
    /// The primary's name, to show on the companion.
    #[prost(string, tag = "6")]
    pub primary_name: String,
}

/// A link message that verified: the parsed parts the companion registers with.
#[derive(Clone, Debug)]
pub struct VerifiedLink {
    /// The account.
    pub account_id: AccountId,
    /// Its handle.
    pub handle: String,
    /// The account key.
    pub account_key: IdentityKey,
    /// The registration token.
    pub link_token: Vec<u8>,
    /// This device's identity, signed by the account key.
    pub adv_identity: SignedDeviceIdentity,
    /// The primary's name.
    pub primary_name: String,
}

/// Six digits both devices show after linking.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MatchCode(u32);

impl MatchCode {
    fn compute(
        account_key: &IdentityKey,
        companion: &IdentityKey,
        companion_ephemeral: &PublicKey,
        primary_ephemeral: &PublicKey,
    ) -> Self {
        let digest = Sha256::new()
            .chain_update(MATCH_PREFIX)
            .chain_update(account_key.serialize())
            .chain_update(companion.serialize())
            .chain_update(companion_ephemeral.serialize())
            .chain_update(primary_ephemeral.serialize())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let n = u64::from_be_bytes(first) % 1_000_000;
        Self(u32::try_from(n).unwrap_or_default())
    }

    /// The number, below 1 000 000.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for MatchCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

struct MessageKeys {
    cipher: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

fn message_keys(
    ours: &KeyPair,
    theirs: &PublicKey,
    companion_ephemeral: &PublicKey,
    primary_ephemeral: &PublicKey,
) -> Result<MessageKeys, LinkError> {
    let shared = ours.private_key.agree(theirs).map_err(|_| LinkError::Tampered)?;
    let info = [
        KDF_INFO,
        companion_ephemeral.serialize().as_slice(),
        primary_ephemeral.serialize().as_slice(),
    ]
    .concat();
    let mut okm = Zeroizing::new([0u8; 64]);
    hkdf_sha256(None, shared.as_bytes(), &info, okm.as_mut_slice())
        .map_err(|_| LinkError::Tampered)?;
    let (mut cipher, mut mac) = (Zeroizing::new([0u8; 32]), Zeroizing::new([0u8; 32]));
    cipher.copy_from_slice(&okm[..32]);
    mac.copy_from_slice(&okm[32..]);
    Ok(MessageKeys { cipher, mac })
}

fn secret_mac(secret: &[u8; 32], address: &[u8; 16], sealed: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[SECRET_MAC_PREFIX, address, sealed])
}

/// Primary: seals `message` to `code`. Returns the bytes for the relay and the code to show.
pub fn seal(
    code: &LinkCode,
    account_key: &IdentityKey,
    message: &LinkMessage,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, MatchCode), LinkError> {
    seal_bytes(code, account_key, &Zeroizing::new(message.encode_to_vec()), rng)
}

/// [`seal`] of already encoded bytes (the fuzz harness seals arbitrary plaintexts, so the
/// parsing behind both MACs is reached).
pub(crate) fn seal_bytes(
    code: &LinkCode,
    account_key: &IdentityKey,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, MatchCode), LinkError> {
    let ephemeral = KeyPair::generate(rng);
    let keys =
        message_keys(&ephemeral, &code.ephemeral_key, &code.ephemeral_key, &ephemeral.public_key)?;
    let mut iv = [0u8; 16];
    rng.fill_bytes(&mut iv);
    let ciphertext = aes256_cbc_encrypt(&keys.cipher, &iv, plaintext);
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len() + 2 * MAC_LEN);
    out.push(LINK_MESSAGE_VERSION);
    out.extend_from_slice(&ephemeral.public_key.serialize());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&ciphertext);
    let mac = hmac_sha256(keys.mac.as_slice(), &[&out]);
    out.extend_from_slice(&mac);
    let outer = secret_mac(&code.secret, &code.address, &out);
    out.extend_from_slice(&outer);
    if out.len() > MAX_SEALED_LEN {
        return Err(LinkError::Malformed);
    }
    let matching = MatchCode::compute(
        account_key,
        &code.identity_key,
        &code.ephemeral_key,
        &ephemeral.public_key,
    );
    Ok((out, matching))
}

impl LinkRequest {
    /// Companion: a fresh code for `address` (from the relay), with a new ephemeral key and
    /// linking secret.
    pub fn new(
        address: [u8; 16],
        identity_key: IdentityKey,
        expires_at: Timestamp,
        name: &str,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let ephemeral = KeyPair::generate(rng);
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut_slice());
        let name: String =
            name.chars().filter(|c| !c.is_control()).take(MAX_LINK_NAME_LEN).collect();
        let code = LinkCode {
            address,
            ephemeral_key: ephemeral.public_key,
            identity_key,
            secret,
            expires_at,
            name,
        };
        Self { ephemeral, code }
    }

    /// The code to show.
    pub fn code(&self) -> &LinkCode {
        &self.code
    }

    /// Companion: checks and opens a sealed link message: both MACs (constant time) before
    /// any decryption, then that the account signed this device's identity.
    pub fn open(&self, sealed: &[u8]) -> Result<(VerifiedLink, MatchCode), LinkError> {
        if sealed.len() > MAX_SEALED_LEN || sealed.len() < HEADER_LEN + 16 + 2 * MAC_LEN {
            return Err(LinkError::Tampered);
        }
        let (inner, outer) = sealed.split_at(sealed.len() - MAC_LEN);
        if !ct_eq(&secret_mac(&self.code.secret, &self.code.address, inner), outer) {
            return Err(LinkError::Tampered);
        }
        let (body, mac) = inner.split_at(inner.len() - MAC_LEN);
        if body[0] != LINK_MESSAGE_VERSION {
            return Err(LinkError::Tampered);
        }
        let primary_ephemeral =
            PublicKey::from_bytes(&body[1..34]).map_err(|_| LinkError::Tampered)?;
        let keys = message_keys(
            &self.ephemeral,
            &primary_ephemeral,
            &self.code.ephemeral_key,
            &primary_ephemeral,
        )?;
        if !ct_eq(&hmac_sha256(keys.mac.as_slice(), &[body]), mac) {
            return Err(LinkError::Tampered);
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&body[34..HEADER_LEN]);
        let plaintext = Zeroizing::new(
            aes256_cbc_decrypt(&keys.cipher, &iv, &body[HEADER_LEN..])
                .map_err(|_| LinkError::Tampered)?,
        );
        let m = LinkMessage::decode(plaintext.as_slice()).map_err(|_| LinkError::Tampered)?;
        let account_id = AccountId::from_bytes(&m.account_id).map_err(|_| LinkError::Tampered)?;
        let account_key =
            IdentityKey::from_bytes(&m.account_key).map_err(|_| LinkError::Tampered)?;
        let adv_identity =
            SignedDeviceIdentity::from_bytes(&m.adv_identity).map_err(|_| LinkError::Tampered)?;
        // The account key in the message signed this very device's identity.
        let details =
            adv_identity.verify_account_signature(&account_key).map_err(|_| LinkError::Tampered)?;
        if details.account_id != account_id
            || details.identity_key.serialize() != self.code.identity_key.serialize()
        {
            return Err(LinkError::WrongDevice);
        }
        let matching = MatchCode::compute(
            &account_key,
            &self.code.identity_key,
            &self.code.ephemeral_key,
            &primary_ephemeral,
        );
        Ok((
            VerifiedLink {
                account_id,
                handle: m.handle,
                account_key,
                link_token: m.link_token,
                adv_identity,
                primary_name: m.primary_name,
            },
            matching,
        ))
    }
}

#[cfg(test)]
mod tests;

//! Proving to the relay which device (or future device) is speaking: challenge–response.
//!
//! Every connection starts with a fresh 32-byte challenge from the relay (in its `Welcome`).
//! A device answers with an XEdDSA signature by its identity key over the challenge, the
//! host it dialled, and what it asks for ([`Proof`]). The relay keeps only public identity
//! keys, so nothing it stores, and nothing a foreign relay sees, can be replayed:
//!
//! - a signature is bound to one connection's challenge, so it is useless afterwards;
//! - it names the host the device connected to, so a relay in the middle (a device lured to
//!   `evil.example`, whose relay forwards the real relay's challenge) gets a proof the real
//!   relay refuses: it names `evil.example`, not the real relay's host.
//!
//! Registrations carry the same kind of proof, so a key can only be registered by its
//! holder, and a reset of the account key is signed by both the old and the new key.

use rand_core::CryptoRng;

use tandem_signal::AccountId;
use tandem_signal::{IdentityKey, IdentityKeyPair};

/// Domain separation for every signature in this module.
pub const AUTH_PREFIX: &[u8] = b"Tandem relay proof v1\x00";
/// Length of a relay challenge.
pub const CHALLENGE_LEN: usize = 32;
/// Longest host name a proof may carry.
pub const MAX_HOST_LEN: usize = 255;

/// What one connection must sign: the relay's challenge and the host the client dialled
/// (`host[:port]`, as in the URL and the HTTP `Host` header).
#[derive(Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The relay's random challenge for this connection.
    pub nonce: [u8; CHALLENGE_LEN],
    /// The host the client connected to, lowercase.
    pub host: String,
}

impl std::fmt::Debug for Challenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenge").field("host", &self.host).finish_non_exhaustive()
    }
}

/// Why a challenge could not be built from what the relay and the URL gave.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The relay's challenge is not 32 bytes (an old or broken relay).
    #[error("the server did not send a valid login challenge")]
    BadNonce,
    /// The host is empty or too long.
    #[error("the server address has no usable host name")]
    BadHost,
}

impl Challenge {
    /// The challenge of a connection to `host` whose relay sent `nonce`.
    pub fn new(nonce: &[u8], host: &str) -> Result<Self, ChallengeError> {
        let nonce = <[u8; CHALLENGE_LEN]>::try_from(nonce).map_err(|_| ChallengeError::BadNonce)?;
        let host = normalize_host(host).ok_or(ChallengeError::BadHost)?;
        Ok(Self { nonce, host })
    }
}

/// Lowercases a `host[:port]` and checks its length; `None` if empty or too long.
pub fn normalize_host(host: &str) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    (!host.is_empty() && host.len() <= MAX_HOST_LEN && !host.chars().any(char::is_control))
        .then_some(host)
}

/// The host part (`host[:port]`) of a `ws://`, `wss://`, `http://` or `https://` URL.
pub fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    normalize_host(authority)
}

/// What a proof asks for. Each kind signs different fields, so a proof for one can never
/// be used as another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof<'a> {
    /// Log in as `device` of `account`.
    Authenticate {
        /// The account.
        account: &'a AccountId,
        /// The device id.
        device: u32,
    },
    /// Create an account with this handle; the signer becomes its primary.
    RegisterAccount {
        /// The handle asked for.
        handle: &'a str,
    },
    /// Join `account` as a companion.
    RegisterDevice {
        /// The account.
        account: &'a AccountId,
    },
    /// Re-register `account` under `new_key`: signed by the current account key *and* by the
    /// new key.
    ResetAccount {
        /// The account.
        account: &'a AccountId,
        /// The new account key.
        new_key: &'a IdentityKey,
    },
}

impl Proof<'_> {
    fn tag(&self) -> u8 {
        match self {
            Proof::Authenticate { .. } => 1,
            Proof::RegisterAccount { .. } => 2,
            Proof::RegisterDevice { .. } => 3,
            Proof::ResetAccount { .. } => 4,
        }
    }

    fn body(&self) -> Vec<u8> {
        match self {
            Proof::Authenticate { account, device } => {
                let mut v = account.0.to_vec();
                v.extend_from_slice(&device.to_be_bytes());
                v
            }
            Proof::RegisterAccount { handle } => handle.as_bytes().to_vec(),
            Proof::RegisterDevice { account } => account.0.to_vec(),
            Proof::ResetAccount { account, new_key } => {
                let mut v = account.0.to_vec();
                v.extend_from_slice(&new_key.serialize());
                v
            }
        }
    }
}

fn lengths(challenge: &Challenge, proof: &Proof<'_>) -> ([u8; 1], [u8; 2], Vec<u8>, [u8; 4]) {
    let host_len = u16::try_from(challenge.host.len()).unwrap_or(u16::MAX).to_be_bytes();
    let body = proof.body();
    let body_len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes();
    ([proof.tag()], host_len, body, body_len)
}

/// Signs `proof` for `challenge` with `identity`.
pub fn sign(
    identity: &IdentityKeyPair,
    challenge: &Challenge,
    proof: &Proof<'_>,
    rng: &mut impl CryptoRng,
) -> [u8; 64] {
    let (tag, host_len, body, body_len) = lengths(challenge, proof);
    identity.private_key().sign_parts(
        &[
            AUTH_PREFIX,
            &tag,
            &challenge.nonce,
            &host_len,
            challenge.host.as_bytes(),
            &body_len,
            &body,
        ],
        rng,
    )
}

/// Checks a proof by the holder of `key`. Never panics on any input.
pub fn verify(
    key: &IdentityKey,
    challenge: &Challenge,
    proof: &Proof<'_>,
    signature: &[u8],
) -> bool {
    let Ok(signature) = <&[u8; 64]>::try_from(signature) else { return false };
    let (tag, host_len, body, body_len) = lengths(challenge, proof);
    key.public_key()
        .verify_signature_parts(
            &[
                AUTH_PREFIX,
                &tag,
                &challenge.nonce,
                &host_len,
                challenge.host.as_bytes(),
                &body_len,
                &body,
            ],
            signature,
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRng;

    fn challenge(host: &str) -> Challenge {
        Challenge::new(&[7; 32], host).unwrap()
    }

    #[test]
    fn test_a_proof_verifies_only_for_its_challenge_host_and_purpose() {
        let mut rng = SeededRng::new(1);
        let device = IdentityKeyPair::generate(&mut rng);
        let other = IdentityKeyPair::generate(&mut rng);
        let account = AccountId([3; 16]);
        let c = challenge("relay.example:443");
        let proof = Proof::Authenticate { account: &account, device: 2 };
        let sig = sign(&device, &c, &proof, &mut rng);
        assert!(verify(device.identity_key(), &c, &proof, &sig));
        // Another key, another challenge, another host, another device or purpose: refused.
        assert!(!verify(other.identity_key(), &c, &proof, &sig));
        assert!(!verify(
            device.identity_key(),
            &Challenge::new(&[8; 32], &c.host).unwrap(),
            &proof,
            &sig
        ));
        assert!(!verify(device.identity_key(), &challenge("evil.example:443"), &proof, &sig));
        assert!(!verify(
            device.identity_key(),
            &c,
            &Proof::Authenticate { account: &account, device: 3 },
            &sig
        ));
        assert!(!verify(
            device.identity_key(),
            &c,
            &Proof::RegisterDevice { account: &account },
            &sig
        ));
        assert!(!verify(device.identity_key(), &c, &proof, &sig[..63]));
        assert!(!verify(device.identity_key(), &c, &proof, &[0; 64]));
    }

    #[test]
    fn test_hosts_are_read_from_urls_and_normalized() {
        assert_eq!(host_of_url("wss://Relay.Example/v1/socket").as_deref(), Some("relay.example"));
        assert_eq!(host_of_url("ws://127.0.0.1:8080/v1/socket").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(host_of_url("ws://[::1]:9/x?y#z").as_deref(), Some("[::1]:9"));
        assert_eq!(host_of_url("ws://user@h:1/").as_deref(), Some("h:1"));
        assert_eq!(host_of_url("ws:///nohost"), None);
        assert!(Challenge::new(&[0; 31], "h").is_err());
        assert!(Challenge::new(&[0; 32], "").is_err());
        assert!(Challenge::new(&[0; 32], &"h".repeat(256)).is_err());
    }
}

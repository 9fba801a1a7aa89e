//! The Double Ratchet's key schedule, as libsignal computes it (§2.5 of the vectors README).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{CryptoError, PrivateKey, PublicKey, hkdf_sha256, hmac_sha256};

const ROOT_INFO: &[u8] = b"WhisperRatchet";
const MESSAGE_KEYS_INFO: &[u8] = b"WhisperMessageKeys";
const MESSAGE_KEY_SEED: u8 = 0x01;
const CHAIN_KEY_SEED: u8 = 0x02;

/// A root key. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub(crate) struct RootKey(pub(crate) [u8; 32]);

impl RootKey {
    /// `KDF_RK`: a new root key and chain key from `DH(ours, theirs)`.
    pub(crate) fn create_chain(
        &self,
        their_ratchet_key: &PublicKey,
        our_ratchet_key: &PrivateKey,
    ) -> Result<(RootKey, ChainKey), CryptoError> {
        let shared = our_ratchet_key.agree(their_ratchet_key)?;
        let mut okm = zeroize::Zeroizing::new([0u8; 64]);
        hkdf_sha256(Some(&self.0), shared.as_bytes(), ROOT_INFO, okm.as_mut())?;
        let mut root = [0u8; 32];
        let mut chain = [0u8; 32];
        root.copy_from_slice(&okm[..32]);
        chain.copy_from_slice(&okm[32..]);
        Ok((RootKey(root), ChainKey { key: chain, index: 0 }))
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RootKey([redacted])")
    }
}

/// A symmetric chain key at an index. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub(crate) struct ChainKey {
    pub(crate) key: [u8; 32],
    pub(crate) index: u32,
}

impl ChainKey {
    /// The chain key one step further.
    pub(crate) fn next(&self) -> ChainKey {
        ChainKey {
            key: hmac_sha256(&self.key, &[&[CHAIN_KEY_SEED]]),
            index: self.index.wrapping_add(1),
        }
    }

    /// The seed of this index's message keys.
    pub(crate) fn message_key_seed(&self) -> [u8; 32] {
        hmac_sha256(&self.key, &[&[MESSAGE_KEY_SEED]])
    }

    /// This index's message keys.
    pub(crate) fn message_keys(&self) -> Result<MessageKeys, CryptoError> {
        let mut seed = self.message_key_seed();
        let keys = MessageKeys::derive(&seed, self.index, None);
        seed.zeroize();
        keys
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainKey {{ index: {}, key: [redacted] }}", self.index)
    }
}

/// The keys of one message. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) cipher_key: [u8; 32],
    pub(crate) mac_key: [u8; 32],
    pub(crate) iv: [u8; 16],
    pub(crate) counter: u32,
}

impl MessageKeys {
    /// HKDF of a message-key seed. `salt` is SPQR's message key once SPQR is active (not yet
    /// used: libsignal 0.90 negotiates SPQR off with a peer that never sends it).
    pub(crate) fn derive(
        seed: &[u8; 32],
        counter: u32,
        salt: Option<&[u8; 32]>,
    ) -> Result<Self, CryptoError> {
        let mut okm = zeroize::Zeroizing::new([0u8; 80]);
        hkdf_sha256(salt.map(|s| s.as_slice()), seed, MESSAGE_KEYS_INFO, okm.as_mut())?;
        let mut keys = MessageKeys { cipher_key: [0; 32], mac_key: [0; 32], iv: [0; 16], counter };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..80]);
        Ok(keys)
    }
}

impl fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageKeys {{ counter: {}, keys: [redacted] }}", self.counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_debug_is_redacted() {
        let ck = ChainKey { key: [0xab; 32], index: 3 };
        assert_eq!(format!("{ck:?}"), "ChainKey { index: 3, key: [redacted] }");
        let mk = ck.message_keys().unwrap();
        assert!(!format!("{mk:?}").contains("ab"));
        assert_eq!(format!("{:?}", RootKey([1; 32])), "RootKey([redacted])");
    }
}

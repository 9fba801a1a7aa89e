//! Identity keys: the long-term Curve25519 key of a device (and, for a primary, of its account).

use std::fmt;

use prost::Message;
use rand_core::CryptoRng;

use crate::codec::{WireError, decode_bounded};
use crate::crypto::{CryptoError, KeyPair, PrivateKey, PublicKey};

/// A public identity key. Equality is on the key bytes (public data, no need for constant time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdentityKey(PublicKey);

impl IdentityKey {
    /// Wraps a public key.
    pub fn new(key: PublicKey) -> Self {
        Self(key)
    }

    /// Parses the 33-byte serialization.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        PublicKey::from_bytes(bytes).map(Self)
    }

    /// The 33-byte serialization `0x05 ‖ u`.
    pub fn serialize(&self) -> [u8; 33] {
        self.0.serialize()
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.0
    }
}

impl From<PublicKey> for IdentityKey {
    fn from(k: PublicKey) -> Self {
        Self(k)
    }
}

/// `IdentityKeyPairStructure {1: public, 2: private}`, libsignal's local serialization.
#[derive(Clone, PartialEq, prost::Message)]
struct IdentityKeyPairPickle {
    #[prost(bytes = "vec", tag = "1")]
    public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    private_key: Vec<u8>,
}

/// An identity key pair. The private half never leaves the device that made it.
#[derive(Clone)]
pub struct IdentityKeyPair {
    identity_key: IdentityKey,
    private_key: PrivateKey,
}

impl IdentityKeyPair {
    /// Generates a fresh identity.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        KeyPair::generate(rng).into()
    }

    /// The public identity key.
    pub fn identity_key(&self) -> &IdentityKey {
        &self.identity_key
    }

    /// The public key.
    pub fn public_key(&self) -> &PublicKey {
        self.identity_key.public_key()
    }

    /// The private key.
    pub fn private_key(&self) -> &PrivateKey {
        &self.private_key
    }

    /// libsignal's `IdentityKeyPairStructure` protobuf. The result holds the private key:
    /// store it only encrypted or in protected storage, and wipe copies.
    pub fn serialize(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let pickle = IdentityKeyPairPickle {
            public_key: self.identity_key.serialize().to_vec(),
            private_key: self.private_key.serialize().to_vec(),
        };
        let out = zeroize::Zeroizing::new(pickle.encode_to_vec());
        let IdentityKeyPairPickle { public_key: _, private_key: mut p } = pickle;
        zeroize::Zeroize::zeroize(&mut p);
        out
    }

    /// Parses [`serialize`](Self::serialize)'s output, checking the halves match.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let mut pickle: IdentityKeyPairPickle = decode_bounded("IdentityKeyPair", bytes, 256)?;
        let bad = |e: CryptoError| WireError::Malformed {
            what: "IdentityKeyPair",
            reason: e.to_string(),
        };
        let public = PublicKey::from_bytes(&pickle.public_key).map_err(bad)?;
        let private = PrivateKey::from_bytes(&pickle.private_key).map_err(bad);
        zeroize::Zeroize::zeroize(&mut pickle.private_key);
        let private = private?;
        if private.public_key() != public {
            return Err(WireError::Malformed {
                what: "IdentityKeyPair",
                reason: "public key does not match private key".into(),
            });
        }
        Ok(Self { identity_key: IdentityKey(public), private_key: private })
    }
}

impl From<KeyPair> for IdentityKeyPair {
    fn from(pair: KeyPair) -> Self {
        Self { identity_key: IdentityKey(pair.public_key), private_key: pair.private_key }
    }
}

impl fmt::Debug for IdentityKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { identity_key, private_key } = self;
        f.debug_struct("IdentityKeyPair")
            .field("identity_key", identity_key)
            .field("private_key", private_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn test_serialization_roundtrip_and_mismatch() {
        let mut rng = StdRng::seed_from_u64(5);
        let pair = IdentityKeyPair::generate(&mut rng);
        let bytes = pair.serialize();
        let back = IdentityKeyPair::from_bytes(&bytes).unwrap();
        assert_eq!(back.identity_key(), pair.identity_key());
        let other = IdentityKeyPair::generate(&mut rng);
        let forged = IdentityKeyPairPickle {
            public_key: other.identity_key().serialize().to_vec(),
            private_key: pair.private_key().serialize().to_vec(),
        };
        assert!(IdentityKeyPair::from_bytes(&forged.encode_to_vec()).is_err());
        assert!(IdentityKeyPair::from_bytes(&[0xff; 3]).is_err());
    }
}

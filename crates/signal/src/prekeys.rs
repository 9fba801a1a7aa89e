//! Prekeys: signed prekeys, one-time prekeys and Kyber prekeys (one-time and last-resort),
//! their persisted records, and the bundle a sender fetches to start a session.

use prost::Message;
use rand_core::CryptoRng;

use crate::codec::{WireError, decode_bounded};
use crate::crypto::{
    CryptoError, KeyPair, KyberKeyPair, KyberPublicKey, KyberSecretKey, PrivateKey, PublicKey,
};
use crate::error::ProtocolError;
use crate::identity::{IdentityKey, IdentityKeyPair};
use crate::time::Timestamp;

pub use crate::ids::{KyberPreKeyId, PreKeyId, SignedPreKeyId};

/// Registration ids are 14-bit in Signal apps: 1..=16380.
pub const MAX_REGISTRATION_ID: u32 = 16380;
/// Prekey ids stay below 2^24, as in Signal apps (the server stores them as medium ints).
pub const MAX_PREKEY_ID: u32 = 0x00FF_FFFF;

/// A fresh registration id in 1..=16380.
pub fn generate_registration_id(rng: &mut impl CryptoRng) -> u32 {
    1 + rng.next_u32() % MAX_REGISTRATION_ID
}

/// A one-time Curve25519 prekey, consumed by the first session that uses it.
#[derive(Clone, Debug)]
pub struct PreKeyRecord {
    /// Its id.
    pub id: PreKeyId,
    /// The key pair.
    pub key_pair: KeyPair,
}

/// A medium-term Curve25519 prekey signed by the identity key.
#[derive(Clone, Debug)]
pub struct SignedPreKeyRecord {
    /// Its id.
    pub id: SignedPreKeyId,
    /// When it was made.
    pub timestamp: Timestamp,
    /// The key pair.
    pub key_pair: KeyPair,
    /// XEdDSA signature of the identity key over the serialized public key.
    pub signature: [u8; 64],
}

/// A Kyber1024 prekey signed by the identity key. One-time keys are removed after use;
/// a last-resort key stays and is handed out when no one-time key is left.
#[derive(Clone, Debug)]
pub struct KyberPreKeyRecord {
    /// Its id.
    pub id: KyberPreKeyId,
    /// When it was made.
    pub timestamp: Timestamp,
    /// The key pair.
    pub key_pair: KyberKeyPair,
    /// XEdDSA signature of the identity key over the serialized (1569-byte) public key.
    pub signature: [u8; 64],
    /// Whether this is the last-resort key (never removed on use).
    pub last_resort: bool,
}

impl PreKeyRecord {
    /// A fresh one-time prekey.
    pub fn generate(id: PreKeyId, rng: &mut impl CryptoRng) -> Self {
        Self { id, key_pair: KeyPair::generate(rng) }
    }
}

impl SignedPreKeyRecord {
    /// A fresh signed prekey, signed by `identity`.
    pub fn generate(
        id: SignedPreKeyId,
        identity: &IdentityKeyPair,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let key_pair = KeyPair::generate(rng);
        let signature = identity.private_key().sign(&key_pair.public_key.serialize(), rng);
        Self { id, timestamp: now, key_pair, signature }
    }
}

impl KyberPreKeyRecord {
    /// A fresh Kyber prekey, signed by `identity`.
    pub fn generate(
        id: KyberPreKeyId,
        identity: &IdentityKeyPair,
        now: Timestamp,
        last_resort: bool,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let key_pair = KyberKeyPair::generate(rng);
        let signature = identity.private_key().sign(&key_pair.public_key.serialize(), rng);
        Self { id, timestamp: now, key_pair, signature, last_resort }
    }
}

/// What a sender needs to start a session with one device. libsignal has no wire encoding for
/// it (the server delivers it); Tandem's relay carries its fields in its own messages.
#[derive(Clone, Debug)]
pub struct PreKeyBundle {
    /// The device's registration id.
    pub registration_id: u32,
    /// The device id.
    pub device_id: crate::address::DeviceId,
    /// A one-time prekey, when the server had one left.
    pub pre_key: Option<(PreKeyId, PublicKey)>,
    /// The signed prekey id.
    pub signed_pre_key_id: SignedPreKeyId,
    /// The signed prekey.
    pub signed_pre_key: PublicKey,
    /// Its signature.
    pub signed_pre_key_signature: Vec<u8>,
    /// The Kyber prekey id.
    pub kyber_pre_key_id: KyberPreKeyId,
    /// The Kyber prekey.
    pub kyber_pre_key: KyberPublicKey,
    /// Its signature.
    pub kyber_pre_key_signature: Vec<u8>,
    /// The device's identity key.
    pub identity_key: IdentityKey,
}

impl PreKeyBundle {
    /// The bundle publishing these records of a device.
    pub fn from_records(
        registration_id: u32,
        device_id: crate::address::DeviceId,
        identity_key: IdentityKey,
        pre_key: Option<&PreKeyRecord>,
        signed_pre_key: &SignedPreKeyRecord,
        kyber_pre_key: &KyberPreKeyRecord,
    ) -> Self {
        Self {
            registration_id,
            device_id,
            pre_key: pre_key.map(|k| (k.id, k.key_pair.public_key)),
            signed_pre_key_id: signed_pre_key.id,
            signed_pre_key: signed_pre_key.key_pair.public_key,
            signed_pre_key_signature: signed_pre_key.signature.to_vec(),
            kyber_pre_key_id: kyber_pre_key.id,
            kyber_pre_key: kyber_pre_key.key_pair.public_key.clone(),
            kyber_pre_key_signature: kyber_pre_key.signature.to_vec(),
            identity_key,
        }
    }

    /// Checks both prekey signatures under the bundle's identity key.
    pub fn verify(&self) -> Result<(), ProtocolError> {
        let ik = self.identity_key.public_key();
        ik.verify_signatures(&[
            (&self.signed_pre_key.serialize(), &self.signed_pre_key_signature),
            (&self.kyber_pre_key.serialize(), &self.kyber_pre_key_signature),
        ])
        .map_err(|i| ProtocolError::InvalidBundleSignature {
            which: if i == 0 { "signed prekey" } else { "Kyber prekey" },
        })
    }
}

// --- persistence -------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
struct PreKeyPickle {
    #[prost(uint32, tag = "1")]
    id: u32,
    #[prost(bytes = "vec", tag = "2")]
    public_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    private_key: Vec<u8>,
    #[prost(uint64, tag = "4")]
    timestamp: u64,
    #[prost(bytes = "vec", tag = "5")]
    signature: Vec<u8>,
    #[prost(bool, tag = "6")]
    last_resort: bool,
}

impl Drop for PreKeyPickle {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_key);
    }
}

fn malformed(what: &'static str) -> impl Fn(CryptoError) -> WireError {
    move |e| WireError::Malformed { what, reason: e.to_string() }
}

fn signature(what: &'static str, bytes: &[u8]) -> Result<[u8; 64], WireError> {
    bytes
        .try_into()
        .map_err(|_| WireError::Malformed { what, reason: "signature is not 64 bytes".into() })
}

fn curve_pair(what: &'static str, p: &PreKeyPickle) -> Result<KeyPair, WireError> {
    let private = PrivateKey::from_bytes(&p.private_key).map_err(malformed(what))?;
    let public = PublicKey::from_bytes(&p.public_key).map_err(malformed(what))?;
    if private.public_key() != public {
        return Err(WireError::Malformed { what, reason: "key halves do not match".into() });
    }
    Ok(KeyPair { public_key: public, private_key: private })
}

impl PreKeyRecord {
    /// Serializes for storage; the bytes hold the private key.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let p = PreKeyPickle {
            id: self.id.0,
            public_key: self.key_pair.public_key.serialize().to_vec(),
            private_key: self.key_pair.private_key.serialize().to_vec(),
            timestamp: 0,
            signature: Vec::new(),
            last_resort: false,
        };
        zeroize::Zeroizing::new(p.encode_to_vec())
    }

    /// Parses [`to_bytes`](Self::to_bytes)' output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let p: PreKeyPickle = decode_bounded("PreKeyRecord", bytes, 1024)?;
        Ok(Self { id: PreKeyId(p.id), key_pair: curve_pair("PreKeyRecord", &p)? })
    }
}

impl SignedPreKeyRecord {
    /// Serializes for storage; the bytes hold the private key.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let p = PreKeyPickle {
            id: self.id.0,
            public_key: self.key_pair.public_key.serialize().to_vec(),
            private_key: self.key_pair.private_key.serialize().to_vec(),
            timestamp: self.timestamp.as_millis(),
            signature: self.signature.to_vec(),
            last_resort: false,
        };
        zeroize::Zeroizing::new(p.encode_to_vec())
    }

    /// Parses [`to_bytes`](Self::to_bytes)' output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let what = "SignedPreKeyRecord";
        let p: PreKeyPickle = decode_bounded(what, bytes, 1024)?;
        Ok(Self {
            id: SignedPreKeyId(p.id),
            timestamp: Timestamp::from_millis(p.timestamp),
            key_pair: curve_pair(what, &p)?,
            signature: signature(what, &p.signature)?,
        })
    }
}

impl KyberPreKeyRecord {
    /// Serializes for storage; the bytes hold the secret key.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let p = PreKeyPickle {
            id: self.id.0,
            public_key: self.key_pair.public_key.serialize(),
            private_key: self.key_pair.secret_key.serialize().to_vec(),
            timestamp: self.timestamp.as_millis(),
            signature: self.signature.to_vec(),
            last_resort: self.last_resort,
        };
        zeroize::Zeroizing::new(p.encode_to_vec())
    }

    /// Parses [`to_bytes`](Self::to_bytes)' output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, WireError> {
        let what = "KyberPreKeyRecord";
        let p: PreKeyPickle = decode_bounded(what, bytes, 8192)?;
        let public_key = KyberPublicKey::from_bytes(&p.public_key).map_err(malformed(what))?;
        let secret_key = KyberSecretKey::from_bytes(&p.private_key).map_err(malformed(what))?;
        Ok(Self {
            id: KyberPreKeyId(p.id),
            timestamp: Timestamp::from_millis(p.timestamp),
            key_pair: KyberKeyPair { public_key, secret_key },
            signature: signature(what, &p.signature)?,
            last_resort: p.last_resort,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::address::DeviceId;

    fn bundle(rng: &mut StdRng) -> PreKeyBundle {
        let identity = IdentityKeyPair::generate(rng);
        let spk = SignedPreKeyRecord::generate(
            SignedPreKeyId(7),
            &identity,
            Timestamp::from_millis(1),
            rng,
        );
        let kpk = KyberPreKeyRecord::generate(
            KyberPreKeyId(9),
            &identity,
            Timestamp::from_millis(1),
            true,
            rng,
        );
        PreKeyBundle {
            registration_id: 42,
            device_id: DeviceId::PRIMARY,
            pre_key: None,
            signed_pre_key_id: spk.id,
            signed_pre_key: spk.key_pair.public_key,
            signed_pre_key_signature: spk.signature.to_vec(),
            kyber_pre_key_id: kpk.id,
            kyber_pre_key: kpk.key_pair.public_key.clone(),
            kyber_pre_key_signature: kpk.signature.to_vec(),
            identity_key: *identity.identity_key(),
        }
    }

    #[test]
    fn test_bundle_signatures_are_checked() {
        let mut rng = StdRng::seed_from_u64(1);
        let good = bundle(&mut rng);
        good.verify().unwrap();
        let mut forged = good.clone();
        forged.signed_pre_key = KeyPair::generate(&mut rng).public_key;
        assert!(matches!(
            forged.verify(),
            Err(ProtocolError::InvalidBundleSignature { which: "signed prekey" })
        ));
        let mut forged = good.clone();
        forged.kyber_pre_key = KyberKeyPair::generate(&mut rng).public_key;
        assert!(matches!(
            forged.verify(),
            Err(ProtocolError::InvalidBundleSignature { which: "Kyber prekey" })
        ));
        let mut other_identity = good;
        other_identity.identity_key = *IdentityKeyPair::generate(&mut rng).identity_key();
        assert!(other_identity.verify().is_err());
    }

    #[test]
    fn test_records_roundtrip() {
        let mut rng = StdRng::seed_from_u64(2);
        let identity = IdentityKeyPair::generate(&mut rng);
        let pk = PreKeyRecord::generate(PreKeyId(3), &mut rng);
        let back = PreKeyRecord::from_bytes(&pk.to_bytes()).unwrap();
        assert_eq!((back.id, back.key_pair.public_key), (pk.id, pk.key_pair.public_key));
        let spk = SignedPreKeyRecord::generate(
            SignedPreKeyId(4),
            &identity,
            Timestamp::from_millis(9),
            &mut rng,
        );
        let back = SignedPreKeyRecord::from_bytes(&spk.to_bytes()).unwrap();
        assert_eq!(
            (back.id, back.timestamp, back.signature),
            (spk.id, spk.timestamp, spk.signature)
        );
        let kpk = KyberPreKeyRecord::generate(
            KyberPreKeyId(5),
            &identity,
            Timestamp::from_millis(9),
            true,
            &mut rng,
        );
        let back = KyberPreKeyRecord::from_bytes(&kpk.to_bytes()).unwrap();
        assert_eq!(back.key_pair.public_key, kpk.key_pair.public_key);
        assert!(back.last_resort);
        assert!(PreKeyRecord::from_bytes(&[1, 2, 3]).is_err());
    }

    #[test]
    fn test_registration_id_range() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..10_000 {
            let id = generate_registration_id(&mut rng);
            assert!((1..=MAX_REGISTRATION_ID).contains(&id));
        }
    }
}

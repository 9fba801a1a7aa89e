//! Curve25519 keys with libsignal's serialization: public keys are `0x05 ‖ u` (33 bytes),
//! private keys are 32 clamped bytes.

use std::fmt;

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::{CryptoError, xeddsa};

/// The type byte libsignal puts in front of a Curve25519 public key (`DJB_TYPE`).
pub const DJB_TYPE: u8 = 0x05;
/// Length of a serialized public key, type byte included.
pub const PUBLIC_KEY_LENGTH: usize = 33;
/// Length of a private key.
pub const PRIVATE_KEY_LENGTH: usize = 32;
/// Length of an XEdDSA signature.
pub const SIGNATURE_LENGTH: usize = 64;

/// A Curve25519 public key (a Montgomery u-coordinate).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses libsignal's 33-byte serialization `0x05 ‖ u`.
    ///
    /// Anything but exactly 33 bytes with the right type byte is an error: trailing bytes
    /// would give one key two encodings (and two fingerprints).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let what = "Curve25519 public key";
        let Some((&kind, u)) = bytes.split_first() else {
            return Err(CryptoError::BadLength { what, expected: PUBLIC_KEY_LENGTH, found: 0 });
        };
        if kind != DJB_TYPE {
            return Err(CryptoError::BadKeyType { what, expected: DJB_TYPE, found: kind });
        }
        let u: [u8; 32] = u.try_into().map_err(|_| CryptoError::BadLength {
            what,
            expected: PUBLIC_KEY_LENGTH,
            found: bytes.len(),
        })?;
        Ok(Self(u))
    }

    /// The 32-byte u-coordinate without the type byte.
    pub fn from_u_bytes(u: [u8; 32]) -> Self {
        Self(u)
    }

    /// libsignal's 33-byte serialization `0x05 ‖ u`.
    pub fn serialize(&self) -> [u8; PUBLIC_KEY_LENGTH] {
        let mut out = [0u8; PUBLIC_KEY_LENGTH];
        out[0] = DJB_TYPE;
        out[1..].copy_from_slice(&self.0);
        out
    }

    /// The raw u-coordinate.
    pub fn u_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether `u` is the canonical encoding of a field element (`u < 2^255 − 19`, top bit clear).
    pub fn is_canonical(&self) -> bool {
        is_canonical_u(&self.0)
    }

    /// Whether this is a canonical encoding of a point in the prime-order subgroup (what an
    /// honest key, a clamped multiple of the base point, always is).
    pub fn is_canonical_and_torsion_free(&self) -> bool {
        // [ℓ]P = O  ⇔  [ℓ − 1]P = −P, and ℓ − 1 is a reduced scalar (−1), so the check runs
        // as one variable-time multiplication: the key is public, and this costs about half
        // of the constant-time `is_torsion_free`.
        self.is_canonical()
            && MontgomeryPoint(self.0).to_edwards(0).is_some_and(|p| {
                EdwardsPoint::vartime_double_scalar_mul_basepoint(&-Scalar::ONE, &p, &Scalar::ZERO)
                    == -p
            })
    }

    /// Verifies an XEdDSA signature made by the matching private key over `message`.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
        let signature: &[u8; SIGNATURE_LENGTH] =
            signature.try_into().map_err(|_| CryptoError::BadLength {
                what: "XEdDSA signature",
                expected: SIGNATURE_LENGTH,
                found: signature.len(),
            })?;
        if xeddsa::verify(&self.0, &[message], signature) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }

    /// Verifies several XEdDSA signatures made with this key, preparing the key once (one
    /// square root and inversion fewer per further signature). The error names the first
    /// signature, by index, that does not verify.
    pub fn verify_signatures(&self, signed: &[(&[u8], &[u8])]) -> Result<(), usize> {
        let verifier = xeddsa::Verifier::new(&self.0);
        for (i, (message, signature)) in signed.iter().enumerate() {
            let ok = match (&verifier, <&[u8; SIGNATURE_LENGTH]>::try_from(*signature)) {
                (Some(v), Ok(signature)) => v.verify(&[message], signature),
                _ => false,
            };
            if !ok {
                return Err(i);
            }
        }
        Ok(())
    }

    /// Like [`verify_signature`](Self::verify_signature) over the concatenation of `parts`,
    /// without allocating it.
    pub fn verify_signature_parts(
        &self,
        parts: &[&[u8]],
        signature: &[u8; SIGNATURE_LENGTH],
    ) -> Result<(), CryptoError> {
        if xeddsa::verify(&self.0, parts, signature) {
            Ok(())
        } else {
            Err(CryptoError::BadSignature)
        }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

fn is_canonical_u(u: &[u8; 32]) -> bool {
    // p = 2^255 - 19: little-endian bytes ed ff .. ff 7f. Canonical iff u < p.
    if u[31] & 0x80 != 0 {
        return false;
    }
    let all_ff = u[1..31].iter().all(|&b| b == 0xff);
    !(u[31] == 0x7f && all_ff && u[0] >= 0xed)
}

/// A clamped Curve25519 private key. Zeroized on drop.
#[derive(Clone)]
pub struct PrivateKey(Box<[u8; 32]>);

impl PrivateKey {
    /// Generates a fresh private key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_array(&bytes)
    }

    /// Parses 32 bytes, clamping them as libsignal does on deserialization.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: &[u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadLength {
            what: "Curve25519 private key",
            expected: PRIVATE_KEY_LENGTH,
            found: bytes.len(),
        })?;
        Ok(Self::from_array(arr))
    }

    fn from_array(bytes: &[u8; 32]) -> Self {
        let mut k = Box::new(*bytes);
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
        Self(k)
    }

    /// The 32 clamped bytes. The caller must wipe any copy it keeps (e.g. `Zeroizing`).
    pub fn serialize(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(*self.0)
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(MontgomeryPoint::mul_base_clamped(*self.0).to_bytes())
    }

    /// X25519 with `their` key. An all-zero result (low-order input) is rejected.
    pub fn agree(&self, their: &PublicKey) -> Result<SharedSecret, CryptoError> {
        let shared = Zeroizing::new(MontgomeryPoint(their.0).mul_clamped(*self.0).to_bytes());
        if bool::from(shared.ct_eq(&[0u8; 32])) {
            return Err(CryptoError::InvalidKeyAgreement);
        }
        Ok(SharedSecret(Box::new(*shared)))
    }

    /// An XEdDSA signature over `message`, randomized with 64 bytes from `rng`.
    pub fn sign(&self, message: &[u8], rng: &mut impl CryptoRng) -> [u8; SIGNATURE_LENGTH] {
        self.sign_parts(&[message], rng)
    }

    /// An XEdDSA signature over the concatenation of `parts`.
    pub fn sign_parts(&self, parts: &[&[u8]], rng: &mut impl CryptoRng) -> [u8; SIGNATURE_LENGTH] {
        let mut nonce = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(nonce.as_mut());
        xeddsa::sign(&self.0, parts, &nonce)
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey([redacted])")
    }
}

/// The 32-byte output of an X25519 agreement. Zeroized on drop.
pub struct SharedSecret(Box<[u8; 32]>);

impl SharedSecret {
    /// The raw bytes; copies must be wiped by the caller.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for SharedSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret([redacted])")
    }
}

/// A Curve25519 key pair.
#[derive(Clone)]
pub struct KeyPair {
    /// The public half.
    pub public_key: PublicKey,
    /// The private half.
    pub private_key: PrivateKey,
}

impl KeyPair {
    /// Generates a fresh key pair.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        Self::from_private(PrivateKey::generate(rng))
    }

    /// The key pair of an existing private key.
    pub fn from_private(private_key: PrivateKey) -> Self {
        Self { public_key: private_key.public_key(), private_key }
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { public_key, private_key } = self;
        f.debug_struct("KeyPair")
            .field("public_key", public_key)
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
    fn test_several_signatures_under_one_key_verify_like_each_alone() {
        let mut rng = StdRng::seed_from_u64(43);
        for _ in 0..64 {
            // Keys of both signs (the signature carries A's sign bit).
            let pair = KeyPair::generate(&mut rng);
            let (m1, m2) = (b"signed prekey".as_slice(), b"kyber prekey".as_slice());
            let (s1, s2) =
                (pair.private_key.sign(m1, &mut rng), pair.private_key.sign(m2, &mut rng));
            assert_eq!(pair.public_key.verify_signatures(&[(m1, &s1), (m2, &s2)]), Ok(()));
            assert_eq!(pair.public_key.verify_signatures(&[(m1, &s1), (m1, &s2)]), Err(1));
            assert_eq!(pair.public_key.verify_signatures(&[(m2, &s1), (m2, &s2)]), Err(0));
            assert_eq!(pair.public_key.verify_signatures(&[(m1, &s1[..63])]), Err(0));
            let mut flipped = s2;
            flipped[63] ^= 0x80;
            assert!(pair.public_key.verify_signature(m2, &flipped).is_err());
            assert_eq!(pair.public_key.verify_signatures(&[(m2, &flipped)]), Err(0));
        }
    }

    #[test]
    fn test_the_torsion_check_agrees_with_the_constant_time_one() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use rand::RngExt;
        let mut rng = StdRng::seed_from_u64(41);
        let reference = |k: &PublicKey| {
            k.is_canonical()
                && MontgomeryPoint(k.0).to_edwards(0).is_some_and(|p| p.is_torsion_free())
        };
        for i in 0..200 {
            // Honest keys are in the prime-order subgroup; adding a small-order point
            // (what a replay with a re-encoded base key would do) takes it out.
            let honest = KeyPair::generate(&mut rng).public_key;
            assert!(honest.is_canonical_and_torsion_free());
            let edwards = MontgomeryPoint(honest.0).to_edwards(0).unwrap();
            let twisted =
                PublicKey((edwards + EIGHT_TORSION[1 + i % 7]).to_montgomery().to_bytes());
            assert!(!twisted.is_canonical_and_torsion_free(), "torsion {}", 1 + i % 7);
            // Random bytes: both checks say the same.
            let mut u: [u8; 32] = rng.random();
            u[31] &= 0x7f;
            let random = PublicKey(u);
            assert_eq!(random.is_canonical_and_torsion_free(), reference(&random));
        }
        for small in EIGHT_TORSION {
            let k = PublicKey(small.to_montgomery().to_bytes());
            assert_eq!(k.is_canonical_and_torsion_free(), reference(&k));
        }
    }

    #[test]
    fn test_public_key_parsing_errors_are_distinct() {
        assert!(matches!(PublicKey::from_bytes(&[]), Err(CryptoError::BadLength { found: 0, .. })));
        assert!(matches!(
            PublicKey::from_bytes(&[0x08; 33]),
            Err(CryptoError::BadKeyType { expected: 0x05, found: 0x08, .. })
        ));
        let mut long = [0u8; 34];
        long[0] = DJB_TYPE;
        assert!(matches!(
            PublicKey::from_bytes(&long),
            Err(CryptoError::BadLength { expected: 33, found: 34, .. })
        ));
    }

    #[test]
    fn test_agreement_is_symmetric_and_rejects_low_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let a = KeyPair::generate(&mut rng);
        let b = KeyPair::generate(&mut rng);
        let ab = a.private_key.agree(&b.public_key).unwrap();
        let ba = b.private_key.agree(&a.public_key).unwrap();
        assert_eq!(ab.as_bytes(), ba.as_bytes());
        let zero = PublicKey::from_u_bytes([0; 32]);
        assert_eq!(a.private_key.agree(&zero).unwrap_err(), CryptoError::InvalidKeyAgreement);
    }

    #[test]
    fn test_canonical_u() {
        assert!(PublicKey::from_u_bytes([0; 32]).is_canonical());
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(!PublicKey::from_u_bytes(p).is_canonical());
        p[0] = 0xec;
        assert!(PublicKey::from_u_bytes(p).is_canonical());
        let mut high = [0; 32];
        high[31] = 0x80;
        assert!(!PublicKey::from_u_bytes(high).is_canonical());
    }

    #[test]
    fn test_debug_redacts_private_key() {
        let mut rng = StdRng::seed_from_u64(2);
        let pair = KeyPair::generate(&mut rng);
        let hex_priv = hex::encode(pair.private_key.serialize().as_ref());
        let dbg = format!("{pair:?}");
        assert!(dbg.contains("[redacted]"));
        assert!(!dbg.contains(&hex_priv));
        assert!(!dbg.contains(&hex_priv[..16]));
    }
}

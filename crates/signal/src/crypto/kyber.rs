//! Round-3 Kyber1024 (what libsignal calls `Kyber1024`, type byte `0x08`), on libcrux.
//! This is the pre-standard KEM, not FIPS-203 ML-KEM: the shared secrets differ.

use std::fmt;

use libcrux_ml_kem::kyber1024;
use libcrux_ml_kem::mlkem1024::{
    self, MlKem1024Ciphertext, MlKem1024PrivateKey, MlKem1024PublicKey,
};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use super::CryptoError;

/// libsignal's type byte for Kyber1024 keys and ciphertexts.
pub const KYBER_TYPE: u8 = 0x08;
const PUBLIC_LEN: usize = 1568;
const SECRET_LEN: usize = 3168;
const CIPHERTEXT_LEN: usize = 1568;

fn strip_type<'a>(
    what: &'static str,
    bytes: &'a [u8],
    len: usize,
) -> Result<&'a [u8], CryptoError> {
    let Some((&kind, rest)) = bytes.split_first() else {
        return Err(CryptoError::BadLength { what, expected: len + 1, found: 0 });
    };
    if kind != KYBER_TYPE {
        return Err(CryptoError::BadKeyType { what, expected: KYBER_TYPE, found: kind });
    }
    if rest.len() != len {
        return Err(CryptoError::BadLength { what, expected: len + 1, found: bytes.len() });
    }
    Ok(rest)
}

fn with_type(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(KYBER_TYPE);
    out.extend_from_slice(body);
    out
}

/// A Kyber1024 public (encapsulation) key.
#[derive(Clone, PartialEq, Eq)]
pub struct KyberPublicKey(Box<[u8; PUBLIC_LEN]>);

impl KyberPublicKey {
    /// Parses `0x08 ‖ 1568 bytes` and checks the key's coefficients are in range.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let body = strip_type("Kyber1024 public key", bytes, PUBLIC_LEN)?;
        let mut arr = Box::new([0u8; PUBLIC_LEN]);
        arr.copy_from_slice(body);
        if !mlkem1024::validate_public_key(&MlKem1024PublicKey::from(&*arr)) {
            return Err(CryptoError::InvalidKyberKey);
        }
        Ok(Self(arr))
    }

    /// `0x08 ‖ 1568 bytes`.
    pub fn serialize(&self) -> Vec<u8> {
        with_type(&self.0[..])
    }

    /// Encapsulates a fresh shared secret to this key.
    pub fn encapsulate(&self, rng: &mut impl CryptoRng) -> (KyberCiphertext, KyberSharedSecret) {
        let mut randomness = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(randomness.as_mut());
        let (ct, ss) = kyber1024::encapsulate(&MlKem1024PublicKey::from(&*self.0), *randomness);
        let mut ct_bytes = Box::new([0u8; CIPHERTEXT_LEN]);
        ct_bytes.copy_from_slice(ct.as_ref());
        (KyberCiphertext(ct_bytes), KyberSharedSecret(Box::new(ss)))
    }
}

impl fmt::Debug for KyberPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KyberPublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}

/// A Kyber1024 secret (decapsulation) key. Zeroized on drop.
#[derive(Clone)]
pub struct KyberSecretKey(Box<[u8; SECRET_LEN]>);

impl KyberSecretKey {
    /// Parses `0x08 ‖ 3168 bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let body = strip_type("Kyber1024 secret key", bytes, SECRET_LEN)?;
        let mut arr = Box::new([0u8; SECRET_LEN]);
        arr.copy_from_slice(body);
        Ok(Self(arr))
    }

    /// `0x08 ‖ 3168 bytes`. The caller must wipe the result.
    pub fn serialize(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(with_type(&self.0[..]))
    }

    /// Recovers the shared secret from a ciphertext. Kyber's implicit rejection means a
    /// tampered ciphertext yields an unrelated secret rather than an error; the MAC of the
    /// first message catches it.
    pub fn decapsulate(&self, ciphertext: &KyberCiphertext) -> KyberSharedSecret {
        let mut sk = MlKem1024PrivateKey::from(&*self.0);
        let ss = kyber1024::decapsulate(&sk, &MlKem1024Ciphertext::from(&*ciphertext.0));
        sk[0..].zeroize();
        KyberSharedSecret(Box::new(ss))
    }
}

impl Drop for KyberSecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for KyberSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KyberSecretKey([redacted])")
    }
}

/// A Kyber1024 key pair.
#[derive(Clone)]
pub struct KyberKeyPair {
    /// The public (encapsulation) key.
    pub public_key: KyberPublicKey,
    /// The secret (decapsulation) key.
    pub secret_key: KyberSecretKey,
}

impl KyberKeyPair {
    /// Generates a fresh key pair.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(seed.as_mut());
        let pair = kyber1024::generate_key_pair(*seed);
        let mut public = Box::new([0u8; PUBLIC_LEN]);
        public.copy_from_slice(pair.pk());
        let mut secret = Box::new([0u8; SECRET_LEN]);
        secret.copy_from_slice(pair.sk());
        let (mut sk, _) = pair.into_parts();
        sk[0..].zeroize();
        Self { public_key: KyberPublicKey(public), secret_key: KyberSecretKey(secret) }
    }
}

impl fmt::Debug for KyberKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { public_key, secret_key } = self;
        f.debug_struct("KyberKeyPair")
            .field("public_key", public_key)
            .field("secret_key", secret_key)
            .finish()
    }
}

/// A Kyber1024 ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct KyberCiphertext(Box<[u8; CIPHERTEXT_LEN]>);

impl KyberCiphertext {
    /// Parses `0x08 ‖ 1568 bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let body = strip_type("Kyber1024 ciphertext", bytes, CIPHERTEXT_LEN)?;
        let mut arr = Box::new([0u8; CIPHERTEXT_LEN]);
        arr.copy_from_slice(body);
        Ok(Self(arr))
    }

    /// `0x08 ‖ 1568 bytes`.
    pub fn serialize(&self) -> Vec<u8> {
        with_type(&self.0[..])
    }
}

impl fmt::Debug for KyberCiphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KyberCiphertext(…)")
    }
}

/// A 32-byte Kyber shared secret. Zeroized on drop.
pub struct KyberSharedSecret(Box<[u8; 32]>);

impl KyberSharedSecret {
    /// The raw bytes; copies must be wiped by the caller.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for KyberSharedSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0[..].ct_eq(&other.0[..]).into()
    }
}

impl Drop for KyberSharedSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for KyberSharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KyberSharedSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn test_roundtrip_and_serialization() {
        let mut rng = StdRng::seed_from_u64(3);
        let pair = KyberKeyPair::generate(&mut rng);
        let pk_bytes = pair.public_key.serialize();
        assert_eq!(pk_bytes.len(), 1569);
        assert_eq!(pk_bytes[0], 0x08);
        let pk = KyberPublicKey::from_bytes(&pk_bytes).unwrap();
        let (ct, ss) = pk.encapsulate(&mut rng);
        let ct = KyberCiphertext::from_bytes(&ct.serialize()).unwrap();
        let sk = KyberSecretKey::from_bytes(&pair.secret_key.serialize()).unwrap();
        assert_eq!(sk.decapsulate(&ct), ss);
    }

    #[test]
    fn test_parse_errors() {
        assert!(matches!(
            KyberPublicKey::from_bytes(&[0x0a; 1569]),
            Err(CryptoError::BadKeyType { found: 0x0a, .. })
        ));
        assert!(matches!(
            KyberCiphertext::from_bytes(&[0x08; 10]),
            Err(CryptoError::BadLength { expected: 1569, found: 10, .. })
        ));
        // All-0xff coefficients are out of range for q = 3329.
        let mut bad = vec![0xff; 1569];
        bad[0] = 0x08;
        assert_eq!(KyberPublicKey::from_bytes(&bad), Err(CryptoError::InvalidKyberKey));
    }
}

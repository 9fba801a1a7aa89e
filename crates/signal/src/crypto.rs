//! Cryptographic building blocks on vetted primitives: Curve25519 keys in libsignal's
//! serialization, XEdDSA signatures, round-3 Kyber1024, HKDF/HMAC-SHA256, AES-256-CBC and
//! AES-256-GCM.
//!
//! Every secret type zeroizes on drop and prints as `[redacted]`; every comparison of MACs,
//! tags and keys is constant-time. Randomness is always an argument (`rng: &mut impl CryptoRng`).

mod cipher;
mod curve;
mod kdf;
mod kyber;
mod xeddsa;

pub use cipher::{aes256_cbc_decrypt, aes256_cbc_encrypt, aes256_gcm_open, aes256_gcm_seal};
pub use curve::{
    DJB_TYPE, KeyPair, PRIVATE_KEY_LENGTH, PUBLIC_KEY_LENGTH, PrivateKey, PublicKey,
    SIGNATURE_LENGTH, SharedSecret,
};
pub use kdf::{SecretBytes, ct_eq, hkdf_sha256, hmac_sha256};
pub use kyber::{
    KYBER_TYPE, KyberCiphertext, KyberKeyPair, KyberPublicKey, KyberSecretKey, KyberSharedSecret,
};

/// Errors from the cryptographic building blocks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A serialized key started with the wrong type byte.
    #[error("{what}: expected key type byte {expected:#04x}, found {found:#04x}")]
    BadKeyType {
        /// Which kind of key was being parsed.
        what: &'static str,
        /// The type byte this key kind uses.
        expected: u8,
        /// The type byte that was found.
        found: u8,
    },
    /// A serialized key, ciphertext or signature had the wrong length.
    #[error("{what}: expected {expected} bytes, found {found}")]
    BadLength {
        /// What was being parsed.
        what: &'static str,
        /// The length required.
        expected: usize,
        /// The length found.
        found: usize,
    },
    /// A Curve25519 public key is not a valid, canonical point.
    #[error("invalid Curve25519 public key")]
    InvalidPublicKey,
    /// A Diffie-Hellman agreement produced the all-zero value (a low-order peer key).
    #[error("Diffie-Hellman agreement was not contributory")]
    InvalidKeyAgreement,
    /// A Kyber public key failed its validity check.
    #[error("invalid Kyber1024 public key")]
    InvalidKyberKey,
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// Authenticated decryption failed (wrong key, tampered ciphertext or bad padding).
    /// Deliberately carries no detail.
    #[error("decryption failed")]
    DecryptionFailed,
    /// A requested HKDF output was longer than HKDF-SHA256 can produce.
    #[error("HKDF output length {0} is too long")]
    KdfLength(usize),
}

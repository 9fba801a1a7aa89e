//! AES-256-CBC with PKCS#7 (Signal message bodies) and AES-256-GCM (Tandem's own blobs).

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::CryptoError;

/// AES-256-CBC encryption with PKCS#7 padding (an empty plaintext gives one block).
pub fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes256>::new(key.into(), iv.into()).encrypt_padded_vec::<Pkcs7>(plaintext)
}

/// AES-256-CBC decryption; a length that is not a non-zero multiple of 16 or bad padding
/// is [`CryptoError::DecryptionFailed`].
pub fn aes256_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(16) {
        return Err(CryptoError::DecryptionFailed);
    }
    cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec::<Pkcs7>(ciphertext)
        .map_err(|_| CryptoError::DecryptionFailed)
}

/// AES-256-GCM encryption: `ciphertext ‖ 16-byte tag`. The nonce must never repeat under a key.
pub fn aes256_gcm_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    // Encryption only fails for plaintexts beyond GCM's 64 GiB limit, which no caller
    // can produce in memory; an empty output would then fail authentication on open.
    cipher.encrypt(&Nonce::from(*nonce), Payload { msg: plaintext, aad }).unwrap_or_default()
}

/// AES-256-GCM decryption and tag check.
pub fn aes256_gcm_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(&Nonce::from(*nonce), Payload { msg: ciphertext, aad })
        .map_err(|_| CryptoError::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cbc_roundtrip_and_padding() {
        let key = [7u8; 32];
        let iv = [9u8; 16];
        for len in [0usize, 1, 15, 16, 17, 1000] {
            let pt = vec![0xab; len];
            let ct = aes256_cbc_encrypt(&key, &iv, &pt);
            assert_eq!(ct.len(), (len / 16 + 1) * 16);
            assert_eq!(aes256_cbc_decrypt(&key, &iv, &ct).unwrap(), pt);
        }
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &[]), Err(CryptoError::DecryptionFailed));
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &[0; 15]), Err(CryptoError::DecryptionFailed));
        let mut ct = aes256_cbc_encrypt(&key, &iv, b"hello");
        ct[15] ^= 1;
        assert_eq!(aes256_cbc_decrypt(&key, &iv, &ct), Err(CryptoError::DecryptionFailed));
    }

    #[test]
    fn test_gcm_known_answer_and_tamper() {
        // NIST GCM test case 13 (256-bit zero key, zero IV, empty plaintext).
        let tag = aes256_gcm_seal(&[0; 32], &[0; 12], b"", b"");
        assert_eq!(hex::encode(&tag), "530f8afbc74536b9a963b4f1c4cb738b");
        let key = [1u8; 32];
        let nonce = [2u8; 12];
        let ct = aes256_gcm_seal(&key, &nonce, b"aad", b"secret");
        assert_eq!(aes256_gcm_open(&key, &nonce, b"aad", &ct).unwrap(), b"secret");
        assert!(aes256_gcm_open(&key, &nonce, b"other", &ct).is_err());
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(aes256_gcm_open(&key, &nonce, b"aad", &bad).is_err());
    }
}

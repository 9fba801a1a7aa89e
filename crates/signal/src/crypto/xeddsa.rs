//! XEdDSA (Signal's "XEdDSA and VXEdDSA" spec) as libsignal deploys it: the sign bit of the
//! Edwards public key travels in the top bit of the signature's last byte instead of being
//! forced to zero, so verification is a plain Ed25519 check under the key that bit selects.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::Scalar;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// `0xFE ‖ 0xFF × 31`: the hash prefix that separates nonce derivation from every other use
/// of SHA-512 with this key (the spec's `hash_1`).
const NONCE_PREFIX: [u8; 32] = {
    let mut p = [0xff; 32];
    p[0] = 0xfe;
    p
};

/// Signs the concatenation of `parts` with the clamped private key `k` and 64 random bytes.
pub(super) fn sign(k: &[u8; 32], parts: &[&[u8]], random: &[u8; 64]) -> [u8; 64] {
    let mut a = Scalar::from_bytes_mod_order(*k);
    let cap_a = EdwardsPoint::mul_base(&a).compress();
    let sign_bit = cap_a.as_bytes()[31] & 0x80;

    let mut nonce_hash = Sha512::new();
    nonce_hash.update(NONCE_PREFIX);
    nonce_hash.update(k);
    for p in parts {
        nonce_hash.update(p);
    }
    nonce_hash.update(random);
    let mut r = Scalar::from_hash(nonce_hash);
    let cap_r = EdwardsPoint::mul_base(&r).compress();

    let h = challenge(&cap_r, &cap_a, parts);
    let s = h * a + r;

    let mut signature = [0u8; 64];
    signature[..32].copy_from_slice(cap_r.as_bytes());
    signature[32..].copy_from_slice(s.as_bytes());
    signature[63] |= sign_bit;
    a.zeroize();
    r.zeroize();
    signature
}

/// Verifies `signature` over the concatenation of `parts` under the Montgomery public key `u`.
pub(super) fn verify(u: &[u8; 32], parts: &[&[u8]], signature: &[u8; 64]) -> bool {
    Verifier::new(u).is_some_and(|v| v.verify(parts, signature))
}

/// A public key made ready to check signatures: the Edwards point for sign bit 0 and its
/// encoding, computed once (a square root and an inversion) for every signature checked
/// with the key.
pub(super) struct Verifier {
    point: EdwardsPoint,
    compressed: CompressedEdwardsY,
}

impl Verifier {
    /// `None` for a key no signature can verify under (non-canonical or off the curve).
    pub(super) fn new(u: &[u8; 32]) -> Option<Self> {
        if u[31] & 0x80 != 0 {
            return None;
        }
        let point = MontgomeryPoint(*u).to_edwards(0)?;
        Some(Self { point, compressed: point.compress() })
    }

    pub(super) fn verify(&self, parts: &[&[u8]], signature: &[u8; 64]) -> bool {
        // The signer's sign bit chooses A or −A; −A's encoding differs only in its top bit
        // (unless x = 0, where −A = A and the bit stays clear, as decompressing would give).
        let negative = signature[63] & 0x80 != 0;
        let (cap_a, mut a_bytes) = (self.point, self.compressed.to_bytes());
        let cap_a = if negative && -cap_a != cap_a {
            a_bytes[31] |= 0x80;
            -cap_a
        } else {
            cap_a
        };
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&signature[32..]);
        s_bytes[31] &= 0x7f;
        if s_bytes[31] & 0xe0 != 0 {
            return false;
        }
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&signature[..32]);
        let cap_r = CompressedEdwardsY(r_bytes);
        let h = challenge(&cap_r, &CompressedEdwardsY(a_bytes), parts);
        let expected =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&h, &-cap_a, &s).compress();
        bool::from(expected.as_bytes().ct_eq(cap_r.as_bytes()))
    }
}

fn challenge(cap_r: &CompressedEdwardsY, cap_a: &CompressedEdwardsY, parts: &[&[u8]]) -> Scalar {
    let mut hash = Sha512::new();
    hash.update(cap_r.as_bytes());
    hash.update(cap_a.as_bytes());
    for p in parts {
        hash.update(p);
    }
    Scalar::from_hash(hash)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{RngExt, SeedableRng};

    use super::super::{CryptoError, KeyPair};

    #[test]
    fn test_sign_verify_roundtrip_and_tamper() {
        let mut rng = StdRng::seed_from_u64(7);
        for len in [0usize, 1, 33, 1000] {
            let pair = KeyPair::generate(&mut rng);
            let msg: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let sig = pair.private_key.sign(&msg, &mut rng);
            pair.public_key.verify_signature(&msg, &sig).unwrap();
            for i in [0, 31, 32, 62, 63] {
                let mut bad = sig;
                bad[i] ^= 0x01;
                assert_eq!(
                    pair.public_key.verify_signature(&msg, &bad),
                    Err(CryptoError::BadSignature),
                    "flipping a bit of byte {i} must break the signature"
                );
            }
            let mut flipped_sign = sig;
            flipped_sign[63] ^= 0x80;
            assert!(pair.public_key.verify_signature(&msg, &flipped_sign).is_err());
            let other = KeyPair::generate(&mut rng);
            assert!(other.public_key.verify_signature(&msg, &sig).is_err());
        }
    }

    #[test]
    fn test_parts_equal_concatenation() {
        let mut rng = StdRng::seed_from_u64(8);
        let pair = KeyPair::generate(&mut rng);
        let sig = pair.private_key.sign_parts(&[b"ab", b"", b"cd"], &mut rng);
        pair.public_key.verify_signature(b"abcd", &sig).unwrap();
    }

    #[test]
    fn test_wrong_length_signature() {
        let mut rng = StdRng::seed_from_u64(9);
        let pair = KeyPair::generate(&mut rng);
        assert!(matches!(
            pair.public_key.verify_signature(b"x", &[0u8; 63]),
            Err(CryptoError::BadLength { expected: 64, found: 63, .. })
        ));
    }
}

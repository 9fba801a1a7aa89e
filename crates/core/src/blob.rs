//! Encrypted blobs: what attachments and history-sync bundles are before they go to the
//! relay's blob store. The relay sees only ciphertext; the 32-byte key and the ciphertext's
//! digest travel end to end, inside a message over the pairwise sessions.
//!
//! Format (`tandem blob v1`): from a fresh 32-byte [`BlobKey`], HKDF-SHA256 (no salt, info
//! `"tandem blob v1"`) gives a 32-byte AES-256-GCM key and a 7-byte nonce prefix. The
//! plaintext is cut into chunks of [`CHUNK_LEN`] bytes (the last one shorter, possibly
//! empty); chunk `i` is sealed with nonce `prefix ‖ i as u32 big-endian ‖ last` (`last` is 1
//! for the final chunk, else 0) and no associated data, and the sealed chunks are
//! concatenated. This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár,
//! "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", 2015): a chunk
//! moved, repeated, dropped, or the blob cut at a chunk boundary fails to open, because the
//! position and the end are part of each nonce. The [`BlobDigest`] is SHA-256 of the whole
//! ciphertext; the receiver checks it (in constant time) before it shows anything.
//!
//! Both directions stream: [`Sealer`] and [`Opener`] take one chunk at a time, so a large
//! file never sits in memory whole. [`seal`] and [`open`] do a whole buffer at once.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead as _, KeyInit};
use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Plaintext bytes per chunk (the last chunk holds the rest, 0 to this many).
pub const CHUNK_LEN: usize = 64 * 1024;

/// The AES-GCM tag each sealed chunk carries.
pub const TAG_LEN: usize = 16;

/// A sealed full chunk's length.
pub const SEALED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;

const INFO: &[u8] = b"tandem blob v1";

/// Why a blob did not seal or open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// A chunk did not authenticate: altered, moved, from another blob, or the blob was cut.
    #[error("chunk {index} of the blob was altered, moved or cut")]
    Tampered {
        /// The chunk's position.
        index: u32,
    },
    /// The ciphertext is not what the message said (its SHA-256 differs).
    #[error("the blob is not the one the message named (its digest differs)")]
    DigestMismatch,
    /// A chunk came after the last one, or the blob ended without its last chunk.
    #[error("the blob's chunks are out of order: {0}")]
    Order(&'static str),
    /// A chunk of the wrong size.
    #[error("a chunk of {len} bytes (at most {max})")]
    ChunkSize {
        /// Its size.
        len: usize,
        /// The largest allowed.
        max: usize,
    },
    /// More chunks than the nonce counter holds.
    #[error("the blob is too large")]
    TooLarge,
}

/// A blob's fresh 32-byte key (zeroized on drop; never logged).
#[derive(Clone)]
pub struct BlobKey(Zeroizing<[u8; 32]>);

impl BlobKey {
    /// A fresh key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        Self(k)
    }

    /// The key sent to the devices that may read the blob.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let k: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(k)))
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The AES-256-GCM cipher and the nonce prefix.
    fn expand(&self) -> (Aes256Gcm, [u8; 7]) {
        let mut okm = Zeroizing::new([0u8; 39]);
        // 39 bytes are far below HKDF-SHA256's limit.
        if hkdf::Hkdf::<Sha256>::new(None, self.0.as_ref()).expand(INFO, okm.as_mut()).is_err() {
            unreachable!("HKDF output of 39 bytes");
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&okm[..32]);
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&okm[32..]);
        (Aes256Gcm::new(&(*key).into()), prefix)
    }
}

impl std::fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobKey(..)")
    }
}

/// SHA-256 of a blob's ciphertext.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlobDigest(pub [u8; 32]);

impl BlobDigest {
    /// Compares in constant time.
    pub fn matches(&self, other: &BlobDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

fn nonce(prefix: &[u8; 7], index: u32, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// The sealed length of `plain_len` plaintext bytes.
pub fn sealed_len(plain_len: u64) -> u64 {
    let chunk = CHUNK_LEN as u64;
    // Every full chunk, and the last (possibly empty) one, carry a tag.
    let chunks = plain_len / chunk + 1;
    plain_len + chunks * TAG_LEN as u64
}

/// Seals a blob chunk by chunk.
pub struct Sealer {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    index: u32,
    digest: Sha256,
    done: bool,
}

impl Sealer {
    /// Starts sealing with `key`.
    pub fn new(key: &BlobKey) -> Self {
        let (cipher, prefix) = key.expand();
        Self { cipher, prefix, index: 0, digest: Sha256::new(), done: false }
    }

    /// Seals the next chunk: exactly [`CHUNK_LEN`] bytes, or fewer if it is the `last`.
    pub fn seal_chunk(&mut self, plain: &[u8], last: bool) -> Result<Vec<u8>, BlobError> {
        if self.done {
            return Err(BlobError::Order("a chunk after the last one"));
        }
        if plain.len() > CHUNK_LEN || (!last && plain.len() != CHUNK_LEN) {
            return Err(BlobError::ChunkSize { len: plain.len(), max: CHUNK_LEN });
        }
        let n = nonce(&self.prefix, self.index, last);
        let sealed = self
            .cipher
            .encrypt(&n.into(), plain)
            .map_err(|_| BlobError::ChunkSize { len: plain.len(), max: CHUNK_LEN })?;
        self.index = match self.index.checked_add(1) {
            Some(i) => i,
            None if last => self.index,
            None => return Err(BlobError::TooLarge),
        };
        self.digest.update(&sealed);
        self.done = last;
        Ok(sealed)
    }

    /// The ciphertext's digest, once the last chunk was sealed.
    pub fn finish(self) -> Result<BlobDigest, BlobError> {
        if !self.done {
            return Err(BlobError::Order("the last chunk was not sealed"));
        }
        Ok(BlobDigest(self.digest.finalize().into()))
    }
}

/// Opens a blob chunk by chunk. Nothing it returns may be shown before [`Opener::finish`]
/// confirmed the digest.
pub struct Opener {
    cipher: Aes256Gcm,
    prefix: [u8; 7],
    index: u32,
    digest: Sha256,
    expected: BlobDigest,
    done: bool,
}

impl Opener {
    /// Starts opening a blob sealed with `key` whose ciphertext digest is `expected`.
    pub fn new(key: &BlobKey, expected: BlobDigest) -> Self {
        let (cipher, prefix) = key.expand();
        Self { cipher, prefix, index: 0, digest: Sha256::new(), expected, done: false }
    }

    /// Opens the next sealed chunk: [`SEALED_CHUNK_LEN`] bytes, or fewer if it is the
    /// `last` (the caller knows from the blob's length).
    pub fn open_chunk(&mut self, sealed: &[u8], last: bool) -> Result<Vec<u8>, BlobError> {
        if self.done {
            return Err(BlobError::Order("a chunk after the last one"));
        }
        let short = sealed.len() < TAG_LEN || sealed.len() > SEALED_CHUNK_LEN;
        if short || (!last && sealed.len() != SEALED_CHUNK_LEN) {
            return Err(BlobError::ChunkSize { len: sealed.len(), max: SEALED_CHUNK_LEN });
        }
        let n = nonce(&self.prefix, self.index, last);
        let plain = self
            .cipher
            .decrypt(&n.into(), sealed)
            .map_err(|_| BlobError::Tampered { index: self.index })?;
        self.index = match self.index.checked_add(1) {
            Some(i) => i,
            None if last => self.index,
            None => return Err(BlobError::TooLarge),
        };
        self.digest.update(sealed);
        self.done = last;
        Ok(plain)
    }

    /// Checks that the whole blob was opened and is the one named.
    pub fn finish(self) -> Result<(), BlobError> {
        if !self.done {
            return Err(BlobError::Order("the blob ended before its last chunk"));
        }
        let got = BlobDigest(self.digest.finalize().into());
        if !got.matches(&self.expected) {
            return Err(BlobError::DigestMismatch);
        }
        Ok(())
    }
}

/// Seals a whole buffer: the ciphertext and its digest.
pub fn seal(key: &BlobKey, plain: &[u8]) -> Result<(Vec<u8>, BlobDigest), BlobError> {
    let mut sealer = Sealer::new(key);
    let mut out = Vec::with_capacity(usize::try_from(sealed_len(plain.len() as u64)).unwrap_or(0));
    let mut chunks = plain.chunks(CHUNK_LEN).peekable();
    if chunks.peek().is_none() {
        out.extend(sealer.seal_chunk(&[], true)?);
    }
    while let Some(c) = chunks.next() {
        let end = chunks.peek().is_none();
        let last = end && c.len() < CHUNK_LEN;
        out.extend(sealer.seal_chunk(c, last)?);
        if end && !last {
            // A length that is a whole number of chunks ends with an empty last chunk.
            out.extend(sealer.seal_chunk(&[], true)?);
        }
    }
    Ok((out, sealer.finish()?))
}

/// Opens a whole sealed buffer, checking its digest first.
pub fn open(key: &BlobKey, digest: &BlobDigest, sealed: &[u8]) -> Result<Vec<u8>, BlobError> {
    if !BlobDigest(Sha256::digest(sealed).into()).matches(digest) {
        return Err(BlobError::DigestMismatch);
    }
    let mut opener = Opener::new(key, *digest);
    let mut out = Vec::with_capacity(sealed.len());
    let mut rest = sealed;
    loop {
        let last = rest.len() < SEALED_CHUNK_LEN;
        let (chunk, tail) = rest.split_at(rest.len().min(SEALED_CHUNK_LEN));
        let mut plain = opener.open_chunk(chunk, last)?;
        out.extend_from_slice(&plain);
        plain.zeroize();
        rest = tail;
        if last {
            break;
        }
    }
    opener.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::SeededRng;

    fn key(seed: u64) -> BlobKey {
        BlobKey::generate(&mut SeededRng::new(seed))
    }

    #[test]
    fn test_blobs_of_every_shape_round_trip_and_have_the_stated_length() {
        let k = key(1);
        for len in [0, 1, 100, CHUNK_LEN - 1, CHUNK_LEN, CHUNK_LEN + 1, 3 * CHUNK_LEN, 200_000] {
            let plain: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
            let (sealed, digest) = seal(&k, &plain).unwrap();
            assert_eq!(sealed.len() as u64, sealed_len(len as u64), "length {len}");
            assert_eq!(open(&k, &digest, &sealed).unwrap(), plain, "length {len}");
            // The same bytes under a fresh key are another ciphertext.
            assert_ne!(seal(&key(2), &plain).unwrap().0, sealed);
        }
    }

    #[test]
    fn test_streaming_matches_the_whole_buffer_and_checks_the_digest_at_the_end() {
        let k = key(3);
        let plain = vec![7u8; 2 * CHUNK_LEN + 10];
        let (whole, digest) = seal(&k, &plain).unwrap();
        let mut sealer = Sealer::new(&k);
        let mut streamed = Vec::new();
        for (i, c) in plain.chunks(CHUNK_LEN).enumerate() {
            streamed.extend(sealer.seal_chunk(c, i == 2).unwrap());
        }
        assert_eq!(sealer.finish().unwrap(), digest);
        assert_eq!(streamed, whole);

        let mut opener = Opener::new(&k, digest);
        let mut out = Vec::new();
        for (i, c) in whole.chunks(SEALED_CHUNK_LEN).enumerate() {
            out.extend(opener.open_chunk(c, i == 2).unwrap());
        }
        opener.finish().unwrap();
        assert_eq!(out, plain);
        // Named by another digest: every chunk opens, the end refuses it.
        let mut opener = Opener::new(&k, BlobDigest([0; 32]));
        for (i, c) in whole.chunks(SEALED_CHUNK_LEN).enumerate() {
            opener.open_chunk(c, i == 2).unwrap();
        }
        assert_eq!(opener.finish(), Err(BlobError::DigestMismatch));
    }

    #[test]
    fn test_a_flipped_moved_repeated_dropped_or_cut_chunk_is_refused() {
        let k = key(4);
        let plain: Vec<u8> =
            (0..3 * CHUNK_LEN + 5).map(|i| u8::try_from(i % 13).unwrap()).collect();
        let (sealed, _) = seal(&k, &plain).unwrap();
        let chunks: Vec<&[u8]> = sealed.chunks(SEALED_CHUNK_LEN).collect();
        // Each variant with the digest of what is offered (a relay can recompute it; the
        // chunk layer must still refuse).
        let try_open = |bytes: Vec<u8>| {
            let d = BlobDigest(Sha256::digest(&bytes).into());
            open(&k, &d, &bytes)
        };
        let mut flipped = sealed.clone();
        flipped[CHUNK_LEN + 40] ^= 1;
        assert!(matches!(try_open(flipped), Err(BlobError::Tampered { index: 1 })));
        let swapped = [chunks[1], chunks[0], chunks[2], chunks[3]].concat();
        assert!(matches!(try_open(swapped), Err(BlobError::Tampered { index: 0 })));
        let repeated = [chunks[0], chunks[0], chunks[1], chunks[2], chunks[3]].concat();
        assert!(try_open(repeated).is_err());
        let dropped = [chunks[0], chunks[2], chunks[3]].concat();
        assert!(matches!(try_open(dropped), Err(BlobError::Tampered { index: 1 })));
        // Cut at a chunk boundary: the new end was not sealed as the last chunk.
        let cut = [chunks[0], chunks[1]].concat();
        assert!(try_open(cut).is_err());
        let cut_short = sealed[..sealed.len() - 1].to_vec();
        assert!(try_open(cut_short).is_err());
        // Another key, or the digest of something else.
        assert!(matches!(
            open(&key(5), &BlobDigest(Sha256::digest(&sealed).into()), &sealed),
            Err(BlobError::Tampered { index: 0 })
        ));
        assert_eq!(open(&k, &BlobDigest([9; 32]), &sealed), Err(BlobError::DigestMismatch));
        // Nothing after the last chunk; no early finish; full chunks until the last.
        let mut sealer = Sealer::new(&k);
        sealer.seal_chunk(b"x", true).unwrap();
        assert!(sealer.seal_chunk(b"y", true).is_err());
        assert!(Sealer::new(&k).finish().is_err());
        let mut sealer = Sealer::new(&k);
        assert!(matches!(sealer.seal_chunk(b"short", false), Err(BlobError::ChunkSize { .. })));
        let mut opener = Opener::new(&k, BlobDigest([0; 32]));
        assert!(matches!(opener.open_chunk(&[0; 15], true), Err(BlobError::ChunkSize { .. })));
        assert!(matches!(Opener::new(&k, BlobDigest([0; 32])).finish(), Err(BlobError::Order(_))));
    }

    #[test]
    fn test_the_format_is_pinned() {
        // Known answers computed apart from this code (Python's `cryptography`: HKDF-SHA256,
        // AESGCM): the bytes must never change, other devices and versions read them.
        let k = BlobKey::from_bytes(&[0x42; 32]).unwrap();
        let (sealed, digest) = seal(&k, b"tandem").unwrap();
        assert_eq!(hex::encode(&sealed), "6da7a3dfe2bcd641d8000b09adc717751f05131c129c");
        assert_eq!(
            hex::encode(digest.0),
            "db63e5a540ea32be7cf45071ad1da446c5aa9c8b950d9b005a702fbf602a695b"
        );
        // Two chunks: a full one of 0x01, then three bytes of 0x02 as the last.
        let plain = [vec![1u8; CHUNK_LEN], vec![2u8; 3]].concat();
        let (sealed, digest) = seal(&k, &plain).unwrap();
        assert_eq!(sealed.len(), 65_571);
        assert_eq!(
            hex::encode(digest.0),
            "71f7b28dc0f7599b96e841738425b9b3198eda28719d1ac1ef4dda044bfed3bb"
        );
        assert!(BlobKey::from_bytes(&[0; 31]).is_none());
        assert_eq!(format!("{k:?}"), "BlobKey(..)");
    }
}

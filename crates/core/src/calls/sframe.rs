//! SFrame (RFC 9605) with the `AES_128_GCM_SHA256_128` cipher suite: the end-to-end layer
//! that call media frames carry on top of WebRTC's own DTLS-SRTP.
//!
//! A frame is `header ‖ AES-GCM(ciphertext ‖ tag)`, the header (`KID`, `CTR`) in its compact
//! form, the nonce `sframe_salt ⊕ CTR`, the AAD `header ‖ metadata`. Keys and salts come from
//! HKDF-SHA256 of a `base_key` and the KID (RFC 9605 §4.4.2), so one base key gives every KID
//! its own key. A [`Sender`] owns one KID and never repeats a counter; a [`Receiver`] refuses
//! frames under unknown KIDs, frames that do not authenticate, and replays (a sliding window
//! per KID, advanced only by a frame that authenticated).
//!
//! The AES-GCM step can run elsewhere (the browser's WebCrypto has hardware AES; wasm has
//! not): [`Sender::plan`] and [`Receiver::plan`] give a frame's [`Aead`] inputs — the KID
//! whose key to use, the nonce, the AAD — and [`Receiver::accept`] records a frame that
//! authenticated. Header, counters and the replay window stay here either way.

use aes_gcm::Aes128Gcm;
use aes_gcm::aead::{Aead as _, KeyInit, Payload};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The cipher suite's registered value: `AES_128_GCM_SHA256_128`.
pub const CIPHER_SUITE: u16 = 0x0004;
/// Key size (`AEAD.Nk`).
const NK: usize = 16;
/// Nonce size (`AEAD.Nn`).
const NN: usize = 12;
/// Tag size (`AEAD.Nt`).
pub const TAG_LEN: usize = 16;
/// Longest header: the config byte, an 8-byte KID and an 8-byte CTR.
pub const MAX_HEADER_LEN: usize = 17;
/// Counters this far behind the newest one received under a KID are still accepted once.
pub const REPLAY_WINDOW: u64 = 128;

/// Why a frame was not protected or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SframeError {
    /// The header is cut short or not in its minimal form.
    #[error("malformed SFrame header")]
    MalformedHeader,
    /// No key is known for the frame's KID.
    #[error("no key for this key id")]
    UnknownKey,
    /// The frame does not authenticate under its KID's key.
    #[error("the frame does not authenticate")]
    Unauthentic,
    /// The frame's counter was seen already, or lies behind the replay window.
    #[error("a replayed frame")]
    Replayed,
    /// The sender's counter is spent: a new key is needed.
    #[error("the frame counter is exhausted")]
    CounterExhausted,
}

/// A frame header: the key id and the frame counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Which key.
    pub kid: u64,
    /// The frame's counter under that key.
    pub ctr: u64,
}

/// Bytes needed for `v` in big-endian form without leading zeros (at least one).
fn min_len(v: u64) -> usize {
    (8 - (v.leading_zeros() as usize / 8)).max(1)
}

impl Header {
    /// Appends the header's compact encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut config = 0u8;
        let mut tail = [0u8; 16];
        let mut n = 0;
        for (v, shift) in [(self.kid, 4), (self.ctr, 0)] {
            if let Ok(small @ 0..8) = u8::try_from(v) {
                config |= small << shift;
            } else {
                let len = min_len(v);
                // 1 to 8 bytes: the length fits in three bits.
                let bits = u8::try_from(len - 1).unwrap_or(7) & 0x7;
                config |= (0x8 | bits) << shift;
                tail[n..n + len].copy_from_slice(&v.to_be_bytes()[8 - len..]);
                n += len;
            }
        }
        out.push(config);
        out.extend_from_slice(&tail[..n]);
    }

    /// Reads a header from the start of `bytes`: the header and its length. A value that is
    /// not in its minimal form is refused, so every frame has exactly one header.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), SframeError> {
        let (&config, mut rest) = bytes.split_first().ok_or(SframeError::MalformedHeader)?;
        let mut read = |bits: u8| -> Result<u64, SframeError> {
            if bits & 0x8 == 0 {
                return Ok(u64::from(bits & 0x7));
            }
            let len = usize::from(bits & 0x7) + 1;
            if rest.len() < len {
                return Err(SframeError::MalformedHeader);
            }
            let (value, after) = rest.split_at(len);
            rest = after;
            let v = value.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
            if v < 8 || min_len(v) != len {
                return Err(SframeError::MalformedHeader);
            }
            Ok(v)
        };
        let kid = read(config >> 4)?;
        let ctr = read(config & 0x0f)?;
        let header = Self { kid, ctr };
        Ok((header, bytes.len() - rest.len()))
    }
}

/// One frame's AES-GCM inputs: which KID's key (and the counter), the nonce, the AAD
/// (`header ‖ metadata`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aead {
    /// The frame's key id and counter.
    pub frame: Header,
    /// `sframe_salt ⊕ CTR`.
    pub nonce: [u8; NN],
    /// The header, then the metadata.
    pub aad: Vec<u8>,
    /// The header's length: `aad[..header_len]` goes in front of the ciphertext.
    pub header_len: usize,
}

impl Aead {
    /// The SFrame header.
    pub fn header(&self) -> &[u8] {
        &self.aad[..self.header_len]
    }
}

/// A KID's key and salt, derived from a base key, and the AES-GCM instance keyed with it
/// (set up once: the key schedule is not redone per frame; `aes-gcm` zeroizes it on drop).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial {
    key: [u8; NK],
    salt: [u8; NN],
    #[zeroize(skip)]
    cipher: Aes128Gcm,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyMaterial(..)")
    }
}

impl KeyMaterial {
    /// `derive_key_salt(KID, base_key)` of RFC 9605 §4.4.2.
    pub fn derive(kid: u64, base_key: &[u8]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(&[]), base_key);
        let mut label = Vec::with_capacity(33);
        let mut key = [0; NK];
        let mut salt = [0; NN];
        for (prefix, dest) in [
            (&b"SFrame 1.0 Secret key "[..], &mut key[..]),
            (&b"SFrame 1.0 Secret salt "[..], &mut salt[..]),
        ] {
            label.clear();
            label.extend_from_slice(prefix);
            label.extend_from_slice(&kid.to_be_bytes());
            label.extend_from_slice(&CIPHER_SUITE.to_be_bytes());
            // 16 and 12 bytes are far below HKDF-SHA256's limit of 8 160.
            if hk.expand(&label, dest).is_err() {
                unreachable!("HKDF output of {} bytes", dest.len());
            }
        }
        let cipher = Aes128Gcm::new(&key.into());
        Self { key, salt, cipher }
    }

    /// The AES-128 key, for an AES-GCM outside this crate (the browser's WebCrypto). The copy
    /// is zeroized when dropped; whoever imports it keeps it in memory only.
    pub fn aes_key(&self) -> zeroize::Zeroizing<[u8; NK]> {
        zeroize::Zeroizing::new(self.key)
    }

    fn nonce(&self, ctr: u64) -> [u8; NN] {
        let mut nonce = self.salt;
        for (n, c) in nonce[NN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    /// `ciphertext ‖ tag` of `plaintext` under `aead`'s nonce and AAD.
    pub fn seal(&self, aead: &Aead, plaintext: &[u8]) -> Vec<u8> {
        let payload = Payload { msg: plaintext, aad: &aead.aad };
        // Fails only beyond GCM's 64 GiB message limit, which no frame reaches.
        self.cipher.encrypt(&aead.nonce.into(), payload).unwrap_or_default()
    }

    /// The plaintext of `ciphertext ‖ tag` under `aead`'s nonce and AAD.
    pub fn open(&self, aead: &Aead, ciphertext: &[u8]) -> Result<Vec<u8>, SframeError> {
        let payload = Payload { msg: ciphertext, aad: &aead.aad };
        self.cipher.decrypt(&aead.nonce.into(), payload).map_err(|_| SframeError::Unauthentic)
    }
}

/// Protects frames under one KID, each with the next counter.
#[derive(Debug)]
pub struct Sender {
    kid: u64,
    keys: KeyMaterial,
    next: Option<u64>,
}

impl Sender {
    /// A sender under `kid` of `base_key`, its counter at 0. A base key and KID must have one
    /// sender only, for the lifetime of the key.
    pub fn new(kid: u64, base_key: &[u8]) -> Self {
        Self::starting_at(kid, base_key, 0)
    }

    /// Like [`Sender::new`], continuing at counter `ctr` (tests and vectors).
    pub fn starting_at(kid: u64, base_key: &[u8], ctr: u64) -> Self {
        Self { kid, keys: KeyMaterial::derive(kid, base_key), next: Some(ctr) }
    }

    /// The next frame's AES-GCM inputs, with `metadata` authenticated too (sent by other
    /// means: the caller puts it in front of the frame). Takes the counter for good: a frame
    /// whose sealing fails later is skipped, never a counter used twice.
    pub fn plan(&mut self, metadata: &[u8]) -> Result<Aead, SframeError> {
        let ctr = self.next.ok_or(SframeError::CounterExhausted)?;
        self.next = ctr.checked_add(1);
        let frame = Header { kid: self.kid, ctr };
        let mut aad = Vec::with_capacity(MAX_HEADER_LEN + metadata.len());
        frame.encode(&mut aad);
        let header_len = aad.len();
        aad.extend_from_slice(metadata);
        Ok(Aead { frame, nonce: self.keys.nonce(ctr), aad, header_len })
    }

    /// This sender's KID.
    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// This sender's key material.
    pub fn keys(&self) -> &KeyMaterial {
        &self.keys
    }

    /// `header ‖ ciphertext ‖ tag` of `plaintext`, with `metadata` authenticated too.
    pub fn protect(&mut self, metadata: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SframeError> {
        let aead = self.plan(metadata)?;
        let sealed = self.keys.seal(&aead, plaintext);
        let mut out = Vec::with_capacity(aead.header_len + sealed.len());
        out.extend_from_slice(aead.header());
        out.extend_from_slice(&sealed);
        Ok(out)
    }
}

/// The counters seen under one KID: the newest, and a bitmap of the window behind it.
#[derive(Clone, Copy, Debug, Default)]
struct Window {
    newest: Option<u64>,
    seen: u128,
}

impl Window {
    fn check(&self, ctr: u64) -> Result<(), SframeError> {
        match self.newest {
            Some(n) if ctr <= n => {
                let behind = n - ctr;
                if behind >= REPLAY_WINDOW || self.seen & (1u128 << behind) != 0 {
                    return Err(SframeError::Replayed);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn accept(&mut self, ctr: u64) {
        match self.newest {
            Some(n) if ctr <= n => self.seen |= 1u128 << (n - ctr),
            Some(n) => {
                let ahead = ctr - n;
                self.seen = if ahead >= REPLAY_WINDOW { 0 } else { self.seen << ahead };
                self.seen |= 1;
                self.newest = Some(ctr);
            }
            None => {
                self.seen = 1;
                self.newest = Some(ctr);
            }
        }
    }
}

/// Opens frames under the KIDs it was given keys for.
#[derive(Debug, Default)]
pub struct Receiver {
    keys: Vec<(u64, KeyMaterial, Window)>,
}

impl Receiver {
    /// A receiver with no keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts frames under `kid` of `base_key` (replacing a key the KID had).
    pub fn add_key(&mut self, kid: u64, base_key: &[u8]) {
        self.keys.retain(|(k, ..)| *k != kid);
        self.keys.push((kid, KeyMaterial::derive(kid, base_key), Window::default()));
    }

    /// The key material of `kid`, if this receiver has it.
    pub fn keys(&self, kid: u64) -> Option<&KeyMaterial> {
        self.keys.iter().find(|(k, ..)| *k == kid).map(|(_, keys, _)| keys)
    }

    /// The AES-GCM inputs to open `frame` (`header ‖ ciphertext ‖ tag`, the ciphertext from
    /// `aead.header_len` on), with `metadata` authenticated: refused for a malformed header,
    /// an unknown KID or a replay. Changes nothing: [`Receiver::accept`] does, once the frame
    /// authenticated.
    pub fn plan(&self, metadata: &[u8], frame: &[u8]) -> Result<Aead, SframeError> {
        let (header, header_len) = Header::decode(frame)?;
        let (_, keys, window) =
            self.keys.iter().find(|(k, ..)| *k == header.kid).ok_or(SframeError::UnknownKey)?;
        window.check(header.ctr)?;
        let mut aad = Vec::with_capacity(header_len + metadata.len());
        aad.extend_from_slice(&frame[..header_len]);
        aad.extend_from_slice(metadata);
        let nonce = keys.nonce(header.ctr);
        Ok(Aead { frame: header, nonce, aad, header_len })
    }

    /// Records that the frame with this header authenticated; refused if its counter was
    /// accepted meanwhile (two copies of one frame opened side by side) or fell behind the
    /// window.
    pub fn accept(&mut self, frame: Header) -> Result<(), SframeError> {
        let (.., window) =
            self.keys.iter_mut().find(|(k, ..)| *k == frame.kid).ok_or(SframeError::UnknownKey)?;
        window.check(frame.ctr)?;
        window.accept(frame.ctr);
        Ok(())
    }

    /// The plaintext of `frame` (`header ‖ ciphertext ‖ tag`), with `metadata` authenticated,
    /// and the frame's header.
    pub fn unprotect(
        &mut self,
        metadata: &[u8],
        frame: &[u8],
    ) -> Result<(Header, Vec<u8>), SframeError> {
        let aead = self.plan(metadata, frame)?;
        let keys = self.keys(aead.frame.kid).ok_or(SframeError::UnknownKey)?;
        let plaintext = keys.open(&aead, &frame[aead.header_len..])?;
        self.accept(aead.frame)?;
        Ok((aead.frame, plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.split_whitespace().collect::<String>()).unwrap()
    }

    // RFC 9605 Appendix C.1: header encodings (a sample across every length).
    #[test]
    fn test_headers_match_rfc9605_vectors() {
        let cases: &[(u64, u64, &str)] = &[
            (0, 0, "00"),
            (0, 1, "01"),
            (0, 0xff, "08ff"),
            (0, 0x100, "090100"),
            (0, 0xffff, "09ffff"),
            (0, 0x10000, "0a010000"),
            (0, 0xffffff, "0affffff"),
            (0, 0x1000000, "0b01000000"),
            (0, 0xffffffff, "0bffffffff"),
            (0, 0x100000000, "0c0100000000"),
            (0, u64::MAX, "0fffffffffffffffff"),
            (7, 7, "77"),
            (0x123, 0x4567, "9901234567"),
            (u64::MAX, u64::MAX, "ffffffffffffffffffffffffffffffffff"),
        ];
        for &(kid, ctr, hex) in cases {
            let mut out = Vec::new();
            Header { kid, ctr }.encode(&mut out);
            assert_eq!(hex::encode(&out), hex, "kid {kid:#x} ctr {ctr:#x}");
            assert_eq!(Header::decode(&out).unwrap(), (Header { kid, ctr }, out.len()));
        }
    }

    #[test]
    fn test_headers_that_are_short_or_not_minimal_are_refused() {
        for bad in ["", "08", "0900", "0800", "0807", "8800", "090001", "99012345"] {
            assert_eq!(Header::decode(&unhex(bad)), Err(SframeError::MalformedHeader), "{bad}");
        }
    }

    // RFC 9605 Appendix C.4, cipher suite 0x0004.
    #[test]
    fn test_encryption_matches_the_rfc9605_vector() {
        let base_key = unhex("000102030405060708090a0b0c0d0e0f");
        let keys = KeyMaterial::derive(0x123, &base_key);
        assert_eq!(hex::encode(keys.key), "d34f547f4ca4f9a7447006fe7fcbf768");
        assert_eq!(hex::encode(keys.salt), "75234edefe07819026751816");
        assert_eq!(hex::encode(keys.nonce(0x4567)), "75234edefe07819026755d71");
        assert_eq!(hex::encode(*keys.aes_key()), "d34f547f4ca4f9a7447006fe7fcbf768");
        let metadata = unhex("4945544620534672616d65205747");
        let pt = unhex("64726166742d696574662d736672616d652d656e63");
        let ct = unhex(
            "9901234567b7412c2513a1b66dbb4884 1bbaf17f598751176ad847681a69c6d0 b091c07018ce4adb34eb",
        );
        let mut sender = Sender::starting_at(0x123, &base_key, 0x4567);
        assert_eq!(sender.protect(&metadata, &pt).unwrap(), ct);
        let mut receiver = Receiver::new();
        receiver.add_key(0x123, &base_key);
        let (header, opened) = receiver.unprotect(&metadata, &ct).unwrap();
        assert_eq!((header, opened), (Header { kid: 0x123, ctr: 0x4567 }, pt));
    }

    #[test]
    fn test_tampering_wrong_keys_and_replays_are_refused() {
        let key = [9u8; 32];
        let mut sender = Sender::new(1, &key);
        let frames: Vec<Vec<u8>> =
            (0..5u8).map(|i| sender.protect(b"meta", &[i; 40]).unwrap()).collect();
        let mut receiver = Receiver::new();
        receiver.add_key(1, &key);
        // Out of order is fine, each once.
        for i in [1u8, 0, 3, 2] {
            let opened = receiver.unprotect(b"meta", &frames[usize::from(i)]).unwrap().1;
            assert_eq!(opened, vec![i; 40]);
        }
        assert_eq!(receiver.unprotect(b"meta", &frames[2]), Err(SframeError::Replayed));
        // The metadata is authenticated; so is every byte of the frame.
        assert_eq!(receiver.unprotect(b"other", &frames[4]), Err(SframeError::Unauthentic));
        let mut flipped = frames[4].clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(receiver.unprotect(b"meta", &flipped), Err(SframeError::Unauthentic));
        // A failed frame does not burn its counter.
        assert!(receiver.unprotect(b"meta", &frames[4]).is_ok());
        // Another KID, or the right KID under another base key.
        let mut stranger = Sender::new(2, &key);
        let f = stranger.protect(b"meta", b"x").unwrap();
        assert_eq!(receiver.unprotect(b"meta", &f), Err(SframeError::UnknownKey));
        let mut wrong = Sender::starting_at(1, &[8u8; 32], 100);
        let f = wrong.protect(b"meta", b"x").unwrap();
        assert_eq!(receiver.unprotect(b"meta", &f), Err(SframeError::Unauthentic));
    }

    #[test]
    fn test_the_window_slides_and_refuses_what_fell_behind() {
        let key = [3u8; 32];
        let mut receiver = Receiver::new();
        receiver.add_key(0, &key);
        let mut old = Sender::starting_at(0, &key, 10);
        let first = old.protect(b"", b"a").unwrap();
        let mut far = Sender::starting_at(0, &key, 10 + REPLAY_WINDOW);
        let ahead = far.protect(b"", b"b").unwrap();
        assert!(receiver.unprotect(b"", &ahead).is_ok());
        assert_eq!(receiver.unprotect(b"", &first), Err(SframeError::Replayed));
        let mut near = Sender::starting_at(0, &key, 11);
        assert!(receiver.unprotect(b"", &near.protect(b"", b"c").unwrap()).is_ok());
    }

    #[test]
    fn test_an_aead_run_elsewhere_gives_the_same_frames_and_only_an_accepted_frame_counts() {
        let key = [5u8; 32];
        let mut sender = Sender::new(2, &key);
        let mut twin = Sender::new(2, &key);
        // Sealing a plan with any AES-GCM under the exported key gives the frame `protect` does.
        let aead = sender.plan(b"meta").unwrap();
        let outside = Aes128Gcm::new(&(*sender.keys().aes_key()).into());
        let payload = Payload { msg: &b"frame"[..], aad: &aead.aad };
        let mut frame = aead.header().to_vec();
        frame.extend(outside.encrypt(&aead.nonce.into(), payload).unwrap());
        assert_eq!(frame, twin.protect(b"meta", b"frame").unwrap());
        assert_eq!(sender.plan(b"").unwrap().frame.ctr, 1, "a plan takes its counter");
        let mut receiver = Receiver::new();
        receiver.add_key(2, &key);
        let first = receiver.plan(b"meta", &frame).unwrap();
        let second = receiver.plan(b"meta", &frame).unwrap();
        assert_eq!(first, aead);
        let body = &frame[first.header_len..];
        assert_eq!(receiver.keys(2).unwrap().open(&first, body).unwrap(), b"frame");
        // Planning changed nothing; accepting does, once.
        receiver.accept(first.frame).unwrap();
        assert_eq!(receiver.accept(second.frame), Err(SframeError::Replayed));
        assert_eq!(receiver.plan(b"meta", &frame), Err(SframeError::Replayed));
        assert_eq!(receiver.keys(3).map(|_| ()), None);
    }

    #[test]
    fn test_a_sender_never_repeats_a_counter() {
        let mut s = Sender::starting_at(0, &[1; 32], u64::MAX);
        let f = s.protect(b"", b"last").unwrap();
        assert_eq!(Header::decode(&f).unwrap().0.ctr, u64::MAX);
        assert_eq!(s.protect(b"", b"more"), Err(SframeError::CounterExhausted));
    }
}

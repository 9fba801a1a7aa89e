//! # tandem-signal
//!
//! The Signal protocol in pure Rust, wire-compatible with libsignal 0.90, for native targets
//! and `wasm32-unknown-unknown`. It is sans-IO: no sockets, no storage engine, no clock and
//! no hidden randomness. Callers pass time as a [`Timestamp`] and randomness as
//! `rng: &mut impl rand_core::CryptoRng`, and persist what operations return.
//!
//! - [`crypto`]: Curve25519 keys in libsignal's serialization, XEdDSA, round-3 Kyber1024,
//!   HKDF/HMAC-SHA256, AES-256-CBC and AES-256-GCM, all on vetted crates (curve25519-dalek,
//!   RustCrypto, libcrux ML-KEM);
//! - [`session`]: PQXDH with Kyber1024 and the Double Ratchet; [`sender_keys`]: group
//!   messages; [`fingerprint`]: safety numbers; [`prekeys`]: prekey records and bundles;
//!   [`wire`]: the message formats, byte for byte libsignal's. Specs: X3DH, PQXDH, Double
//!   Ratchet, XEdDSA and Sesame at <https://signal.org/docs/>. SPQR is not implemented; the
//!   design keeps room for it (96-byte PQXDH output, salted message keys, `pq_ratchet`
//!   ignored on input and never sent);
//! - [`store`]: async store traits, atomic [`store::Changes`] batches, sealed encryptions
//!   ([`store::Encrypted`]: a message is released only once the ratchet step that made it is
//!   saved, so a message key is never used twice), [`store::MemoryStore`] and (feature
//!   `testing`) a conformance suite for other backends.
//!
//! Feature flags: `testing` exports `testing::conformance`,
//! `protocol_store_conformance_tests!`, a seeded RNG and a bundle publisher
//! for tests in other crates.
//!
//! A whole two-party exchange is in `examples/two_party.rs`; the smallest use:
//!
//! ```
//! use tandem_signal::crypto::KeyPair;
//! # let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! # use rand::SeedableRng;
//! let alice = KeyPair::generate(&mut rng);
//! let signature = alice.private_key.sign(b"hello", &mut rng);
//! assert!(alice.public_key.verify_signature(b"hello", &signature).is_ok());
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod address;
mod codec;
pub mod crypto;
mod error;
pub mod fingerprint;
mod identity;
mod ids;
pub mod prekeys;
mod ratchet;
pub mod sender_keys;
pub mod session;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod time;
pub mod wire;

pub use address::{AccountId, DeviceId, InvalidAccountId, InvalidDeviceId, ProtocolAddress};
pub use error::{Error, ProtocolError, Result};
pub use identity::{IdentityKey, IdentityKeyPair};
pub use time::Timestamp;

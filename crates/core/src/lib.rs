//! # tandem-core
//!
//! The client brain of Tandem, an end-to-end encrypted multi-device messenger. It is
//! sans-IO: no sockets, no storage engine, no clock and no hidden randomness. Callers pass
//! time as a [`Timestamp`] and randomness as `rng: &mut impl rand_core::CryptoRng`.
//!
//! Implemented so far:
//! - [`crypto`]: Curve25519 keys in libsignal's serialization, XEdDSA, round-3 Kyber1024,
//!   HKDF/HMAC-SHA256, AES-256-CBC and AES-256-GCM;
//! - [`wire::relay`]: the frames of the client–relay WebSocket;
//! - [`transport`]: reconnect backoff and keepalive policy for client transports.
//!
//! ```
//! use tandem_core::crypto::KeyPair;
//! # let mut rng = rand::rngs::StdRng::seed_from_u64(1);
//! # use rand::SeedableRng;
//! let alice = KeyPair::generate(&mut rng);
//! let signature = alice.private_key.sign(b"hello", &mut rng);
//! assert!(alice.public_key.verify_signature(b"hello", &signature).is_ok());
//! ```
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod crypto;
mod error;
mod time;
pub mod transport;
pub mod wire;

pub use error::{Error, Result};
pub use time::Timestamp;

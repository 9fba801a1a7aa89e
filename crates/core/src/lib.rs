//! # tandem-core
//!
//! The client brain of Tandem, an end-to-end encrypted multi-device messenger. It is
//! sans-IO: no sockets, no storage engine, no clock and no hidden randomness. Callers pass
//! time as a [`Timestamp`] and randomness as `rng: &mut impl rand_core::CryptoRng`, and
//! persist what operations return.
//!
//! Implemented so far:
//! - [`crypto`]: Curve25519 keys in libsignal's serialization, XEdDSA, round-3 Kyber1024,
//!   HKDF/HMAC-SHA256, AES-256-CBC and AES-256-GCM;
//! - the Signal protocol, wire-compatible with libsignal 0.90 (PQXDH with Kyber1024, the
//!   Double Ratchet, Sender Keys, safety numbers): [`session`], [`sender_keys`],
//!   [`fingerprint`], message formats in [`wire::signal`]. Specs: X3DH, PQXDH, Double
//!   Ratchet, XEdDSA and Sesame at <https://signal.org/docs/>. SPQR is not implemented;
//!   the design keeps room for it (96-byte PQXDH output, salted message keys, `pq_ratchet`
//!   ignored on input and never sent);
//! - [`store`]: async store traits, atomic [`store::Changes`] batches, [`store::MemoryStore`]
//!   and (feature `testing`) a conformance suite for other backends;
//! - [`devices`] (ADV: account-signed device identities and device lists with revocations),
//!   [`group_state`] (admin-signed group membership), [`auth`] (challenge–response proofs to
//!   the relay), [`link`] (QR linking), [`client`] (the messaging engine);
//! - [`wire::relay`]: the frames of the client–relay WebSocket;
//! - [`transport`]: reconnect backoff and keepalive policy for client transports.
//!
//! Feature flags: `testing` exports `testing::conformance`, `store_conformance_tests!` and a
//! seeded RNG for tests in other crates.
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

mod address;
pub mod auth;
pub mod client;
mod codec;
pub mod crypto;
pub mod devices;
mod error;
pub mod fingerprint;
pub mod group_state;
mod identity;
mod ids;
pub mod link;
pub mod prekeys;
mod ratchet;
pub mod records;
pub mod runtime;
pub mod sender_keys;
pub mod session;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod time;
pub mod transport;
pub mod wire;

pub use address::{AccountId, DeviceId, InvalidAccountId, InvalidDeviceId, ProtocolAddress};
pub use error::{Error, ProtocolError, Result};
pub use identity::{IdentityKey, IdentityKeyPair};
pub use time::Timestamp;

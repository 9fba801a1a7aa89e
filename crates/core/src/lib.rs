//! # tandem-core
//!
//! The client brain of Tandem, an end-to-end encrypted multi-device messenger, on the Signal
//! protocol of [`tandem_signal`] (whose modules are re-exported here under their own names:
//! [`crypto`], [`session`], [`sender_keys`], [`fingerprint`], [`prekeys`], `wire::signal`). It
//! is sans-IO: no sockets, no storage engine, no clock and no hidden randomness. Callers pass
//! time as a [`Timestamp`] and randomness as `rng: &mut impl rand_core::CryptoRng`, and
//! persist what operations return.
//!
//! - [`store`]: the protocol store traits and batches re-exported, the messenger's
//!   [`store::ClientStore`] and [`store::ClientChanges`] next to them, [`store::MemoryStore`]
//!   and (feature `testing`) a conformance suite for other backends;
//! - [`devices`] (ADV: account-signed device identities and device lists with revocations),
//!   [`group_state`] (admin-signed group membership), [`auth`] (challenge–response proofs to
//!   the relay), [`link`] (QR linking), [`client`] (the messaging engine), [`runtime`] (the
//!   device driver's policy, sans-IO);
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

pub mod auth;
pub mod blob;
pub mod calls;
pub mod client;
pub mod devices;
pub mod group_state;
pub mod link;
pub mod records;
pub mod runtime;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod transport;
pub mod wire;

#[cfg(any(test, feature = "testing"))]
pub use tandem_signal::protocol_store_conformance_tests;
pub use tandem_signal::{
    AccountId, DeviceId, Error, IdentityKey, IdentityKeyPair, InvalidAccountId, InvalidDeviceId,
    ProtocolAddress, ProtocolError, Result, Timestamp,
};
pub use tandem_signal::{crypto, fingerprint, prekeys, sender_keys, session};

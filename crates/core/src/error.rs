//! The crate-wide error type.

use crate::crypto::CryptoError;
use crate::wire::WireError;

/// Everything that can go wrong in `tandem-core`.
///
/// `Display` never contains plaintext, key material or account identifiers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cryptographic operation failed (bad key, bad signature, bad MAC, ...).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Bytes from the network or storage did not parse.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

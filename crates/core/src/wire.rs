//! Wire formats: the client–relay frames Tandem speaks over its WebSocket, the message
//! content inside Signal messages, and (re-exported) libsignal's message formats.
//!
//! All types are protobuf (proto3 semantics) via `prost` derives; there is no `.proto`
//! compilation step, the Rust definitions are the schema. Parsing never panics: every
//! decoder returns [`WireError`].

pub mod content;
pub mod relay;

/// libsignal's message formats, from the protocol crate.
pub use tandem_signal::wire as signal;
pub use tandem_signal::wire::WireError;
pub(crate) use tandem_signal::wire::decode_bounded;

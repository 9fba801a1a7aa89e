//! Wire formats: the client–relay frames Tandem speaks over its WebSocket.
//!
//! All types are protobuf (proto3 semantics) via `prost` derives; there is no `.proto`
//! compilation step, the Rust definitions are the schema. Parsing never panics: every
//! decoder returns [`WireError`].

pub mod content;
pub mod relay;
pub mod signal;

pub use crate::codec::WireError;
pub(crate) use crate::codec::decode_bounded;

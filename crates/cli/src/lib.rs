//! # tandem-cli
//!
//! Tandem's native client, a thin shell over `tandem-core`'s engine:
//! - [`Connection`]: a WebSocket to the relay (tokio-tungstenite) implementing
//!   [`RelayTransport`](tandem_core::transport::RelayTransport), with pushes on a channel;
//! - [`Device`]: one device's engine plus its connection and a receive loop that
//!   acknowledges each envelope only after the engine stored what it brought.
//!
//! It drives the integration tests and the load generator (`tandem-load`).

mod connection;
mod device;

pub use connection::{ConnectError, Connection, Pushes};
pub use device::{Device, DeviceError, DeviceEvent, now, system_rng};

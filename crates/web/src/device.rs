//! This browser's device: its engine and what a tab's UI talks to.
//!
//! One tab (the holder of the device's Web Lock) hosts the [`Engine`]: in a dedicated worker,
//! off the page's thread, or on its own thread where a worker cannot run it. Every tab, the
//! hosting one included, holds a [`Device`] over a [`View`]: it reads the store, and runs the
//! typed [`Command`]s through [`DeviceActions`] on the engine over the device's
//! `BroadcastChannel`; a failure keeps its [`ErrorKind`] across it.
//!
//! - `engine`: `tandem-core`'s client over the IndexedDB store and the relay socket;
//! - `tabs`: the Web Lock that elects the engine's tab, and the channel between tabs;
//! - `view`: a tab's view of the engine, wherever it runs;
//! - `linking`: this browser linking itself to an account as a companion;
//! - `host`: where the hosting tab runs the engine (worker, or its own thread);
//! - `worker`: the engine in a dedicated Worker, off the page's thread.

pub mod command;
#[cfg(target_family = "wasm")]
pub mod engine;
#[cfg(target_family = "wasm")]
mod handle;
#[cfg(target_family = "wasm")]
pub mod host;
#[cfg(target_family = "wasm")]
pub mod linking;
#[cfg(target_family = "wasm")]
pub mod tabs;
#[cfg(target_family = "wasm")]
mod view;
#[cfg(target_family = "wasm")]
pub mod worker;

pub use command::{ActionError, Command, ErrorKind, Outcome, Scan};
#[cfg(target_family = "wasm")]
pub use engine::Engine;
#[cfg(target_family = "wasm")]
pub use handle::{Device, DeviceActions};
#[cfg(target_family = "wasm")]
pub(crate) use handle::{account, group, short_name};
#[cfg(target_family = "wasm")]
pub use host::{Host, StartError};
#[cfg(target_family = "wasm")]
pub use view::View;
#[cfg(target_family = "wasm")]
pub use worker::{SpawnError, WorkerHost};

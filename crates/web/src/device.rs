//! This browser's device: its engine and what a tab's UI talks to.
//!
//! One [`Device`] handle serves the UI whether the engine runs in this tab ([`Engine`]) or in
//! another one ([`View`]); both run the same typed [`Command`]s through [`DeviceActions`], and
//! a failure keeps its [`ErrorKind`] when it crosses from the engine's tab to a view. The UI
//! never asks which host it holds, except for the few things only the engine's own tab does
//! (start over with new keys, stop on a refusal).
//!
//! - `engine`: `tandem-core`'s client over the IndexedDB store and the relay socket;
//! - `tabs`: the Web Lock that elects the engine's tab, and the channel between tabs;
//! - `view`: a tab that runs its commands in the engine's tab;
//! - `linking`: this browser linking itself to an account as a companion.

pub mod command;
#[cfg(target_family = "wasm")]
pub mod engine;
#[cfg(target_family = "wasm")]
mod handle;
#[cfg(target_family = "wasm")]
pub mod linking;
#[cfg(target_family = "wasm")]
pub mod tabs;
#[cfg(target_family = "wasm")]
mod view;

pub use command::{ActionError, Command, ErrorKind, Outcome, Scan};
#[cfg(target_family = "wasm")]
pub use engine::Engine;
#[cfg(target_family = "wasm")]
pub use handle::{Device, DeviceActions};
#[cfg(target_family = "wasm")]
pub(crate) use handle::{account, short_name};
#[cfg(target_family = "wasm")]
pub use view::View;

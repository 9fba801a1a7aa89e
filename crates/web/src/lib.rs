//! # tandem-web
//!
//! Tandem's browser client: a Leptos (CSR) app compiled to WebAssembly. It is the only crate
//! that touches `web-sys`: the UI, the IndexedDB store (rexie), the relay WebSocket.

// Leptos' `#[component]` generates `pub` props structs for crate-private components.
#![allow(unreachable_pub)]

// The app, its engine and the IndexedDB engine store hold JS values, so they exist only
// in the browser build; the rest also compiles natively for unit tests.
#[cfg(target_family = "wasm")]
mod app;
#[cfg(target_family = "wasm")]
pub mod boot;
pub mod call;
#[cfg(target_family = "wasm")]
mod components;
pub mod config;
pub mod device;
pub mod groups;
pub mod hooks;
pub mod journal;
#[cfg(target_family = "wasm")]
pub mod lock;
pub mod passkey;
pub mod platform;
pub mod rng;
pub mod store;
pub mod text;
pub mod transport;

#[cfg(target_family = "wasm")]
pub use app::App;

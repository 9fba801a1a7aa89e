//! # tandem-web
//!
//! Tandem's browser client: a Leptos (CSR) app compiled to WebAssembly. It is the only crate
//! that touches `web-sys`: the UI, the IndexedDB store (rexie), the relay WebSocket.

// Leptos' `#[component]` generates `pub` props structs for crate-private components.
#![allow(unreachable_pub)]

mod app;
mod components;
pub mod config;
pub mod hooks;
pub mod platform;
pub mod rng;
pub mod store;
pub mod transport;

pub use app::App;

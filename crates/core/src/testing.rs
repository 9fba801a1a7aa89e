//! Helpers for tests in this and other crates (feature `testing`): the store conformance
//! suite, scenarios and the bodies of the fuzz targets, with the protocol crate's seeded RNG,
//! poller and bundle publisher re-exported.

pub mod conformance;
pub mod fuzz;
pub mod scenarios;

pub use tandem_signal::testing::{SeededRng, now_or_never, publish_bundle};

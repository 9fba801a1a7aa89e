#![no_main]
//! Call media frames and call signalling from the network or a peer: no panics, headers
//! round-trip, real frames open, the call book keeps its bounds.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::call_frames(data));

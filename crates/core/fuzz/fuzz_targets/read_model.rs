#![no_main]
//! The chat list's read model (stored summaries and the start snapshot's recent list) on
//! arbitrary bytes: a corrupted or hostile stored value must not panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::read_model(data));

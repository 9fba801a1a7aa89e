#![no_main]
//! Signed group states: parsing, signatures, and the successor rules.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::group_state(data));

#![no_main]
//! Relay login and registration proofs: signed, checked against changed fields, forged.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::relay_proofs(data));

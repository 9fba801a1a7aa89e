#![no_main]
//! Hostile prekey bundles through session set-up, also re-signed by the key they name.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::prekey_bundles(data));

#![no_main]
//! Device lists and identities as a relay serves them, through the parsers and `verify_devices`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::device_lists(data));

#![no_main]
//! Every stored-record parser on arbitrary bytes (a corrupted IndexedDB must not panic).
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::parse_records(data));

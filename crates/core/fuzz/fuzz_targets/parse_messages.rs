#![no_main]
//! Every wire parser on arbitrary bytes: no panics, and parse → serialize → parse is stable.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::parse_messages(data));

#![no_main]
//! Sealed link messages past both MACs, through `LinkRequest::open`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::link_message(data));

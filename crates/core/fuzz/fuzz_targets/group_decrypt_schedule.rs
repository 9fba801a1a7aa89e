#![no_main]
//! Sender Keys with real state: sends, deliveries in any order, tampering, jumps, restarts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::group_decrypt_schedule(data));

#![no_main]
//! Two parties, an arbitrary schedule of sends, deliveries, drops, duplicates, tampering and
//! resets: no panic, nothing decrypts twice, every genuine message decrypts or is a named error.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::session_interaction(data));

#![no_main]
//! The engine's receive path after decryption: who may post, key, change a group, speak for whom.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::client_receive(data));

#![no_main]
//! Encrypted blobs (attachments, history bundles) from the relay: opening arbitrary bytes
//! never panics and never yields plaintext; whatever is sealed opens to itself, in any
//! chunking the stream reader is handed.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_core::testing::fuzz::blob_open(data));

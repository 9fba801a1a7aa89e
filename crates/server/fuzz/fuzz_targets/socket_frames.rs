#![no_main]
//! The relay's frame parser and request handling: arbitrary frames through a real socket
//! session on real SQLite, unauthenticated or logged in. See `tandem_server::fuzzing`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_server::fuzzing::socket_frames(data));

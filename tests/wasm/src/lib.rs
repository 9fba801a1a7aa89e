//! Browser test suites for Tandem; see `tests/`. Run them with
//! `cargo test -p tandem-wasm-tests --target wasm32-unknown-unknown` (the test script starts
//! a real relay first and compiles its URL in as `TANDEM_TEST_RELAY`).

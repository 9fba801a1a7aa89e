//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' bodies, so the
//! stable test suite keeps every input the fuzzers found interesting. Run the fuzzers
//! themselves with `cargo +nightly fuzz run <target>` in `crates/core/fuzz`.

use tandem_core::testing::fuzz;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn test_replay_parse_messages_corpus() {
    assert!(replay("parse_messages", fuzz::parse_messages) >= 20);
}

#[test]
fn test_replay_parse_records_corpus() {
    assert!(replay("parse_records", fuzz::parse_records) >= 2);
}

#[test]
fn test_replay_session_interaction_corpus() {
    assert!(replay("session_interaction", fuzz::session_interaction) >= 3);
}

//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) and the targets' seeds through the fuzz
//! targets' bodies, so the stable test suite keeps every input the fuzzers found
//! interesting. Run the fuzzers themselves with `cargo +nightly fuzz run <target>` in
//! `crates/core/fuzz` (see BENCHMARKS.md for the campaign commands).

use tandem_core::testing::fuzz;

/// A target: its name, its body, and the least number of corpus files it has.
type Target = (&'static str, fn(&[u8]), usize);

const TARGETS: &[Target] = &[
    ("parse_messages", fuzz::parse_messages, 20),
    ("parse_records", fuzz::parse_records, 2),
    ("session_interaction", fuzz::session_interaction, 3),
    ("device_lists", fuzz::device_lists, 6),
    ("group_state", fuzz::group_state, 5),
    ("prekey_bundles", fuzz::prekey_bundles, 4),
    ("link_message", fuzz::link_message, 3),
    ("relay_proofs", fuzz::relay_proofs, 3),
    ("client_receive", fuzz::client_receive, 35),
    ("group_decrypt_schedule", fuzz::group_decrypt_schedule, 4),
    ("read_model", fuzz::read_model, 2),
    ("call_frames", fuzz::call_frames, 3),
    ("blob_open", fuzz::blob_open, 2),
];

fn corpus_dir(target: &str) -> String {
    format!("{}/fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"))
}

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = corpus_dir(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    for seed in fuzz::seeds(target) {
        f(&seed);
    }
    n
}

fn check(target: &str) {
    let &(_, f, least) = TARGETS.iter().find(|t| t.0 == target).unwrap();
    let n = replay(target, f);
    assert!(n >= least, "{target}: {n} corpus files, expected at least {least}");
}

#[test]
fn test_replay_parse_messages_corpus() {
    check("parse_messages");
}

#[test]
fn test_replay_parse_records_corpus() {
    check("parse_records");
}

#[test]
fn test_replay_session_interaction_corpus() {
    check("session_interaction");
}

#[test]
fn test_replay_device_lists_corpus() {
    check("device_lists");
}

#[test]
fn test_replay_group_state_corpus() {
    check("group_state");
}

#[test]
fn test_replay_prekey_bundles_corpus() {
    check("prekey_bundles");
}

#[test]
fn test_replay_link_message_corpus() {
    check("link_message");
}

#[test]
fn test_replay_relay_proofs_corpus() {
    check("relay_proofs");
}

#[test]
fn test_replay_client_receive_corpus() {
    check("client_receive");
}

#[test]
fn test_replay_group_decrypt_schedule_corpus() {
    check("group_decrypt_schedule");
}

/// Writes each target's seeds into its corpus directory (named by content, as libFuzzer
/// names them); run once when a target is added or its seeds change.
#[test]
#[ignore = "writes into the source tree"]
fn write_seeds() {
    use sha2::Digest;
    for (target, _, _) in TARGETS {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        for seed in fuzz::seeds(target) {
            let name = hex::encode(&sha2::Sha256::digest(&seed)[..20]);
            std::fs::write(format!("{dir}/{name}"), &seed).unwrap();
        }
    }
}

#[test]
fn test_replay_read_model_corpus() {
    check("read_model");
}

#[test]
fn test_replay_call_frames_corpus() {
    check("call_frames");
}

#[test]
fn test_replay_blob_open_corpus() {
    check("blob_open");
}

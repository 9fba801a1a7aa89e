//! Replays the `socket_frames` fuzz corpus (`fuzz/corpus/socket_frames/`) and its seeds on
//! stable. Run the fuzzer with `cargo +nightly fuzz run socket_frames` in `crates/server/fuzz`
//! (see BENCHMARKS.md for the campaign commands).

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/socket_frames");

#[test]
fn test_replay_socket_frames_corpus() {
    let mut n = 0;
    for entry in std::fs::read_dir(DIR).unwrap() {
        tandem_server::fuzzing::socket_frames(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    for seed in tandem_server::fuzzing::seeds() {
        tandem_server::fuzzing::socket_frames(&seed);
    }
    assert!(n >= 6);
}

/// Writes the seeds into the corpus directory (named by content, as libFuzzer names them).
#[test]
#[ignore = "writes into the source tree"]
fn write_seeds() {
    use sha2::Digest;
    for seed in tandem_server::fuzzing::seeds() {
        let name = hex::encode(&sha2::Sha256::digest(&seed)[..20]);
        std::fs::write(format!("{DIR}/{name}"), &seed).unwrap();
    }
}

//! Replays the `socket_frames` fuzz corpus (`fuzz/corpus/socket_frames/`) on stable. Run the
//! fuzzer with `cargo +nightly fuzz run socket_frames` in `crates/server/fuzz`.

#[test]
fn test_replay_socket_frames_corpus() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/socket_frames");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        tandem_server::fuzzing::socket_frames(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 6);
}

//! The end-to-end frame layer's cost in wasm in Chromium (`scripts/bench-calls`; issue 16's
//! targets: ≤ 0.1 ms per 720p video frame, ≤ 0.02 ms per audio frame). The media worker
//! runs this same code for every frame (`crates/web/src/call/media.rs`); each iteration here
//! also pays the copies the worker's JavaScript boundary makes (the frame into wasm memory
//! and the result back into a `Uint8Array`). Sizes: a 20 ms Opus frame (160 bytes), a VP8
//! delta frame of 720p at 1.5 Mbit/s and 30 fps (6 250 bytes), and a 720p key frame (60 kB).
//! Prints one `CALL_FRAMES {json}` line: microseconds per frame to protect and to open,
//! the median of 5 rounds.
#![cfg(all(target_family = "wasm", feature = "bench"))]

use js_sys::Uint8Array;
use tandem_core::calls::{CallSecret, FrameCrypter, MediaKind, Role};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const ROUNDS: usize = 5;

fn now_ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or_else(js_sys::Date::now, |p| p.now())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Microseconds per frame to protect and to open `n` frames of `size` bytes.
fn measure(kind: MediaKind, key_frame: bool, size: usize, n: u32) -> (f64, f64) {
    let secret = CallSecret([9; 32]);
    let mut protects = Vec::new();
    let mut opens = Vec::new();
    for _ in 0..ROUNDS {
        let mut caller = FrameCrypter::new(&secret, Role::Caller);
        let mut callee = FrameCrypter::new(&secret, Role::Callee);
        let frame: Vec<u8> = (0..size).map(|i| u8::try_from(i * 31 % 251).unwrap_or(0)).collect();
        let input = Uint8Array::from(&frame[..]);
        let mut sealed = Vec::with_capacity(n as usize);
        let t0 = now_ms();
        for _ in 0..n {
            let bytes = input.to_vec();
            let out = caller.protect(kind, key_frame, &bytes).expect("protect");
            sealed.push(Uint8Array::from(&out[..]));
        }
        protects.push((now_ms() - t0) * 1000.0 / f64::from(n));
        let t0 = now_ms();
        for s in &sealed {
            let bytes = s.to_vec();
            let out = callee.unprotect(kind, key_frame, &bytes).expect("open");
            let _ = Uint8Array::from(&out[..]);
        }
        opens.push((now_ms() - t0) * 1000.0 / f64::from(n));
        assert_eq!(callee.counts().opened, u64::from(n));
    }
    (median(protects), median(opens))
}

#[wasm_bindgen_test]
fn bench_call_frames() {
    let cases = [
        ("audio_160B", MediaKind::Audio, false, 160, 20_000),
        ("video_delta_6250B", MediaKind::Video, false, 6_250, 3_000),
        ("video_key_60kB", MediaKind::Video, true, 60_000, 300),
    ];
    let mut json = Vec::new();
    for (name, kind, key, size, n) in cases {
        let (protect, open) = measure(kind, key, size, n);
        json.push(format!(r#""{name}":{{"protect_us":{protect:.2},"open_us":{open:.2}}}"#));
    }
    console_log!("CALL_FRAMES {{{}}}", json.join(","));
}

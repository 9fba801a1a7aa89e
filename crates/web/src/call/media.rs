//! The end-to-end frame layer inside the media worker (`www/static/media-worker.js`): the
//! worker's `rtctransform` handler hands every encoded frame to these functions, which
//! protect or open it with SFrame under the call's secret ([`FrameCrypter`]). The secret
//! arrives from the tab by `postMessage` and lives only in this worker's memory; it is
//! zeroized when the call ends.

use std::cell::RefCell;

use tandem_core::calls::{CallSecret, FrameCrypter, MediaKind, Role};
use wasm_bindgen::prelude::*;

thread_local! {
    static CRYPTER: RefCell<Option<FrameCrypter>> = const { RefCell::new(None) };
}

fn kind(video: bool) -> MediaKind {
    if video { MediaKind::Video } else { MediaKind::Audio }
}

/// Keys the frame layer with the call's 32-byte `secret`, as the caller or the callee.
/// Returns false (and keys nothing) for a secret of another size.
#[wasm_bindgen]
pub fn tandem_media_key(secret: &[u8], caller: bool) -> bool {
    let Ok(bytes) = <[u8; 32]>::try_from(secret) else { return false };
    let secret = CallSecret(bytes);
    let role = if caller { Role::Caller } else { Role::Callee };
    CRYPTER.with(|c| *c.borrow_mut() = Some(FrameCrypter::new(&secret, role)));
    true
}

/// Forgets the call's keys.
#[wasm_bindgen]
pub fn tandem_media_end() {
    CRYPTER.with(|c| c.borrow_mut().take());
}

/// The frame to send, protected; `None` (drop it) before the call is keyed.
#[wasm_bindgen]
pub fn tandem_media_protect(video: bool, key_frame: bool, frame: &[u8]) -> Option<Vec<u8>> {
    CRYPTER.with(|c| c.borrow_mut().as_mut()?.protect(kind(video), key_frame, frame).ok())
}

/// The received frame, opened; `None` (drop it) if it does not authenticate, replays, or
/// the call is not keyed.
#[wasm_bindgen]
pub fn tandem_media_unprotect(video: bool, key_frame: bool, frame: &[u8]) -> Option<Vec<u8>> {
    CRYPTER.with(|c| c.borrow_mut().as_mut()?.unprotect(kind(video), key_frame, frame).ok())
}

/// Frames sent, opened, and dropped as unauthentic or replayed, as
/// `[sent, opened, unauthentic, replayed]`.
#[wasm_bindgen]
pub fn tandem_media_counts() -> Vec<f64> {
    CRYPTER.with(|c| {
        let counts = c.borrow().as_ref().map(|c| c.counts()).unwrap_or_default();
        [counts.sent, counts.opened, counts.unauthentic, counts.replayed]
            .iter()
            .map(|&n| n as f64)
            .collect()
    })
}

//! The end-to-end frame layer inside the media worker (`www/static/frame-layer.js`): the
//! worker's `rtctransform` handler hands every encoded frame to these functions, which
//! protect or open it with SFrame under the call's secret ([`FrameCrypter`]). The secret
//! arrives from the tab by `postMessage` and lives only in this worker's memory; it is
//! zeroized when the call ends.
//!
//! Two ways per frame: all in wasm ([`tandem_media_protect`], [`tandem_media_unprotect`]:
//! software AES, ≈ 16 µs per kB, the way for audio), or header, counters and replay window
//! here with the AES-GCM in the browser's WebCrypto (hardware AES, the way for video):
//! [`tandem_media_seal_plan`], [`tandem_media_open_plans`], then [`tandem_media_opened`] or
//! [`tandem_media_refused`].

use std::cell::RefCell;

use js_sys::{Array, BigInt, Object, Reflect, Uint8Array};
use tandem_core::calls::sframe::{Header, SframeError};
use tandem_core::calls::{CallSecret, FrameCrypter, FramePlan, MediaKind, PLAN_HEAD, Role};
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

/// Each KID's AES-128 key, as `[kid, Uint8Array]` pairs, for the worker to import into
/// WebCrypto as keys that cannot be exported again (it zeroes these arrays afterwards).
/// Empty before the call is keyed.
#[wasm_bindgen]
pub fn tandem_media_aes_keys() -> Array {
    CRYPTER.with(|c| {
        let out = Array::new();
        if let Some(c) = c.borrow().as_ref() {
            for (kid, key) in c.aes_keys() {
                out.push(&Array::of2(&(kid as f64).into(), &Uint8Array::from(&key[..])));
            }
        }
        out
    })
}

fn set(target: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

/// A plan as the worker reads it: `{ clear, start, kid, ctr, iv, aad }` (`kid` a number,
/// `ctr` a BigInt; `start` where the sealed part begins; the SFrame header is the start of
/// `aad`, `start - clear` bytes).
fn plan_object(plan: &FramePlan) -> Object {
    let o = Object::new();
    set(&o, "clear", &(plan.clear as f64).into());
    set(&o, "start", &(plan.body_start() as f64).into());
    set(&o, "kid", &(plan.aead.frame.kid as f64).into());
    set(&o, "ctr", &BigInt::from(plan.aead.frame.ctr).into());
    set(&o, "iv", &Uint8Array::from(&plan.aead.nonce[..]));
    set(&o, "aad", &Uint8Array::from(&plan.aead.aad[..]));
    o
}

/// How many bytes of a frame's start a plan needs: the worker passes no more (a frame's
/// length and its first bytes make a plan; the frame itself is not copied into wasm).
#[wasm_bindgen]
pub fn tandem_media_plan_head() -> usize {
    PLAN_HEAD
}

/// How to seal a non-empty outgoing frame of `len` bytes starting with `head` (see
/// [`tandem_media_plan_head`]) with WebCrypto: a plan (see [`plan_object`]); the frame to
/// send is `frame[..clear] ‖ aad[..start - clear] ‖ AES-GCM(frame[clear..])`. `undefined` (drop it)
/// before the call is keyed. Takes the frame's counter.
#[wasm_bindgen]
pub fn tandem_media_seal_plan(video: bool, key_frame: bool, len: u32, head: &[u8]) -> JsValue {
    CRYPTER.with(|c| {
        let mut c = c.borrow_mut();
        match c.as_mut().map(|c| c.seal_plan(kind(video), key_frame, len as usize, head)) {
            Some(Ok(Some(plan))) => plan_object(&plan).into(),
            _ => JsValue::UNDEFINED,
        }
    })
}

/// The ways a non-empty received frame of `len` bytes starting with `head` may open with
/// WebCrypto, to try in order: plans (see [`plan_object`]); the frame is `frame[..clear] ‖
/// AES-GCM-open(frame[start..])`. Empty (drop it, counted) for a malformed header, another
/// KID, a replay, or before the call is keyed.
#[wasm_bindgen]
pub fn tandem_media_open_plans(video: bool, key_frame: bool, len: u32, head: &[u8]) -> Array {
    CRYPTER.with(|c| {
        let out = Array::new();
        let mut c = c.borrow_mut();
        let Some(c) = c.as_mut() else { return out };
        match c.open_plans(kind(video), key_frame, len as usize, head) {
            Ok(plans) => plans.iter().for_each(|p| {
                out.push(&plan_object(p));
            }),
            Err(e) => c.refused(e),
        }
        out
    })
}

/// The frame of plan `kid`/`ctr` authenticated: true if it is the first copy (deliver it),
/// false (drop it, counted) if a copy was opened meanwhile.
#[wasm_bindgen]
pub fn tandem_media_opened(kid: u32, ctr: BigInt) -> bool {
    let Ok(ctr) = u64::try_from(ctr) else { return false };
    let kid = u64::from(kid);
    CRYPTER.with(|c| c.borrow_mut().as_mut().is_some_and(|c| c.opened(Header { kid, ctr }).is_ok()))
}

/// A received frame none of whose plans authenticated: counted, and dropped.
#[wasm_bindgen]
pub fn tandem_media_refused() {
    CRYPTER.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            c.refused(SframeError::Unauthentic);
        }
    });
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

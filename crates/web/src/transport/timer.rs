//! Time in the browser: a `setTimeout` future and the wall clock.

use std::time::Duration;

use js_sys::Promise;
use tandem_core::Timestamp;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Resolves after `d` (clamped to about 24 days, `setTimeout`'s limit).
pub async fn sleep(d: Duration) {
    let ms = i32::try_from(d.as_millis()).unwrap_or(i32::MAX);
    let promise = Promise::new(&mut |resolve, _reject| {
        // The page's or the worker's `setTimeout`.
        let global = js_sys::global();
        if let Some(set_timeout) = js_sys::Reflect::get(&global, &"setTimeout".into())
            .ok()
            .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        {
            let _ = set_timeout.call2(&global, &resolve, &ms.into());
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// `future`'s output, or `None` if `d` passed first (the future is dropped then).
pub async fn within<F: Future>(d: Duration, future: F) -> Option<F::Output> {
    use futures_util::future::{Either, select};
    match select(std::pin::pin!(future), std::pin::pin!(sleep(d))).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}

/// Lets the browser run what waits (input, rendering) and resumes soon after: with
/// `scheduler.yield()` where the browser has it (the task resumes ahead of other queued
/// work), otherwise a zero-delay timeout.
pub async fn yield_now() {
    let global = js_sys::global();
    let scheduled = js_sys::Reflect::get(&global, &"scheduler".into())
        .ok()
        .filter(|s| s.is_object())
        .and_then(|s| {
            let f = js_sys::Reflect::get(&s, &"yield".into()).ok()?;
            let f: &js_sys::Function = JsCast::dyn_ref(&f)?;
            f.call0(&s).ok()?.dyn_into::<Promise>().ok()
        });
    match scheduled {
        Some(p) => {
            let _ = JsFuture::from(p).await;
        }
        None => sleep(Duration::ZERO).await,
    }
}

/// Milliseconds since the epoch, from the browser clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The time from `from_ms` to `to_ms` (epoch milliseconds); zero if `to_ms` is not later.
pub fn duration_between(from_ms: f64, to_ms: f64) -> Duration {
    Duration::try_from_secs_f64(((to_ms - from_ms) / 1000.0).max(0.0)).unwrap_or(Duration::ZERO)
}

/// The wall clock as a [`Timestamp`].
pub fn now() -> Timestamp {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "epoch ms")]
    Timestamp::from_millis(now_ms().max(0.0) as u64)
}

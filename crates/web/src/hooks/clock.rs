//! `use_clock`: the wall clock as a signal, ticking at a fixed period.

use std::time::Duration;

use leptos::prelude::*;

use crate::transport::now_ms;

/// Epoch milliseconds, refreshed every `period` while the component lives.
pub fn use_clock(period: Duration) -> ReadSignal<f64> {
    let (now, set_now) = signal(now_ms());
    if let Ok(handle) = set_interval_with_handle(move || set_now.set(now_ms()), period) {
        on_cleanup(move || handle.clear());
    }
    now
}

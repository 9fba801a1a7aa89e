//! Inline SVG icons (no network fetches, themable with `currentColor`).

use leptos::prelude::*;

/// Tandem's mark: two overlapping speech bubbles.
#[component]
pub(crate) fn Logo() -> impl IntoView {
    view! {
        <svg class="logo" viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
            <rect x="2" y="4" width="18" height="14" rx="5" fill="var(--accent)"/>
            <path d="M6 18 L6 23 L11 18 Z" fill="var(--accent)"/>
            <rect x="12" y="11" width="18" height="14" rx="5" fill="var(--accent-2)" opacity="0.92"/>
            <path d="M26 25 L26 30 L21 25 Z" fill="var(--accent-2)" opacity="0.92"/>
        </svg>
    }
}

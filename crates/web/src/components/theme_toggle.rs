//! A button cycling system → light → dark themes.

use leptos::prelude::*;

use crate::hooks::{Theme, UseThemeReturn};

/// The theme button in the top bar.
#[component]
pub(crate) fn ThemeToggle(
    /// The theme and its setter.
    theme: UseThemeReturn,
) -> impl IntoView {
    let icon = move || match theme.theme.get() {
        Theme::System => "◐",
        Theme::Light => "☀",
        Theme::Dark => "☾",
    };
    let label = move || format!("{} (change theme)", theme.theme.get().label());
    view! {
        <button
            class="icon-button"
            aria-label=label
            title=label
            data-testid="theme-toggle"
            on:click=move |_| theme.set_theme.update(|t| *t = t.next())
        >
            <span aria-hidden="true">{icon}</span>
        </button>
    }
}

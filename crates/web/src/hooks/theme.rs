//! `use_theme`: light, dark or the system's choice, remembered per browser.

use leptos::prelude::*;

const STORAGE_KEY: &str = "tandem.theme";

/// A colour theme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Follow the operating system.
    System,
    /// Always light.
    Light,
    /// Always dark.
    Dark,
}

impl Theme {
    fn as_str(self) -> &'static str {
        match self {
            Theme::System => "system",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "light" => Theme::Light,
            "dark" => Theme::Dark,
            _ => Theme::System,
        }
    }

    /// The next theme in the toggle cycle system → light → dark → system.
    pub fn next(self) -> Self {
        match self {
            Theme::System => Theme::Light,
            Theme::Light => Theme::Dark,
            Theme::Dark => Theme::System,
        }
    }

    /// A label for people.
    pub fn label(self) -> &'static str {
        match self {
            Theme::System => "System theme",
            Theme::Light => "Light theme",
            Theme::Dark => "Dark theme",
        }
    }
}

/// What [`use_theme`] returns.
#[derive(Clone, Copy)]
pub struct UseThemeReturn {
    /// The chosen theme.
    pub theme: ReadSignal<Theme>,
    /// Changes and remembers the theme.
    pub set_theme: WriteSignal<Theme>,
}

/// The theme, applied as `data-theme` on `<html>` (absent for the system theme).
pub fn use_theme() -> UseThemeReturn {
    let storage = web_sys::window().and_then(|w| w.local_storage().ok().flatten());
    let saved = storage.as_ref().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
    let (theme, set_theme) = signal(saved.as_deref().map_or(Theme::System, Theme::parse));
    Effect::new(move |_| {
        let t = theme.get();
        let root = web_sys::window().and_then(|w| w.document()).and_then(|d| d.document_element());
        if let Some(root) = root {
            let _ = match t {
                Theme::System => root.remove_attribute("data-theme"),
                other => root.set_attribute("data-theme", other.as_str()),
            };
        }
        if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = s.set_item(STORAGE_KEY, t.as_str());
        }
    });
    UseThemeReturn { theme, set_theme }
}

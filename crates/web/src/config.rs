//! Which relay this app talks to.
//!
//! By default the relay is the page's own origin (`/v1/socket` on the same host), so the app
//! served by `tandem-server` needs no configuration. When the app is hosted elsewhere as a
//! static site, the relay is chosen by a `?server=` query parameter or in the app's settings,
//! and remembered in `localStorage` under [`STORAGE_KEY`].
//!
//! A browser with an account is *bound* to the relay it registered at ([`BOUND_KEY`]): a link
//! with `?server=` never moves it elsewhere by itself. The app names both relays and asks
//! ([`start_server`]); only the person's explicit choice rebinds it.

use web_sys::Url;

/// `localStorage` key holding a configured relay URL (before an account exists).
pub const STORAGE_KEY: &str = "tandem.server";
/// `localStorage` key holding the relay this browser's device is registered at.
pub const BOUND_KEY: &str = "tandem.bound_server";
/// The relay's WebSocket path.
pub const SOCKET_PATH: &str = "/v1/socket";

/// A relay address that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a URL at all.
    #[error("“{0}” is not a web address; enter something like https://chat.example.com")]
    NotAUrl(String),
    /// A URL with a scheme other than http(s) or ws(s).
    #[error(
        "addresses starting with “{0}:” are not supported; use https:// (or http:// for a local server)"
    )]
    BadScheme(String),
}

/// Turns what a person typed (`https://host`, `host:8080`, `wss://host/v1/socket`) into the
/// relay's WebSocket URL.
pub fn normalize_server_url(input: &str) -> Result<String, ConfigError> {
    let trimmed = input.trim();
    let with_scheme =
        if trimmed.contains("://") { trimmed.to_owned() } else { format!("https://{trimmed}") };
    let url = Url::new(&with_scheme).map_err(|_| ConfigError::NotAUrl(trimmed.to_owned()))?;
    if url.hostname().is_empty() {
        return Err(ConfigError::NotAUrl(trimmed.to_owned()));
    }
    let scheme = url.protocol();
    let ws_scheme = match scheme.as_str() {
        "http:" | "ws:" => "ws:",
        "https:" | "wss:" => "wss:",
        other => return Err(ConfigError::BadScheme(other.trim_end_matches(':').to_owned())),
    };
    url.set_protocol(ws_scheme);
    if url.pathname() == "/" || url.pathname().is_empty() {
        url.set_pathname(SOCKET_PATH);
    }
    url.set_hash("");
    Ok(url.href())
}

/// The relay of the page's own origin.
pub fn default_server_url() -> String {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_else(|| "http://localhost:8080".to_owned());
    normalize_server_url(&origin).unwrap_or_else(|_| format!("ws://localhost:8080{SOCKET_PATH}"))
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window().and_then(|w| w.local_storage().ok().flatten())
}

/// The relay a `?server=` parameter of this page's address asks for, if any.
pub fn requested_server() -> Option<String> {
    web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get("server"))
        .and_then(|q| normalize_server_url(&q).ok())
}

/// The relay this browser's device is registered at, if it has one.
pub fn bound_server() -> Option<String> {
    local_storage()
        .and_then(|s| s.get_item(BOUND_KEY).ok().flatten())
        .and_then(|saved| normalize_server_url(&saved).ok())
}

/// Binds this browser's device to `url` (it registered there, or the person chose it).
pub fn bind_server(url: &str) {
    if let Some(s) = local_storage() {
        let _ = s.set_item(BOUND_KEY, url);
    }
}

/// Forgets the binding (the device is gone).
pub fn unbind_server() {
    if let Some(s) = local_storage() {
        let _ = s.remove_item(BOUND_KEY);
    }
}

/// The relay to connect to at start, and, when a link asks for another relay than the one
/// this browser's device is bound to, that relay: the person is asked, nothing moves by
/// itself. Without a binding, `?server=` is taken (and remembered) as before.
pub fn start_server() -> (String, Option<String>) {
    let requested = requested_server();
    if let Some(bound) = bound_server() {
        let other = requested.filter(|r| *r != bound);
        return (bound, other);
    }
    (server_url(), None)
}

/// The configured relay URL for a browser without a device: `?server=` (which is then
/// remembered), else the remembered one, else the page's own origin.
pub fn server_url() -> String {
    if let Some(url) = requested_server() {
        if let Some(storage) = local_storage() {
            let _ = storage.set_item(STORAGE_KEY, &url);
        }
        return url;
    }
    local_storage()
        .and_then(|s| s.get_item(STORAGE_KEY).ok().flatten())
        .and_then(|saved| normalize_server_url(&saved).ok())
        .unwrap_or_else(default_server_url)
}

/// Remembers `input` as the relay (after normalizing it), or forgets the setting with `None`
/// so the page's origin is used. Returns the URL now in effect.
pub fn set_server_url(input: Option<&str>) -> Result<String, ConfigError> {
    let storage = local_storage();
    match input {
        Some(input) => {
            let url = normalize_server_url(input)?;
            if let Some(s) = storage {
                let _ = s.set_item(STORAGE_KEY, &url);
            }
            Ok(url)
        }
        None => {
            if let Some(s) = storage {
                let _ = s.remove_item(STORAGE_KEY);
            }
            Ok(default_server_url())
        }
    }
}

/// Whether the relay in use is the page's own origin.
pub fn is_default(url: &str) -> bool {
    url == default_server_url()
}

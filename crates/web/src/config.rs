//! Which relay this app talks to.
//!
//! By default the relay is the page's own origin (`/v1/socket` on the same host), so the app
//! served by `tandem-server` needs no configuration. When the app is hosted elsewhere as a
//! static site, the relay is chosen by a `?server=` query parameter or in the app's settings,
//! and remembered in `localStorage` under [`STORAGE_KEY`].

use web_sys::Url;

/// `localStorage` key holding a configured relay URL.
pub const STORAGE_KEY: &str = "tandem.server";
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

/// The configured relay URL: `?server=` (which is then remembered), else the remembered
/// one, else the page's own origin.
pub fn server_url() -> String {
    let from_query = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .and_then(|search| web_sys::UrlSearchParams::new_with_str(&search).ok())
        .and_then(|params| params.get("server"));
    if let Some(url) = from_query.and_then(|q| normalize_server_url(&q).ok()) {
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

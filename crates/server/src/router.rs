//! HTTP routes: health, the client WebSocket, and the built web app.

use std::path::Path;

use axum::Router;
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tandem_core::wire::relay::MAX_FRAME_LEN;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::AppError;
use crate::storage::Storage;
use crate::ws::{SocketConfig, serve_socket};

/// The relay's routes. With `dist` set, unknown paths serve the web app (SPA fallback to
/// `index.html`).
pub fn router<D: Storage>(state: AppState<D>) -> Router {
    let dist = state.dist.clone();
    let api = Router::new()
        .route("/health", get(health::<D>))
        .route("/metrics", get(metrics::<D>))
        .route("/v1/socket", get(socket::<D>))
        .with_state(state);
    let app = match dist {
        Some(dist) => api.fallback_service(static_files(&dist)),
        None => api,
    };
    app.layer(TraceLayer::new_for_http())
}

fn static_files(dist: &Path) -> Router {
    let files =
        ServeDir::new(dist).precompressed_gzip().fallback(ServeFile::new(dist.join("index.html")));
    // Trunk hashes asset names, but www/ files and index.html are not: revalidate every time.
    Router::new().fallback_service(files).layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    ))
}

/// Counters for operators and benchmarks (no per-user data), only with the configured
/// bearer token (`--metrics-token`); without one, or with a wrong one, there is no such page.
/// Every figure comes from counters in memory: a request costs no table scan.
async fn metrics<D: Storage>(State(state): State<AppState<D>>, headers: HeaderMap) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = match (&state.relay.metrics_token, given) {
        (Some(token), Some(given)) => crate::api::secrets_equal(token.as_bytes(), given.as_bytes()),
        _ => false,
    };
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    Json(serde_json::json!({
        "queued": state.storage.queue_total(),
        "connected_devices": state.hub.connected(),
        "provisioning_open": state.hub.provisioning_open(),
        "rate_limit_buckets": state.limiter.len(),
        "writes": state.storage.write_stats(),
    }))
    .into_response()
}

async fn health<D: Storage>(
    State(state): State<AppState<D>>,
) -> Result<impl IntoResponse, AppError> {
    state.storage.ping().await?;
    Ok(Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })))
}

/// Per-socket buffers: tungstenite's defaults (128 KiB each way) would cost far more memory
/// per idle device than the relay allows; frames larger than the read buffer still work, the
/// buffer grows for them.
const READ_BUFFER: usize = 2 * 1024;

/// Frames a session writes in one go are gathered up to this size before they are sent (the
/// session flushes once it has nothing else ready), so a push and a response made by one
/// commit leave in one system call.
const WRITE_BUFFER: usize = 16 * 1024;

async fn socket<D: Storage>(
    State(state): State<AppState<D>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> impl IntoResponse {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(tandem_core::auth::normalize_host);
    let config = SocketConfig {
        idle_timeout: state.idle_timeout,
        server_version: env!("CARGO_PKG_VERSION").to_owned(),
        peer: crate::limits::client_address(peer, forwarded, &state.relay.trusted_proxies),
        host,
    };
    upgrade
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_FRAME_LEN * 4)
        .max_message_size(MAX_FRAME_LEN)
        .max_frame_size(MAX_FRAME_LEN)
        .on_upgrade(move |socket| serve_socket(socket, config, state))
}

//! Errors: startup failures with one clear line, and HTTP errors.

use std::path::PathBuf;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why the server could not start. `Display` is the one line printed before exiting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The data directory cannot be created or written.
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("cannot open database {path}: {source}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What sqlx said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The listen address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The built web app is missing.
    #[error(
        "web app not found: {path} is missing; build it with `trunk build --release`, \
         pass --dist DIR, or run with --api-only"
    )]
    MissingDist {
        /// The missing `index.html`.
        path: PathBuf,
    },
    /// The server failed while running.
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// An error answered to an HTTP request: 4xx with a short reason, 5xx without detail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A storage failure; logged once, answered as a bare 500.
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Storage(e) => {
                tracing::error!(error = %e, "storage failure");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

//! Server storage behind one trait; SQLite (embedded) is the default backend.

mod sqlite;

use std::future::Future;

pub use sqlite::SqliteStorage;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// The backend failed.
    #[error("database: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StorageError::NotFound,
            other => StorageError::Backend(Box::new(other)),
        }
    }
}

/// Everything the relay persists. Implemented by [`SqliteStorage`]; PostgreSQL later.
pub trait Storage: Clone + Send + Sync + 'static {
    /// Checks the database answers.
    fn ping(&self) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// This server's instance id, created on first start and stable afterwards.
    fn instance_id(&self) -> impl Future<Output = Result<String, StorageError>> + Send;

    /// Closes the backend cleanly.
    fn close(&self) -> impl Future<Output = ()> + Send;
}

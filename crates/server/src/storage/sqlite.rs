//! The embedded SQLite backend (WAL mode, migrations from `migrations/sqlite`).

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tracing::instrument;

use super::{Storage, StorageError};

/// The migrations compiled into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite storage in one file.
#[derive(Clone, Debug)]
pub struct SqliteStorage {
    pool: SqlitePool,
}

impl SqliteStorage {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a send is acknowledged only after its copies survive power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StorageError::Backend(Box::new(e)))?;
        let storage = Self { pool };
        storage.ensure_instance_id().await?;
        Ok(storage)
    }

    async fn ensure_instance_id(&self) -> Result<(), StorageError> {
        let mut id = [0u8; 16];
        rand::fill(&mut id);
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', ?)")
            .bind(hex::encode(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Storage for SqliteStorage {
    #[instrument(skip_all)]
    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn instance_id(&self) -> Result<String, StorageError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'instance_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn test_instance_id_is_stable_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite");
        let first = SqliteStorage::open(&path).await.unwrap();
        let id = first.instance_id().await.unwrap();
        assert_eq!(id.len(), 32);
        first.close().await;
        let second = SqliteStorage::open(&path).await.unwrap();
        assert_eq!(second.instance_id().await.unwrap(), id);
        second.ping().await.unwrap();
    }
}

//! The SQLite backend: the storage conformance checks, and what only SQLite has (query
//! plans).

use super::*;
use crate::storage::conformance::{Backend, storage_conformance};

struct Sqlite;

impl Backend for Sqlite {
    type Store = SqliteStorage;
    type Place = tempfile::TempDir;
    fn place() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }
    async fn open(place: &tempfile::TempDir) -> SqliteStorage {
        SqliteStorage::open(&place.path().join("t.sqlite")).await.unwrap()
    }
}

storage_conformance!(Sqlite);

#[tokio::test]
async fn test_queue_statements_find_rows_by_rowid() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    for (sql, binds) in
        [(super::super::writer::DELETE_ACKED, 3), (super::super::writer::INSERT_ROW, 6)]
    {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
        for _ in 0..binds {
            q = q.bind(1i64);
        }
        let plan: Vec<String> = q
            .fetch_all(&storage.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>(3))
            .collect();
        assert!(!plan.iter().any(|step| step.starts_with("SCAN")), "{sql}: {plan:?}");
        if binds == 3 {
            assert!(plan.iter().any(|s| s.contains("INTEGER PRIMARY KEY")), "{plan:?}");
        }
    }
    storage.close().await;
}

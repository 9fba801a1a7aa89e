//! The SQLite backend on its own: durability across reopen, queue order, expiry.

use super::*;

fn device_row(key: u8) -> NewDeviceRow {
    NewDeviceRow {
        registration_id: 1,
        identity_key: vec![key; 33],
        adv_identity: vec![],
        password_hash: [key; 32],
        name: "d".into(),
        platform: "p".into(),
    }
}

fn envelope(ts: u64) -> Bytes {
    Envelope {
        source_account: vec![1; 16],
        source_device: 1,
        r#type: 2,
        content: vec![0; 10],
        client_timestamp: ts,
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

#[tokio::test]
async fn test_instance_id_and_queue_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let a = AccountId([1; 16]);
    let first = SqliteStorage::open(&path).await.unwrap();
    let id = first.instance_id().await.unwrap();
    first.create_account(a, "alice", device_row(1), 1).await.unwrap();
    let ids = first
        .enqueue(
            (0..5)
                .map(|i| QueueInsert { account_id: a, device_id: 1, envelope: envelope(i) })
                .collect(),
            u64::MAX / 2,
        )
        .await
        .unwrap();
    assert_eq!(ids.windows(2).filter(|w| w[1] == w[0] + 1).count(), 4, "consecutive ids");
    first.ack(a, 1, vec![ids[4]]).await.unwrap();
    first.close().await;
    let second = SqliteStorage::open(&path).await.unwrap();
    assert_eq!(second.instance_id().await.unwrap(), id);
    let rows = second.fetch_queue(a, 1, 0, 100).await.unwrap();
    assert_eq!(rows.iter().map(|(i, _)| *i).collect::<Vec<_>>(), ids[..4]);
    // Ids never go back, even after the highest was deleted.
    let more = second
        .enqueue(
            vec![QueueInsert { account_id: a, device_id: 1, envelope: envelope(9) }],
            u64::MAX / 2,
        )
        .await
        .unwrap();
    assert!(more[0] > ids[4]);
    assert_eq!(second.queue_len(a, 1).await.unwrap(), 5);
}

#[tokio::test]
async fn test_expiry_leaves_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let a = AccountId([2; 16]);
    s.create_account(a, "bob", device_row(2), 1).await.unwrap();
    s.enqueue(vec![QueueInsert { account_id: a, device_id: 1, envelope: envelope(7) }], 100)
        .await
        .unwrap();
    s.enqueue(vec![QueueInsert { account_id: a, device_id: 1, envelope: envelope(8) }], 10_000)
        .await
        .unwrap();
    assert_eq!(s.expire(50).await.unwrap(), 0);
    assert_eq!(s.expire(101).await.unwrap(), 1);
    assert_eq!(s.queue_len(a, 1).await.unwrap(), 1);
    let t = s.take_expired(a, 1).await.unwrap();
    assert_eq!(
        t,
        vec![ExpiredRow { source_account: vec![1; 16], source_device: 1, client_timestamp: 7 }]
    );
    assert!(s.take_expired(a, 1).await.unwrap().is_empty(), "told once");
}

#[tokio::test]
async fn test_link_tokens_are_single_use_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let a = AccountId([3; 16]);
    s.create_account(a, "carol", device_row(3), 1).await.unwrap();
    s.create_link_token(a, [9; 32], 1000).await.unwrap();
    assert!(matches!(
        s.register_device(a, [9; 32], device_row(4), 2000, 4).await,
        Err(StorageError::InvalidToken)
    ));
    s.create_link_token(a, [8; 32], 1000).await.unwrap();
    assert_eq!(s.register_device(a, [8; 32], device_row(4), 500, 4).await.unwrap(), 2);
    assert!(matches!(
        s.register_device(a, [8; 32], device_row(5), 500, 4).await,
        Err(StorageError::InvalidToken)
    ));
    // The same device repeating its registration (its answer was lost) hears its id again,
    // and no second device appears; another password does not.
    assert_eq!(s.register_device(a, [8; 32], device_row(4), 600, 4).await.unwrap(), 2);
    let other_password = NewDeviceRow { password_hash: [1; 32], ..device_row(4) };
    assert!(matches!(
        s.register_device(a, [8; 32], other_password, 600, 4).await,
        Err(StorageError::InvalidToken)
    ));
    assert_eq!(s.devices(a).await.unwrap().len(), 2);
    // Not after the token expired, and not once the device was removed.
    assert!(matches!(
        s.register_device(a, [8; 32], device_row(4), 1000, 4).await,
        Err(StorageError::InvalidToken)
    ));
    s.create_link_token(a, [7; 32], 5000).await.unwrap();
    let id = s.register_device(a, [7; 32], device_row(9), 1100, 4).await.unwrap();
    assert!(s.remove_device(a, id).await.unwrap());
    assert!(matches!(
        s.register_device(a, [7; 32], device_row(9), 1200, 4).await,
        Err(StorageError::InvalidToken)
    ));
    assert!(matches!(
        s.create_account(AccountId([4; 16]), "carol", device_row(6), 1).await,
        Err(StorageError::Conflict)
    ));
}

#[tokio::test]
async fn test_ack_deletes_only_the_acknowledging_devices_copies() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let (a, b) = (AccountId([1; 16]), AccountId([2; 16]));
    storage.create_account(a, "alice", device_row(1), 1).await.unwrap();
    storage.create_account(b, "bob", device_row(2), 1).await.unwrap();
    storage.create_link_token(a, [7; 32], 1000).await.unwrap();
    assert_eq!(storage.register_device(a, [7; 32], device_row(3), 1, 4).await.unwrap(), 2);
    let row =
        |account_id, device_id, ts| QueueInsert { account_id, device_id, envelope: envelope(ts) };
    let ids =
        storage.enqueue(vec![row(a, 1, 1), row(a, 2, 2), row(b, 1, 3)], u64::MAX).await.unwrap();
    // Another account's device, and another device of the same account, delete nothing.
    storage.ack(b, 1, vec![ids[0]]).await.unwrap();
    storage.ack(a, 2, vec![ids[0]]).await.unwrap();
    assert_eq!(storage.queue_total().await.unwrap(), 3);
    storage.ack(a, 1, vec![ids[0], 999]).await.unwrap();
    storage.ack(b, 1, vec![ids[2]]).await.unwrap();
    assert_eq!(storage.queue_total().await.unwrap(), 1);
    let left = storage.fetch_queue(a, 2, 0, 10).await.unwrap();
    assert_eq!(left.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![ids[1]]);
    assert_eq!(left[0].1, envelope(2), "envelopes are stored byte for byte");
    let stats = storage.write_stats();
    assert_eq!((stats.inserted, stats.deleted), (3, 2));
    storage.close().await;
}

#[tokio::test]
async fn test_nothing_is_queued_for_a_removed_device() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let a = AccountId([5; 16]);
    storage.create_account(a, "erin", device_row(5), 1).await.unwrap();
    storage.create_link_token(a, [6; 32], 1000).await.unwrap();
    let gone = storage.register_device(a, [6; 32], device_row(6), 1, 4).await.unwrap();
    let row = |device_id, ts| QueueInsert { account_id: a, device_id, envelope: envelope(ts) };
    storage.enqueue(vec![row(gone, 1)], u64::MAX / 2).await.unwrap();
    assert!(storage.remove_device(a, gone).await.unwrap());
    assert_eq!(storage.queue_len(a, gone).await.unwrap(), 0, "removal empties the queue");
    // A send that was checked against the old device list commits after the removal.
    storage.enqueue(vec![row(1, 2), row(gone, 2)], u64::MAX / 2).await.unwrap();
    assert_eq!(storage.queue_len(a, gone).await.unwrap(), 0, "nothing left for a removed device");
    assert_eq!(storage.queue_len(a, 1).await.unwrap(), 1, "the rest of the batch is kept");
    assert_eq!(storage.queue_total().await.unwrap(), 1);
    storage.close().await;
}

#[tokio::test]
async fn test_queue_statements_find_rows_by_rowid() {
    let dir = tempfile::tempdir().unwrap();
    let storage = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    for (sql, binds) in
        [(super::super::writer::DELETE_ACKED, 3), (super::super::writer::INSERT_ROW, 5)]
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

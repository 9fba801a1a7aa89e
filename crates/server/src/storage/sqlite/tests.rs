//! The SQLite backend on its own: durability across reopen, queue order, expiry.

use prost::Message;
use tandem_core::wire::relay::Envelope;

use super::*;

fn device_row(key: u8) -> NewDeviceRow {
    NewDeviceRow {
        registration_id: 1,
        identity_key: vec![key; 33],
        adv_identity: vec![],
        name: "d".into(),
        platform: "p".into(),
    }
}

/// Roomy limits: these tests are not about them.
const ROOMY: QueueLimits = QueueLimits {
    max_len: 1_000_000,
    max_bytes: u64::MAX / 4,
    max_len_per_sender: 1_000_000,
    max_bytes_per_sender: u64::MAX / 4,
};

const SENDER: AccountId = AccountId([1; 16]);

fn insert(account_id: AccountId, device_id: u32, ts: u64) -> QueueInsert {
    QueueInsert { account_id, device_id, sender: SENDER, envelope: envelope(ts) }
}

async fn queued(s: &SqliteStorage, a: AccountId, d: u32) -> usize {
    s.fetch_queue(a, d, 0, 1_000_000).await.unwrap().len()
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
        .enqueue((0..5).map(|i| insert(a, 1, i)).collect(), u64::MAX / 2, ROOMY)
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
    let more = second.enqueue(vec![insert(a, 1, 9)], u64::MAX / 2, ROOMY).await.unwrap();
    assert!(more[0] > ids[4]);
    assert_eq!(queued(&second, a, 1).await, 5);
    assert_eq!(second.queue_total(), 5, "the total is counted at start and kept");
}

#[tokio::test]
async fn test_expiry_leaves_tombstones_until_acknowledged_or_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let a = AccountId([2; 16]);
    s.create_account(a, "bob", device_row(2), 1).await.unwrap();
    s.enqueue(vec![insert(a, 1, 7)], 100, ROOMY).await.unwrap();
    s.enqueue(vec![insert(a, 1, 8)], 10_000, ROOMY).await.unwrap();
    assert_eq!(s.expire(50, 0).await.unwrap(), 0);
    assert_eq!(s.expire(101, 0).await.unwrap(), 1);
    assert_eq!(queued(&s, a, 1).await, 1);
    assert_eq!(s.queue_total(), 1);
    let t = s.expired(a, 1, 10).await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].source_account.clone(), t[0].source_device, t[0].client_timestamp),
        (vec![1; 16], 1, 7)
    );
    // Kept until the device acknowledges the notice...
    assert_eq!(s.expired(a, 1, 10).await.unwrap(), t, "told again until acknowledged");
    s.ack_expired(a, 1, &[t[0].id]).await.unwrap();
    assert!(s.expired(a, 1, 10).await.unwrap().is_empty());
    // ...or until it is older than the queue lifetime (a device that never comes back).
    s.enqueue(vec![insert(a, 1, 9)], 200, ROOMY).await.unwrap();
    assert_eq!(s.expire(300, 0).await.unwrap(), 1);
    assert_eq!(s.expired(a, 1, 10).await.unwrap().len(), 1);
    s.expire(400, 301).await.unwrap();
    assert!(s.expired(a, 1, 10).await.unwrap().is_empty(), "old tombstones are dropped");
}

#[tokio::test]
async fn test_queue_limits_refuse_the_heaviest_sender_and_whole_sends() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let (a, b) = (AccountId([2; 16]), AccountId([3; 16]));
    s.create_account(a, "bob", device_row(2), 1).await.unwrap();
    s.create_account(b, "carol", device_row(3), 1).await.unwrap();
    let limits = QueueLimits {
        max_len: 6,
        max_bytes: 10_000,
        max_len_per_sender: 3,
        max_bytes_per_sender: 10_000,
    };
    let from = |sender: u8, to: AccountId, ts| QueueInsert {
        account_id: to,
        device_id: 1,
        sender: AccountId([sender; 16]),
        envelope: envelope(ts),
    };
    for ts in 0..3 {
        s.enqueue(vec![from(9, a, ts)], u64::MAX / 2, limits).await.unwrap();
    }
    // The flooder is refused; others are not.
    assert!(matches!(
        s.enqueue(vec![from(9, a, 3)], u64::MAX / 2, limits).await,
        Err(StorageError::QueueFull { sender_over: true })
    ));
    s.enqueue(vec![from(8, a, 4)], u64::MAX / 2, limits).await.unwrap();
    // A send to two queues, one of them full: nothing of it is stored.
    for ts in 5..7 {
        s.enqueue(vec![from(7, a, ts)], u64::MAX / 2, limits).await.unwrap();
    }
    assert_eq!(queued(&s, a, 1).await, 6);
    assert!(matches!(
        s.enqueue(vec![from(6, b, 7), from(6, a, 7)], u64::MAX / 2, limits).await,
        Err(StorageError::QueueFull { sender_over: false })
    ));
    assert_eq!(queued(&s, b, 1).await, 0, "all or nothing");
    // Acknowledgements make room, for that sender too.
    let ids: Vec<u64> = s.fetch_queue(a, 1, 0, 10).await.unwrap().iter().map(|(i, _)| *i).collect();
    s.ack(a, 1, ids[..2].to_vec()).await.unwrap();
    s.enqueue(vec![from(9, a, 8)], u64::MAX / 2, limits).await.unwrap();
    // The counts survive a restart (read back from the table).
    s.close().await;
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    s.enqueue(vec![from(9, a, 9)], u64::MAX / 2, limits).await.unwrap();
    assert!(matches!(
        s.enqueue(vec![from(9, a, 10)], u64::MAX / 2, limits).await,
        Err(StorageError::QueueFull { sender_over: true })
    ));
    // Bytes count too.
    let bytes = QueueLimits { max_bytes_per_sender: 10, ..ROOMY };
    assert!(matches!(
        s.enqueue(vec![from(5, b, 1)], u64::MAX / 2, bytes).await,
        Err(StorageError::QueueFull { sender_over: true })
    ));
}

#[tokio::test]
async fn test_group_states_chain_and_membership() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let (a, b, c) = (AccountId([1; 16]), AccountId([2; 16]), AccountId([3; 16]));
    for (id, h) in [(a, "ana"), (b, "ben"), (c, "cy")] {
        s.create_account(id, h, device_row(id.0[0]), 1).await.unwrap();
    }
    let g = [9; 16];
    s.create_group(g, a, &[a, b], b"v1", 1, 2).await.unwrap();
    assert!(matches!(s.create_group(g, a, &[a], b"x", 1, 5).await, Err(StorageError::Conflict)));
    let members = s.group_members(g).await.unwrap();
    assert_eq!(
        members,
        vec![
            MemberRow { account_id: a, accepted: true },
            MemberRow { account_id: b, accepted: false }
        ]
    );
    assert!(s.accept_group(g, b, true).await.unwrap());
    assert!(!s.accept_group(g, c, true).await.unwrap(), "not a member");
    // The next version: b stays accepted, c is invited.
    s.update_group(g, 1, b"v2", &[a, b, c]).await.unwrap();
    assert!(matches!(s.update_group(g, 1, b"fork", &[a]).await, Err(StorageError::Conflict)));
    let members = s.group_members(g).await.unwrap();
    assert_eq!(members.iter().map(|m| m.accepted).collect::<Vec<_>>(), [true, true, false]);
    assert_eq!(s.group(g).await.unwrap(), Some(GroupRow { version: 2, state: b"v2".to_vec() }));
    assert_eq!(s.group_states(g, 0, 10).await.unwrap(), vec![b"v1".to_vec(), b"v2".to_vec()]);
    assert_eq!(s.group_states(g, 1, 10).await.unwrap(), vec![b"v2".to_vec()]);
    // Creations are capped per account.
    s.create_group([8; 16], a, &[a], b"w", 1, 2).await.unwrap();
    assert!(matches!(
        s.create_group([7; 16], a, &[a], b"w", 1, 2).await,
        Err(StorageError::LimitReached)
    ));
}

#[tokio::test]
async fn test_link_tokens_are_capped_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let a = AccountId([3; 16]);
    s.create_account(a, "carol", device_row(3), 1).await.unwrap();
    for t in 0..3u8 {
        s.create_link_token(a, [t; 32], 10, 1000, 3).await.unwrap();
    }
    assert!(matches!(
        s.create_link_token(a, [9; 32], 10, 1000, 3).await,
        Err(StorageError::LimitReached)
    ));
    // Expired ones do not count.
    s.create_link_token(a, [9; 32], 1000, 2000, 3).await.unwrap();
}

#[tokio::test]
async fn test_link_tokens_are_single_use_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("t.sqlite")).await.unwrap();
    let a = AccountId([3; 16]);
    s.create_account(a, "carol", device_row(3), 1).await.unwrap();
    s.create_link_token(a, [9; 32], 1, 1000, 20).await.unwrap();
    assert!(matches!(
        s.register_device(a, [9; 32], device_row(4), 2000, 4).await,
        Err(StorageError::InvalidToken)
    ));
    s.create_link_token(a, [8; 32], 1, 1000, 20).await.unwrap();
    assert_eq!(s.register_device(a, [8; 32], device_row(4), 500, 4).await.unwrap(), 2);
    assert!(matches!(
        s.register_device(a, [8; 32], device_row(5), 500, 4).await,
        Err(StorageError::InvalidToken)
    ));
    // The same device repeating its registration (its answer was lost) hears its id again,
    // and no second device appears; another identity does not.
    assert_eq!(s.register_device(a, [8; 32], device_row(4), 600, 4).await.unwrap(), 2);
    assert!(matches!(
        s.register_device(a, [8; 32], device_row(6), 600, 4).await,
        Err(StorageError::InvalidToken)
    ));
    assert_eq!(s.devices(a).await.unwrap().len(), 2);
    // Not after the token expired, and not once the device was removed.
    assert!(matches!(
        s.register_device(a, [8; 32], device_row(4), 1000, 4).await,
        Err(StorageError::InvalidToken)
    ));
    s.create_link_token(a, [7; 32], 1, 5000, 20).await.unwrap();
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
    storage.create_link_token(a, [7; 32], 1, 1000, 20).await.unwrap();
    assert_eq!(storage.register_device(a, [7; 32], device_row(3), 1, 4).await.unwrap(), 2);
    let ids = storage
        .enqueue(vec![insert(a, 1, 1), insert(a, 2, 2), insert(b, 1, 3)], u64::MAX, ROOMY)
        .await
        .unwrap();
    // Another account's device, and another device of the same account, delete nothing.
    storage.ack(b, 1, vec![ids[0]]).await.unwrap();
    storage.ack(a, 2, vec![ids[0]]).await.unwrap();
    assert_eq!(storage.queue_total(), 3);
    storage.ack(a, 1, vec![ids[0], 999]).await.unwrap();
    storage.ack(b, 1, vec![ids[2]]).await.unwrap();
    assert_eq!(storage.queue_total(), 1);
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
    storage.create_link_token(a, [6; 32], 1, 1000, 20).await.unwrap();
    let gone = storage.register_device(a, [6; 32], device_row(6), 1, 4).await.unwrap();
    storage.enqueue(vec![insert(a, gone, 1)], u64::MAX / 2, ROOMY).await.unwrap();
    assert!(storage.remove_device(a, gone).await.unwrap());
    assert_eq!(queued(&storage, a, gone).await, 0, "removal empties the queue");
    // A send that was checked against the old device list commits after the removal.
    storage.enqueue(vec![insert(a, 1, 2), insert(a, gone, 2)], u64::MAX / 2, ROOMY).await.unwrap();
    assert_eq!(queued(&storage, a, gone).await, 0, "nothing left for a removed device");
    assert_eq!(queued(&storage, a, 1).await, 1, "the rest of the batch is kept");
    assert_eq!(storage.queue_total(), 1);
    storage.close().await;
}

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

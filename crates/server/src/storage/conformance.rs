//! The checks every [`Storage`] backend must pass, written against the trait alone.
//!
//! A backend runs them with [`storage_conformance!`] in its tests, giving a [`Backend`] that
//! opens a fresh store and reopens it (durability is part of the contract: a copy the relay
//! acknowledged survives a restart, and ids never go back).

use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use tandem_core::AccountId;
use tandem_core::wire::relay::Envelope;

use super::{
    Committed, GroupRow, MemberRow, NewDeviceRow, PreKeyCountsRow, PreKeyRow, PreKeyUpload,
    QueueInsert, QueueLimits, Storage, StorageError,
};

/// A backend under test.
pub(crate) trait Backend {
    /// The store it opens.
    type Store: Storage;
    /// Where one store lives between opens (a directory, a database); dropping it cleans up.
    type Place: Send + Sync;
    /// A new, empty place.
    fn place() -> Self::Place;
    /// Opens (or reopens) the store at `place`.
    fn open(place: &Self::Place) -> impl Future<Output = Self::Store> + Send;
}

/// Expands to one `#[tokio::test]` per conformance check for the [`Backend`] `$backend`.
macro_rules! storage_conformance {
    ($backend:ty) => {
        $crate::storage::conformance::storage_conformance!(@tests $backend;
            test_survives_reopen, test_accounts_devices_and_lists, test_reset_keeps_only_the_new_primary,
            test_prekeys_are_taken_once_and_capped, test_expiry_leaves_tombstones,
            test_queue_limits_refuse_the_heaviest_sender, test_group_states_chain_and_membership,
            test_link_tokens_are_capped, test_link_tokens_are_single_use,
            test_ack_deletes_only_own_copies, test_nothing_is_queued_for_a_removed_device,
            test_commits_are_told_in_order);
    };
    (@tests $backend:ty; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::storage::conformance::$check::<$backend>().await;
            }
        )*
    };
}
pub(crate) use storage_conformance;

fn device_row(key: u8) -> NewDeviceRow {
    NewDeviceRow {
        registration_id: u32::from(key),
        identity_key: vec![key; 33],
        adv_identity: vec![],
        name: "d".into(),
        platform: "p".into(),
    }
}

/// Roomy limits: for checks that are not about them.
const ROOMY: QueueLimits = QueueLimits {
    max_len: 1_000_000,
    max_bytes: u64::MAX / 4,
    max_len_per_sender: 1_000_000,
    max_bytes_per_sender: u64::MAX / 4,
};

const SENDER: AccountId = AccountId([1; 16]);
const LATER: u64 = u64::MAX / 2;

fn insert(account_id: AccountId, device_id: u32, ts: u64) -> QueueInsert {
    QueueInsert { account_id, device_id, sender: SENDER, envelope: envelope(ts) }
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

async fn queued<S: Storage>(s: &S, a: AccountId, d: u32) -> Vec<u64> {
    s.fetch_queue(a, d, 0, 1_000_000).await.unwrap().into_iter().map(|(id, _)| id).collect()
}

fn key(key_id: u32, signed: bool) -> PreKeyRow {
    PreKeyRow {
        key_id,
        public_key: vec![u8::try_from(key_id % 256).unwrap_or(0); 33],
        signature: if signed { vec![7; 64] } else { Vec::new() },
    }
}

/// The instance id and queued copies survive a reopen; ids never go back, even after the
/// highest was deleted; the queue total is counted again at start.
pub(crate) async fn test_survives_reopen<B: Backend>() {
    let place = B::place();
    let a = AccountId([1; 16]);
    let first = B::open(&place).await;
    first.ping().await.unwrap();
    let id = first.instance_id().await.unwrap();
    assert!(!id.is_empty());
    first.create_account(a, "alice", device_row(1), 1).await.unwrap();
    let ids = first.enqueue((0..5).map(|i| insert(a, 1, i)).collect(), LATER, ROOMY).await.unwrap();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "ids grow in order: {ids:?}");
    first.ack(a, 1, vec![ids[4]]).await.unwrap();
    first.close().await;
    let second = B::open(&place).await;
    assert_eq!(second.instance_id().await.unwrap(), id);
    let rows = second.fetch_queue(a, 1, 0, 100).await.unwrap();
    assert_eq!(rows.iter().map(|(i, _)| *i).collect::<Vec<_>>(), ids[..4]);
    assert_eq!(rows[0].1, envelope(0), "envelopes are kept byte for byte");
    assert_eq!(second.fetch_queue(a, 1, ids[1], 2).await.unwrap().len(), 2, "after and limit");
    let more = second.enqueue(vec![insert(a, 1, 9)], LATER, ROOMY).await.unwrap();
    assert!(more[0] > ids[4]);
    assert_eq!(queued(&second, a, 1).await.len(), 5);
    assert_eq!(second.queue_total(), 5, "the total is counted at start and kept");
    assert!(second.account(a).await.unwrap().is_some());
    second.close().await;
}

/// Accounts by id and handle, unique handles, devices primary first, renames, last use,
/// and device lists whose version must grow.
pub(crate) async fn test_accounts_devices_and_lists<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let a = AccountId([1; 16]);
    assert_eq!(s.account(a).await.unwrap(), None);
    s.create_account(a, "alice", device_row(1), 100).await.unwrap();
    assert!(matches!(
        s.create_account(AccountId([2; 16]), "alice", device_row(2), 1).await,
        Err(StorageError::Conflict)
    ));
    assert!(matches!(
        s.create_account(a, "other", device_row(2), 1).await,
        Err(StorageError::Conflict)
    ));
    let row = s.account(a).await.unwrap().unwrap();
    assert_eq!((row.id, row.handle.as_str(), row.identity_key.clone()), (a, "alice", vec![1; 33]));
    assert_eq!((row.signed_device_list.len(), row.device_list_version), (0, 0));
    assert_eq!(s.account_by_handle("alice").await.unwrap(), Some(row));
    assert_eq!(s.account_by_handle("bob").await.unwrap(), None);
    s.create_link_token(a, [3; 32], 100, 1000, 20).await.unwrap();
    assert_eq!(s.register_device(a, [3; 32], device_row(3), 200, 4).await.unwrap(), 2);
    let devices = s.devices(a).await.unwrap();
    assert_eq!(devices.iter().map(|d| d.device_id).collect::<Vec<_>>(), [1, 2], "primary first");
    assert_eq!((devices[1].created_at, devices[1].last_seen), (200, 200));
    assert_eq!(devices[1].identity_key, vec![3; 33]);
    s.rename_device(a, 2, "laptop").await.unwrap();
    s.touch_device(a, 2, 900).await.unwrap();
    let d = s.device(a, 2).await.unwrap().unwrap();
    assert_eq!((d.name.as_str(), d.last_seen, d.created_at), ("laptop", 900, 200));
    assert_eq!(s.device(a, 3).await.unwrap(), None);
    s.set_device_list(a, b"v2", 2).await.unwrap();
    for stale in [2, 1] {
        assert!(matches!(
            s.set_device_list(a, b"old", stale).await,
            Err(StorageError::StaleVersion)
        ));
    }
    let row = s.account(a).await.unwrap().unwrap();
    assert_eq!((row.signed_device_list, row.device_list_version), (b"v2".to_vec(), 2));
    assert!(s.remove_device(a, 2).await.unwrap());
    assert!(!s.remove_device(a, 2).await.unwrap(), "nothing left to remove");
    assert_eq!(s.devices(a).await.unwrap().len(), 1);
    // A companion cap: a fifth companion is refused.
    for t in 10..14u8 {
        s.create_link_token(a, [t; 32], 100, 1000, 20).await.unwrap();
        s.register_device(a, [t; 32], device_row(t), 300, 4).await.unwrap();
    }
    s.create_link_token(a, [20; 32], 100, 1000, 20).await.unwrap();
    assert!(matches!(
        s.register_device(a, [20; 32], device_row(20), 300, 4).await,
        Err(StorageError::LimitReached)
    ));
    s.close().await;
}

/// A reset keeps the primary under its new identity and drops everything else.
pub(crate) async fn test_reset_keeps_only_the_new_primary<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let (a, b) = (AccountId([1; 16]), AccountId([2; 16]));
    s.create_account(a, "alice", device_row(1), 1).await.unwrap();
    s.create_account(b, "bob", device_row(2), 1).await.unwrap();
    s.create_link_token(a, [3; 32], 1, 1000, 20).await.unwrap();
    let companion = s.register_device(a, [3; 32], device_row(3), 1, 4).await.unwrap();
    s.create_link_token(a, [4; 32], 1, 1000, 20).await.unwrap();
    s.set_device_list(a, b"list", 3).await.unwrap();
    let upload = PreKeyUpload {
        signed: Some(key(1, true)),
        one_time: vec![key(2, false)],
        ..PreKeyUpload::default()
    };
    s.upload_prekeys(a, 1, upload.clone(), 100).await.unwrap();
    s.upload_prekeys(b, 1, upload, 100).await.unwrap();
    s.enqueue(vec![insert(a, 1, 1), insert(a, companion, 1), insert(b, 1, 1)], LATER, ROOMY)
        .await
        .unwrap();
    let mut primary = device_row(9);
    primary.adv_identity = vec![5; 10];
    assert_eq!(s.reset_account(a, primary).await.unwrap(), vec![companion]);
    let row = s.account(a).await.unwrap().unwrap();
    assert_eq!((row.identity_key, row.device_list_version), (vec![9; 33], 0));
    assert!(row.signed_device_list.is_empty());
    let devices = s.devices(a).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!((devices[0].registration_id, devices[0].identity_key.clone()), (9, vec![9; 33]));
    assert_eq!(s.prekey_counts(a, 1).await.unwrap(), PreKeyCountsRow::default());
    assert!(queued(&s, a, 1).await.is_empty() && queued(&s, a, companion).await.is_empty());
    assert!(matches!(
        s.register_device(a, [4; 32], device_row(4), 2, 4).await,
        Err(StorageError::InvalidToken)
    ));
    // Another account keeps everything.
    assert_eq!(queued(&s, b, 1).await.len(), 1);
    assert_eq!(s.queue_total(), 1);
    assert_eq!(s.prekey_counts(b, 1).await.unwrap().one_time, 1);
    assert!(matches!(
        s.reset_account(AccountId([7; 16]), device_row(7)).await,
        Err(StorageError::NotFound)
    ));
    s.close().await;
}

/// One-time keys are handed out once, oldest id first; Kyber falls back to the last-resort
/// key (which stays); uploads beyond the cap are refused whole.
pub(crate) async fn test_prekeys_are_taken_once_and_capped<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let a = AccountId([1; 16]);
    s.create_account(a, "alice", device_row(1), 1).await.unwrap();
    s.create_link_token(a, [3; 32], 1, 1000, 20).await.unwrap();
    let companion = s.register_device(a, [3; 32], device_row(3), 1, 4).await.unwrap();
    assert_eq!(s.prekey_counts(a, 1).await.unwrap(), PreKeyCountsRow::default());
    let upload = PreKeyUpload {
        signed: Some(key(1, true)),
        one_time: vec![key(11, false), key(10, false)],
        kyber: vec![key(20, true)],
        last_resort: Some(key(30, true)),
    };
    s.upload_prekeys(a, 1, upload, 3).await.unwrap();
    let counts = s.prekey_counts(a, 1).await.unwrap();
    assert_eq!(
        counts,
        PreKeyCountsRow { one_time: 2, kyber: 1, has_signed: true, has_last_resort: true }
    );
    // Over the cap: refused, and nothing of it is kept.
    let big = PreKeyUpload { one_time: vec![key(12, false), key(13, false)], ..Default::default() };
    assert!(matches!(s.upload_prekeys(a, 1, big, 3).await, Err(StorageError::LimitReached)));
    assert_eq!(s.prekey_counts(a, 1).await.unwrap(), counts);
    let take = |s: &B::Store| {
        let s = s.clone();
        async move { s.take_bundles(a, &[1]).await.unwrap().remove(0) }
    };
    let first = take(&s).await;
    assert_eq!(
        (first.device_id, first.registration_id, first.identity_key.clone()),
        (1, 1, vec![1; 33])
    );
    assert_eq!(first.signed, Some(key(1, true)));
    assert_eq!(first.one_time, Some(key(10, false)));
    assert_eq!(first.kyber, Some(key(20, true)));
    let second = take(&s).await;
    assert_eq!((second.one_time, second.kyber), (Some(key(11, false)), Some(key(30, true))));
    let third = take(&s).await;
    assert_eq!((third.one_time, third.kyber), (None, Some(key(30, true))), "last resort stays");
    // All devices when none are named; a device without keys has an empty bundle.
    let all = s.take_bundles(a, &[]).await.unwrap();
    assert_eq!(all.iter().map(|b| b.device_id).collect::<Vec<_>>(), [1, companion]);
    assert_eq!((all[1].signed.clone(), all[1].one_time.clone()), (None, None));
    // A new signed prekey and last-resort key replace the old ones.
    let renew = PreKeyUpload {
        signed: Some(key(2, true)),
        last_resort: Some(key(31, true)),
        ..PreKeyUpload::default()
    };
    s.upload_prekeys(a, 1, renew, 3).await.unwrap();
    let b = take(&s).await;
    assert_eq!((b.signed, b.kyber), (Some(key(2, true)), Some(key(31, true))));
    s.close().await;
}

/// Expired copies become tombstones, kept until acknowledged or too old.
pub(crate) async fn test_expiry_leaves_tombstones<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let a = AccountId([2; 16]);
    s.create_account(a, "bob", device_row(2), 1).await.unwrap();
    s.enqueue(vec![insert(a, 1, 7)], 100, ROOMY).await.unwrap();
    s.enqueue(vec![insert(a, 1, 8)], 10_000, ROOMY).await.unwrap();
    assert_eq!(s.expire(50, 0).await.unwrap(), 0);
    assert_eq!(s.expire(101, 0).await.unwrap(), 1);
    assert_eq!(queued(&s, a, 1).await.len(), 1);
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
    s.close().await;
}

/// The sender over its share of a queue is refused, others are not; a send touching a full
/// queue stores nothing; the counts survive a reopen.
pub(crate) async fn test_queue_limits_refuse_the_heaviest_sender<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
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
        s.enqueue(vec![from(9, a, ts)], LATER, limits).await.unwrap();
    }
    assert!(matches!(
        s.enqueue(vec![from(9, a, 3)], LATER, limits).await,
        Err(StorageError::QueueFull { sender_over: true })
    ));
    s.enqueue(vec![from(8, a, 4)], LATER, limits).await.unwrap();
    for ts in 5..7 {
        s.enqueue(vec![from(7, a, ts)], LATER, limits).await.unwrap();
    }
    assert_eq!(queued(&s, a, 1).await.len(), 6);
    assert!(matches!(
        s.enqueue(vec![from(6, b, 7), from(6, a, 7)], LATER, limits).await,
        Err(StorageError::QueueFull { sender_over: false })
    ));
    assert!(queued(&s, b, 1).await.is_empty(), "all or nothing");
    // Acknowledgements make room, for that sender too.
    let ids = queued(&s, a, 1).await;
    s.ack(a, 1, ids[..2].to_vec()).await.unwrap();
    s.enqueue(vec![from(9, a, 8)], LATER, limits).await.unwrap();
    s.close().await;
    let s = B::open(&place).await;
    s.enqueue(vec![from(9, a, 9)], LATER, limits).await.unwrap();
    assert!(matches!(
        s.enqueue(vec![from(9, a, 10)], LATER, limits).await,
        Err(StorageError::QueueFull { sender_over: true })
    ));
    // Bytes count too.
    let bytes = QueueLimits { max_bytes_per_sender: 10, ..ROOMY };
    assert!(matches!(
        s.enqueue(vec![from(5, b, 1)], LATER, bytes).await,
        Err(StorageError::QueueFull { sender_over: true })
    ));
    s.close().await;
}

/// Group states chain by version; members keep their acceptance; creations are capped.
pub(crate) async fn test_group_states_chain_and_membership<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let (a, b, c) = (AccountId([1; 16]), AccountId([2; 16]), AccountId([3; 16]));
    for (id, h) in [(a, "ana"), (b, "ben"), (c, "cy")] {
        s.create_account(id, h, device_row(id.0[0]), 1).await.unwrap();
    }
    let g = [9; 16];
    assert_eq!(s.group(g).await.unwrap(), None);
    s.create_group(g, a, &[a, b], b"v1", 1, 2).await.unwrap();
    assert!(matches!(s.create_group(g, a, &[a], b"x", 1, 5).await, Err(StorageError::Conflict)));
    assert_eq!(
        s.group_members(g).await.unwrap(),
        vec![
            MemberRow { account_id: a, accepted: true },
            MemberRow { account_id: b, accepted: false }
        ]
    );
    assert!(s.accept_group(g, b, true).await.unwrap());
    assert!(!s.accept_group(g, c, true).await.unwrap(), "not a member");
    s.update_group(g, 1, b"v2", &[a, b, c]).await.unwrap();
    assert!(matches!(s.update_group(g, 1, b"fork", &[a]).await, Err(StorageError::Conflict)));
    let members = s.group_members(g).await.unwrap();
    assert_eq!(members.iter().map(|m| m.accepted).collect::<Vec<_>>(), [true, true, false]);
    assert_eq!(s.group(g).await.unwrap(), Some(GroupRow { version: 2, state: b"v2".to_vec() }));
    assert_eq!(s.group_states(g, 0, 10).await.unwrap(), vec![b"v1".to_vec(), b"v2".to_vec()]);
    assert_eq!(s.group_states(g, 1, 10).await.unwrap(), vec![b"v2".to_vec()]);
    assert_eq!(s.group_states(g, 0, 1).await.unwrap(), vec![b"v1".to_vec()], "limit");
    assert!(s.accept_group(g, b, false).await.unwrap());
    assert!(!s.group_members(g).await.unwrap()[1].accepted, "declined");
    s.create_group([8; 16], a, &[a], b"w", 1, 2).await.unwrap();
    assert!(matches!(
        s.create_group([7; 16], a, &[a], b"w", 1, 2).await,
        Err(StorageError::LimitReached)
    ));
    s.close().await;
}

/// Open link tokens are capped per account; expired ones do not count.
pub(crate) async fn test_link_tokens_are_capped<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let a = AccountId([3; 16]);
    s.create_account(a, "carol", device_row(3), 1).await.unwrap();
    for t in 0..3u8 {
        s.create_link_token(a, [t; 32], 10, 1000, 3).await.unwrap();
    }
    assert!(matches!(
        s.create_link_token(a, [9; 32], 10, 1000, 3).await,
        Err(StorageError::LimitReached)
    ));
    s.create_link_token(a, [9; 32], 1000, 2000, 3).await.unwrap();
    s.close().await;
}

/// A link token registers one device, once, before it expires; the same device repeating
/// its registration hears its id again.
pub(crate) async fn test_link_tokens_are_single_use<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let a = AccountId([3; 16]);
    s.create_account(a, "carol", device_row(3), 1).await.unwrap();
    s.create_link_token(a, [9; 32], 1, 1000, 20).await.unwrap();
    assert!(matches!(
        s.register_device(a, [9; 32], device_row(4), 2000, 4).await,
        Err(StorageError::InvalidToken)
    ));
    assert!(matches!(
        s.register_device(a, [1; 32], device_row(4), 2, 4).await,
        Err(StorageError::InvalidToken)
    ));
    s.create_link_token(a, [8; 32], 1, 1000, 20).await.unwrap();
    assert_eq!(s.register_device(a, [8; 32], device_row(4), 500, 4).await.unwrap(), 2);
    assert!(matches!(
        s.register_device(a, [8; 32], device_row(5), 500, 4).await,
        Err(StorageError::InvalidToken)
    ));
    assert_eq!(s.register_device(a, [8; 32], device_row(4), 600, 4).await.unwrap(), 2);
    assert_eq!(s.devices(a).await.unwrap().len(), 2);
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
    s.close().await;
}

/// An acknowledgement deletes only the acknowledging device's copies; `ack_later` is
/// applied before any write awaited after it.
pub(crate) async fn test_ack_deletes_only_own_copies<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let (a, b) = (AccountId([1; 16]), AccountId([2; 16]));
    s.create_account(a, "alice", device_row(1), 1).await.unwrap();
    s.create_account(b, "bob", device_row(2), 1).await.unwrap();
    s.create_link_token(a, [7; 32], 1, 1000, 20).await.unwrap();
    assert_eq!(s.register_device(a, [7; 32], device_row(3), 1, 4).await.unwrap(), 2);
    let ids = s
        .enqueue(vec![insert(a, 1, 1), insert(a, 2, 2), insert(b, 1, 3)], u64::MAX, ROOMY)
        .await
        .unwrap();
    s.ack(b, 1, vec![ids[0]]).await.unwrap();
    s.ack(a, 2, vec![ids[0]]).await.unwrap();
    assert_eq!(s.queue_total(), 3);
    s.ack(a, 1, vec![ids[0], 999]).await.unwrap();
    s.ack_later(b, 1, vec![ids[2]]).unwrap();
    s.ack(a, 1, vec![]).await.unwrap();
    assert!(queued(&s, b, 1).await.is_empty(), "ack_later applied");
    assert_eq!(s.queue_total(), 1);
    let left = s.fetch_queue(a, 2, 0, 10).await.unwrap();
    assert_eq!(left, vec![(ids[1], envelope(2))]);
    let stats = s.write_stats();
    assert_eq!((stats.inserted, stats.deleted), (3, 2));
    s.close().await;
}

/// A removed device's queue is emptied, and a send that commits after the removal stores
/// nothing for it (the rest of the send is kept).
pub(crate) async fn test_nothing_is_queued_for_a_removed_device<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let a = AccountId([5; 16]);
    s.create_account(a, "erin", device_row(5), 1).await.unwrap();
    s.create_link_token(a, [6; 32], 1, 1000, 20).await.unwrap();
    let gone = s.register_device(a, [6; 32], device_row(6), 1, 4).await.unwrap();
    s.enqueue(vec![insert(a, gone, 1)], LATER, ROOMY).await.unwrap();
    assert!(s.remove_device(a, gone).await.unwrap());
    assert!(queued(&s, a, gone).await.is_empty(), "removal empties the queue");
    s.enqueue(vec![insert(a, 1, 2), insert(a, gone, 2)], LATER, ROOMY).await.unwrap();
    assert!(queued(&s, a, gone).await.is_empty(), "nothing left for a removed device");
    assert_eq!(queued(&s, a, 1).await.len(), 1, "the rest of the batch is kept");
    assert_eq!(s.queue_total(), 1);
    s.close().await;
}

/// The commit listener hears every stored copy once, before the send is answered, in
/// increasing id order per device.
pub(crate) async fn test_commits_are_told_in_order<B: Backend>() {
    let place = B::place();
    let s = B::open(&place).await;
    let listened: Arc<Mutex<Vec<Committed>>> = Arc::default();
    let sink = Arc::clone(&listened);
    s.set_commit_listener(Arc::new(move |c| sink.lock().unwrap().extend(c)));
    let (a, b) = (AccountId([1; 16]), AccountId([2; 16]));
    s.create_account(a, "alice", device_row(1), 1).await.unwrap();
    s.create_account(b, "bob", device_row(2), 1).await.unwrap();
    let sends = (0..20u64).map(|i| {
        let s = s.clone();
        async move { s.enqueue(vec![insert(a, 1, i), insert(b, 1, i)], LATER, ROOMY).await.unwrap() }
    });
    let answered: Vec<u64> = futures_util::future::join_all(sends).await.concat();
    let heard = listened.lock().unwrap().clone();
    assert_eq!(heard.len(), 40);
    let mut told: Vec<u64> = heard.iter().map(|c| c.2).collect();
    told.sort_unstable();
    let mut answered = answered;
    answered.sort_unstable();
    assert_eq!(told, answered, "each stored copy is told once");
    for account in [a, b] {
        let ids: Vec<u64> = heard.iter().filter(|c| c.0 == account).map(|c| c.2).collect();
        assert!(ids.windows(2).all(|w| w[1] > w[0]), "in order per device: {ids:?}");
    }
    assert!(heard.iter().all(|c| c.1 == 1 && !c.3.is_empty()));
    // Told before the send is answered.
    let last = s.enqueue(vec![insert(b, 1, 99)], LATER, ROOMY).await.unwrap();
    assert_eq!(listened.lock().unwrap().last().map(|c| c.2), last.first().copied());
    s.close().await;
}

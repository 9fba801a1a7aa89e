//! The store conformance suite (feature `testing`): what every [`ClientStore`] must do — the
//! protocol half from `tandem_signal::testing::conformance` (re-exported here), and the
//! messenger's records. [`store_conformance_tests!`](crate::store_conformance_tests) turns the
//! whole suite into tests, e.g. natively `store_conformance_tests!(tokio::test, make_memory_store);`
//! or in a browser `store_conformance_tests!(wasm_bindgen_test, make_indexeddb_store);`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;

use tandem_signal::testing::SeededRng;
pub use tandem_signal::testing::conformance::*;
use tandem_signal::{AccountId, DeviceId, IdentityKeyPair, Timestamp};

use crate::group_state::{GroupMember, GroupState, SignedGroupState};
use crate::records::{
    AccountRecord, Conversation, DeviceListRecord, GroupRecord, MessageId, MessageRecord, Notice,
    OutboxEntry, OutgoingState,
};
use crate::store::{ClientChanges, ClientStore};

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

fn account_record(identity: &IdentityKeyPair) -> AccountRecord {
    let mut a = AccountRecord::new(
        AccountId([4; 16]),
        DeviceId::new(2).unwrap(),
        "alice",
        *identity.identity_key(),
        NOW,
    );
    a.signed_pre_key_id = 1;
    a.adv_identity = vec![1, 2, 3];
    a.key_index = 3;
    a.linked.insert(DeviceId::new(3).unwrap(), 2);
    a.revoked.insert(1);
    a
}

fn message(sender: AccountId, timestamp: u64, conversation: Conversation) -> MessageRecord {
    MessageRecord {
        id: MessageId { sender, device: DeviceId::PRIMARY, timestamp },
        conversation,
        body: format!("message {timestamp}"),
        outgoing: false,
        state: OutgoingState::Sent,
        stored_at: NOW,
        delivered_to: Default::default(),
        read_by: Default::default(),
        server_time: Some(NOW),
        notice: None,
        local_id: None,
        quote: None,
        audience: 0,
    }
}

/// The engine's records: the account, device lists, messages per conversation (newest
/// `limit`, oldest first, replaced by id), and the outbox (oldest first, replaced, removed) —
/// each saved atomically with protocol state.
pub async fn client_records<S: ClientStore, F, Fut>(make: F)
where
    F: Fn(IdentityKeyPair, u32) -> Fut,
    Fut: Future<Output = S>,
{
    let identity = IdentityKeyPair::generate(&mut SeededRng::new(10));
    let store = make(identity.clone(), 1010).await;
    assert!(store.load_account().await.unwrap().is_none());
    let mut account = account_record(&identity);
    let mut changes = ClientChanges { account: Some(account.clone()), ..ClientChanges::default() };
    let bob = AccountId([5; 16]);
    let carol = AccountId([6; 16]);
    changes.device_lists.insert(
        bob,
        DeviceListRecord {
            account_id: bob,
            account_key: *identity.identity_key(),
            list_version: Some(3),
            list_digest: Some([1; 32]),
            list_expired: false,
            devices: Vec::new(),
            rejected: Vec::new(),
            fetched_at: NOW,
            stale: false,
            verified: true,
            key_changed: false,
            pending_key: Some(*identity.identity_key()),
            revoked: vec![2, 5],
            key_changed_at: Some(NOW),
        },
    );
    store.save_client_changes(changes).await.unwrap();
    assert_eq!(store.load_account().await.unwrap(), Some(account.clone()));
    let list = store.load_device_list(&bob).await.unwrap().unwrap();
    assert_eq!(list.list_version, Some(3));
    assert_eq!(list.revoked, [2, 5]);
    assert_eq!(list.key_changed_at, Some(NOW));
    assert!(store.load_device_list(&carol).await.unwrap().is_none());
    account.last_timestamp = 77;
    store
        .save_client_changes(ClientChanges {
            account: Some(account.clone()),
            ..ClientChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(store.load_account().await.unwrap().unwrap().last_timestamp, 77);

    // Messages: two conversations, saved out of order and in several batches.
    let with_bob = Conversation::Direct(bob);
    let with_carol = Conversation::Direct(carol);
    let group = Conversation::Group([8; 16]);
    for batch in [[5u64, 1, 9], [3, 7, 2]] {
        let mut changes = ClientChanges::default();
        for t in batch {
            let m = message(bob, t, with_bob);
            changes.messages.insert(m.id, m);
            let m = message(carol, t * 10, with_carol);
            changes.messages.insert(m.id, m);
        }
        store.save_client_changes(changes).await.unwrap();
    }
    let newest: Vec<u64> =
        store.load_messages(&with_bob, 4).await.unwrap().iter().map(|m| m.id.timestamp).collect();
    assert_eq!(newest, [3, 5, 7, 9]);
    // Pages of history before a message: only that conversation, only older, oldest first.
    let page = |m: Vec<MessageRecord>| m.iter().map(|m| m.id.timestamp).collect::<Vec<u64>>();
    let nine = message(bob, 9, with_bob).id;
    assert_eq!(page(store.load_messages_before(&with_bob, &nine, 2).await.unwrap()), [5, 7]);
    let three = message(bob, 3, with_bob).id;
    assert_eq!(page(store.load_messages_before(&with_bob, &three, 10).await.unwrap()), [1, 2]);
    let one = message(bob, 1, with_bob).id;
    assert!(store.load_messages_before(&with_bob, &one, 10).await.unwrap().is_empty());
    assert!(store.load_messages_before(&group, &nine, 10).await.unwrap().is_empty());
    let all = store.load_messages(&with_carol, 100).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.iter().all(|m| m.conversation == with_carol));
    assert!(store.load_messages(&group, 10).await.unwrap().is_empty());
    let mut read = message(bob, 7, with_bob);
    read.read_by.insert(account.account_id);
    store
        .save_client_changes(ClientChanges {
            messages: [(read.id, read.clone())].into(),
            ..ClientChanges::default()
        })
        .await
        .unwrap();
    assert_eq!(store.load_message(&read.id).await.unwrap(), Some(read.clone()));
    assert_eq!(store.load_messages(&with_bob, 100).await.unwrap().len(), 6);
    // A notice (no body), and a message removed (an unsent message stamped afresh).
    let mut gap = message(bob, 11, with_bob);
    gap.body.clear();
    gap.notice = Some(Notice::Expired);
    let gone = message(bob, 2, with_bob).id;
    let changes = ClientChanges {
        messages: [(gap.id, gap.clone())].into(),
        removed_messages: vec![gone],
        ..ClientChanges::default()
    };
    store.save_client_changes(changes).await.unwrap();
    assert_eq!(store.load_message(&gap.id).await.unwrap(), Some(gap));
    assert!(store.load_message(&gone).await.unwrap().is_none());
    assert_eq!(page(store.load_messages(&with_bob, 100).await.unwrap()), [1, 3, 5, 7, 9, 11]);

    // Groups: stored whole, replaced by id.
    let state = |version: u64| {
        let s = GroupState {
            group_id: [8; 16],
            version,
            previous: if version == 1 { [0; 32] } else { [u8::try_from(version).unwrap(); 32] },
            title: format!("group {version}"),
            members: vec![GroupMember { account_id: account.account_id, admin: true }],
            signer: account.account_id,
            signer_device: DeviceId::PRIMARY,
            timestamp: version,
        };
        SignedGroupState::sign(s, &identity, None, &mut SeededRng::new(version)).unwrap()
    };
    assert!(store.load_group(&[8; 16]).await.unwrap().is_none());
    for (version, accepted) in [(1, false), (2, true)] {
        let record = GroupRecord { state: state(version), accepted };
        let changes = ClientChanges {
            groups: [([8; 16], record.clone())].into(),
            ..ClientChanges::default()
        };
        store.save_client_changes(changes).await.unwrap();
        assert_eq!(store.load_group(&[8; 16]).await.unwrap(), Some(record));
    }
    assert!(store.load_group(&[9; 16]).await.unwrap().is_none());

    // Outbox.
    let entry = |t: u64| OutboxEntry {
        id: MessageId { sender: account.account_id, device: account.device_id, timestamp: t },
        conversation: with_bob,
        body: format!("out {t}"),
        attempts: 0,
        quote: None,
        without: [AccountId([5; 16])].into(),
    };
    let mut changes = ClientChanges::default();
    for t in [30u64, 10, 20] {
        changes.outbox.insert(entry(t).id, entry(t));
    }
    store.save_client_changes(changes).await.unwrap();
    let order: Vec<u64> =
        store.load_outbox().await.unwrap().iter().map(|e| e.id.timestamp).collect();
    assert_eq!(order, [10, 20, 30]);
    let mut retried = entry(20);
    retried.attempts = 2;
    let changes = ClientChanges {
        outbox: [(retried.id, retried.clone())].into(),
        removed_outbox: vec![entry(10).id],
        ..ClientChanges::default()
    };
    store.save_client_changes(changes).await.unwrap();
    assert_eq!(store.load_outbox().await.unwrap(), vec![retried, entry(30)]);

    // Handles: saved with a batch, the later one wins, an unknown account has none.
    let (ana, ben) = (AccountId([21; 16]), AccountId([22; 16]));
    assert_eq!(store.load_contact(&ana).await.unwrap(), None);
    let mut first = ClientChanges::default();
    first.contacts.insert(ana, "ana".into());
    first.contacts.insert(ben, "ben".into());
    store.save_client_changes(first).await.unwrap();
    let mut renamed = ClientChanges::default();
    renamed.contacts.insert(ana, "ana.b".into());
    store.save_client_changes(renamed).await.unwrap();
    assert_eq!(store.load_contact(&ana).await.unwrap().as_deref(), Some("ana.b"));
    assert_eq!(store.load_contact(&ben).await.unwrap().as_deref(), Some("ben"));
}

/// Runs the whole suite as tests. `$attr` is an async test attribute (`tokio::test`,
/// `wasm_bindgen_test`), `$make` a function `(IdentityKeyPair, u32) -> impl Future<Output = S>`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($attr:meta, $make:expr) => {
        $crate::protocol_store_conformance_tests!($attr, $make);
        #[$attr]
        async fn store_conformance_client_records() {
            $crate::testing::conformance::client_records($make).await
        }
    };
}

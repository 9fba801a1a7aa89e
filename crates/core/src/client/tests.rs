use super::*;
use crate::testing::SeededRng;
use tandem_signal::IdentityKeyPair;

fn record() -> AccountRecord {
    let mut rng = SeededRng::new(1);
    let key = *IdentityKeyPair::generate(&mut rng).identity_key();
    AccountRecord::new(AccountId([1; 16]), DeviceId::PRIMARY, "alice", key, Timestamp::EPOCH)
}

fn client() -> Client<crate::store::MemoryStore> {
    let mut rng = SeededRng::new(2);
    let store = crate::store::MemoryStore::new(IdentityKeyPair::generate(&mut rng), 7);
    Client::with_account(store, record())
}

async fn stamp(c: &Client<crate::store::MemoryStore>, now: u64) -> u64 {
    let mut a = c.lock().await;
    let t = c.next_timestamp(&mut a, Timestamp::from_millis(now)).await.unwrap();
    c.save(&a, ClientChanges::default()).await.unwrap();
    t
}

#[tokio::test]
async fn test_timestamps_only_grow() {
    let c = client();
    assert_eq!(stamp(&c, 1000).await, 1000);
    assert_eq!(stamp(&c, 1000).await, 1001);
    assert_eq!(stamp(&c, 500).await, 1002, "a clock going back a little does not repeat ids");
    assert_eq!(stamp(&c, 5000).await, 5000);
}

#[tokio::test]
async fn test_a_clock_that_was_days_ahead_does_not_date_later_messages_in_the_future() {
    let c = client();
    let day = 86_400_000;
    let real = 1_800_000_000_000;
    // One run with the clock three days ahead.
    let ahead = stamp(&c, real + 3 * day).await;
    assert_eq!(ahead, real + 3 * day);
    let id = |t| MessageId { sender: AccountId([1; 16]), device: DeviceId::PRIMARY, timestamp: t };
    // A message is stored under a time soon to come.
    let record = MessageRecord {
        id: id(real + 5),
        conversation: Conversation::Direct(AccountId([2; 16])),
        body: "x".into(),
        outgoing: true,
        state: OutgoingState::Sent,
        stored_at: Timestamp::EPOCH,
        delivered_to: Default::default(),
        read_by: Default::default(),
        server_time: None,
        notice: None,
        local_id: None,
        quote: None,
        audience: 0,
    };
    let changes =
        ClientChanges { messages: [(record.id, record)].into(), ..ClientChanges::default() };
    c.store().save_client_changes(changes).await.unwrap();
    // The clock is right again: timestamps follow it, not the future one...
    assert_eq!(stamp(&c, real).await, real);
    // ...skipping an id this device used already.
    assert_eq!(stamp(&c, real + 5).await, real + 6);
    // And the relay's clock corrects a device clock that is wrong now.
    c.set_clock_offset(-3 * day as i64).await;
    assert_eq!(stamp(&c, real + 3 * day + 100).await, real + 100);
    // An absurd offset is ignored.
    c.set_clock_offset(i64::MAX).await;
    assert_eq!(stamp(&c, real + 200).await, real + 200);
}

#[tokio::test]
async fn test_a_record_from_before_the_highest_timestamp_was_kept_still_skips_used_ids() {
    let mut old = record();
    old.highest_timestamp = None;
    old.last_timestamp = 100;
    let mut rng = SeededRng::new(3);
    let store = crate::store::MemoryStore::new(IdentityKeyPair::generate(&mut rng), 7);
    let c = Client::with_account(store, old);
    // A message this device sent before an earlier resync, ahead of `last_timestamp`.
    let id = MessageId { sender: AccountId([1; 16]), device: DeviceId::PRIMARY, timestamp: 150 };
    let changes = ClientChanges {
        messages: [(
            id,
            MessageRecord {
                id,
                conversation: Conversation::Direct(AccountId([2; 16])),
                body: "x".into(),
                outgoing: true,
                state: OutgoingState::Sent,
                stored_at: Timestamp::EPOCH,
                delivered_to: Default::default(),
                read_by: Default::default(),
                server_time: None,
                notice: None,
                local_id: None,
                quote: None,
                audience: 0,
            },
        )]
        .into(),
        ..ClientChanges::default()
    };
    c.store().save_client_changes(changes).await.unwrap();
    assert_eq!(stamp(&c, 150).await, 151, "not knowing the highest, it looks");
    // A new record knows it: above it, nothing is looked up (and nothing is there).
    assert_eq!(c.account().await.highest_timestamp, None);
    assert_eq!(client().account().await.highest_timestamp, Some(0));
    let fresh = client();
    assert_eq!(stamp(&fresh, 1000).await, 1000);
    assert_eq!(fresh.account().await.highest_timestamp, Some(1000));
}

#[test]
fn test_account_record_debug_hides_the_handle() {
    let dbg = format!("{:?}", record());
    assert!(!dbg.contains("alice"));
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn test_transient_errors() {
    assert!(ClientError::Transport(TransportError::Timeout).is_transient());
    assert!(
        ClientError::Server { status: Status::RateLimited, message: String::new() }.is_transient()
    );
    assert!(
        !ClientError::Server { status: Status::NotFound, message: String::new() }.is_transient()
    );
    assert!(!ClientError::NotRegistered.is_transient());
}

//! The device runtime's scenarios (feature `testing`): what every device driver — the loop
//! around [`crate::runtime`] that owns a socket, timers and storage — must do against a real
//! relay. The native client runs them under tokio (`crates/cli/tests/scenarios.rs`), the
//! browser's engine in headless Chromium over IndexedDB (`tests/wasm/tests/scenarios.rs`);
//! [`runtime_scenario_tests!`](crate::runtime_scenario_tests) turns them into tests.
//!
//! Everything is observed the way people observe it: what a device stores and shows, what it
//! reports as failed, what the account's device list says. "Acknowledged" is checked as a
//! fresh socket that brings nothing back.
#![allow(clippy::panic, missing_docs)]
// The drivers are single-threaded test harnesses: no `Send` bound wanted on these futures.
#![allow(async_fn_in_trait)]

use std::collections::BTreeSet;
use std::time::Duration;

use tandem_signal::{AccountId, DeviceId};

/// How long a scenario waits for what must happen.
pub const WAIT: Duration = Duration::from_secs(30);
/// How long a scenario listens for what must not happen.
pub const QUIET: Duration = Duration::from_secs(2);

/// A device driver under test, on one relay. Every method panics when the driver fails to do
/// what it says (a test harness, not an API).
pub trait Driver {
    /// One running device.
    type Device;
    /// Registers a new account whose handle starts with `handle` (the driver makes it unique
    /// on its relay); the device is its primary, online.
    async fn register(&self, handle: &str) -> Self::Device;
    /// Links a new companion named `name` to `primary`'s account the way people do: the
    /// companion shows a code, the primary reads it, both confirm the matching code. Online.
    async fn link(&self, primary: &Self::Device, name: &str) -> Self::Device;
    /// The device's account and id.
    async fn whoami(&self, device: &Self::Device) -> (AccountId, DeviceId);
    /// Sends a text to every device of `to` (and this account's other devices).
    async fn send(&self, from: &Self::Device, to: AccountId, text: &str);
    /// The texts other accounts sent that the device stored since the last call, waiting at
    /// most `wait` for `count` of them, in the order stored.
    async fn received(
        &self,
        device: &mut Self::Device,
        count: usize,
        wait: Duration,
    ) -> Vec<String>;
    /// What the device reported as failed so far (pushes it could not read).
    async fn failures(&self, device: &mut Self::Device) -> Vec<String>;
    /// Closes the device's socket; it stays offline until [`Driver::go_online`].
    async fn go_offline(&self, device: &mut Self::Device);
    /// A new socket, logged in.
    async fn go_online(&self, device: &mut Self::Device);
    /// The primary removes a device of its account.
    async fn remove(&self, primary: &Self::Device, device: DeviceId);
    /// Waits at most `wait` for the device to say it was removed: `Some(proven)`, proven when
    /// the account key signed the removal.
    async fn removal(&self, device: &mut Self::Device, wait: Duration) -> Option<bool>;
    /// The devices of the device's own account, as the relay lists them and the account key
    /// signed them.
    async fn devices(&self, device: &Self::Device) -> BTreeSet<DeviceId>;
    /// Creates a group titled `title` with `members` (the device's account its admin).
    async fn create_group(
        &self,
        admin: &Self::Device,
        title: &str,
        members: &[AccountId],
    ) -> [u8; 16];
    /// Waits (at most [`WAIT`]) for the invitation to `group`, then accepts it.
    async fn accept_group(&self, device: &mut Self::Device, group: [u8; 16]);
    /// Sends a text to the group.
    async fn send_group(&self, from: &Self::Device, group: [u8; 16], text: &str);
    /// An admin removes `member` from the group.
    async fn remove_member(&self, admin: &Self::Device, group: [u8; 16], member: AccountId);
}

/// Push: texts sent while the recipient is online and while it is offline all arrive, in
/// order, once each (a fresh socket brings none back), and nothing is reported as failed.
pub async fn delivered_once_in_order<D: Driver>(driver: &D) {
    let alice = driver.register("alice").await;
    let mut bob = driver.register("bob").await;
    let (b, _) = driver.whoami(&bob).await;
    for text in ["one", "two", "three"] {
        driver.send(&alice, b, text).await;
    }
    assert_eq!(driver.received(&mut bob, 3, WAIT).await, ["one", "two", "three"], "live pushes");

    driver.go_offline(&mut bob).await;
    for text in ["four", "five"] {
        driver.send(&alice, b, text).await;
    }
    driver.go_online(&mut bob).await;
    assert_eq!(driver.received(&mut bob, 2, WAIT).await, ["four", "five"], "queued while offline");

    // A fresh socket: whatever was not acknowledged would be pushed again.
    driver.go_offline(&mut bob).await;
    driver.go_online(&mut bob).await;
    driver.send(&alice, b, "six").await;
    assert_eq!(driver.received(&mut bob, 2, QUIET).await, ["six"], "nothing came twice");
    assert_eq!(driver.failures(&mut bob).await, Vec::<String>::new());
}

/// Alice's account: her primary and a linked laptop.
struct Linked<T> {
    alice: T,
    laptop: T,
    a: AccountId,
    primary: DeviceId,
    companion: DeviceId,
}

async fn linked<D: Driver>(driver: &D) -> Linked<D::Device> {
    let alice = driver.register("alice").await;
    let laptop = driver.link(&alice, "laptop").await;
    let (a, primary) = driver.whoami(&alice).await;
    let (account, companion) = driver.whoami(&laptop).await;
    assert_eq!(account, a, "the companion joined the primary's account");
    assert_ne!(companion, primary);
    Linked { alice, laptop, a, primary, companion }
}

/// Linking and the primary's re-signing: a companion linked through the code and matching
/// steps is in the account's signed device list on both devices, and a stranger's text
/// reaches it as well as the primary (a sender encrypts only to signed devices).
pub async fn a_linked_companion_is_signed_in_and_reached<D: Driver>(driver: &D) {
    let Linked { mut alice, mut laptop, a, primary, companion } = linked(driver).await;
    let both = BTreeSet::from([primary, companion]);
    assert_eq!(driver.devices(&alice).await, both, "the primary's list");
    assert_eq!(driver.devices(&laptop).await, both, "the companion's list");

    let bob = driver.register("bob").await;
    driver.send(&bob, a, "hello both").await;
    assert_eq!(driver.received(&mut alice, 1, WAIT).await, ["hello both"]);
    assert_eq!(driver.received(&mut laptop, 1, WAIT).await, ["hello both"]);
    assert_eq!(driver.failures(&mut laptop).await, Vec::<String>::new());
}

/// Removal: a companion the primary removes is told so with the account key's proof, leaves
/// the signed list, and the account's contacts reach the primary alone from then on.
pub async fn a_removed_companion_is_told_with_proof<D: Driver>(driver: &D) {
    let Linked { mut alice, mut laptop, a, primary, companion } = linked(driver).await;
    driver.remove(&alice, companion).await;
    assert_eq!(driver.removal(&mut laptop, WAIT).await, Some(true), "a signed removal");
    assert_eq!(driver.devices(&alice).await, BTreeSet::from([primary]));

    let bob = driver.register("bob").await;
    driver.send(&bob, a, "just you").await;
    assert_eq!(driver.received(&mut alice, 1, WAIT).await, ["just you"]);
    assert_eq!(driver.failures(&mut alice).await, Vec::<String>::new());
}

/// Groups: every device of every member who accepted gets the group's texts (the sender's
/// own other devices included), from any member; a removed member gets nothing sent after
/// (the senders' keys rotate), and nothing is reported as failed.
pub async fn a_group_reaches_every_member_device_and_not_a_removed_one<D: Driver>(driver: &D) {
    let Linked { alice, mut laptop, .. } = linked(driver).await;
    let mut bob = driver.register("bob").await;
    let mut carol = driver.register("carol").await;
    let (b, _) = driver.whoami(&bob).await;
    let (c, _) = driver.whoami(&carol).await;
    let group = driver.create_group(&alice, "Climbing", &[b, c]).await;
    driver.accept_group(&mut bob, group).await;
    driver.accept_group(&mut carol, group).await;
    driver.send_group(&alice, group, "hello group").await;
    for d in [&mut bob, &mut carol] {
        assert_eq!(driver.received(d, 1, WAIT).await, ["hello group"]);
    }
    driver.send_group(&bob, group, "hi from bob").await;
    assert_eq!(driver.received(&mut carol, 1, WAIT).await, ["hi from bob"]);
    assert_eq!(driver.received(&mut laptop, 1, WAIT).await, ["hi from bob"], "Alice's laptop");

    driver.remove_member(&alice, group, c).await;
    driver.send_group(&alice, group, "without carol").await;
    driver.send_group(&bob, group, "bob, without carol").await;
    let got = driver.received(&mut laptop, 1, WAIT).await;
    assert_eq!(got, ["bob, without carol"], "members still hear each other");
    assert_eq!(driver.received(&mut bob, 1, WAIT).await, ["without carol"]);
    assert_eq!(driver.received(&mut carol, 1, QUIET).await, Vec::<String>::new(), "removed");
    for d in [&mut bob, &mut laptop] {
        assert_eq!(driver.failures(d).await, Vec::<String>::new());
    }
}

/// Acknowledgement frees the relay: on a relay that holds at most 5 undelivered texts per
/// sender in a device's queue, 8 texts sent one after another, each once the one before it
/// arrived, all go through — each was acknowledged, and so deleted, once stored. (A driver
/// that never acknowledged would meet a full queue at the sixth: a client that drops
/// duplicates shows no other sign of it.)
pub async fn acknowledged_once_stored<D: Driver>(strict: &D) {
    let alice = strict.register("alice").await;
    let mut bob = strict.register("bob").await;
    let (b, _) = strict.whoami(&bob).await;
    for i in 0..8 {
        let text = format!("text {i}");
        strict.send(&alice, b, &text).await;
        assert_eq!(strict.received(&mut bob, 1, WAIT).await, [text], "text {i} arrived");
    }
    assert_eq!(strict.failures(&mut bob).await, Vec::<String>::new());
}

/// Retry: on a relay that lets a device look up 5 new senders at once, then one every 4 s
/// (`lookup_per_minute` 15), the sixth and seventh stranger's first texts meet a busy relay
/// while the recipient reads them. They are kept and stored later, none is reported as
/// failed, and every one was acknowledged (a fresh socket brings none back).
pub async fn a_push_met_by_a_busy_relay_is_kept_and_stored_later<D: Driver>(driver: &D) {
    let mut bob = driver.register("bob").await;
    let (b, _) = driver.whoami(&bob).await;
    let mut strangers = Vec::new();
    for i in 0..7 {
        let s = driver.register(&format!("sender{i}")).await;
        driver.send(&s, b, &format!("hello {i}")).await;
        strangers.push(s);
    }
    let got: BTreeSet<String> = driver.received(&mut bob, 7, WAIT).await.into_iter().collect();
    assert_eq!(got, (0..7).map(|i| format!("hello {i}")).collect(), "every text, once");
    assert_eq!(driver.failures(&mut bob).await, Vec::<String>::new());
    driver.go_offline(&mut bob).await;
    driver.go_online(&mut bob).await;
    assert_eq!(driver.received(&mut bob, 1, QUIET).await, Vec::<String>::new(), "all acked");
}

/// Turns the scenarios into tests: `runtime_scenario_tests!(test_attribute, driver, strict)`,
/// where `driver` and `strict` are expressions giving a [`Driver`] on an ordinary relay and
/// on a strict one: 15 lookups per minute per device, at most 5 undelivered messages per
/// sender in a queue. E.g. natively
/// `runtime_scenario_tests!(tokio::test, Native::start().await, Native::strict().await);`.
#[macro_export]
macro_rules! runtime_scenario_tests {
    ($test:meta, $driver:expr, $strict:expr) => {
        #[$test]
        async fn scenario_delivered_once_in_order() {
            $crate::testing::scenarios::delivered_once_in_order(&$driver).await;
        }
        #[$test]
        async fn scenario_a_linked_companion_is_signed_in_and_reached() {
            $crate::testing::scenarios::a_linked_companion_is_signed_in_and_reached(&$driver).await;
        }
        #[$test]
        async fn scenario_a_removed_companion_is_told_with_proof() {
            $crate::testing::scenarios::a_removed_companion_is_told_with_proof(&$driver).await;
        }
        #[$test]
        async fn scenario_a_push_met_by_a_busy_relay_is_kept_and_stored_later() {
            $crate::testing::scenarios::a_push_met_by_a_busy_relay_is_kept_and_stored_later(
                &$strict,
            )
            .await;
        }
        #[$test]
        async fn scenario_a_group_reaches_every_member_device_and_not_a_removed_one() {
            $crate::testing::scenarios::a_group_reaches_every_member_device_and_not_a_removed_one(
                &$driver,
            )
            .await;
        }
        #[$test]
        async fn scenario_acknowledged_once_stored() {
            $crate::testing::scenarios::acknowledged_once_stored(&$strict).await;
        }
    };
}

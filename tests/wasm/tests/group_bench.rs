//! Browser benchmark of a large group through the real relay (`scripts/bench-groups`, built
//! only with the `bench` feature): a fresh device in this page makes a group of the members
//! `tandem-load --mode members` registered (256 accounts × 3 devices by default), then
//! times its first message (a sender key to every member device, then one ciphertext the
//! relay fans out), steady messages, and the first message after a removal (a new sender
//! key to every remaining device). Each round runs once over the IndexedDB store and once
//! over the in-memory store, each with a new account (so new sessions). Results go to
//! BENCHMARKS.md by hand.
#![cfg(all(target_family = "wasm", feature = "bench"))]

use std::time::Duration;

use tandem_core::client::{Client, Conversation, GroupEdit};
use tandem_core::store::{ClientStore, MemoryStore};
use tandem_core::wire::relay::{LookupAccount, request, response};
use tandem_core::{AccountId, IdentityKeyPair};
use tandem_web::rng::system_rng;
use tandem_web::store::IdbStore;
use tandem_web::transport::{ConnectionState, RelayClient, now, sleep};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// Steady messages timed after the first.
const STEADY: usize = 20;
/// Rounds per store.
const ROUNDS: usize = 2;

fn setting(value: Option<&'static str>, name: &str) -> &'static str {
    value.unwrap_or_else(|| panic!("{name} must be set at compile time; run scripts/bench-groups"))
}

fn ms() -> f64 {
    web_sys::window().and_then(|w| w.performance()).map_or_else(js_sys::Date::now, |p| p.now())
}

fn tag() -> String {
    tandem_web::rng::random_bytes::<4>().iter().map(|b| format!("{b:02x}")).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A relay client on a fresh socket, once connected.
async fn connect(url: &str) -> RelayClient {
    let relay = RelayClient::start(url.to_owned(), |_| {});
    for _ in 0..200 {
        if matches!(relay.state(), ConnectionState::Connected { .. }) {
            return relay;
        }
        sleep(Duration::from_millis(25)).await;
    }
    panic!("the relay at {url} did not answer")
}

/// The members' account ids, by their handles.
async fn members(relay: &RelayClient, prefix: &str, n: usize) -> Vec<AccountId> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let body = request::Body::LookupAccount(LookupAccount {
            handle: format!("{prefix}_m{i}"),
            account_id: Vec::new(),
        });
        let resp = relay.request(body).await.expect("lookup");
        let Some(response::Body::Account(info)) = resp.body else {
            panic!("no member {prefix}_m{i}: {} (run tandem-load --mode members)", resp.message)
        };
        out.push(AccountId::from_bytes(&info.account_id).expect("id"));
    }
    out
}

/// One round with a new account over `store`: (create, first, steady median, rotation) in ms.
async fn round<S: ClientStore>(
    store: S,
    relay: &RelayClient,
    ids: &[AccountId],
) -> (f64, f64, f64, f64) {
    let mut rng = system_rng();
    let handle = format!("gbench_{}", tag());
    let client = Client::register_account(store, relay, &handle, "bench", "Web", now(), &mut rng)
        .await
        .expect("register the sender");
    let t = ms();
    let group =
        client.create_group(relay, "bench", ids, now(), &mut rng).await.expect("create the group");
    let create = ms() - t;
    let t = ms();
    client.send_group_text(relay, group, "first", now(), &mut rng).await.expect("first");
    let first = ms() - t;
    let mut steady = Vec::with_capacity(STEADY);
    let mut queued = Vec::with_capacity(STEADY);
    for i in 0..STEADY {
        let t = ms();
        let text = format!("steady {i}");
        let id = client.queue_text(Conversation::Group(group), &text, now()).await.expect("queue");
        queued.push(ms() - t);
        client.send_queued(relay, id, now(), &mut rng).await.expect("steady");
        steady.push(ms() - t);
    }
    // The last one's sent mark (each earlier one's went with the next message's queueing).
    client.settle().await.expect("settle");
    // The part of a send that reads every member's cached device list.
    let t = ms();
    for id in ids {
        client.device_list(relay, *id, now(), false).await.expect("a cached list");
    }
    console_log!("GROUP_BENCH the members' {} cached device lists: {:.2} ms", ids.len(), ms() - t);
    console_log!(
        "GROUP_BENCH steady, of which queueing (the outbox write): {:.1} of {:.1} ms",
        median(queued),
        median(steady.clone())
    );
    let edit = GroupEdit { remove: vec![ids[0]], ..GroupEdit::default() };
    client.update_group(relay, group, &edit, now(), &mut rng).await.expect("remove");
    let t = ms();
    client.send_group_text(relay, group, "after", now(), &mut rng).await.expect("rotation");
    let rotation = ms() - t;
    (create, first, median(steady), rotation)
}

#[wasm_bindgen_test]
async fn bench_large_group() {
    let url = setting(option_env!("TANDEM_TEST_RELAY"), "TANDEM_TEST_RELAY");
    let prefix = setting(option_env!("TANDEM_BENCH_GROUP_PREFIX"), "TANDEM_BENCH_GROUP_PREFIX");
    let n: usize =
        option_env!("TANDEM_BENCH_GROUP_MEMBERS").map_or(256, |v| v.parse().expect("a number"));
    // Lookups need an account: a throwaway one.
    let lookups = connect(url).await;
    let identity = IdentityKeyPair::generate(&mut system_rng());
    let finder = format!("gbench_finder_{}", tag());
    let _finder = Client::register_account(
        MemoryStore::new(identity, 1),
        &lookups,
        &finder,
        "bench",
        "Web",
        now(),
        &mut system_rng(),
    )
    .await
    .expect("register the finder");
    let ids = members(&lookups, prefix, n).await;
    lookups.stop();
    console_log!("GROUP_BENCH {n} members found");
    for r in 0..ROUNDS {
        for idb in [true, false] {
            let relay = connect(url).await;
            let identity = IdentityKeyPair::generate(&mut system_rng());
            let (create, first, steady, rotation) = if idb {
                let name = format!("tandem-gbench-{}", tag());
                let store = IdbStore::create(&name, identity, 1).await.expect("idb");
                // As the engine's store does.
                store.remember_engine_records();
                round(store, &relay, &ids).await
            } else {
                round(MemoryStore::new(identity, 1), &relay, &ids).await
            };
            relay.stop();
            console_log!(
                "GROUP_BENCH round {r} {}: members={n} create_ms={create:.0} first_ms={first:.0} steady_median_ms={steady:.1} rotation_ms={rotation:.0}",
                if idb { "indexeddb" } else { "memory" }
            );
        }
    }
}

//! The device runtime's scenarios (`tandem_core::testing::scenarios`) run by the browser's
//! driver: the engine (`tandem_web::device::Engine`, the one the app's worker hosts) over
//! IndexedDB and the relay socket, devices linked through the app's link flow
//! (`tandem_web::device::linking::Linker`), commands as the app's views send them. The
//! native client runs the same scenarios (`crates/cli/tests/scenarios.rs`).
//!
//! Two relays started by the test script: `TANDEM_TEST_RELAY` (the usual limits) and
//! `TANDEM_TEST_STRICT_RELAY` (15 lookups per minute, 5 undelivered messages per sender).
#![cfg(target_family = "wasm")]

use std::cell::RefCell;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use tandem_core::client::Client;
use tandem_core::records::{Conversation, MessageId, conversation_to_bytes};
use tandem_core::store::ClientStore;
use tandem_core::testing::scenarios::{Driver, WAIT};
use tandem_core::{AccountId, DeviceId};
use tandem_web::device::engine::Notice;
use tandem_web::device::linking::{LinkOutcome, LinkView, Linker};
use tandem_web::device::{Command, Engine, Outcome};
use tandem_web::journal::Entry;
use tandem_web::store::IdbStore;
use tandem_web::transport::{RelayClient, sleep};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn relay(name: &str, url: Option<&'static str>) -> &'static str {
    match url {
        Some(url) => url,
        None => panic!("{name} must name a running relay at compile time; run scripts/test"),
    }
}

/// A relay's address that refuses connections (port 9, discard), to take a device offline.
const NOWHERE: &str = "ws://127.0.0.1:9/v1/socket";

/// The browser's driver on one relay.
struct Browser {
    url: &'static str,
}

/// One device: its engine, socket and what it said.
struct WebDevice {
    engine: Rc<Engine>,
    relay: RelayClient,
    notices: Rc<RefCell<VecDeque<Notice>>>,
    seen: BTreeSet<MessageId>,
    failures: Vec<String>,
    removal: Option<bool>,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(tandem_web::rng::random_bytes::<4>()))
}

/// Whether the socket reached `open` (open or closed) within 5 s.
async fn until_open(relay: &RelayClient, open: bool) -> bool {
    for _ in 0..200 {
        if relay.is_connected() == open {
            return true;
        }
        sleep(Duration::from_millis(25)).await;
    }
    false
}

async fn connected(url: &str) -> RelayClient {
    let relay = RelayClient::start(url.to_owned(), |_| {});
    assert!(until_open(&relay, true).await, "the relay at {url} did not answer");
    relay
}

async fn start(client: Client<IdbStore>, relay: RelayClient) -> WebDevice {
    let notices = Rc::new(RefCell::new(VecDeque::new()));
    let heard = notices.clone();
    let engine =
        Engine::start(client, relay.clone(), true, move |n| heard.borrow_mut().push_back(n)).await;
    WebDevice { engine, relay, notices, seen: BTreeSet::new(), failures: Vec::new(), removal: None }
}

/// A scenario's devices stop with it (their sockets would otherwise reconnect for the rest
/// of the page's life).
impl Drop for WebDevice {
    fn drop(&mut self) {
        self.engine.stop();
        self.relay.stop();
    }
}

impl WebDevice {
    async fn run(&self, command: Command) -> Outcome {
        match self.engine.run_command(command).await {
            Ok(o) => o,
            Err(e) => panic!("the engine refused: {e:?}"),
        }
    }

    /// Sends a text the way the app's tab does: a send-journal entry handed to the engine.
    async fn queue_text(&self, conversation: Conversation, text: &str) {
        let entry = Entry {
            id: hex::encode(tandem_web::rng::random_bytes::<16>()),
            conversation: hex::encode(conversation_to_bytes(&conversation)),
            text: text.to_owned(),
            typed_at: None,
            reply_to: None,
        };
        let id = entry.id.clone();
        assert_eq!(
            self.run(Command::QueueTexts { entries: vec![entry] }).await,
            Outcome::Handled(vec![id])
        );
    }

    /// Takes in what the engine said since the last look.
    fn hear(&mut self) {
        while let Some(n) = self.notices.borrow_mut().pop_front() {
            match n {
                Notice::Error(e) => self.failures.push(e),
                Notice::Removed => self.removal = Some(true),
                Notice::RemovalUnproven => self.removal = Some(false),
                _ => {}
            }
        }
    }

    /// Incoming texts stored since the last look, conversation by conversation, in order.
    async fn new_texts(&mut self) -> Vec<String> {
        let store = self.engine.store();
        let mut out = Vec::new();
        let Ok(conversations) = store.conversations().await else { return out };
        for c in conversations {
            let Ok(messages) = store.load_messages(&c.conversation, 1000).await else { continue };
            for m in messages {
                if !m.outgoing && m.notice.is_none() && self.seen.insert(m.id) {
                    out.push(m.body);
                }
            }
        }
        out
    }
}

impl Driver for Browser {
    type Device = WebDevice;

    async fn register(&self, handle: &str) -> WebDevice {
        let relay = connected(self.url).await;
        let client = Engine::create_account(&unique("scenario-"), &relay, &unique(handle), "web")
            .await
            .expect("registered");
        start(client, relay).await
    }

    async fn link(&self, primary: &WebDevice, name: &str) -> WebDevice {
        let relay = connected(self.url).await;
        let outcomes = Rc::new(RefCell::new(VecDeque::new()));
        let heard = outcomes.clone();
        let linker =
            Linker::start(&unique("scenario-"), relay.clone(), name.to_owned(), move |o| {
                heard.borrow_mut().push_back(o)
            })
            .await
            .expect("a link screen");
        let next = |want: &'static str| {
            let outcomes = outcomes.clone();
            async move {
                for _ in 0..600 {
                    if let Some(o) = outcomes.borrow_mut().pop_front() {
                        return o;
                    }
                    sleep(Duration::from_millis(25)).await;
                }
                panic!("the companion never reached {want}");
            }
        };
        // The companion shows a code; the primary reads it and shows the matching code.
        let code = loop {
            match next("a code").await {
                LinkOutcome::View(LinkView::Code { text, .. }) => break text,
                LinkOutcome::Problem(p) => panic!("link problem: {p}"),
                _ => {}
            }
        };
        let Outcome::Matching { code: primary_code, key_index } =
            primary.run(Command::Link { code }).await
        else {
            panic!("the primary showed no matching code")
        };
        let companion_code = loop {
            match next("the matching code").await {
                LinkOutcome::View(LinkView::Confirm { matching, .. }) => break matching,
                LinkOutcome::Problem(p) => panic!("link problem: {p}"),
                _ => {}
            }
        };
        assert_eq!(companion_code, primary_code, "both screens show the same code");
        // Both people confirm: the companion registers, the primary signs it in.
        linker.confirm();
        let client = loop {
            match next("registration").await {
                LinkOutcome::Linked(client, _) => break client,
                LinkOutcome::Problem(p) => panic!("link problem: {p}"),
                _ => {}
            }
        };
        primary.run(Command::ConfirmLink { key_index }).await;
        start(*client, relay).await
    }

    async fn whoami(&self, device: &WebDevice) -> (AccountId, DeviceId) {
        let account = device.engine.store().load_account().await.unwrap().expect("registered");
        (account.account_id, account.device_id)
    }

    async fn send(&self, from: &WebDevice, to: AccountId, text: &str) {
        from.queue_text(Conversation::Direct(to), text).await;
    }

    async fn received(&self, device: &mut WebDevice, count: usize, wait: Duration) -> Vec<String> {
        let mut got = Vec::new();
        let deadline = js_sys::Date::now() + wait.as_secs_f64() * 1000.0;
        loop {
            got.extend(device.new_texts().await);
            device.hear();
            if got.len() >= count || js_sys::Date::now() >= deadline {
                return got;
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    async fn failures(&self, device: &mut WebDevice) -> Vec<String> {
        device.hear();
        device.failures.clone()
    }

    async fn go_offline(&self, device: &mut WebDevice) {
        device.relay.set_url(NOWHERE.to_owned());
        assert!(until_open(&device.relay, false).await, "the socket stayed open");
    }

    async fn go_online(&self, device: &mut WebDevice) {
        device.relay.set_url(self.url.to_owned());
        // The socket opens, then the engine logs in on it (the socket's opening resets the
        // engine's login before anyone sees it open).
        assert!(until_open(&device.relay, true).await, "the device did not come back online");
        assert!(device.engine.wait_logged_in().await, "the device did not log in");
    }

    async fn remove(&self, primary: &WebDevice, device: DeviceId) {
        primary.run(Command::RemoveDevice { device: device.get() }).await;
    }

    async fn removal(&self, device: &mut WebDevice, wait: Duration) -> Option<bool> {
        let deadline = js_sys::Date::now() + wait.as_secs_f64() * 1000.0;
        loop {
            device.hear();
            if device.removal.is_some() || js_sys::Date::now() >= deadline {
                return device.removal;
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    async fn devices(&self, device: &WebDevice) -> BTreeSet<DeviceId> {
        let Outcome::Devices(list) = device.run(Command::Devices).await else {
            panic!("no device list")
        };
        list.iter()
            .map(|d| {
                let info: tandem_core::wire::relay::DeviceInfo =
                    prost::Message::decode(d.as_slice()).expect("a device");
                DeviceId::new(info.device_id).expect("a device id")
            })
            .collect()
    }

    async fn create_group(
        &self,
        admin: &WebDevice,
        title: &str,
        members: &[AccountId],
    ) -> [u8; 16] {
        let members = members.iter().map(|m| m.0.to_vec()).collect();
        let created = admin.run(Command::CreateGroup { title: title.to_owned(), members }).await;
        let Outcome::GroupCreated { group } = created else { panic!("no group: {created:?}") };
        group.try_into().expect("16 bytes")
    }

    async fn accept_group(&self, device: &mut WebDevice, group: [u8; 16]) {
        let deadline = js_sys::Date::now() + WAIT.as_secs_f64() * 1000.0;
        while device.engine.store().load_group(&group).await.expect("read").is_none() {
            assert!(js_sys::Date::now() < deadline, "no invitation came");
            sleep(Duration::from_millis(50)).await;
        }
        let accept = Command::AcceptGroup { group: group.to_vec(), accept: true };
        assert_eq!(device.run(accept).await, Outcome::Done);
    }

    async fn send_group(&self, from: &WebDevice, group: [u8; 16], text: &str) {
        from.queue_text(Conversation::Group(group), text).await;
    }

    async fn remove_member(&self, admin: &WebDevice, group: [u8; 16], member: AccountId) {
        let edit = Command::EditGroup {
            group: group.to_vec(),
            add: Vec::new(),
            remove: vec![member.0.to_vec()],
            promote: Vec::new(),
            demote: Vec::new(),
            title: None,
        };
        assert_eq!(admin.run(edit).await, Outcome::Done);
    }
}

tandem_core::runtime_scenario_tests!(
    wasm_bindgen_test,
    Browser { url: relay("TANDEM_TEST_RELAY", option_env!("TANDEM_TEST_RELAY")) },
    Browser { url: relay("TANDEM_TEST_STRICT_RELAY", option_env!("TANDEM_TEST_STRICT_RELAY")) }
);

/// A sent text is dated when it was typed (the journal entry's time), not when the engine
/// got to it: two people typing in turn keep that order even when one engine is late. A
/// time ahead of the engine's clock is not believed.
#[wasm_bindgen_test]
async fn test_a_journaled_text_is_dated_when_typed() {
    let browser = Browser { url: relay("TANDEM_TEST_RELAY", option_env!("TANDEM_TEST_RELAY")) };
    let alice = browser.register("typed").await;
    let bob = browser.register("reader").await;
    let (bob_id, _) = browser.whoami(&bob).await;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "epoch ms")]
    let now = js_sys::Date::now() as u64;
    let entry = |text: &str, typed_at: u64| Entry {
        id: hex::encode(tandem_web::rng::random_bytes::<16>()),
        conversation: hex::encode(conversation_to_bytes(&Conversation::Direct(bob_id))),
        text: text.to_owned(),
        typed_at: Some(typed_at),
        reply_to: None,
    };
    let earlier = entry("typed five seconds ago", now - 5_000);
    let ahead = entry("typed an hour ahead", now + 3_600_000);
    let ids = vec![earlier.id.clone(), ahead.id.clone()];
    assert_eq!(
        alice.run(Command::QueueTexts { entries: vec![earlier, ahead] }).await,
        Outcome::Handled(ids)
    );
    let stored =
        alice.engine.store().load_messages(&Conversation::Direct(bob_id), 10).await.unwrap();
    let at = |body: &str| stored.iter().find(|m| m.body == body).expect(body).id.timestamp;
    let earlier_at = at("typed five seconds ago");
    assert!(earlier_at.abs_diff(now - 5_000) < 1_000, "dated {earlier_at}, typed {}", now - 5_000);
    let ahead_at = at("typed an hour ahead");
    assert!(ahead_at < now + 60_000, "a time ahead of the clock was believed: {ahead_at}");
    assert!(ahead_at > earlier_at);
}

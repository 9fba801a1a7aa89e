//! The device runtime's scenarios (`tandem_core::testing::scenarios`) run by the native
//! driver (`tandem_cli::Device`: tokio, a WebSocket, `MemoryStore`) against a real relay.
//! The browser's engine runs the same scenarios (`tests/wasm/tests/scenarios.rs`).

mod support;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use support::TestServer;
use tandem_cli::{Device, DeviceEvent, now, system_rng};
use tandem_core::client::{Event, GroupEdit};
use tandem_core::testing::scenarios::Driver;
use tandem_core::testing::scenarios::WAIT;
use tandem_core::{AccountId, DeviceId};

/// The native driver on its own relay.
struct Native {
    server: TestServer,
}

impl Native {
    async fn start() -> Self {
        Self { server: TestServer::start_with(|s| s.auth_per_minute = 1000.0).await }
    }

    /// A strict relay: a device looks up 5 new accounts at once, then one every 4 s; a
    /// sender has at most 5 undelivered messages in a queue.
    async fn strict() -> Self {
        let server = TestServer::start_with(|s| {
            s.lookup_per_minute = 15.0;
            s.max_queue_len_per_sender = 5;
            s.auth_per_minute = 1000.0;
        })
        .await;
        Self { server }
    }
}

/// One device and what it said.
struct NativeDevice {
    device: Device,
    texts: VecDeque<String>,
    failures: Vec<String>,
    removal: Option<bool>,
}

impl NativeDevice {
    fn new(device: Device) -> Self {
        Self { device, texts: VecDeque::new(), failures: Vec::new(), removal: None }
    }

    /// Takes in one event, if one comes within `wait`; false when none came.
    async fn hear(&mut self, wait: Duration) -> bool {
        let Some(event) = self.device.next_event(wait).await else { return false };
        match event {
            DeviceEvent::Engine(Event::Message(m)) if !m.outgoing && m.notice.is_none() => {
                self.texts.push_back(m.body);
            }
            DeviceEvent::Failed(e) => self.failures.push(e),
            DeviceEvent::Removed { proven } => self.removal = Some(proven),
            _ => {}
        }
        true
    }

    /// Takes in events until `done` holds or `wait` passes.
    async fn hear_until(&mut self, wait: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + wait;
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.hear(left).await {
                break;
            }
        }
    }
}

impl Driver for Native {
    type Device = NativeDevice;

    async fn register(&self, handle: &str) -> NativeDevice {
        NativeDevice::new(Device::register(&self.server.url, handle).await.expect("registered"))
    }

    async fn link(&self, primary: &NativeDevice, name: &str) -> NativeDevice {
        NativeDevice::new(Device::link(&primary.device, name).await.expect("linked"))
    }

    async fn whoami(&self, device: &NativeDevice) -> (AccountId, DeviceId) {
        device.device.client.whoami().await
    }

    async fn send(&self, from: &NativeDevice, to: AccountId, text: &str) {
        from.device.send_text(to, text).await.expect("sent");
    }

    async fn received(
        &self,
        device: &mut NativeDevice,
        count: usize,
        wait: Duration,
    ) -> Vec<String> {
        device.hear_until(wait, |d| d.texts.len() >= count).await;
        device.texts.drain(..).collect()
    }

    async fn failures(&self, device: &mut NativeDevice) -> Vec<String> {
        while device.hear(Duration::from_millis(10)).await {}
        device.failures.clone()
    }

    async fn go_offline(&self, device: &mut NativeDevice) {
        device.device.disconnect().await;
    }

    async fn go_online(&self, device: &mut NativeDevice) {
        device.device.reconnect().await.expect("back online");
    }

    async fn remove(&self, primary: &NativeDevice, device: DeviceId) {
        let d = &primary.device;
        d.client
            .remove_device(d.connection(), device, now(), &mut system_rng())
            .await
            .expect("removed");
    }

    async fn removal(&self, device: &mut NativeDevice, wait: Duration) -> Option<bool> {
        device.hear_until(wait, |d| d.removal.is_some()).await;
        device.removal
    }

    async fn devices(&self, device: &NativeDevice) -> BTreeSet<DeviceId> {
        let d = &device.device;
        let (account, _) = d.client.whoami().await;
        let list =
            d.client.device_list(d.connection(), account, now(), true).await.expect("a list");
        list.devices.iter().map(|v| v.device_id).collect()
    }

    async fn create_group(
        &self,
        admin: &NativeDevice,
        title: &str,
        members: &[AccountId],
    ) -> [u8; 16] {
        let d = &admin.device;
        d.client
            .create_group(d.connection(), title, members, now(), &mut system_rng())
            .await
            .expect("a group")
    }

    async fn accept_group(&self, device: &mut NativeDevice, group: [u8; 16]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while device.device.client.group(group).await.expect("read").is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no invitation came");
            device.hear(Duration::from_millis(100)).await;
        }
        let d = &device.device;
        d.client
            .accept_group(d.connection(), group, true, now(), &mut system_rng())
            .await
            .expect("accepted");
    }

    async fn send_group(&self, from: &NativeDevice, group: [u8; 16], text: &str) {
        let d = &from.device;
        d.client
            .send_group_text(d.connection(), group, text, now(), &mut system_rng())
            .await
            .expect("sent to the group");
    }

    async fn remove_member(&self, admin: &NativeDevice, group: [u8; 16], member: AccountId) {
        let d = &admin.device;
        let edit = GroupEdit { remove: vec![member], ..GroupEdit::default() };
        d.client
            .update_group(d.connection(), group, &edit, now(), &mut system_rng())
            .await
            .expect("removed from the group");
    }
}

tandem_core::runtime_scenario_tests!(
    tokio::test(flavor = "multi_thread", worker_threads = 2),
    Native::start().await,
    Native::strict().await
);

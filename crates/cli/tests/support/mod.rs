//! A real relay on port 0 for integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use tandem_cli::{Device, DeviceEvent};
use tandem_core::client::{Event, MessageId, MessageRecord};
use tandem_server::{AppState, Server, Settings, SqliteStorage, bind};
use tokio::sync::oneshot;

pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub url: String,
    pub state: AppState<SqliteStorage>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("TANDEM_TEST_LOG")
                    .unwrap_or_else(|_| "warn".into()),
            )
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::for_tests(dir.path().to_path_buf(), dir.path().to_path_buf());
        settings.api_only = true;
        configure(&mut settings);
        let server = Server::prepare(&settings).await.unwrap();
        let state = server.state().clone();
        let listener = bind(settings.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            url: format!("ws://{addr}/v1/socket"),
            state,
            stop: Some(stop),
            task: Some(task),
            dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// Waits for a message event whose body is `body`; any undecryptable or rejected envelope
/// meanwhile fails the test.
pub async fn expect_message(device: &mut Device, body: &str) -> MessageRecord {
    expect_message_tolerating(device, body, |_| false).await
}

/// Like [`expect_message`], tolerating rejections for which `tolerate` holds.
pub async fn expect_message_tolerating(
    device: &mut Device,
    body: &str,
    tolerate: impl Fn(&Event) -> bool,
) -> MessageRecord {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match device.next_event(left).await {
            Some(DeviceEvent::Engine(Event::Message(m))) if m.body == body => return *m,
            Some(DeviceEvent::Failed(e)) => panic!("a device failed to handle an envelope: {e}"),
            Some(DeviceEvent::Engine(
                e @ (Event::Undecryptable { .. } | Event::Rejected { .. }),
            )) if !tolerate(&e) => {
                panic!("while waiting for {body:?}: {e:?}")
            }
            Some(_) => continue,
            None => panic!("no message {body:?} within {WAIT:?}"),
        }
    }
}

/// Messages arriving within `quiet` of each other.
pub async fn messages(device: &mut Device, quiet: Duration) -> Vec<MessageRecord> {
    device
        .drain_events(quiet)
        .await
        .into_iter()
        .filter_map(|e| match e {
            DeviceEvent::Engine(Event::Message(m)) => Some(*m),
            DeviceEvent::Failed(e) => panic!("a device failed to handle an envelope: {e}"),
            _ => None,
        })
        .collect()
}

/// The relay's own database, for tests in which the relay is the attacker and edits it.
pub fn relay_db(server: &TestServer) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(server.dir.path().join("tandem.sqlite")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// Events until `quiet` passes with none; fails on a device that could not handle one.
pub async fn events(device: &mut Device, quiet: Duration) -> Vec<Event> {
    device
        .drain_events(quiet)
        .await
        .into_iter()
        .filter_map(|e| match e {
            DeviceEvent::Engine(e) => Some(e),
            DeviceEvent::Failed(e) => panic!("a device failed to handle an envelope: {e}"),
            _ => None,
        })
        .collect()
}

/// Polls `device`'s copy of message `id` until `done` holds; fails after the usual wait.
pub async fn message_until(
    device: &Device,
    id: &MessageId,
    done: impl Fn(&MessageRecord) -> bool,
) -> MessageRecord {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = device.client.message(id).await.unwrap();
        match m {
            Some(m) if done(&m) => return m,
            last if tokio::time::Instant::now() >= deadline => {
                panic!("message {id:?} never reached the expected state: {last:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A group message `device` encrypts with its own sender key for `group` outside its client
/// (for tests in which a sender breaks the rules), as a relay request at group `version`
/// that skips the relay's device check.
pub async fn forged_group_send(
    device: &Device,
    group: [u8; 16],
    body: &str,
    version: u64,
) -> tandem_core::wire::relay::request::Body {
    use tandem_core::sender_keys::{DistributionId, group_encrypt};
    use tandem_core::store::ProtocolStore;
    use tandem_core::wire::content::{Content, DataMessage, content};
    use tandem_core::wire::relay::{SendGroupMessage, request};
    let timestamp = tandem_cli::now().as_millis();
    let plain = Content {
        body: Some(content::Body::Data(DataMessage {
            body: body.into(),
            timestamp,
            group_id: group.to_vec(),
            quote: None,
        })),
    }
    .to_padded_bytes();
    let me = device.client.address().await;
    let (message, changes) = group_encrypt(
        device.client.store(),
        &me,
        DistributionId(group),
        &plain,
        &mut tandem_cli::system_rng(),
    )
    .await
    .unwrap()
    .into_parts();
    device.client.store().save_changes(changes).await.unwrap();
    request::Body::SendGroupMessage(SendGroupMessage {
        group_id: group.to_vec(),
        timestamp,
        content: message.serialized().to_vec(),
        version,
        member_devices: Vec::new(),
    })
}

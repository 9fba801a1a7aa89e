//! The relay is killed with SIGKILL under traffic and restarted on the same data: no message
//! whose send was acknowledged is lost, and none reaches the user twice.
//!
//! The relay runs as a separate process: this test binary re-executes itself with
//! `TANDEM_CRASH_TEST_SERVER` set, and then `server_child_entry` runs the server.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tandem_cli::{Device, DeviceEvent, now, system_rng};
use tandem_core::client::Event;
use tandem_server::{Server, Settings, bind};

const CHILD_ENV: &str = "TANDEM_CRASH_TEST_SERVER";

/// Not a test of its own: the relay process when re-executed (a no-op otherwise).
#[test]
fn server_child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (addr, dir) = spec.split_once('|').expect("addr|dir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut settings = Settings::for_tests(dir.into(), dir.into());
        settings.api_only = true;
        settings.listen = addr.parse().expect("address");
        let server = Server::prepare(&settings).await.expect("prepare");
        let listener = bind(settings.listen).await.expect("bind");
        println!("relay ready");
        server.serve(listener, std::future::pending()).await.expect("serve");
    });
}

fn spawn_relay(addr: &str, dir: &std::path::Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "server_child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{addr}|{}", dir.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("relay ready") {
            break;
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

async fn reconnect(device: &mut Device) {
    for _ in 0..100 {
        if device.reconnect().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_sigkill_under_traffic_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let url = format!("ws://{addr}/v1/socket");
    let mut relay = spawn_relay(&addr, dir.path());
    let mut alice = Device::register(&url, "alice").await.unwrap();
    let mut bob = Device::register(&url, "bob").await.unwrap();
    let b = bob.account_id().await;

    // A sender task keeps sending while the relay is killed under it and restarted.
    let total = 150;
    let connection = std::sync::Arc::new(tokio::sync::RwLock::new(alice.connection().clone()));
    // The relay is killed once this many sends were acknowledged (not after a fixed time,
    // which on a loaded machine may come before any).
    let before_kill = 30;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sender = {
        let client = alice.client.clone();
        let connection = connection.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..total {
                let text = format!("m{i:03}");
                let conn = connection.read().await.clone();
                match client.send_text(&conn, b, &text, now(), &mut system_rng()).await {
                    Ok(_) => {
                        acknowledged.push(text);
                        progress.store(acknowledged.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => assert!(
                        e.is_transient(),
                        "only transient failures while the relay is down: {e}"
                    ),
                }
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            acknowledged
        })
    };
    for _ in 0..3000 {
        if progress.load(std::sync::atomic::Ordering::Relaxed) >= before_kill {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    relay.kill().unwrap(); // SIGKILL, with sends in flight
    relay.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay = spawn_relay(&addr, dir.path());
    reconnect(&mut alice).await;
    *connection.write().await = alice.connection().clone();
    reconnect(&mut bob).await;
    let acknowledged = sender.await.unwrap();
    assert!(acknowledged.len() < total, "some sends failed while the relay was down");
    assert!(acknowledged.len() >= before_kill, "{} acknowledged", acknowledged.len());
    // Whatever was not acknowledged is still in the outbox; send it now.
    let flushed =
        alice.client.flush_outbox(alice.connection(), now(), &mut system_rng()).await.unwrap();
    assert!(flushed.iter().all(|(_, r)| r.is_ok()));
    alice.client.settle().await.unwrap();
    let outbox = tandem_core::store::ClientStore::load_outbox(alice.client.store()).await.unwrap();
    assert!(outbox.is_empty());

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut duplicates_dropped = 0;
    while let Some(e) = bob.next_event(Duration::from_secs(3)).await {
        match e {
            DeviceEvent::Engine(Event::Message(m)) => *seen.entry(m.body.clone()).or_default() += 1,
            DeviceEvent::Engine(Event::Duplicate) => duplicates_dropped += 1,
            DeviceEvent::Engine(e @ (Event::Undecryptable { .. } | Event::Rejected { .. })) => {
                panic!("{e:?}")
            }
            _ => {}
        }
    }
    for text in &acknowledged {
        assert_eq!(
            seen.get(text),
            Some(&1),
            "acknowledged message {text} reached the user exactly once"
        );
    }
    assert_eq!(seen.len(), total, "every message, acknowledged or resent from the outbox, arrived");
    assert!(seen.values().all(|n| *n == 1), "nothing twice");
    eprintln!(
        "{} acknowledged before the crash window ended, {duplicates_dropped} redeliveries dropped",
        acknowledged.len()
    );
    relay.kill().unwrap();
    relay.wait().unwrap();
}

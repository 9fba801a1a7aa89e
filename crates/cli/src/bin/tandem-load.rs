//! `tandem-load`: a load generator for the relay. Many simulated devices over WebSockets on
//! loopback, speaking the relay protocol directly (ciphertexts are opaque to the relay, so
//! no Signal work is done here: the relay is what is measured).
//!
//! Modes:
//! - `throughput`: every device sends to the next at a fixed total rate; reports delivered
//!   messages per second and send-to-delivery latency percentiles;
//! - `idle`: connects every device and reports the relay's resident memory per device
//!   (needs `--server-pid`);
//! - `drain`: queues messages for an offline device, connects it, reports the drain rate and
//!   whether the queue table returns to its size before;
//! - `fanout`: one group message to `devices` single-device members; reports the request
//!   time, copies stored and delivery;
//! - `converse`: a real device (Signal sessions, client fan-out) writes `queued` texts to the
//!   account `--peer` (e.g. a browser), to fill a conversation for the browser benchmarks;
//! - `members`: `devices` real accounts (`PREFIX_m0`, `PREFIX_m1`, …: keys, prekeys, a signed
//!   device list) with `--companions` linked companions each, for the group benchmarks
//!   (`scripts/bench-groups`); they disconnect once registered, their copies queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use tandem_cli::{Connection, Pushes, system_rng};
use tandem_core::auth::{self, Proof};
use tandem_core::group_state::{GroupMember, GroupState, SignedGroupState};
use tandem_core::transport::RelayTransport;
use tandem_core::wire::relay::{
    AcceptGroup, Authenticate, CreateGroup, NewDevice, OutgoingMessage, RegisterAccount,
    SendGroupMessage, SendMessages, Status, push, request, response,
};
use tandem_core::{AccountId, DeviceId, IdentityKeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    Throughput,
    Idle,
    Drain,
    Fanout,
    Converse,
    Members,
}

#[derive(Parser, Debug)]
#[command(about = "Load generator for the Tandem relay")]
struct Args {
    /// The relay's WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080/v1/socket")]
    url: String,
    /// What to measure.
    #[arg(long, value_enum, default_value = "throughput")]
    mode: Mode,
    /// Simulated devices.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Total messages per second (throughput).
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Measured seconds (throughput), after a warm-up of a quarter as long.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Messages queued for the offline device (drain).
    #[arg(long, default_value_t = 10_000)]
    queued: usize,
    /// Ciphertext size in bytes.
    #[arg(long, default_value_t = 200)]
    size: usize,
    /// The relay's process id, to read its memory (idle).
    #[arg(long)]
    server_pid: Option<u32>,
    /// The handle to write to (converse).
    #[arg(long)]
    peer: Option<String>,
    /// Writers (converse): the messages are split evenly between this many accounts, each a
    /// conversation (and a session) of its own at the peer.
    #[arg(long, default_value_t = 1)]
    writers: usize,
    /// Linked companions per account (members).
    #[arg(long, default_value_t = 0)]
    companions: usize,
    /// A prefix for handles, so several runs can share one relay (default: unique per run).
    #[arg(long)]
    prefix: Option<String>,
}

struct Sim {
    conn: Connection,
    pushes: Option<Pushes>,
    account: AccountId,
    identity: IdentityKeyPair,
}

async fn register(url: &str, handle: String) -> Sim {
    let (conn, pushes) = Connection::connect(url).await.expect("connect");
    let mut rng = system_rng();
    let identity = IdentityKeyPair::generate(&mut rng);
    let challenge = conn.challenge().expect("challenge");
    let signature =
        auth::sign(&identity, &challenge, &Proof::RegisterAccount { handle: &handle }, &mut rng);
    let body = request::Body::RegisterAccount(RegisterAccount {
        handle,
        device: Some(NewDevice {
            registration_id: 1,
            identity_key: identity.identity_key().serialize().to_vec(),
            name: "load".into(),
            platform: "load".into(),
            adv_identity: vec![],
        }),
        signature: signature.to_vec(),
        challenge: challenge.nonce.to_vec(),
    });
    let resp = conn.request(body).await.expect("register");
    let Some(response::Body::Registered(r)) = resp.body else {
        panic!("registration refused: {}", resp.message)
    };
    let account = AccountId::from_bytes(&r.account_id).expect("id");
    Sim { conn, pushes: Some(pushes), account, identity }
}

/// A login on `conn` as the primary of `account`.
fn login(conn: &Connection, account: AccountId, identity: &IdentityKeyPair) -> request::Body {
    let challenge = conn.challenge().expect("challenge");
    let proof = Proof::Authenticate { account: &account, device: 1 };
    request::Body::Authenticate(Authenticate {
        account_id: account.0.to_vec(),
        device_id: 1,
        signature: auth::sign(identity, &challenge, &proof, &mut system_rng()).to_vec(),
        challenge: challenge.nonce.to_vec(),
    })
}

async fn register_all(args: &Args, n: usize, tag: &str) -> Vec<Sim> {
    let started = Instant::now();
    let sims = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let prefix = args.prefix.clone().unwrap_or_else(|| format!("l{}", std::process::id()));
        let (sims, next, url, tag) = (sims.clone(), next.clone(), args.url.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let sim = register(&url, format!("{prefix}_{tag}_{i}")).await;
                sims.lock().await.push((i, sim));
            }
        }));
    }
    for t in tasks {
        t.await.expect("registration task");
    }
    let mut list = Arc::try_unwrap(sims).ok().expect("registrations done").into_inner();
    list.sort_by_key(|(i, _)| *i);
    eprintln!("registered {n} devices in {:.1} s", started.elapsed().as_secs_f64());
    list.into_iter().map(|(_, s)| s).collect()
}

fn content(size: usize, t0: Instant) -> Vec<u8> {
    let mut c = vec![0u8; size.max(8)];
    c[..8].copy_from_slice(
        &(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX)).to_le_bytes(),
    );
    c
}

fn send_to(to: AccountId, content: Vec<u8>) -> request::Body {
    request::Body::SendMessages(SendMessages {
        recipient: to.0.to_vec(),
        timestamp: 1,
        messages: vec![OutgoingMessage {
            account_id: to.0.to_vec(),
            device_id: 1,
            registration_id: 1,
            r#type: 2,
            content,
        }],
    })
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "p is in 0..=1")]
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// The relay's `/metrics` counters.
struct Metrics(serde_json::Value);

impl Metrics {
    async fn fetch(url: &str) -> Self {
        let token = std::env::var("TANDEM_METRICS_TOKEN").unwrap_or_default();
        let host = url.trim_start_matches("ws://").split('/').next().expect("host").to_owned();
        let mut s = tokio::net::TcpStream::connect(&host).await.expect("http connect");
        let request = format!(
            "GET /metrics HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        s.write_all(request.as_bytes()).await.expect("http write");
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.expect("http read");
        let body = buf.split("\r\n\r\n").nth(1).unwrap_or("{}");
        Self(serde_json::from_str(body).expect("metrics are JSON"))
    }

    /// A counter by JSON pointer, e.g. `/writes/commits`.
    fn get(&self, pointer: &str) -> u64 {
        self.0.pointer(pointer).and_then(serde_json::Value::as_u64).unwrap_or(0)
    }
}

/// CPU time a process has used (user + system), in clock ticks (1/100 s on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn throughput(args: &Args) {
    let mut sims = register_all(args, args.devices, "tp").await;
    // Prime the relay: one send per device, so the steady state is measured rather than the
    // first look-ups of every account's device set and queue length.
    let n = sims.len();
    let primed = futures_util::future::join_all(sims.iter().enumerate().map(|(i, sim)| {
        sim.conn.request(send_to(sims[(i + 1) % n].account, vec![0; args.size.max(8)]))
    }))
    .await;
    assert!(primed.iter().all(|r| r.as_ref().is_ok_and(|r| r.status() == Status::Ok)));
    let t0 = Instant::now();
    // 0 warm-up, 1 measuring, 2 done; only messages sent inside the window are timed.
    let measuring = Arc::new(AtomicU64::new(0));
    let window_start = Arc::new(AtomicU64::new(u64::MAX));
    let delivered = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u64>::with_capacity(1 << 20)));
    for sim in &mut sims {
        let (conn, mut pushes) = (sim.conn.clone(), sim.pushes.take().expect("pushes"));
        let (measuring, delivered, latencies, window_start) =
            (measuring.clone(), delivered.clone(), latencies.clone(), window_start.clone());
        tokio::spawn(async move {
            while let Some(p) = pushes.recv().await {
                if let Some(push::Body::Envelope(e)) = p.body {
                    conn.ack(e.id);
                    if measuring.load(Ordering::Relaxed) == 1 && e.content.len() >= 8 {
                        let sent = u64::from_le_bytes(e.content[..8].try_into().unwrap_or([0; 8]));
                        let now = u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX);
                        delivered.fetch_add(1, Ordering::Relaxed);
                        if sent < window_start.load(Ordering::Relaxed) {
                            continue;
                        }
                        latencies
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(now.saturating_sub(sent) / 1000);
                    }
                }
            }
        });
    }
    let interval = Duration::from_secs_f64(n as f64 / args.rate);
    let errors = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let total = args.seconds * 1.25;
    for (i, sim) in sims.iter().enumerate() {
        let (conn, to, size) = (sim.conn.clone(), sims[(i + 1) % n].account, args.size);
        let (errors, sent) = (errors.clone(), sent.clone());
        tokio::spawn(async move {
            // Spread the devices' phases over one interval.
            tokio::time::sleep(interval.mul_f64(i as f64 / n as f64)).await;
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let end = Instant::now() + Duration::from_secs_f64(total);
            while Instant::now() < end {
                tick.tick().await;
                let (conn, errors, sent) = (conn.clone(), errors.clone(), sent.clone());
                let body = send_to(to, content(size, t0));
                tokio::spawn(async move {
                    match conn.request(body).await {
                        Ok(r) if r.status() == Status::Ok => {
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
    }
    tokio::time::sleep(Duration::from_secs_f64(args.seconds * 0.25)).await;
    window_start
        .store(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    measuring.store(1, Ordering::Relaxed);
    let window = Instant::now();
    let before = Metrics::fetch(&args.url).await;
    let cpu_before = args.server_pid.map(cpu_ticks);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    measuring.store(2, Ordering::Relaxed);
    let elapsed = window.elapsed().as_secs_f64();
    let count = delivered.load(Ordering::Relaxed);
    // Relay CPU over the window, and per message delivered in it (a tick is 10 ms).
    let relay_cpu = match (args.server_pid, cpu_before) {
        (Some(pid), Some(t)) => {
            let ticks = cpu_ticks(pid).saturating_sub(t) as f64;
            format!(
                " relay_cpu={:.0}% relay_cpu_per_delivery={:.1}us",
                ticks / elapsed,
                ticks * 10_000.0 / count.max(1) as f64
            )
        }
        _ => String::new(),
    };
    let after = Metrics::fetch(&args.url).await;
    let delta = |key: &str| after.get(key).saturating_sub(before.get(key));
    let commits = delta("/writes/commits").max(1);
    let mut lat =
        std::mem::take(&mut *latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    lat.sort_unstable();
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!(
        "throughput devices={n} offered={:.0}/s delivered={:.0}/s p50={:.2}ms p99={:.2}ms p999={:.2}ms max={:.2}ms sends_ok={} send_errors={} commits/s={:.0} rows/commit={:.1}{relay_cpu}",
        args.rate,
        count as f64 / elapsed,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        percentile(&lat, 1.0),
        sent.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        commits as f64 / elapsed,
        (delta("/writes/inserted") + delta("/writes/deleted")) as f64 / commits as f64,
    );
}

async fn idle(args: &Args) {
    let pid = args.server_pid.expect("--server-pid is needed to read the relay's memory");
    // A fresh relay's resident size: everything the sockets, the registrations and the
    // allocator's growth add is counted against it (an upper bound per socket).
    let fresh = rss_kib(pid);
    let sims = register_all(args, args.devices, "idle").await;
    let accounts: Vec<(AccountId, IdentityKeyPair)> =
        sims.iter().map(|s| (s.account, s.identity.clone())).collect();
    for s in &sims {
        s.conn.close();
    }
    drop(sims);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut conns = Vec::with_capacity(accounts.len());
    for chunk in accounts.chunks(64) {
        let mut batch = Vec::new();
        for (a, identity) in chunk {
            let url = args.url.clone();
            let (a, identity) = (*a, identity.clone());
            batch.push(tokio::spawn(async move {
                let (conn, pushes) = Connection::connect(&url).await.expect("connect");
                let r = conn.request(login(&conn, a, &identity)).await.expect("authenticate");
                assert_eq!(r.status(), Status::Ok, "{}", r.message);
                (conn, pushes)
            }));
        }
        for b in batch {
            conns.push(b.await.expect("connect task"));
        }
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = rss_kib(pid);
    let metrics = Metrics::fetch(&args.url).await;
    println!(
        "idle devices={} connected={} connect_time={:.1}s rss_fresh={}KiB rss_before={}KiB rss_after={}KiB per_device={:.2}KiB per_device_vs_fresh={:.2}KiB",
        conns.len(),
        metrics.get("/connected_devices"),
        connect_time.as_secs_f64(),
        fresh,
        before,
        after,
        after.saturating_sub(before) as f64 / conns.len() as f64,
        after.saturating_sub(fresh) as f64 / conns.len() as f64
    );
}

async fn drain(args: &Args) {
    let mut sims = register_all(args, 2, "drain").await;
    let receiver = sims.pop().expect("receiver");
    let sender = sims.pop().expect("sender");
    let receiver_account = receiver.account;
    let receiver_identity = receiver.identity.clone();
    receiver.conn.close();
    drop(receiver);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = Metrics::fetch(&args.url).await.get("/queued");
    let t0 = Instant::now();
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(args.queued);
    for _ in 0..args.queued {
        let permit = permits.clone().acquire_owned().await.expect("semaphore");
        let conn = sender.conn.clone();
        let body = send_to(receiver_account, content(args.size, t0));
        tasks.push(tokio::spawn(async move {
            let r = conn.request(body).await;
            drop(permit);
            matches!(r, Ok(ref r) if r.status() == Status::Ok)
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap_or(false));
    }
    let enqueue = started.elapsed().as_secs_f64();
    let queued = Metrics::fetch(&args.url).await.get("/queued");
    let (conn, mut pushes) = Connection::connect(&args.url).await.expect("connect");
    let started = Instant::now();
    conn.request(login(&conn, receiver_account, &receiver_identity)).await.expect("authenticate");
    let mut got = 0;
    while got < ok {
        match tokio::time::timeout(Duration::from_secs(30), pushes.recv()).await {
            Ok(Some(p)) => {
                if let Some(push::Body::Envelope(e)) = p.body {
                    conn.ack(e.id);
                    got += 1;
                }
            }
            _ => break,
        }
    }
    let drained = started.elapsed().as_secs_f64();
    let settle = Instant::now();
    let mut after = u64::MAX;
    while settle.elapsed() < Duration::from_secs(30) {
        after = Metrics::fetch(&args.url).await.get("/queued");
        if after <= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "drain queued={ok} enqueue={:.0}/s drained={got} drain_rate={:.0}/s queue_before={before} queue_full={queued} queue_after={after} settled_in={:.2}s",
        ok as f64 / enqueue,
        got as f64 / drained,
        settle.elapsed().as_secs_f64()
    );
}

async fn fanout(args: &Args) {
    let mut sims = register_all(args, args.devices + 1, "fan").await;
    let sender = sims.remove(0);
    let t0 = Instant::now();
    let delivered = Arc::new(AtomicU64::new(0));
    let last = Arc::new(AtomicU64::new(0));
    for sim in &mut sims {
        let (conn, mut pushes) = (sim.conn.clone(), sim.pushes.take().expect("pushes"));
        let (delivered, last) = (delivered.clone(), last.clone());
        tokio::spawn(async move {
            while let Some(p) = pushes.recv().await {
                if let Some(push::Body::Envelope(e)) = p.body {
                    conn.ack(e.id);
                    delivered.fetch_add(1, Ordering::Relaxed);
                    last.fetch_max(
                        u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                }
            }
        });
    }
    let mut members: Vec<GroupMember> =
        sims.iter().map(|s| GroupMember { account_id: s.account, admin: false }).collect();
    members.push(GroupMember { account_id: sender.account, admin: true });
    members.sort();
    let mut group_id = [0u8; 16];
    rand_core::Rng::fill_bytes(&mut system_rng(), &mut group_id);
    let state = GroupState {
        group_id,
        version: 1,
        previous: [0; 32],
        title: "load".into(),
        members,
        signer: sender.account,
        signer_device: DeviceId::PRIMARY,
        timestamp: 1,
    };
    let signed = SignedGroupState::sign(state, &sender.identity, None, &mut system_rng())
        .expect("group state");
    let resp = sender
        .conn
        .request(request::Body::CreateGroup(CreateGroup {
            signed_state: signed.as_bytes().to_vec(),
        }))
        .await
        .expect("create group");
    assert_eq!(resp.status(), Status::Ok, "group refused: {}", resp.message);
    // Every member accepts the invitation (a stranger's group reaches nobody before).
    for sim in &sims {
        let accept = AcceptGroup { group_id: group_id.to_vec(), accept: true };
        let r = sim.conn.request(request::Body::AcceptGroup(accept)).await.expect("accept");
        assert_eq!(r.status(), Status::Ok, "{}", r.message);
    }
    // The device sets the relay checks before it stores anything: every member's one
    // device (registration id 1), none for the sender (its sending device is left out).
    let mut accounts: Vec<AccountId> = sims.iter().map(|s| s.account).collect();
    accounts.push(sender.account);
    accounts.sort_unstable();
    let member_devices: Vec<u8> = accounts
        .iter()
        .flat_map(|a| {
            let devices = if *a == sender.account { vec![] } else { vec![(1, 1)] };
            tandem_core::wire::relay::device_set_tag(a, devices)
        })
        .collect();
    let before = Metrics::fetch(&args.url).await.get("/queued");
    let start = u64::try_from(t0.elapsed().as_micros()).unwrap_or(0);
    let resp = sender
        .conn
        .request(request::Body::SendGroupMessage(SendGroupMessage {
            group_id: group_id.to_vec(),
            timestamp: 1,
            content: vec![7; args.size],
            version: 1,
            member_devices,
        }))
        .await
        .expect("group send");
    let accepted = u64::try_from(t0.elapsed().as_micros()).unwrap_or(0) - start;
    let Some(response::Body::Sent(sent)) = resp.body else {
        panic!("group send refused: {}", resp.message)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while delivered.load(Ordering::Relaxed) < u64::from(sent.copies) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "fanout members={} copies_stored={} request_ms={:.1} all_delivered_ms={:.1} delivered={} queue_before={before}",
        sims.len(),
        sent.copies,
        accepted as f64 / 1000.0,
        last.load(Ordering::Relaxed).saturating_sub(start) as f64 / 1000.0,
        delivered.load(Ordering::Relaxed)
    );
}

/// A real device writes `queued` texts to `--peer`.
async fn converse(args: &Args) {
    let peer = args.peer.clone().expect("--peer HANDLE");
    let prefix = args.prefix.clone().unwrap_or_else(|| format!("writer{}", std::process::id()));
    let writers = args.writers.max(1);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    // At most 32 writers at work at once; each registers, finds the peer and writes its share.
    for _ in 0..writers.min(32) {
        let (next, url, peer, prefix) =
            (next.clone(), args.url.clone(), peer.clone(), prefix.clone());
        let (queued, per) = (args.queued, args.queued.div_ceil(writers));
        tasks.push(tokio::spawn(async move {
            loop {
                let w = next.fetch_add(1, Ordering::Relaxed);
                if w >= writers {
                    return;
                }
                let handle = if writers == 1 { prefix.clone() } else { format!("{prefix}_{w}") };
                write_share(&url, &handle, &peer, w * per..((w + 1) * per).min(queued)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    println!(
        "converse: {writers} writers wrote {} messages to {peer} in {:.1} s",
        args.queued,
        started.elapsed().as_secs_f64()
    );
}

/// Registers `devices` real accounts with `companions` linked companions each, eight
/// accounts at a time.
async fn members(args: &Args) {
    let prefix = args.prefix.clone().expect("--prefix PREFIX");
    let (n, companions) = (args.devices, args.companions);
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..n.min(8) {
        let (next, url, prefix) = (next.clone(), args.url.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let handle = format!("{prefix}_m{i}");
                let primary =
                    tandem_cli::Device::register(&url, &handle).await.expect("register a member");
                for c in 0..companions {
                    tandem_cli::Device::link(&primary, &format!("companion {c}"))
                        .await
                        .expect("link a companion");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("member task");
    }
    println!(
        "members: {n} accounts ({prefix}_m0 …) with {companions} companions each in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// One writer: registers `handle` and writes messages `range` to `peer`.
async fn write_share(url: &str, handle: &str, peer: &str, range: std::ops::Range<usize>) {
    use tandem_core::wire::relay::LookupAccount;
    let me = tandem_cli::Device::register(url, handle).await.expect("register the writer");
    let resp = me
        .connection()
        .request(request::Body::LookupAccount(LookupAccount {
            handle: peer.to_owned(),
            account_id: Vec::new(),
        }))
        .await
        .expect("lookup");
    let Some(response::Body::Account(info)) = resp.body else {
        panic!("no account {peer}: {}", resp.message)
    };
    let to = AccountId::from_bytes(&info.account_id).expect("account id");
    let total = range.end;
    for i in range {
        me.send_text(to, &format!("message {i} of {total} from {handle}")).await.expect("send");
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match args.mode {
        Mode::Throughput => throughput(&args).await,
        Mode::Idle => idle(&args).await,
        Mode::Drain => drain(&args).await,
        Mode::Fanout => fanout(&args).await,
        Mode::Converse => converse(&args).await,
        Mode::Members => members(&args).await,
    }
}

//! The queue writer: one thread owns a write connection and commits queue inserts and
//! acknowledgements in batches (group commit). A send is answered only after the batch
//! holding its copies committed, so an acknowledged send survives a crash, while one fsync
//! covers every send that arrived in the meantime.
//!
//! The writer is a plain thread over its own SQLite connection (rusqlite, on the same
//! bundled library as the sqlx pool), not an async task over sqlx: a batch of a few hundred
//! rows runs as a few hundred steps of two cached statements inside one transaction, with no
//! thread crossing per statement and nothing to encode for the database. Each row costs
//! SQLite one b-tree insert or delete and nothing more.
//!
//! The writer also keeps every loaded queue's use: copies and bytes, in all and per sending
//! account. An enqueue that would take a queue over its limits is refused in the same step
//! that would have inserted it (nothing of that send is stored), so concurrent sends cannot
//! overfill a queue, and a sender over its own share is refused while others still get
//! through. A queue's use is read from the database the first time the writer touches it.
//! Expiry runs here too, so the counts never drift.
//!
//! Checkpoints (copying the WAL back into the database) run on a second connection and
//! thread beside the writer, at most every [`CHECKPOINT_INTERVAL`], rather than inside
//! whichever commit crosses SQLite's threshold: a commit never stalls behind one, and since
//! queue rows live briefly, one checkpoint writes each hot page once for many commits.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prost::Message as _;
use rusqlite::{Connection, OptionalExtension, params};
use tandem_core::AccountId;
use tandem_core::wire::relay::Envelope;
use tokio::sync::{mpsc, oneshot};

use super::{CommitListener, QueueInsert, QueueLimits, StorageError, WriteStats};

/// Least time between two checkpoints.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 4096;

/// Least time between the starts of two commits. A send after a quiet moment commits at
/// once; under load, what arrives meanwhile joins the next batch, so the commit rate (and
/// its fsyncs and WAL page writes, the costliest part of a commit) stays bounded while
/// batches grow with the load. At 20 000 messages per second, 1 ms gave ~900 commits of
/// ~25 rows and cost the relay about a fifth more CPU per message than 3 ms (~320 commits of
/// ~125 rows); 5 ms saved nothing more and added latency (BENCHMARKS.md).
const COMMIT_INTERVAL: Duration = Duration::from_millis(3);

/// Inserts one copy.
pub(super) const INSERT_ROW: &str = "INSERT INTO queue (id, account_id, device_id, envelope, expires_at, sender) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

/// A queue's use per sending account, to load it the first time the writer touches it.
const LOAD_USE: &str = "SELECT sender, count(*), coalesce(sum(length(envelope)), 0) FROM queue WHERE account_id = ?1 AND device_id = ?2 GROUP BY sender";

/// Expired copies, oldest first, one page at a time.
const EXPIRED_PAGE: &str = "SELECT id, account_id, device_id, envelope, sender FROM queue WHERE expires_at <= ?1 ORDER BY id LIMIT 500";

/// A tombstone for an expired copy.
const INSERT_TOMBSTONE: &str = "INSERT INTO expired (account_id, device_id, source_account, source_device, client_timestamp, created_at, group_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// Empties a removed device's queue.
const PURGE_DEVICE: &str = "DELETE FROM queue WHERE account_id = ?1 AND device_id = ?2";

/// How long the writer remembers a removed device, refusing copies for it. A send checked
/// against the device list before the removal reaches the writer within seconds (requests
/// time out after 30 s); device ids are never reused.
const FORGET_REMOVED_AFTER: Duration = Duration::from_secs(600);

/// Deletes one acknowledged copy, found by rowid, only if it belongs to the device that
/// acknowledged it; tells whose it was and how large, for the queue's counts.
pub(super) const DELETE_ACKED: &str = "DELETE FROM queue WHERE id = ?1 AND account_id = ?2 AND device_id = ?3 RETURNING sender, length(envelope)";

/// One queue's use: copies and bytes, in all and per sending account.
#[derive(Debug, Default)]
struct QueueUse {
    len: u64,
    bytes: u64,
    senders: HashMap<AccountId, (u64, u64)>,
}

impl QueueUse {
    fn add(&mut self, sender: AccountId, bytes: u64) {
        self.len += 1;
        self.bytes += bytes;
        let s = self.senders.entry(sender).or_default();
        s.0 += 1;
        s.1 += bytes;
    }

    fn remove(&mut self, sender: AccountId, bytes: u64) {
        self.len = self.len.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
        if let Some(s) = self.senders.get_mut(&sender) {
            s.0 = s.0.saturating_sub(1);
            s.1 = s.1.saturating_sub(bytes);
            if s.0 == 0 {
                self.senders.remove(&sender);
            }
        }
    }

    fn of(&self, sender: AccountId) -> (u64, u64) {
        self.senders.get(&sender).copied().unwrap_or_default()
    }
}

/// Whether one more copy of `bytes` from `sender` fits a queue that holds `held` and will
/// also take `planned` (earlier copies of the same send); `Err(sender_over)` if not.
fn admits(
    held: &QueueUse,
    planned: &QueueUse,
    sender: AccountId,
    bytes: u64,
    limits: &QueueLimits,
) -> Result<(), bool> {
    let ((n1, b1), (n2, b2)) = (held.of(sender), planned.of(sender));
    if n1 + n2 + 1 > limits.max_len_per_sender || b1 + b2 + bytes > limits.max_bytes_per_sender {
        return Err(true);
    }
    if held.len + planned.len + 1 > limits.max_len
        || held.bytes + planned.bytes + bytes > limits.max_bytes
    {
        return Err(false);
    }
    Ok(())
}

fn sender_of(bytes: &[u8]) -> AccountId {
    AccountId::from_bytes(bytes).unwrap_or(AccountId([0; 16]))
}

pub(super) enum WriteOp {
    Enqueue {
        rows: Vec<QueueInsert>,
        expires_at: u64,
        limits: QueueLimits,
        /// Per row, its id, or `None` when the device no longer exists.
        reply: oneshot::Sender<Result<Vec<Option<u64>>, StorageError>>,
    },
    /// Moves up to a page of expired copies to tombstones and drops tombstones older than
    /// `tombstone_before`; learns how many copies expired.
    Expire { now: u64, tombstone_before: u64, reply: oneshot::Sender<Result<u64, StorageError>> },
    /// Deletes acknowledged copies; `reply`, if any, learns how many went.
    Ack {
        account: AccountId,
        device: u32,
        ids: Vec<u64>,
        reply: Option<oneshot::Sender<Result<u64, StorageError>>>,
    },
    /// A device was removed (its row is already gone): empty its queue, including copies of
    /// a send checked before the removal that committed after it, and refuse copies for it
    /// from now on. A send and a removal race only here, in the writer's order, so no copy is ever left
    /// behind for a removed device. With `removed` false (a primary that re-registered and
    /// stays) the queue is emptied but new copies are taken.
    Forget {
        account: AccountId,
        device: u32,
        removed: bool,
        reply: oneshot::Sender<Result<u64, StorageError>>,
    },
}

/// Messages to the writer thread: work, or the request to stop.
enum Command {
    Op(WriteOp),
    Close,
}

/// Counters the writer keeps.
#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    operations: AtomicU64,
    inserted: AtomicU64,
    deleted: AtomicU64,
    /// Copies queued now (counted once at start, then kept).
    queued: AtomicU64,
}

/// Handle to the writer thread.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    tx: mpsc::UnboundedSender<Command>,
    counters: Arc<Counters>,
}

/// Resolves once the writer and its checkpointer have stopped.
pub(super) type Stopped = oneshot::Receiver<()>;

fn backend(e: rusqlite::Error) -> StorageError {
    StorageError::Backend(Box::new(e))
}

/// Opens a connection to the relay database with the settings every writer needs:
/// `synchronous = FULL` (a commit is durable when it returns) and no automatic checkpoint.
fn open(path: &Path) -> Result<Connection, StorageError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(backend)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 0;",
    )
    .map_err(backend)?;
    Ok(conn)
}

impl Writer {
    /// Starts the writer and its checkpointer on two new connections to `path`. They stop
    /// after [`Writer::close`] (or once every handle is dropped), when the last batch and a
    /// final checkpoint are done.
    ///
    /// The channel to the writer is unbounded: what waits in it is bounded by the requests
    /// each socket may have in flight and by the pushes each device may hold unacknowledged.
    pub(super) fn spawn(
        path: &Path,
        next_id: u64,
        listener: Arc<OnceLock<CommitListener>>,
    ) -> Result<(Self, Stopped), StorageError> {
        let conn = open(path)?;
        let checkpointer = open(path)?;
        let queued: i64 =
            conn.query_row("SELECT count(*) FROM queue", [], |r| r.get(0)).map_err(backend)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (committed_tx, committed_rx) = std::sync::mpsc::sync_channel(1);
        let (stopped_tx, stopped) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        counters.queued.store(u64::try_from(queued).unwrap_or(0), Ordering::Relaxed);
        let thread_counters = counters.clone();
        let checkpoints = std::thread::Builder::new()
            .name("queue-checkpoints".into())
            .spawn(move || checkpoints(&checkpointer, &committed_rx))
            .map_err(|e| StorageError::Backend(Box::new(e)))?;
        std::thread::Builder::new()
            .name("queue-writer".into())
            .spawn(move || {
                let state = State {
                    next_id,
                    removed: HashMap::new(),
                    listener,
                    counters: thread_counters,
                    queues: HashMap::new(),
                };
                run(conn, rx, state, committed_tx);
                let _ = checkpoints.join();
                let _ = stopped_tx.send(());
            })
            .map_err(|e| StorageError::Backend(Box::new(e)))?;
        Ok((Self { tx, counters }, stopped))
    }

    pub(super) fn stats(&self) -> WriteStats {
        let c = &self.counters;
        WriteStats {
            commits: c.commits.load(Ordering::Relaxed),
            operations: c.operations.load(Ordering::Relaxed),
            inserted: c.inserted.load(Ordering::Relaxed),
            deleted: c.deleted.load(Ordering::Relaxed),
        }
    }

    /// Copies queued now.
    pub(super) fn queued(&self) -> u64 {
        self.counters.queued.load(Ordering::Relaxed)
    }

    /// Hands an operation to the writer; it is answered on its `reply` after its commit.
    pub(super) fn submit(&self, op: WriteOp) -> Result<(), StorageError> {
        self.tx
            .send(Command::Op(op))
            .map_err(|_| StorageError::Backend("queue writer stopped".into()))
    }

    /// Asks the writer to commit what it has and stop.
    pub(super) fn close(&self) {
        let _ = self.tx.send(Command::Close);
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What the writer thread owns.
struct State {
    next_id: u64,
    /// Removed devices, and when the writer learnt of it.
    removed: HashMap<(AccountId, u32), Instant>,
    listener: Arc<OnceLock<CommitListener>>,
    counters: Arc<Counters>,
    /// The use of every queue the writer touched since it started, while not empty.
    queues: HashMap<(AccountId, u32), QueueUse>,
}

fn run(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Command>,
    mut state: State,
    committed: std::sync::mpsc::SyncSender<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    let mut last_commit: Option<Instant> = None;
    while !closing {
        match rx.blocking_recv() {
            Some(Command::Op(op)) => batch.push(op),
            Some(Command::Close) | None => break,
        }
        if let Some(due) = last_commit.map(|t| t + COMMIT_INTERVAL) {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        last_commit = Some(Instant::now());
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Command::Op(op)) => batch.push(op),
                Ok(Command::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let now = Instant::now();
        for op in &batch {
            if let WriteOp::Forget { account, device, removed: true, .. } = op {
                state.removed.retain(|_, at| now.duration_since(*at) < FORGET_REMOVED_AFTER);
                state.removed.insert((*account, *device), now);
            }
        }
        match commit(&mut conn, &batch, &mut state.next_id, &state.removed, &mut state.queues) {
            Ok(outcomes) => {
                let _ = committed.try_send(());
                state.after_commit(&mut batch, outcomes);
            }
            Err(e) => {
                tracing::error!(error = %e, ops = batch.len(), "queue batch failed; nothing was stored");
                let reason = e.to_string();
                for op in batch.drain(..) {
                    let err = || StorageError::Backend(reason.clone().into());
                    match op {
                        WriteOp::Enqueue { reply, .. } => {
                            let _ = reply.send(Err(err()));
                        }
                        WriteOp::Ack { reply, .. } => {
                            if let Some(reply) = reply {
                                let _ = reply.send(Err(err()));
                            }
                        }
                        WriteOp::Forget { reply, .. } | WriteOp::Expire { reply, .. } => {
                            let _ = reply.send(Err(err()));
                        }
                    }
                }
                // The counts may hold changes of the rolled-back batch: read them afresh.
                state.queues.clear();
            }
        }
    }
    let _ = conn.close();
}

impl State {
    /// Counts, hands committed copies to the listener, answers.
    fn after_commit(&self, batch: &mut Vec<WriteOp>, outcomes: Vec<Outcome>) {
        let c = &self.counters;
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.operations.fetch_add(batch.len() as u64, Ordering::Relaxed);
        for outcome in &outcomes {
            match outcome {
                Outcome::Ids(ids) => {
                    let stored = ids.iter().flatten().count() as u64;
                    c.inserted.fetch_add(stored, Ordering::Relaxed);
                    c.queued.fetch_add(stored, Ordering::Relaxed);
                }
                Outcome::Deleted(n) | Outcome::Expired(n) => {
                    c.deleted.fetch_add(*n, Ordering::Relaxed);
                    let _ = c.queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
                        Some(q.saturating_sub(*n))
                    });
                }
                Outcome::Full(_) => {}
            }
        }
        // Tell the listener before answering: committed copies reach connected devices in
        // commit order, so each device sees its ids increase.
        if let Some(listener) = self.listener.get() {
            let mut committed = Vec::new();
            for (op, outcome) in batch.iter().zip(&outcomes) {
                if let (WriteOp::Enqueue { rows, .. }, Outcome::Ids(ids)) = (op, outcome) {
                    committed.extend(rows.iter().zip(ids).filter_map(|(r, id)| {
                        id.map(|id| (r.account_id, r.device_id, id, r.envelope.clone()))
                    }));
                }
            }
            if !committed.is_empty() {
                listener(committed);
            }
        }
        for (op, outcome) in batch.drain(..).zip(outcomes) {
            match (op, outcome) {
                (WriteOp::Enqueue { reply, .. }, Outcome::Ids(ids)) => {
                    let _ = reply.send(Ok(ids));
                }
                (WriteOp::Enqueue { reply, .. }, Outcome::Full(sender_over)) => {
                    let _ = reply.send(Err(StorageError::QueueFull { sender_over }));
                }
                (
                    WriteOp::Ack { reply: Some(reply), .. } | WriteOp::Forget { reply, .. },
                    Outcome::Deleted(n),
                )
                | (WriteOp::Expire { reply, .. }, Outcome::Expired(n)) => {
                    let _ = reply.send(Ok(n));
                }
                (WriteOp::Ack { reply: None, .. }, _) => {}
                (WriteOp::Enqueue { reply, .. }, _) => {
                    let _ =
                        reply.send(Err(StorageError::Backend("writer outcome mismatch".into())));
                }
                (
                    WriteOp::Ack { reply: Some(reply), .. }
                    | WriteOp::Forget { reply, .. }
                    | WriteOp::Expire { reply, .. },
                    _,
                ) => {
                    let _ =
                        reply.send(Err(StorageError::Backend("writer outcome mismatch".into())));
                }
            }
        }
    }
}

/// Checkpoints after commits, at most every [`CHECKPOINT_INTERVAL`]; truncates the WAL
/// once the writer has stopped.
fn checkpoints(conn: &Connection, committed: &std::sync::mpsc::Receiver<()>) {
    while committed.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        // PASSIVE: copies what no reader still needs, never waits for anyone.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "checkpoint failed; the WAL keeps growing until one succeeds");
        }
    }
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "final checkpoint failed");
    }
}

enum Outcome {
    /// Per row of an enqueue, its id if it was stored.
    Ids(Vec<Option<u64>>),
    /// An enqueue refused as a whole: a queue is full (`true`: the sender's share of it).
    Full(bool),
    Deleted(u64),
    Expired(u64),
}

/// The use of a queue, loaded from the database the first time.
fn queue_use<'a>(
    tx: &rusqlite::Transaction<'_>,
    queues: &'a mut HashMap<(AccountId, u32), QueueUse>,
    account: AccountId,
    device: u32,
) -> Result<&'a mut QueueUse, rusqlite::Error> {
    match queues.entry((account, device)) {
        std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::hash_map::Entry::Vacant(e) => {
            let mut q = QueueUse::default();
            let mut stmt = tx.prepare_cached(LOAD_USE)?;
            let mut rows = stmt.query(params![account.0.as_slice(), device])?;
            while let Some(row) = rows.next()? {
                let sender = sender_of(&row.get::<_, Vec<u8>>(0)?);
                let n = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
                let b = u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0);
                q.len += n;
                q.bytes += b;
                q.senders.insert(sender, (n, b));
            }
            Ok(e.insert(q))
        }
    }
}

/// Runs a whole batch in one transaction: ids are assigned in operation order, so each
/// device's queue order is commit order. Copies for `removed` devices are not stored; an
/// enqueue that would overfill a queue stores nothing.
fn commit(
    conn: &mut Connection,
    batch: &[WriteOp],
    next_id: &mut u64,
    removed: &HashMap<(AccountId, u32), Instant>,
    queues: &mut HashMap<(AccountId, u32), QueueUse>,
) -> Result<Vec<Outcome>, rusqlite::Error> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut id = *next_id;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for op in batch {
        match op {
            WriteOp::Enqueue { rows, expires_at, limits, .. } => {
                // Check every target first (several copies may go to one queue), then insert.
                let mut planned: HashMap<(AccountId, u32), QueueUse> = HashMap::new();
                let mut full = None;
                for r in rows.iter().filter(|r| !removed.contains_key(&(r.account_id, r.device_id)))
                {
                    let key = (r.account_id, r.device_id);
                    let bytes = r.envelope.len() as u64;
                    let held = queue_use(&tx, queues, r.account_id, r.device_id)?;
                    let extra = planned.entry(key).or_default();
                    if let Err(sender_over) = admits(held, extra, r.sender, bytes, limits) {
                        full = Some(sender_over);
                        break;
                    }
                    extra.add(r.sender, bytes);
                }
                if let Some(sender_over) = full {
                    outcomes.push(Outcome::Full(sender_over));
                    continue;
                }
                let mut insert = tx.prepare_cached(INSERT_ROW)?;
                let mut ids = Vec::with_capacity(rows.len());
                for r in rows {
                    if removed.contains_key(&(r.account_id, r.device_id)) {
                        ids.push(None);
                        continue;
                    }
                    insert.execute(params![
                        to_i64(id),
                        r.account_id.0.as_slice(),
                        r.device_id,
                        r.envelope.as_ref(),
                        to_i64(*expires_at),
                        r.sender.0.as_slice(),
                    ])?;
                    if let Some(q) = queues.get_mut(&(r.account_id, r.device_id)) {
                        q.add(r.sender, r.envelope.len() as u64);
                    }
                    ids.push(Some(id));
                    id += 1;
                }
                outcomes.push(Outcome::Ids(ids));
            }
            WriteOp::Ack { account, device, ids, .. } => {
                let mut delete = tx.prepare_cached(DELETE_ACKED)?;
                let mut deleted = 0;
                for acked in ids {
                    let gone: Option<(Vec<u8>, i64)> = delete
                        .query_row(params![to_i64(*acked), account.0.as_slice(), device], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()?;
                    if let Some((sender, bytes)) = gone {
                        deleted += 1;
                        if let Some(q) = queues.get_mut(&(*account, *device)) {
                            q.remove(sender_of(&sender), u64::try_from(bytes).unwrap_or(0));
                        }
                    }
                }
                if queues.get(&(*account, *device)).is_some_and(|q| q.len == 0) {
                    queues.remove(&(*account, *device));
                }
                outcomes.push(Outcome::Deleted(deleted));
            }
            WriteOp::Forget { account, device, .. } => {
                let n = tx
                    .prepare_cached(PURGE_DEVICE)?
                    .execute(params![account.0.as_slice(), device])?;
                queues.remove(&(*account, *device));
                outcomes.push(Outcome::Deleted(n as u64));
            }
            WriteOp::Expire { now, tombstone_before, .. } => {
                outcomes.push(Outcome::Expired(expire_page(&tx, queues, *now, *tombstone_before)?));
            }
        }
    }
    tx.commit()?;
    *next_id = id;
    Ok(outcomes)
}

/// An expired copy: rowid, account, device, envelope, sender.
type ExpiredCopy = (i64, Vec<u8>, i64, Vec<u8>, Vec<u8>);

/// One page of expiry: copies past their time become tombstones (what the device is told:
/// sender, device, timestamp, group; never the content), and old tombstones go.
fn expire_page(
    tx: &rusqlite::Transaction<'_>,
    queues: &mut HashMap<(AccountId, u32), QueueUse>,
    now: u64,
    tombstone_before: u64,
) -> Result<u64, rusqlite::Error> {
    tx.prepare_cached("DELETE FROM expired WHERE created_at < ?1")?
        .execute(params![to_i64(tombstone_before)])?;
    let rows: Vec<ExpiredCopy> = tx
        .prepare_cached(EXPIRED_PAGE)?
        .query_map(params![to_i64(now)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut tombstone = tx.prepare_cached(INSERT_TOMBSTONE)?;
    let mut delete = tx.prepare_cached("DELETE FROM queue WHERE id = ?1")?;
    for (id, account, device, envelope, sender) in &rows {
        let env = Envelope::decode(envelope.as_slice()).unwrap_or_default();
        tombstone.execute(params![
            account,
            device,
            env.source_account,
            env.source_device,
            to_i64(env.client_timestamp),
            to_i64(now),
            env.group_id,
        ])?;
        delete.execute(params![id])?;
        let key = (sender_of(account), u32::try_from(*device).unwrap_or(0));
        if let Some(q) = queues.get_mut(&key) {
            q.remove(sender_of(sender), envelope.len() as u64);
        }
    }
    Ok(rows.len() as u64)
}

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
//! Checkpoints (copying the WAL back into the database) run on a second connection and
//! thread beside the writer, at most every [`CHECKPOINT_INTERVAL`], rather than inside
//! whichever commit crosses SQLite's threshold: a commit never stalls behind one, and since
//! queue rows live briefly, one checkpoint writes each hot page once for many commits.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use tandem_core::AccountId;
use tokio::sync::{mpsc, oneshot};

use super::{CommitListener, QueueInsert, StorageError, WriteStats};

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
pub(super) const INSERT_ROW: &str = "INSERT INTO queue (id, account_id, device_id, envelope, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// Empties a removed device's queue.
const PURGE_DEVICE: &str = "DELETE FROM queue WHERE account_id = ?1 AND device_id = ?2";

/// How long the writer remembers a removed device, refusing copies for it. A send checked
/// against the device list before the removal reaches the writer within seconds (requests
/// time out after 30 s); device ids are never reused.
const FORGET_REMOVED_AFTER: Duration = Duration::from_secs(600);

/// Queue length per device, kept by the writer as it commits (see `SqliteStorage`).
pub(super) type QueueCounters = Arc<Mutex<HashMap<(AccountId, u32), u64>>>;

/// Locks the counters, whatever a panicking holder left.
pub(super) fn lock(
    counters: &QueueCounters,
) -> std::sync::MutexGuard<'_, HashMap<(AccountId, u32), u64>> {
    counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Deletes one acknowledged copy, found by rowid, only if it belongs to the device that
/// acknowledged it.
pub(super) const DELETE_ACKED: &str =
    "DELETE FROM queue WHERE id = ?1 AND account_id = ?2 AND device_id = ?3";

pub(super) enum WriteOp {
    Enqueue {
        rows: Vec<QueueInsert>,
        expires_at: u64,
        /// Per row, its id, or `None` when the device no longer exists.
        reply: oneshot::Sender<Result<Vec<Option<u64>>, StorageError>>,
    },
    /// Deletes acknowledged copies; `reply`, if any, learns how many went.
    Ack {
        account: AccountId,
        device: u32,
        ids: Vec<u64>,
        reply: Option<oneshot::Sender<Result<u64, StorageError>>>,
    },
    /// A device was removed (its row is already gone): empty its queue again, in case a
    /// send checked before the removal committed after it, and refuse copies for it from now
    /// on. A send and a removal race only here, in the writer's order, so no copy is ever left
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
        queue_counters: QueueCounters,
    ) -> Result<(Self, Stopped), StorageError> {
        let conn = open(path)?;
        let checkpointer = open(path)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let (committed_tx, committed_rx) = std::sync::mpsc::sync_channel(1);
        let (stopped_tx, stopped) = oneshot::channel();
        let counters = Arc::new(Counters::default());
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
                    queue_counters,
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
    queue_counters: QueueCounters,
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
        match commit(&mut conn, &batch, &mut state.next_id, &state.removed) {
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
                        WriteOp::Forget { reply, .. } => {
                            let _ = reply.send(Err(err()));
                        }
                    }
                }
            }
        }
    }
    let _ = conn.close();
}

impl State {
    /// Counts, keeps the queue lengths, hands committed copies to the listener, answers.
    fn after_commit(&self, batch: &mut Vec<WriteOp>, outcomes: Vec<Outcome>) {
        let c = &self.counters;
        c.commits.fetch_add(1, Ordering::Relaxed);
        c.operations.fetch_add(batch.len() as u64, Ordering::Relaxed);
        {
            let mut lengths = lock(&self.queue_counters);
            for (op, outcome) in batch.iter().zip(&outcomes) {
                match (op, outcome) {
                    (WriteOp::Enqueue { rows, .. }, Outcome::Ids(ids)) => {
                        let mut stored = 0;
                        for (r, id) in rows.iter().zip(ids) {
                            if id.is_some() {
                                stored += 1;
                                if let Some(n) = lengths.get_mut(&(r.account_id, r.device_id)) {
                                    *n += 1;
                                }
                            }
                        }
                        c.inserted.fetch_add(stored, Ordering::Relaxed);
                    }
                    (WriteOp::Ack { account, device, .. }, Outcome::Deleted(n)) => {
                        c.deleted.fetch_add(*n, Ordering::Relaxed);
                        if let Some(len) = lengths.get_mut(&(*account, *device)) {
                            *len = len.saturating_sub(*n);
                        }
                    }
                    (WriteOp::Forget { account, device, .. }, _) => {
                        lengths.remove(&(*account, *device));
                    }
                    _ => {}
                }
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
                (
                    WriteOp::Ack { reply: Some(reply), .. } | WriteOp::Forget { reply, .. },
                    Outcome::Deleted(n),
                ) => {
                    let _ = reply.send(Ok(n));
                }
                (WriteOp::Ack { reply: None, .. }, _) => {}
                (WriteOp::Enqueue { reply, .. }, _) => {
                    let _ =
                        reply.send(Err(StorageError::Backend("writer outcome mismatch".into())));
                }
                (WriteOp::Ack { reply: Some(reply), .. } | WriteOp::Forget { reply, .. }, _) => {
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
    Deleted(u64),
}

/// Runs a whole batch in one transaction: ids are assigned in operation order, so each
/// device's queue order is commit order. Copies for `removed` devices are not stored.
fn commit(
    conn: &mut Connection,
    batch: &[WriteOp],
    next_id: &mut u64,
    removed: &HashMap<(AccountId, u32), Instant>,
) -> Result<Vec<Outcome>, rusqlite::Error> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut id = *next_id;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut insert = tx.prepare_cached(INSERT_ROW)?;
        let mut delete = tx.prepare_cached(DELETE_ACKED)?;
        for op in batch {
            match op {
                WriteOp::Enqueue { rows, expires_at, .. } => {
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
                        ])?;
                        ids.push(Some(id));
                        id += 1;
                    }
                    outcomes.push(Outcome::Ids(ids));
                }
                WriteOp::Ack { account, device, ids, .. } => {
                    let mut deleted = 0;
                    for acked in ids {
                        deleted +=
                            delete.execute(params![to_i64(*acked), account.0.as_slice(), device])?
                                as u64;
                    }
                    outcomes.push(Outcome::Deleted(deleted));
                }
                WriteOp::Forget { account, device, .. } => {
                    let n = tx
                        .prepare_cached(PURGE_DEVICE)?
                        .execute(params![account.0.as_slice(), device])?;
                    outcomes.push(Outcome::Deleted(n as u64));
                }
            }
        }
    }
    tx.commit()?;
    *next_id = id;
    Ok(outcomes)
}

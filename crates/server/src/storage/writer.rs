//! The queue writer: one task owns a write connection and commits queue inserts and
//! acknowledgements in batches (group commit). A send is answered only after the batch
//! holding its copies committed, so an acknowledged send survives a crash, while one fsync
//! covers every send that arrived in the meantime.
//!
//! Checkpoints (copying the WAL back into the database) run on a second connection beside
//! the writer, at most every [`CHECKPOINT_INTERVAL`], rather than inside whichever commit
//! crosses SQLite's threshold: a commit never stalls behind one, and since queue rows live
//! briefly, one checkpoint writes each hot page once for many commits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;
use tandem_core::AccountId;
use tokio::sync::{mpsc, oneshot};

use super::{CommitListener, QueueInsert, StorageError, WriteStats};

/// Least time between two checkpoints.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 2048;

pub(super) enum WriteOp {
    Enqueue {
        rows: Vec<QueueInsert>,
        expires_at: u64,
        /// Per row, its id, or `None` when the device no longer exists.
        reply: oneshot::Sender<Result<Vec<Option<u64>>, StorageError>>,
    },
    Ack {
        account: AccountId,
        device: u32,
        ids: Vec<u64>,
        reply: oneshot::Sender<Result<u64, StorageError>>,
    },
}

/// Messages to the writer task: work, or the request to stop.
enum Command {
    Op(WriteOp),
    Close,
}

/// Counters the writer task keeps.
#[derive(Debug, Default)]
struct Counters {
    commits: AtomicU64,
    operations: AtomicU64,
    inserted: AtomicU64,
    deleted: AtomicU64,
}

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    tx: mpsc::Sender<Command>,
    counters: Arc<Counters>,
}

impl Writer {
    /// Starts the writer on `conn` and its checkpointer on `checkpointer`. The task ends
    /// after [`Writer::close`], once the last batch and a final checkpoint are done.
    pub(super) fn spawn(
        conn: SqliteConnection,
        checkpointer: SqliteConnection,
        next_id: u64,
        listener: Arc<OnceLock<CommitListener>>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8192);
        let (committed_tx, committed_rx) = mpsc::channel(1);
        let counters = Arc::new(Counters::default());
        let writer = run(conn, rx, next_id, listener, counters.clone(), committed_tx);
        let task = tokio::spawn(async move {
            let checkpoints = tokio::spawn(checkpoints(checkpointer, committed_rx));
            writer.await;
            let _ = checkpoints.await;
        });
        (Self { tx, counters }, task)
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

    pub(super) async fn submit(&self, op: WriteOp) -> Result<(), StorageError> {
        self.tx
            .send(Command::Op(op))
            .await
            .map_err(|_| StorageError::Backend("queue writer stopped".into()))
    }

    /// Asks the task to commit what it has and stop.
    pub(super) async fn close(&self) {
        let _ = self.tx.send(Command::Close).await;
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn run(
    mut conn: SqliteConnection,
    mut rx: mpsc::Receiver<Command>,
    mut next_id: u64,
    listener: Arc<OnceLock<CommitListener>>,
    counters: Arc<Counters>,
    committed: mpsc::Sender<()>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    while !closing {
        match rx.recv().await {
            Some(Command::Op(op)) => batch.push(op),
            Some(Command::Close) | None => break,
        }
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
        let start_id = next_id;
        match commit(&mut conn, &batch, &mut next_id).await {
            Ok(outcomes) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                // A full channel means a checkpoint is already due.
                let _ = committed.try_send(());
                counters.operations.fetch_add(batch.len() as u64, Ordering::Relaxed);
                for outcome in &outcomes {
                    let (counter, n) = match outcome {
                        Outcome::Ids(ids) => {
                            (&counters.inserted, ids.iter().flatten().count() as u64)
                        }
                        Outcome::Deleted(n) => (&counters.deleted, *n),
                    };
                    counter.fetch_add(n, Ordering::Relaxed);
                }
                // Tell the listener before answering: committed copies reach connected
                // devices in commit order, so each device sees its ids increase.
                if let Some(listener) = listener.get() {
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
                        (WriteOp::Ack { reply, .. }, Outcome::Deleted(n)) => {
                            let _ = reply.send(Ok(n));
                        }
                        (WriteOp::Enqueue { reply, .. }, _) => {
                            let _ = reply
                                .send(Err(StorageError::Backend("writer outcome mismatch".into())));
                        }
                        (WriteOp::Ack { reply, .. }, _) => {
                            let _ = reply
                                .send(Err(StorageError::Backend("writer outcome mismatch".into())));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, ops = batch.len(), "queue batch failed; nothing was stored");
                next_id = start_id;
                let reason = e.to_string();
                for op in batch.drain(..) {
                    let err = || StorageError::Backend(reason.clone().into());
                    match op {
                        WriteOp::Enqueue { reply, .. } => {
                            let _ = reply.send(Err(err()));
                        }
                        WriteOp::Ack { reply, .. } => {
                            let _ = reply.send(Err(err()));
                        }
                    }
                }
            }
        }
    }
    let _ = conn.close().await;
}

/// Checkpoints after commits, at most every [`CHECKPOINT_INTERVAL`]; truncates the WAL
/// once the writer has stopped.
async fn checkpoints(mut conn: SqliteConnection, mut committed: mpsc::Receiver<()>) {
    while committed.recv().await.is_some() {
        tokio::time::sleep(CHECKPOINT_INTERVAL).await;
        // PASSIVE: copies what no reader still needs, never waits for anyone.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&mut conn).await {
            tracing::warn!(error = %e, "checkpoint failed; the WAL keeps growing until one succeeds");
        }
    }
    if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await {
        tracing::debug!(error = %e, "final checkpoint failed");
    }
    let _ = conn.close().await;
}

enum Outcome {
    /// Per row of an enqueue, its id if it was stored.
    Ids(Vec<Option<u64>>),
    Deleted(u64),
}

/// Inserts every row of a batch in one statement: `?1` is a JSON array of
/// `[id, account hex, device, envelope offset (1-based), envelope length, expires_at]`,
/// `?2` all envelopes end to end. The SQL never changes, so it is prepared once, and the
/// rows cost no statement journal (`OR ROLLBACK`: any failure abandons the batch anyway).
/// A row for a device that no longer exists is skipped: a send checked against the device
/// list can commit after a concurrent removal emptied that device's queue, and nothing may
/// be left behind for a removed device.
pub(super) const INSERT_ROWS: &str = "INSERT OR ROLLBACK INTO queue (id, account_id, device_id, envelope, expires_at) \
     SELECT j.value ->> 0, unhex(j.value ->> 1), j.value ->> 2, \
            substr(?2, j.value ->> 3, j.value ->> 4), j.value ->> 5 \
     FROM json_each(?1) AS j \
     WHERE EXISTS (SELECT 1 FROM devices AS d \
                   WHERE d.account_id = unhex(j.value ->> 1) AND d.device_id = j.value ->> 2)";

/// Deletes acknowledged rows in one statement: `?1` is a JSON array of
/// `[id, account hex, device]`; a row goes only if it belongs to the device that
/// acknowledged it. Each id is found by rowid.
pub(super) const DELETE_ACKED: &str = "DELETE FROM queue WHERE id IN ( \
     SELECT q.id FROM json_each(?1) AS j JOIN queue AS q \
     ON q.id = j.value ->> 0 AND q.account_id = unhex(j.value ->> 1) AND q.device_id = j.value ->> 2) \
     RETURNING id";

/// Runs a whole batch in one transaction of two fixed statements, however many sends and
/// acknowledgements it folds together.
async fn commit(
    conn: &mut SqliteConnection,
    batch: &[WriteOp],
    next_id: &mut u64,
) -> Result<Vec<Outcome>, sqlx::Error> {
    use std::fmt::Write as _;
    // Assign ids in operation order and lay the rows out for the two statements.
    let mut outcomes = Vec::with_capacity(batch.len());
    let (mut rows, mut envelopes, mut acks) = (String::from("["), Vec::new(), String::from("["));
    for op in batch {
        match op {
            WriteOp::Enqueue { rows: inserts, expires_at, .. } => {
                let first = *next_id;
                for r in inserts {
                    let sep = if rows.len() > 1 { "," } else { "" };
                    let _ = write!(
                        rows,
                        "{sep}[{},\"{}\",{},{},{},{}]",
                        to_i64(*next_id),
                        hex::encode(r.account_id.0),
                        r.device_id,
                        envelopes.len() + 1,
                        r.envelope.len(),
                        to_i64(*expires_at),
                    );
                    envelopes.extend_from_slice(&r.envelope);
                    *next_id += 1;
                }
                outcomes.push(Outcome::Ids((first..*next_id).map(Some).collect()));
            }
            WriteOp::Ack { account, device, ids, .. } => {
                let account = hex::encode(account.0);
                for id in ids {
                    let sep = if acks.len() > 1 { "," } else { "" };
                    let _ = write!(acks, "{sep}[{},\"{account}\",{device}]", to_i64(*id));
                }
                outcomes.push(Outcome::Deleted(0));
            }
        }
    }
    rows.push(']');
    acks.push(']');
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // Devices of this batch that no longer exist: looked up only when some row was skipped,
    // which only a removal racing a send causes.
    let mut gone = std::collections::HashSet::new();
    if !envelopes.is_empty() {
        let expected: u64 = batch
            .iter()
            .map(|op| match op {
                WriteOp::Enqueue { rows, .. } => rows.len() as u64,
                WriteOp::Ack { .. } => 0,
            })
            .sum();
        let inserted = sqlx::query(INSERT_ROWS)
            .bind(rows)
            .bind(envelopes)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if inserted != expected {
            for op in batch {
                let WriteOp::Enqueue { rows, .. } = op else { continue };
                for r in rows {
                    let key = (r.account_id, r.device_id);
                    if gone.contains(&key) {
                        continue;
                    }
                    let exists: Option<i64> = sqlx::query_scalar(
                        "SELECT 1 FROM devices WHERE account_id = ? AND device_id = ?",
                    )
                    .bind(r.account_id.0.as_slice())
                    .bind(i64::from(r.device_id))
                    .fetch_optional(&mut *tx)
                    .await?;
                    if exists.is_none() {
                        gone.insert(key);
                    }
                }
            }
        }
    }
    let mut deleted = std::collections::HashSet::new();
    if acks.len() > 2 {
        for row in sqlx::query(DELETE_ACKED).bind(acks).fetch_all(&mut *tx).await? {
            deleted.insert(sqlx::Row::try_get::<i64, _>(&row, 0)?);
        }
    }
    tx.commit().await?;
    for (op, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        match (op, outcome) {
            (WriteOp::Ack { ids, .. }, Outcome::Deleted(n)) => {
                *n = ids.iter().filter(|id| deleted.contains(&to_i64(**id))).count() as u64;
            }
            (WriteOp::Enqueue { rows, .. }, Outcome::Ids(ids)) if !gone.is_empty() => {
                for (r, id) in rows.iter().zip(ids.iter_mut()) {
                    if gone.contains(&(r.account_id, r.device_id)) {
                        *id = None;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(outcomes)
}

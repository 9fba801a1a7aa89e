//! The queue writer: one task owns a write connection and commits queue inserts and
//! acknowledgements in batches (group commit). A send is answered only after the batch
//! holding its copies committed, so an acknowledged send survives a crash, while one fsync
//! covers every send that arrived in the meantime.

use std::sync::{Arc, OnceLock};

use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, QueryBuilder, Sqlite};
use tandem_core::AccountId;
use tokio::sync::{mpsc, oneshot};

use super::{CommitListener, QueueInsert, StorageError};

/// Most operations folded into one transaction.
const MAX_BATCH: usize = 2048;
/// Rows per multi-row statement (5 parameters each, well under SQLite's limit).
const ROWS_PER_STATEMENT: usize = 200;

pub(super) enum WriteOp {
    Enqueue {
        rows: Vec<QueueInsert>,
        expires_at: u64,
        reply: oneshot::Sender<Result<Vec<u64>, StorageError>>,
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

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub(super) struct Writer {
    tx: mpsc::Sender<Command>,
}

impl Writer {
    pub(super) fn spawn(
        conn: SqliteConnection,
        next_id: u64,
        listener: Arc<OnceLock<CommitListener>>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8192);
        let task = tokio::spawn(run(conn, rx, next_id, listener));
        (Self { tx }, task)
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
                // Tell the listener before answering: committed copies reach connected
                // devices in commit order, so each device sees its ids increase.
                if let Some(listener) = listener.get() {
                    let mut committed = Vec::new();
                    for (op, outcome) in batch.iter().zip(&outcomes) {
                        if let (WriteOp::Enqueue { rows, .. }, Outcome::Ids(ids)) = (op, outcome) {
                            committed.extend(rows.iter().zip(ids).map(|(r, id)| {
                                (r.account_id, r.device_id, *id, r.envelope.clone())
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

enum Outcome {
    Ids(Vec<u64>),
    Deleted(u64),
}

/// Runs a whole batch in one transaction: every enqueued row of every operation goes into
/// multi-row `INSERT`s, every acknowledged id into multi-row `DELETE`s, so a batch costs a
/// handful of statements however many sends and acknowledgements it folds together.
async fn commit(
    conn: &mut SqliteConnection,
    batch: &[WriteOp],
    next_id: &mut u64,
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // Assign ids in operation order.
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut inserts: Vec<(u64, &QueueInsert, u64)> = Vec::new();
    let mut acks: Vec<(u64, &AccountId, u32)> = Vec::new();
    for op in batch {
        match op {
            WriteOp::Enqueue { rows, expires_at, .. } => {
                let first = *next_id;
                *next_id += rows.len() as u64;
                inserts.extend(
                    rows.iter().enumerate().map(|(i, r)| (first + i as u64, r, *expires_at)),
                );
                outcomes.push(Outcome::Ids((first..*next_id).collect()));
            }
            WriteOp::Ack { account, device, ids, .. } => {
                acks.extend(ids.iter().map(|id| (*id, account, *device)));
                outcomes.push(Outcome::Deleted(0));
            }
        }
    }
    for chunk in inserts.chunks(ROWS_PER_STATEMENT) {
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO queue (id, account_id, device_id, envelope, expires_at) ",
        );
        qb.push_values(chunk, |mut b, (id, row, expires_at)| {
            b.push_bind(to_i64(*id))
                .push_bind(row.account_id.0.as_slice())
                .push_bind(i64::from(row.device_id))
                .push_bind(row.envelope.as_ref())
                .push_bind(to_i64(*expires_at));
        });
        qb.build().execute(&mut *tx).await?;
    }
    let mut deleted = std::collections::HashSet::new();
    for chunk in acks.chunks(ROWS_PER_STATEMENT) {
        // `id IN (...)` finds rows by rowid; the CASE keeps each id to the device that
        // acknowledged it (a device can only delete its own copies).
        let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM queue WHERE id IN (");
        let mut ids = qb.separated(", ");
        for (id, _, _) in chunk {
            ids.push_bind(to_i64(*id));
        }
        qb.push(") AND CASE id");
        for (id, account, device) in chunk {
            qb.push(" WHEN ").push_bind(to_i64(*id));
            qb.push(" THEN account_id = ").push_bind(account.0.as_slice());
            qb.push(" AND device_id = ").push_bind(i64::from(*device));
        }
        qb.push(" ELSE 0 END RETURNING id");
        for row in qb.build().fetch_all(&mut *tx).await? {
            deleted.insert(sqlx::Row::try_get::<i64, _>(&row, 0)?);
        }
    }
    tx.commit().await?;
    for (op, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        if let (WriteOp::Ack { ids, .. }, Outcome::Deleted(n)) = (op, outcome) {
            *n = ids.iter().filter(|id| deleted.contains(&to_i64(**id))).count() as u64;
        }
    }
    Ok(outcomes)
}

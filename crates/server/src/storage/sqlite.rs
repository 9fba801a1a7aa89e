//! The embedded SQLite backend: WAL, `synchronous = FULL`, migrations from
//! `migrations/sqlite`, and a group-committing queue writer that also keeps the queues'
//! counts.

use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use tandem_core::AccountId;
use tokio::sync::oneshot;
use tracing::instrument;

use super::writer::{WriteOp, Writer};
use super::{
    AccountRow, BundleRow, CommitListener, DeviceRow, ExpiredRow, GroupRow, MemberRow,
    NewDeviceRow, PreKeyCountsRow, PreKeyRow, PreKeyUpload, QueueInsert, QueueLimits, Storage,
    StorageError, WriteStats,
};

/// The migrations compiled into the binary.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => StorageError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => StorageError::Conflict,
            other => StorageError::Backend(Box::new(other)),
        }
    }
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn account_id(bytes: &[u8]) -> Result<AccountId, StorageError> {
    AccountId::from_bytes(bytes).map_err(|e| StorageError::Backend(Box::new(e)))
}

/// SQLite storage in one file.
#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
    writer: Writer,
    writer_task: Arc<Mutex<Option<super::writer::Stopped>>>,
    listener: Arc<std::sync::OnceLock<CommitListener>>,
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage").finish_non_exhaustive()
    }
}

impl SqliteStorage {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StorageError> {
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a send is acknowledged only after its copies survive power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // No checkpoint on commit: the writer's own checkpointer runs them beside it,
            // so a commit never waits for one (see `writer`).
            .pragma("wal_autocheckpoint", "0")
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool =
            SqlitePoolOptions::new().max_connections(8).connect_with(options.clone()).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StorageError::Backend(Box::new(e)))?;
        let next_id = {
            let seq: Option<i64> =
                sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'queue'")
                    .fetch_optional(&pool)
                    .await?;
            let max: Option<i64> =
                sqlx::query_scalar("SELECT max(id) FROM queue").fetch_one(&pool).await?;
            u(seq.unwrap_or(0).max(max.unwrap_or(0))) + 1
        };
        let listener = Arc::new(std::sync::OnceLock::new());
        let (writer, task) = Writer::spawn(path, next_id, listener.clone())?;
        let storage =
            Self { pool, writer, writer_task: Arc::new(Mutex::new(Some(task))), listener };
        storage.ensure_instance_id().await?;
        Ok(storage)
    }

    async fn ensure_instance_id(&self) -> Result<(), StorageError> {
        let mut id = [0u8; 16];
        rand::fill(&mut id);
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES ('instance_id', ?)")
            .bind(hex::encode(id))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    fn device_row(r: &SqliteRow) -> Result<DeviceRow, StorageError> {
        Ok(DeviceRow {
            device_id: u32_of(r.try_get("device_id")?),
            registration_id: u32_of(r.try_get("registration_id")?),
            identity_key: r.try_get("identity_key")?,
            adv_identity: r.try_get("adv_identity")?,
            name: r.try_get("name")?,
            platform: r.try_get("platform")?,
            created_at: u(r.try_get("created_at")?),
            last_seen: u(r.try_get("last_seen")?),
        })
    }

    fn account_row(r: &SqliteRow) -> Result<AccountRow, StorageError> {
        Ok(AccountRow {
            id: account_id(&r.try_get::<Vec<u8>, _>("id")?)?,
            handle: r.try_get("handle")?,
            identity_key: r.try_get("identity_key")?,
            signed_device_list: r
                .try_get::<Option<Vec<u8>>, _>("signed_device_list")?
                .unwrap_or_default(),
            device_list_version: u(r.try_get("device_list_version")?),
        })
    }
}

async fn insert_device(
    conn: &mut sqlx::SqliteConnection,
    account: AccountId,
    device_id: u32,
    d: &NewDeviceRow,
    now: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO devices (account_id, device_id, registration_id, identity_key, adv_identity, \
         name, platform, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(account.0.as_slice())
    .bind(i64::from(device_id))
    .bind(i64::from(d.registration_id))
    .bind(&d.identity_key)
    .bind(&d.adv_identity)
    .bind(&d.name)
    .bind(&d.platform)
    .bind(i(now))
    .bind(i(now))
    .execute(conn)
    .await?;
    Ok(())
}

fn prekey_row(r: &SqliteRow, with_signature: bool) -> Result<PreKeyRow, sqlx::Error> {
    Ok(PreKeyRow {
        key_id: u32_of(r.try_get("key_id")?),
        public_key: r.try_get("public_key")?,
        signature: if with_signature { r.try_get("signature")? } else { Vec::new() },
    })
}

impl Storage for SqliteStorage {
    fn set_commit_listener(&self, listener: CommitListener) {
        let _ = self.listener.set(listener);
    }

    #[instrument(skip_all)]
    async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn instance_id(&self) -> Result<String, StorageError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'instance_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    async fn close(&self) {
        // The writer commits what was submitted before the close, then shuts its connection.
        self.writer.close();
        let task =
            self.writer_task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.pool.close().await;
    }

    #[instrument(skip_all)]
    async fn create_account(
        &self,
        id: AccountId,
        handle: &str,
        primary: NewDeviceRow,
        now: u64,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO accounts (id, handle, identity_key, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind(id.0.as_slice())
        .bind(handle)
        .bind(&primary.identity_key)
        .bind(i(now))
        .execute(&mut *tx)
        .await?;
        insert_device(&mut tx, id, 1, &primary, now).await?;
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn account(&self, id: AccountId) -> Result<Option<AccountRow>, StorageError> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(id.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::account_row).transpose()
    }

    #[instrument(skip_all)]
    async fn account_by_handle(&self, handle: &str) -> Result<Option<AccountRow>, StorageError> {
        let row = sqlx::query("SELECT * FROM accounts WHERE handle = ?")
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::account_row).transpose()
    }

    #[instrument(skip_all)]
    async fn device(
        &self,
        account: AccountId,
        device: u32,
    ) -> Result<Option<DeviceRow>, StorageError> {
        let row = sqlx::query("SELECT * FROM devices WHERE account_id = ? AND device_id = ?")
            .bind(account.0.as_slice())
            .bind(i64::from(device))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(Self::device_row).transpose()
    }

    #[instrument(skip_all)]
    async fn devices(&self, account: AccountId) -> Result<Vec<DeviceRow>, StorageError> {
        let rows = sqlx::query("SELECT * FROM devices WHERE account_id = ? ORDER BY device_id")
            .bind(account.0.as_slice())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(Self::device_row).collect()
    }

    #[instrument(skip_all)]
    async fn create_link_token(
        &self,
        account: AccountId,
        token_hash: [u8; 32],
        now: u64,
        expires_at: u64,
        max_open: u64,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM link_tokens WHERE account_id = ? AND expires_at <= ?")
            .bind(account.0.as_slice())
            .bind(i(now))
            .execute(&mut *tx)
            .await?;
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM link_tokens WHERE account_id = ?")
            .bind(account.0.as_slice())
            .fetch_one(&mut *tx)
            .await?;
        if u(open) >= max_open {
            return Err(StorageError::LimitReached);
        }
        sqlx::query(
            "INSERT INTO link_tokens (token_hash, account_id, expires_at) VALUES (?, ?, ?)",
        )
        .bind(token_hash.as_slice())
        .bind(account.0.as_slice())
        .bind(i(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn register_device(
        &self,
        account: AccountId,
        token_hash: [u8; 32],
        device: NewDeviceRow,
        now: u64,
        max_companions: u32,
    ) -> Result<u32, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let token = sqlx::query(
            "SELECT used_by FROM link_tokens \
             WHERE token_hash = ? AND account_id = ? AND expires_at > ?",
        )
        .bind(token_hash.as_slice())
        .bind(account.0.as_slice())
        .bind(i(now))
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StorageError::InvalidToken)?;
        if let Some(used_by) = token.try_get::<Option<i64>, _>("used_by")? {
            // Used already: only the same device repeating its registration (the same
            // identity, which proved itself by signing this connection's challenge, still
            // registered) hears its id again.
            let existing: Option<Vec<u8>> = sqlx::query_scalar(
                "SELECT identity_key FROM devices WHERE account_id = ? AND device_id = ?",
            )
            .bind(account.0.as_slice())
            .bind(used_by)
            .fetch_optional(&mut *tx)
            .await?;
            let same = existing.is_some_and(|k| k == device.identity_key);
            return if same { Ok(u32_of(used_by)) } else { Err(StorageError::InvalidToken) };
        }
        let companions: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM devices WHERE account_id = ? AND device_id > 1",
        )
        .bind(account.0.as_slice())
        .fetch_one(&mut *tx)
        .await?;
        let next: i64 = sqlx::query_scalar("SELECT next_device_id FROM accounts WHERE id = ?")
            .bind(account.0.as_slice())
            .fetch_one(&mut *tx)
            .await?;
        if u(companions) >= u64::from(max_companions) || next > 127 {
            return Err(StorageError::LimitReached);
        }
        let device_id = u32_of(next);
        insert_device(&mut tx, account, device_id, &device, now).await?;
        sqlx::query("UPDATE link_tokens SET used_by = ? WHERE token_hash = ?")
            .bind(next)
            .bind(token_hash.as_slice())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE accounts SET next_device_id = next_device_id + 1 WHERE id = ?")
            .bind(account.0.as_slice())
            .execute(&mut *tx)
            .await?;
        // A link token sweeps expired ones of the same account.
        sqlx::query("DELETE FROM link_tokens WHERE account_id = ? AND expires_at <= ?")
            .bind(account.0.as_slice())
            .bind(i(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(device_id)
    }

    #[instrument(skip_all)]
    async fn reset_account(
        &self,
        account: AccountId,
        primary: NewDeviceRow,
    ) -> Result<Vec<u32>, StorageError> {
        let id = account.0.as_slice();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let updated = sqlx::query(
            "UPDATE accounts SET identity_key = ?, signed_device_list = NULL, device_list_version = 0 WHERE id = ?",
        )
        .bind(&primary.identity_key)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(StorageError::NotFound);
        }
        let companions: Vec<u32> = sqlx::query_scalar(
            "SELECT device_id FROM devices WHERE account_id = ? AND device_id <> 1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|d: i64| u32::try_from(d).unwrap_or(0))
        .collect();
        // Queued copies go through the writer below (which keeps the queue counts).
        for sql in [
            "DELETE FROM devices WHERE account_id = ? AND device_id <> 1",
            "DELETE FROM signed_prekeys WHERE account_id = ?",
            "DELETE FROM one_time_prekeys WHERE account_id = ?",
            "DELETE FROM kyber_prekeys WHERE account_id = ?",
            "DELETE FROM expired WHERE account_id = ?",
            "DELETE FROM link_tokens WHERE account_id = ?",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        sqlx::query(
            "UPDATE devices SET registration_id = ?, identity_key = ?, adv_identity = ?, \
             name = ?, platform = ? WHERE account_id = ? AND device_id = 1",
        )
        .bind(i64::from(primary.registration_id))
        .bind(&primary.identity_key)
        .bind(&primary.adv_identity)
        .bind(&primary.name)
        .bind(&primary.platform)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        for (device, removed) in companions.iter().map(|d| (*d, true)).chain([(1, false)]) {
            let (reply, rx) = oneshot::channel();
            self.writer.submit(WriteOp::Forget { account, device, removed, reply })?;
            rx.await.map_err(|_| StorageError::Backend("queue writer stopped".into()))??;
        }
        Ok(companions)
    }

    #[instrument(skip_all)]
    async fn remove_device(&self, account: AccountId, device: u32) -> Result<bool, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let removed = sqlx::query("DELETE FROM devices WHERE account_id = ? AND device_id = ?")
            .bind(account.0.as_slice())
            .bind(i64::from(device))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM expired WHERE account_id = ? AND device_id = ?")
            .bind(account.0.as_slice())
            .bind(i64::from(device))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // The queue is emptied in the writer's order (it keeps the queue counts), after which
        // the writer refuses copies for the device.
        let (reply, rx) = oneshot::channel();
        self.writer.submit(WriteOp::Forget { account, device, removed: true, reply })?;
        rx.await.map_err(|_| StorageError::Backend("queue writer stopped".into()))??;
        Ok(removed == 1)
    }

    #[instrument(skip_all)]
    async fn set_device_list(
        &self,
        account: AccountId,
        list: &[u8],
        version: u64,
    ) -> Result<(), StorageError> {
        let updated = sqlx::query(
            "UPDATE accounts SET signed_device_list = ?, device_list_version = ? WHERE id = ? AND device_list_version < ?",
        )
        .bind(list)
        .bind(i(version))
        .bind(account.0.as_slice())
        .bind(i(version))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 { Ok(()) } else { Err(StorageError::StaleVersion) }
    }

    #[instrument(skip_all)]
    async fn rename_device(
        &self,
        account: AccountId,
        device: u32,
        name: &str,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE devices SET name = ? WHERE account_id = ? AND device_id = ?")
            .bind(name)
            .bind(account.0.as_slice())
            .bind(i64::from(device))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn touch_device(
        &self,
        account: AccountId,
        device: u32,
        now: u64,
    ) -> Result<(), StorageError> {
        sqlx::query("UPDATE devices SET last_seen = ? WHERE account_id = ? AND device_id = ?")
            .bind(i(now))
            .bind(account.0.as_slice())
            .bind(i64::from(device))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn upload_prekeys(
        &self,
        account: AccountId,
        device: u32,
        upload: PreKeyUpload,
        max_stored: u32,
    ) -> Result<(), StorageError> {
        self.upload_prekeys_sql(account, device, upload, max_stored).await
    }

    #[instrument(skip_all)]
    async fn take_bundles(
        &self,
        account: AccountId,
        devices: &[u32],
    ) -> Result<Vec<BundleRow>, StorageError> {
        self.take_bundles_sql(account, devices).await
    }

    #[instrument(skip_all)]
    async fn prekey_counts(
        &self,
        account: AccountId,
        device: u32,
    ) -> Result<PreKeyCountsRow, StorageError> {
        self.prekey_counts_sql(account, device).await
    }

    async fn enqueue(
        &self,
        rows: Vec<QueueInsert>,
        expires_at: u64,
        limits: QueueLimits,
    ) -> Result<Vec<u64>, StorageError> {
        let (reply, rx) = oneshot::channel();
        self.writer.submit(WriteOp::Enqueue { rows, expires_at, limits, reply })?;
        let ids = rx.await.map_err(|_| StorageError::Backend("queue writer stopped".into()))??;
        Ok(ids.into_iter().flatten().collect())
    }

    async fn fetch_queue(
        &self,
        account: AccountId,
        device: u32,
        after: u64,
        limit: u32,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        let rows = sqlx::query("SELECT id, envelope FROM queue WHERE account_id = ? AND device_id = ? AND id > ? ORDER BY id LIMIT ?")
            .bind(account.0.as_slice())
            .bind(i64::from(device))
            .bind(i(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((u(r.try_get("id")?), Bytes::from(r.try_get::<Vec<u8>, _>("envelope")?))))
            .collect()
    }

    async fn ack(
        &self,
        account: AccountId,
        device: u32,
        ids: Vec<u64>,
    ) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        self.writer.submit(WriteOp::Ack { account, device, ids, reply: Some(reply) })?;
        rx.await.map_err(|_| StorageError::Backend("queue writer stopped".into()))??;
        Ok(())
    }

    fn ack_later(
        &self,
        account: AccountId,
        device: u32,
        ids: Vec<u64>,
    ) -> Result<(), StorageError> {
        self.writer.submit(WriteOp::Ack { account, device, ids, reply: None })
    }

    fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    fn queue_total(&self) -> u64 {
        self.writer.queued()
    }

    #[instrument(skip_all)]
    async fn expire(&self, now: u64, tombstone_before: u64) -> Result<u64, StorageError> {
        let mut total = 0;
        loop {
            let (reply, rx) = oneshot::channel();
            self.writer.submit(WriteOp::Expire { now, tombstone_before, reply })?;
            let n =
                rx.await.map_err(|_| StorageError::Backend("queue writer stopped".into()))??;
            total += n;
            if n < 500 {
                return Ok(total);
            }
        }
    }

    #[instrument(skip_all)]
    async fn expired(
        &self,
        account: AccountId,
        device: u32,
        limit: u32,
    ) -> Result<Vec<ExpiredRow>, StorageError> {
        let rows = sqlx::query("SELECT rowid, source_account, source_device, client_timestamp, group_id FROM expired WHERE account_id = ? AND device_id = ? ORDER BY rowid LIMIT ?")
            .bind(account.0.as_slice())
            .bind(i64::from(device))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ExpiredRow {
                    id: u(r.try_get("rowid")?),
                    source_account: r.try_get("source_account")?,
                    source_device: u32_of(r.try_get("source_device")?),
                    client_timestamp: u(r.try_get("client_timestamp")?),
                    group_id: r.try_get("group_id")?,
                })
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn ack_expired(
        &self,
        account: AccountId,
        device: u32,
        ids: &[u64],
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for id in ids {
            sqlx::query("DELETE FROM expired WHERE rowid = ? AND account_id = ? AND device_id = ?")
                .bind(i(*id))
                .bind(account.0.as_slice())
                .bind(i64::from(device))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn create_group(
        &self,
        id: [u8; 16],
        creator: AccountId,
        members: &[AccountId],
        state: &[u8],
        now: u64,
        max_created: u64,
    ) -> Result<(), StorageError> {
        self.create_group_sql(id, creator, members, state, now, max_created).await
    }

    #[instrument(skip_all)]
    async fn group(&self, id: [u8; 16]) -> Result<Option<GroupRow>, StorageError> {
        self.group_sql(id).await
    }

    #[instrument(skip_all)]
    async fn group_states(
        &self,
        id: [u8; 16],
        after: u64,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        self.group_states_sql(id, after, limit).await
    }

    #[instrument(skip_all)]
    async fn group_members(&self, id: [u8; 16]) -> Result<Vec<MemberRow>, StorageError> {
        self.group_members_sql(id).await
    }

    #[instrument(skip_all)]
    async fn update_group(
        &self,
        id: [u8; 16],
        version: u64,
        state: &[u8],
        members: &[AccountId],
    ) -> Result<(), StorageError> {
        self.update_group_sql(id, version, state, members).await
    }

    #[instrument(skip_all)]
    async fn accept_group(
        &self,
        id: [u8; 16],
        account: AccountId,
        accept: bool,
    ) -> Result<bool, StorageError> {
        self.accept_group_sql(id, account, accept).await
    }
}

/// Adds members to a group, `accepted` only for `creator`.
async fn insert_members(
    tx: &mut sqlx::SqliteConnection,
    id: [u8; 16],
    members: &[AccountId],
    creator: AccountId,
) -> Result<(), StorageError> {
    for chunk in members.chunks(300) {
        let mut qb: QueryBuilder<Sqlite> =
            QueryBuilder::new("INSERT INTO group_members (group_id, account_id, accepted) ");
        qb.push_values(chunk, |mut b, m| {
            b.push_bind(id.as_slice())
                .push_bind(m.0.as_slice())
                .push_bind(i64::from(*m == creator));
        });
        qb.build().execute(&mut *tx).await?;
    }
    Ok(())
}

mod groups;
mod prekeys;
#[cfg(test)]
mod tests;

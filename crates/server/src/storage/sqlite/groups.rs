//! Groups: signed states, members and acceptance, checked against the stored version.

use super::*;

impl SqliteStorage {
    pub(super) async fn create_group_sql(
        &self,
        id: [u8; 16],
        creator: AccountId,
        members: &[AccountId],
        state: &[u8],
        now: u64,
        max_created: u64,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let created: i64 = sqlx::query_scalar("SELECT count(*) FROM groups WHERE created_by = ?")
            .bind(creator.0.as_slice())
            .fetch_one(&mut *tx)
            .await?;
        if u(created) >= max_created {
            return Err(StorageError::LimitReached);
        }
        sqlx::query("INSERT INTO groups (id, version, created_by, created_at) VALUES (?, 1, ?, ?)")
            .bind(id.as_slice())
            .bind(creator.0.as_slice())
            .bind(i(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO group_states (group_id, version, state) VALUES (?, 1, ?)")
            .bind(id.as_slice())
            .bind(state)
            .execute(&mut *tx)
            .await?;
        insert_members(&mut tx, id, members, creator).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn group_sql(&self, id: [u8; 16]) -> Result<Option<GroupRow>, StorageError> {
        let row = sqlx::query(
            "SELECT s.version, s.state FROM groups g JOIN group_states s ON s.group_id = g.id AND s.version = g.version WHERE g.id = ?",
        )
        .bind(id.as_slice())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(GroupRow { version: u(r.try_get("version")?), state: r.try_get("state")? }))
            .transpose()
    }

    pub(super) async fn group_states_sql(
        &self,
        id: [u8; 16],
        after: u64,
        limit: u32,
    ) -> Result<Vec<Vec<u8>>, StorageError> {
        let rows = sqlx::query_scalar(
            "SELECT state FROM group_states WHERE group_id = ? AND version > ? ORDER BY version LIMIT ?",
        )
        .bind(id.as_slice())
        .bind(i(after))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub(super) async fn group_members_sql(
        &self,
        id: [u8; 16],
    ) -> Result<Vec<MemberRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT account_id, accepted FROM group_members WHERE group_id = ? ORDER BY account_id",
        )
        .bind(id.as_slice())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    account_id: account_id(&r.try_get::<Vec<u8>, _>("account_id")?)?,
                    accepted: r.try_get::<i64, _>("accepted")? != 0,
                })
            })
            .collect()
    }

    pub(super) async fn update_group_sql(
        &self,
        id: [u8; 16],
        version: u64,
        state: &[u8],
        members: &[AccountId],
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let moved =
            sqlx::query("UPDATE groups SET version = version + 1 WHERE id = ? AND version = ?")
                .bind(id.as_slice())
                .bind(i(version))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if moved != 1 {
            return Err(StorageError::Conflict);
        }
        sqlx::query("INSERT INTO group_states (group_id, version, state) VALUES (?, ?, ?)")
            .bind(id.as_slice())
            .bind(i(version + 1))
            .bind(state)
            .execute(&mut *tx)
            .await?;
        // Members who stay keep their acceptance; the others go; new ones are invited.
        let mut stay: Vec<Vec<u8>> = Vec::new();
        for m in members {
            stay.push(m.0.to_vec());
        }
        let current: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT account_id FROM group_members WHERE group_id = ?")
                .bind(id.as_slice())
                .fetch_all(&mut *tx)
                .await?;
        for gone in current.iter().filter(|c| !stay.contains(c)) {
            sqlx::query("DELETE FROM group_members WHERE group_id = ? AND account_id = ?")
                .bind(id.as_slice())
                .bind(gone)
                .execute(&mut *tx)
                .await?;
        }
        let new: Vec<AccountId> =
            members.iter().filter(|m| !current.contains(&m.0.to_vec())).copied().collect();
        insert_members(&mut tx, id, &new, AccountId([0; 16])).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn accept_group_sql(
        &self,
        id: [u8; 16],
        account: AccountId,
        accept: bool,
    ) -> Result<bool, StorageError> {
        let n = sqlx::query(
            "UPDATE group_members SET accepted = ? WHERE group_id = ? AND account_id = ?",
        )
        .bind(i64::from(accept))
        .bind(id.as_slice())
        .bind(account.0.as_slice())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

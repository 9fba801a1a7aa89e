//! Prekeys: uploads within the per-device cap, bundles handed out once, counts.

use super::*;

impl SqliteStorage {
    pub(super) async fn upload_prekeys_sql(
        &self,
        account: AccountId,
        device: u32,
        upload: PreKeyUpload,
        max_stored: u32,
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let a = account.0.as_slice();
        let d = i64::from(device);
        if let Some(s) = &upload.signed {
            sqlx::query("INSERT OR REPLACE INTO signed_prekeys (account_id, device_id, key_id, public_key, signature) VALUES (?, ?, ?, ?, ?)")
                .bind(a).bind(d).bind(i64::from(s.key_id)).bind(&s.public_key).bind(&s.signature)
                .execute(&mut *tx).await?;
        }
        let one_time: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM one_time_prekeys WHERE account_id = ? AND device_id = ?",
        )
        .bind(a)
        .bind(d)
        .fetch_one(&mut *tx)
        .await?;
        let kyber: i64 = sqlx::query_scalar("SELECT count(*) FROM kyber_prekeys WHERE account_id = ? AND device_id = ? AND last_resort = 0")
            .bind(a).bind(d).fetch_one(&mut *tx).await?;
        if u(one_time) + upload.one_time.len() as u64 > u64::from(max_stored)
            || u(kyber) + upload.kyber.len() as u64 > u64::from(max_stored)
        {
            return Err(StorageError::LimitReached);
        }
        for k in &upload.one_time {
            sqlx::query("INSERT OR IGNORE INTO one_time_prekeys (account_id, device_id, key_id, public_key) VALUES (?, ?, ?, ?)")
                .bind(a).bind(d).bind(i64::from(k.key_id)).bind(&k.public_key)
                .execute(&mut *tx).await?;
        }
        for k in &upload.kyber {
            sqlx::query("INSERT OR IGNORE INTO kyber_prekeys (account_id, device_id, key_id, public_key, signature, last_resort) VALUES (?, ?, ?, ?, ?, 0)")
                .bind(a).bind(d).bind(i64::from(k.key_id)).bind(&k.public_key).bind(&k.signature)
                .execute(&mut *tx).await?;
        }
        if let Some(k) = &upload.last_resort {
            sqlx::query("DELETE FROM kyber_prekeys WHERE account_id = ? AND device_id = ? AND last_resort = 1")
                .bind(a).bind(d).execute(&mut *tx).await?;
            sqlx::query("INSERT OR REPLACE INTO kyber_prekeys (account_id, device_id, key_id, public_key, signature, last_resort) VALUES (?, ?, ?, ?, ?, 1)")
                .bind(a).bind(d).bind(i64::from(k.key_id)).bind(&k.public_key).bind(&k.signature)
                .execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn take_bundles_sql(
        &self,
        account: AccountId,
        devices: &[u32],
    ) -> Result<Vec<BundleRow>, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let a = account.0.as_slice();
        let rows = sqlx::query("SELECT * FROM devices WHERE account_id = ? ORDER BY device_id")
            .bind(a)
            .fetch_all(&mut *tx)
            .await?;
        let mut out = Vec::new();
        for row in &rows {
            let dev = Self::device_row(row)?;
            if !devices.is_empty() && !devices.contains(&dev.device_id) {
                continue;
            }
            let d = i64::from(dev.device_id);
            let signed =
                sqlx::query("SELECT * FROM signed_prekeys WHERE account_id = ? AND device_id = ?")
                    .bind(a)
                    .bind(d)
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| prekey_row(&r, true))
                    .transpose()?;
            let one_time = sqlx::query("SELECT * FROM one_time_prekeys WHERE account_id = ? AND device_id = ? ORDER BY key_id LIMIT 1")
                .bind(a).bind(d).fetch_optional(&mut *tx).await?
                .map(|r| prekey_row(&r, false)).transpose()?;
            if let Some(k) = &one_time {
                sqlx::query("DELETE FROM one_time_prekeys WHERE account_id = ? AND device_id = ? AND key_id = ?")
                    .bind(a).bind(d).bind(i64::from(k.key_id)).execute(&mut *tx).await?;
            }
            let kyber = sqlx::query("SELECT * FROM kyber_prekeys WHERE account_id = ? AND device_id = ? ORDER BY last_resort, key_id LIMIT 1")
                .bind(a).bind(d).fetch_optional(&mut *tx).await?;
            let kyber = match kyber {
                Some(r) => {
                    let k = prekey_row(&r, true)?;
                    if r.try_get::<i64, _>("last_resort")? == 0 {
                        sqlx::query("DELETE FROM kyber_prekeys WHERE account_id = ? AND device_id = ? AND key_id = ?")
                            .bind(a).bind(d).bind(i64::from(k.key_id)).execute(&mut *tx).await?;
                    }
                    Some(k)
                }
                None => None,
            };
            out.push(BundleRow {
                device_id: dev.device_id,
                registration_id: dev.registration_id,
                identity_key: dev.identity_key,
                signed,
                one_time,
                kyber,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    pub(super) async fn prekey_counts_sql(
        &self,
        account: AccountId,
        device: u32,
    ) -> Result<PreKeyCountsRow, StorageError> {
        let row = sqlx::query(
            "SELECT \
               (SELECT count(*) FROM one_time_prekeys WHERE account_id = ?1 AND device_id = ?2) AS one_time, \
               (SELECT count(*) FROM kyber_prekeys WHERE account_id = ?1 AND device_id = ?2 AND last_resort = 0) AS kyber, \
               (SELECT count(*) FROM signed_prekeys WHERE account_id = ?1 AND device_id = ?2) AS signed, \
               (SELECT count(*) FROM kyber_prekeys WHERE account_id = ?1 AND device_id = ?2 AND last_resort = 1) AS last_resort",
        )
        .bind(account.0.as_slice())
        .bind(i64::from(device))
        .fetch_one(&self.pool)
        .await?;
        Ok(PreKeyCountsRow {
            one_time: u32_of(row.try_get("one_time")?),
            kyber: u32_of(row.try_get("kyber")?),
            has_signed: row.try_get::<i64, _>("signed")? > 0,
            has_last_resort: row.try_get::<i64, _>("last_resort")? > 0,
        })
    }
}

//! Sealing a database written before encryption at rest: every value is read, sealed under a
//! fresh data key and written back in one transaction, so a crash leaves either the old
//! clear database (sealed again at the next start) or the sealed one.

use super::*;

impl IdbStore {
    /// Seals every value of the clear database `db` and stores the new key ring.
    pub(super) async fn seal_clear_database(db: &Rexie) -> Result<(), StoreError> {
        let stores: Vec<&str> = super::super::migrations::ENGINE_STORES
            .iter()
            .copied()
            .filter(|s| *s != KYBER_USES)
            .collect();
        let tx = db.transaction(&stores, TransactionMode::ReadOnly).map_err(rexie_err)?;
        let mut all = Vec::with_capacity(stores.len());
        for store in &stores {
            let rows = tx
                .store(store)
                .map_err(rexie_err)?
                .scan(None, None, None, None)
                .await
                .map_err(rexie_err)?;
            all.push((*store, rows));
        }
        tx.done().await.map_err(rexie_err)?;
        let (ring, stored_ring) = Ring::generate().await.map_err(seal_err)?;
        let key = ring.data_key().cloned().ok_or_else(|| backend("a fresh key is locked"))?;
        let mut sealing = Sealing::default();
        let mut dropped = Vec::new();
        // The start snapshot's recent list, rebuilt from the summaries and handles.
        let mut summaries: Vec<(Vec<u8>, StoredSummary)> = Vec::new();
        let mut names: HashMap<AccountId, String> = HashMap::new();
        for (store, rows) in &all {
            for (k, v) in rows {
                if *store == LOCAL && k.as_string().as_deref() == Some(RECENT_KEY) {
                    // Rebuilt from the summaries at the next start.
                    dropped.push(k.clone());
                    continue;
                }
                if *store == MESSAGES {
                    let m = Reflect::get(v, &"v".into())
                        .ok()
                        .and_then(|b| value_bytes("message", &b).ok())
                        .and_then(|b| MessageRecord::from_bytes(&b).ok())
                        .ok_or_else(|| corrupt("message", "unreadable before sealing"))?;
                    sealing.put_message(&m);
                    continue;
                }
                let plain = if *store == CONVERSATIONS {
                    let m = Reflect::get(v, &"m".into())
                        .ok()
                        .and_then(|b| value_bytes("conversation", &b).ok())
                        .ok_or_else(|| corrupt("conversation", "unreadable before sealing"))?;
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a stored count"
                    )]
                    let u = Reflect::get(v, &"u".into())
                        .ok()
                        .and_then(|u| u.as_f64())
                        .unwrap_or(0.0)
                        .max(0.0) as u32;
                    let summary = StoredSummary { m, u, n: 0 };
                    summaries.push((value_bytes("conversation key", k)?, summary.clone()));
                    prost::Message::encode_to_vec(&summary)
                } else if let Some(text) = v.as_string() {
                    if *store == CONTACTS
                        && let Some(id) = k.as_string().and_then(|h| hex::decode(h).ok())
                        && let Ok(id) = AccountId::from_bytes(&id)
                    {
                        names.insert(id, text.clone());
                    }
                    text.into_bytes()
                } else {
                    value_bytes(store, v)?
                };
                sealing.put(store, k.clone(), plain);
            }
        }
        let fresh = summaries
            .into_iter()
            .filter_map(|(k, summary)| {
                let last = summary.read().ok()?.last;
                let name = match last.conversation {
                    Conversation::Direct(peer) => names.get(&peer).cloned(),
                    Conversation::Group(_) => None,
                };
                Some(Fresh::new(k, summary, &last, name))
            })
            .collect();
        let recent = merge_recent(None, fresh);
        sealing.put(LOCAL, JsValue::from_str(RECENT_KEY), prost::Message::encode_to_vec(&recent));
        let mut sealed = sealing.seal(&key).await?;
        let tx = db.transaction(&stores, TransactionMode::ReadWrite).map_err(rexie_err)?;
        let result = async {
            for store in &stores {
                put_all(&tx, store, sealed.take(store)).await?;
            }
            delete_all(&tx, LOCAL, dropped).await?;
            put_all(&tx, LOCAL, vec![(JsValue::from_str(KEYS_KEY), stored_ring)]).await?;
            Ok::<_, StoreError>(())
        }
        .await;
        match result {
            Ok(()) => tx.done().await.map(drop).map_err(rexie_err),
            Err(e) => {
                let _ = tx.abort().await;
                Err(e)
            }
        }
    }
}

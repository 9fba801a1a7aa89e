//! `save_changes`: one read-write transaction per batch of changes, with the session log
//! and the chat list's read model written in it.

use super::*;

/// Puts `(key, value)` pairs into one store of a transaction, awaiting only the last request.
pub(super) async fn put_all(
    tx: &rexie::Transaction,
    store: &str,
    items: Vec<(JsValue, JsValue)>,
) -> Result<(), StoreError> {
    if items.is_empty() {
        return Ok(());
    }
    tx.store(store)
        .map_err(rexie_err)?
        .put_all(items.into_iter().map(|(k, v)| (v, Some(k))))
        .await
        .map_err(rexie_err)
}

pub(super) async fn delete_all(
    tx: &rexie::Transaction,
    store: &str,
    keys: Vec<JsValue>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let s = tx.store(store).map_err(rexie_err)?;
    for k in keys {
        s.delete(k).await.map_err(rexie_err)?;
    }
    Ok(())
}

#[async_trait(?Send)]
impl ProtocolStore for IdbStore {
    async fn pause(&self) {
        let now = js_sys::Date::now();
        if now - self.last_yield.get() >= WORK_SLICE_MS {
            crate::transport::yield_now().await;
            self.last_yield.set(js_sys::Date::now());
        } else if now < self.last_yield.get() {
            self.last_yield.set(now);
        }
    }

    async fn save_changes(&self, changes: Changes) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        if !changes.sessions.is_empty() || !changes.removed_sessions.is_empty() {
            self.load_log().await?;
        }
        let Changes {
            identities,
            sessions,
            removed_sessions,
            pre_keys,
            removed_pre_keys,
            signed_pre_keys,
            removed_signed_pre_keys,
            kyber_pre_keys,
            used_kyber_pre_keys,
            sender_keys,
            account,
            device_lists,
            messages,
            removed_messages,
            groups,
            outbox,
            removed_outbox,
        } = changes;
        // Encode everything before the transaction opens: an IndexedDB transaction commits
        // as soon as no request is pending, so no other work may run inside it.
        let identity_values: Vec<_> =
            identities.iter().map(|(a, k)| (address_key(a), bytes_value(&k.serialize()))).collect();
        // Every changed session in one log entry: removals first, as the batch applies them.
        let (mut kyber_values, mut kyber_written) = (Vec::new(), Vec::new());
        let log_entry = (!sessions.is_empty() || !removed_sessions.is_empty()).then(|| {
            let mut items: Vec<(ProtocolAddress, Option<zeroize::Zeroizing<Vec<u8>>>)> =
                removed_sessions.iter().map(|a| (a.clone(), None)).collect();
            let log = self.log.borrow();
            for (a, r) in &sessions {
                // A state's Kyber ciphertext is written once, the first time the state is.
                let (bytes, detached) = r.to_detached_bytes();
                if let Some(d) = detached
                    && log.kyber.get(a) != Some(&d.base_key)
                {
                    kyber_values.push((address_key(a), bytes_value(&d.to_bytes())));
                    kyber_written.push((a.clone(), d.base_key));
                }
                items.push((a.clone(), Some(bytes)));
            }
            drop(log);
            let entry = SessionLogEntry { items };
            let bytes = entry.to_bytes();
            // Reserved now: batches saved concurrently get increasing keys in the order
            // their transactions open, which is the order they commit.
            let mut log = self.log.borrow_mut();
            let key = log.next_key;
            log.next_key += 1;
            (key, entry, bytes)
        });
        let log_values: Vec<_> = log_entry
            .iter()
            .map(|(key, _, bytes)| (JsValue::from(*key as f64), bytes_value(bytes)))
            .collect();
        let pre_keys: Vec<_> =
            pre_keys.iter().map(|k| (JsValue::from(k.id.0), bytes_value(&k.to_bytes()))).collect();
        let removed_pre_keys: Vec<_> =
            removed_pre_keys.iter().map(|id| JsValue::from(id.0)).collect();
        let signed_pre_keys: Vec<_> = signed_pre_keys
            .iter()
            .map(|k| (JsValue::from(k.id.0), bytes_value(&k.to_bytes())))
            .collect();
        let removed_signed: Vec<_> =
            removed_signed_pre_keys.iter().map(|id| JsValue::from(id.0)).collect();
        let new_kyber: HashSet<u32> = kyber_pre_keys.iter().map(|k| k.id.0).collect();
        let kyber_pre_keys: Vec<_> = kyber_pre_keys
            .iter()
            .map(|k| (JsValue::from(k.id.0), bytes_value(&k.to_bytes())))
            .collect();
        let sender_keys: Vec<_> = sender_keys
            .iter()
            .map(|(n, r)| (sender_key_key(n), bytes_value(&r.to_bytes())))
            .collect();
        let mut local = Vec::new();
        if let Some(account) = &account {
            local.push((JsValue::from_str(ACCOUNT_KEY), bytes_value(&account.to_bytes())));
        }
        let device_lists: Vec<_> = device_lists
            .iter()
            .map(|(a, l)| (account_key(a), bytes_value(&l.to_bytes())))
            .collect();
        let mut touched: Vec<(Vec<u8>, Vec<MessageRecord>)> = Vec::new();
        for m in messages.values() {
            let k = conversation_to_bytes(&m.conversation);
            match touched.iter_mut().find(|(c, _)| *c == k) {
                Some((_, list)) => list.push(m.clone()),
                None => touched.push((k, vec![m.clone()])),
            }
        }
        let messages = messages
            .values()
            .map(|m| Ok((message_key(&m.id), message_value(m)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let removed: Vec<_> = removed_messages.iter().map(message_key).collect();
        let groups: Vec<_> = groups
            .iter()
            .map(|(id, g)| (JsValue::from_str(&hex::encode(id)), bytes_value(&g.to_bytes())))
            .collect();
        let removed_outbox: Vec<_> =
            removed_outbox.iter().filter(|id| !outbox.contains_key(id)).map(message_key).collect();
        let outbox: Vec<_> =
            outbox.values().map(|e| (message_key(&e.id), bytes_value(&e.to_bytes()))).collect();

        let tx =
            self.transaction(crate::store::migrations::ENGINE_STORES, TransactionMode::ReadWrite)?;
        let result = async {
            put_all(&tx, LOCAL, local).await?;
            put_all(&tx, IDENTITIES, identity_values).await?;
            put_all(&tx, SESSION_LOG, log_values).await?;
            put_all(&tx, SESSION_KYBER, kyber_values).await?;
            put_all(&tx, PRE_KEYS, pre_keys).await?;
            delete_all(&tx, PRE_KEYS, removed_pre_keys).await?;
            put_all(&tx, SIGNED_PRE_KEYS, signed_pre_keys).await?;
            delete_all(&tx, SIGNED_PRE_KEYS, removed_signed).await?;
            put_all(&tx, KYBER_PRE_KEYS, kyber_pre_keys).await?;
            use_kyber_pre_keys(&tx, &used_kyber_pre_keys, &new_kyber).await?;
            put_all(&tx, SENDER_KEYS, sender_keys).await?;
            put_all(&tx, DEVICE_LISTS, device_lists).await?;
            write_read_model(&tx, &touched, &removed_messages).await?;
            delete_all(&tx, MESSAGES, removed).await?;
            put_all(&tx, MESSAGES, messages).await?;
            put_all(&tx, GROUPS, groups).await?;
            delete_all(&tx, OUTBOX, removed_outbox).await?;
            put_all(&tx, OUTBOX, outbox).await?;
            Ok::<_, StoreError>(())
        }
        .await;
        match result {
            Ok(()) => {
                tx.done().await.map_err(rexie_err)?;
                // Committed: the log and the cache follow.
                if let Some((key, entry, bytes)) = log_entry {
                    let mut log = self.log.borrow_mut();
                    log.apply(key, entry, bytes.len());
                    log.kyber.extend(kyber_written);
                }
                let mut cache = self.cache.borrow_mut();
                cache.make_room();
                for a in removed_sessions {
                    cache.sessions.insert(a, None);
                }
                for (a, r) in sessions {
                    cache.sessions.insert(a, Some(r));
                }
                for (a, k) in identities {
                    cache.identities.insert(a, Some(k));
                }
                Ok(())
            }
            Err(e) => {
                let _ = tx.abort().await;
                Err(e)
            }
        }
    }
}

/// Marks the Kyber prekeys a batch used: a one-time key goes, a last-resort key remembers
/// each use (keys the same batch added are kept).
async fn use_kyber_pre_keys(
    tx: &rexie::Transaction,
    used: &[tandem_core::store::KyberPreKeyUse],
    new: &HashSet<u32>,
) -> Result<(), StoreError> {
    // A one-time Kyber key goes on use; a last-resort one remembers each use.
    let kyber = tx.store(KYBER_PRE_KEYS).map_err(rexie_err)?;
    for used in used {
        let id = used.kyber_pre_key_id.0;
        let Some(v) = kyber.get(JsValue::from(id)).await.map_err(rexie_err)? else {
            continue;
        };
        let record = KyberPreKeyRecord::from_bytes(&value_bytes("Kyber prekey", &v)?)
            .map_err(|e| corrupt("Kyber prekey", e))?;
        if record.last_resort {
            let key = kyber_use_key(used.kyber_pre_key_id, used.signed_pre_key_id, &used.base_key);
            put_all(tx, KYBER_USES, vec![(key, JsValue::TRUE)]).await?;
        } else if !new.contains(&id) {
            kyber.delete(JsValue::from(id)).await.map_err(rexie_err)?;
        }
    }
    Ok(())
}

/// The chat list's read model, written inside `save_changes`'s transaction: each touched
/// conversation's summary (newest message, unread count compared with the stored copies)
/// and the start snapshot's recent list.
async fn write_read_model(
    tx: &rexie::Transaction,
    touched: &[(Vec<u8>, Vec<MessageRecord>)],
    removed_messages: &[MessageId],
) -> Result<(), StoreError> {
    // Conversation summaries: compare with the stored copies before replacing them.
    let stored = tx.store(MESSAGES).map_err(rexie_err)?;
    let summaries = tx.store(CONVERSATIONS).map_err(rexie_err)?;
    let mut fresh: Vec<Fresh> = Vec::new();
    let names = tx.store(CONTACTS).map_err(rexie_err)?;
    for (key_bytes, list) in touched {
        let key = bytes_value(key_bytes);
        let (mut last, mut unread) = match summaries.get(key.clone()).await.map_err(rexie_err)? {
            Some(v) => {
                let (m, u) = summary_from_value(&v)?;
                // A removed newest message (stamped afresh) gives way to the rest.
                let gone = removed_messages.contains(&m.id);
                ((!gone).then_some(m), i64::from(u))
            }
            None => (None, 0),
        };
        // All lookups at once: one round of IndexedDB events, not one per message.
        let olds =
            futures_util::future::join_all(list.iter().map(|m| stored.get(message_key(&m.id))))
                .await;
        for (m, old) in list.iter().zip(olds) {
            let old = match old.map_err(rexie_err)? {
                Some(v) => Some(message_from_value(&v)?),
                None => None,
            };
            unread += i64::from(is_unread(m)) - i64::from(old.as_ref().is_some_and(is_unread));
            if last.as_ref().is_none_or(|l| l.id.sort_key() <= m.id.sort_key()) {
                last = Some(m.clone());
            }
        }
        if let Some(last) = &last {
            let unread = u32::try_from(unread.max(0)).unwrap_or(u32::MAX);
            let value = summary_value(last, unread)?;
            let name = match last.conversation {
                Conversation::Direct(peer) => names
                    .get(account_key(&peer))
                    .await
                    .map_err(rexie_err)?
                    .and_then(|v| v.as_string()),
                Conversation::Group(_) => None,
            };
            fresh.push(Fresh::new(key_bytes.clone(), value.clone(), last, name));
            put_all(tx, CONVERSATIONS, vec![(key, value)]).await?;
        }
    }
    if !fresh.is_empty() {
        let locals = tx.store(LOCAL).map_err(rexie_err)?;
        let stored = locals.get(JsValue::from_str(RECENT_KEY)).await.map_err(rexie_err)?;
        put_all(tx, LOCAL, vec![(JsValue::from_str(RECENT_KEY), merge_recent(stored, &fresh))])
            .await?;
    }
    Ok(())
}

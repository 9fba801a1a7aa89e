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

/// One store's part of a batch's writes.
type Write<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + 'a>>;

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
        self.save_all(changes.into()).await
    }
}

impl IdbStore {
    /// One batch, protocol state and the engine's records, in one write transaction (both
    /// traits' saves).
    pub(super) async fn save_all(&self, changes: ClientChanges) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        if !changes.sessions.is_empty() || !changes.removed_sessions.is_empty() {
            self.load_log().await?;
        }
        // One read-then-write save at a time: what it read stays true until it writes.
        let _writing = self.writing.lock().await;
        // Every chain an encryption in the batch advanced must still stand where it read it
        // (the cache holds what the last save wrote): otherwise a message key would repeat.
        // Sessions are checked in the cache where they are (a fan-out's all are), without
        // copying their records; anything else is read.
        let cached = {
            let cache = self.cache.borrow();
            changes
                .check_guards(|chain| match chain {
                    Chain::Session(a) => {
                        cache.sessions.get(a)?.as_ref().and_then(ChainPosition::of_session)
                    }
                    Chain::SenderKey(n) => cache
                        .remembered
                        .as_ref()?
                        .sender_keys
                        .get(n)?
                        .as_ref()
                        .and_then(ChainPosition::of_sender_key),
                })
                .is_ok()
        };
        if !cached {
            changes.check_guards_in(self).await?;
        }
        let ClientChanges {
            protocol,
            account,
            device_lists,
            messages,
            removed_messages,
            groups,
            outbox,
            removed_outbox,
            contacts,
        } = changes;
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
            guards: _,
        } = protocol;
        // Read, open, encode and seal everything before the write transaction opens: an
        // IndexedDB transaction commits as soon as no request is pending, so no other work
        // (WebCrypto included) may run inside it.
        let mut sealing = Sealing::default();
        for (a, k) in &identities {
            sealing.put(IDENTITIES, address_key(a), k.serialize().to_vec());
        }
        // Every changed session in one log entry: removals first, as the batch applies them.
        let mut kyber_written = Vec::new();
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
                    sealing.put(SESSION_KYBER, address_key(a), d.to_bytes());
                    kyber_written.push((a.clone(), d.base_key));
                }
                items.push((a.clone(), Some(bytes)));
            }
            drop(log);
            let entry = SessionLogEntry { items };
            let bytes = entry.to_bytes();
            // Reserved now: saves run one at a time, so keys increase in commit order.
            let mut log = self.log.borrow_mut();
            let key = log.next_key;
            log.next_key += 1;
            (key, entry, bytes.len())
        });
        if let Some((key, entry, _)) = &log_entry {
            #[allow(clippy::cast_precision_loss, reason = "log keys stay far below 2^53")]
            sealing.put(SESSION_LOG, JsValue::from(*key as f64), entry.to_bytes().to_vec());
        }
        let removed_pre_keys: Vec<_> =
            removed_pre_keys.iter().map(|id| JsValue::from(id.0)).collect();
        for k in &pre_keys {
            sealing.put(PRE_KEYS, JsValue::from(k.id.0), k.to_bytes().to_vec());
        }
        for k in &signed_pre_keys {
            sealing.put(SIGNED_PRE_KEYS, JsValue::from(k.id.0), k.to_bytes().to_vec());
        }
        let removed_signed: Vec<_> =
            removed_signed_pre_keys.iter().map(|id| JsValue::from(id.0)).collect();
        let new_kyber: HashSet<u32> = kyber_pre_keys.iter().map(|k| k.id.0).collect();
        for k in &kyber_pre_keys {
            sealing.put(KYBER_PRE_KEYS, JsValue::from(k.id.0), k.to_bytes().to_vec());
        }
        for (n, r) in &sender_keys {
            sealing.put(SENDER_KEYS, sender_key_key(n), r.to_bytes().to_vec());
        }
        if let Some(account) = &account {
            self.model.borrow_mut().handle = Some(account.handle.clone());
            sealing.put(LOCAL, JsValue::from_str(ACCOUNT_KEY), account.to_bytes().to_vec());
        }
        for (a, l) in &device_lists {
            sealing.put(DEVICE_LISTS, account_key(a), l.to_bytes().to_vec());
        }
        for m in messages.values() {
            sealing.put_message(m);
        }
        for (id, g) in &groups {
            sealing.put(GROUPS, JsValue::from_str(&hex::encode(id)), g.to_bytes().to_vec());
        }
        for e in outbox.values() {
            sealing.put(OUTBOX, message_key(&e.id), e.to_bytes().to_vec());
        }
        for (a, handle) in &contacts {
            sealing.put(CONTACTS, account_key(a), handle.as_bytes().to_vec());
        }
        let kyber_deletes = self.used_kyber_pre_keys(&used_kyber_pre_keys, &new_kyber).await?;
        let kyber_uses: Vec<_> = kyber_deletes
            .iter()
            .filter_map(|(used, key)| (key.is_none()).then_some(used.clone()))
            .collect();
        let kyber_deletes: Vec<_> = kyber_deletes.into_iter().filter_map(|(_, k)| k).collect();
        let model_writes =
            self.read_model(&mut sealing, &messages, &removed_messages, &contacts).await?;
        let removed: Vec<_> = removed_messages.iter().map(message_key).collect();
        let removed_outbox_ids: Vec<MessageId> =
            removed_outbox.into_iter().filter(|id| !outbox.contains_key(id)).collect();
        let removed_outbox: Vec<_> = removed_outbox_ids.iter().map(message_key).collect();
        let mut sealed = sealing.seal(&self.key).await?;

        let tx =
            self.transaction(crate::store::migrations::ENGINE_STORES, TransactionMode::ReadWrite)?;
        // Every store's requests at once (IndexedDB runs a transaction's requests in the
        // order made; one store's are made in sequence, as they must be): one round trip to
        // the database for the batch instead of one per store.
        let result = {
            let tx = &tx;
            let put = |store: &'static str, items: Vec<(JsValue, JsValue)>| -> Write<'_> {
                Box::pin(put_all(tx, store, items))
            };
            let then_delete = |store: &'static str, items, keys| -> Write<'_> {
                Box::pin(async move {
                    put_all(tx, store, items).await?;
                    delete_all(tx, store, keys).await
                })
            };
            let delete_then = |store: &'static str, keys, items| -> Write<'_> {
                Box::pin(async move {
                    delete_all(tx, store, keys).await?;
                    put_all(tx, store, items).await
                })
            };
            let kyber_uses = kyber_uses.into_iter().map(|k| (k, JsValue::TRUE)).collect();
            let writes = vec![
                put(LOCAL, sealed.take(LOCAL)),
                put(IDENTITIES, sealed.take(IDENTITIES)),
                put(SESSION_LOG, sealed.take(SESSION_LOG)),
                put(SESSION_KYBER, sealed.take(SESSION_KYBER)),
                then_delete(PRE_KEYS, sealed.take(PRE_KEYS), removed_pre_keys),
                then_delete(SIGNED_PRE_KEYS, sealed.take(SIGNED_PRE_KEYS), removed_signed),
                then_delete(KYBER_PRE_KEYS, sealed.take(KYBER_PRE_KEYS), kyber_deletes),
                put(KYBER_USES, kyber_uses),
                put(SENDER_KEYS, sealed.take(SENDER_KEYS)),
                put(DEVICE_LISTS, sealed.take(DEVICE_LISTS)),
                put(CONVERSATIONS, sealed.take(CONVERSATIONS)),
                put(CONTACTS, sealed.take(CONTACTS)),
                delete_then(MESSAGES, removed, sealed.take(MESSAGES)),
                put(GROUPS, sealed.take(GROUPS)),
                delete_then(OUTBOX, removed_outbox, sealed.take(OUTBOX)),
            ];
            futures_util::future::try_join_all(writes).await.map(|_| ())
        };
        match result {
            Ok(()) => {
                tx.done().await.map_err(rexie_err)?;
                // Committed: the log and the caches follow.
                self.model.borrow_mut().committed(
                    model_writes,
                    &messages,
                    &removed_messages,
                    contacts,
                );
                if let Some((key, entry, size)) = log_entry {
                    let mut log = self.log.borrow_mut();
                    log.apply(key, entry, size);
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
                if let Some(r) = cache.remembered.as_mut() {
                    for (a, l) in device_lists {
                        r.device_lists.insert(a, Some(l));
                    }
                    for (n, k) in sender_keys {
                        r.sender_keys.insert(n, Some(k));
                    }
                    for (g, record) in groups {
                        r.groups.insert(g, Some(record));
                    }
                    for id in &removed_messages {
                        r.queued.remove(id);
                    }
                    for (id, m) in &messages {
                        if m.outgoing && m.state == tandem_core::client::OutgoingState::Queued {
                            r.queued.insert(*id, m.clone());
                        } else {
                            r.queued.remove(id);
                        }
                    }
                    if let Some(known) = r.outbox.as_mut() {
                        for id in &removed_outbox_ids {
                            known.remove(&id.sort_key());
                        }
                        for (id, e) in outbox {
                            known.insert(id.sort_key(), e);
                        }
                    }
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

/// Batches up to this many messages look up their stored copies one by one; larger ones
/// first ask which exist.
const PROBE_ONE_BY_ONE: usize = 16;

impl IdbStore {
    /// What the Kyber prekeys a batch used become: a one-time key goes (its key to delete),
    /// a last-resort key remembers each use (its `kyber_uses` key); keys the same batch added
    /// are kept.
    async fn used_kyber_pre_keys(
        &self,
        used: &[tandem_core::store::KyberPreKeyUse],
        new: &HashSet<u32>,
    ) -> Result<Vec<(JsValue, Option<JsValue>)>, StoreError> {
        let mut out = Vec::new();
        for used in used {
            let id = used.kyber_pre_key_id.0;
            let Some(record) = self
                .load(
                    "Kyber prekey",
                    KYBER_PRE_KEYS,
                    JsValue::from(id),
                    KyberPreKeyRecord::from_bytes,
                )
                .await?
            else {
                continue;
            };
            let use_key =
                kyber_use_key(used.kyber_pre_key_id, used.signed_pre_key_id, &used.base_key);
            if record.last_resort {
                out.push((use_key, None));
            } else if !new.contains(&id) {
                out.push((use_key, Some(JsValue::from(id))));
            }
        }
        Ok(out)
    }

    /// The chat list's read model for a batch: each touched conversation's summary (newest
    /// message, unread count compared with the stored copies) and the start snapshot's recent
    /// list, added to `sealing`. Runs under `writing`, so nothing changes what it read before
    /// the batch commits.
    async fn read_model(
        &self,
        sealing: &mut Sealing,
        messages: &HashMap<MessageId, MessageRecord>,
        removed_messages: &[MessageId],
        contacts: &HashMap<AccountId, String>,
    ) -> Result<ModelWrites, StoreError> {
        let mut touched: Vec<(Vec<u8>, Vec<&MessageRecord>)> = Vec::new();
        for m in messages.values() {
            let k = conversation_to_bytes(&m.conversation);
            match touched.iter_mut().find(|(c, _)| *c == k) {
                Some((_, list)) => list.push(m),
                None => touched.push((k, vec![m])),
            }
        }
        if touched.is_empty() && contacts.is_empty() {
            return Ok(ModelWrites::default());
        }
        self.load_model(&touched, !contacts.is_empty()).await?;
        let model = self.model.borrow();
        let mut fresh: Vec<Fresh> = Vec::new();
        let mut writes = ModelWrites::default();
        for (key_bytes, list) in &touched {
            let (mut last, mut unread, mut mentions) = match model.summaries.get(key_bytes) {
                Some(s) => {
                    let s = s.read()?;
                    // A removed newest message (stamped afresh) gives way to the rest.
                    let gone = removed_messages.contains(&s.last.id);
                    ((!gone).then_some(s.last), i64::from(s.unread), i64::from(s.mentions))
                }
                None => (None, 0, 0),
            };
            for m in list {
                let was = model.messages.get(&m.id).copied().flatten().unwrap_or_default();
                let now = counted(m, model.handle.as_deref());
                unread += i64::from(now.unread) - i64::from(was.unread);
                mentions += i64::from(now.mention) - i64::from(was.mention);
                if last.as_ref().is_none_or(|l| l.id.sort_key() <= m.id.sort_key()) {
                    last = Some((*m).clone());
                }
            }
            if let Some(last) = &last {
                let unread = u32::try_from(unread.max(0)).unwrap_or(u32::MAX);
                let mentions = u32::try_from(mentions.max(0)).unwrap_or(u32::MAX);
                let summary = summary_value(last, unread, mentions);
                let name = match last.conversation {
                    Conversation::Direct(peer) => contacts
                        .get(&peer)
                        .cloned()
                        .or_else(|| model.names.get(&peer).cloned().flatten()),
                    Conversation::Group(_) => None,
                };
                sealing.put(
                    CONVERSATIONS,
                    bytes_value(key_bytes),
                    prost::Message::encode_to_vec(&summary),
                );
                writes.summaries.push((key_bytes.clone(), summary.clone()));
                fresh.push(Fresh::new(key_bytes.clone(), summary, last, name));
            }
        }
        // New handles name the snapshot's chats with those accounts.
        let mut stored_recent = model.recent.clone().flatten();
        let mut renamed = false;
        if let Some(recent) = stored_recent.as_mut() {
            for e in &mut recent.entries {
                let peer = e.a.as_deref().and_then(|a| hex::decode(a).ok());
                let peer = peer.and_then(|b| AccountId::from_bytes(&b).ok());
                if let Some(handle) = peer.and_then(|p| contacts.get(&p)) {
                    renamed |= e.n.as_ref() != Some(handle);
                    e.n = Some(handle.clone());
                }
            }
        }
        if !fresh.is_empty() || renamed {
            let recent = merge_recent(stored_recent, fresh);
            sealing.put(
                LOCAL,
                JsValue::from_str(RECENT_KEY),
                prost::Message::encode_to_vec(&recent),
            );
            writes.recent = Some(recent);
        }
        Ok(writes)
    }

    /// Reads into [`ModelCache`] what the batch's read model needs and the cache lacks: the
    /// touched summaries, the peers' handles, the recent list, and whether each message is
    /// stored and unread. One read-only transaction, then one round of opening; nothing when
    /// the cache has it all (a message the engine just looked up is known).
    async fn load_model(
        &self,
        touched: &[(Vec<u8>, Vec<&MessageRecord>)],
        need_recent: bool,
    ) -> Result<(), StoreError> {
        let (summary_keys, peers, recent_loaded, unknown) = {
            let model = self.model.borrow();
            let summary_keys: Vec<Vec<u8>> = touched
                .iter()
                .filter(|(k, _)| !model.summaries.contains_key(k))
                .map(|(k, _)| k.clone())
                .collect();
            let peers: Vec<AccountId> = touched
                .iter()
                .filter_map(|(_, l)| match l.first()?.conversation {
                    Conversation::Direct(peer) => Some(peer),
                    Conversation::Group(_) => None,
                })
                .filter(|p| !model.names.contains_key(p))
                .collect();
            let unknown: Vec<MessageId> = touched
                .iter()
                .flat_map(|(_, l)| l.iter())
                .filter(|m| !model.messages.contains_key(&m.id))
                .map(|m| m.id)
                .collect();
            (
                summary_keys,
                peers,
                model.recent.is_some() || (!need_recent && touched.is_empty()),
                unknown,
            )
        };
        if summary_keys.is_empty() && peers.is_empty() && recent_loaded && unknown.is_empty() {
            return Ok(());
        }
        let tx = self
            .transaction(&[MESSAGES, CONVERSATIONS, CONTACTS, LOCAL], TransactionMode::ReadOnly)?;
        let stored = tx.store(MESSAGES).map_err(rexie_err)?;
        let summaries = tx.store(CONVERSATIONS).map_err(rexie_err)?;
        let names = tx.store(CONTACTS).map_err(rexie_err)?;
        let recent_row = if recent_loaded {
            None
        } else {
            tx.store(LOCAL)
                .map_err(rexie_err)?
                .get(JsValue::from_str(RECENT_KEY))
                .await
                .map_err(rexie_err)?
        };
        let summary_rows = futures_util::future::join_all(
            summary_keys.iter().map(|k| summaries.get(bytes_value(k))),
        )
        .await;
        let name_rows =
            futures_util::future::join_all(peers.iter().map(|p| names.get(account_key(p)))).await;
        // A large batch (an import) asks which of its messages exist with one key-range
        // request instead of one read per message.
        let existing: Option<HashSet<Vec<u8>>> = if unknown.len() > PROBE_ONE_BY_ONE {
            let keys: Vec<Vec<u8>> = unknown.iter().map(|id| id.sort_key().to_vec()).collect();
            match (keys.iter().min(), keys.iter().max()) {
                (Some(lo), Some(hi)) => {
                    let range = KeyRange::bound(
                        &bytes_value(lo),
                        &bytes_value(hi),
                        Some(false),
                        Some(false),
                    )
                    .map_err(|e| backend(format!("key range: {e}")))?;
                    let found = stored.get_all_keys(Some(range), None).await.map_err(rexie_err)?;
                    Some(found.iter().filter_map(|k| value_bytes("message key", k).ok()).collect())
                }
                _ => None,
            }
        } else {
            None
        };
        let old_rows = futures_util::future::join_all(unknown.iter().map(|id| {
            let probe = existing.as_ref().is_none_or(|e| e.contains(id.sort_key().as_slice()));
            let get = probe.then(|| stored.get(message_key(id)));
            async move {
                match get {
                    Some(g) => g.await,
                    None => Ok(None),
                }
            }
        }))
        .await;
        tx.done().await.map_err(rexie_err)?;

        let mut found_summaries = Vec::new();
        for (k, row) in summary_keys.iter().zip(summary_rows) {
            if let Some(v) = row.map_err(rexie_err)? {
                found_summaries.push((bytes_value(k), v));
            }
        }
        let mut found_names = Vec::new();
        let mut found_peers = Vec::new();
        for (p, row) in peers.iter().zip(name_rows) {
            if let Some(v) = row.map_err(rexie_err)? {
                found_names.push((account_key(p), v));
                found_peers.push(*p);
            }
        }
        let mut old_values = Vec::new();
        let mut old_ids = Vec::new();
        let mut absent = Vec::new();
        for (id, row) in unknown.iter().zip(old_rows) {
            match row.map_err(rexie_err)? {
                Some(v) => {
                    old_values.push(v);
                    old_ids.push(*id);
                }
                None => absent.push(*id),
            }
        }
        let recent_rows: Vec<_> =
            recent_row.into_iter().map(|v| (JsValue::from_str(RECENT_KEY), v)).collect();
        let (opened_summaries, opened_names, olds, opened_recent) =
            futures_util::future::try_join4(
                open_rows(&self.key, "conversation", CONVERSATIONS, &found_summaries),
                open_rows(&self.key, "contact", CONTACTS, &found_names),
                open_messages(&self.key, &old_values),
                open_rows(&self.key, "recent chats", LOCAL, &recent_rows),
            )
            .await?;
        // Loaded values are the stored state: remembered at once (saves run one at a time,
        // so nothing changes them before this batch commits).
        let mut model = self.model.borrow_mut();
        for ((k, _), bytes) in found_summaries.iter().zip(opened_summaries) {
            model
                .summaries
                .insert(value_bytes("conversation key", k)?, StoredSummary::parse(&bytes)?);
        }
        for p in &peers {
            model.names.insert(*p, None);
        }
        for (p, n) in found_peers.iter().zip(opened_names) {
            model.names.insert(*p, String::from_utf8(n.to_vec()).ok());
        }
        for (id, m) in old_ids.iter().zip(olds) {
            let c = counted(&m, model.handle.as_deref());
            model.messages.insert(*id, Some(c));
        }
        for id in absent {
            model.messages.insert(id, None);
        }
        if !recent_loaded {
            model.recent = Some(match opened_recent.first() {
                Some(b) => Some(StoredRecent::parse(b)?),
                None => None,
            });
        }
        Ok(())
    }
}

/// The read model a batch writes, for [`ModelCache`] once the batch committed.
#[derive(Default)]
pub(super) struct ModelWrites {
    summaries: Vec<(Vec<u8>, StoredSummary)>,
    recent: Option<StoredRecent>,
}

/// The read model as stored, kept by the store that writes it (the engine tab's; saves run
/// one at a time), so a save reads and opens only what it has not seen.
#[derive(Default)]
pub(super) struct ModelCache {
    /// Conversation summaries, by conversation key.
    pub(super) summaries: HashMap<Vec<u8>, StoredSummary>,
    /// Handles by account (`None`: none stored).
    pub(super) names: HashMap<AccountId, Option<String>>,
    /// The recent list once read (`Some(None)`: none stored).
    pub(super) recent: Option<Option<StoredRecent>>,
    /// How a message counts in its summary (`None`: not stored), as last read or written.
    pub(super) messages: HashMap<MessageId, Option<Counted>>,
    /// This account's handle (mentions of it count), once the account was read or saved.
    pub(super) handle: Option<String>,
    /// Batches committed; a read that saw a commit start meanwhile is not remembered.
    pub(super) commits: u64,
}

impl ModelCache {
    /// A committed batch: its read model and its messages.
    pub(super) fn committed(
        &mut self,
        writes: ModelWrites,
        messages: &HashMap<MessageId, MessageRecord>,
        removed: &[MessageId],
        contacts: HashMap<AccountId, String>,
    ) {
        for (a, handle) in contacts {
            self.names.insert(a, Some(handle));
        }
        self.commits += 1;
        if self.summaries.len() + self.messages.len() > CACHE_LIMIT {
            self.summaries.clear();
            self.messages.clear();
        }
        self.summaries.extend(writes.summaries);
        if let Some(r) = writes.recent {
            self.recent = Some(Some(r));
        }
        for id in removed {
            self.messages.insert(*id, None);
        }
        for (id, m) in messages {
            let c = counted(m, self.handle.as_deref());
            self.messages.insert(*id, Some(c));
        }
    }
}

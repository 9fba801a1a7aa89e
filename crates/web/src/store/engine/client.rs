//! The engine's records (account, device lists, messages, groups, outbox) as reads.

use super::*;

#[async_trait(?Send)]
impl ClientStore for IdbStore {
    async fn save_client_changes(&self, changes: ClientChanges) -> Result<(), StoreError> {
        self.save_all(changes).await
    }

    async fn load_account(&self) -> Result<Option<AccountRecord>, StoreError> {
        let account = self
            .load("account", LOCAL, JsValue::from_str(ACCOUNT_KEY), AccountRecord::from_bytes)
            .await?;
        if let Some(a) = &account {
            // Mentions of it count in the chat list.
            self.model.borrow_mut().handle = Some(a.handle.clone());
        }
        Ok(account)
    }

    async fn load_device_list(
        &self,
        account: &AccountId,
    ) -> Result<Option<DeviceListRecord>, StoreError> {
        let load = self.load(
            "device list",
            DEVICE_LISTS,
            account_key(account),
            DeviceListRecord::from_bytes,
        );
        self.remembered_or(|r| &mut r.device_lists, account, load).await
    }

    async fn load_message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        if let Some(known) = self.cache.borrow().remembered.as_ref().and_then(|r| r.queued.get(id))
        {
            return Ok(Some(known.clone()));
        }
        let commits = self.model.borrow().commits;
        let m = match self.get(MESSAGES, message_key(id)).await? {
            Some(v) => open_messages(&self.key, &[v]).await?.pop(),
            None => None,
        };
        if m.as_ref().is_some_and(|m| m.id != *id) {
            return Err(corrupt("message", "it is filed under another message"));
        }
        // What a save will ask next (the engine looks a message up before it stores it),
        // unless a batch committed meanwhile.
        let mut model = self.model.borrow_mut();
        if model.commits == commits {
            if model.messages.len() >= CACHE_LIMIT {
                model.messages.clear();
            }
            let handle = model.handle.clone();
            model.messages.insert(*id, m.as_ref().map(|m| counted(m, handle.as_deref())));
        }
        Ok(m)
    }

    async fn load_group(&self, group_id: &[u8; 16]) -> Result<Option<GroupRecord>, StoreError> {
        let key = JsValue::from_str(&hex::encode(group_id));
        let load = self.load("group", GROUPS, key, GroupRecord::from_bytes);
        self.remembered_or(|r| &mut r.groups, group_id, load).await
    }

    async fn load_contact(&self, account: &AccountId) -> Result<Option<String>, StoreError> {
        self.contact(account).await
    }

    async fn load_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        if let Some(known) = self.cache.borrow().remembered.as_ref().and_then(|r| r.outbox.as_ref())
        {
            return Ok(known.values().cloned().collect());
        }
        let commits = self.model.borrow().commits;
        let entries = self.read_outbox().await?;
        let mut cache = self.cache.borrow_mut();
        cache.make_room();
        // Remembered only if no batch committed while it was read (that batch's entries
        // would be missing).
        if let Some(r) = cache.remembered.as_mut()
            && r.outbox.is_none()
            && self.model.borrow().commits == commits
        {
            r.outbox = Some(entries.iter().map(|e| (e.id.sort_key(), e.clone())).collect());
        }
        Ok(entries)
    }

    async fn load_messages(
        &self,
        conversation: &Conversation,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.scan_messages(conversation, &[0xffu8; 25], false, limit).await
    }

    async fn load_messages_before(
        &self,
        conversation: &Conversation,
        before: &MessageId,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        self.scan_messages(conversation, &before.sort_key(), true, limit).await
    }
}

impl IdbStore {
    /// The newest `limit` messages of a conversation up to the sort key `upper` (excluded
    /// when `open`), oldest first, read through the conversation index.
    async fn scan_messages(
        &self,
        conversation: &Conversation,
        upper: &[u8],
        open: bool,
        limit: usize,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let range = KeyRange::bound(
            &conversation_key(conversation, &[0u8; 25]),
            &conversation_key(conversation, upper),
            Some(false),
            Some(open),
        )
        .map_err(|e| backend(format!("key range: {e}")))?;
        let tx = self.transaction(&[MESSAGES], TransactionMode::ReadOnly)?;
        let index = tx
            .store(MESSAGES)
            .map_err(rexie_err)?
            .index(MESSAGES_BY_CONVERSATION)
            .map_err(rexie_err)?;
        let rows = index
            .scan(
                Some(range),
                Some(u32::try_from(limit).unwrap_or(u32::MAX)),
                None,
                Some(Direction::Prev),
            )
            .await
            .map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        let values: Vec<JsValue> = rows.into_iter().map(|(_, v)| v).collect();
        let mut out = open_messages(&self.key, &values).await?;
        out.reverse();
        Ok(out)
    }
}

impl IdbStore {
    /// Every outbox entry, from IndexedDB.
    async fn read_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let tx = self.transaction(&[OUTBOX], TransactionMode::ReadOnly)?;
        let rows = tx
            .store(OUTBOX)
            .map_err(rexie_err)?
            .scan(None, None, None, None)
            .await
            .map_err(rexie_err)?;
        tx.done().await.map_err(rexie_err)?;
        open_rows(&self.key, "outbox entry", OUTBOX, &rows)
            .await?
            .iter()
            .map(|b| OutboxEntry::from_bytes(b).map_err(|e| corrupt("outbox entry", e)))
            .collect()
    }
}

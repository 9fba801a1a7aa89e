//! What comes from the relay: pushes through the device runtime, kept pushes and their
//! retries, the send journal's typed texts, and the hourly upkeep.

use super::*;
use crate::journal::Entry;

impl Engine {
    /// Handles one push through [`tandem_core::runtime::handle_push`] and acts on what it
    /// says; `Ok(true)` when it stored something the UI shows, `Err(push)` when it must be
    /// tried again later (the relay was busy or unreachable, or a contact's new key waits
    /// for the person). Receipts and the UI notice wait for the end of the burst (see
    /// [`receive_loop`]).
    pub(super) async fn handle_push(&self, p: Push) -> Result<bool, Push> {
        let outcome =
            runtime::handle_push(&self.client, &self.relay, &p, now(), &mut system_rng()).await;
        match outcome {
            PushOutcome::Stored { ack, events, expired, calls_waiting } => {
                // Stored: only now may the relay delete it.
                self.relay.ack(ack);
                let calls: Vec<_> = events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Call(u) => Some((**u).clone()),
                        _ => None,
                    })
                    .collect();
                if !calls.is_empty() {
                    self.calls_changed(calls);
                }
                if calls_waiting {
                    // Replies (busy, hangups to late answers) leave now, not at the burst's end.
                    let weak = self.me.borrow().clone();
                    wasm_bindgen_futures::spawn_local(async move {
                        if let Some(e) = weak.upgrade() {
                            let _ = e.client.flush_calls(&e.relay, now(), &mut system_rng()).await;
                        }
                    });
                }
                for e in &events {
                    if let Event::Message(m) = e
                        && let Conversation::Direct(peer) = m.conversation
                    {
                        let _ = self.name_of(peer).await;
                    }
                }
                if expired > 0 {
                    self.notify(Notice::Error(format!(
                        "{expired} message(s) expired on the server before this device came online; the chats show where."
                    )));
                }
                Ok(!events.is_empty() || matches!(p.body, Some(push::Body::Expired(_))))
            }
            PushOutcome::Retry { held } => {
                if held {
                    self.notify(Notice::Changed);
                }
                Err(p)
            }
            PushOutcome::Failed(e) => {
                let what = if matches!(p.body, Some(push::Body::Envelope(_))) {
                    format!("A message could not be read: {}", describe(&e))
                } else {
                    describe(&e)
                };
                self.notify(Notice::Error(what));
                Ok(false)
            }
            PushOutcome::Removed { proven: true } => {
                self.notify(Notice::Removed);
                Ok(false)
            }
            PushOutcome::Removed { proven: false } => {
                self.notify(Notice::RemovalUnproven);
                Ok(false)
            }
            PushOutcome::DevicesChanged { report, error } => {
                // The primary signed a list from its own record: a companion the person
                // confirmed went in, one that left went out (revoked); anything else the
                // relay listed was refused, and people are warned.
                if let Some(report) = report {
                    self.report_refused(&report);
                }
                if let Some(e) = error {
                    web_sys::console::warn_1(&format!("upkeep failed: {e}").into());
                }
                self.notify(Notice::DevicesChanged);
                Ok(false)
            }
            // Receipts that a burst's end sends may be owed after the queue drained.
            PushOutcome::Drained => Ok(true),
            PushOutcome::Ignored => Ok(false),
        }
    }
}

/// Moves send-journal entries into the outbox, in order, whenever woken: each is queued
/// once (by its local id) and leaves the journal only after its transaction committed.
pub(super) async fn typed_loop(engine: std::rc::Weak<Engine>, mut rx: mpsc::UnboundedReceiver<()>) {
    while rx.next().await.is_some() {
        // One pass serves every wake-up that came meanwhile.
        while rx.try_recv().is_ok() {}
        let Some(e) = engine.upgrade() else { return };
        for id in e.queue_entries(crate::journal::entries()).await {
            crate::journal::remove(&id);
        }
    }
}

impl Engine {
    /// Queues send-journal entries in the outbox (each at most once, by its id; see
    /// [`Client::queue_text_once`]); returns the ids of the entries handled: queued, or
    /// refused for good (said to people). An entry the store failed to take stays out of the
    /// list, for the next pass.
    pub(crate) async fn queue_entries(&self, entries: Vec<Entry>) -> Vec<String> {
        let mut handled = Vec::new();
        for entry in entries {
            let (Some(conversation), Some(local_id)) = (entry.conversation(), entry.local_id())
            else {
                handled.push(entry.id);
                continue;
            };
            // Dated when typed (never later than now: a tab's clock cannot date a message
            // ahead of the engine's).
            let now = now();
            let typed =
                entry.typed_at.map(tandem_core::Timestamp::from_millis).filter(|t| *t <= now);
            let at = typed.unwrap_or(now);
            let (text, reply_to) = (&entry.text, entry.reply_to());
            let mut result =
                self.client.queue_text_once(conversation, text, reply_to, Some(local_id), at).await;
            // The answered message is gone (deleted meanwhile): the text still goes, without
            // its quote.
            if reply_to.is_some() && matches!(result, Err(ClientError::InvalidInput(_))) {
                result =
                    self.client.queue_text_once(conversation, text, None, Some(local_id), at).await;
            }
            match result {
                Ok(_) => handled.push(entry.id),
                Err(ClientError::InvalidInput(why)) => {
                    handled.push(entry.id);
                    self.notify(Notice::Error(format!("A message was not sent: {why}")));
                }
                // The store failed: the entry stays for the next pass.
                Err(err) => {
                    self.notify(Notice::Error(describe(&err)));
                    break;
                }
            }
        }
        if !handled.is_empty() {
            self.notify(Notice::Changed);
            if let Some(me) = self.me.borrow().upgrade() {
                wasm_bindgen_futures::spawn_local(async move { me.flush().await });
            }
        }
        handled
    }
}

impl Engine {
    /// Keeps a push that met a busy relay and feeds it (with any others kept meanwhile) back
    /// to the receive loop after the runtime's back-off.
    pub(super) fn retry_later(self: &Rc<Self>, p: Push) {
        let (delay, _dropped) = self.kept.borrow_mut().keep(p);
        let Some(delay) = delay else { return };
        let weak = Rc::downgrade(self);
        wasm_bindgen_futures::spawn_local(async move {
            crate::transport::sleep(delay).await;
            let Some(e) = weak.upgrade() else { return };
            let due = e.kept.borrow_mut().due();
            e.feed_back(due);
        });
    }

    /// Feeds the kept pushes back at once (a held sender was just accepted).
    pub(super) fn retry_now(&self) {
        let now = self.kept.borrow_mut().now();
        self.feed_back(now);
    }

    /// Hands pushes back to the receive loop.
    fn feed_back(&self, pushes: Vec<Push>) {
        if let Some(tx) = self.incoming.borrow().as_ref() {
            for p in pushes {
                let _ = tx.unbounded_send(p);
            }
        }
    }
}

/// How often a long-open engine tab refills prekeys, rotates its signed prekey and (on the
/// primary) renews the signed device list before it expires, besides on every connection.
const MAINTAIN_EVERY: Duration = Duration::from_secs(3600);

pub(super) async fn maintain_loop(engine: std::rc::Weak<Engine>) {
    loop {
        crate::transport::sleep(MAINTAIN_EVERY).await;
        let Some(e) = engine.upgrade() else { return };
        if e.incoming.borrow().is_none() {
            return;
        }
        if e.authenticated.get() {
            e.maintain().await;
        }
    }
}

/// How often long work's progress is looked at.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Work for fewer people than this is not shown.
const PROGRESS_MIN_PEOPLE: usize = 16;

/// Tells the UI how far long work has come (only work that lasts: a change is told at most
/// every [`PROGRESS_EVERY`], and the end once).
pub(super) async fn progress_loop(engine: std::rc::Weak<Engine>) {
    let mut shown = None;
    loop {
        crate::transport::sleep(PROGRESS_EVERY).await;
        let Some(e) = engine.upgrade() else { return };
        if e.incoming.borrow().is_none() {
            return;
        }
        // Work for a few people ends before anyone would read about it.
        let now = e.client.progress().filter(|p| p.total >= PROGRESS_MIN_PEOPLE);
        if now != shown {
            shown = now;
            e.notify(Notice::Progress(now.map(WorkProgress::of)));
        }
    }
}

/// Most pushes handled before the UI hears and receipts go out.
const BURST: usize = 100;

/// Handles pushes in order. A burst of pushes (a queue draining on reconnect) is handled
/// back to back, then the UI is told once and the receipts owed go out together (one
/// receipt per sender for many messages, instead of one send per message).
pub(super) async fn receive_loop(
    engine: std::rc::Weak<Engine>,
    mut rx: mpsc::UnboundedReceiver<Push>,
) {
    while let Some(first) = rx.next().await {
        let Some(e) = engine.upgrade() else { return };
        let mut changed = false;
        let mut next = Some(first);
        for _ in 0..BURST {
            let Some(p) = next.take().or_else(|| rx.try_recv().ok()) else { break };
            match e.handle_push(p).await {
                Ok(c) => {
                    changed |= c;
                    e.kept.borrow_mut().stored();
                }
                Err(p) => e.retry_later(p),
            }
        }
        if changed {
            e.notify(Notice::Changed);
        }
        let _ = e.client.flush_receipts(&e.relay, now(), &mut system_rng()).await;
        e.tidy().await;
    }
}

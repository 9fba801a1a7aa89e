//! A tab that views the engine running in another tab of this browser: it reads the store,
//! reloads when that tab says something changed, and runs every command there, over the
//! device's `BroadcastChannel` (see [`crate::device::tabs`]).

use std::rc::Rc;

use async_trait::async_trait;
use tandem_core::client::Client;

use super::{ActionError, Command, DeviceActions, ErrorKind, Outcome};
use crate::device::engine::{ENGINE_DB, Notice, tab_names};
use crate::device::tabs::{TabChannel, TabMessage};
use crate::store::IdbStore;

/// A view of the engine running in another tab.
pub struct View {
    client: Client<IdbStore>,
    channel: Option<TabChannel>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").finish_non_exhaustive()
    }
}

impl View {
    /// Starts viewing the device of `client`; `on_notice` hears what the engine tab tells.
    pub fn start(client: Client<IdbStore>, on_notice: impl Fn(Notice) + 'static) -> Rc<Self> {
        Rc::new_cyclic(|weak: &std::rc::Weak<Self>| {
            let weak = weak.clone();
            let channel = TabChannel::open(&tab_names(ENGINE_DB).1, move |msg| match msg {
                TabMessage::Changed => on_notice(Notice::Changed),
                TabMessage::LoggedOut => on_notice(Notice::Removed),
                TabMessage::Reload => {
                    if let Some(v) = weak.upgrade() {
                        v.client.store().close_now();
                    }
                    if let Some(w) = web_sys::window() {
                        let _ = w.location().reload();
                    }
                }
                TabMessage::Request { .. } | TabMessage::Reply { .. } => {}
            });
            Self { client, channel: channel.ok() }
        })
    }

    /// The device's client (reads only: the engine tab writes).
    pub(crate) fn client(&self) -> &Client<IdbStore> {
        &self.client
    }
}

#[async_trait(?Send)]
impl DeviceActions for View {
    async fn run(&self, command: Command) -> Result<Outcome, ActionError> {
        let Some(channel) = &self.channel else {
            return Err(ActionError::new(
                ErrorKind::Unreachable,
                "Tandem runs in another tab, and this browser cannot reach it from here; use that tab.",
            ));
        };
        channel.request(command).await
    }

    fn store(&self) -> &IdbStore {
        self.client.store()
    }

    /// The engine tab hears the journal's `storage` event and queues the entry.
    fn journal_written(&self) {}

    fn shut_down(&self) {
        if let Some(c) = &self.channel {
            c.post(&TabMessage::LoggedOut);
        }
        self.client.store().close_now();
    }
}

//! A tab's view of its device's engine, which runs in this tab's worker, on this tab's
//! thread, or in another tab: it reads the store, reloads when the engine says something
//! changed, and runs every command there, over the device's `BroadcastChannel` (see
//! [`crate::device::tabs`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use async_trait::async_trait;
use futures_channel::oneshot;
use tandem_core::client::Client;

use super::host::{Host, StartError};
use super::{ActionError, Command, DeviceActions, ErrorKind, Outcome};
use crate::device::engine::{ENGINE_DB, Notice, tab_names};
use crate::device::tabs::{TabChannel, TabMessage};
use crate::store::IdbStore;

/// How long a command of the hosting tab waits for its engine to start.
const START_WAIT: Duration = Duration::from_secs(45);

/// Where the hosting tab's engine stands.
enum Hosting {
    /// Another tab runs the engine.
    No,
    /// Starting; commands wait.
    Starting(Vec<oneshot::Sender<()>>),
    /// Runs.
    Running(Host),
    /// Did not start.
    Failed(StartError),
}

/// A view of the device's engine.
pub struct View {
    client: Client<IdbStore>,
    channel: Option<TabChannel>,
    hosting: RefCell<Hosting>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").finish_non_exhaustive()
    }
}

impl View {
    /// Starts viewing the device of `client`, whose engine this tab hosts (`hosting`: it is
    /// handed over with [`View::hosted`]) or another tab runs; `on_notice` hears what the
    /// engine tells.
    pub fn start(
        client: Client<IdbStore>,
        hosting: bool,
        on_notice: impl Fn(Notice) + 'static,
    ) -> Rc<Self> {
        Rc::new_cyclic(|weak: &std::rc::Weak<Self>| {
            let weak = weak.clone();
            let channel = TabChannel::open(&tab_names(ENGINE_DB).1, move |msg| match msg {
                TabMessage::Changed => on_notice(Notice::Changed),
                TabMessage::LoggedOut => on_notice(Notice::Removed),
                TabMessage::Notice(n) => on_notice(n),
                TabMessage::Reload => {
                    // The device starts over: let go of its store. The hosting tab waits for
                    // its engine to run the new device; other tabs reload.
                    let Some(v) = weak.upgrade() else { return };
                    v.client.store().close_now();
                    if v.is_host() {
                        on_notice(Notice::Restarting);
                    } else if let Some(w) = web_sys::window() {
                        let _ = w.location().reload();
                    }
                }
                TabMessage::Restarted => {
                    if weak.upgrade().is_some_and(|v| v.is_host()) {
                        on_notice(Notice::Restarted);
                    }
                }
                TabMessage::Request { .. } | TabMessage::Reply { .. } => {}
            });
            let hosting = if hosting { Hosting::Starting(Vec::new()) } else { Hosting::No };
            Self { client, channel: channel.ok(), hosting: RefCell::new(hosting) }
        })
    }

    /// The hosting tab's engine started (or did not): waiting commands go ahead (or fail).
    pub fn hosted(&self, host: Result<Host, StartError>) {
        let next = match host {
            Ok(h) => Hosting::Running(h),
            Err(e) => Hosting::Failed(e),
        };
        if let Hosting::Starting(waiters) = self.hosting.replace(next) {
            for w in waiters {
                let _ = w.send(());
            }
        }
    }

    /// Whether this tab hosts the engine (starting, running, or failed to start).
    pub fn is_host(&self) -> bool {
        !matches!(&*self.hosting.borrow(), Hosting::No)
    }

    /// Where this tab runs the engine, when it hosts it.
    pub fn host(&self) -> Option<Host> {
        match &*self.hosting.borrow() {
            Hosting::Running(h) => Some(h.clone()),
            _ => None,
        }
    }

    /// The device's client (reads only: the engine writes).
    pub(crate) fn client(&self) -> &Client<IdbStore> {
        &self.client
    }

    /// Waits until the engine this tab hosts runs.
    async fn started(&self) -> Result<(), ActionError> {
        let waiting = match &mut *self.hosting.borrow_mut() {
            Hosting::Starting(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Some(rx)
            }
            _ => None,
        };
        if let Some(rx) = waiting {
            let _ = crate::transport::within(START_WAIT, rx).await;
        }
        match &*self.hosting.borrow() {
            Hosting::Failed(e) => Err(ActionError::new(
                ErrorKind::Unreachable,
                format!("Tandem could not start on this browser: {e}. Reload the page."),
            )),
            Hosting::Starting(_) => Err(ActionError::new(
                ErrorKind::Unreachable,
                "Tandem is still starting. Try again in a moment.",
            )),
            Hosting::No | Hosting::Running(_) => Ok(()),
        }
    }
}

#[async_trait(?Send)]
impl DeviceActions for View {
    async fn run(&self, command: Command) -> Result<Outcome, ActionError> {
        self.started().await?;
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

    /// The hosting tab hands the entry to its engine; another tab's engine hears the
    /// journal's `storage` event.
    fn journal_written(&self) {
        if let Some(h) = self.host() {
            h.journal_written();
        }
    }

    fn shut_down(&self) {
        if let Some(c) = &self.channel {
            c.post(&TabMessage::LoggedOut);
        }
        self.client.store().close_now();
        if let Some(h) = self.host() {
            h.shut_down();
        }
    }
}

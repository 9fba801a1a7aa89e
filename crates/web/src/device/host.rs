//! Where this browser's device engine runs: in a dedicated worker the hosting tab started
//! ([`WorkerHost`]), or, where a worker cannot run it, on the hosting tab's own thread. Either
//! way the engine sits in its thread's one slot ([`serve`]), serves every tab's commands over
//! the device's `BroadcastChannel`, and tells every tab what happened; every tab, the
//! hosting one included, is a [`View`](super::View) of it.

use std::cell::RefCell;
use std::rc::Rc;

use super::engine::{Engine, Notice, tab_names};
use super::tabs::{TabChannel, TabMessage};
use super::worker::{SpawnError, WorkerHost};
use super::{DeviceActions, Outcome};
use crate::store::IdbStore;
use crate::text::describe;
use crate::transport::RelayClient;

thread_local! {
    /// This thread's engine (one per thread; a reset replaces it).
    static ENGINE: RefCell<Option<Rc<Engine>>> = const { RefCell::new(None) };
}

/// Why the engine did not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{error}")]
pub struct StartError {
    /// The store is locked (no unlocked key reached this thread).
    pub locked: bool,
    /// What happened, for people.
    pub error: String,
}

/// Opens the device stored in `db` and runs its engine on this thread over `relay`
/// (`registered_now`: that socket just registered the device).
pub async fn serve(db: &str, relay: RelayClient, registered_now: bool) -> Result<(), StartError> {
    let client = match Engine::open(db).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            return Err(StartError { locked: false, error: "no device in this browser".into() });
        }
        Err(e) => {
            return Err(StartError {
                locked: crate::store::seal::is_locked(&e),
                error: describe(&e),
            });
        }
    };
    let tabs = TabChannel::open(&tab_names(db).1, |_| {})
        .map_err(|error| StartError { locked: false, error })?;
    run(client, relay, registered_now, Rc::new(tabs), db.to_owned()).await;
    Ok(())
}

/// Creates an account named `handle` with this browser as its primary device `device_name`
/// (keys, prekeys and registration, all on this thread), then runs its engine here.
pub async fn register(
    db: &str,
    relay: RelayClient,
    handle: &str,
    device_name: &str,
) -> Result<(), StartError> {
    let failed =
        |e: &tandem_core::client::ClientError| StartError { locked: false, error: describe(e) };
    // A socket just dialled: wait for it (a refusal below then says "offline").
    for _ in 0..300 {
        if relay.is_connected() {
            break;
        }
        crate::transport::sleep(std::time::Duration::from_millis(50)).await;
    }
    let client =
        Engine::create_account(db, &relay, handle, device_name).await.map_err(|e| failed(&e))?;
    let tabs = TabChannel::open(&tab_names(db).1, |_| {})
        .map_err(|error| StartError { locked: false, error })?;
    run(client, relay, true, Rc::new(tabs), db.to_owned()).await;
    Ok(())
}

/// Starts the engine of `client` in this thread's slot.
async fn run(
    client: tandem_core::client::Client<IdbStore>,
    relay: RelayClient,
    registered_now: bool,
    tabs: Rc<TabChannel>,
    db: String,
) {
    let engine = Engine::start(client, relay.clone(), registered_now, notices(tabs.clone())).await;
    engine.on_replaced(move |client| {
        wasm_bindgen_futures::spawn_local(async move {
            // The reset registered the new device on this socket.
            Box::pin(run(client, relay, true, tabs.clone(), db)).await;
            tabs.post(&TabMessage::Restarted);
        });
    });
    ENGINE.with(|e| *e.borrow_mut() = Some(engine));
}

/// What the engine's host does with its notices: "changed" the engine posts itself; the rest
/// goes to every tab, and a removal or refusal stops the engine first.
fn notices(tabs: Rc<TabChannel>) -> impl Fn(Notice) + 'static {
    move |n: Notice| match n {
        Notice::Changed | Notice::DevicesChanged | Notice::Restarting | Notice::Restarted => {}
        // Logged out: stop, close the store, tell every tab (they delete the data).
        Notice::Removed => {
            if let Some(e) = ENGINE.with(|e| e.borrow_mut().take()) {
                e.shut_down();
            }
        }
        Notice::RemovalUnproven => {
            if let Some(e) = ENGINE.with(|e| e.borrow().clone()) {
                e.stop();
            }
            tabs.post(&TabMessage::Notice(n));
        }
        other => tabs.post(&TabMessage::Notice(other)),
    }
}

/// Where the hosting tab runs its device's engine.
#[derive(Clone, Debug)]
pub enum Host {
    /// In a dedicated worker.
    Worker(Rc<WorkerHost>),
    /// On this tab's thread.
    Tab,
}

impl Host {
    /// Runs the engine of the device stored in `db`: in a worker where this page can start
    /// one, otherwise on this tab's thread over `relay`.
    pub async fn start(
        db: &str,
        relay: &RelayClient,
        registered_now: bool,
    ) -> Result<Self, StartError> {
        match WorkerHost::spawn(db, &relay.url()).await {
            Ok(host) => return Ok(Self::Worker(host)),
            Err(SpawnError::Unsupported(why)) => {
                web_sys::console::warn_1(&format!("{why}: Tandem runs in this tab").into());
            }
            Err(SpawnError::Failed(e)) => {
                web_sys::console::warn_1(
                    &format!("the engine's worker failed ({e}): Tandem runs in this tab").into(),
                );
            }
        }
        serve(db, relay.clone(), registered_now).await.map(|()| Self::Tab)
    }

    /// This tab wrote a text to the send journal.
    pub fn journal_written(&self) {
        match self {
            Self::Worker(w) => w.kick(),
            Self::Tab => {
                if let Some(e) = ENGINE.with(|e| e.borrow().clone()) {
                    e.journal_written();
                }
            }
        }
    }

    /// This device was logged out: the engine ends and lets go of the store.
    pub fn shut_down(&self) {
        match self {
            Self::Worker(w) => w.terminate(),
            Self::Tab => {
                if let Some(e) = ENGINE.with(|e| e.borrow_mut().take()) {
                    e.shut_down();
                }
            }
        }
    }
}

/// Runs a command on this thread's engine directly (tests, benchmarks).
pub async fn run_here(command: super::Command) -> Result<Outcome, super::ActionError> {
    let Some(e) = ENGINE.with(|e| e.borrow().clone()) else {
        return Err(super::ActionError::new(super::ErrorKind::Unreachable, "no engine runs here"));
    };
    e.run(command).await
}

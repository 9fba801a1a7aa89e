//! The device driver's policy, without IO: what a device does with each push from the relay
//! and when it tries again. The browser and the native client are thin loops around it (they
//! own the socket, the timers and the UI); neither decides what to acknowledge.
//!
//! Acknowledgement follows one rule: a push is acknowledged only after what it carried is
//! stored ([`PushOutcome::Stored`] names the id to acknowledge). A push that could not be
//! stored for a reason that passes (the relay busy or unreachable, a key change the person
//! has not accepted yet) is kept and offered again after [`RetryPolicy::next_delay`]; one
//! that can never be read is left unacknowledged for the relay's expiry, and said.

use std::time::Duration;

use rand_core::CryptoRng;

use crate::client::{Client, ClientError, Event, PublishReport};
use crate::store::ClientStore;
use crate::time::Timestamp;
use crate::transport::RelayTransport;
use crate::wire::relay::{Push, push};

/// What handling one push came to, for the driver to act on.
#[derive(Debug)]
pub enum PushOutcome {
    /// Stored: acknowledge push `ack` now, and show `events`. `expired` counts the messages
    /// the relay let expire before this device came (their gaps are among `events`).
    Stored {
        /// The push id to acknowledge.
        ack: u64,
        /// What changed.
        events: Vec<Event>,
        /// Messages that expired undelivered (an `Expired` push), 0 otherwise.
        expired: usize,
    },
    /// Not stored for now: keep the push and offer it again after the retry delay.
    /// `held` when it waits for the person to accept a contact's new key (offer it again
    /// at once when they do).
    Retry {
        /// A key change waits for the person.
        held: bool,
    },
    /// It cannot be read: left unacknowledged (the relay expires it), and said.
    Failed(ClientError),
    /// The relay says this device was removed; `proven` when the account key signed the
    /// removal (then the device's data may go), else the keys stay until the person decides.
    Removed {
        /// The account key signed the removal.
        proven: bool,
    },
    /// The account's devices changed; the upkeep ran (on the primary it signs a new list
    /// from its own record; `report` says what it refused to list).
    DevicesChanged {
        /// The list the primary published, if it published one.
        report: Option<PublishReport>,
        /// The upkeep failed (it runs again at the next connection and on a timer).
        error: Option<ClientError>,
    },
    /// The relay delivered everything it held for this device.
    Drained,
    /// Nothing to do.
    Ignored,
}

/// Handles one push: stores what it carries (or keeps it for later) and says what the
/// driver must do. Never acknowledges by itself.
pub async fn handle_push<S: ClientStore, T: RelayTransport + ?Sized>(
    client: &Client<S>,
    transport: &T,
    push: &Push,
    now: Timestamp,
    rng: &mut impl CryptoRng,
) -> PushOutcome {
    match &push.body {
        Some(push::Body::Envelope(envelope)) => {
            match client.receive(transport, envelope, now, rng).await {
                Ok(events) => PushOutcome::Stored { ack: envelope.id, events, expired: 0 },
                Err(e) => keep_or_fail(e),
            }
        }
        Some(push::Body::Expired(x)) => match client.record_expired(&x.entries, now).await {
            // The gaps are recorded before the relay may forget them.
            Ok(events) => PushOutcome::Stored { ack: push.id, events, expired: x.entries.len() },
            Err(e) => keep_or_fail(e),
        },
        Some(push::Body::DeviceRemoved(r)) => {
            PushOutcome::Removed { proven: client.removal_proven(&r.signed_device_list).await }
        }
        Some(push::Body::DeviceLinked(_) | push::Body::DeviceUnlinked(_)) => {
            match client.maintain(transport, now, rng).await {
                Ok(report) => PushOutcome::DevicesChanged { report, error: None },
                Err(e) => PushOutcome::DevicesChanged { report: None, error: Some(e) },
            }
        }
        Some(push::Body::QueueDrained(_)) => PushOutcome::Drained,
        Some(push::Body::Welcome(_) | push::Body::Provisioning(_)) | None => PushOutcome::Ignored,
    }
}

fn keep_or_fail(e: ClientError) -> PushOutcome {
    match e {
        e if e.is_transient() => PushOutcome::Retry { held: false },
        ClientError::AccountKeyChanged(_) => PushOutcome::Retry { held: true },
        e => PushOutcome::Failed(e),
    }
}

/// When to offer kept pushes again: 1 s after the first failure, doubling to 30 s while
/// the relay stays busy, back to 1 s after a success. Returns delays; the driver sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    next: Duration,
}

impl RetryPolicy {
    /// The first delay.
    pub const FIRST: Duration = Duration::from_secs(1);
    /// The longest delay.
    pub const MAX: Duration = Duration::from_secs(30);

    /// A policy that has seen no failure.
    pub const fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The delay before the next attempt after a failure (each failure doubles the next).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(Self::MAX);
        d
    }

    /// A push was stored: the next failure starts again from [`Self::FIRST`].
    pub fn succeeded(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_retry_delays_double_to_the_cap_and_reset_after_a_success() {
        let mut p = RetryPolicy::new();
        let delays: Vec<u64> = (0..7).map(|_| p.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        p.succeeded();
        assert_eq!(p.next_delay(), RetryPolicy::FIRST);
    }

    #[test]
    fn test_transient_failures_and_held_keys_are_kept_other_failures_are_not() {
        let transient = ClientError::Transport(crate::transport::TransportError::Timeout);
        assert!(matches!(keep_or_fail(transient), PushOutcome::Retry { held: false }));
        let held = ClientError::AccountKeyChanged(crate::address::AccountId([1; 16]));
        assert!(matches!(keep_or_fail(held), PushOutcome::Retry { held: true }));
        let bad = ClientError::InvalidInput("x".into());
        assert!(matches!(keep_or_fail(bad), PushOutcome::Failed(_)));
    }
}

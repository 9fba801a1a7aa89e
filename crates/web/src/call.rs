//! Calls in a tab: the `RTCPeerConnection`, the camera and microphone, the media worker that
//! protects frames end to end, and what the call screen shows. Signalling goes through the
//! device's engine ([`Command::PlaceCall`] and the rest, [`CallNotice`] back); the call book
//! that decides ringing, answers and timeouts lives in `tandem_core::calls`.
//!
//! The connection is checked end to end: once connected, the remote DTLS certificate's
//! SHA-256 fingerprint (from the peer connection's statistics) must equal the one the
//! encrypted offer or answer named; otherwise the call ends with a warning.

pub mod media;

#[cfg(target_family = "wasm")]
mod peer;

#[cfg(target_family = "wasm")]
pub use peer::Calls;

/// What the call screen shows.
#[derive(Clone, Debug, PartialEq)]
pub enum CallPhase {
    /// No call.
    Idle,
    /// A call rings here.
    Incoming {
        /// The call.
        call_id: u64,
        /// Who calls.
        name: String,
        /// A video call.
        video: bool,
    },
    /// This device calls and waits.
    Calling {
        /// Whom.
        name: String,
        /// A video call.
        video: bool,
    },
    /// Answered; the connection is being made.
    Connecting {
        /// With whom.
        name: String,
    },
    /// Connected.
    InCall {
        /// With whom.
        name: String,
        /// When it connected (ms since the epoch), for the timer.
        since: f64,
    },
    /// The call just ended (shown a few seconds).
    Ended {
        /// Why, for people.
        text: String,
        /// The end-to-end check failed.
        security: bool,
    },
    /// A call of this account runs on another device.
    Elsewhere {
        /// What to say.
        text: String,
    },
}

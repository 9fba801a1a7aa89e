//! The typed commands a tab runs on its device's engine, their outcomes, and errors that keep
//! their kind when they cross from the engine's tab to a view.

use serde::{Deserialize, Serialize};
use tandem_core::client::ClientError;

/// What a tab asks its device's engine to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Find an account by handle (and remember it as a contact).
    Find {
        /// The handle.
        handle: String,
    },
    /// The handle of an account, learned from the relay.
    Name {
        /// The account id's bytes.
        account: Vec<u8>,
    },
    /// Mark a direct conversation read.
    MarkRead {
        /// The peer's account id.
        peer: Vec<u8>,
    },
    /// Mark a group's messages read on this device.
    MarkGroupRead {
        /// The group id (16 bytes).
        group: Vec<u8>,
    },
    /// The account's devices as the relay lists them.
    Devices,
    /// Primary: link the companion showing this code.
    Link {
        /// The link code's text.
        code: String,
    },
    /// Primary: the codes matched; sign the companion into the list.
    ConfirmLink {
        /// The link's key index.
        key_index: u32,
    },
    /// Primary: the codes differed; revoke the link.
    RejectLink {
        /// The link's key index.
        key_index: u32,
    },
    /// Log a device out.
    RemoveDevice {
        /// Its id.
        device: u32,
    },
    /// Rename this device.
    Rename {
        /// The new name.
        name: String,
    },
    /// The security code with a contact.
    SecurityCode {
        /// The contact's account id.
        contact: Vec<u8>,
    },
    /// Check a contact's code text.
    VerifyCode {
        /// The contact's account id.
        contact: Vec<u8>,
        /// The pasted or scanned text.
        text: String,
    },
    /// Mark a contact verified or not.
    SetVerified {
        /// The contact's account id.
        contact: Vec<u8>,
        /// Verified or not.
        verified: bool,
    },
    /// Accept a contact's changed security code.
    AcknowledgeKeyChange {
        /// The contact's account id.
        contact: Vec<u8>,
    },
    /// Queue send-journal entries in the outbox (the engine's worker cannot read the journal;
    /// its tab hands the entries over).
    QueueTexts {
        /// The entries, oldest first.
        entries: Vec<crate::journal::Entry>,
    },
    /// Primary: start the account over with a new account key.
    ResetAccount,
    /// Call a contact with this tab's SDP offer.
    PlaceCall {
        /// The contact's account id.
        peer: Vec<u8>,
        /// The offer.
        sdp: String,
        /// A video call.
        video: bool,
    },
    /// Answer the call ringing on this device with this tab's SDP answer.
    AnswerCall {
        /// The call.
        call_id: u64,
        /// The answer.
        sdp: String,
        /// Whether this side sends video.
        video: bool,
    },
    /// Decline the call ringing on this device (on every device of the account).
    DeclineCall {
        /// The call.
        call_id: u64,
    },
    /// Hang up this device's call.
    HangUp {
        /// The call.
        call_id: u64,
        /// Because the connection failed the end-to-end check.
        security_failure: bool,
    },
    /// ICE candidates this tab gathered for the call.
    CallCandidates {
        /// The call.
        call_id: u64,
        /// `RTCIceCandidateInit`s as JSON.
        candidates: Vec<String>,
        /// The ICE generation.
        generation: u32,
    },
    /// This tab's microphone or camera went off or on during the call.
    CallMedia {
        /// The call.
        call_id: u64,
        /// The microphone is off.
        muted: bool,
        /// The camera is off.
        camera_off: bool,
    },
    /// The STUN and TURN servers the relay names for calls.
    IceServers,
    /// A new offer (ICE restart, from the caller's tab) or the answer to one.
    RenegotiateCall {
        /// The call.
        call_id: u64,
        /// The SDP.
        sdp: String,
        /// An offer (else an answer).
        offer: bool,
        /// The ICE generation it starts.
        generation: u32,
    },
    /// Create a group (this account its admin) with these accounts (ids' bytes).
    CreateGroup {
        /// Its title.
        title: String,
        /// The other members.
        members: Vec<Vec<u8>>,
    },
    /// Accept (or decline) the invitation to a group.
    AcceptGroup {
        /// The group id (16 bytes).
        group: Vec<u8>,
        /// Accept, else decline.
        accept: bool,
    },
    /// Change a group (an admin): members to add, remove, promote, demote (ids' bytes), and
    /// a new title.
    EditGroup {
        /// The group id (16 bytes).
        group: Vec<u8>,
        /// Accounts to add.
        add: Vec<Vec<u8>>,
        /// Members to remove.
        remove: Vec<Vec<u8>>,
        /// Members to make admins.
        promote: Vec<Vec<u8>>,
        /// Admins to make plain members.
        demote: Vec<Vec<u8>>,
        /// A new title.
        title: Option<String>,
    },
    /// Send a group's waiting messages without a member whose changed security code the
    /// person has not accepted.
    SendWithout {
        /// The group id (16 bytes).
        group: Vec<u8>,
        /// The member's account id.
        member: Vec<u8>,
    },
    /// Leave a group.
    LeaveGroup {
        /// The group id (16 bytes).
        group: Vec<u8>,
    },
}

impl Command {
    /// Whether the command asks the relay (so waits for the socket to be logged in).
    pub fn needs_relay(&self) -> bool {
        !matches!(
            self,
            Self::QueueTexts { .. }
                | Self::SetVerified { .. }
                | Self::AcknowledgeKeyChange { .. }
                | Self::SendWithout { .. }
                | Self::MarkGroupRead { .. }
        )
    }
}

/// What a command produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Done; nothing to return.
    Done,
    /// An account: id and handle.
    Account {
        /// The account id's bytes.
        id: Vec<u8>,
        /// Its handle.
        handle: String,
    },
    /// A name.
    Name(String),
    /// Devices, each a `DeviceInfo` protobuf.
    Devices(Vec<Vec<u8>>),
    /// The matching code of a link, and its key index.
    Matching {
        /// The code both screens show.
        code: String,
        /// The link's key index.
        key_index: u32,
    },
    /// A security code.
    Code {
        /// 60 digits.
        digits: String,
        /// The QR text.
        text: String,
        /// The contact's `DeviceListRecord` bytes.
        list: Vec<u8>,
    },
    /// What checking a code showed.
    Scan(Scan),
    /// The ids of the journal entries the engine is done with.
    Handled(Vec<String>),
    /// The relay's ICE servers for calls.
    IceServers {
        /// Each server: its URLs, user name and credential (empty for STUN).
        servers: Vec<IceServerEntry>,
        /// When the TURN credentials expire (ms since the epoch), 0 without TURN.
        expires_ms: u64,
    },
    /// A group was created.
    GroupCreated {
        /// Its id (16 bytes).
        group: Vec<u8>,
    },
    /// A call was placed.
    CallPlaced {
        /// Its id.
        call_id: u64,
        /// How many devices of the contact it rings on.
        devices: u32,
    },
}

/// One `RTCIceServer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServerEntry {
    /// `stun:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    /// For TURN.
    pub username: String,
    /// For TURN.
    pub credential: String,
}

/// What the engine tells the tabs about a call (see [`tandem_core::calls::CallUpdate`]).
/// Secrets cross only in memory, between this device's tabs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallNotice {
    /// A call rings on this device.
    Ringing {
        /// The call.
        call_id: u64,
        /// The caller's account id.
        peer: Vec<u8>,
        /// A video call.
        video: bool,
        /// The caller's offer.
        sdp: String,
        /// The caller's DTLS fingerprint.
        fingerprint: Vec<u8>,
        /// This device's master secret.
        secret: Vec<u8>,
    },
    /// This device's call was answered.
    Answered {
        /// The call.
        call_id: u64,
        /// The callee's answer.
        sdp: String,
        /// The callee's DTLS fingerprint.
        fingerprint: Vec<u8>,
        /// The call's master secret.
        secret: Vec<u8>,
        /// Whether the callee sends video.
        video: bool,
    },
    /// ICE candidates from the other end.
    Candidates {
        /// The call.
        call_id: u64,
        /// `RTCIceCandidateInit`s as JSON.
        candidates: Vec<String>,
    },
    /// The other end's microphone or camera went off or on.
    Media {
        /// The call.
        call_id: u64,
        /// Its microphone is off.
        muted: bool,
        /// Its camera is off.
        camera_off: bool,
    },
    /// The other end renegotiates (an ICE restart).
    Renegotiate {
        /// The call.
        call_id: u64,
        /// Its SDP.
        sdp: String,
        /// An offer (else the answer to this tab's offer).
        offer: bool,
        /// The ICE generation.
        generation: u32,
    },
    /// A call of this account on another device.
    Elsewhere {
        /// The call.
        call_id: u64,
        /// Whom with.
        peer: Vec<u8>,
        /// Connected there.
        connected: bool,
    },
    /// The call ended.
    Ended {
        /// The call.
        call_id: u64,
        /// Whom with.
        peer: Vec<u8>,
        /// Why, for people.
        reason: String,
        /// The end-to-end check failed.
        security: bool,
    },
}

impl CallNotice {
    /// The notice of an engine update.
    pub fn of(update: tandem_core::calls::CallUpdate) -> Self {
        use tandem_core::calls::{CallUpdate as U, EndReason};
        match update {
            U::Ringing { call_id, peer, video, sdp, fingerprint, secret, .. } => Self::Ringing {
                call_id,
                peer: peer.0.to_vec(),
                video,
                sdp,
                fingerprint: fingerprint.to_vec(),
                secret: secret.0.to_vec(),
            },
            U::Answered { call_id, sdp, fingerprint, secret, video, .. } => Self::Answered {
                call_id,
                sdp,
                fingerprint: fingerprint.to_vec(),
                secret: secret.0.to_vec(),
                video,
            },
            U::Candidates { call_id, candidates, .. } => Self::Candidates { call_id, candidates },
            U::Media { call_id, muted, camera_off } => Self::Media { call_id, muted, camera_off },
            U::Renegotiate { call_id, sdp, offer, generation } => {
                Self::Renegotiate { call_id, sdp, offer, generation }
            }
            U::Elsewhere { call_id, peer, connected } => {
                Self::Elsewhere { call_id, peer: peer.0.to_vec(), connected }
            }
            U::Ended { call_id, peer, reason } => Self::Ended {
                call_id,
                peer: peer.0.to_vec(),
                reason: crate::text::call_ended(reason).to_owned(),
                security: reason == EndReason::SecurityFailure,
            },
        }
    }

    /// The call it is about.
    pub fn call_id(&self) -> u64 {
        match self {
            Self::Ringing { call_id, .. }
            | Self::Answered { call_id, .. }
            | Self::Candidates { call_id, .. }
            | Self::Media { call_id, .. }
            | Self::Renegotiate { call_id, .. }
            | Self::Elsewhere { call_id, .. }
            | Self::Ended { call_id, .. } => *call_id,
        }
    }
}

/// What checking a contact's code showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scan {
    /// Same keys, same device lists: the contact is verified now.
    Verified,
    /// Different account keys: someone else's code, or their key changed.
    KeysDiffer,
    /// Same keys, but one of you sees a different set of devices.
    ListsDiffer {
        /// The contact's own list differs from the one this browser sees.
        their_list: bool,
        /// The contact sees a different list for this account.
        our_list: bool,
    },
}

/// What kind of failure a command met: what the UI may do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The relay could not be reached; the same command may work once connected.
    Offline,
    /// The input was refused before anything was done.
    Invalid,
    /// A contact's account key changed: the person must look at the security code first.
    KeyChanged,
    /// The relay refused the request.
    Refused,
    /// Only the account's primary device may do this.
    PrimaryOnly,
    /// The engine (in another tab) did not answer.
    Unreachable,
    /// Anything else.
    Failed,
}

/// A failed command: its kind, and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened and what to do, for people.
    pub message: String,
}

impl ActionError {
    /// A failure of `kind`, explained by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// Refused input, explained by `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// An engine failure, with the sentence [`crate::text::describe`] gives it.
    pub fn from_client(e: &ClientError) -> Self {
        Self::new(kind_of(e), crate::text::describe(e))
    }

    /// An engine failure of `e`'s kind, explained by `message`.
    pub fn explained(e: &ClientError, message: String) -> Self {
        Self::new(kind_of(e), message)
    }

    /// An answer that did not fit the command (a view and an engine of different versions).
    pub fn unexpected(what: &str) -> Self {
        Self::new(
            ErrorKind::Failed,
            format!("Tandem's engine gave an unexpected answer ({what}). Reload this tab."),
        )
    }
}

impl From<ClientError> for ActionError {
    fn from(e: ClientError) -> Self {
        Self::from_client(&e)
    }
}

/// The kind of an engine failure.
pub fn kind_of(e: &ClientError) -> ErrorKind {
    match e {
        ClientError::Transport(_) => ErrorKind::Offline,
        ClientError::InvalidInput(_) | ClientError::Link(_) | ClientError::SecurityCode(_) => {
            ErrorKind::Invalid
        }
        ClientError::AccountKeyChanged(_) => ErrorKind::KeyChanged,
        ClientError::Server { .. } => ErrorKind::Refused,
        ClientError::PrimaryOnly(_) => ErrorKind::PrimaryOnly,
        _ => ErrorKind::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_core::transport::TransportError;
    use tandem_core::wire::relay::Status;

    #[test]
    fn kinds_follow_the_engine_error() {
        let offline = ClientError::Transport(TransportError::NotConnected);
        assert_eq!(ActionError::from(offline).kind, ErrorKind::Offline);
        let taken =
            ClientError::Server { status: Status::Conflict, message: "handle taken".into() };
        let e = ActionError::from(taken);
        assert_eq!(e.kind, ErrorKind::Refused);
        assert_eq!(e.message, "That name is taken. Try another one.");
        let changed = ClientError::AccountKeyChanged(tandem_core::AccountId([7; 16]));
        assert_eq!(ActionError::from(changed).kind, ErrorKind::KeyChanged);
        assert_eq!(
            ActionError::from(ClientError::PrimaryOnly("link")).kind,
            ErrorKind::PrimaryOnly
        );
        assert_eq!(ActionError::from(ClientError::NotRegistered).kind, ErrorKind::Failed);
    }
}

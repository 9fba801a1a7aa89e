//! Sentences for people about what went wrong, in one place.

use tandem_core::client::ClientError;
use tandem_core::link::LinkError;
use tandem_core::wire::relay::Status;

/// A sentence for people about an engine failure.
pub fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Transport(_) => {
            "You're offline. It will be sent when the connection is back.".into()
        }
        ClientError::Server { status: Status::Conflict, message } if message.contains("handle") => {
            "That name is taken. Try another one.".into()
        }
        ClientError::Server { status: Status::NotFound, .. } => {
            "No one has that name on this server.".into()
        }
        ClientError::Server { status: Status::RateLimited, .. } => {
            "Too many attempts. Wait a minute and try again.".into()
        }
        ClientError::Server { message, .. } => format!("The server refused: {message}."),
        other => other.to_string(),
    }
}

/// A sentence for people about a failed link.
pub fn link_problem(e: &ClientError) -> String {
    match e {
        ClientError::Link(LinkError::Tampered) => {
            "The link message was damaged or forged, so nothing was linked. A new code is shown; try again.".into()
        }
        ClientError::Link(LinkError::WrongDevice) => {
            "The other device answered for a different browser, so nothing was linked. Scan the code shown here.".into()
        }
        ClientError::Link(LinkError::Expired) => {
            "That link code has expired. Use the new code shown on the other device.".into()
        }
        ClientError::Link(LinkError::Malformed) => {
            "That is not a Tandem link code. Copy the whole text shown under the QR code on the other device.".into()
        }
        ClientError::Server { status: Status::LimitReached, .. } => {
            "This account already has 4 linked devices. Log one out on your main device, then try again.".into()
        }
        ClientError::Server { status: Status::BadRequest | Status::Unauthorized, .. } => {
            "The server did not accept the link: the other device said no, or the code was used already. Nothing was linked; try again with a new code.".into()
        }
        ClientError::Transport(_) => {
            "The connection dropped while linking. Nothing was linked; a new code appears when the connection is back.".into()
        }
        other => describe(other),
    }
}

/// Why a call ended when its connection could not be restarted.
pub fn restart_failed(detail: &str) -> String {
    format!("The call's connection could not restart: {detail}. Call again.")
}

/// Why a call ended, for people.
pub fn call_ended(reason: tandem_core::calls::EndReason) -> &'static str {
    use tandem_core::calls::EndReason as R;
    match reason {
        R::HungUp => "Call ended.",
        R::Declined => "Call declined.",
        R::Busy => "They are in another call. Try again later.",
        R::NoAnswer => "No answer.",
        R::Cancelled => "Missed call.",
        R::AnsweredElsewhere => "Answered on another device.",
        R::DeclinedElsewhere => "Declined on another device.",
        R::SecurityFailure => {
            "Call ended: the connection was not the one your contact's encrypted call offer named. Someone may be interfering with the network or the server. Try again; if it happens again, compare security codes."
        }
    }
}

/// A call's line in a conversation.
pub fn call_line(
    outgoing: bool,
    outcome: tandem_core::client::CallOutcome,
    video: bool,
    seconds: u32,
) -> String {
    use tandem_core::client::CallOutcome as O;
    let kind = if video { "video call" } else { "voice call" };
    let duration = if seconds >= 60 {
        format!("{} min {} s", seconds / 60, seconds % 60)
    } else {
        format!("{seconds} s")
    };
    match (outcome, outgoing) {
        (O::Completed, true) => format!("Outgoing {kind}, {duration}"),
        (O::Completed, false) => format!("Incoming {kind}, {duration}"),
        (O::Missed, true) => format!("Outgoing {kind}, no answer"),
        (O::Missed, false) => format!("Missed {kind}"),
        (O::Declined, true) => format!("Outgoing {kind}, declined"),
        (O::Declined, false) => format!("Declined {kind}"),
        (O::Busy, _) => format!("{} {kind}, busy", if outgoing { "Outgoing" } else { "Incoming" }),
        (O::AnsweredElsewhere, _) => format!("Incoming {kind}, answered on another device"),
        (O::SecurityFailure, _) => format!(
            "{} {kind}, ended: the connection failed the security check",
            if outgoing { "Outgoing" } else { "Incoming" }
        ),
        (O::Failed, _) => {
            format!("{} {kind}, could not connect", if outgoing { "Outgoing" } else { "Incoming" })
        }
    }
}

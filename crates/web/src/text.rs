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

/// Most people a line names one by one (see [`people`]).
pub const PEOPLE_SHOWN: usize = 5;

/// People named in a line: "bob", "bob and carol", "bob, carol and dave", and past five
/// "…, eve and 3 others".
pub fn people(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        _ if names.len() > PEOPLE_SHOWN + 1 => {
            let shown = names[..PEOPLE_SHOWN].join(", ");
            format!("{shown} and {} others", names.len() - PEOPLE_SHOWN)
        }
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The line a group change leaves in the chat: who did what, named. `actor` made the
/// change; `name` names an account ("you" for this account, which starts a line as "You").
pub fn group_line(
    actor: &tandem_core::AccountId,
    created: bool,
    change: &tandem_core::group_state::GroupChange,
    name: &dyn Fn(&tandem_core::AccountId) -> String,
) -> String {
    let list = |accounts: &[tandem_core::AccountId]| {
        let others: Vec<String> = accounts.iter().filter(|a| *a != actor).map(name).collect();
        people(&others)
    };
    let who = name(actor);
    let actor_name = if who == "you" { "You".to_owned() } else { who };
    let actor_name = actor_name.as_str();
    let mut parts = Vec::new();
    if created {
        let others = list(&change.added);
        return if others.is_empty() {
            format!("{actor_name} created the group.")
        } else {
            format!("{actor_name} created the group with {others}.")
        };
    }
    if !list(&change.added).is_empty() {
        parts.push(format!("{actor_name} added {}", list(&change.added)));
    }
    match change.removed.as_slice() {
        [] => {}
        [only] if only == actor => parts.push(format!("{actor_name} left")),
        removed => parts.push(format!("{actor_name} removed {}", list(removed))),
    }
    if !change.promoted.is_empty() {
        parts.push(format!("{actor_name} made {} admin", list(&change.promoted)));
    }
    if !change.demoted.is_empty() {
        parts.push(format!("{actor_name} removed {} as admin", list(&change.demoted)));
    }
    if let Some(t) = &change.title {
        parts.push(format!("{actor_name} renamed the group to “{t}”"));
    }
    if parts.is_empty() {
        return format!("{actor_name} changed the group.");
    }
    format!("{}.", parts.join("; "))
}

/// A message's text cut into plain runs and mentions: `(run, Some(handle))` for an `@handle`
/// (3 to 32 of `a-z 0-9 _ .` after the `@`, not ending with `.`, not inside a word such as
/// an e-mail address), `(run, None)` for the text between.
pub fn mention_parts(text: &str) -> Vec<(String, Option<String>)> {
    let is_handle_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.';
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    let mut before: Option<char> = None;
    while let Some(at) = rest.find('@') {
        let (head, tail) = rest.split_at(at);
        plain.push_str(head);
        let prev = head.chars().last().or(before);
        let name: String =
            tail[1..].chars().take_while(|c| is_handle_char(c.to_ascii_lowercase())).collect();
        let name = name.trim_end_matches('.');
        let starts_word = prev.is_none_or(|c| !c.is_alphanumeric() && c != '_' && c != '.');
        if starts_word && (3..=32).contains(&name.len()) {
            if !plain.is_empty() {
                out.push((std::mem::take(&mut plain), None));
            }
            let run = &tail[..=name.len()];
            out.push((run.to_owned(), Some(name.to_ascii_lowercase())));
            before = run.chars().last();
            rest = &tail[run.len()..];
        } else {
            plain.push('@');
            before = Some('@');
            rest = &tail[1..];
        }
    }
    plain.push_str(rest);
    if !plain.is_empty() {
        out.push((plain, None));
    }
    out
}

/// Whether `text` mentions `handle`.
pub fn mentions(text: &str, handle: &str) -> bool {
    text.contains('@') && mention_parts(text).iter().any(|(_, h)| h.as_deref() == Some(handle))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_mentions_are_found_at_word_starts_only() {
        let parts = mention_parts("hi @Bob, and @carol.smith. mail me at ana@example.com @x @");
        let found: Vec<&str> = parts.iter().filter_map(|(_, h)| h.as_deref()).collect();
        assert_eq!(found, ["bob", "carol.smith"]);
        assert_eq!(
            parts.iter().map(|(r, _)| r.as_str()).collect::<String>(),
            "hi @Bob, and @carol.smith. mail me at ana@example.com @x @"
        );
        assert!(mentions("ping @dave!", "dave"));
        assert!(!mentions("dave@home.org", "home.org"));
        assert!(!mentions("no one", "dave"));
        assert_eq!(mention_parts(""), Vec::<(String, Option<String>)>::new());
        // Multi-byte text around a mention keeps every character.
        let parts = mention_parts("é@anna ü");
        assert_eq!(parts.iter().map(|(r, _)| r.as_str()).collect::<String>(), "é@anna ü");
    }
    use tandem_core::AccountId;
    use tandem_core::group_state::GroupChange;

    fn names(n: usize) -> Vec<String> {
        ["bob", "carol", "dave", "eve", "fay", "gus", "hal"][..n]
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    }

    #[test]
    fn test_people_are_listed_as_people_say_them() {
        assert_eq!(people(&names(0)), "");
        assert_eq!(people(&names(1)), "bob");
        assert_eq!(people(&names(2)), "bob and carol");
        assert_eq!(people(&names(3)), "bob, carol and dave");
        assert_eq!(people(&names(6)), "bob, carol, dave, eve, fay and gus");
        assert_eq!(people(&names(7)), "bob, carol, dave, eve, fay and 2 others");
    }

    #[test]
    fn test_group_lines_say_who_did_what() {
        let (alice, bob, carol, me) =
            (AccountId([1; 16]), AccountId([2; 16]), AccountId([3; 16]), AccountId([9; 16]));
        let name = |a: &AccountId| match a.0[0] {
            1 => "alice".to_owned(),
            2 => "bob".to_owned(),
            3 => "carol".to_owned(),
            9 => "you".to_owned(),
            _ => "someone".to_owned(),
        };
        // A new group's change lists every member, its creator too.
        let created = GroupChange { added: vec![alice, bob, me], ..GroupChange::default() };
        assert_eq!(
            group_line(&alice, true, &created, &name),
            "alice created the group with bob and you."
        );
        assert_eq!(
            group_line(&me, true, &created, &name),
            "You created the group with alice and bob."
        );
        let alone = GroupChange { added: vec![alice], ..GroupChange::default() };
        assert_eq!(group_line(&alice, true, &alone, &name), "alice created the group.");
        let left = GroupChange { removed: vec![carol], ..GroupChange::default() };
        assert_eq!(group_line(&carol, false, &left, &name), "carol left.");
        assert_eq!(group_line(&alice, false, &left, &name), "alice removed carol.");
        let mine = GroupChange { removed: vec![me], ..GroupChange::default() };
        assert_eq!(group_line(&me, false, &mine, &name), "You left.");
        let many = GroupChange {
            added: vec![bob],
            promoted: vec![carol],
            title: Some("Climbing".into()),
            ..GroupChange::default()
        };
        assert_eq!(
            group_line(&alice, false, &many, &name),
            "alice added bob; alice made carol admin; alice renamed the group to “Climbing”."
        );
        assert_eq!(
            group_line(&alice, false, &GroupChange::default(), &name),
            "alice changed the group."
        );
    }
}

//! What the group screens show, worked out apart from the screens (so it is tested
//! natively): a group's name, the handles typed into a members field, the member list's
//! order and the part of it in view, and what it says about trusting each member.

use std::ops::Range;

use tandem_core::AccountId;
use tandem_core::client::{DeviceListRecord, GroupRecord, MessageRecord};
use tandem_core::group_state::{GroupMember, GroupState};

/// What a group is called: its title, or "Untitled group".
pub fn group_title(record: &GroupRecord) -> String {
    let title = record.state.state().title.trim();
    if title.is_empty() { "Untitled group".into() } else { title.to_owned() }
}

/// The handles typed into the members field: split at commas, spaces and new lines, a
/// leading `@` dropped, each once, in the order typed.
pub fn typed_handles(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in text.split(|c: char| c == ',' || c.is_whitespace()) {
        let h = h.trim().trim_start_matches('@').to_lowercase();
        if !h.is_empty() && !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// The members in the order the screen lists them: this account first, then the admins,
/// then everyone else; in each part those with a known name (`names`) alphabetically, then
/// the rest in the state's order.
pub fn member_order(
    state: &GroupState,
    me: AccountId,
    names: &std::collections::HashMap<AccountId, String>,
) -> Vec<GroupMember> {
    let mut list = state.members.clone();
    // A stable sort: the unnamed keep the state's order.
    list.sort_by_cached_key(|m| {
        let name = names.get(&m.account_id).map(|n| n.to_lowercase());
        (m.account_id != me, !m.admin, name.is_none(), name)
    });
    list
}

/// The rows to draw for a list of `len` rows `row` pixels high, scrolled `top` pixels with a
/// view `height` pixels high: the rows in view and `overscan` more on each side.
pub fn visible_rows(top: i32, height: i32, row: i32, len: usize, overscan: usize) -> Range<usize> {
    let row = row.max(1);
    let first = usize::try_from(top.max(0) / row).unwrap_or(0);
    let shown = usize::try_from(height.max(0) / row + 2).unwrap_or(0);
    let start = first.saturating_sub(overscan).min(len);
    let end = first.saturating_add(shown).saturating_add(overscan).min(len);
    start..end
}

/// What the list says about trusting a member: a label and its style, from this device's
/// record of the member's keys (none: never fetched, so not verified).
pub fn trust_label(record: Option<&DeviceListRecord>) -> (&'static str, &'static str) {
    match record {
        Some(r) if r.pending_key.is_some() => ("New key: messages held", "pill pill-warning"),
        Some(r) if r.key_changed => ("Key changed", "pill pill-warning"),
        Some(r) if r.verified => ("✓ Verified", "pill pill-verified"),
        _ => ("Not verified", "muted small"),
    }
}

/// Who got a group message of this account, as its info lists them.
#[derive(Debug, PartialEq, Eq)]
pub struct Reached {
    /// Members who read it.
    pub read: Vec<AccountId>,
    /// Members whose device confirmed it and who have not read it.
    pub delivered: Vec<AccountId>,
    /// How many it went to that have confirmed nothing yet.
    pub waiting: usize,
    /// Who they are, when the group's members now tell (the same number of them have
    /// confirmed nothing); empty when the members changed since.
    pub waiting_for: Vec<AccountId>,
}

/// Who of a group's `members` (now; `me` left out) got `message`, which went to
/// `message.audience()` accounts when it was sent.
pub fn reached(message: &MessageRecord, members: &[AccountId], me: AccountId) -> Reached {
    let read: Vec<AccountId> = message.read_by.iter().copied().collect();
    let mut delivered: Vec<AccountId> = Vec::new();
    for (a, _) in &message.delivered_to {
        if !read.contains(a) && !delivered.contains(a) {
            delivered.push(*a);
        }
    }
    let confirmed = read.len() + delivered.len();
    let waiting = message.audience().saturating_sub(confirmed);
    let unconfirmed: Vec<AccountId> = members
        .iter()
        .copied()
        .filter(|a| *a != me && !read.contains(a) && !delivered.contains(a))
        .collect();
    let waiting_for = if unconfirmed.len() == waiting { unconfirmed } else { Vec::new() };
    Reached { read, delivered, waiting, waiting_for }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tandem_core::client::{Conversation, MessageId, OutgoingState};

    #[test]
    fn test_reached_sorts_members_by_what_they_confirmed() {
        let me = account(9);
        let mut m = MessageRecord {
            id: MessageId { sender: me, device: tandem_core::DeviceId::PRIMARY, timestamp: 5 },
            conversation: Conversation::Group([1; 16]),
            body: "x".into(),
            outgoing: true,
            state: OutgoingState::Sent,
            stored_at: tandem_core::Timestamp::EPOCH,
            delivered_to: [(account(1), tandem_core::DeviceId::PRIMARY)].into(),
            read_by: [account(2)].into(),
            server_time: None,
            notice: None,
            local_id: None,
            quote: None,
            audience: 3,
        };
        // Read by 2, delivered to 1 (a read receipt delivers too), 3 has confirmed nothing.
        m.delivered_to.insert((account(2), tandem_core::DeviceId::PRIMARY));
        let members = [account(1), account(2), account(3), me];
        let r = reached(&m, &members, me);
        assert_eq!(r.read, [account(2)]);
        assert_eq!(r.delivered, [account(1)]);
        assert_eq!((r.waiting, r.waiting_for.as_slice()), (1, &[account(3)][..]));
        // Someone joined since: who is waiting can no longer be told, only how many.
        let joined = [account(1), account(2), account(3), account(4), me];
        let r = reached(&m, &joined, me);
        assert_eq!((r.waiting, r.waiting_for.len()), (1, 0));
        // Everyone read.
        m.read_by.extend([account(1), account(3)]);
        m.delivered_to.insert((account(3), tandem_core::DeviceId::PRIMARY));
        let r = reached(&m, &members, me);
        assert_eq!((r.read.len(), r.delivered.len(), r.waiting), (3, 0, 0));
        assert!(m.is_read() && m.is_delivered());
    }

    #[test]
    fn test_typed_handles_are_split_cleaned_and_unique() {
        assert_eq!(typed_handles(" @Bob, carol\nbob  dave,,"), ["bob", "carol", "dave"]);
        assert!(typed_handles(" , \n").is_empty());
    }

    fn account(n: u8) -> AccountId {
        AccountId([n; 16])
    }

    #[test]
    fn test_members_are_listed_you_first_then_admins() {
        let member = |n, admin| GroupMember { account_id: account(n), admin };
        let state = GroupState {
            group_id: [0; 16],
            version: 1,
            previous: [0; 32],
            title: "t".into(),
            members: vec![member(1, false), member(2, true), member(3, false), member(4, true)],
            signer: account(2),
            signer_device: tandem_core::DeviceId::PRIMARY,
            timestamp: 0,
        };
        let order = |names: &HashMap<AccountId, String>| -> Vec<u8> {
            member_order(&state, account(3), names).iter().map(|m| m.account_id.0[0]).collect()
        };
        assert_eq!(order(&HashMap::new()), [3, 2, 4, 1]);
        // Named members alphabetically (any case) within their part, the unnamed after.
        let mut names = HashMap::from([(account(4), "Ana".to_owned()), (account(2), "ben".into())]);
        assert_eq!(order(&names), [3, 4, 2, 1]);
        names.insert(account(3), "zed".into());
        assert_eq!(order(&names), [3, 4, 2, 1], "this account stays first");
        let state = GroupState {
            members: (5..9).map(|n| member(n, false)).chain([member(3, false)]).collect(),
            ..state.clone()
        };
        let names = HashMap::from([(account(8), "carl".to_owned()), (account(6), "Bea".into())]);
        let order: Vec<u8> =
            member_order(&state, account(3), &names).iter().map(|m| m.account_id.0[0]).collect();
        assert_eq!(order, [3, 6, 8, 5, 7]);
    }

    #[test]
    fn test_visible_rows_cover_the_view_and_stay_in_bounds() {
        // 1 024 rows of 56 px, a 480 px view at the top: 10 rows in view, 6 beyond.
        assert_eq!(visible_rows(0, 480, 56, 1024, 6), 0..16);
        // Scrolled to row 500.
        assert_eq!(visible_rows(500 * 56, 480, 56, 1024, 6), 494..516);
        // Past the end, a negative offset, a zero row height, an empty list.
        assert_eq!(visible_rows(2_000_000, 480, 56, 1024, 6), 1024..1024);
        assert_eq!(visible_rows(-40, 480, 56, 3, 6), 0..3);
        assert_eq!(visible_rows(0, 480, 0, 3, 6), 0..3);
        assert_eq!(visible_rows(0, 480, 56, 0, 6), 0..0);
    }
}

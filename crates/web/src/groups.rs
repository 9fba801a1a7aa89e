//! What the group screens show, worked out apart from the screens (so it is tested
//! natively): a group's name, the handles typed into a members field, the member list's
//! order and the part of it in view, and what it says about trusting each member.

use std::ops::Range;

use tandem_core::AccountId;
use tandem_core::client::{DeviceListRecord, GroupRecord};
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
/// then everyone else, each part in the state's order.
pub fn member_order(state: &GroupState, me: AccountId) -> Vec<GroupMember> {
    let rank = |m: &GroupMember| (m.account_id != me, !m.admin);
    let mut list = state.members.clone();
    list.sort_by_key(rank);
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let order: Vec<u8> =
            member_order(&state, account(3)).iter().map(|m| m.account_id.0[0]).collect();
        assert_eq!(order, [3, 2, 4, 1]);
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

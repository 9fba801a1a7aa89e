//! 1:1 sends: accepted only for exactly the current device set, stored durably per device
//! before the answer, handed to connected devices at once.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use tandem_core::AccountId;
use tandem_core::wire::relay::{
    AccountMismatch, Envelope, MAX_CONTENT_LEN, MAX_MESSAGES_PER_SEND, MismatchedDevices,
    SendMessages, Sent, Status, response,
};

use super::{ApiError, ApiResult, Authed, account_id, limit};
use crate::AppState;
use crate::limits::Limited;
use crate::storage::{QueueInsert, Storage};

/// Compares the devices a send names with the current ones.
fn mismatch(
    account: AccountId,
    expected: &[(u32, u32)],
    given: &BTreeMap<u32, u32>,
) -> Option<AccountMismatch> {
    let expected_ids: BTreeSet<u32> = expected.iter().map(|(d, _)| *d).collect();
    let missing: Vec<u32> =
        expected_ids.iter().filter(|d| !given.contains_key(d)).copied().collect();
    let extra: Vec<u32> = given.keys().filter(|d| !expected_ids.contains(d)).copied().collect();
    let stale: Vec<u32> = expected
        .iter()
        .filter(|(d, reg)| given.get(d).is_some_and(|g| g != reg))
        .map(|(d, _)| *d)
        .collect();
    (!missing.is_empty() || !extra.is_empty() || !stale.is_empty()).then(|| AccountMismatch {
        account_id: account.0.to_vec(),
        missing,
        extra,
        stale,
    })
}

/// Charges a send to the sending device: one token per stored copy, and its bytes times
/// its copies (so a large group cannot multiply one request into hundreds of megabytes).
pub fn charge<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    copies: usize,
    bytes_per_copy: usize,
) -> Result<(), ApiError> {
    let copies = copies.max(1) as f64;
    limit(state, who, Limited::Send, copies)?;
    limit(state, who, Limited::SendKib, copies * bytes_per_copy as f64 / 1024.0)
}

/// Refuses a timestamp too far ahead of the relay's clock: the sender's clock is wrong, and
/// the message would be dated in the future for everyone.
pub fn check_timestamp<D: Storage>(state: &AppState<D>, timestamp: u64) -> Result<(), ApiError> {
    let now = crate::now_ms();
    let ahead = u64::try_from(state.relay.max_clock_ahead.as_millis()).unwrap_or(u64::MAX);
    if timestamp > now.saturating_add(ahead) {
        let minutes = (timestamp - now) / 60_000;
        return Err(ApiError::new(
            Status::ClockSkew,
            format!(
                "the message is dated {minutes} minutes ahead of the server's clock; the device's clock is wrong"
            ),
        ));
    }
    Ok(())
}

/// Stores the copies (all or none: a queue over its limits refuses the whole send); once
/// committed, the storage's commit listener hands them to the connected devices.
pub async fn store<D: Storage>(
    state: &AppState<D>,
    rows: Vec<QueueInsert>,
) -> Result<u32, ApiError> {
    let expires_at =
        crate::now_ms() + u64::try_from(state.relay.queue_ttl.as_millis()).unwrap_or(u64::MAX);
    let ids = state.storage.enqueue(rows, expires_at, state.relay.queue).await?;
    Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX))
}

/// A 1:1 send, from a device its account lists, stamped no later than the relay's clock
/// allows, charged per stored copy and byte.
pub async fn send<D: Storage>(state: &AppState<D>, who: Authed, r: SendMessages) -> ApiResult {
    let largest = r.messages.iter().map(|m| m.content.len()).max().unwrap_or(0);
    charge(state, who, r.messages.len(), largest)?;
    super::listed(state, who).await?;
    check_timestamp(state, r.timestamp)?;
    let recipient = account_id(&r.recipient)?;
    if r.messages.len() > MAX_MESSAGES_PER_SEND {
        return Err(ApiError::new(
            Status::TooLarge,
            format!("at most {MAX_MESSAGES_PER_SEND} copies per send"),
        ));
    }
    let mut given: BTreeMap<AccountId, BTreeMap<u32, u32>> = BTreeMap::new();
    given.entry(recipient).or_default();
    given.entry(who.account).or_default();
    for m in &r.messages {
        let account = account_id(&m.account_id)?;
        if account != recipient && account != who.account {
            return Err(ApiError::bad(
                "a send may only address the recipient and the sender's own devices",
            ));
        }
        if !matches!(m.r#type, 2 | 3) {
            return Err(ApiError::bad("message type must be 2 or 3"));
        }
        if m.content.is_empty() || m.content.len() > MAX_CONTENT_LEN {
            return Err(ApiError::new(
                Status::TooLarge,
                format!("a ciphertext is 1 to {MAX_CONTENT_LEN} bytes"),
            ));
        }
        if given.entry(account).or_default().insert(m.device_id, m.registration_id).is_some() {
            return Err(ApiError::bad("a device appears twice in the send"));
        }
    }
    let mut mismatches = Vec::new();
    for (account, devices) in &given {
        let current = state
            .current_devices(*account)
            .await?
            .ok_or_else(|| ApiError::new(Status::NotFound, "no such account"))?;
        let expected: Vec<(u32, u32)> = if *account == who.account {
            current.iter().copied().filter(|(d, _)| *d != who.device).collect()
        } else {
            current.to_vec()
        };
        if let Some(m) = mismatch(*account, &expected, devices) {
            mismatches.push(m);
        }
    }
    if !mismatches.is_empty() {
        return Err(ApiError::mismatch(MismatchedDevices { accounts: mismatches }));
    }
    let targets: Vec<(AccountId, u32)> = r
        .messages
        .iter()
        .map(|m| (AccountId::from_bytes(&m.account_id).unwrap_or(recipient), m.device_id))
        .collect();
    let server_timestamp = crate::now_ms();
    let rows = r
        .messages
        .into_iter()
        .zip(targets)
        .map(|(m, (account, device))| QueueInsert {
            account_id: account,
            device_id: device,
            sender: who.account,
            envelope: Envelope {
                id: 0,
                source_account: who.account.0.to_vec(),
                source_device: who.device,
                r#type: m.r#type,
                content: m.content,
                client_timestamp: r.timestamp,
                server_timestamp,
                group_id: Vec::new(),
            }
            .encode_to_vec()
            .into(),
        })
        .collect();
    let copies = store(state, rows).await?;
    Ok(Some(response::Body::Sent(Sent { server_timestamp_ms: server_timestamp, copies })))
}

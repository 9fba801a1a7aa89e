//! Groups: the relay keeps each group's chain of signed states and routes one sender-key
//! ciphertext per message to the devices of the newest state's members who accepted it.
//!
//! The relay checks each state as a client would (signature by a current device of an admin
//! of the state before), so a buggy client cannot corrupt a chain; clients still trust only
//! what they verify themselves. A stranger's group reaches a member only after the member
//! accepted it; sends are charged per stored copy and byte; creations are capped per account.

use prost::Message;
use tandem_core::group_state::{GroupStateError, SignedGroupState};
use tandem_core::wire::relay::{
    AcceptGroup, AccountMismatch, CreateGroup, DEVICE_SET_TAG_LEN, Envelope, GROUP_ID_LEN,
    GetGroup, GroupStates, MAX_CONTENT_LEN, MAX_STATES_PER_ANSWER, MismatchedDevices,
    SendGroupMessage, Sent, Status, UpdateGroup, device_set_tag, response,
};
use tandem_core::{AccountId, IdentityKey};

use super::messages::{charge, check_timestamp, store};
use super::{ApiError, ApiResult, Authed, limit};
use crate::AppState;
use crate::limits::Limited;
use crate::storage::{QueueInsert, Storage, StorageError};

fn group_id(bytes: &[u8]) -> Result<[u8; GROUP_ID_LEN], ApiError> {
    bytes.try_into().map_err(|_| ApiError::bad("a group id is 16 bytes"))
}

fn refused(e: GroupStateError) -> ApiError {
    ApiError::bad(format!("group state refused: {e}"))
}

/// Parses a state and checks it was signed by the requesting device, whose identity the
/// relay knows, and that its member accounts exist.
async fn signed_by<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    bytes: &[u8],
) -> Result<SignedGroupState, ApiError> {
    let signed = SignedGroupState::from_bytes(bytes).map_err(refused)?;
    let s = signed.state();
    if s.signer != who.account || s.signer_device.get() != who.device {
        return Err(ApiError::new(
            Status::Unauthorized,
            "a group state is published by the device that signed it",
        ));
    }
    let account = state
        .storage
        .account(who.account)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such account"))?;
    let account_key = IdentityKey::from_bytes(&account.identity_key)
        .map_err(|_| ApiError::new(Status::Internal, "bad account key"))?;
    let device = state
        .storage
        .device(who.account, who.device)
        .await?
        .ok_or_else(|| ApiError::new(Status::Unauthorized, "no such device"))?;
    let verified = signed.verify(&account_key).map_err(refused)?;
    if verified.signer_key.serialize()[..] != device.identity_key[..] {
        return Err(refused(GroupStateError::BadSignature));
    }
    for m in &s.members {
        if state.storage.account(m.account_id).await?.is_none() {
            return Err(ApiError::new(Status::NotFound, "a member account does not exist"));
        }
    }
    Ok(signed)
}

/// The routed members of a group, if `who`'s account is one of them (else `NotFound`, as if
/// the group did not exist).
async fn membership<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    id: [u8; 16],
) -> Result<Vec<crate::storage::MemberRow>, ApiError> {
    let members = state.storage.group_members(id).await?;
    if !members.iter().any(|m| m.account_id == who.account) {
        return Err(ApiError::new(Status::NotFound, "no such group"));
    }
    Ok(members)
}

/// Creates a group from its first signed state (the creator is its first admin and has
/// accepted; the others are invited). Rate limited and capped per account.
pub async fn create<D: Storage>(state: &AppState<D>, who: Authed, r: CreateGroup) -> ApiResult {
    limit(state, who, Limited::Group, 1.0)?;
    let signed = signed_by(state, who, &r.signed_state).await?;
    signed.check_genesis().map_err(refused)?;
    let s = signed.state();
    let members: Vec<AccountId> = s.accounts().collect();
    state
        .storage
        .create_group(
            s.group_id,
            who.account,
            &members,
            signed.as_bytes(),
            crate::now_ms(),
            state.relay.max_groups_per_account,
        )
        .await
        .map_err(|e| match e {
            StorageError::LimitReached => ApiError::new(
                Status::LimitReached,
                format!(
                    "this account created {} groups already",
                    state.relay.max_groups_per_account
                ),
            ),
            StorageError::Conflict => ApiError::new(Status::Conflict, "that group id is taken"),
            other => other.into(),
        })?;
    Ok(None)
}

/// Publishes a group's next signed state: the successor of the newest one, signed by a
/// device of an admin of it (or of a member leaving). `Conflict` if another came first.
pub async fn update<D: Storage>(state: &AppState<D>, who: Authed, r: UpdateGroup) -> ApiResult {
    limit(state, who, Limited::Group, 1.0)?;
    let signed = signed_by(state, who, &r.signed_state).await?;
    let s = signed.state();
    let current = state
        .storage
        .group(s.group_id)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such group"))?;
    let held = SignedGroupState::from_bytes(&current.state)
        .map_err(|_| ApiError::new(Status::Internal, "a stored group state does not parse"))?;
    if s.version <= current.version {
        return Err(ApiError::new(
            Status::Conflict,
            "the group changed meanwhile; catch up and retry",
        ));
    }
    held.state().check_successor(&held.digest(), s).map_err(refused)?;
    let members: Vec<AccountId> = s.accounts().collect();
    state
        .storage
        .update_group(s.group_id, current.version, signed.as_bytes(), &members)
        .await
        .map_err(|e| match e {
            StorageError::Conflict => {
                ApiError::new(Status::Conflict, "the group changed meanwhile; catch up and retry")
            }
            other => other.into(),
        })?;
    Ok(None)
}

/// A group's signed states after a version, for members (invited ones included).
pub async fn get<D: Storage>(state: &AppState<D>, who: Authed, r: GetGroup) -> ApiResult {
    limit(state, who, Limited::Lookup, 1.0)?;
    let id = group_id(&r.group_id)?;
    let members = membership(state, who, id).await?;
    let latest = state.storage.group(id).await?.map_or(0, |g| g.version);
    let limit = u32::try_from(MAX_STATES_PER_ANSWER).unwrap_or(u32::MAX);
    let states = state.storage.group_states(id, r.after_version, limit).await?;
    let accepted = members.iter().any(|m| m.account_id == who.account && m.accepted);
    Ok(Some(response::Body::GroupStates(GroupStates {
        group_id: id.to_vec(),
        states,
        latest_version: latest,
        accepted,
    })))
}

/// An invited member accepts (or declines) a group.
pub async fn accept<D: Storage>(state: &AppState<D>, who: Authed, r: AcceptGroup) -> ApiResult {
    let id = group_id(&r.group_id)?;
    if !state.storage.accept_group(id, who.account, r.accept).await? {
        return Err(ApiError::new(Status::NotFound, "no such group"));
    }
    Ok(None)
}

/// One sender-key ciphertext, queued for every current device of every accepted member
/// except the sending device. Refused (`Conflict`) when the sender encrypted for an older
/// state than the newest, so it learns of changes (removals, which rotate its key) first.
pub async fn send<D: Storage>(state: &AppState<D>, who: Authed, r: SendGroupMessage) -> ApiResult {
    let id = group_id(&r.group_id)?;
    if r.content.is_empty() || r.content.len() > MAX_CONTENT_LEN {
        return Err(ApiError::new(
            Status::TooLarge,
            format!("a ciphertext is 1 to {MAX_CONTENT_LEN} bytes"),
        ));
    }
    super::listed(state, who).await?;
    check_timestamp(state, r.timestamp)?;
    let members = membership(state, who, id).await?;
    if !members.iter().any(|m| m.account_id == who.account && m.accepted) {
        return Err(ApiError::new(Status::Unauthorized, "accept the group before sending to it"));
    }
    let latest = state.storage.group(id).await?;
    if r.version != latest.as_ref().map_or(0, |g| g.version) {
        return Err(ApiError::new(Status::Conflict, "the group changed; catch up and retry"));
    }
    // The current devices of a member (the sending one left out).
    let devices_of = |account: AccountId| async move {
        Ok::<_, ApiError>(
            state
                .current_devices(account)
                .await?
                .unwrap_or_default()
                .into_iter()
                .filter(|(d, _)| (account, *d) != (who.account, who.device))
                .collect::<Vec<(u32, u32)>>(),
        )
    };
    if !r.member_devices.is_empty() {
        // Checked against the members of the signed state (ascending, as `accounts` gives
        // them), the same list the sender holds.
        let signed = latest
            .as_ref()
            .and_then(|g| SignedGroupState::from_bytes(&g.state).ok())
            .ok_or_else(|| ApiError::new(Status::Internal, "the group's state is unreadable"))?;
        let accounts: Vec<AccountId> = signed.state().accounts().collect();
        if r.member_devices.len() != accounts.len() * DEVICE_SET_TAG_LEN {
            return Err(ApiError::bad(format!(
                "member_devices holds {DEVICE_SET_TAG_LEN} bytes for each of the {} members",
                accounts.len()
            )));
        }
        let mut differ = Vec::new();
        for (account, tag) in accounts.iter().zip(r.member_devices.chunks_exact(DEVICE_SET_TAG_LEN))
        {
            if device_set_tag(account, devices_of(*account).await?).as_slice() != tag {
                differ.push(AccountMismatch {
                    account_id: account.0.to_vec(),
                    ..AccountMismatch::default()
                });
            }
        }
        if !differ.is_empty() {
            return Err(ApiError::mismatch(MismatchedDevices { accounts: differ }));
        }
    }
    let mut targets: Vec<(AccountId, u32)> = Vec::new();
    for m in members.iter().filter(|m| m.accepted) {
        targets.extend(devices_of(m.account_id).await?.into_iter().map(|(d, _)| (m.account_id, d)));
    }
    charge(state, who, targets.len(), r.content.len())?;
    let server_timestamp = crate::now_ms();
    let envelope: bytes::Bytes = Envelope {
        id: 0,
        source_account: who.account.0.to_vec(),
        source_device: who.device,
        r#type: 7,
        content: r.content,
        client_timestamp: r.timestamp,
        server_timestamp,
        group_id: id.to_vec(),
    }
    .encode_to_vec()
    .into();
    let rows = targets
        .into_iter()
        .map(|(account_id, device_id)| QueueInsert {
            account_id,
            device_id,
            sender: who.account,
            envelope: envelope.clone(),
        })
        .collect();
    let copies = store(state, rows).await?;
    Ok(Some(response::Body::Sent(Sent { server_timestamp_ms: server_timestamp, copies })))
}

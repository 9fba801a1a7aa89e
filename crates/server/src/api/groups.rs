//! Groups: membership kept by the server and changed by admins; one sender-key ciphertext
//! per message, fanned out to every member device.

use std::collections::BTreeSet;

use prost::Message;
use tandem_core::AccountId;
use tandem_core::wire::relay::{
    CreateGroup, Envelope, GROUP_ID_LEN, GetGroup, Group, GroupMember, MAX_CONTENT_LEN,
    MAX_GROUP_MEMBERS, ModifyGroup, SendGroupMessage, Sent, Status, response,
};

use super::messages::{check_queues, store};
use super::{ApiError, ApiResult, Authed, account_id, limit};
use crate::AppState;
use crate::limits::Limited;
use crate::storage::{MemberRow, QueueInsert, Storage};

fn group_id(bytes: &[u8]) -> Result<[u8; GROUP_ID_LEN], ApiError> {
    bytes.try_into().map_err(|_| ApiError::bad("a group id is 16 bytes"))
}

fn accounts(list: &[Vec<u8>]) -> Result<BTreeSet<AccountId>, ApiError> {
    list.iter().map(|b| account_id(b)).collect()
}

async fn ensure_accounts_exist<D: Storage>(
    state: &AppState<D>,
    list: &BTreeSet<AccountId>,
) -> Result<(), ApiError> {
    for a in list {
        if state.storage.account(*a).await?.is_none() {
            return Err(ApiError::new(Status::NotFound, "a member account does not exist"));
        }
    }
    Ok(())
}

fn group_body(id: [u8; 16], version: u64, members: Vec<MemberRow>) -> response::Body {
    response::Body::Group(Group {
        group_id: id.to_vec(),
        version,
        members: members
            .into_iter()
            .map(|m| GroupMember { account_id: m.account_id.0.to_vec(), admin: m.admin })
            .collect(),
    })
}

async fn load<D: Storage>(
    state: &AppState<D>,
    who: Authed,
    id: [u8; 16],
) -> Result<(u64, Vec<MemberRow>), ApiError> {
    let (version, members) = state
        .storage
        .group(id)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such group"))?;
    if !members.iter().any(|m| m.account_id == who.account) {
        // Not a member: answer as if the group did not exist.
        return Err(ApiError::new(Status::NotFound, "no such group"));
    }
    Ok((version, members))
}

/// Creates a group with the caller as admin.
pub async fn create<D: Storage>(state: &AppState<D>, who: Authed, r: CreateGroup) -> ApiResult {
    let mut members = accounts(&r.members)?;
    members.remove(&who.account);
    if members.len() + 1 > MAX_GROUP_MEMBERS {
        return Err(ApiError::new(
            Status::TooLarge,
            format!("a group has at most {MAX_GROUP_MEMBERS} members"),
        ));
    }
    ensure_accounts_exist(state, &members).await?;
    let mut id = [0u8; GROUP_ID_LEN];
    rand::fill(&mut id);
    let mut rows = vec![MemberRow { account_id: who.account, admin: true }];
    rows.extend(members.into_iter().map(|account_id| MemberRow { account_id, admin: false }));
    state.storage.create_group(id, &rows, crate::now_ms()).await?;
    rows.sort_by_key(|m| m.account_id);
    Ok(Some(group_body(id, 1, rows)))
}

/// Admins add and remove members and grant admin; any member may remove itself.
pub async fn modify<D: Storage>(state: &AppState<D>, who: Authed, r: ModifyGroup) -> ApiResult {
    let id = group_id(&r.group_id)?;
    let (_, members) = load(state, who, id).await?;
    let add = accounts(&r.add)?;
    let remove = accounts(&r.remove)?;
    let make_admin = accounts(&r.make_admin)?;
    let is_admin = members.iter().any(|m| m.account_id == who.account && m.admin);
    let only_leaving = add.is_empty()
        && make_admin.is_empty()
        && remove.len() == 1
        && remove.contains(&who.account);
    if !is_admin && !only_leaving {
        return Err(ApiError::new(Status::Unauthorized, "only group admins can change membership"));
    }
    ensure_accounts_exist(state, &add).await?;
    let current: BTreeSet<AccountId> = members.iter().map(|m| m.account_id).collect();
    if current.union(&add).count() - remove.len().min(current.len()) > MAX_GROUP_MEMBERS {
        return Err(ApiError::new(
            Status::TooLarge,
            format!("a group has at most {MAX_GROUP_MEMBERS} members"),
        ));
    }
    let admins_left = members
        .iter()
        .filter(|m| {
            (m.admin || make_admin.contains(&m.account_id)) && !remove.contains(&m.account_id)
        })
        .count();
    if admins_left == 0 {
        return Err(ApiError::bad("a group needs an admin: make another member admin first"));
    }
    let mut upsert: Vec<MemberRow> = add
        .iter()
        .filter(|a| !current.contains(a))
        .map(|a| MemberRow { account_id: *a, admin: make_admin.contains(a) })
        .collect();
    upsert.extend(
        make_admin
            .iter()
            .filter(|a| current.contains(a))
            .map(|a| MemberRow { account_id: *a, admin: true }),
    );
    let removed: Vec<AccountId> = remove.into_iter().collect();
    let version = state.storage.modify_group(id, &upsert, &removed).await?;
    let (_, members) = state
        .storage
        .group(id)
        .await?
        .ok_or_else(|| ApiError::new(Status::NotFound, "no such group"))?;
    Ok(Some(group_body(id, version, members)))
}

/// A group's membership, for members.
pub async fn get<D: Storage>(state: &AppState<D>, who: Authed, r: GetGroup) -> ApiResult {
    let id = group_id(&r.group_id)?;
    let (version, members) = load(state, who, id).await?;
    Ok(Some(group_body(id, version, members)))
}

/// One sender-key ciphertext, queued for every current device of every member except the
/// sending device.
pub async fn send<D: Storage>(state: &AppState<D>, who: Authed, r: SendGroupMessage) -> ApiResult {
    limit(state, who, Limited::Send, 1.0)?;
    let id = group_id(&r.group_id)?;
    if r.content.is_empty() || r.content.len() > MAX_CONTENT_LEN {
        return Err(ApiError::new(
            Status::TooLarge,
            format!("a ciphertext is 1 to {MAX_CONTENT_LEN} bytes"),
        ));
    }
    let (_, members) = load(state, who, id).await?;
    let mut targets = Vec::new();
    for m in &members {
        if let Some(devices) = state.current_devices(m.account_id).await? {
            targets.extend(
                devices
                    .iter()
                    .filter(|(d, _)| (m.account_id, *d) != (who.account, who.device))
                    .map(|(d, _)| (m.account_id, *d)),
            );
        }
    }
    check_queues(state, &targets).await?;
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
            envelope: envelope.clone(),
        })
        .collect();
    let copies = store(state, rows).await?;
    Ok(Some(response::Body::Sent(Sent { server_timestamp_ms: server_timestamp, copies })))
}

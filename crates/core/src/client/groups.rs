//! Groups with Sender Keys: membership comes from the relay; this device's sender key is
//! handed pairwise to every member device that lacks it, then each message is encrypted
//! once. The key is replaced whenever a member or a device that held it is gone, and after
//! every restart (this device does not remember who holds its key across restarts).

use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;

use super::{Client, ClientError, OutboxEntry, SendReport, call, next_timestamp};
use crate::address::{AccountId, DeviceId};
use crate::sender_keys::{
    DistributionId, create_sender_key_distribution_message, group_encrypt, rotate_sender_key,
};
use crate::store::{Changes, ClientStore};
use crate::time::Timestamp;
use crate::transport::RelayTransport;
use crate::wire::content::{Content, DataMessage, content};
use crate::wire::relay::{
    CreateGroup, GetGroup, Group, ModifyGroup, SendGroupMessage, request, response,
};

/// Who holds this device's current sender key for one group.
#[derive(Clone, Debug, Default)]
pub(crate) struct GroupShare {
    pub(crate) members: BTreeSet<AccountId>,
    pub(crate) holders: BTreeSet<(AccountId, DeviceId)>,
}

fn group_members(g: &Group) -> BTreeSet<AccountId> {
    g.members.iter().filter_map(|m| AccountId::from_bytes(&m.account_id).ok()).collect()
}

impl<S: ClientStore> Client<S> {
    /// Creates a group with `members` (this account is its admin).
    pub async fn create_group<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        members: &[AccountId],
    ) -> Result<[u8; 16], ClientError> {
        let body = request::Body::CreateGroup(CreateGroup {
            members: members.iter().map(|m| m.0.to_vec()).collect(),
        });
        let Some(response::Body::Group(g)) = call(transport, body).await? else {
            return Err(ClientError::UnexpectedResponse("group"));
        };
        g.group_id.as_slice().try_into().map_err(|_| ClientError::UnexpectedResponse("group id"))
    }

    /// Adds and removes members (admins). Removing anyone replaces this device's sender key.
    pub async fn modify_group<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        add: &[AccountId],
        remove: &[AccountId],
    ) -> Result<(), ClientError> {
        let body = request::Body::ModifyGroup(ModifyGroup {
            group_id: group.to_vec(),
            add: add.iter().map(|a| a.0.to_vec()).collect(),
            remove: remove.iter().map(|a| a.0.to_vec()).collect(),
            make_admin: Vec::new(),
        });
        call(transport, body).await?;
        if !remove.is_empty() {
            self.group_shares.lock().await.remove(&group);
        }
        Ok(())
    }

    /// Queues and sends a text to a group.
    pub async fn send_group_text<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        text: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let id = self.queue_text(super::Conversation::Group(group), text, now).await?;
        self.send_queued(transport, id, now, rng).await
    }

    pub(crate) async fn send_group_entry<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        group: [u8; 16],
        entry: &OutboxEntry,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<SendReport, ClientError> {
        let (me, my_device) = self.whoami().await;
        let own_address = me.address(my_device);
        let distribution = DistributionId(group);
        let Some(response::Body::Group(g)) =
            call(transport, request::Body::GetGroup(GetGroup { group_id: group.to_vec() })).await?
        else {
            return Err(ClientError::UnexpectedResponse("group"));
        };
        let members = group_members(&g);
        if !members.contains(&me) {
            return Err(ClientError::InvalidInput(
                "this account is not a member of the group".into(),
            ));
        }
        // Every verified device of every member, except this one.
        let mut devices: BTreeMap<AccountId, Vec<DeviceId>> = BTreeMap::new();
        for m in &members {
            let list = self.device_list(transport, *m, now, false).await?;
            devices.insert(
                *m,
                list.devices
                    .iter()
                    .map(|d| d.device_id)
                    .filter(|d| (*m, *d) != (me, my_device))
                    .collect(),
            );
        }
        let current: BTreeSet<(AccountId, DeviceId)> =
            devices.iter().flat_map(|(a, ds)| ds.iter().map(move |d| (*a, *d))).collect();
        let mut shares = self.group_shares.lock().await;
        let share = shares.get(&group).cloned();
        let rotate = match &share {
            None => true,
            Some(s) => !s.members.is_subset(&members) || !s.holders.is_subset(&current),
        };
        let mut share = share.unwrap_or_default();
        {
            let account = self.lock().await;
            let mut changes = Changes::default();
            if rotate {
                changes.merge(rotate_sender_key(&own_address, distribution, rng));
                self.save(&account, std::mem::take(&mut changes)).await?;
                share = GroupShare { members: members.clone(), holders: BTreeSet::new() };
            }
            drop(account);
        }
        let (skdm, c) =
            create_sender_key_distribution_message(&self.store, &own_address, distribution, rng)
                .await?;
        {
            let account = self.lock().await;
            self.save(&account, c).await?;
        }
        let skdm_content = Content {
            body: Some(content::Body::SenderKeyDistribution(skdm.serialized().to_vec())),
        }
        .to_padded_bytes();
        for (member, member_devices) in &devices {
            if member_devices.iter().all(|d| share.holders.contains(&(*member, *d))) {
                continue;
            }
            let timestamp = {
                let mut account = self.lock().await;
                let t = next_timestamp(&mut account, now);
                self.save(&account, Changes::default()).await?;
                t
            };
            let report = self
                .fan_out(transport, *member, &skdm_content, &skdm_content, timestamp, now, rng)
                .await?;
            share.holders.extend(report.devices);
        }
        share.members = members;
        shares.insert(group, share);
        drop(shares);

        let data = DataMessage {
            body: entry.body.clone(),
            timestamp: entry.id.timestamp,
            group_id: group.to_vec(),
        };
        let padded = Content { body: Some(content::Body::Data(data)) }.to_padded_bytes();
        let message = {
            let account = self.lock().await;
            let (message, c) =
                group_encrypt(&self.store, &own_address, distribution, &padded, rng).await?;
            self.save(&account, c).await?;
            message
        };
        let body = request::Body::SendGroupMessage(SendGroupMessage {
            group_id: group.to_vec(),
            timestamp: entry.id.timestamp,
            content: message.serialized().to_vec(),
        });
        let Some(response::Body::Sent(sent)) = call(transport, body).await? else {
            return Err(ClientError::UnexpectedResponse("group send"));
        };
        Ok(SendReport {
            id: None,
            server_timestamp: sent.server_timestamp_ms,
            devices: current.into_iter().collect(),
            rejected: Vec::new(),
            attempts: 1,
        })
    }
}

//! Becoming a device: registering an account (primary) or a companion, linking companions,
//! publishing the signed device list, prekey upload and refill.

use rand_core::CryptoRng;

use super::{
    AccountRecord, Client, ClientError, PREKEY_BATCH, PREKEY_REFILL_BELOW, SIGNED_PREKEY_ROTATION,
    call,
};
use crate::auth::{self, Proof};
use crate::devices::{
    AdvError, DEVICE_LIST_LIFETIME, DeviceIdentityDetails, DeviceList, DeviceListEntry,
    SignedDeviceIdentity, SignedDeviceList,
};
use crate::link::{self, LinkCode, LinkError, LinkMessage, MatchCode, VerifiedLink};
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use crate::store::{ClientChanges, ClientStore};
use crate::transport::RelayTransport;
use crate::wire::relay::{
    GetDevices, GetPreKeyCounts, KyberPreKeyMessage, MAX_PREKEYS_PER_UPLOAD, NewDevice,
    OneTimePreKeyMessage, RegisterAccount, RegisterDevice, RemoveDevice, ResetAccount,
    SendProvisioning, SetDeviceList, SignedPreKeyMessage, Status, UploadPreKeys, request, response,
};
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId};
use tandem_signal::{IdentityKey, IdentityKeyPair};

/// What a primary gives a companion so it can join the account: the companion's identity
/// signed by the account key, and a single-use registration token. (Issue 5's QR linking
/// carries this inside an encrypted provisioning message.)
#[derive(Clone, Debug)]
pub struct LinkOffer {
    /// The account.
    pub account_id: AccountId,
    /// Its handle.
    pub handle: String,
    /// The account key.
    pub account_key: IdentityKey,
    /// The registration token.
    pub link_token: Vec<u8>,
    /// The companion identity, signed by the account key (the companion countersigns).
    pub adv_identity: SignedDeviceIdentity,
}

/// What publishing a device list did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishReport {
    /// The version signed.
    pub version: u64,
    /// Companions in the list.
    pub listed: Vec<DeviceId>,
    /// Devices the relay listed that were *not* signed, and why: a logged-out device the
    /// relay brought back, a key index used twice, or an identity the account never issued.
    /// People should hear about these: the relay misbehaves.
    pub refused: Vec<(u32, AdvError)>,
    /// Companions that left since the last list (their key indexes are revoked now).
    pub gone: Vec<DeviceId>,
}

// Every refill fits one upload request.
const _: () = assert!(PREKEY_BATCH as usize <= MAX_PREKEYS_PER_UPLOAD);

/// A device as the relay registers it (account, re-registration or companion).
fn new_device(
    identity: &IdentityKey,
    registration_id: u32,
    name: &str,
    platform: &str,
    adv_identity: Vec<u8>,
) -> NewDevice {
    NewDevice {
        registration_id,
        identity_key: identity.serialize().to_vec(),
        name: name.to_owned(),
        platform: platform.to_owned(),
        adv_identity,
    }
}

impl<S: ClientStore> Client<S> {
    /// Registers a new account with `handle`; this device becomes its primary and its
    /// identity key the account key. Uploads prekeys and publishes the first device list.
    /// `transport` must be a fresh, unauthenticated connection.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_account<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        handle: &str,
        device_name: &str,
        platform: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let challenge = transport.challenge()?;
        let identity = store.load_identity_key_pair().await?;
        let registration_id = store.load_local_registration_id().await?;
        let signature = auth::sign(&identity, &challenge, &Proof::RegisterAccount { handle }, rng);
        let body = request::Body::RegisterAccount(RegisterAccount {
            handle: handle.to_owned(),
            device: Some(new_device(
                identity.identity_key(),
                registration_id,
                device_name,
                platform,
                Vec::new(),
            )),
            signature: signature.to_vec(),
            challenge: challenge.nonce.to_vec(),
        });
        let Some(response::Body::Registered(r)) = call(transport, body).await? else {
            return Err(ClientError::UnexpectedResponse("register account"));
        };
        let account_id = AccountId::from_bytes(&r.account_id)
            .map_err(|_| ClientError::UnexpectedResponse("account id"))?;
        Self::start_primary(store, transport, account_id, handle, now, rng).await
    }

    /// Primary: re-registers this account under a new account key. `store` is a fresh
    /// store holding the new identity, which becomes the account key; `self` (the current
    /// primary) signs the request with the current key. `transport` is this primary's
    /// authenticated connection. The relay logs every companion out and drops the old
    /// prekeys, queues and device list; this uploads new prekeys and publishes a device list
    /// of this device alone. Contacts see the key change (verified ones hold their sends
    /// until they accept it).
    #[allow(clippy::too_many_arguments)]
    pub async fn reset_account_key<T: RelayTransport + ?Sized>(
        &self,
        store: S,
        transport: &T,
        device_name: &str,
        platform: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let old = self.store.load_identity_key_pair().await?;
        let new = store.load_identity_key_pair().await?;
        let registration_id = store.load_local_registration_id().await?;
        let account = self.account().await;
        Self::send_reset(
            transport,
            account.account_id,
            &old,
            &new,
            registration_id,
            device_name,
            platform,
            rng,
        )
        .await?;
        Self::start_primary(store, transport, account.account_id, &account.handle, now, rng).await
    }

    /// The relay half of [`Client::reset_account_key`]: asks the relay to re-register
    /// `account` under `new` (proved by the current account key `old` and by `new`). A store
    /// that must not lose its state before the relay agreed (the browser's) is replaced only
    /// after this, then handed to [`Client::start_primary`].
    #[allow(clippy::too_many_arguments)]
    pub async fn send_reset<T: RelayTransport + ?Sized>(
        transport: &T,
        account: AccountId,
        old: &IdentityKeyPair,
        new: &IdentityKeyPair,
        registration_id: u32,
        device_name: &str,
        platform: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let challenge = transport.challenge()?;
        let proof = Proof::ResetAccount { account: &account, new_key: new.identity_key() };
        let body = request::Body::ResetAccount(ResetAccount {
            device: Some(new_device(
                new.identity_key(),
                registration_id,
                device_name,
                platform,
                Vec::new(),
            )),
            account_signature: auth::sign(old, &challenge, &proof, rng).to_vec(),
            device_signature: auth::sign(new, &challenge, &proof, rng).to_vec(),
            challenge: challenge.nonce.to_vec(),
        });
        call(transport, body).await?;
        Ok(())
    }

    /// A primary that just registered (or re-registered, after [`Client::send_reset`]): its
    /// record, prekeys and first device list. `store` holds the device's identity.
    pub async fn start_primary<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        account_id: AccountId,
        handle: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let identity = store.load_identity_key_pair().await?;
        let account = AccountRecord::new(
            account_id,
            DeviceId::PRIMARY,
            handle,
            *identity.identity_key(),
            now,
        );
        let client = Self::with_account(store, account);
        client.save(&client.account().await, ClientChanges::default()).await?;
        client.refresh_prekeys(transport, now, rng, true).await?;
        client.publish_device_list(transport, now, rng).await?;
        Ok(client)
    }

    /// Primary: prepares a companion's admission: a registration token and the companion's
    /// identity signed by the account key under a fresh key index.
    pub async fn create_link_offer<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        companion_identity: &IdentityKey,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<LinkOffer, ClientError> {
        if !self.whoami().await.1.is_primary() {
            return Err(ClientError::PrimaryOnly("link devices"));
        }
        let Some(response::Body::LinkToken(token)) =
            call(transport, request::Body::CreateLinkToken(crate::wire::relay::CreateLinkToken {}))
                .await?
        else {
            return Err(ClientError::UnexpectedResponse("link token"));
        };
        let identity = self.store.load_identity_key_pair().await?;
        let mut account = self.lock().await;
        let key_index = account.next_key_index;
        account.next_key_index += 1;
        let details = DeviceIdentityDetails {
            account_id: account.account_id,
            key_index,
            identity_key: *companion_identity,
            timestamp: now,
        };
        let adv_identity = SignedDeviceIdentity::sign_by_account(&identity, details, rng);
        self.save(&account, ClientChanges::default()).await?;
        Ok(LinkOffer {
            account_id: account.account_id,
            handle: account.handle.clone(),
            account_key: account.account_key,
            link_token: token.token,
            adv_identity,
        })
    }

    /// Primary: links the companion that shows `code`: a registration token, the
    /// companion's identity signed by the account key, sealed to the code and delivered to
    /// its provisioning address. Returns the code both screens show and the link's key
    /// index. The companion enters the signed device list only once the person confirmed
    /// that both screens show this code ([`Client::confirm_link`]); until then the relay may
    /// register it, but nobody encrypts to it.
    pub async fn link_companion<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        code: &LinkCode,
        primary_name: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(MatchCode, u32), ClientError> {
        code.check_fresh(now)?;
        let offer = self.create_link_offer(transport, &code.identity_key, now, rng).await?;
        let message = LinkMessage {
            account_id: offer.account_id.0.to_vec(),
            handle: offer.handle,
            account_key: offer.account_key.serialize().to_vec(),
            link_token: offer.link_token,
            adv_identity: offer.adv_identity.to_bytes(),
            primary_name: primary_name.to_owned(),
        };
        let (sealed, matching) = link::seal(code, &offer.account_key, &message, rng)?;
        let body = request::Body::SendProvisioning(SendProvisioning {
            address: code.address.to_vec(),
            message: sealed,
        });
        match call(transport, body).await {
            Err(ClientError::Server { status: Status::NotFound, .. }) => {
                Err(ClientError::Link(LinkError::Expired))
            }
            Err(e) => Err(e),
            Ok(_) => Ok((matching, offer.adv_identity.details().key_index)),
        }
    }

    /// Primary: the person confirmed that the new device shows the same matching code: the
    /// link's key index may enter the signed list, now (if the companion registered) or when
    /// it does.
    pub async fn confirm_link<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        key_index: u32,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<PublishReport, ClientError> {
        {
            let mut account = self.lock().await;
            if account.revoked.contains(&key_index) || key_index >= account.next_key_index {
                return Err(ClientError::InvalidInput("that link is not open".into()));
            }
            account.confirmed.insert(key_index);
            self.save(&account, ClientChanges::default()).await?;
        }
        self.publish_device_list(transport, now, rng).await
    }

    /// Primary: the codes did not match (or the person cancelled): the link's key index is
    /// revoked for good, and a device the relay registered with it is logged out.
    pub async fn reject_link<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        key_index: u32,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let (account_id, _) = self.whoami().await;
        {
            let mut account = self.lock().await;
            account.confirmed.remove(&key_index);
            account.revoked.insert(key_index);
            self.save(&account, ClientChanges::default()).await?;
        }
        let devices = self.own_devices(transport, account_id).await?;
        let holder = devices.devices.iter().find(|d| {
            SignedDeviceIdentity::from_bytes(&d.adv_identity)
                .is_ok_and(|a| a.details().key_index == key_index)
        });
        if let Some(d) = holder
            && let Ok(id) = DeviceId::new(d.device_id)
        {
            return self.remove_device(transport, id, now, rng).await;
        }
        self.publish_device_list(transport, now, rng).await.map(|_| ())
    }

    /// Companion: joins the account named by a verified link message (see
    /// [`crate::link::LinkRequest::open`]), then uploads prekeys. Call it only after the
    /// person confirmed that this screen and the primary's show the same matching code. If
    /// the connection drops before the answer, calling it again with the same link (within
    /// the token's lifetime) gets the same device, never a second.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_linked<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        link: VerifiedLink,
        device_name: &str,
        platform: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let offer = LinkOffer {
            account_id: link.account_id,
            handle: link.handle,
            account_key: link.account_key,
            link_token: link.link_token,
            adv_identity: link.adv_identity,
        };
        Self::register_companion(store, transport, offer, device_name, platform, now, rng).await
    }

    /// Companion: joins the account of `offer` as a new device (after checking the account
    /// signed this device's own identity), then uploads prekeys. The primary publishes the
    /// device list that includes it.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_companion<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        offer: LinkOffer,
        device_name: &str,
        platform: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let challenge = transport.challenge()?;
        let identity = store.load_identity_key_pair().await?;
        let registration_id = store.load_local_registration_id().await?;
        let adv = offer.adv_identity.countersign(&identity, &offer.account_key, rng)?;
        if adv.details().account_id != offer.account_id {
            return Err(ClientError::InvalidInput("the link offer names another account".into()));
        }
        let proof = Proof::RegisterDevice { account: &offer.account_id };
        let body = request::Body::RegisterDevice(RegisterDevice {
            account_id: offer.account_id.0.to_vec(),
            link_token: offer.link_token.clone(),
            device: Some(new_device(
                identity.identity_key(),
                registration_id,
                device_name,
                platform,
                adv.to_bytes(),
            )),
            signature: auth::sign(&identity, &challenge, &proof, rng).to_vec(),
            challenge: challenge.nonce.to_vec(),
        });
        let Some(response::Body::DeviceRegistered(r)) = call(transport, body).await? else {
            return Err(ClientError::UnexpectedResponse("register device"));
        };
        let device_id =
            DeviceId::new(r.device_id).map_err(|_| ClientError::UnexpectedResponse("device id"))?;
        let mut account =
            AccountRecord::new(offer.account_id, device_id, &offer.handle, offer.account_key, now);
        account.next_key_index = 0;
        account.key_index = adv.details().key_index;
        account.adv_identity = adv.to_bytes();
        let client = Self::with_account(store, account);
        client.save(&client.account().await, ClientChanges::default()).await?;
        client.refresh_prekeys(transport, now, rng, true).await?;
        Ok(client)
    }

    /// Primary: signs and publishes the device list from its own record. A companion the
    /// relay lists is added only if the account key signed its identity under a key index
    /// this primary issued and never revoked, and no other device holds that index;
    /// companions of the last list the relay no longer has are revoked for good. Everything
    /// the relay listed but the list leaves out is in [`PublishReport::refused`].
    pub async fn publish_device_list<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<PublishReport, ClientError> {
        let (account_id, device) = self.whoami().await;
        if !device.is_primary() {
            return Err(ClientError::PrimaryOnly("sign the device list"));
        }
        let devices = self.own_devices(transport, account_id).await?;
        let identity = self.store.load_identity_key_pair().await?;
        let mut account = self.lock().await;
        Self::adopt_published(&mut account, &devices.signed_device_list);
        let mut report = PublishReport::default();
        let mut linked = std::collections::BTreeMap::new();
        for d in devices.devices.iter().filter(|d| d.device_id != 1) {
            match Self::admissible(&account, account_id, identity.identity_key(), d) {
                Ok((id, key_index)) if linked.values().all(|k| *k != key_index) => {
                    linked.insert(id, key_index);
                }
                Ok(_) => report.refused.push((d.device_id, AdvError::KeyIndexMismatch)),
                Err(reason) => report.refused.push((d.device_id, reason)),
            }
        }
        // Companions that left: never listed again, and contacts learn so.
        let gone: Vec<(DeviceId, u32)> = account
            .linked
            .iter()
            .filter(|(id, key_index)| linked.get(*id) != Some(*key_index))
            .map(|(id, key_index)| (*id, *key_index))
            .collect();
        for (id, key_index) in gone {
            account.revoked.insert(key_index);
            report.gone.push(id);
        }
        linked.retain(|_, k| !account.revoked.contains(k));
        let listed: Vec<u32> = linked.values().copied().collect();
        account.confirmed.retain(|k| !listed.contains(k));
        account.linked = linked;
        account.device_list_version += 1;
        let mut entries = vec![DeviceListEntry { device_id: DeviceId::PRIMARY, key_index: 0 }];
        entries.extend(
            account.linked.iter().map(|(d, k)| DeviceListEntry { device_id: *d, key_index: *k }),
        );
        let list = DeviceList {
            account_id,
            version: account.device_list_version,
            timestamp: now,
            expires_at: now.saturating_add(DEVICE_LIST_LIFETIME),
            entries,
            revoked: account.revoked.iter().copied().collect(),
        };
        let signed = SignedDeviceList::sign(&identity, list, rng);
        // The record (with the new revocations) is durable before the list leaves.
        let mut changes = ClientChanges::default();
        // Our own cached list is stale now.
        if let Some(mut own) = self.store.load_device_list(&account_id).await? {
            own.stale = true;
            changes.device_lists.insert(account_id, own);
        }
        self.save(&account, changes).await?;
        report.version = account.device_list_version;
        report.listed = account.linked.keys().copied().collect();
        drop(account);
        call(
            transport,
            request::Body::SetDeviceList(SetDeviceList { signed_device_list: signed.to_bytes() }),
        )
        .await?;
        Ok(report)
    }

    /// Whether the relay's device `d` may be listed: the account key signed its identity
    /// under a key index this primary issued and never revoked. Returns its id and index.
    fn admissible(
        account: &AccountRecord,
        account_id: AccountId,
        account_key: &IdentityKey,
        d: &crate::wire::relay::DeviceInfo,
    ) -> Result<(DeviceId, u32), AdvError> {
        let id = DeviceId::new(d.device_id).map_err(|_| AdvError::Malformed("device id"))?;
        let adv = SignedDeviceIdentity::from_bytes(&d.adv_identity)?;
        let details = adv.verify(account_key)?;
        if details.account_id != account_id {
            return Err(AdvError::WrongAccount);
        }
        if details.identity_key.serialize()[..] != d.identity_key[..] {
            return Err(AdvError::IdentityMismatch);
        }
        if account.revoked.contains(&details.key_index) {
            return Err(AdvError::Revoked);
        }
        if details.key_index == 0 || details.key_index >= account.next_key_index {
            return Err(AdvError::KeyIndexMismatch);
        }
        if account.linked.iter().any(|(other, k)| *k == details.key_index && *other != id) {
            return Err(AdvError::KeyIndexMismatch);
        }
        // Only what this primary listed before, or what the person confirmed.
        if account.linked.get(&id) != Some(&details.key_index)
            && !account.confirmed.contains(&details.key_index)
        {
            return Err(AdvError::NotInList);
        }
        Ok((id, details.key_index))
    }

    /// A primary from before its record kept the linked companions: the list it last
    /// published (the relay's, if it verifies under this account key and has this record's
    /// version) says which they are.
    fn adopt_published(account: &mut AccountRecord, signed: &[u8]) {
        if !account.linked.is_empty() || account.device_list_version == 0 {
            return;
        }
        let Ok(list) = SignedDeviceList::from_bytes(signed) else { return };
        let Ok(list) = list.verify(&account.account_key) else { return };
        if list.account_id != account.account_id || list.version != account.device_list_version {
            return;
        }
        for e in list.entries.iter().filter(|e| !e.device_id.is_primary()) {
            account.linked.insert(e.device_id, e.key_index);
        }
        account.revoked.extend(&list.revoked);
    }

    async fn own_devices<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account_id: AccountId,
    ) -> Result<crate::wire::relay::Devices, ClientError> {
        let body = request::Body::GetDevices(GetDevices {
            account_id: account_id.0.to_vec(),
            incoming: false,
        });
        match call(transport, body).await? {
            Some(response::Body::Devices(devices)) => Ok(devices),
            _ => Err(ClientError::UnexpectedResponse("devices")),
        }
    }

    /// Removes a device (the primary: any companion; a companion: itself). The primary
    /// revokes the companion's key index and publishes a list without it *before* asking the
    /// relay to drop it, so the relay can never bring it back, and the removed device is
    /// told with a list signed by the account key that proves it was logged out.
    pub async fn remove_device<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        device: DeviceId,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let (account_id, me) = self.whoami().await;
        if me.is_primary() {
            let devices = self.own_devices(transport, account_id).await?;
            let on_relay = devices
                .devices
                .iter()
                .find(|d| d.device_id == device.get())
                .and_then(|d| SignedDeviceIdentity::from_bytes(&d.adv_identity).ok())
                .map(|a| a.details().key_index);
            let mut account = self.lock().await;
            let key_index = account.linked.remove(&device).or(on_relay);
            if let Some(k) = key_index {
                account.revoked.insert(k);
                account.confirmed.remove(&k);
            }
            self.save(&account, ClientChanges::default()).await?;
            drop(account);
            self.publish_device_list(transport, now, rng).await?;
        }
        match call(transport, request::Body::RemoveDevice(RemoveDevice { device_id: device.get() }))
            .await
        {
            Ok(_) | Err(ClientError::Server { status: Status::NotFound, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Primary: whether the relay's devices differ from the last published list (a
    /// companion joined or left while this device did not hear of it), or the list nears
    /// its expiry. Then [`Client::publish_device_list`] is due.
    pub async fn device_list_due<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
    ) -> Result<bool, ClientError> {
        let (account_id, device) = self.whoami().await;
        if !device.is_primary() {
            return Ok(false);
        }
        let devices = self.own_devices(transport, account_id).await?;
        let mut account = self.account().await;
        Self::adopt_published(&mut account, &devices.signed_device_list);
        let on_relay: std::collections::BTreeSet<u32> =
            devices.devices.iter().map(|d| d.device_id).filter(|d| *d != 1).collect();
        let published: std::collections::BTreeSet<u32> =
            account.linked.keys().map(|d| d.get()).collect();
        let renew = SignedDeviceList::from_bytes(&devices.signed_device_list)
            .ok()
            .and_then(|l| l.verify(&account.account_key).ok().cloned())
            .is_none_or(|l| l.version != account.device_list_version || l.needs_renewal(now));
        // A device the relay lists that was refused before stays refused: only new ones,
        // or missing ones, make a new list due.
        let unexplained = on_relay.iter().any(|d| {
            !published.contains(d)
                && devices.devices.iter().any(|info| {
                    info.device_id == *d
                        && Self::admissible(&account, account_id, &account.account_key, info)
                            .is_ok()
                })
        });
        Ok(renew || unexplained || published.iter().any(|d| !on_relay.contains(d)))
    }

    /// Keeps the device healthy: refills prekeys, rotates the signed prekey, and (primary)
    /// publishes a new device list when the relay's devices changed unheard of or the list
    /// nears its expiry. Returns the publish report if a list was signed.
    pub async fn maintain<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Option<PublishReport>, ClientError> {
        self.refresh_prekeys(transport, now, rng, false).await?;
        if self.device_list_due(transport, now).await? {
            return Ok(Some(self.publish_device_list(transport, now, rng).await?));
        }
        Ok(None)
    }

    /// Uploads prekeys where the server runs low (or a full set when `initial`), and a new
    /// signed prekey when the current one is old. Keys are saved locally before upload.
    async fn refresh_prekeys<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
        initial: bool,
    ) -> Result<(), ClientError> {
        let (want_one_time, want_kyber) = if initial {
            (true, true)
        } else {
            let Some(response::Body::PreKeyCounts(c)) =
                call(transport, request::Body::GetPreKeyCounts(GetPreKeyCounts {})).await?
            else {
                return Err(ClientError::UnexpectedResponse("prekey counts"));
            };
            (c.one_time < PREKEY_REFILL_BELOW, c.kyber < PREKEY_REFILL_BELOW || !c.has_last_resort)
        };
        let identity = self.store.load_identity_key_pair().await?;
        let mut account = self.lock().await;
        let rotate = initial
            || now.saturating_duration_since(account.signed_pre_key_at) >= SIGNED_PREKEY_ROTATION;
        if !want_one_time && !want_kyber && !rotate {
            return Ok(());
        }
        let mut changes = ClientChanges::default();
        let mut upload = UploadPreKeys::default();
        if rotate {
            account.signed_pre_key_id += 1;
            account.signed_pre_key_at = now;
            let spk = SignedPreKeyRecord::generate(
                SignedPreKeyId(account.signed_pre_key_id),
                &identity,
                now,
                rng,
            );
            upload.signed_pre_key = Some(SignedPreKeyMessage {
                key_id: spk.id.0,
                public_key: spk.key_pair.public_key.serialize().to_vec(),
                signature: spk.signature.to_vec(),
            });
            changes.signed_pre_keys.push(spk);
        }
        if want_one_time {
            for _ in 0..PREKEY_BATCH {
                self.store.pause().await;
                let k = PreKeyRecord::generate(PreKeyId(account.next_pre_key_id), rng);
                account.next_pre_key_id += 1;
                upload.one_time.push(OneTimePreKeyMessage {
                    key_id: k.id.0,
                    public_key: k.key_pair.public_key.serialize().to_vec(),
                });
                changes.pre_keys.push(k);
            }
        }
        if want_kyber {
            for i in 0..=PREKEY_BATCH {
                self.store.pause().await;
                let last_resort = i == PREKEY_BATCH;
                let k = KyberPreKeyRecord::generate(
                    KyberPreKeyId(account.next_kyber_pre_key_id),
                    &identity,
                    now,
                    last_resort,
                    rng,
                );
                account.next_kyber_pre_key_id += 1;
                let msg = KyberPreKeyMessage {
                    key_id: k.id.0,
                    public_key: k.key_pair.public_key.serialize(),
                    signature: k.signature.to_vec(),
                };
                if last_resort {
                    upload.last_resort_kyber = Some(msg);
                } else {
                    upload.kyber.push(msg);
                }
                changes.kyber_pre_keys.push(k);
            }
        }
        self.save(&account, changes).await?;
        drop(account);
        call(transport, request::Body::UploadPreKeys(upload)).await?;
        Ok(())
    }
}

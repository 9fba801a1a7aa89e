//! Becoming a device: registering an account (primary) or a companion, linking companions,
//! publishing the signed device list, prekey upload and refill.

use rand_core::CryptoRng;

use super::{
    AccountRecord, Client, ClientError, PREKEY_BATCH, PREKEY_REFILL_BELOW, SIGNED_PREKEY_ROTATION,
    call,
};
use crate::address::{AccountId, DeviceId};
use crate::devices::{
    DEVICE_LIST_LIFETIME, DeviceIdentityDetails, DeviceList, DeviceListEntry, SignedDeviceIdentity,
    SignedDeviceList,
};
use crate::identity::IdentityKey;
use crate::link::{self, LinkCode, LinkError, LinkMessage, MatchCode, VerifiedLink};
use crate::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyId, PreKeyRecord, SignedPreKeyId, SignedPreKeyRecord,
};
use crate::store::{Changes, ClientStore};
use crate::time::Timestamp;
use crate::transport::RelayTransport;
use crate::wire::relay::{
    GetDevices, GetPreKeyCounts, KyberPreKeyMessage, MAX_PREKEYS_PER_UPLOAD, NewDevice,
    OneTimePreKeyMessage, RegisterAccount, RegisterDevice, RemoveDevice, ResetAccount,
    SendProvisioning, SetDeviceList, SignedPreKeyMessage, Status, UploadPreKeys, request, response,
};

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

// Every refill fits one upload request.
const _: () = assert!(PREKEY_BATCH as usize <= MAX_PREKEYS_PER_UPLOAD);

/// How a companion names itself and proves it is itself later.
struct NewCompanion<'a> {
    device_name: &'a str,
    platform: &'a str,
    password: [u8; 32],
}

/// A fresh 32-byte device password.
pub fn random_password(rng: &mut impl CryptoRng) -> [u8; 32] {
    let mut p = [0u8; 32];
    rng.fill_bytes(&mut p);
    p
}

/// A device as the relay registers it (account, re-registration or companion).
fn new_device(
    identity: &IdentityKey,
    registration_id: u32,
    password: &[u8; 32],
    name: &str,
    platform: &str,
    adv_identity: Vec<u8>,
) -> NewDevice {
    NewDevice {
        registration_id,
        identity_key: identity.serialize().to_vec(),
        password: password.to_vec(),
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
        let identity = store.load_identity_key_pair().await?;
        let registration_id = store.load_local_registration_id().await?;
        let password = random_password(rng);
        let body = request::Body::RegisterAccount(RegisterAccount {
            handle: handle.to_owned(),
            device: Some(new_device(
                identity.identity_key(),
                registration_id,
                &password,
                device_name,
                platform,
                Vec::new(),
            )),
        });
        let Some(response::Body::Registered(r)) = call(transport, body).await? else {
            return Err(ClientError::UnexpectedResponse("register account"));
        };
        let account_id = AccountId::from_bytes(&r.account_id)
            .map_err(|_| ClientError::UnexpectedResponse("account id"))?;
        Self::start_primary(store, transport, account_id, handle, password, now, rng).await
    }

    /// Re-registers this primary's account (`account_id`, `handle`) under a new account key:
    /// `store` is a fresh store holding the new identity, which becomes the account key.
    /// `transport` is the primary's authenticated connection. The relay logs every companion
    /// out and drops the old prekeys, queues and device list; this uploads new prekeys and
    /// publishes a device list of this device alone. Contacts see the key change (verified
    /// ones hold their sends until they accept it).
    #[allow(clippy::too_many_arguments)]
    pub async fn reset_account_key<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        account_id: AccountId,
        handle: &str,
        device_name: &str,
        platform: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let identity = store.load_identity_key_pair().await?;
        let registration_id = store.load_local_registration_id().await?;
        let password = Self::send_reset(
            transport,
            identity.identity_key(),
            registration_id,
            device_name,
            platform,
            rng,
        )
        .await?;
        Self::start_primary(store, transport, account_id, handle, password, now, rng).await
    }

    /// The relay half of [`Client::reset_account_key`]: asks the relay to re-register the
    /// account under `identity` and returns the device's new secret. A store that must not
    /// lose its state before the relay agreed (the browser's) is replaced only after this,
    /// then handed to [`Client::start_primary`].
    pub async fn send_reset<T: RelayTransport + ?Sized>(
        transport: &T,
        identity: &IdentityKey,
        registration_id: u32,
        device_name: &str,
        platform: &str,
        rng: &mut impl CryptoRng,
    ) -> Result<[u8; 32], ClientError> {
        let password = random_password(rng);
        let body = request::Body::ResetAccount(ResetAccount {
            device: Some(new_device(
                identity,
                registration_id,
                &password,
                device_name,
                platform,
                Vec::new(),
            )),
        });
        call(transport, body).await?;
        Ok(password)
    }

    /// A primary that just registered (or re-registered, with the secret from
    /// [`Client::send_reset`]): its record, prekeys and first device list. `store` holds the
    /// device's identity.
    pub async fn start_primary<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        account_id: AccountId,
        handle: &str,
        password: [u8; 32],
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let identity = store.load_identity_key_pair().await?;
        let account = AccountRecord {
            account_id,
            device_id: DeviceId::PRIMARY,
            handle: handle.trim().to_lowercase(),
            password,
            account_key: *identity.identity_key(),
            next_pre_key_id: 1,
            next_kyber_pre_key_id: 1,
            signed_pre_key_id: 0,
            signed_pre_key_at: now,
            next_key_index: 1,
            device_list_version: 0,
            last_timestamp: 0,
        };
        let client = Self::with_account(store, account);
        client.save(&client.account().await, Changes::default()).await?;
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
        self.save(&account, Changes::default()).await?;
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
    /// its provisioning address. Returns the code both screens show.
    pub async fn link_companion<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        code: &LinkCode,
        primary_name: &str,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<MatchCode, ClientError> {
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
            Ok(_) => Ok(matching),
        }
    }

    /// Companion: joins the account named by a verified link message (see
    /// [`crate::link::LinkRequest::open`]) with `password` as its credential, then uploads
    /// prekeys. If the connection drops before the answer, calling it again with the same
    /// link and password (within the token's lifetime) gets the same device, never a second.
    #[allow(clippy::too_many_arguments)]
    pub async fn register_linked<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        link: VerifiedLink,
        password: [u8; 32],
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
        let new = NewCompanion { device_name, platform, password };
        Self::register_with(store, transport, offer, new, now, rng).await
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
        let new = NewCompanion { device_name, platform, password: random_password(rng) };
        Self::register_with(store, transport, offer, new, now, rng).await
    }

    async fn register_with<T: RelayTransport + ?Sized>(
        store: S,
        transport: &T,
        offer: LinkOffer,
        new: NewCompanion<'_>,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<Self, ClientError> {
        let NewCompanion { device_name, platform, password } = new;
        let identity = store.load_identity_key_pair().await?;
        let registration_id = store.load_local_registration_id().await?;
        let adv = offer.adv_identity.countersign(&identity, &offer.account_key, rng)?;
        if adv.details().account_id != offer.account_id {
            return Err(ClientError::InvalidInput("the link offer names another account".into()));
        }
        let body = request::Body::RegisterDevice(RegisterDevice {
            account_id: offer.account_id.0.to_vec(),
            link_token: offer.link_token.clone(),
            device: Some(new_device(
                identity.identity_key(),
                registration_id,
                &password,
                device_name,
                platform,
                adv.to_bytes(),
            )),
        });
        let Some(response::Body::DeviceRegistered(r)) = call(transport, body).await? else {
            return Err(ClientError::UnexpectedResponse("register device"));
        };
        let account = AccountRecord {
            account_id: offer.account_id,
            device_id: DeviceId::new(r.device_id)
                .map_err(|_| ClientError::UnexpectedResponse("device id"))?,
            handle: offer.handle,
            password,
            account_key: offer.account_key,
            next_pre_key_id: 1,
            next_kyber_pre_key_id: 1,
            signed_pre_key_id: 0,
            signed_pre_key_at: now,
            next_key_index: 0,
            device_list_version: 0,
            last_timestamp: 0,
        };
        let client = Self::with_account(store, account);
        client.save(&client.account().await, Changes::default()).await?;
        client.refresh_prekeys(transport, now, rng, true).await?;
        Ok(client)
    }

    /// Primary: signs and publishes the device list: itself plus every registered companion
    /// whose ADV identity verifies under the account key.
    pub async fn publish_device_list<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        let (account_id, device) = self.whoami().await;
        if !device.is_primary() {
            return Err(ClientError::PrimaryOnly("sign the device list"));
        }
        let Some(response::Body::Devices(devices)) = call(
            transport,
            request::Body::GetDevices(GetDevices { account_id: account_id.0.to_vec() }),
        )
        .await?
        else {
            return Err(ClientError::UnexpectedResponse("devices"));
        };
        let identity = self.store.load_identity_key_pair().await?;
        let mut entries = vec![DeviceListEntry { device_id: DeviceId::PRIMARY, key_index: 0 }];
        for d in devices.devices.iter().filter(|d| d.device_id != 1) {
            let Ok(device_id) = DeviceId::new(d.device_id) else { continue };
            let Ok(adv) = SignedDeviceIdentity::from_bytes(&d.adv_identity) else { continue };
            let Ok(details) = adv.verify(identity.identity_key()) else { continue };
            if details.account_id == account_id
                && details.identity_key.serialize()[..] == d.identity_key[..]
            {
                entries.push(DeviceListEntry { device_id, key_index: details.key_index });
            }
        }
        let mut account = self.lock().await;
        account.device_list_version += 1;
        let list = DeviceList {
            account_id,
            version: account.device_list_version,
            timestamp: now,
            expires_at: now.saturating_add(DEVICE_LIST_LIFETIME),
            entries,
        };
        let signed = SignedDeviceList::sign(&identity, list, rng);
        call(
            transport,
            request::Body::SetDeviceList(SetDeviceList { signed_device_list: signed.to_bytes() }),
        )
        .await?;
        let mut changes = Changes::default();
        // Our own cached list is stale now.
        if let Some(mut own) = self.store.load_device_list(&account_id).await? {
            own.stale = true;
            changes.device_lists.insert(account_id, own);
        }
        self.save(&account, changes).await
    }

    /// Removes a device (the primary: any companion; a companion: itself). The primary then
    /// publishes a list without it.
    pub async fn remove_device<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        device: DeviceId,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        call(transport, request::Body::RemoveDevice(RemoveDevice { device_id: device.get() }))
            .await?;
        if self.whoami().await.1.is_primary() {
            self.publish_device_list(transport, now, rng).await?;
        }
        Ok(())
    }

    /// Keeps the device healthy: refills prekeys, rotates the signed prekey, and (primary)
    /// renews the device list before it expires.
    pub async fn maintain<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> Result<(), ClientError> {
        self.refresh_prekeys(transport, now, rng, false).await?;
        let (account_id, device) = self.whoami().await;
        if device.is_primary() {
            let own = self.device_list(transport, account_id, now, true).await?;
            let renew = own.list_version.is_none()
                || own.list_expired
                || self.needs_list_renewal(transport, account_id, now).await?;
            if renew {
                self.publish_device_list(transport, now, rng).await?;
            }
        }
        Ok(())
    }

    async fn needs_list_renewal<T: RelayTransport + ?Sized>(
        &self,
        transport: &T,
        account_id: AccountId,
        now: Timestamp,
    ) -> Result<bool, ClientError> {
        let Some(response::Body::Devices(d)) = call(
            transport,
            request::Body::GetDevices(GetDevices { account_id: account_id.0.to_vec() }),
        )
        .await?
        else {
            return Ok(true);
        };
        Ok(SignedDeviceList::from_bytes(&d.signed_device_list)
            .map_or(true, |l| l.list().needs_renewal(now)))
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
        let mut changes = Changes::default();
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

//! This account's devices: linking, removal, renaming, the list, and starting over.

use super::*;

impl Engine {
    /// Primary: links the companion whose link code is `text`. Returns the matching code
    /// both screens show, and the link's key index: the companion enters the account's
    /// signed list only once the person confirmed the codes match ([`Engine::confirm_link`]).
    pub async fn link_device(&self, code: &LinkCode) -> Result<(String, u32), ClientError> {
        let name = crate::platform::this_browser();
        let (matching, key_index) =
            self.client.link_companion(&self.relay, code, &name, now(), &mut system_rng()).await?;
        Ok((matching.to_string(), key_index))
    }

    /// Primary: both screens showed the same code: the companion may be signed into the list.
    pub async fn confirm_link(&self, key_index: u32) -> Result<(), ClientError> {
        let report =
            self.client.confirm_link(&self.relay, key_index, now(), &mut system_rng()).await?;
        self.report_refused(&report);
        self.notify(Notice::DevicesChanged);
        Ok(())
    }

    /// Primary: the codes differed (or the person cancelled): the link is revoked, and a
    /// device the relay registered with it is logged out.
    pub async fn reject_link(&self, key_index: u32) -> Result<(), ClientError> {
        self.client.reject_link(&self.relay, key_index, now(), &mut system_rng()).await?;
        self.notify(Notice::DevicesChanged);
        Ok(())
    }

    /// Warns people of devices the relay listed that were not signed into the account.
    pub(super) fn report_refused(&self, report: &tandem_core::client::PublishReport) {
        if !report.refused.is_empty() {
            self.notify(Notice::DevicesRefused(report.refused.iter().map(|(d, _)| *d).collect()));
        }
    }

    /// Logs a device out: the primary any companion (then signs a list without it), a
    /// companion itself.
    pub async fn remove_device(&self, device_id: u32) -> Result<(), ClientError> {
        let device = tandem_core::DeviceId::new(device_id)
            .map_err(|_| ClientError::InvalidInput("no such device".into()))?;
        let me = self.client.whoami().await.1;
        self.client.remove_device(&self.relay, device, now(), &mut system_rng()).await?;
        if device == me {
            self.notify(Notice::Removed);
        } else {
            self.notify(Notice::DevicesChanged);
        }
        Ok(())
    }

    /// Primary, engine tab: re-registers this account under a new account key. This engine
    /// stops first; the relay logs every companion out and drops prekeys, queues and the
    /// signed list; only then is this browser's store replaced (its chats are gone), and the
    /// new device's client is returned to start a new engine with. If the relay refused,
    /// `Err` and the old store is untouched (reopen it with [`Engine::open`]).
    pub async fn reset_account(&self) -> Result<Client<IdbStore>, ClientError> {
        if !self.is_primary().await {
            return Err(ClientError::PrimaryOnly("reset the account's keys"));
        }
        let account = self.account_id().await;
        let handle = self.handle.clone();
        // The current account key signs the reset; the store closes right after.
        let old = {
            use tandem_core::store::IdentityKeyStore;
            self.client.store().load_identity_key_pair().await?
        };
        self.halt(&TabMessage::Reload);
        let mut rng = system_rng();
        let identity = IdentityKeyPair::generate(&mut rng);
        let registration_id = generate_registration_id(&mut rng);
        let name = crate::platform::this_browser();
        Client::<IdbStore>::send_reset(
            &self.relay,
            account,
            &old,
            &identity,
            registration_id,
            &name,
            "Web",
            &mut rng,
        )
        .await?;
        let store = IdbStore::create(self.store().name(), identity, registration_id).await?;
        Client::start_primary(store, &self.relay, account, &handle, now(), &mut rng).await
    }

    /// Renames this device (1 to 64 characters) as the account's devices list it.
    pub async fn rename_device(&self, name: &str) -> Result<(), ClientError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(ClientError::InvalidInput("A device name is 1 to 64 characters.".into()));
        }
        let body = request::Body::UpdateDevice(UpdateDevice { name: name.to_owned() });
        call(&self.relay, body).await?;
        self.notify(Notice::DevicesChanged);
        Ok(())
    }

    /// The account's devices as the server lists them, primary first.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, ClientError> {
        let account = self.account_id().await;
        let body = request::Body::GetDevices(GetDevices {
            account_id: account.0.to_vec(),
            incoming: false,
        });
        match call(&self.relay, body).await? {
            Some(response::Body::Devices(d)) => Ok(d.devices),
            _ => Err(ClientError::UnexpectedResponse("devices")),
        }
    }
}

//! Security codes and trust in contacts' devices.

use super::*;

/// What the security-code screen shows.
#[derive(Clone, Debug)]
pub struct CodeView {
    /// 60 digits.
    pub digits: String,
    /// The QR payload as text (`tandem-code:…`), for copying instead of scanning.
    pub text: String,
    /// The contact's devices and trust flags.
    pub list: DeviceListRecord,
}

const OTHER_VERSION: &str = "That security code comes from a different version of Tandem. Ask the other person to update, then compare again.";

const NOT_A_CODE: &str = "That is not a Tandem security code. Copy the whole text under the other person's QR code (it starts with tandem-code:).";

impl Engine {
    /// The security code with `contact`: its 60 digits, its QR text, and the contact's
    /// devices as verified (fresh from the relay).
    pub async fn security_code(&self, contact: AccountId) -> Result<CodeView, ClientError> {
        let c = self.client.security_code(&self.relay, contact, now()).await?;
        Ok(CodeView {
            digits: c.code.digits(),
            text: tandem_core::fingerprint::code_text(&c.code.scannable()),
            list: c.list,
        })
    }

    /// Checks the contact's code text (pasted or scanned); marks them verified if it matches.
    pub async fn verify_code(&self, contact: AccountId, text: &str) -> Result<Scan, ClientError> {
        let payload = tandem_core::fingerprint::parse_code_text(text)
            .map_err(|_| ClientError::InvalidInput(NOT_A_CODE.into()))?;
        let outcome = match self.client.verify_scanned(&self.relay, contact, &payload, now()).await
        {
            Err(ClientError::SecurityCode(FingerprintError::VersionMismatch { .. })) => {
                return Err(ClientError::InvalidInput(OTHER_VERSION.into()));
            }
            Err(ClientError::SecurityCode(_)) => {
                return Err(ClientError::InvalidInput(NOT_A_CODE.into()));
            }
            other => other?,
        };
        self.notify(Notice::Changed);
        Ok(match outcome {
            ScanOutcome::Verified => Scan::Verified,
            ScanOutcome::KeysDiffer => Scan::KeysDiffer,
            ScanOutcome::DeviceListsDiffer { their_list, our_list } => {
                Scan::ListsDiffer { their_list, our_list }
            }
        })
    }

    /// Marks `contact` verified (digits compared by eye) or not.
    pub async fn set_verified(
        &self,
        contact: AccountId,
        verified: bool,
    ) -> Result<(), ClientError> {
        self.client.set_verified(contact, verified).await?;
        self.notify(Notice::Changed);
        Ok(())
    }

    /// The person saw that `contact`'s security code changed: the notice goes, a held new key
    /// is accepted, and held messages are sent.
    pub async fn acknowledge_key_change(&self, contact: AccountId) -> Result<(), ClientError> {
        self.client.acknowledge_key_change(contact).await?;
        self.notify(Notice::Changed);
        self.flush().await;
        self.retry_now();
        Ok(())
    }

    /// What this browser knows about trusting `contact` (for the chat's notices).
    pub async fn trust(&self, contact: AccountId) -> Option<DeviceListRecord> {
        use tandem_core::store::ClientStore;
        self.client.store().load_device_list(&contact).await.ok().flatten()
    }
}

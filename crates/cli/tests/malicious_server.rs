//! A malicious relay tries to add a device to Bob's account. A transport double sits between
//! Alice's engine and the real relay: it injects a device into every device list of Bob's
//! account, and in the second test also insists (as a mismatch) that sends include it.
//! Alice never produces a ciphertext for it, and the engine reports why.

mod support;

use std::sync::Mutex;

use async_trait::async_trait;
use support::{TestServer, expect_message};
use tandem_cli::{Connection, Device, now, system_rng};
use tandem_core::client::ClientError;
use tandem_core::devices::{AdvError, DeviceIdentityDetails, SignedDeviceIdentity};
use tandem_core::transport::{RelayTransport, TransportError};
use tandem_core::wire::relay::{
    AccountMismatch, DeviceInfo, MismatchedDevices, Response, Status, request, response,
};
use tandem_core::{AccountId, IdentityKeyPair, Timestamp};

const FAKE_DEVICE: u32 = 9;

struct Injecting {
    inner: Connection,
    victim: AccountId,
    fake: DeviceInfo,
    demand: bool,
    sends: Mutex<Vec<request::Body>>,
}

impl Injecting {
    fn addressed_fake(&self) -> bool {
        self.sends.lock().unwrap().iter().any(|b| match b {
            request::Body::SendMessages(s) => s.messages.iter().any(|m| m.device_id == FAKE_DEVICE),
            _ => false,
        })
    }
}

#[async_trait]
impl RelayTransport for Injecting {
    async fn request(&self, body: request::Body) -> Result<Response, TransportError> {
        if let request::Body::SendMessages(s) = &body {
            self.sends.lock().unwrap().push(body.clone());
            let has_fake = s.messages.iter().any(|m| m.device_id == FAKE_DEVICE);
            if self.demand && !has_fake && s.recipient == self.victim.0 {
                return Ok(Response {
                    id: 0,
                    status: Status::Conflict as i32,
                    message: "the device set is not the current one".into(),
                    body: Some(response::Body::MismatchedDevices(MismatchedDevices {
                        accounts: vec![AccountMismatch {
                            account_id: self.victim.0.to_vec(),
                            missing: vec![FAKE_DEVICE],
                            extra: vec![],
                            stale: vec![],
                        }],
                    })),
                });
            }
        }
        let mut resp = self.inner.request(body).await?;
        if let Some(response::Body::Devices(d)) = resp.body.as_mut()
            && d.account_id == self.victim.0
        {
            d.devices.push(self.fake.clone());
        }
        Ok(resp)
    }

    fn challenge(&self) -> Result<tandem_core::auth::Challenge, tandem_core::auth::ChallengeError> {
        self.inner.challenge()
    }
}

/// A device the server made up: its own key, and an ADV identity signed by a key that is
/// not the account's.
fn fake_device(victim: AccountId) -> DeviceInfo {
    let mut rng = system_rng();
    let key = IdentityKeyPair::generate(&mut rng);
    let forger = IdentityKeyPair::generate(&mut rng);
    let details = DeviceIdentityDetails {
        account_id: victim,
        key_index: 7,
        identity_key: *key.identity_key(),
        timestamp: Timestamp::EPOCH,
    };
    let adv = SignedDeviceIdentity::sign_by_account(&forger, details, &mut rng)
        .countersign(&key, forger.identity_key(), &mut rng)
        .unwrap();
    DeviceInfo {
        device_id: FAKE_DEVICE,
        registration_id: 4242,
        identity_key: key.identity_key().serialize().to_vec(),
        adv_identity: adv.to_bytes(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_an_injected_device_is_never_encrypted_to_and_is_reported() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let mut bob = Device::register(&server.url, "bob").await.unwrap();
    let mut bob2 = Device::link(&bob, "bob laptop").await.unwrap();
    let b = bob.account_id().await;
    let evil = Injecting {
        inner: alice.connection().clone(),
        victim: b,
        fake: fake_device(b),
        demand: false,
        sends: Mutex::default(),
    };
    let report = alice
        .client
        .send_text(&evil, b, "only for bob's real devices", now(), &mut system_rng())
        .await
        .unwrap();
    assert!(!evil.addressed_fake(), "no ciphertext for the injected device");
    assert_eq!(report.devices.iter().filter(|(acct, _)| *acct == b).count(), 2);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].0, b);
    assert_eq!(report.rejected[0].1.device_id, FAKE_DEVICE);
    assert_eq!(report.rejected[0].1.reason, AdvError::NotInList);
    // The cached list keeps the reason for the UI.
    let list = alice.client.device_list(&evil, b, now(), false).await.unwrap();
    assert!(list.rejected.iter().any(|r| r.device_id == FAKE_DEVICE));
    expect_message(&mut bob, "only for bob's real devices").await;
    expect_message(&mut bob2, "only for bob's real devices").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn test_a_server_demanding_an_unsigned_device_gets_no_ciphertext_for_it() {
    let server = TestServer::start().await;
    let alice = Device::register(&server.url, "alice").await.unwrap();
    let bob = Device::register(&server.url, "bob").await.unwrap();
    let b = bob.account_id().await;
    let evil = Injecting {
        inner: alice.connection().clone(),
        victim: b,
        fake: fake_device(b),
        demand: true,
        sends: Mutex::default(),
    };
    let err =
        alice.client.send_text(&evil, b, "secret", now(), &mut system_rng()).await.unwrap_err();
    match &err {
        ClientError::SendFailed { unverified, reason } => {
            assert_eq!(unverified, &vec![(b, FAKE_DEVICE, AdvError::NotInList)]);
            assert!(reason.contains("did not sign"), "{reason}");
        }
        other => panic!("expected a refused send, got {other:?}"),
    }
    assert!(!evil.addressed_fake(), "no ciphertext for the injected device, in any attempt");
    assert!(!evil.sends.lock().unwrap().is_empty());
    // The message is marked failed with the reason, not left pending.
    let sent =
        alice.client.messages(&tandem_core::client::Conversation::Direct(b), 10).await.unwrap();
    assert!(
        matches!(&sent[0].state, tandem_core::client::OutgoingState::Failed(r) if r.contains("did not sign"))
    );
    server.stop().await;
}

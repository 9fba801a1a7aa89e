//! Prekeys through the socket: handed out once, the last resort after, fetches rate-limited.

use super::*;

#[tokio::test]
async fn test_prekeys_are_handed_out_once_with_last_resort_fallback() {
    let (state, _dir) = state().await;
    let mut rng = SeededRng::new(6);
    let mut alice = register(&state, "alice", &mut rng).await;
    let mut bob = register(&state, "bob", &mut rng).await;
    let signed = KeyPair::generate(&mut rng);
    let sig = |k: &[u8], rng: &mut SeededRng| bob.identity.private_key().sign(k, rng).to_vec();
    let kyber = KyberKeyPair::generate(&mut rng);
    let last_resort = KyberKeyPair::generate(&mut rng);
    let upload = UploadPreKeys {
        signed_pre_key: Some(SignedPreKeyMessage {
            key_id: 1,
            public_key: signed.public_key.serialize().to_vec(),
            signature: sig(&signed.public_key.serialize(), &mut rng),
        }),
        one_time: (1..=2)
            .map(|i| OneTimePreKeyMessage {
                key_id: i,
                public_key: KeyPair::generate(&mut rng).public_key.serialize().to_vec(),
            })
            .collect(),
        kyber: vec![KyberPreKeyMessage {
            key_id: 5,
            public_key: kyber.public_key.serialize(),
            signature: sig(&kyber.public_key.serialize(), &mut rng),
        }],
        last_resort_kyber: Some(KyberPreKeyMessage {
            key_id: 6,
            public_key: last_resort.public_key.serialize(),
            signature: sig(&last_resort.public_key.serialize(), &mut rng),
        }),
    };
    bob.client.ok(request::Body::UploadPreKeys(upload)).await;
    let Some(response::Body::PreKeyCounts(c)) =
        bob.client.ok(request::Body::GetPreKeyCounts(GetPreKeyCounts {})).await
    else {
        panic!()
    };
    assert_eq!((c.one_time, c.kyber, c.has_signed, c.has_last_resort), (2, 1, true, true));
    let fetch = request::Body::GetPreKeyBundles(GetPreKeyBundles {
        account_id: bob.account.0.to_vec(),
        device_ids: vec![],
    });
    let mut seen = Vec::new();
    for _ in 0..3 {
        let Some(response::Body::PreKeyBundles(b)) = alice.client.ok(fetch.clone()).await else {
            panic!()
        };
        let b = &b.bundles[0];
        seen.push((b.one_time.as_ref().map(|k| k.key_id), b.kyber.as_ref().map(|k| k.key_id)));
    }
    assert_eq!(seen, [(Some(1), Some(5)), (Some(2), Some(6)), (None, Some(6))]);
    // A key whose signature does not verify is refused.
    let forged = UploadPreKeys {
        signed_pre_key: Some(SignedPreKeyMessage {
            key_id: 2,
            public_key: signed.public_key.serialize().to_vec(),
            signature: vec![0; 64],
        }),
        ..Default::default()
    };
    let r = bob.client.request(request::Body::UploadPreKeys(forged)).await;
    assert_eq!(
        (r.status(), r.message.as_str()),
        (Status::BadRequest, "signed prekey signature does not verify")
    );
}

#[tokio::test]
async fn test_prekey_fetches_are_rate_limited() {
    let mut relay = Settings::for_tests(".".into(), ".".into()).relay_config();
    relay.limits.prekey_fetch = crate::limits::Rate { burst: 3.0, per_second: 0.01 };
    let (state, _dir) = state_with(relay).await;
    let mut rng = SeededRng::new(7);
    let mut alice = register(&state, "alice", &mut rng).await;
    let bob = register(&state, "bob", &mut rng).await;
    let fetch = request::Body::GetPreKeyBundles(GetPreKeyBundles {
        account_id: bob.account.0.to_vec(),
        device_ids: vec![],
    });
    for _ in 0..3 {
        alice.client.ok(fetch.clone()).await;
    }
    let r = alice.client.request(fetch).await;
    assert_eq!(r.status(), Status::RateLimited);
    assert!(r.message.starts_with("too many requests"));
}

//! Bob publishes a prekey bundle, Alice starts a session from it (PQXDH), and they exchange
//! messages (Double Ratchet). `cargo run -p tandem-signal --example two_party`

use getrandom::{SysRng, rand_core::UnwrapErr};
use tandem_signal::prekeys::{
    KyberPreKeyId, KyberPreKeyRecord, PreKeyBundle, PreKeyId, PreKeyRecord, SignedPreKeyId,
    SignedPreKeyRecord,
};
use tandem_signal::session::{message_decrypt, message_encrypt, process_prekey_bundle};
use tandem_signal::store::{Changes, MemoryStore, ProtocolStore};
use tandem_signal::{DeviceId, IdentityKeyPair, ProtocolAddress, Timestamp};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = UnwrapErr(SysRng);
    let now = Timestamp::from_millis(1_800_000_000_000);
    let bob_id = IdentityKeyPair::generate(&mut rng);
    let alice = MemoryStore::new(IdentityKeyPair::generate(&mut rng), 1);
    let bob = MemoryStore::new(bob_id.clone(), 2);
    let alice_at = ProtocolAddress::new("alice", DeviceId::PRIMARY);
    let bob_at = ProtocolAddress::new("bob", DeviceId::PRIMARY);

    // Bob keeps his prekeys and publishes their public halves (a server would carry them).
    let one_time = PreKeyRecord::generate(PreKeyId(1), &mut rng);
    let signed = SignedPreKeyRecord::generate(SignedPreKeyId(1), &bob_id, now, &mut rng);
    let kyber = KyberPreKeyRecord::generate(KyberPreKeyId(1), &bob_id, now, false, &mut rng);
    let bundle = PreKeyBundle::from_records(
        2,
        DeviceId::PRIMARY,
        *bob_id.identity_key(),
        Some(&one_time),
        &signed,
        &kyber,
    );
    let keys = Changes {
        pre_keys: vec![one_time],
        signed_pre_keys: vec![signed],
        kyber_pre_keys: vec![kyber],
        ..Changes::default()
    };
    bob.save_changes(keys).await?;

    alice
        .save_changes(process_prekey_bundle(&alice, &bob_at, &bundle, now, &mut rng).await?)
        .await?;

    // Every encryption is saved before its message can be sent; every decryption is saved too.
    for (from, to, from_at, to_at, text) in [
        (&alice, &bob, &alice_at, &bob_at, "Hello Bob"),
        (&bob, &alice, &bob_at, &alice_at, "Hi Alice"),
        (&alice, &bob, &alice_at, &bob_at, "How are you?"),
    ] {
        let message = message_encrypt(from, to_at, text.as_bytes(), now).await?.save(from).await?;
        let (plaintext, changes) = message_decrypt(to, from_at, &message, &mut rng).await?;
        to.save_changes(changes).await?;
        println!("{from_at} → {to_at}: {}", String::from_utf8(plaintext)?);
    }
    Ok(())
}

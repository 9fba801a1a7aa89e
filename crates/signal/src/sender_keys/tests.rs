use futures_executor::block_on;

use super::*;
use crate::address::DeviceId;
use crate::identity::IdentityKeyPair;
use crate::store::{MemoryStore, ProtocolStore, SenderKeyName, SenderKeyStore};
use crate::testing::SeededRng;

fn store(rng: &mut SeededRng) -> MemoryStore {
    MemoryStore::new(IdentityKeyPair::generate(rng), 1)
}

fn addr(name: &str) -> ProtocolAddress {
    ProtocolAddress::new(name, DeviceId::new(2).unwrap())
}

fn save(store: &MemoryStore, changes: Changes) {
    block_on(store.save_changes(changes)).unwrap();
}

fn encrypt(
    store: &MemoryStore,
    sender: &ProtocolAddress,
    group: DistributionId,
    text: &[u8],
    rng: &mut SeededRng,
) -> Vec<u8> {
    let (m, c) = block_on(group_encrypt(store, sender, group, text, rng)).unwrap().into_parts();
    save(store, c);
    m.serialized().to_vec()
}

fn decrypt(
    store: &MemoryStore,
    sender: &ProtocolAddress,
    bytes: &[u8],
) -> Result<Vec<u8>, ProtocolError> {
    let (p, c) = block_on(group_decrypt(store, sender, &SenderKeyMessage::from_bytes(bytes)?))?;
    save(store, c);
    Ok(p)
}

fn setup(seed: u64) -> (MemoryStore, MemoryStore, ProtocolAddress, DistributionId, SeededRng) {
    let mut rng = SeededRng::new(seed);
    let (alice, bob) = (store(&mut rng), store(&mut rng));
    let sender = addr("alice");
    let group = DistributionId::random(&mut rng);
    let (skdm, c) =
        block_on(create_sender_key_distribution_message(&alice, &sender, group, &mut rng)).unwrap();
    save(&alice, c);
    save(&bob, block_on(process_sender_key_distribution_message(&bob, &sender, &skdm)).unwrap());
    (alice, bob, sender, group, rng)
}

#[test]
fn test_group_messages_in_any_order_once_each() {
    let (alice, bob, sender, group, mut rng) = setup(1);
    let msgs: Vec<_> = (0..20u8).map(|i| encrypt(&alice, &sender, group, &[i], &mut rng)).collect();
    for i in [5usize, 0, 19, 3, 4, 1, 2, 18, 6] {
        assert_eq!(decrypt(&bob, &sender, &msgs[i]).unwrap(), [u8::try_from(i).unwrap()]);
    }
    assert!(matches!(
        decrypt(&bob, &sender, &msgs[5]),
        Err(ProtocolError::DuplicatedMessage { .. })
    ));
    assert!(matches!(
        decrypt(&bob, &sender, &msgs[19]),
        Err(ProtocolError::DuplicatedMessage { .. })
    ));
}

#[test]
fn test_group_attacks_are_distinct_errors() {
    let (alice, bob, sender, group, mut rng) = setup(2);
    let msg = encrypt(&alice, &sender, group, b"hello", &mut rng);
    // Forged signature.
    let mut forged = msg.clone();
    let n = forged.len();
    forged[n - 10] ^= 1;
    assert!(matches!(
        decrypt(&bob, &sender, &forged),
        Err(ProtocolError::SignatureValidationFailed)
    ));
    // Unknown sender.
    assert!(matches!(decrypt(&bob, &addr("mallory"), &msg), Err(ProtocolError::NoSenderKeyState)));
    // Jump too far.
    for _ in 0..=crate::session::MAX_FORWARD_JUMPS {
        encrypt(&alice, &sender, group, b"", &mut rng);
    }
    let far = encrypt(&alice, &sender, group, b"far", &mut rng);
    assert!(matches!(decrypt(&bob, &sender, &far), Err(ProtocolError::TooFarIntoFuture { .. })));
    assert_eq!(decrypt(&bob, &sender, &msg).unwrap(), b"hello", "failures changed nothing");
}

#[test]
fn test_rotation_locks_out_old_holders() {
    let (alice, bob, sender, group, mut rng) = setup(3);
    let mut carol_rng = SeededRng::new(33);
    let carol = store(&mut carol_rng);
    let (skdm, _) =
        block_on(create_sender_key_distribution_message(&alice, &sender, group, &mut rng)).unwrap();
    save(
        &carol,
        block_on(process_sender_key_distribution_message(&carol, &sender, &skdm)).unwrap(),
    );
    // Carol leaves: Alice rotates and redistributes only to Bob.
    save(&alice, rotate_sender_key(&sender, group, &mut rng));
    let (skdm, c) =
        block_on(create_sender_key_distribution_message(&alice, &sender, group, &mut rng)).unwrap();
    save(&alice, c);
    save(&bob, block_on(process_sender_key_distribution_message(&bob, &sender, &skdm)).unwrap());
    let msg = encrypt(&alice, &sender, group, b"after carol left", &mut rng);
    assert_eq!(decrypt(&bob, &sender, &msg).unwrap(), b"after carol left");
    assert!(matches!(decrypt(&carol, &sender, &msg), Err(ProtocolError::NoSenderKeyState)));
}

#[test]
fn test_repeated_distribution_does_not_rewind() {
    let (alice, bob, sender, group, mut rng) = setup(4);
    let (first_skdm, _) =
        block_on(create_sender_key_distribution_message(&alice, &sender, group, &mut rng)).unwrap();
    let m0 = encrypt(&alice, &sender, group, b"zero", &mut rng);
    assert_eq!(decrypt(&bob, &sender, &m0).unwrap(), b"zero");
    // The same SKDM again (a replay by the server, say) must not re-enable m0.
    save(
        &bob,
        block_on(process_sender_key_distribution_message(&bob, &sender, &first_skdm)).unwrap(),
    );
    assert!(matches!(decrypt(&bob, &sender, &m0), Err(ProtocolError::DuplicatedMessage { .. })));
}

#[test]
fn test_record_roundtrip() {
    let (alice, _bob, sender, group, mut rng) = setup(5);
    encrypt(&alice, &sender, group, b"x", &mut rng);
    let name = SenderKeyName { sender: sender.clone(), distribution_id: group };
    let record = block_on(alice.load_sender_key(&name)).unwrap().unwrap();
    let back = SenderKeyRecord::from_bytes(&record.to_bytes()).unwrap();
    assert_eq!(back.to_bytes(), record.to_bytes());
    assert!(back.current().unwrap().can_send());
    assert!(SenderKeyRecord::from_bytes(&[0xff]).is_err());
}

#[test]
fn test_a_reserved_chain_never_repeats_an_iteration_across_a_crash() {
    let (alice, bob, sender, group, mut rng) = setup(31);
    let key = SenderKeyName { sender: sender.clone(), distribution_id: group };
    let stored = block_on(alice.load_sender_key(&key)).unwrap().unwrap();
    // Four messages ahead are made durable; the chain in memory sends from where it was.
    let ahead = reserve_ahead(&stored, 4).unwrap();
    assert_eq!(ahead.current().unwrap().iteration(), stored.current().unwrap().iteration() + 4);
    let mut changes = Changes::default();
    changes.sender_keys.insert(key.clone(), ahead);
    save(&alice, changes);
    let mut memory = stored;
    let mut seen = Vec::new();
    for i in 0..3u8 {
        let m = group_encrypt_in(&mut memory, group, &[i], &mut rng).unwrap();
        seen.push(m.iteration());
        assert_eq!(decrypt(&bob, &sender, m.serialized()).unwrap(), [i]);
    }
    // A crash: the memory is gone, the durable record sends on from beyond every iteration
    // used, and members skip the unused one.
    let after = encrypt(&alice, &sender, group, b"after", &mut rng);
    let parsed = SenderKeyMessage::from_bytes(&after).unwrap();
    assert!(seen.iter().all(|i| *i < parsed.iteration()), "{seen:?} {}", parsed.iteration());
    assert_eq!(decrypt(&bob, &sender, &after).unwrap(), b"after");
    // A record that cannot send (a member's received chain) is not reserved.
    let theirs = block_on(bob.load_sender_key(&key)).unwrap().unwrap();
    assert!(reserve_ahead(&theirs, 4).is_err());
}

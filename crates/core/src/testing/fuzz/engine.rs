//! Fuzz bodies for the engine's receive path after decryption, and for Sender Keys with real
//! state.

use std::collections::BTreeMap;

use async_trait::async_trait;
use prost::Message;

use super::super::{SeededRng, now_or_never};
use crate::client::{AccountRecord, Client, Conversation, Event, GroupRecord};
use crate::devices::{
    DeviceIdentityDetails, DeviceList, DeviceListEntry, SignedDeviceIdentity, SignedDeviceList,
};
use crate::group_state::{GroupMember, GroupState, SignedGroupState};
use crate::sender_keys::{
    DistributionId, create_sender_key_distribution_message, group_decrypt,
    process_sender_key_distribution_message,
};
use crate::store::{
    Changes, ClientChanges, ClientStore, MemoryStore, ProtocolStore, SenderKeyName, SenderKeyStore,
};
use crate::transport::{RelayTransport, TransportError};
use crate::wire::content::Content;
use crate::wire::relay::{DeviceInfo, Devices, GroupStates, Response, Status, request, response};
use crate::wire::signal::SenderKeyMessage;
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId, ProtocolAddress};
use tandem_signal::{IdentityKey, IdentityKeyPair};

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const ALICE: AccountId = AccountId([1; 16]);
const BOB: AccountId = AccountId([2; 16]);
const MALLORY: AccountId = AccountId([3; 16]);
/// The group Alice and Bob are in.
const GROUP: [u8; 16] = [7; 16];

/// Three accounts and a group, made once per run.
struct Fixture {
    /// Alice's primary (the group's admin).
    alice: IdentityKeyPair,
    /// Bob's primary (the client under test).
    bob: IdentityKeyPair,
    /// Bob's companion (device 2, key index 1).
    bob2: IdentityKeyPair,
    /// Mallory's primary (a stranger to the group).
    mallory: IdentityKeyPair,
    devices: BTreeMap<AccountId, Devices>,
    /// The group's states: version 1 by Alice with Alice and Bob, version 2 adding Mallory
    /// (signed by Alice), and a version 2 Mallory signed herself.
    states: Vec<SignedGroupState>,
}

fn list(
    account: AccountId,
    key: &IdentityKeyPair,
    companion: Option<&IdentityKeyPair>,
    rng: &mut SeededRng,
) -> Devices {
    let mut entries = vec![DeviceListEntry { device_id: DeviceId::PRIMARY, key_index: 0 }];
    let mut devices = vec![DeviceInfo {
        device_id: 1,
        registration_id: 1,
        identity_key: key.identity_key().serialize().to_vec(),
        ..DeviceInfo::default()
    }];
    if let Some(c) = companion {
        let details = DeviceIdentityDetails {
            account_id: account,
            key_index: 1,
            identity_key: *c.identity_key(),
            timestamp: NOW,
        };
        let adv = SignedDeviceIdentity::sign_by_account(key, details, rng)
            .countersign(c, key.identity_key(), rng)
            .unwrap();
        entries.push(DeviceListEntry { device_id: DeviceId::new(2).unwrap(), key_index: 1 });
        devices.push(DeviceInfo {
            device_id: 2,
            registration_id: 2,
            identity_key: c.identity_key().serialize().to_vec(),
            adv_identity: adv.to_bytes(),
            ..DeviceInfo::default()
        });
    }
    let signed = SignedDeviceList::sign(
        key,
        DeviceList {
            account_id: account,
            version: 1,
            timestamp: NOW,
            expires_at: NOW.saturating_add(std::time::Duration::from_secs(86_400)),
            entries,
            revoked: Vec::new(),
        },
        rng,
    );
    Devices {
        account_id: account.0.to_vec(),
        account_identity_key: key.identity_key().serialize().to_vec(),
        signed_device_list: signed.to_bytes(),
        devices,
    }
}

fn state(version: u64, previous: [u8; 32], members: &[AccountId], signer: AccountId) -> GroupState {
    let mut members: Vec<GroupMember> =
        members.iter().map(|a| GroupMember { account_id: *a, admin: *a == ALICE }).collect();
    members.sort();
    GroupState {
        group_id: GROUP,
        version,
        previous,
        title: "fuzz".into(),
        members,
        signer,
        signer_device: DeviceId::PRIMARY,
        timestamp: 10 + version,
    }
}

/// The fixture (made once).
fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut rng = SeededRng::new(11);
        let alice = IdentityKeyPair::generate(&mut rng);
        let bob = IdentityKeyPair::generate(&mut rng);
        let bob2 = IdentityKeyPair::generate(&mut rng);
        let mallory = IdentityKeyPair::generate(&mut rng);
        let devices = [
            (ALICE, list(ALICE, &alice, None, &mut rng)),
            (BOB, list(BOB, &bob, Some(&bob2), &mut rng)),
            (MALLORY, list(MALLORY, &mallory, None, &mut rng)),
        ]
        .into();
        let v1 =
            SignedGroupState::sign(state(1, [0; 32], &[ALICE, BOB], ALICE), &alice, None, &mut rng)
                .unwrap();
        let v2 = SignedGroupState::sign(
            state(2, v1.digest(), &[ALICE, BOB, MALLORY], ALICE),
            &alice,
            None,
            &mut rng,
        )
        .unwrap();
        let forged = SignedGroupState::sign(
            state(2, v1.digest(), &[ALICE, BOB, MALLORY], MALLORY),
            &mallory,
            None,
            &mut rng,
        )
        .unwrap();
        Fixture { alice, bob, bob2, mallory, devices, states: vec![v1, v2, forged] }
    })
}

/// A relay that knows the fixture's accounts and the group's first version, and nothing else.
struct FixtureRelay;

fn ok(body: response::Body) -> Result<Response, TransportError> {
    Ok(Response { id: 0, status: Status::Ok as i32, message: String::new(), body: Some(body) })
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl RelayTransport for FixtureRelay {
    async fn request(&self, body: request::Body) -> Result<Response, TransportError> {
        let f = fixture();
        match body {
            request::Body::GetDevices(g) => {
                match AccountId::from_bytes(&g.account_id).ok().and_then(|a| f.devices.get(&a)) {
                    Some(d) => ok(response::Body::Devices(d.clone())),
                    None => Ok(Response {
                        id: 0,
                        status: Status::NotFound as i32,
                        ..Response::default()
                    }),
                }
            }
            request::Body::GetGroup(g) if g.group_id == GROUP => {
                ok(response::Body::GroupStates(GroupStates {
                    group_id: GROUP.to_vec(),
                    states: if g.after_version == 0 {
                        vec![f.states[0].as_bytes().to_vec()]
                    } else {
                        Vec::new()
                    },
                    latest_version: 1,
                    accepted: true,
                }))
            }
            request::Body::AcceptGroup(_) => {
                Ok(Response { id: 0, status: Status::Ok as i32, ..Response::default() })
            }
            _ => Ok(Response { id: 0, status: Status::NotFound as i32, ..Response::default() }),
        }
    }

    fn challenge(&self) -> Result<crate::auth::Challenge, crate::auth::ChallengeError> {
        Err(crate::auth::ChallengeError::BadNonce)
    }
}

/// Bob's primary, with the group at version 1, accepted.
fn bob_client() -> Client<MemoryStore> {
    let f = fixture();
    let store = MemoryStore::new(f.bob.clone(), 1);
    let account = AccountRecord::new(BOB, DeviceId::PRIMARY, "bob", *f.bob.identity_key(), NOW);
    let mut changes = ClientChanges { account: Some(account), ..ClientChanges::default() };
    changes.groups.insert(GROUP, GroupRecord { state: f.states[0].clone(), accepted: true });
    now_or_never(store.save_client_changes(changes)).unwrap();
    now_or_never(Client::open(store)).unwrap()
}

/// The receive path after decryption, on Bob's primary: byte 0 picks who sent the content
/// (Alice, the group's admin; Bob's own companion; or the stranger Mallory; pairwise or as
/// the group's sender-key message), the rest is a `Content`. Whatever happens, nobody speaks
/// for another account, only Bob's own devices report what Bob sent, a stranger never posts
/// into the group, hands out a key for it or changes it, and the group held is the first
/// version or the admin's signed successor.
pub fn client_receive(data: &[u8]) {
    let _ = receive_case(data);
}

/// [`client_receive`], returning the events and the group held (for the tests that show the
/// harness reaches past its guards).
fn receive_case(data: &[u8]) -> Option<(Vec<Event>, GroupRecord)> {
    let (&selector, rest) = data.split_first()?;
    let content = Content::decode(rest).ok()?;
    let f = fixture();
    let (sender, device, identity): (AccountId, u32, IdentityKey) = match selector & 3 {
        0 => (ALICE, 1, *f.alice.identity_key()),
        1 => (BOB, 2, *f.bob2.identity_key()),
        _ => (MALLORY, 1, *f.mallory.identity_key()),
    };
    let group = (selector & 4 != 0).then_some(GROUP);
    let client = bob_client();
    let device = DeviceId::new(device).ok()?;
    let events = now_or_never(client.apply_for_fuzzing(
        &FixtureRelay,
        &content,
        sender,
        device,
        identity,
        group,
        NOW,
    ))
    .ok()?;
    let record = now_or_never(client.group(GROUP)).unwrap().unwrap();
    for e in &events {
        match e {
            Event::Message(m) if m.notice.is_none() => {
                if m.outgoing {
                    assert_eq!(sender, BOB, "another account reported a message as Bob's: {m:?}");
                } else {
                    assert_eq!(m.id.sender, sender, "a message in another's name: {m:?}");
                }
                if sender == MALLORY {
                    assert_ne!(
                        m.conversation,
                        Conversation::Group(GROUP),
                        "a stranger posted into the group"
                    );
                }
            }
            Event::SenderKey { .. } if sender == MALLORY => {
                panic!("a stranger handed out a key for the group")
            }
            _ => {}
        }
    }
    let held = record.state.state();
    match held.version {
        1 => assert_eq!(record.state, f.states[0]),
        2 => {
            assert_eq!(record.state, f.states[1], "only the admin's change is taken");
            assert_eq!(sender, ALICE);
        }
        v => panic!("version {v} out of nowhere"),
    }
    Some((events, record))
}

/// Sender Keys with real state: a sender's chain handed to a receiver, then an arbitrary
/// schedule of sends, deliveries (in any order, twice, tampered), jumps ahead of the chain
/// (up to beyond what a receiver may skip) and a restart of the receiver from its stored
/// bytes. Every genuine message decrypts at most once, to what was sent; nothing panics.
pub fn group_decrypt_schedule(data: &[u8]) {
    let mut rng = SeededRng::new(data.len() as u64);
    let sender_store = MemoryStore::new(IdentityKeyPair::generate(&mut rng), 1);
    let mut receiver = MemoryStore::new(IdentityKeyPair::generate(&mut rng), 2);
    let sender = ProtocolAddress::new("sender", DeviceId::PRIMARY);
    let distribution = DistributionId(GROUP);
    let (skdm, changes) = now_or_never(create_sender_key_distribution_message(
        &sender_store,
        &sender,
        distribution,
        &mut rng,
    ))
    .unwrap();
    now_or_never(sender_store.save_changes(changes)).unwrap();
    let changes =
        now_or_never(process_sender_key_distribution_message(&receiver, &sender, &skdm)).unwrap();
    now_or_never(receiver.save_changes(changes)).unwrap();
    let key = SenderKeyName { sender: sender.clone(), distribution_id: distribution };
    let mut flight: Vec<(Vec<u8>, Vec<u8>, bool)> = Vec::new();
    let mut bytes = data.iter().copied();
    let mut sent = 0u32;
    while let Some(op) = bytes.next() {
        let arg = usize::from(bytes.next().unwrap_or(0));
        match op % 6 {
            0 | 1 => {
                sent += 1;
                let text = sent.to_le_bytes().to_vec();
                let (m, changes) = now_or_never(crate::sender_keys::group_encrypt(
                    &sender_store,
                    &sender,
                    distribution,
                    &text,
                    &mut rng,
                ))
                .unwrap()
                .into_parts();
                now_or_never(sender_store.save_changes(changes)).unwrap();
                flight.push((text, m.serialized().to_vec(), false));
            }
            2 | 3 if !flight.is_empty() => {
                let n = flight.len();
                let (text, m, done) = &mut flight[arg % n];
                let tamper = op % 6 == 3;
                let mut msg = m.clone();
                if tamper {
                    let i = arg % msg.len();
                    msg[i] ^= 1 << (arg % 8);
                }
                let decrypted = SenderKeyMessage::from_bytes(&msg)
                    .and_then(|m| now_or_never(group_decrypt(&receiver, &sender, &m)));
                if let Ok((plain, changes)) = decrypted {
                    assert!(!tamper || plain == *text, "a tampered message decrypted");
                    assert!(!*done, "a message decrypted twice");
                    assert_eq!(plain, *text);
                    now_or_never(receiver.save_changes(changes)).unwrap();
                    *done = true;
                }
            }
            4 => {
                // The sender's chain runs ahead by up to ~30 000 steps without anyone seeing
                // the messages: beyond what a receiver may skip at the far end.
                let steps = arg * 120;
                let mut record = now_or_never(sender_store.load_sender_key(&key)).unwrap().unwrap();
                record.skip_ahead(u32::try_from(steps).unwrap_or(u32::MAX));
                let mut changes = Changes::default();
                changes.sender_keys.insert(key.clone(), record);
                now_or_never(sender_store.save_changes(changes)).unwrap();
            }
            5 => {
                // The receiver restarts: its state comes back from the stored bytes.
                let record = now_or_never(receiver.load_sender_key(&key)).unwrap().unwrap();
                let restored =
                    crate::sender_keys::SenderKeyRecord::from_bytes(&record.to_bytes()).unwrap();
                let fresh = MemoryStore::new(
                    now_or_never(crate::store::IdentityKeyStore::load_identity_key_pair(&receiver))
                        .unwrap(),
                    2,
                );
                let mut changes = Changes::default();
                changes.sender_keys.insert(key.clone(), restored);
                now_or_never(fresh.save_changes(changes)).unwrap();
                receiver = fresh;
            }
            _ => {}
        }
    }
}

/// Starting inputs for the targets here.
pub(super) fn seeds(target: &str) -> Vec<Vec<u8>> {
    use crate::wire::content::{
        DataMessage, MessageRef, QuotedMessage, ReceiptMessage, ReceiptType, SentTranscript,
        SyncMessage, content::Body, sync_message::Kind,
    };
    let f = fixture();
    let mut rng = SeededRng::new(12);
    match target {
        "client_receive" => {
            let data = |group: bool| {
                Body::Data(DataMessage {
                    body: "hello".into(),
                    timestamp: NOW.as_millis() - 5,
                    group_id: if group { GROUP.to_vec() } else { Vec::new() },
                    // The group seed is a reply.
                    quote: group.then(|| QuotedMessage {
                        author: ALICE.0.to_vec(),
                        author_device: 1,
                        timestamp: NOW.as_millis() - 9,
                        text: "to alice".into(),
                    }),
                })
            };
            let skdm = {
                let store = MemoryStore::new(f.alice.clone(), 1);
                let me = ProtocolAddress::new("alice", DeviceId::PRIMARY);
                let (m, _) = now_or_never(create_sender_key_distribution_message(
                    &store,
                    &me,
                    DistributionId(GROUP),
                    &mut rng,
                ))
                .unwrap();
                m.serialized().to_vec()
            };
            let bodies = [
                data(false),
                data(true),
                Body::Sync(SyncMessage {
                    kind: Some(Kind::Sent(SentTranscript {
                        destination: ALICE.0.to_vec(),
                        message: Some(DataMessage {
                            body: "to alice".into(),
                            timestamp: NOW.as_millis() - 9,
                            group_id: Vec::new(),
                            quote: None,
                        }),
                    })),
                }),
                Body::Receipt(ReceiptMessage {
                    r#type: ReceiptType::Read as i32,
                    messages: vec![MessageRef { device: 1, timestamp: NOW.as_millis() - 9 }],
                }),
                Body::SenderKeyDistribution(skdm),
                Body::GroupUpdate(f.states[1].as_bytes().to_vec()),
                Body::GroupUpdate(f.states[2].as_bytes().to_vec()),
            ];
            let mut out = Vec::new();
            for body in bodies {
                let bytes = Content { body: Some(body) }.encode_to_vec();
                for selector in [0u8, 1, 2, 4, 5, 6] {
                    out.push([&[selector][..], &bytes].concat());
                }
            }
            out
        }
        "group_decrypt_schedule" => vec![
            vec![0, 0, 2, 0, 2, 0],
            vec![0, 0, 0, 0, 0, 0, 2, 2, 2, 0, 2, 1, 5, 0, 2, 1, 3, 7],
            vec![0, 0, 4, 3, 0, 0, 2, 1, 4, 255, 0, 0, 2, 2],
            vec![1, 0, 1, 0, 5, 0, 2, 0, 2, 1, 3, 1],
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::content::{DataMessage, content::Body};

    fn case(selector: u8, body: Body) -> (Vec<Event>, GroupRecord) {
        let bytes = Content { body: Some(body) }.encode_to_vec();
        receive_case(&[&[selector][..], &bytes].concat()).unwrap()
    }

    fn text(group: bool) -> Body {
        Body::Data(DataMessage {
            body: "hi".into(),
            timestamp: NOW.as_millis() - 5,
            group_id: if group { GROUP.to_vec() } else { Vec::new() },
            quote: None,
        })
    }

    #[test]
    fn test_the_harness_reaches_acceptance_and_refusal() {
        let f = fixture();
        // The admin's signed change is taken; Mallory's own version is not.
        let (_, held) = case(0, Body::GroupUpdate(f.states[1].as_bytes().to_vec()));
        assert_eq!(held.state, f.states[1]);
        let (_, held) = case(2, Body::GroupUpdate(f.states[2].as_bytes().to_vec()));
        assert_eq!(held.state, f.states[0]);
        // Alice posts into the group as its sender-key message and pairwise.
        let (events, _) = case(4, text(true));
        assert!(
            matches!(&events[..], [Event::Message(m)] if m.conversation == Conversation::Group(GROUP))
        );
        let (events, _) = case(0, text(false));
        assert!(matches!(&events[..], [Event::Message(m)] if m.id.sender == ALICE));
        // Mallory's group message is refused, her direct message arrives.
        let (events, _) = case(6, text(true));
        assert!(!events.iter().any(|e| matches!(e, Event::Message(_))));
        let (events, _) = case(2, text(false));
        assert!(matches!(&events[..], [Event::Message(m)] if m.id.sender == MALLORY));
    }
}

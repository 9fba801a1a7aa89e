//! Fuzz bodies for what an adversary hands a client as signed structures: device lists and
//! identities from the relay, group states, prekey bundles, sealed link messages and relay
//! proofs. Each takes the raw bytes through the parser, and also builds a *signed* structure
//! from the input, so that the checks behind the signatures are reached too.

use super::super::{SeededRng, now_or_never};
use crate::auth::{self, Challenge, Proof};
use crate::devices::{
    DeviceIdentityDetails, DeviceList, DeviceListEntry, KnownList, SignedDeviceIdentity,
    SignedDeviceList, verify_devices,
};
use crate::group_state::{GroupChange, GroupMember, GroupState, SignedGroupState};
use crate::store::MemoryStore;
use crate::wire::relay::{DeviceInfo, Devices, PreKeyBundleMessage};
use tandem_signal::Timestamp;
use tandem_signal::{AccountId, DeviceId, ProtocolAddress};
use tandem_signal::{IdentityKey, IdentityKeyPair};

const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// Reads the input a byte (or a few) at a time, with zeros past its end.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Keys made once per run: key generation per input would dwarf the code under test.
struct Keys {
    account: IdentityKeyPair,
    other: IdentityKeyPair,
    devices: Vec<IdentityKeyPair>,
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = SeededRng::new(7);
        Keys {
            account: IdentityKeyPair::generate(&mut rng),
            other: IdentityKeyPair::generate(&mut rng),
            devices: (0..4).map(|_| IdentityKeyPair::generate(&mut rng)).collect(),
        }
    })
}

/// Device lists and identities as a relay serves them: the raw parsers, then a list and
/// devices built from the input (signed by the account key, by another key, or not at all;
/// key indexes listed, revoked, repeated, mismatched) through `verify_devices` with what a
/// client knows (versions seen, revocations).
pub fn device_lists(data: &[u8]) {
    let _ = device_lists_case(data);
}

/// [`device_lists`], returning how many devices verified (`None`: refused).
fn device_lists_case(data: &[u8]) -> Option<usize> {
    if let Ok(l) = SignedDeviceList::from_bytes(data) {
        assert_eq!(SignedDeviceList::from_bytes(&l.to_bytes()).unwrap(), l);
    }
    if let Ok(i) = SignedDeviceIdentity::from_bytes(data) {
        assert_eq!(SignedDeviceIdentity::from_bytes(&i.to_bytes()).unwrap(), i);
    }
    let k = keys();
    let mut rng = SeededRng::new(1);
    let mut input = Input(data);
    let account_id = AccountId([9; 16]);
    let flags = input.byte();
    let mut entries = vec![DeviceListEntry { device_id: DeviceId::PRIMARY, key_index: 0 }];
    let mut devices = vec![DeviceInfo {
        device_id: 1,
        registration_id: 1,
        identity_key: if flags & 1 == 0 {
            k.account.identity_key()
        } else {
            k.other.identity_key()
        }
        .serialize()
        .to_vec(),
        ..DeviceInfo::default()
    }];
    let n = usize::from(input.byte() % 6);
    for _ in 0..n {
        let op = input.byte();
        let device_id = u32::from(input.byte() % 130);
        let key_index = u32::from(input.byte() % 8);
        let device_key = &k.devices[usize::from(op & 3)];
        let signer = if op & 4 == 0 { &k.account } else { &k.other };
        let details = DeviceIdentityDetails {
            account_id: if op & 8 == 0 { account_id } else { AccountId([1; 16]) },
            key_index,
            identity_key: *device_key.identity_key(),
            timestamp: NOW,
        };
        let adv = SignedDeviceIdentity::sign_by_account(signer, details, &mut rng);
        let adv = if op & 16 == 0 {
            adv.countersign(device_key, k.account.identity_key(), &mut rng)
                .map_or_else(|_| Vec::new(), |a| a.to_bytes())
        } else {
            adv.to_bytes()
        };
        let served_key = if op & 32 == 0 { device_key } else { &k.other };
        devices.push(DeviceInfo {
            device_id,
            registration_id: 1,
            identity_key: served_key.identity_key().serialize().to_vec(),
            adv_identity: adv,
            ..DeviceInfo::default()
        });
        if op & 64 == 0
            && let Ok(d) = DeviceId::new(device_id)
        {
            let listed = if op & 128 == 0 { key_index } else { key_index + 1 };
            entries.push(DeviceListEntry { device_id: d, key_index: listed });
        }
    }
    let mut revoked: Vec<u32> =
        (0..input.byte() % 4).map(|_| u32::from(input.byte() % 8)).collect();
    revoked.sort_unstable();
    revoked.dedup();
    let version = u64::from(input.byte());
    let expires_at =
        if flags & 2 == 0 { NOW.saturating_add(std::time::Duration::from_secs(60)) } else { NOW };
    let list = DeviceList { account_id, version, timestamp: NOW, expires_at, entries, revoked };
    let signer = if flags & 4 == 0 { &k.account } else { &k.other };
    let signed = SignedDeviceList::sign(signer, list, &mut rng);
    let response = Devices {
        account_id: if flags & 8 == 0 { account_id.0.to_vec() } else { vec![1; 16] },
        account_identity_key: k.account.identity_key().serialize().to_vec(),
        signed_device_list: if flags & 16 == 0 { signed.to_bytes() } else { Vec::new() },
        devices,
    };
    let seen = (flags & 32 != 0).then(|| u64::from(input.byte()));
    let known_revoked: Vec<u32> = if flags & 64 == 0 { Vec::new() } else { vec![1, 3] };
    let trusted = (flags & 128 != 0).then(|| *k.account.identity_key());
    let known = KnownList { account_key: trusted.as_ref(), version: seen, revoked: &known_revoked };
    let v = verify_devices(
        account_id,
        &response,
        known,
        NOW.saturating_add(std::time::Duration::from_secs(1)),
    )
    .ok()?;
    {
        // What verified: the primary is the account key; every companion is listed under
        // its own key index, never a revoked one, and was signed by the account key.
        for d in &v.devices {
            if d.device_id.is_primary() {
                assert_eq!(d.identity_key, *k.account.identity_key());
                continue;
            }
            assert!(v.list_version.is_some(), "a companion without a list");
            let info = response.devices.iter().find(|i| i.device_id == d.device_id.get()).unwrap();
            let adv = SignedDeviceIdentity::from_bytes(&info.adv_identity).unwrap();
            let details = adv.verify(k.account.identity_key()).unwrap();
            assert!(
                v.revoked.binary_search(&details.key_index).is_err(),
                "a revoked device verified"
            );
            assert!(known_revoked.binary_search(&details.key_index).is_err());
        }
        if let Some(seen) = seen {
            assert!(v.list_version.is_none_or(|l| l >= seen), "a rollback verified");
        }
    }
    Some(v.devices.len())
}

/// Group states: the raw parser, then states built from the input and signed by the admin,
/// a member or a stranger, checked as the first version and as the successor of a held one.
pub fn group_state(data: &[u8]) {
    if let Ok(s) = SignedGroupState::from_bytes(data) {
        assert_eq!(SignedGroupState::from_bytes(s.as_bytes()).unwrap(), s);
        let _ = s.verify(keys().account.identity_key());
        let _ = s.check_genesis();
    }
    let k = keys();
    let mut rng = SeededRng::new(2);
    let mut input = Input(data);
    let admin = AccountId([1; 16]);
    let member = AccountId([2; 16]);
    let held = GroupState {
        group_id: [5; 16],
        version: 1,
        previous: [0; 32],
        title: "held".into(),
        members: vec![
            GroupMember { account_id: admin, admin: true },
            GroupMember { account_id: member, admin: false },
        ],
        signer: admin,
        signer_device: DeviceId::PRIMARY,
        timestamp: 1,
    };
    let Ok(held) = SignedGroupState::sign(held, &k.account, None, &mut rng) else { return };
    while !input.is_empty() {
        let op = input.byte();
        let mut members: Vec<GroupMember> = (0..input.byte() % 5)
            .map(|_| GroupMember {
                account_id: AccountId([input.byte() % 4; 16]),
                admin: input.byte() & 1 == 1,
            })
            .collect();
        if op & 1 == 0 {
            members.sort();
            members.dedup_by_key(|m| m.account_id);
        }
        let title_len = usize::from(input.byte() % 8);
        let title = String::from_utf8_lossy(&input.bytes(title_len)).into_owned();
        let signer = [admin, member, AccountId([3; 16])][usize::from(op >> 1) % 3];
        let next = GroupState {
            group_id: if op & 8 == 0 { [5; 16] } else { [6; 16] },
            version: u64::from(input.byte() % 4),
            previous: if op & 16 == 0 { held.digest() } else { [input.byte(); 32] },
            title,
            members,
            signer,
            signer_device: DeviceId::PRIMARY,
            timestamp: u64::from(input.byte()),
        };
        let key = if op & 32 == 0 { &k.account } else { &k.other };
        let Ok(signed) = SignedGroupState::sign(next.clone(), key, None, &mut rng) else {
            continue;
        };
        let parsed = SignedGroupState::from_bytes(signed.as_bytes()).unwrap();
        assert_eq!(parsed.state(), &next);
        let verified = parsed.verify(k.account.identity_key()).is_ok();
        assert_eq!(verified, op & 32 == 0, "only the key that signed verifies");
        let follows = held.state().check_successor(&held.digest(), parsed.state()).is_ok();
        if follows {
            assert_eq!(parsed.state().version, 2);
            assert_eq!(parsed.state().previous, held.digest());
            let leaving = !parsed.state().is_member(&member) && parsed.state().members.len() == 1;
            assert!(
                signer == admin || (signer == member && leaving),
                "a change the signer may not make"
            );
        }
        let _ = parsed.check_genesis();
        let change = GroupChange::between(Some(held.state()), parsed.state());
        assert!(change.added.iter().all(|a| parsed.state().is_member(a)));
        assert!(change.removed.iter().all(|a| !parsed.state().is_member(a)));
    }
}

/// Hostile prekey bundles through `process_prekey_bundle`: as the relay sends them, and with
/// the keys re-signed by the identity they name, so the session set-up behind the signature
/// checks runs on arbitrary keys.
pub fn prekey_bundles(data: &[u8]) {
    use prost::Message;
    let Some((&flags, rest)) = data.split_first() else { return };
    let Ok(mut b) = PreKeyBundleMessage::decode(rest) else { return };
    let k = keys();
    let mut rng = SeededRng::new(3);
    if flags & 1 == 1 {
        // Signed by the identity it names, whatever the keys are.
        b.identity_key = k.other.identity_key().serialize().to_vec();
        if let Some(s) = b.signed_pre_key.as_mut() {
            s.signature = k.other.private_key().sign(&s.public_key, &mut rng).to_vec();
        }
        if let Some(s) = b.kyber.as_mut() {
            s.signature = k.other.private_key().sign(&s.public_key, &mut rng).to_vec();
        }
    }
    let Some(bundle) = crate::client::bundle_for_fuzzing(b) else { return };
    let store = MemoryStore::new(k.account.clone(), 1);
    let address = ProtocolAddress::new("peer", DeviceId::PRIMARY);
    if let Ok(changes) = now_or_never(crate::session::process_prekey_bundle(
        &store, &address, &bundle, NOW, &mut rng,
    )) {
        // A session came of it: it is with the identity the bundle named, and it encrypts.
        let session = changes.sessions.get(&address).unwrap();
        assert_eq!(*session.current().unwrap().remote_identity(), bundle.identity_key);
        now_or_never(crate::store::ProtocolStore::save_changes(&store, changes)).unwrap();
        let encrypted =
            now_or_never(crate::session::message_encrypt(&store, &address, b"x", NOW)).unwrap();
        now_or_never(encrypted.save(&store)).unwrap();
    }
}

/// The link message after both MACs: a harness that holds the linking secret seals
/// arbitrary plaintexts to a code, so the parsing and checks of `LinkRequest::open` run on
/// them. Whatever opens names this device and an account key that signed it.
pub fn link_message(data: &[u8]) {
    let _ = link_message_case(data);
}

/// [`link_message`], returning whether the message opened.
fn link_message_case(data: &[u8]) -> bool {
    static REQUEST: std::sync::OnceLock<crate::link::LinkRequest> = std::sync::OnceLock::new();
    let k = keys();
    let request = REQUEST.get_or_init(|| {
        let mut rng = SeededRng::new(4);
        crate::link::LinkRequest::new([1; 16], *k.devices[0].identity_key(), NOW, "fuzz", &mut rng)
    });
    let mut rng = SeededRng::new(5);
    let Ok((sealed, matching)) =
        crate::link::seal_bytes(request.code(), k.account.identity_key(), data, &mut rng)
    else {
        return false;
    };
    let Ok((link, opened)) = request.open(&sealed) else { return false };
    {
        assert_eq!(link.adv_identity.details().identity_key, *k.devices[0].identity_key());
        link.adv_identity.verify_account_signature(&link.account_key).unwrap();
        if link.account_key == *k.account.identity_key() {
            assert_eq!(opened, matching);
        }
    }
    true
}

/// Relay proofs: challenges and hosts from the input, proofs of every kind signed and then
/// checked against changed fields (all refused), and arbitrary signatures (never a panic).
pub fn relay_proofs(data: &[u8]) {
    let mut input = Input(data);
    let nonce_len = usize::from(input.byte() % 40);
    let nonce = input.bytes(nonce_len);
    let host_len = usize::from(input.byte());
    let host = String::from_utf8_lossy(&input.bytes(host_len)).into_owned();
    let _ = auth::host_of_url(&host);
    let Ok(challenge) = Challenge::new(&nonce, &host) else { return };
    let k = keys();
    let account = AccountId([input.byte(); 16]);
    let device = input.u32();
    let handle_len = usize::from(input.byte() % 40);
    let handle = String::from_utf8_lossy(&input.bytes(handle_len)).into_owned();
    let new_key: IdentityKey = *k.other.identity_key();
    let proofs = [
        Proof::Authenticate { account: &account, device },
        Proof::RegisterAccount { handle: &handle },
        Proof::RegisterDevice { account: &account },
        Proof::ResetAccount { account: &account, new_key: &new_key },
    ];
    let mut rng = SeededRng::new(6);
    let which = usize::from(input.byte() % 4);
    let signature = auth::sign(&k.account, &challenge, &proofs[which], &mut rng);
    assert!(auth::verify(k.account.identity_key(), &challenge, &proofs[which], &signature));
    for (i, p) in proofs.iter().enumerate() {
        assert_eq!(auth::verify(k.account.identity_key(), &challenge, p, &signature), i == which);
    }
    assert!(!auth::verify(k.other.identity_key(), &challenge, &proofs[which], &signature));
    let other_host = format!("{}x", challenge.host);
    if let Ok(elsewhere) = Challenge::new(&challenge.nonce, &other_host) {
        assert!(!auth::verify(k.account.identity_key(), &elsewhere, &proofs[which], &signature));
    }
    let forged = input.bytes(64);
    let _ = auth::verify(k.account.identity_key(), &challenge, &proofs[which], &forged);
}

/// A bundle as the relay serves it.
fn bundle_message(b: &crate::prekeys::PreKeyBundle) -> PreKeyBundleMessage {
    use crate::wire::relay::{KyberPreKeyMessage, OneTimePreKeyMessage, SignedPreKeyMessage};
    PreKeyBundleMessage {
        device_id: b.device_id.get(),
        registration_id: b.registration_id,
        identity_key: b.identity_key.serialize().to_vec(),
        signed_pre_key: Some(SignedPreKeyMessage {
            key_id: b.signed_pre_key_id.0,
            public_key: b.signed_pre_key.serialize().to_vec(),
            signature: b.signed_pre_key_signature.clone(),
        }),
        one_time: b.pre_key.as_ref().map(|(id, k)| OneTimePreKeyMessage {
            key_id: id.0,
            public_key: k.serialize().to_vec(),
        }),
        kyber: Some(KyberPreKeyMessage {
            key_id: b.kyber_pre_key_id.0,
            public_key: b.kyber_pre_key.serialize(),
            signature: b.kyber_pre_key_signature.clone(),
        }),
    }
}

/// Starting inputs for the targets here: valid structures, so the fuzzer begins past the
/// parsers.
pub(super) fn seeds(target: &str) -> Vec<Vec<u8>> {
    use prost::Message;
    let k = keys();
    let mut rng = SeededRng::new(8);
    match target {
        "device_lists" => vec![
            vec![0, 0, 0, 0],
            vec![0, 2, 0x00, 2, 1, 0x01, 3, 2, 0, 3],
            vec![0x20, 1, 0x00, 2, 1, 1, 1, 2, 5],
            vec![0xc0, 3, 0x00, 2, 1, 0x10, 3, 2, 0x40, 4, 3, 2, 1, 3, 9],
            vec![0x04, 1, 0x04, 2, 1, 0, 1],
            vec![0x28, 1, 0xa0, 2, 1, 0, 7, 3],
        ],
        "group_state" => vec![
            vec![0x00, 2, 0, 1, 2, 0, 2, b'a', b'b', 2, 3],
            vec![0x02, 1, 0, 1, 0, 2, 4],
            vec![0x04, 3, 0, 1, 1, 0, 3, 1, 3, b't', b'x', b'y', 2, 9],
            vec![0x20, 2, 0, 1, 1, 0, 0, 2, 1, 0x10, 0, 0, 2, 7, 1],
            vec![0x08, 0, 0, 2, 0],
        ],
        "prekey_bundles" => {
            let store = MemoryStore::new(k.other.clone(), 5);
            let with_one_time = now_or_never(super::super::publish_bundle(
                &store,
                DeviceId::PRIMARY,
                1,
                (true, false),
                NOW,
                &mut rng,
            ));
            let without = now_or_never(super::super::publish_bundle(
                &store,
                DeviceId::PRIMARY,
                2,
                (false, true),
                NOW,
                &mut rng,
            ));
            let mut out = Vec::new();
            for b in [with_one_time, without] {
                let bytes = bundle_message(&b).encode_to_vec();
                for flags in [0u8, 1] {
                    out.push([&[flags][..], &bytes].concat());
                }
            }
            out
        }
        "link_message" => {
            let details = DeviceIdentityDetails {
                account_id: AccountId([3; 16]),
                key_index: 1,
                identity_key: *k.devices[0].identity_key(),
                timestamp: NOW,
            };
            let good = crate::link::LinkMessage {
                account_id: vec![3; 16],
                handle: "alice".into(),
                account_key: k.account.identity_key().serialize().to_vec(),
                link_token: vec![9; 32],
                adv_identity: SignedDeviceIdentity::sign_by_account(
                    &k.account,
                    details.clone(),
                    &mut rng,
                )
                .to_bytes(),
                primary_name: "Chrome on Android".into(),
            };
            let by_other = crate::link::LinkMessage {
                adv_identity: SignedDeviceIdentity::sign_by_account(&k.other, details, &mut rng)
                    .to_bytes(),
                ..good.clone()
            };
            let wrong_account =
                crate::link::LinkMessage { account_id: vec![4; 16], ..good.clone() };
            vec![good.encode_to_vec(), by_other.encode_to_vec(), wrong_account.encode_to_vec()]
        }
        "relay_proofs" => vec![
            [&[32][..], &[7; 32], &[11], b"example.org", &[1], &[1, 0, 0, 0], &[5], b"alice", &[0]]
                .concat(),
            [&[16][..], &[1; 16], &[9], b"127.0.0.1", &[2], &[2, 0, 0, 0], &[3], b"bob", &[3]]
                .concat(),
            vec![0, 0],
        ],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_the_harnesses_reach_acceptance_and_refusal() {
        let lists: Vec<Option<usize>> =
            seeds("device_lists").iter().map(|s| device_lists_case(s)).collect();
        // The primary alone; companions under a list; and refusals.
        assert!(lists.contains(&Some(1)), "{lists:?}");
        assert!(lists.iter().any(|n| n.is_some_and(|n| n > 1)), "{lists:?}");
        assert!(lists.contains(&None), "{lists:?}");
        let links: Vec<bool> = seeds("link_message").iter().map(|s| link_message_case(s)).collect();
        assert_eq!(links, [true, false, false]);
    }
}

use super::*;

const SDP: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\na=fingerprint:sha-256 \
    0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9:0A:1B:2C:3D:4E:5F:60:71:82:93:A4:B5:C6:D7:E8:F9\r\n";

fn t(ms: u64) -> Timestamp {
    Timestamp::from_millis(1_800_000_000_000 + ms)
}

fn dev(n: u32) -> DeviceId {
    DeviceId::new(n).unwrap()
}

const ALICE: AccountId = AccountId([1; 16]);
const BOB: AccountId = AccountId([2; 16]);
const EVE: AccountId = AccountId([3; 16]);

/// One device of an account and its book.
struct Phone {
    account: AccountId,
    device: DeviceId,
    book: CallBook,
    updates: Vec<CallUpdate>,
    records: Vec<CallRecord>,
}

impl Phone {
    fn new(account: AccountId, device: u32) -> Self {
        Self {
            account,
            device: dev(device),
            book: CallBook::new(account, dev(device)),
            updates: Vec::new(),
            records: Vec::new(),
        }
    }

    fn keep(&mut self, e: Effects) -> Vec<CallSend> {
        self.updates.extend(e.updates);
        self.records.extend(e.records);
        e.sends
    }

    fn last(&self) -> &CallUpdate {
        self.updates.last().expect("an update")
    }
}

/// Delivers `sends` from `from` to every other phone as client fan-out would: the peer's
/// devices get `message` (an offer with each device's own secret from `seed`), the sender's
/// other devices `own`. Replies are delivered in turn.
fn deliver(
    phones: &mut [Phone],
    from: usize,
    sends: Vec<CallSend>,
    seed: Option<&CallSecret>,
    now: Timestamp,
) {
    let (account, device) = (phones[from].account, phones[from].device);
    for send in sends {
        for i in 0..phones.len() {
            if i == from {
                continue;
            }
            let to = phones[i].account;
            let message = if to == account {
                send.own.clone()
            } else if to == send.peer {
                let mut m = send.message.clone();
                if let (Some(seed), Some(call_message::Kind::Offer(o))) = (seed, &mut m.kind) {
                    o.secret = device_secret(seed, phones[i].device).0.to_vec();
                }
                m
            } else {
                continue;
            };
            let effects = phones[i].book.receive(account, device, &message, now);
            let replies = phones[i].keep(effects);
            deliver(phones, i, replies, None, now);
        }
    }
}

/// Alice (device 1) calls Bob (devices 1 and 2); Alice's device 2 hears of it. Returns the
/// phones [alice1, alice2, bob1, bob2], the call id and the seed.
fn call(video: bool) -> (Vec<Phone>, u64, CallSecret) {
    let mut phones =
        vec![Phone::new(ALICE, 1), Phone::new(ALICE, 2), Phone::new(BOB, 1), Phone::new(BOB, 2)];
    let seed = CallSecret([7; 32]);
    let offer =
        phones[0].book.start(BOB, 42, seed.clone(), SDP, video, t(0).as_millis(), t(0)).unwrap();
    let message =
        CallMessage { call_id: 42, peer: Vec::new(), kind: Some(call_message::Kind::Offer(offer)) };
    let send = CallSend {
        peer: BOB,
        own: CallMessage { peer: BOB.0.to_vec(), ..message.clone() },
        message,
    };
    deliver(&mut phones, 0, vec![send], Some(&seed), t(100));
    (phones, 42, seed)
}

fn secret_rung(p: &Phone) -> CallSecret {
    match p.updates.iter().find(|u| matches!(u, CallUpdate::Ringing { .. })) {
        Some(CallUpdate::Ringing { secret, .. }) => secret.clone(),
        _ => panic!("did not ring"),
    }
}

#[test]
fn test_every_callee_device_rings_with_its_own_secret_and_the_first_answer_wins() {
    let (mut phones, id, seed) = call(true);
    let (s1, s2) = (secret_rung(&phones[2]), secret_rung(&phones[3]));
    assert_ne!(s1, s2, "each device has its own secret");
    assert_eq!(s1, device_secret(&seed, dev(1)));
    assert!(matches!(phones[1].last(), CallUpdate::Elsewhere { connected: false, .. }));
    assert!(phones[0].updates.is_empty());

    // Bob's device 2 answers first.
    let e = phones[3].book.answer(id, SDP, true, t(2_000)).unwrap();
    let sends = phones[3].keep(e);
    deliver(&mut phones, 3, sends, None, t(2_000));
    match phones[0].last() {
        CallUpdate::Answered { device, secret, fingerprint, .. } => {
            assert_eq!(*device, dev(2));
            assert_eq!(*secret, s2, "the caller keys the call with the answering device's secret");
            assert_eq!(Some(*fingerprint), sdp_fingerprint(SDP));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        phones[2].last(),
        CallUpdate::Ended { reason: EndReason::AnsweredElsewhere, .. }
    ));
    assert!(matches!(phones[1].last(), CallUpdate::Elsewhere { connected: true, .. }));
    // Bob's device 1 cannot answer any more.
    assert_eq!(phones[2].book.answer(id, SDP, true, t(2_100)), Err(CallError::WrongState));

    // Alice hangs up after a minute: every device records the call.
    let e = phones[0].book.hang_up(id, t(62_000)).unwrap();
    let sends = phones[0].keep(e);
    deliver(&mut phones, 0, sends, None, t(62_000));
    assert!(matches!(phones[3].last(), CallUpdate::Ended { reason: EndReason::HungUp, .. }));
    let outcome = |p: &Phone| {
        p.records.iter().map(|r| (r.outcome, r.seconds, r.outgoing)).collect::<Vec<_>>()
    };
    assert_eq!(outcome(&phones[0]), [(CallOutcome::Completed, 60, true)]);
    assert_eq!(outcome(&phones[1]), [(CallOutcome::Completed, 0, true)]);
    assert_eq!(outcome(&phones[2]), [(CallOutcome::AnsweredElsewhere, 0, false)]);
    assert_eq!(outcome(&phones[3]), [(CallOutcome::Completed, 60, false)]);
    // Every line has the same id on every device.
    let ids: Vec<MessageId> = phones.iter().map(|p| p.records[0].id).collect();
    assert!(ids.iter().all(|i| *i == MessageId { sender: ALICE, device: dev(1), timestamp: t(0).as_millis() }));
}

#[test]
fn test_a_second_answer_is_hung_up_as_answered_elsewhere() {
    let (mut phones, id, _) = call(false);
    // Both answer before either hears of the other.
    let a1 = phones[2].book.answer(id, SDP, false, t(1_000)).unwrap();
    let a2 = phones[3].book.answer(id, SDP, false, t(1_000)).unwrap();
    let first = phones[0].book.receive(BOB, dev(1), &a1.sends[0].message, t(1_000));
    assert!(matches!(first.updates[0], CallUpdate::Answered { .. }));
    let second = phones[0].book.receive(BOB, dev(2), &a2.sends[0].message, t(1_000));
    assert!(second.updates.is_empty());
    match &second.sends[0].message.kind {
        Some(call_message::Kind::Hangup(h)) => {
            assert_eq!(h.reason, HangupReason::AnsweredElsewhere as i32);
            assert_eq!(h.device, 1);
        }
        other => panic!("{other:?}"),
    }
    let e = phones[3].book.receive(ALICE, dev(1), &second.sends[0].message, t(1_100));
    assert!(matches!(e.updates[0], CallUpdate::Ended { reason: EndReason::AnsweredElsewhere, .. }));
    assert_eq!(e.records[0].outcome, CallOutcome::AnsweredElsewhere);
    // The winner is not hung up by it.
    let e = phones[2].book.receive(ALICE, dev(1), &second.sends[0].message, t(1_100));
    assert!(e.updates.is_empty());
}

#[test]
fn test_declining_stops_every_device_and_the_caller() {
    let (mut phones, id, _) = call(false);
    let e = phones[2].book.decline(id).unwrap();
    let sends = phones[2].keep(e);
    deliver(&mut phones, 2, sends, None, t(3_000));
    assert!(matches!(phones[0].last(), CallUpdate::Ended { reason: EndReason::Declined, .. }));
    assert!(matches!(
        phones[3].last(),
        CallUpdate::Ended { reason: EndReason::DeclinedElsewhere, .. }
    ));
    for p in &phones {
        assert_eq!(p.records.len(), 1, "one line on every device");
        assert_eq!(p.records[0].outcome, CallOutcome::Declined);
    }
    assert!(!phones[0].book.busy());
}

#[test]
fn test_a_busy_callee_answers_busy_and_nobody_rings() {
    let mut phones = vec![Phone::new(ALICE, 1), Phone::new(BOB, 1), Phone::new(EVE, 1)];
    // Bob is calling Eve.
    phones[1].book.start(EVE, 7, CallSecret([1; 32]), SDP, false, t(0).as_millis(), t(0)).unwrap();
    let seed = CallSecret([2; 32]);
    let offer =
        phones[0].book.start(BOB, 8, seed.clone(), SDP, false, t(0).as_millis(), t(0)).unwrap();
    let message =
        CallMessage { call_id: 8, peer: vec![], kind: Some(call_message::Kind::Offer(offer)) };
    let send = CallSend { peer: BOB, own: message.clone(), message };
    deliver(&mut phones, 0, vec![send], Some(&seed), t(10));
    assert!(!phones[1].updates.iter().any(|u| matches!(u, CallUpdate::Ringing { .. })));
    assert!(matches!(phones[0].last(), CallUpdate::Ended { reason: EndReason::Busy, .. }));
    assert_eq!(phones[0].records[0].outcome, CallOutcome::Busy);
    assert_eq!(phones[1].records[0].outcome, CallOutcome::Missed);
    // And Bob's own call goes on.
    assert_eq!(phones[1].book.current(), Some(7));
}

#[test]
fn test_no_answer_in_45_seconds_is_a_missed_call_everywhere() {
    let (mut phones, _, _) = call(false);
    assert!(phones[0].book.tick(t(44_000)).sends.is_empty());
    let e = phones[0].book.tick(t(45_000));
    let sends = phones[0].keep(e);
    deliver(&mut phones, 0, sends, None, t(45_050));
    for p in &phones {
        assert_eq!(p.records.len(), 1);
        assert_eq!(p.records[0].outcome, CallOutcome::Missed);
    }
    assert!(matches!(phones[2].last(), CallUpdate::Ended { reason: EndReason::NoAnswer, .. }));
    // A callee that never hears the hangup stops ringing on its own.
    let (mut phones, _, _) = call(false);
    let e = phones[2].book.tick(t(45_200));
    assert_eq!(e.records[0].outcome, CallOutcome::Missed);
    assert!(e.sends.is_empty(), "only the caller tells the other side");
    assert_eq!(phones[2].book.next_deadline(), None);
}

#[test]
fn test_an_offer_that_arrives_late_does_not_ring() {
    let mut bob = Phone::new(BOB, 1);
    let offer = CallOffer {
        sdp: SDP.into(),
        fingerprint: vec![1; 32],
        video: false,
        secret: vec![5; 32],
        timestamp: t(0).as_millis(),
    };
    let m = CallMessage { call_id: 9, peer: vec![], kind: Some(call_message::Kind::Offer(offer)) };
    let e = bob.book.receive(ALICE, dev(1), &m, t(60_000));
    assert!(!e.updates.iter().any(|u| matches!(u, CallUpdate::Ringing { .. })));
    assert_eq!(e.records[0].outcome, CallOutcome::Missed);
    // Redelivered: nothing new.
    let e = bob.book.receive(ALICE, dev(1), &m, t(60_000));
    assert_eq!(e, Effects::default());
}

#[test]
fn test_strangers_and_other_devices_cannot_steer_a_call() {
    let (mut phones, id, _) = call(false);
    let hang = hangup(id, HangupReason::Normal, 0);
    // Eve hangs up Bob's ringing call: ignored.
    assert_eq!(phones[2].book.receive(EVE, dev(1), &hang, t(500)), Effects::default());
    // Eve answers Alice's call: ignored.
    let e = phones[2].book.answer(id, SDP, false, t(600)).unwrap();
    let answer = e.sends[0].message.clone();
    assert_eq!(phones[0].book.receive(EVE, dev(1), &answer, t(600)), Effects::default());
    let e = phones[0].book.receive(BOB, dev(1), &answer, t(600));
    assert!(matches!(e.updates[0], CallUpdate::Answered { .. }));
    // Now only Bob's device 1 speaks for the call: device 2's ICE and hangup are ignored.
    let ice = message(
        id,
        call_message::Kind::Ice(CallIce {
            to_device: 1,
            candidates: vec!["c".into()],
            generation: 0,
        }),
    );
    assert_eq!(phones[0].book.receive(BOB, dev(2), &ice, t(700)), Effects::default());
    assert_eq!(phones[0].book.receive(BOB, dev(2), &hang, t(700)), Effects::default());
    assert!(matches!(
        phones[0].book.receive(BOB, dev(1), &ice, t(700)).updates[0],
        CallUpdate::Candidates { .. }
    ));
    // A copy "from this account" naming no peer, or this account as the peer, is ignored.
    let bad = CallMessage { peer: ALICE.0.to_vec(), ..hang.clone() };
    assert_eq!(phones[0].book.receive(ALICE, dev(2), &bad, t(800)), Effects::default());
    // Oversized candidates are refused both ways.
    let many = vec!["x".repeat(MAX_CANDIDATE_LEN + 1)];
    assert!(phones[0].book.candidates(id, many, 0).is_err());
}

#[test]
fn test_mute_and_ice_restart_reach_only_the_other_end_of_a_connected_call() {
    let (mut phones, id, _) = call(true);
    // Before anyone answered there is nothing to renegotiate or mute.
    assert_eq!(phones[0].book.media(id, true, false), Err(CallError::WrongState));
    let e = phones[3].book.answer(id, SDP, true, t(1_000)).unwrap();
    let sends = phones[3].keep(e);
    deliver(&mut phones, 3, sends, None, t(1_000));

    // Bob mutes: Alice's device sees it; Bob's other device and Alice's other device do not.
    let e = phones[3].book.media(id, true, false).unwrap();
    let sends = phones[3].keep(e);
    let before: Vec<usize> = phones.iter().map(|p| p.updates.len()).collect();
    deliver(&mut phones, 3, sends, None, t(2_000));
    assert_eq!(
        phones[0].last(),
        &CallUpdate::Media { call_id: id, muted: true, camera_off: false }
    );
    for i in [1, 2] {
        assert_eq!(phones[i].updates.len(), before[i], "device {i} heard the mute");
    }

    // The callee cannot offer (only the caller restarts ICE), the caller can; the callee answers.
    assert_eq!(phones[3].book.renegotiate(id, SDP.into(), true, 1), Err(CallError::WrongState));
    let big = "x".repeat(MAX_SDP_LEN + 1);
    assert!(matches!(phones[0].book.renegotiate(id, big, true, 1), Err(CallError::Invalid(_))));
    let e = phones[0].book.renegotiate(id, SDP.into(), true, 1).unwrap();
    let offer = e.sends[0].message.clone();
    let u = phones[3].book.receive(ALICE, dev(1), &offer, t(3_000));
    assert_eq!(
        u.updates,
        [CallUpdate::Renegotiate { call_id: id, sdp: SDP.into(), offer: true, generation: 1 }]
    );
    // Bob's device that did not take the call, a stranger, and Alice's other device: ignored.
    assert_eq!(phones[2].book.receive(ALICE, dev(1), &offer, t(3_000)), Effects::default());
    assert_eq!(phones[3].book.receive(EVE, dev(1), &offer, t(3_000)), Effects::default());
    assert_eq!(phones[3].book.receive(ALICE, dev(2), &offer, t(3_000)), Effects::default());
    // An "offer" coming back from the callee is not taken as one.
    assert_eq!(phones[0].book.receive(BOB, dev(2), &offer, t(3_000)), Effects::default());
    let e = phones[3].book.renegotiate(id, SDP.into(), false, 1).unwrap();
    let u = phones[0].book.receive(BOB, dev(2), &e.sends[0].message, t(3_100));
    assert!(matches!(&u.updates[..], [CallUpdate::Renegotiate { offer: false, .. }]));
}

#[test]
fn test_a_flood_of_offers_is_bounded() {
    let mut bob = Phone::new(BOB, 1);
    let mut rung = 0;
    for i in 0..100u64 {
        let offer = CallOffer {
            sdp: SDP.into(),
            fingerprint: vec![1; 32],
            video: false,
            secret: vec![5; 32],
            timestamp: t(0).as_millis(),
        };
        let m = CallMessage {
            call_id: i + 1,
            peer: vec![],
            kind: Some(call_message::Kind::Offer(offer)),
        };
        let e = bob.book.receive(EVE, dev(1), &m, t(10));
        rung += e.updates.iter().filter(|u| matches!(u, CallUpdate::Ringing { .. })).count();
    }
    assert_eq!(rung, MAX_CALLS);
    assert_eq!(bob.book.calls.len(), MAX_CALLS);
}

#[test]
fn test_sdp_fingerprints_parse_strictly() {
    assert_eq!(sdp_fingerprint(SDP).unwrap()[..2], [0x0a, 0x1b]);
    assert_eq!(sdp_fingerprint("a=fingerprint:sha-1 00:11"), None);
    assert_eq!(sdp_fingerprint("a=fingerprint:sha-256 0A:1B"), None);
    assert_eq!(parse_fingerprint(&["zz"; 32].join(":")), None);
    assert_eq!(parse_fingerprint(&["00"; 33].join(":")), None);
    assert!(fingerprints_match(&[1; 32], &[1; 32]));
    assert!(!fingerprints_match(&[1; 32], &[2; 32]));
    assert!(!fingerprints_match(&[], &[]));
    let mut book = CallBook::new(ALICE, dev(1));
    assert!(book.start(BOB, 1, CallSecret([0; 32]), "v=0", false, 0, t(0)).is_err());
    assert!(book.start(ALICE, 1, CallSecret([0; 32]), SDP, false, 0, t(0)).is_err());
}

#[test]
fn test_frames_flow_both_ways_and_a_wrong_secret_opens_nothing() {
    let secret = CallSecret([9; 32]);
    let mut caller = FrameCrypter::new(&secret, Role::Caller);
    let mut callee = FrameCrypter::new(&secret, Role::Callee);
    let key_frame: Vec<u8> = (0..3000u32).map(|i| i.to_le_bytes()[0]).collect();
    let sent = caller.protect(MediaKind::Video, true, &key_frame).unwrap();
    assert_eq!(&sent[..10], &key_frame[..10], "the codec header stays readable");
    assert_ne!(&sent[10..30], &key_frame[10..30]);
    assert_eq!(callee.unprotect(MediaKind::Video, true, &sent).unwrap(), key_frame);
    let audio = caller.protect(MediaKind::Audio, false, b"\x78opus").unwrap();
    assert_eq!(callee.unprotect(MediaKind::Audio, false, &audio).unwrap(), b"\x78opus");
    // Audio under the video key, a replay, a frame from oneself: all dropped.
    assert!(callee.unprotect(MediaKind::Video, false, &audio).is_err());
    assert_eq!(callee.unprotect(MediaKind::Audio, false, &audio), Err(SframeError::Replayed));
    let back = callee.protect(MediaKind::Audio, false, b"\x78back").unwrap();
    assert!(callee.unprotect(MediaKind::Audio, false, &back).is_err());
    assert_eq!(caller.unprotect(MediaKind::Audio, false, &back).unwrap(), b"\x78back");
    // A device holding another secret decodes nothing.
    let mut intruder = FrameCrypter::new(&CallSecret([8; 32]), Role::Callee);
    for i in 0..20u8 {
        let f = caller.protect(MediaKind::Video, false, &[i; 500]).unwrap();
        assert_eq!(intruder.unprotect(MediaKind::Video, false, &f), Err(SframeError::Unauthentic));
    }
    assert_eq!(intruder.counts(), FrameCounts { unauthentic: 20, ..FrameCounts::default() });
    assert_eq!(callee.counts().opened, 2);
    // Empty frames (no media) pass as they are; frames shorter than their clear prefix
    // still authenticate.
    assert_eq!(caller.protect(MediaKind::Audio, false, b"").unwrap(), b"");
    assert_eq!(callee.unprotect(MediaKind::Audio, false, b"").unwrap(), b"");
    let tiny = caller.protect(MediaKind::Video, true, b"abc").unwrap();
    assert_eq!(callee.unprotect(MediaKind::Video, true, &tiny).unwrap(), b"abc");
}

/// The media worker's path: AES-GCM outside the crate under the exported keys, headers,
/// counters and the replay window here.
fn seal_outside(
    keys: &[(u64, zeroize::Zeroizing<[u8; 16]>)],
    plan: &FramePlan,
    body: &[u8],
) -> Vec<u8> {
    use aes_gcm::aead::{Aead as _, KeyInit, Payload};
    let key = &keys.iter().find(|(k, _)| *k == plan.aead.frame.kid).unwrap().1;
    let cipher = aes_gcm::Aes128Gcm::new(&(**key).into());
    cipher.encrypt(&plan.aead.nonce.into(), Payload { msg: body, aad: &plan.aead.aad }).unwrap()
}

fn open_outside(
    keys: &[(u64, zeroize::Zeroizing<[u8; 16]>)],
    plan: &FramePlan,
    sealed: &[u8],
) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead as _, KeyInit, Payload};
    let key = &keys.iter().find(|(k, _)| *k == plan.aead.frame.kid)?.1;
    let cipher = aes_gcm::Aes128Gcm::new(&(**key).into());
    cipher.decrypt(&plan.aead.nonce.into(), Payload { msg: sealed, aad: &plan.aead.aad }).ok()
}

#[test]
fn test_frames_sealed_and_opened_by_an_outside_aes_gcm_match_the_built_in_path() {
    let secret = CallSecret([4; 32]);
    let mut caller = FrameCrypter::new(&secret, Role::Caller);
    let mut twin = FrameCrypter::new(&secret, Role::Caller);
    let mut callee = FrameCrypter::new(&secret, Role::Callee);
    let caller_keys = caller.aes_keys();
    let callee_keys = callee.aes_keys();
    assert_eq!(caller_keys.len(), 4);
    for (kind, key_frame, frame) in [
        (MediaKind::Video, true, vec![7u8; 2000]),
        (MediaKind::Video, false, b"abc".to_vec()),
        (MediaKind::Audio, false, b"\x78o".to_vec()),
        (MediaKind::Audio, false, vec![1u8; 160]),
    ] {
        let head = &frame[..frame.len().min(PLAN_HEAD)];
        let plan = caller.seal_plan(kind, key_frame, frame.len(), head).unwrap().unwrap();
        let mut sent = frame[..plan.clear].to_vec();
        sent.extend_from_slice(plan.aead.header());
        sent.extend(seal_outside(&caller_keys, &plan, &frame[plan.clear..]));
        assert_eq!(sent, twin.protect(kind, key_frame, &frame).unwrap());
        // Opening outside: the first plan that authenticates wins; a replay is refused.
        let plans = callee
            .open_plans(kind, key_frame, sent.len(), &sent[..sent.len().min(PLAN_HEAD)])
            .unwrap();
        let (plan, body) = plans
            .iter()
            .find_map(|p| Some((p, open_outside(&callee_keys, p, &sent[p.body_start()..])?)))
            .unwrap();
        callee.opened(plan.aead.frame).unwrap();
        assert_eq!([&sent[..plan.clear], &body[..]].concat(), frame);
        assert_eq!(callee.opened(plan.aead.frame), Err(SframeError::Replayed));
        assert_eq!(
            callee.open_plans(kind, key_frame, sent.len(), &sent),
            Err(SframeError::Replayed)
        );
        // Too little of the frame's start to plan with.
        assert_eq!(
            callee.open_plans(kind, key_frame, sent.len(), &sent[..2]),
            Err(SframeError::MalformedHeader)
        );
    }
    assert_eq!(caller.seal_plan(MediaKind::Audio, false, 0, b""), Ok(None));
    assert_eq!(
        caller.seal_plan(MediaKind::Video, true, 100, b"ab"),
        Err(SframeError::MalformedHeader)
    );
    assert_eq!(callee.counts(), FrameCounts { opened: 4, replayed: 4, ..FrameCounts::default() });
}

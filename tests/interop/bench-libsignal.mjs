// libsignal 0.90 (native code under Node, the path Signal Desktop takes) on the cases of
// tandem's side-by-side protocol benchmark (scripts/bench-protocol runs both). One sender
// and N devices, all in memory:
//   setup           the sender starts a session from each device's bundle (PQXDH)
//   prekey_decrypt  each device decrypts the sender's first (PreKey) message
//   fan_out         the sender encrypts one message for all N devices (established sessions)
//   decrypt_new_chain  each device decrypts that message (one DH ratchet step after its reply)
//   decrypt_steady  each device decrypts the next message on that chain
//   sender_key_encrypt  the sender encrypts N group messages with its sender key
// Prints one JSON line: microseconds per operation, the median of ROUNDS rounds.
// Usage: node bench-libsignal.mjs [N] [ROUNDS]

import * as SC from '@signalapp/libsignal-client';
import { Stores } from './stores.mjs';

const N = Number(process.argv[2] ?? 1000);
const ROUNDS = Number(process.argv[3] ?? 3);
const now = () => process.hrtime.bigint();
const us = (t0, n) => Number(now() - t0) / 1000 / n;
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

function device(name, id) {
  const identity = SC.IdentityKeyPair.generate();
  const stores = new Stores(identity, id);
  const spk = SC.PrivateKey.generate();
  const spkSig = identity.privateKey.sign(spk.getPublicKey().serialize());
  stores.signedPreKeys.set(1, SC.SignedPreKeyRecord.new(1, Date.now(), spk.getPublicKey(), spk, spkSig));
  const kem = SC.KEMKeyPair.generate();
  const kemSig = identity.privateKey.sign(kem.getPublicKey().serialize());
  stores.kyberPreKeys.set(1, SC.KyberPreKeyRecord.new(1, Date.now(), kem, kemSig));
  const pre = SC.PrivateKey.generate();
  stores.preKeys.set(1, SC.PreKeyRecord.new(1, pre.getPublicKey(), pre));
  const bundle = SC.PreKeyBundle.new(id, 1, 1, pre.getPublicKey(), 1, spk.getPublicKey(), spkSig,
    identity.publicKey, 1, kem.getPublicKey(), kemSig);
  return { stores, address: SC.ProtocolAddress.new(name, 1), bundle };
}

async function round() {
  const sender = device('sender', 1);
  const peers = Array.from({ length: N }, (_, i) => device(`peer${i}`, i + 2));
  const s = sender.stores;
  const out = {};

  let t0 = now();
  for (const p of peers) await SC.processPreKeyBundle(p.bundle, p.address, s.sessionStore, s.identityStore);
  out.setup = us(t0, N);

  const first = [];
  for (const p of peers) first.push(await SC.signalEncrypt(Buffer.from('hello'), p.address, s.sessionStore, s.identityStore));
  t0 = now();
  for (let i = 0; i < N; i++) {
    const p = peers[i].stores;
    await SC.signalDecryptPreKey(SC.PreKeySignalMessage.deserialize(first[i].serialize()), sender.address,
      p.sessionStore, p.identityStore, p.preKeyStore, p.signedPreKeyStore, p.kyberPreKeyStore);
  }
  out.prekey_decrypt = us(t0, N);

  // Each device answers once, so the sender's sessions are established (Whisper messages).
  for (const p of peers) {
    const reply = await SC.signalEncrypt(Buffer.from('hi'), sender.address, p.stores.sessionStore, p.stores.identityStore);
    await SC.signalDecrypt(SC.SignalMessage.deserialize(reply.serialize()), p.address, s.sessionStore, s.identityStore);
  }
  const body = Buffer.alloc(200, 7);
  const copies = [];
  t0 = now();
  for (const p of peers) copies.push(await SC.signalEncrypt(body, p.address, s.sessionStore, s.identityStore));
  out.fan_out = us(t0, N);

  t0 = now();
  for (let i = 0; i < N; i++) {
    const p = peers[i].stores;
    await SC.signalDecrypt(SC.SignalMessage.deserialize(copies[i].serialize()), sender.address, p.sessionStore, p.identityStore);
  }
  out.decrypt_new_chain = us(t0, N);

  // A second message on the same chain: the steady case, no ratchet step.
  const again = [];
  for (const p of peers) again.push(await SC.signalEncrypt(body, p.address, s.sessionStore, s.identityStore));
  t0 = now();
  for (let i = 0; i < N; i++) {
    const p = peers[i].stores;
    await SC.signalDecrypt(SC.SignalMessage.deserialize(again[i].serialize()), sender.address, p.sessionStore, p.identityStore);
  }
  out.decrypt_steady = us(t0, N);

  const distribution = '123e4567-e89b-42d3-a456-426614174000';
  await SC.SenderKeyDistributionMessage.create(sender.address, distribution, s.senderKeyStore);
  t0 = now();
  for (let i = 0; i < N; i++) await SC.groupEncrypt(sender.address, distribution, s.senderKeyStore, body);
  out.sender_key_encrypt = us(t0, N);
  return out;
}

const rounds = [];
for (let r = 0; r < ROUNDS; r++) rounds.push(await round());
const result = {};
for (const k of Object.keys(rounds[0])) result[k] = median(rounds.map((r) => r[k]));
console.log(JSON.stringify({ impl: 'libsignal-node', devices: N, rounds: ROUNDS, us_per_op: result }));

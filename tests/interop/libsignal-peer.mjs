// The real libsignal 0.90.0 as a protocol peer for tandem-core's interop tests.
//
// One process is one device. It reads JSON commands, one per line, from stdin and answers
// each with one JSON line on stdout: {"ok": true, ...} or {"ok": false, "error": "..."}.
// All bytes are hex. Stores are in memory, implemented on libsignal's store interfaces.
//
// Commands: init {name, device}; bundle {one_time, last_resort}; process_bundle {address,
// bundle}; encrypt {address, plaintext}; decrypt {address, type, body}; archive {address};
// skdm_create {distribution_id}; skdm_process {address, body}; group_encrypt
// {distribution_id, plaintext}; group_decrypt {address, body}; fingerprint {...};
// identity {}.

import * as readline from 'node:readline';
import * as SC from '@signalapp/libsignal-client';

import { Stores, addr, bytes, hex } from './stores.mjs';

let me = null;
let nextId = 1;

const commands = {
  init({ name, device }) {
    const identity = SC.IdentityKeyPair.generate();
    me = { name, device, stores: new Stores(identity, 1 + Math.floor(Math.random() * 16380)) };
    return { identity_key: hex(identity.publicKey.serialize()), registration_id: me.stores.registrationId };
  },
  identity() {
    return { identity_key: hex(me.stores.identity.publicKey.serialize()), private_key: hex(me.stores.identity.privateKey.serialize()) };
  },
  bundle({ one_time = true, last_resort = false }) {
    const s = me.stores;
    const id = nextId++;
    const now = Date.now();
    const spk = SC.PrivateKey.generate();
    const spkSig = s.identity.privateKey.sign(spk.getPublicKey().serialize());
    s.signedPreKeys.set(id, SC.SignedPreKeyRecord.new(id, now, spk.getPublicKey(), spk, spkSig));
    const kem = SC.KEMKeyPair.generate();
    const kemSig = s.identity.privateKey.sign(kem.getPublicKey().serialize());
    s.kyberPreKeys.set(id, SC.KyberPreKeyRecord.new(id, now, kem, kemSig));
    if (last_resort) s.lastResort.add(id);
    let preKey = null;
    if (one_time) {
      preKey = SC.PrivateKey.generate();
      s.preKeys.set(id, SC.PreKeyRecord.new(id, preKey.getPublicKey(), preKey));
    }
    return {
      registration_id: s.registrationId,
      device_id: me.device,
      pre_key_id: one_time ? id : null,
      pre_key: one_time ? hex(preKey.getPublicKey().serialize()) : null,
      signed_pre_key_id: id,
      signed_pre_key: hex(spk.getPublicKey().serialize()),
      signed_pre_key_signature: hex(spkSig),
      kyber_pre_key_id: id,
      kyber_pre_key: hex(kem.getPublicKey().serialize()),
      kyber_pre_key_signature: hex(kemSig),
      identity_key: hex(s.identity.publicKey.serialize()),
    };
  },
  async process_bundle({ address, bundle: b }) {
    const bundle = SC.PreKeyBundle.new(
      b.registration_id, b.device_id, b.pre_key_id ?? null, b.pre_key ? SC.PublicKey.deserialize(bytes(b.pre_key)) : null,
      b.signed_pre_key_id, SC.PublicKey.deserialize(bytes(b.signed_pre_key)), bytes(b.signed_pre_key_signature),
      SC.PublicKey.deserialize(bytes(b.identity_key)), b.kyber_pre_key_id,
      SC.KEMPublicKey.deserialize(bytes(b.kyber_pre_key)), bytes(b.kyber_pre_key_signature));
    await SC.processPreKeyBundle(bundle, addr(address), me.stores.sessionStore, me.stores.identityStore);
    return {};
  },
  async encrypt({ address, plaintext }) {
    const m = await SC.signalEncrypt(bytes(plaintext), addr(address), me.stores.sessionStore, me.stores.identityStore);
    return { type: m.type(), body: hex(m.serialize()) };
  },
  async decrypt({ address, type, body }) {
    const s = me.stores;
    let plain;
    if (type === SC.CiphertextMessageType.PreKey) {
      plain = await SC.signalDecryptPreKey(SC.PreKeySignalMessage.deserialize(bytes(body)), addr(address),
        s.sessionStore, s.identityStore, s.preKeyStore, s.signedPreKeyStore, s.kyberPreKeyStore);
    } else {
      plain = await SC.signalDecrypt(SC.SignalMessage.deserialize(bytes(body)), addr(address), s.sessionStore, s.identityStore);
    }
    return { plaintext: hex(plain) };
  },
  async archive({ address }) {
    const r = await me.stores.sessionStore.getSession(addr(address));
    if (r) {
      r.archiveCurrentState();
      await me.stores.sessionStore.saveSession(addr(address), r);
    }
    return {};
  },
  async skdm_create({ distribution_id }) {
    const m = await SC.SenderKeyDistributionMessage.create(addr(me), distribution_id, me.stores.senderKeyStore);
    return { body: hex(m.serialize()) };
  },
  async skdm_process({ address, body }) {
    await SC.processSenderKeyDistributionMessage(addr(address), SC.SenderKeyDistributionMessage.deserialize(bytes(body)), me.stores.senderKeyStore);
    return {};
  },
  async group_encrypt({ distribution_id, plaintext }) {
    const m = await SC.groupEncrypt(addr(me), distribution_id, me.stores.senderKeyStore, bytes(plaintext));
    return { body: hex(m.serialize()) };
  },
  async group_decrypt({ address, body }) {
    return { plaintext: hex(await SC.groupDecrypt(addr(address), me.stores.senderKeyStore, bytes(body))) };
  },
  fingerprint({ version, iterations, local_id, local_key, remote_id, remote_key }) {
    const fp = SC.Fingerprint.new(iterations, version, bytes(local_id), SC.PublicKey.deserialize(bytes(local_key)),
      bytes(remote_id), SC.PublicKey.deserialize(bytes(remote_key)));
    return { displayable: fp.displayableFingerprint().toString(), scannable: hex(fp.scannableFingerprint().toBuffer()) };
  },
};

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    const cmd = JSON.parse(line);
    const f = commands[cmd.op];
    if (!f) throw new Error(`unknown op ${cmd.op}`);
    reply = { ok: true, ...(await f(cmd)) };
  } catch (e) {
    reply = { ok: false, error: `${e?.name ?? 'Error'}: ${e?.message ?? e}` };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}

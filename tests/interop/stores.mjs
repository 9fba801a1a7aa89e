// In-memory stores on libsignal's store interfaces, shared by the interop peer and the
// side-by-side benchmark.

import * as SC from '@signalapp/libsignal-client';

export const hex = (b) => Buffer.from(b).toString('hex');
export const bytes = (h) => new Uint8Array(Buffer.from(h, 'hex'));
export const key = (a) => `${a.name}.${a.device}`;
export const addr = (a) => SC.ProtocolAddress.new(a.name, a.device);

export class Stores {
  constructor(identity, registrationId) {
    this.identity = identity;
    this.registrationId = registrationId;
    this.identities = new Map();
    this.sessions = new Map();
    this.preKeys = new Map();
    this.signedPreKeys = new Map();
    this.kyberPreKeys = new Map();
    this.kyberUsed = new Set();
    this.lastResort = new Set();
    this.senderKeys = new Map();
    const self = this;
    this.identityStore = new (class extends SC.IdentityKeyStore {
      async getIdentityKey() { return self.identity.privateKey; }
      async getLocalRegistrationId() { return self.registrationId; }
      async saveIdentity(name, k) {
        const old = self.identities.get(name.toString());
        self.identities.set(name.toString(), k);
        return old && !old.equals(k) ? SC.IdentityChange.ReplacedExisting : SC.IdentityChange.NewOrUnchanged;
      }
      async isTrustedIdentity(name, k) {
        const old = self.identities.get(name.toString());
        return !old || old.equals(k);
      }
      async getIdentity(name) { return self.identities.get(name.toString()) ?? null; }
    })();
    this.sessionStore = new (class extends SC.SessionStore {
      async saveSession(name, record) { self.sessions.set(name.toString(), record.serialize()); }
      async getSession(name) {
        const s = self.sessions.get(name.toString());
        return s ? SC.SessionRecord.deserialize(s) : null;
      }
      async getExistingSessions(names) { return Promise.all(names.map((n) => this.getSession(n))); }
    })();
    this.preKeyStore = new (class extends SC.PreKeyStore {
      async savePreKey(id, r) { self.preKeys.set(id, r); }
      async getPreKey(id) {
        const r = self.preKeys.get(id);
        if (!r) throw new Error(`no prekey ${id}`);
        return r;
      }
      async removePreKey(id) { self.preKeys.delete(id); }
    })();
    this.signedPreKeyStore = new (class extends SC.SignedPreKeyStore {
      async saveSignedPreKey(id, r) { self.signedPreKeys.set(id, r); }
      async getSignedPreKey(id) {
        const r = self.signedPreKeys.get(id);
        if (!r) throw new Error(`no signed prekey ${id}`);
        return r;
      }
    })();
    this.kyberPreKeyStore = new (class extends SC.KyberPreKeyStore {
      async saveKyberPreKey(id, r) { self.kyberPreKeys.set(id, r); }
      async getKyberPreKey(id) {
        const r = self.kyberPreKeys.get(id);
        if (!r) throw new Error(`no kyber prekey ${id}`);
        return r;
      }
      async markKyberPreKeyUsed(id, signedId, baseKey) {
        if (self.lastResort.has(id)) {
          const use = `${id}/${signedId}/${hex(baseKey.serialize())}`;
          if (self.kyberUsed.has(use)) throw new Error('kyber prekey reused with the same base key');
          self.kyberUsed.add(use);
        } else {
          self.kyberPreKeys.delete(id);
        }
      }
    })();
    this.senderKeyStore = new (class extends SC.SenderKeyStore {
      async saveSenderKey(sender, dist, record) { self.senderKeys.set(`${sender.toString()}/${dist}`, record.serialize()); }
      async getSenderKey(sender, dist) {
        const r = self.senderKeys.get(`${sender.toString()}/${dist}`);
        return r ? SC.SenderKeyRecord.deserialize(r) : null;
      }
    })();
  }
}

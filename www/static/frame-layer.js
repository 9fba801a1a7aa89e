// The end-to-end frame layer of a call, as the media worker runs it on every encoded frame
// (crates/web/src/call/media.rs has the protocol side). Audio frames are small: they go all
// through the app's WebAssembly. Video frames go through WebCrypto's AES-GCM (hardware AES,
// several times faster than AES in wasm), with the SFrame header, counters and replay window
// still kept in wasm: wasm plans each frame, WebCrypto seals or opens it, and a received
// frame counts as seen only once it authenticated. Without WebCrypto, video goes the wasm
// way too.
// WebCrypto's AES-GCM parameters for a plan (crates/web/src/call/media.rs, `plan_object`).
const aesGcm = (plan) => ({ name: 'AES-GCM', iv: plan.iv, additionalData: plan.aad, tagLength: 128 });

// The parts one after another, as an ArrayBuffer.
function joined(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out.buffer;
}

export class FrameLayer {
  constructor(bindings) {
    this.b = bindings;
    this.keys = null; // kid → CryptoKey, for the WebCrypto way
    this.head = bindings.tandem_media_plan_head();
    this.keyed = false;
    this.generation = 0;
  }

  // Keys the layer with the call's 32-byte secret; imports the AES keys into WebCrypto as
  // keys that cannot be exported, and zeroes the copies.
  async key(secret, caller) {
    const generation = ++this.generation;
    this.keys = null;
    this.keyed = this.b.tandem_media_key(secret, caller);
    secret.fill(0);
    if (!this.keyed) return;
    const subtle = self.crypto && self.crypto.subtle;
    if (!subtle) return;
    const keys = new Map();
    try {
      for (const [kid, raw] of this.b.tandem_media_aes_keys()) {
        keys.set(kid, await subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']));
        raw.fill(0);
      }
    } catch {
      return; // the wasm way
    }
    if (generation === this.generation) this.keys = keys;
  }

  end() {
    this.generation++;
    this.keys = null;
    this.keyed = false;
    this.b.tandem_media_end();
  }

  // Which AES-GCM video frames go through: 'webcrypto', 'wasm', or '' before a key.
  videoAes() {
    if (this.keys) return 'webcrypto';
    return this.generation > 0 && this.keyed ? 'wasm' : '';
  }

  counts() {
    return Array.from(this.b.tandem_media_counts());
  }

  // The frame to send (an ArrayBuffer), or null to drop it (the call is not keyed yet).
  async protect(video, keyFrame, data) {
    if (data.byteLength === 0) return data;
    const input = new Uint8Array(data);
    if (!video || !this.keys) {
      const out = this.b.tandem_media_protect(video, keyFrame, input);
      return out ? out.buffer : null;
    }
    const head = input.subarray(0, this.head);
    const plan = this.b.tandem_media_seal_plan(video, keyFrame, input.length, head);
    if (!plan) return null;
    const key = this.keys.get(plan.kid);
    if (!key) return null;
    let sealed;
    try {
      sealed = await crypto.subtle.encrypt(aesGcm(plan), key, input.subarray(plan.clear));
    } catch {
      return null;
    }
    // clear prefix ‖ SFrame header (the start of the AAD) ‖ ciphertext and tag
    const header = plan.aad.subarray(0, plan.start - plan.clear);
    return joined(input.subarray(0, plan.clear), header, new Uint8Array(sealed));
  }

  // The received frame opened (an ArrayBuffer), or null to drop it (it does not
  // authenticate, replays, or the call is not keyed). Dropped frames are counted.
  async open(video, keyFrame, data) {
    if (data.byteLength === 0) return data;
    const input = new Uint8Array(data);
    if (!video || !this.keys) {
      const out = this.b.tandem_media_unprotect(video, keyFrame, input);
      return out ? out.buffer : null;
    }
    const head = input.subarray(0, this.head);
    const plans = this.b.tandem_media_open_plans(video, keyFrame, input.length, head);
    if (plans.length === 0) return null;
    for (const plan of plans) {
      const key = this.keys.get(plan.kid);
      if (!key) continue;
      let body;
      try {
        body = await crypto.subtle.decrypt(aesGcm(plan), key, input.subarray(plan.start));
      } catch {
        continue;
      }
      if (!this.b.tandem_media_opened(plan.kid, plan.ctr)) return null;
      return joined(input.subarray(0, plan.clear), new Uint8Array(body));
    }
    this.b.tandem_media_refused();
    return null;
  }
}

// Bench (not a test; `node tests/e2e/bench-webcrypto.mjs`): how fast the browser's own WebCrypto
// does X25519 and Ed25519, sequentially and N at once — the data for issue 15's remaining option.
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

// WebCrypto needs a secure context: a page from localhost is one.
const server = createServer((_, res) => res.end('<!doctype html><title>bench</title>'));
await new Promise((r) => server.listen(0, '127.0.0.1', r));

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const page = await browser.newPage();
await page.goto(`http://localhost:${server.address().port}/`);
const out = await page.evaluate(async () => {
  const s = crypto.subtle;
  const N = 1000;
  const a = await s.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  const b = await s.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  const raw = new Uint8Array(await s.exportKey('raw', b.publicKey));
  const pkcs8 = new Uint8Array(await s.exportKey('pkcs8', a.privateKey));
  const r = {};
  let t = performance.now();
  for (let i = 0; i < N; i++) await s.deriveBits({ name: 'X25519', public: b.publicKey }, a.privateKey, 256);
  r.agree_sequential_us = (performance.now() - t) * 1000 / N;
  t = performance.now();
  await Promise.all(Array.from({ length: N }, () => s.deriveBits({ name: 'X25519', public: b.publicKey }, a.privateKey, 256)));
  r.agree_parallel_us = (performance.now() - t) * 1000 / N;
  t = performance.now();
  for (let i = 0; i < N; i++) {
    const pub = await s.importKey('raw', raw, { name: 'X25519' }, false, []);
    const priv = await s.importKey('pkcs8', pkcs8, { name: 'X25519' }, false, ['deriveBits']);
    await s.deriveBits({ name: 'X25519', public: pub }, priv, 256);
  }
  r.import_both_and_agree_sequential_us = (performance.now() - t) * 1000 / N;
  t = performance.now();
  for (let i = 0; i < N; i++) await s.generateKey({ name: 'X25519' }, true, ['deriveBits']);
  r.generate_sequential_us = (performance.now() - t) * 1000 / N;
  const e = await s.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const msg = new Uint8Array(33);
  const sig = await s.sign({ name: 'Ed25519' }, e.privateKey, msg);
  t = performance.now();
  for (let i = 0; i < N; i++) await s.verify({ name: 'Ed25519' }, e.publicKey, sig, msg);
  r.ed25519_verify_sequential_us = (performance.now() - t) * 1000 / N;
  return r;
});
console.log(JSON.stringify(out));
await browser.close();
server.close();

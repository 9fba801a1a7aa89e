// Bench (not a test; `node tests/e2e/bench-frames.mjs` after `trunk build --release`): the
// call frame layer's cost per frame inside a worker, as the media worker runs it
// (www/static/frame-layer.js over the app's wasm from dist/): a caller worker protects N
// frames, a callee worker opens them, one at a time as an Encoded Transform does, the
// WebCrypto way (video) and the all-wasm way (audio; video without WebCrypto). Prints one
// `FRAME_LAYER {json}` line: µs per frame, the median of 5 rounds.
import { createServer } from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist');
const glue = readdirSync(dist).find((f) => /^tandem-web-.*\.js$/.test(f));
if (!glue) throw new Error('no dist/tandem-web-*.js: run `trunk build --release` first');
const types = { js: 'text/javascript', wasm: 'application/wasm', html: 'text/html' };
const server = createServer((req, res) => {
  const path = req.url === '/' ? null : join(dist, req.url.split('?')[0]);
  if (!path) return res.end('<!doctype html><title>bench</title>');
  try {
    const body = readFileSync(path);
    res.setHeader('content-type', types[path.split('.').pop()] || 'application/octet-stream');
    res.end(body);
  } catch {
    res.statusCode = 404;
    res.end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
const page = await browser.newPage();
// WebCrypto needs a secure context: a page from localhost is one.
await page.goto(`http://localhost:${server.address().port}/`);
const out = await page.evaluate(async (glue) => {
  const src = `
    import init, * as b from '${location.origin}/${glue}';
    import { FrameLayer } from '${location.origin}/static/frame-layer.js';
    await init({ module_or_path: '${location.origin}/${glue.replace(/\.js$/, '_bg.wasm')}' });
    const layer = new FrameLayer(b);
    onmessage = async ({ data }) => {
      if (data.key) {
        await layer.key(new Uint8Array(data.key), data.caller);
        if (!data.webcrypto) layer.keys = null;
        return postMessage({ keyed: true, webcrypto: !!layer.keys });
      }
      const t0 = performance.now();
      const out = [];
      for (const f of data.frames) {
        const r = data.protect
          ? await layer.protect(data.video, data.keyFrame, f)
          : await layer.open(data.video, data.keyFrame, f);
        if (r === null) throw new Error('frame dropped');
        out.push(r);
      }
      postMessage({ us: (performance.now() - t0) * 1000 / data.frames.length, frames: out, counts: layer.counts() });
    };
    postMessage({ ready: true });`;
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  const start = () => new Promise((resolve, reject) => {
    const w = new Worker(url, { type: 'module' });
    w.onerror = (e) => reject(new Error(e.message));
    w.onmessage = () => resolve(w);
  });
  const ask = (w, m) => new Promise((resolve) => { w.onmessage = (e) => resolve(e.data); w.postMessage(m); });
  const median = (v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
  const cases = [
    ['audio_160B', false, false, 160, 5000],
    ['video_delta_6250B', true, false, 6250, 2000],
    ['video_key_60kB', true, true, 60000, 200],
  ];
  const result = {};
  for (const webcrypto of [true, false]) {
    for (const [name, video, keyFrame, size, n] of cases) {
      if (!video && !webcrypto) continue; // audio always goes the wasm way
      const protects = [];
      const opens = [];
      for (let round = 0; round < 5; round++) {
        const caller = await start();
        const callee = await start();
        const secret = Array.from({ length: 32 }, (_, i) => i);
        await ask(caller, { key: secret, caller: true, webcrypto });
        await ask(callee, { key: secret, caller: false, webcrypto });
        const frame = Uint8Array.from({ length: size }, (_, i) => (i * 31) % 251);
        const frames = Array.from({ length: n }, () => frame.slice().buffer);
        const sent = await ask(caller, { protect: true, video, keyFrame, frames });
        const got = await ask(callee, { protect: false, video, keyFrame, frames: sent.frames });
        if (got.counts[1] !== n) throw new Error(`opened ${got.counts[1]} of ${n}`);
        protects.push(sent.us);
        opens.push(got.us);
        caller.terminate();
        callee.terminate();
      }
      const way = video ? (webcrypto ? 'webcrypto' : 'wasm') : 'wasm';
      result[`${name}_${way}`] = { protect_us: +median(protects).toFixed(2), open_us: +median(opens).toFixed(2) };
    }
  }
  return result;
}, glue);
console.log(`FRAME_LAYER ${JSON.stringify(out)}`);
await browser.close();
server.close();

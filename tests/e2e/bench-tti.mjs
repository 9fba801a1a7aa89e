// Time to an interactive chat list in headless Chromium, cached assets, against the real
// server and the release build, on a device holding 10 000 messages and 1 000 sessions:
// 1 000 real writer devices (tandem-load converse: Signal sessions through the relay) write
// 10 messages each to an account in the browser, which decrypts and stores them. Then the
// page is reloaded 7 times and three moments are taken in the page: the wasm fetched and
// instantiated (Trunk's `TrunkApplicationStarted`), the first chat row in the document
// (the chat list is interactive: rows open on click), and the engine ready (the new-chat
// form enabled). Medians. Run (after `trunk build --release`, `cargo build -p
// tandem-server` and `cargo build --release -p tandem-cli --bin tandem-load`):
// `node tests/e2e/bench-tti.mjs` (`WRITERS=100 MESSAGES=1000` for a short run).
// Results go to BENCHMARKS.md.

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, tempDir, repoRoot } from './support/harness.mjs';
import { createAccount, until } from './support/chat.mjs';

const WRITERS = Number(process.env.WRITERS ?? 1000);
const MESSAGES = Number(process.env.MESSAGES ?? 10_000);
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const dataDir = tempDir('data');
const server = await startServer({ dataDir, extraArgs: ['--auth-per-minute', '1000000', '--send-rate', '100000'] });
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  if (process.env.DEBUG) page.on('console', (m) => console.log(`  [page ${m.type()}] ${m.text()}`));
  await page.addInitScript(() => {
    addEventListener('TrunkApplicationStarted', () => { window.__wasmReady = performance.now(); });
    // The moments things appear in the document, not when the test runner polls for them.
    new MutationObserver((_, observer) => {
      if (!window.__interactive && document.querySelector('[data-testid="chat-row"]')) {
        window.__interactive = performance.now();
      }
      if (!window.__engine && document.querySelector('.new-chat button[type=submit]:not([disabled])')) {
        window.__engine = performance.now();
      }
      if (window.__interactive && window.__engine) observer.disconnect();
    }).observe(document, { childList: true, subtree: true, attributes: true });
  });
  await createAccount(page, server.url, 'reader');
  const ws = server.url.replace(/^http/, 'ws').replace(/\/?$/, '/v1/socket');
  const t0 = Date.now();
  console.log(execFileSync(join(repoRoot, 'target', 'release', 'tandem-load'),
    ['--mode', 'converse', '--url', ws, '--peer', 'reader', '--queued', String(MESSAGES), '--writers', String(WRITERS)],
    { encoding: 'utf8' }).trim());
  const count = (store) => page.evaluate((name) => new Promise((resolve) => {
    const open = indexedDB.open('tandem-browser');
    open.onsuccess = () => {
      const db = open.result;
      db.transaction(name).objectStore(name).count().onsuccess = (e) => { db.close(); resolve(e.target.result); };
    };
  }), store);
  let shown = 0;
  await until('all stored', async () => {
    const n = await count('messages');
    if (Date.now() - shown > 10_000) {
      const metrics = process.env.DEBUG ? ' ' + await (await fetch(server.url + 'metrics')).text()
        + ' notice: ' + await page.evaluate(() => document.querySelector('[data-testid="notice"]')?.textContent ?? '-') : '';
      console.log(`  ${n} stored after ${((Date.now() - t0) / 1000).toFixed(0)} s${metrics}`);
      shown = Date.now();
    }
    return n === MESSAGES;
  }, 1_800_000);
  console.log(`stored ${MESSAGES} messages in ${await count('conversations')} conversations (${WRITERS} sessions) ${((Date.now() - t0) / 1000).toFixed(0)} s after the writers started`);
  const wasm = [], interactive = [], engine = [];
  for (let i = 0; i < 7; i++) {
    await page.reload();
    await until('engine ready', () => page.evaluate(() => Boolean(window.__engine && window.__interactive)), 20_000);
    const t = await page.evaluate(() => ({ wasm: window.__wasmReady, now: window.__interactive, engine: window.__engine }));
    wasm.push(t.wasm); interactive.push(t.now); engine.push(t.engine);
    if (process.env.MARKS) console.log(JSON.stringify(t), await page.evaluate(() => JSON.stringify(performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)]))));
  }
  console.log(`wasm fetched and instantiated: median ${median(wasm).toFixed(0)} ms after navigation`);
  console.log(`chat list interactive:         median ${median(interactive).toFixed(0)} ms after navigation`);
  console.log(`engine ready:                  median ${median(engine).toFixed(0)} ms after navigation`);
  console.log(`ratio interactive / wasm: ${(median(interactive) / median(wasm)).toFixed(2)}`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

// Time to an interactive chat list in headless Chromium, cached assets, against the real
// server and the release build: navigation → wasm fetched and instantiated (Trunk's
// `TrunkApplicationStarted`) → the signed-in chat list on screen. Median of 7 reloads.
// Run: `node tests/e2e/bench-tti.mjs` (after `trunk build --release` and
// `cargo build -p tandem-server`). Results go to BENCHMARKS.md.

import { rmSync } from 'node:fs';
import { startServer, launchBrowser, tempDir } from './support/harness.mjs';
import { createAccount, openChat, send } from './support/chat.mjs';

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const dataDir = tempDir('data');
const server = await startServer({ dataDir });
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  await page.addInitScript(() => {
    addEventListener('TrunkApplicationStarted', () => { window.__wasmReady = performance.now(); });
    // The moment the chat list is in the document, not when the test runner polls for it.
    new MutationObserver((_, observer) => {
      if (document.querySelector('[data-testid="my-handle"]')) {
        window.__interactive = performance.now();
        observer.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });
  });
  await createAccount(page, server.url, 'alice');
  const other = await browser.context.newPage();
  await openChat(page, 'alice');
  for (let i = 0; i < 20; i++) await send(page, `note to self ${i}`);
  await other.close();
  const wasm = [];
  const interactive = [];
  for (let i = 0; i < 7; i++) {
    await page.reload();
    await page.getByTestId('my-handle').waitFor({ timeout: 20_000 });
    const t = await page.evaluate(() => ({ wasm: window.__wasmReady, now: window.__interactive }));
    wasm.push(t.wasm);
    interactive.push(t.now);
  }
  console.log(`wasm fetched and instantiated: median ${median(wasm).toFixed(0)} ms after navigation`);
  console.log(`chat list interactive:         median ${median(interactive).toFixed(0)} ms after navigation`);
  console.log(`ratio: ${(median(interactive) / median(wasm)).toFixed(2)}`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

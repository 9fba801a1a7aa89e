// Long tasks on the page's thread (the UI thread) while the device works: registering an
// account (100 Kyber prekeys, 100 one-time prekeys, a signed prekey, the device list), and
// receiving 10 000 messages from 1 000 real writer devices (tandem-load converse: Signal
// sessions through the relay, each message decrypted and stored). The engine runs in its
// worker, so the page's thread should only render. Two measures on the page's thread: long
// tasks as the browser reports them (`PerformanceObserver`, `longtask`: a task over 50 ms),
// and a 10 ms heartbeat timer that fires over 50 ms late (which also counts the thread
// waiting for a core: on a 2-core machine the relay, the load generator and the worker
// share them). Run (after `trunk build --release`,
// `cargo build -p tandem-server` and `cargo build --release -p tandem-cli --bin tandem-load`):
// `node tests/e2e/bench-long-tasks.mjs` (`WRITERS=100 MESSAGES=1000` for a short run).
// `ENGINE=tab` runs the engine on the page's thread instead (for comparison: the page then
// has no module script address to start the worker with). Results go to BENCHMARKS.md.

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, tempDir, repoRoot } from './support/harness.mjs';
import { until } from './support/chat.mjs';

const WRITERS = Number(process.env.WRITERS ?? 1000);
const MESSAGES = Number(process.env.MESSAGES ?? 10_000);

const dataDir = tempDir('data');
const server = await startServer({ dataDir, extraArgs: ['--auth-per-minute', '1000000', '--send-rate', '100000'] });
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  await page.addInitScript((inTab) => {
    // A heartbeat on the page's thread: a 10 ms timer that comes more than 50 ms late was
    // held up by a task over 50 ms (headless Chromium does not report 'longtask' entries
    // for every task, so the thread's own lateness is measured).
    window.__long = [];
    window.__late = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__long.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
    let last = performance.now();
    const beat = () => {
      const now = performance.now();
      if (now - last - 10 > 50) window.__late.push({ start: last, duration: now - last - 10 });
      last = now;
      setTimeout(beat, 10);
    };
    setTimeout(beat, 10);
    // Without the preload link the app cannot name its script to the worker: the engine
    // runs in the tab (the fallback path), for comparison.
    if (inTab) {
      new MutationObserver(() => {
        for (const l of document.querySelectorAll('link[rel=modulepreload]')) l.remove();
      }).observe(document, { childList: true, subtree: true });
    }
  }, process.env.ENGINE === 'tab');
  const since = () => page.evaluate(() => performance.now());
  const longSince = (t) => page.evaluate((t) => ({
    long: window.__long.filter((e) => e.start + e.duration >= t),
    late: window.__late.filter((e) => e.start + e.duration >= t),
  }), t);
  const summary = (list) => {
    const total = list.reduce((s, e) => s + e.duration, 0);
    const worst = list.reduce((m, e) => Math.max(m, e.duration), 0);
    return `${list.length} (longest ${worst.toFixed(0)} ms, total ${total.toFixed(0)} ms)`;
  };
  const report = (what, { long, late }, ms) => {
    console.log(`${what}: ${(ms / 1000).toFixed(1)} s; long tasks ${summary(long)}; heartbeat over 50 ms late ${summary(late)}`);
  };

  await page.goto(server.url);
  await page.getByTestId('connection-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
  await page.waitForTimeout(1000);
  // The control: a 120 ms busy loop on the page's thread must show as one long task.
  const c0 = await since();
  await page.evaluate(() => setTimeout(() => { const end = performance.now() + 120; while (performance.now() < end); }, 0));
  await page.waitForTimeout(400);
  report('control (a 120 ms loop on the page)', await longSince(c0), 120);
  const workers = () => page.workers().filter((w) => w.url().endsWith('engine-worker.js')).length;
  let t = await since();
  let w0 = Date.now();
  await page.getByTestId('handle-input').fill('reader');
  await page.getByTestId('create-account').click();
  await page.getByTestId('my-handle').filter({ hasText: '@reader' }).waitFor({ timeout: 30_000 });
  await page.getByTestId('new-chat-input').waitFor({ timeout: 30_000 });
  await page.waitForTimeout(500);
  report(`registration (engine in ${workers() ? 'a worker' : 'the tab'})`, await longSince(t), Date.now() - w0);

  const ws = server.url.replace(/^http/, 'ws').replace(/\/?$/, '/v1/socket');
  t = await since();
  w0 = Date.now();
  execFileSync(join(repoRoot, 'target', 'release', 'tandem-load'),
    ['--mode', 'converse', '--url', ws, '--peer', 'reader', '--queued', String(MESSAGES), '--writers', String(WRITERS)],
    { encoding: 'utf8' });
  const count = () => page.evaluate(() => new Promise((resolve) => {
    const open = indexedDB.open('tandem-browser');
    open.onsuccess = () => {
      const db = open.result;
      db.transaction('messages').objectStore('messages').count().onsuccess = (e) => { db.close(); resolve(e.target.result); };
    };
  }));
  await until('all stored', async () => (await count()) >= MESSAGES, 900_000);
  report(`receiving ${MESSAGES} messages from ${WRITERS} devices`, await longSince(t), Date.now() - w0);
} finally {
  await browser.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

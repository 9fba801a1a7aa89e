// A 10 000-message conversation in the browser: a real device (tandem-load converse, Signal
// sessions through the relay) writes 10 000 texts to an account in headless Chromium, which
// decrypts and stores them; then the conversation opens, every older page is loaded with
// "Show older messages", and the whole history is scrolled top to bottom. Reports receive
// rate, open time, the longest frame while loading pages and while scrolling.
// Run: `trunk build --release && cargo build -p tandem-server &&
//       cargo build --release -p tandem-cli --bin tandem-load && node tests/e2e/bench-scroll.mjs`

import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, tempDir, repoRoot } from './support/harness.mjs';
import { createAccount, until } from './support/chat.mjs';

const COUNT = Number(process.env.MESSAGES ?? 10_000);
const dataDir = tempDir('data');
const server = await startServer({ dataDir });
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  await createAccount(page, server.url, 'reader');
  const ws = server.url.replace(/^http/, 'ws').replace(/\/?$/, '/v1/socket');
  // Tasks that held the page's thread over 50 ms while it decrypted and stored (a long task
  // is one that blocks input that long).
  await page.evaluate(() => {
    window.__long = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__long.push(e.duration); })
      .observe({ type: 'longtask', buffered: false });
  });
  const t0 = Date.now();
  const out = execFileSync(join(repoRoot, 'target', 'release', 'tandem-load'),
    ['--mode', 'converse', '--url', ws, '--peer', 'reader', '--queued', String(COUNT)], { encoding: 'utf8' });
  console.log(out.trim());
  const row = page.getByTestId('chat-row');
  await until('all received', async () => Number(await row.getByTestId('unread').textContent()) === COUNT, 600_000);
  console.log(`received and stored ${COUNT} messages: ${((Date.now() - t0) / 1000).toFixed(1)} s after the writer started`);
  const long = await page.evaluate(() => window.__long);
  console.log(`while receiving: ${long.length} tasks over 50 ms${long.length ? `, longest ${Math.max(...long).toFixed(0)} ms` : ''}`);

  // Frame gaps, recorded in the page.
  await page.evaluate(() => {
    window.__gaps = [];
    let last = performance.now();
    const tick = (t) => { window.__gaps.push(t - last); last = t; requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  const longest = async () => page.evaluate(() => { const g = window.__gaps; window.__gaps = []; return Math.max(0, ...g); });

  let t = Date.now();
  await row.click();
  await until('first page', async () => (await page.getByTestId('message').count()) >= 200);
  console.log(`open the conversation (newest 200): ${Date.now() - t} ms, longest frame ${(await longest()).toFixed(0)} ms`);

  // Walk back to the first message a page at a time, then forward again to the latest:
  // the window of rows in the document moves, it never grows past 250 (+ one page).
  const first = async () => (await page.getByTestId('message-body').first().textContent());
  const older = page.getByRole('button', { name: 'Show older messages' });
  const newer = page.getByRole('button', { name: 'Show newer messages' });
  t = Date.now();
  let worstLoad = 0;
  let maxRows = 0;
  let pages = 0;
  while (await older.count()) {
    const before = await first();
    await older.click();
    await until('an older page', async () => (await first()) !== before, 30_000);
    worstLoad = Math.max(worstLoad, await longest());
    maxRows = Math.max(maxRows, await page.getByTestId('message').count());
    pages++;
  }
  if (!/^message 0 of/.test(await first())) throw new Error(`did not reach the first message: ${await first()}`);
  console.log(`walk back ${pages} pages to the first message: ${((Date.now() - t) / 1000).toFixed(1)} s, longest frame ${worstLoad.toFixed(0)} ms, at most ${maxRows} rows in the document`);

  // Scroll the window at the oldest end, top to bottom, in wheel steps.
  const log = page.getByTestId('messages');
  await log.evaluate((el) => { el.scrollTop = 0; });
  await longest();
  const box = await log.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  const height = await log.evaluate((el) => el.scrollHeight);
  await page.evaluate(() => { window.__gaps = []; });
  t = Date.now();
  for (let y = 0; y < height; y += 300) await page.mouse.wheel(0, 300);
  await page.waitForTimeout(200);
  const gaps = await page.evaluate(() => { const g = [...window.__gaps].sort((a, b) => a - b); return { max: g.at(-1) ?? 0, p99: g[Math.floor(g.length * 0.99)] ?? 0, n: g.length }; });
  console.log(`scroll the window (${height} px): ${gaps.n} frames, p99 ${gaps.p99.toFixed(1)} ms, longest ${gaps.max.toFixed(1)} ms`);

  t = Date.now();
  let worstNewer = 0;
  pages = 0;
  while (await newer.count()) {
    await newer.click();
    worstNewer = Math.max(worstNewer, await longest());
    pages++;
  }
  console.log(`forward ${pages} pages to the latest: ${((Date.now() - t) / 1000).toFixed(1)} s, longest frame ${worstNewer.toFixed(0)} ms`);
} finally {
  await browser.close();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

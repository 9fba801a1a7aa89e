// A sent message is never lost, never doubled, never dated by a wrong clock, and never
// marked read while nobody looks: tried as people do it, against the real server and the
// real built app.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies, states } from './support/chat.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Opens the app on `page` and the chat with `handle` (an existing one). */
async function reopen(page, url, handle) {
  if (page.url() !== url) await page.goto(url);
  await page.getByTestId('my-handle').waitFor({ timeout: 30_000 });
  await page.getByTestId('chat-row').filter({ hasText: handle }).click({ timeout: 30_000 });
  await page.getByTestId('composer').waitFor();
}

/** The message timestamps a page shows (the first 8 bytes of each row's key). */
const shownTimes = (page) => page.getByTestId('message').evaluateAll((els) =>
  els.map((e) => Number(BigInt('0x' + e.dataset.key.slice(0, 16)))));

test('a message sent just before the tab closes or reloads is delivered exactly once', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const alice = await launchBrowser();
  const bob = await launchBrowser();
  try {
    let a = await alice.context.newPage();
    const b = await bob.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await send(a, 'hello');
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 20_000 });
    // Leaving while a text is being saved asks first (the journal keeps it either way).
    let prompts = 0;
    const onDialog = (d) => { if (d.type() === 'beforeunload') prompts++; d.accept().catch(() => {}); };
    a.on('dialog', onDialog);
    const runs = Number(process.env.TANDEM_DURABILITY_RUNS ?? 50);
    const sent = [];
    for (const how of ['reload', 'close']) {
      for (let i = 0; i < runs; i++) {
        const text = `${how} ${i}`;
        await send(a, text);
        sent.push(text);
        await sleep(Math.floor(Math.random() * 1000));
        if (how === 'reload') {
          await a.reload();
        } else {
          await a.close({ runBeforeUnload: false });
          a = await alice.context.newPage();
          a.on('dialog', onDialog);
        }
        await reopen(a, server.url, 'bob');
      }
    }
    const once = (list) => sent.every((t) => list.filter((x) => x === t).length === 1);
    await until('every message delivered once', async () => once(await bodies(b)), 120_000);
    await until('every message once in the sender’s history', async () => once(await bodies(a)), 60_000);
    await until('all sent', async () => (await states(a)).every((s) => s !== 'Waiting to send'), 60_000);
    await sleep(1000);
    assert.ok(once(await bodies(b)), 'still once after things settled');
    assert.deepEqual((await bodies(b)).filter((t) => t !== 'hello'), sent, 'in the order typed');
    console.log(`beforeunload prompts seen: ${prompts}`);
    await screenshot(b, 'durability');
  } finally {
    await alice.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a run with the clock three days ahead dates nothing in the future', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const alice = await launchBrowser();
  const bob = await launchBrowser();
  try {
    let a = await alice.context.newPage();
    const b = await bob.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await send(a, 'right clock 1');
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 20_000 });
    await until('Bob has it', async () => (await bodies(b)).includes('right clock 1'));
    // One run with the clock three days ahead.
    await a.close();
    const ahead = await alice.context.newPage();
    await ahead.addInitScript(() => {
      const real = Date.now.bind(Date);
      Date.now = () => real() + 3 * 86_400_000;
    });
    await reopen(ahead, server.url, 'bob');
    for (let i = 1; i <= 3; i++) await send(ahead, `clock ahead ${i}`);
    await until('sent', async () => (await states(ahead)).slice(-3).every((s) => s !== 'Waiting to send'), 30_000);
    await ahead.close();
    // The clock is right again.
    a = await alice.context.newPage();
    await reopen(a, server.url, 'bob');
    for (let i = 2; i <= 3; i++) await send(a, `right clock ${i}`);
    const expected = ['right clock 1', 'clock ahead 1', 'clock ahead 2', 'clock ahead 3', 'right clock 2', 'right clock 3'];
    for (const p of [a, b]) {
      await until('all six in the order written', async () => JSON.stringify(await bodies(p)) === JSON.stringify(expected), 30_000);
      const times = await shownTimes(p);
      const now = Date.now();
      assert.ok(times.every((t) => t <= now + 60_000), `no time in the future: ${times.map((t) => t - now)}`);
      assert.deepEqual([...times].sort((x, y) => x - y), times, 'times grow with the order');
    }
    await screenshot(b, 'clock-ahead');
  } finally {
    await alice.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('read receipts go only while the chat is seen', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const alice = await launchBrowser();
  const bob = await launchBrowser();
  try {
    const a = await alice.context.newPage();
    const b = await bob.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await send(a, 'first');
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 20_000 });
    await until('read while Bob looks', async () => (await states(a)).at(-1) === 'Read');
    // Bob's tab goes to the background (or another window comes in front).
    const look = (visible, focused) => b.evaluate(([v, f]) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (v ? 'visible' : 'hidden') });
      document.hasFocus = () => f;
      document.dispatchEvent(new Event('visibilitychange'));
      window.dispatchEvent(new Event(f ? 'focus' : 'blur'));
    }, [visible, focused]);
    for (const [visible, focused, name] of [[false, false, 'hidden tab'], [true, false, 'another window in front']]) {
      await look(visible, focused);
      await send(a, `while away: ${name}`);
      await until('delivered to Bob', async () => (await bodies(b)).includes(`while away: ${name}`));
      await until('Alice sees it delivered', async () => (await states(a)).at(-1) === 'Delivered');
      await sleep(1500);
      assert.equal((await states(a)).at(-1), 'Delivered', `not read with a ${name}`);
    }
    // Bob comes back: now it is read.
    await look(true, true);
    await until('read once Bob looks', async () => (await states(a)).every((s) => s === 'Read'), 20_000);
  } finally {
    await alice.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

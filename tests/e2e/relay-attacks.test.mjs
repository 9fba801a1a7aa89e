// What a malicious link or a misbehaving relay can do to the browser app, against the real
// server and the real built app: a link naming another relay does not move an account
// there, and a relay that refuses the device without proof does not make it delete its keys.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies } from './support/chat.mjs';

/** A "relay" that only counts the WebSocket connections it is asked for. */
async function countingRelay() {
  let upgrades = 0;
  const server = createServer((_, res) => res.end());
  server.on('upgrade', (_, socket) => { upgrades++; socket.destroy(); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${server.address().port}/v1/socket`,
    upgrades: () => upgrades,
    stop: () => new Promise((r) => server.close(r)),
  };
}

/** Whether this browser's IndexedDB still holds a device record. */
const hasAccount = (page) => page.evaluate(() => new Promise((resolve) => {
  const open = indexedDB.open('tandem-browser');
  open.onerror = () => resolve(false);
  open.onsuccess = () => {
    const db = open.result;
    try {
      const get = db.transaction('local').objectStore('local').get('account');
      get.onsuccess = () => { db.close(); resolve(get.result != null); };
      get.onerror = () => { db.close(); resolve(false); };
    } catch { db.close(); resolve(false); }
  };
}));

test('a link naming another relay does not move an account there', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const evil = await countingRelay();
  const browser = await launchBrowser();
  try {
    const a = await browser.context.newPage();
    await createAccount(a, server.url, 'alice');
    // Alice opens a link that names another relay.
    await a.goto(`${server.url}?server=${encodeURIComponent(evil.url)}`);
    await a.getByTestId('relay-switch').waitFor({ timeout: 20_000 });
    assert.equal(await a.getByTestId('relay-requested').textContent(), evil.url);
    assert.match(await a.getByTestId('relay-bound').textContent(), /^ws:\/\/localhost:\d+\/v1\/socket$/);
    await a.getByTestId('connection-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    await a.getByTestId('my-handle').filter({ hasText: '@alice' }).waitFor();
    await screenshot(a, 'relay-switch');
    assert.equal(evil.upgrades(), 0, 'nothing went to the other relay');
    // She keeps her server: the question goes, and the link's parameter with it.
    await a.getByTestId('relay-keep').click();
    assert.equal(await a.getByTestId('relay-switch').count(), 0);
    assert.ok(!a.url().includes('server='), a.url());
    await a.reload();
    await a.getByTestId('my-handle').filter({ hasText: '@alice' }).waitFor({ timeout: 20_000 });
    assert.equal(await a.getByTestId('relay-switch').count(), 0);
    assert.equal(evil.upgrades(), 0);
  } finally {
    await browser.close();
    await evil.stop();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a relay refusing a device without proof does not make it delete its keys', async () => {
  const dataDir = tempDir('data');
  let server = await startServer({ dataDir });
  const alice = await launchBrowser();
  const bob = await launchBrowser();
  try {
    const a = await alice.context.newPage();
    const b = await bob.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await send(a, 'kept through it all');
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).waitFor({ timeout: 20_000 });
    // The relay comes back refusing Alice's (primary) device, with no removal she signed.
    await server.stop();
    server = await startServer({ dataDir, port: server.port, extraArgs: ['--test-misbehave', 'refuse-login:alice'] });
    await a.getByTestId('refused').waitFor({ timeout: 40_000 });
    await screenshot(a, 'refused-unproven');
    assert.ok(await hasAccount(a), 'the keys and messages are still here');
    await a.reload();
    await a.getByTestId('refused').waitFor({ timeout: 30_000 });
    assert.ok(await hasAccount(a));
    // The relay behaves again: "Try again" brings everything back.
    await server.stop();
    server = await startServer({ dataDir, port: server.port });
    await a.getByTestId('refused-retry').click();
    await a.getByTestId('my-handle').filter({ hasText: '@alice' }).waitFor({ timeout: 30_000 });
    await a.getByTestId('chat-row').filter({ hasText: 'bob' }).click();
    await until('the old message', async () => (await bodies(a)).includes('kept through it all'));
  } finally {
    await alice.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

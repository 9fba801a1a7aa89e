// A relay that is busy (its per-sender send budget spent) does not strand messages: the
// outbox is tried again after the runtime's back-off, with no new action from the person.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies } from './support/chat.mjs';

test('messages refused by a busy relay are sent by themselves once it has room', async () => {
  const dataDir = tempDir('data');
  // One stored copy at a time, refilled every two seconds.
  const server = await startServer({ dataDir, extraArgs: ['--send-rate', '0.5'] });
  const browserA = await launchBrowser();
  const browserB = await launchBrowser();
  try {
    const a = await browserA.context.newPage();
    const b = await browserB.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    const texts = ['first of three', 'second of three', 'third of three'];
    for (const t of texts) await send(a, t);
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).first().click({ timeout: 30_000 });
    // Nothing else happens on Alice's side: the retries alone deliver the rest.
    await until('all three delivered to Bob', async () => {
      const got = await bodies(b);
      return texts.every((t) => got.includes(t));
    }, 60_000);
    assert.deepEqual((await bodies(b)).filter((t) => texts.includes(t)), texts, 'in the order typed');
    await screenshot(b, 'send-retry-delivered');
  } finally {
    await browserA.close();
    await browserB.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

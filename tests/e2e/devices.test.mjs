// Device management: the primary logs a companion out, a companion logs itself out; each
// returns to onboarding with its IndexedDB data gone, and later messages reach only the
// devices that remain.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies } from './support/chat.mjs';
import { deviceRows, linkCompanion } from './support/link.mjs';

// Records this browser keeps for its account: everything in its database but the record
// of the browser itself (which the welcome screen shows and keeps).
const storedRecords = (page) => page.evaluate(() => new Promise((resolve, reject) => {
  const open = indexedDB.open('tandem-browser');
  open.onerror = () => reject(open.error);
  open.onsuccess = () => {
    const db = open.result;
    const names = [...db.objectStoreNames].filter((n) => n !== 'device');
    if (!names.length) { db.close(); resolve(0); return; }
    const tx = db.transaction(names, 'readonly');
    let total = 0;
    for (const n of names) tx.objectStore(n).count().onsuccess = (e) => { total += e.target.result; };
    tx.oncomplete = () => { db.close(); resolve(total); };
  };
}));


async function expectLoggedOut(page) {
  await page.getByTestId('logged-out').waitFor({ timeout: 30_000 });
  assert.match(await page.getByTestId('logged-out').textContent(), /logged out of @alice, and the messages and keys it kept were deleted/);
  await page.getByTestId('create-account').waitFor();
  assert.equal(await storedRecords(page), 0, 'nothing of the account is left');
}

test('logging devices out wipes them and later messages skip them', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browsers = await Promise.all([launchBrowser(), launchBrowser(), launchBrowser(), launchBrowser()]);
  try {
    const [a, b, c, d] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await a.getByTestId('open-devices').click();
    await linkCompanion(a, b, server.url, 'alice');
    await a.getByTestId('link-another').click();
    await linkCompanion(a, d, server.url, 'alice');
    await until('three devices on A', async () => (await deviceRows(a)) === 3);
    assert.equal(await a.getByTestId('companion-count').textContent(), '2 of 4 linked devices');
    // A names itself; the name shows on every device of the account.
    await a.getByTestId('device-rename').click();
    await a.getByTestId('device-name-input').fill('Home desktop');
    await a.getByTestId('device-name-input').press('Enter');
    await until('the new name on A', async () => (await a.getByTestId('device-row').filter({ hasText: 'This device' }).textContent()).includes('Home desktop'));
    await d.getByTestId('open-devices').click();
    await until('the new name on D', async () => (await d.getByTestId('device-row').first().textContent()).includes('Home desktop'));
    await createAccount(c, server.url, 'bob');
    await openChat(c, 'alice');
    await send(c, 'before the logout');
    for (const p of [a, b, d]) {
      await p.getByTestId('chat-row').filter({ hasText: 'bob' }).click({ timeout: 30_000 });
      await until('every device of Alice has it', async () => (await bodies(p)).includes('before the logout'));
    }
    assert.ok((await storedRecords(b)) > 10, 'B keeps keys, sessions and messages');

    // The primary logs B out (the button asks again before it acts).
    await a.getByTestId('open-devices').click();
    const rowB = a.getByTestId('device-row').filter({ hasNotText: 'This device' }).first();
    const nameB = await rowB.locator('.device-name').textContent();
    await rowB.getByTestId('device-remove').click();
    await rowB.getByTestId('device-remove').filter({ hasText: 'Confirm log out' }).click();
    await expectLoggedOut(b);
    await screenshot(b, 'logged-out');
    await until('two devices on A', async () => (await deviceRows(a)) === 2);
    assert.ok(nameB, 'the removed row had a name');

    // D logs itself out from its own device list.
    await d.getByTestId('open-devices').click();
    const own = d.getByTestId('device-row').filter({ hasText: 'This device' });
    await own.getByTestId('device-remove').click();
    await own.getByTestId('device-remove').filter({ hasText: 'Confirm log out' }).click();
    await expectLoggedOut(d);
    await until('one device on A', async () => (await deviceRows(a)) === 1);

    // Bob's next message reaches Alice's remaining device only; the wiped browsers stay empty.
    await send(c, 'after the logout');
    await a.getByTestId('chat-row').filter({ hasText: 'bob' }).click();
    await until('A gets it', async () => (await bodies(a)).includes('after the logout'));
    await until('Bob sees it delivered', async () => ['Delivered', 'Read'].includes(
      await c.getByTestId('message-state').last().getAttribute('data-state')), 20_000);
    for (const p of [b, d]) {
      assert.equal(await p.getByTestId('message-body').count(), 0);
      assert.equal(await storedRecords(p), 0);
    }
    for (const x of browsers) assert.deepEqual(x.errors, []);
  } finally {
    for (const x of browsers) await x.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// Group chats in the browser through the real relay: a group is created from the app,
// strangers see an invitation and join, everyone's texts reach everyone with the sender's
// name, and someone who left gets nothing sent after.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, send, bodies } from './support/chat.mjs';

const senders = (page) => page.getByTestId('message-sender').allTextContents();
const lines = (page) => page.getByTestId('notice-text').allTextContents();

/** Opens the chat named `name` from the chat list. */
async function openRow(page, name) {
  const row = page.getByTestId('chat-row').filter({ hasText: name });
  await row.first().waitFor({ timeout: 20_000 });
  await row.first().click();
  await page.getByTestId('conversation-name').filter({ hasText: name }).waitFor();
}

test('a group made in the browser: invitations, everyone hears everyone by name, leaving stops it', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browsers = await Promise.all([launchBrowser(), launchBrowser(), launchBrowser({ colorScheme: 'dark' })]);
  try {
    const [a, b, c] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await createAccount(c, server.url, 'carol');

    // Bad input first: no name, no people, someone who does not exist.
    await a.getByTestId('open-new-group').click();
    await a.getByTestId('create-group').click();
    await until('no name', async () => /Give the group a name/.test(await a.getByTestId('group-error').textContent()));
    await a.getByTestId('group-title-input').fill('Climbing');
    await a.getByTestId('group-members-input').fill('bob, nobody_here');
    await a.getByTestId('create-group').click();
    await until('unknown person', async () => /nobody_here/.test(await a.getByTestId('group-error').textContent()));
    await a.getByTestId('group-members-input').fill('@bob, carol');
    await screenshot(a, 'group-new');
    await a.getByTestId('create-group').click();
    await a.getByTestId('conversation-name').filter({ hasText: 'Climbing' }).waitFor({ timeout: 30_000 });
    assert.equal(await a.getByTestId('group-members').textContent(), '3 members');

    // Bob and Carol are strangers to Alice: an invitation waits, no composer until they join.
    for (const p of [b, c]) {
      await openRow(p, 'Climbing');
      await p.getByTestId('group-invitation').waitFor();
      await until('inviter named', async () => /alice added you/.test(await p.getByTestId('group-invitation').textContent()));
      assert.equal(await p.getByTestId('composer').isVisible(), false);
    }
    await until('the line names people', async () => (await lines(b)).some((l) => /^alice created the group with (you and carol|carol and you)\.$/.test(l)));
    assert.ok((await lines(a)).some((l) => /^You created the group with (bob and carol|carol and bob)\.$/.test(l)));
    await screenshot(b, 'group-invitation');
    for (const p of [b, c]) {
      await p.getByTestId('join-group').click();
      await until('joined', async () => (await p.getByTestId('group-invitation').count()) === 0);
      await p.getByTestId('composer').waitFor();
    }

    await send(a, 'hello group');
    for (const p of [b, c]) {
      await until('Alice heard', async () => (await bodies(p)).includes('hello group'), 30_000);
      assert.deepEqual(await senders(p), ['alice']);
    }
    await send(b, 'hi all');
    for (const p of [a, c]) {
      await until('Bob heard', async () => (await bodies(p)).includes('hi all'), 30_000);
      assert.ok((await senders(p)).includes('bob'));
    }
    // Open, the group reads as read: no unread count on its row.
    await until('read while open', async () => (await c.getByTestId('chat-row').getByTestId('unread').count()) === 0);
    await screenshot(c, 'group-chat');

    // Carol leaves: everyone sees the line; later texts do not reach her.
    // Leaving asks first; Cancel keeps her in.
    await c.getByTestId('leave-group').click();
    await c.getByTestId('leave-cancel').click();
    await c.getByTestId('leave-group').waitFor();
    await c.getByTestId('leave-group').click();
    await screenshot(c, 'group-leave-confirm');
    await c.getByTestId('leave-confirm').click();
    await until('Alice sees the leave', async () => (await lines(a)).includes('carol left.'), 30_000);
    await until('Carol cannot write', async () => !(await c.getByTestId('composer').isVisible()));
    await send(a, 'after carol');
    await until('Bob heard', async () => (await bodies(b)).includes('after carol'), 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await bodies(c)).includes('after carol'), false, 'nothing after leaving');
    await screenshot(a, 'group-after-leave');
  } finally {
    await Promise.all(browsers.map((x) => x.close()));
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// Chatting in the browser against the real server and the real built app, each person in a
// separate Chromium profile: create accounts, start a chat by name, messages both ways with
// delivery and read ticks, a message typed offline is queued and sent once, and a reload
// keeps everything (IndexedDB).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies, states } from './support/chat.mjs';


test('two people chat: names, delivery and read ticks, offline outbox, reload', async () => {
  const dataDir = tempDir('data');
  let server = await startServer({ dataDir });
  const alice = await launchBrowser();
  const bob = await launchBrowser({ colorScheme: 'dark' });
  try {
    const a = await alice.context.newPage();
    const b = await bob.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');

    // A name that does not exist says so.
    await b.getByTestId('new-chat-input').fill('nobody_here');
    await b.getByTestId('new-chat-input').press('Enter');
    await until('the not-found message', async () => /No one has that name/.test(await b.getByRole('alert').allTextContents().then((t) => t.join(' '))));

    await openChat(a, 'bob');
    await send(a, 'Hi Bob! 👋');
    // Bob sees the chat appear with an unread count, opens it, reads it.
    const row = b.getByTestId('chat-row').filter({ hasText: 'alice' });
    await row.waitFor({ timeout: 20_000 });
    assert.equal(await row.getByTestId('unread').textContent(), '1');
    await screenshot(b, 'chat-list-dark');
    await row.click();
    await until('Bob sees the message', async () => (await bodies(b)).includes('Hi Bob! 👋'));
    // Alice's ticks go to Read.
    await until('Alice sees it read', async () => (await states(a)).at(-1) === 'Read');

    await send(b, 'Hello Alice.\nTwo lines here.');
    await until('Alice gets the reply', async () => (await bodies(a)).includes('Hello Alice.\nTwo lines here.'));
        await until('Bob sees his reply read', async () => (await states(b)).at(-1) === 'Read');

    // A reply and a message's info in a direct chat: Bob answers Alice's first message; she
    // sees the quote, and her message's info says Bob read it, on his one device.
    const first = b.getByTestId('message').filter({ hasText: 'Hi Bob! 👋' });
    await first.hover();
    await first.getByTestId('message-reply').click();
    await until('replying', async () => /Replying to alice/.test(await b.getByTestId('reply-bar').textContent()));
    await b.keyboard.type('answering your first');
    await b.keyboard.press('Enter');
    const reply = a.getByTestId('message').filter({ hasText: 'answering your first' });
    await until('the reply arrives', async () => (await reply.count()) === 1, 20_000);
    assert.match(await reply.getByTestId('message-quote').textContent(), /You[\s\S]*Hi Bob! 👋/);
    await screenshot(b, 'conversation-reply-dark');
    const hi = a.getByTestId('message').filter({ hasText: 'Hi Bob! 👋' }).first();
    await hi.hover();
    await hi.getByTestId('message-info').click();
    await until('the info says read', async () => /Read by bob/.test(await a.getByTestId('receipt-summary').textContent()));
    assert.deepEqual(await a.getByTestId('receipt-name').allTextContents(), ['Primary device']);
    await screenshot(a, 'message-info');
    await a.getByTestId('close-message-info').click();


    // A longer exchange, in order on both sides.
    for (let i = 1; i <= 10; i++) await send(i % 2 ? a : b, `message ${i}`);
    const expected = Array.from({ length: 10 }, (_, i) => `message ${i + 1}`);
    for (const p of [a, b]) {
      await until('all ten in order', async () => JSON.stringify((await bodies(p)).filter((t) => t.startsWith('message '))) === JSON.stringify(expected));
    }
    await screenshot(a, 'conversation');

    // The server goes away: Alice's message waits in the outbox, then leaves once, when the
    // server is back.
    await server.stop();
    await a.getByTestId('connection-state').filter({ hasText: /Offline|Connecting/ }).waitFor({ timeout: 30_000 });
    await send(a, 'sent while offline');
    await until('queued tick', async () => (await states(a)).at(-1) === 'Waiting to send');
    await screenshot(a, 'conversation-offline');
    server = await startServer({ dataDir, port: server.port });
    await until('Bob gets the offline message', async () => (await bodies(b)).includes('sent while offline'), 40_000);
    await until('Alice sees it delivered', async () => ['Delivered', 'Read'].includes((await states(a)).at(-1)), 20_000);

    // A reload keeps the account and the conversation.
    await b.reload();
    await b.getByTestId('my-handle').filter({ hasText: '@bob' }).waitFor({ timeout: 20_000 });
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click();
    await until('history after reload', async () => (await bodies(b)).filter((t) => t === 'sent while offline').length === 1);

    // Narrow window: the list and the conversation take turns.
    await a.setViewportSize({ width: 390, height: 760 });
    await screenshot(a, 'conversation-narrow');
    await a.getByRole('button', { name: 'Back to chats' }).click();
    await a.getByTestId('chat-row').first().waitFor();
    await screenshot(a, 'chat-list-narrow');

    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  } finally {
    await alice.close();
    await bob.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// Linking a browser as a companion through the link code's text, against the real server
// and the real built app, each browser a separate profile: Alice's main device (A) links
// browser B; Bob (C) chats with both; A closes and B keeps working. Bad codes, a replaced
// code and a server restart mid-link each say what happened and link nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies } from './support/chat.mjs';

const codeText = (page) => page.getByTestId('link-code-text').inputValue();

async function showCode(page) {
  await page.getByTestId('link-code-text').waitFor({ timeout: 20_000 });
  const text = await codeText(page);
  assert.match(text, /^tandem-link:[A-Za-z0-9_-]+$/);
  return text;
}

async function pasteCode(primary, text) {
  await primary.getByTestId('link-input').fill(text);
  await primary.getByTestId('link-continue').click();
}

const linkError = (page) => page.getByTestId('link-error').textContent();
const deviceRows = (page) => page.getByTestId('device-row').count();

test('a browser links as a companion by the code text and chats on its own', async () => {
  const dataDir = tempDir('data');
  let server = await startServer({ dataDir });
  const browserA = await launchBrowser();
  const browserB = await launchBrowser({ colorScheme: 'dark' });
  const browserC = await launchBrowser();
  try {
    const a = await browserA.context.newPage();
    const b = await browserB.context.newPage();
    const c = await browserC.context.newPage();
    await createAccount(a, server.url, 'alice');
    await a.getByTestId('open-devices').click();
    await until('one device listed', async () => (await deviceRows(a)) === 1);

    // B asks to link and shows a code: a QR and its text.
    await b.goto(server.url);
    await b.getByTestId('connection-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
    await b.getByTestId('start-link').click();
    const first = await showCode(b);
    assert.ok(await b.getByTestId('link-qr').locator('svg').count() === 1, 'the QR code is drawn');
    await screenshot(b, 'link-screen');

    // Bad input on the primary: not a code at all, and a truncated one.
    await pasteCode(a, 'hello there');
    await until('not-a-code message', async () => /not a Tandem link code/.test(await linkError(a)));
    await pasteCode(a, first.slice(0, -6));
    await until('truncated code refused', async () => /not a Tandem link code/.test(await linkError(a)));

    // B goes back and starts again: its first code was replaced and no longer works.
    await b.getByRole('button', { name: 'Back' }).click();
    await b.getByTestId('start-link').click();
    const second = await showCode(b);
    assert.notEqual(second, first);
    await pasteCode(a, first);
    await a.getByTestId('link-confirm').click();
    await until('replaced code refused', async () => /expired/.test(await linkError(a)));

    // The server restarts mid-link: B's code dies with the socket, B shows a new one once
    // the server is back, and the old one links nothing.
    await server.stop();
    server = await startServer({ dataDir, port: server.port });
    await until('a new code after the restart', async () => {
      const t = await codeText(b).catch(() => '');
      return t.startsWith('tandem-link:') && t !== second;
    }, 40_000);
    await a.getByTestId('connection-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 30_000 });
    await pasteCode(a, second);
    await a.getByTestId('link-confirm').click();
    await until('code from before the restart refused', async () => /expired/.test(await linkError(a)));
    await a.getByTestId('open-devices').click();
    assert.equal(await deviceRows(a), 1, 'no half-linked device');

    // The real link: paste, see which device asks, confirm, compare the digits.
    const current = await showCode(b);
    await pasteCode(a, current);
    const name = await a.getByTestId('link-device-name').textContent();
    assert.match(name, /Chrome on Linux/);
    await screenshot(a, 'link-confirm');
    await a.getByTestId('link-confirm').click();
    const primaryDigits = await a.getByTestId('primary-match-code').textContent();
    assert.match(primaryDigits, /^\d{3} \d{3}$/);
    await b.getByTestId('my-handle').filter({ hasText: '@alice' }).waitFor({ timeout: 30_000 });
    assert.match(await b.getByTestId('info').textContent(), new RegExp(primaryDigits));
    await until('two devices listed on A', async () => (await deviceRows(a)) === 2);
    await screenshot(a, 'devices');

    // Bob chats with Alice: B writes, C and A (transcript) show it; C replies to both.
    await createAccount(c, server.url, 'bob');
    await openChat(b, 'bob');
    await send(b, 'Hello from my laptop');
    await c.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 30_000 });
    await until('Bob gets it', async () => (await bodies(c)).includes('Hello from my laptop'));
    await a.getByTestId('chat-row').filter({ hasText: 'bob' }).click({ timeout: 30_000 });
    await until('A shows it as sent by Alice', async () => (await bodies(a)).includes('Hello from my laptop'));
    assert.equal(await a.locator('.message.out').filter({ hasText: 'Hello from my laptop' }).count(), 1);
    await send(c, 'Hi Alice, both your devices get this');
    for (const p of [a, b]) {
      await until('both of Alice’s devices get the reply', async () => (await bodies(p)).includes('Hi Alice, both your devices get this'));
    }
    await screenshot(b, 'companion-conversation');

    // The main device goes away; B and C keep chatting.
    await browserA.close();
    for (let i = 1; i <= 3; i++) {
      await send(i % 2 ? b : c, `without the phone ${i}`);
    }
    for (const p of [b, c]) {
      await until('the exchange without A', async () => {
        const got = (await bodies(p)).filter((t) => t.startsWith('without the phone'));
        return JSON.stringify(got) === JSON.stringify(['without the phone 1', 'without the phone 2', 'without the phone 3']);
      });
    }

    assert.deepEqual(browserB.errors, []);
    assert.deepEqual(browserC.errors, []);
  } finally {
    await browserA.close().catch(() => {});
    await browserB.close();
    await browserC.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

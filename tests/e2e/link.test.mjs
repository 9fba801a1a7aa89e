// Linking a browser as a companion through the link code's text, against the real server
// and the real built app, each browser a separate profile: Alice's main device (A) links
// browser B; Bob (C) chats with both; A closes and B keeps working. Bad codes, a replaced
// code and a server restart mid-link each say what happened and link nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, startStaticHost, launchBrowser, screenshot, tempDir, distDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies, states } from './support/chat.mjs';
import { codeText, compareCodes, deviceRows, linkError, pasteCode, showCode } from './support/link.mjs';

test('a browser links as a companion by the code text and chats on its own', async () => {
  const dataDir = tempDir('data');
  let server = await startServer({ dataDir });
  const browserA = await launchBrowser();
  const browserB = await launchBrowser({ colorScheme: 'dark' });
  const browserC = await launchBrowser();
  // B loads the app from a static host, so it can reload while the relay is down.
  const host = await startStaticHost(distDir);
  try {
    const a = await browserA.context.newPage();
    const b = await browserB.context.newPage();
    const c = await browserC.context.newPage();
    await createAccount(a, server.url, 'alice');
    await a.getByTestId('open-devices').click();
    await until('one device listed', async () => (await deviceRows(a)) === 1);

    // B asks to link and shows a code: a QR and its text.
    await b.goto(`${host.url}?server=${encodeURIComponent(server.url)}`);
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
    await until('still one device: no half-linked device', async () => (await deviceRows(a)) === 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await deviceRows(a), 1, 'no half-linked device');

    // The real link: paste, see which device asks, confirm, compare the digits. Codes
    // now rotate every 20 s, so one may be replaced between reading and confirming: like a
    // person, try again with the code shown then (at most three times).
    let primaryDigits = '';
    for (let attempt = 1; attempt <= 3 && !primaryDigits; attempt++) {
      const current = await showCode(b);
      await pasteCode(a, current);
      const name = await a.getByTestId('link-device-name').textContent();
      assert.match(name, /Chrome on Linux/);
      if (attempt === 1) await screenshot(a, 'link-confirm');
      await a.getByTestId('link-confirm').click();
      const outcome = await until('the link sent or refused', async () => {
        if (await a.getByTestId('primary-match-code').count()) return 'sent';
        if (/expired/.test(await linkError(a))) return 'replaced';
        return false;
      });
      if (outcome === 'sent') {
        await screenshot(b, 'link-compare');
        primaryDigits = await compareCodes(a, b);
      }
    }
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

    // B's tab reloads while a message waits in its outbox: it is sent once, after.
    await server.stop();
    await send(b, 'from the outbox');
    await until('queued on B', async () => (await states(b)).at(-1) === 'Waiting to send');
    await b.reload();
    await b.getByTestId('my-handle').filter({ hasText: '@alice' }).waitFor({ timeout: 20_000 });
    await b.getByTestId('chat-row').filter({ hasText: 'bob' }).click();
    await until('still queued after the reload', async () => (await states(b)).at(-1) === 'Waiting to send');
    server = await startServer({ dataDir, port: server.port });
    await until('Bob gets the outbox message', async () => (await bodies(c)).includes('from the outbox'), 40_000);
    await until('B sees it delivered', async () => ['Delivered', 'Read'].includes((await states(b)).at(-1)), 20_000);
    assert.equal((await bodies(c)).filter((t) => t === 'from the outbox').length, 1, 'exactly once');

    // A second tab of B: one tab runs the engine, the other follows it. 200 messages
    // between both tabs and Bob all decrypt, and every one shows in both tabs.
    const b2 = await browserB.context.newPage();
    await b2.goto(host.url);
    await b2.getByTestId('viewer-note').waitFor({ timeout: 20_000 });
    // The engine runs in the first tab's worker, off its page thread; the second tab has none.
    const engineWorkers = (p) => p.workers().filter((w) => w.url().endsWith('/static/engine-worker.js')).length;
    assert.equal(engineWorkers(b), 1, 'the engine tab runs its engine in a worker');
    assert.equal(engineWorkers(b2), 0, 'a following tab runs no engine');
    await b2.getByTestId('chat-row').filter({ hasText: 'bob' }).click();
    const expected = [];
    for (let i = 0; i < 200; i++) {
      const who = [b, b2, c][i % 3];
      const text = `two tabs ${i}`;
      expected.push(text);
      await send(who, text);
    }
    const sorted = (list) => list.filter((t) => t.startsWith('two tabs ')).sort();
    for (const p of [b, b2, c]) {
      await until('all 200 everywhere', async () => {
        const got = sorted(await bodies(p));
        if (JSON.stringify(got) === JSON.stringify([...expected].sort())) return true;
        throw new Error(`${got.length} of 200; missing ${expected.filter((t) => !got.includes(t)).slice(0, 5).join(', ')}`);
      }, 60_000);
    }
    // Every screen shows them in the same order, and one tab's messages in the order typed.
    const shown = async (p) => (await bodies(p)).filter((t) => t.startsWith('two tabs '));
    const orderOnB = await shown(b);
    assert.deepEqual(await shown(b2), orderOnB);
    await until('the same order on Bob’s screen', async () => JSON.stringify(await shown(c)) === JSON.stringify(orderOnB));
    for (const tab of [0, 1]) {
      const typedThere = orderOnB.map((t) => Number(t.slice(9))).filter((i) => i % 3 === tab);
      assert.deepEqual(typedThere, [...typedThere].sort((x, y) => x - y), `tab ${tab + 1}'s messages in the order typed`);
    }
    await screenshot(b2, 'second-tab');
    // The engine tab closes; the other takes over and keeps sending.
    await b.close();
    await b2.getByTestId('viewer-note').waitFor({ state: 'detached', timeout: 20_000 });
    await until('the second tab runs the engine in its own worker', async () => engineWorkers(b2) === 1);
    await b2.getByTestId('chat-row').filter({ hasText: 'bob' }).click();
    await send(b2, 'after the handover');
    await until('Bob gets the handover message', async () => (await bodies(c)).includes('after the handover'), 30_000);

    assert.deepEqual(browserB.errors, []);
    assert.deepEqual(browserC.errors, []);
  } finally {
    await host.stop();
    await browserA.close().catch(() => {});
    await browserB.close();
    await browserC.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// Security codes end to end: Alice and Bob verify each other by the code text; Bob links a
// new companion and Alice's code for Bob is unchanged and still verified; bad codes say what
// is wrong and change nothing. A relay that injects a device into Bob's list never gets a
// ciphertext for it, and Alice's chat says so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies } from './support/chat.mjs';
import { startLink, confirmLink } from './support/link.mjs';

const digits = (page) => page.getByTestId('security-digits').textContent();
const codeText = async (page) => {
  await page.getByTestId('security-code-text').waitFor({ timeout: 20_000 });
  return page.getByTestId('security-code-text').inputValue();
};
const result = (page) => page.getByTestId('verify-result').textContent();

async function openCode(page) {
  await page.getByTestId('open-security-code').click();
  await page.getByTestId('security-digits').waitFor({ timeout: 20_000 });
}

const answers = (page) => page.getByTestId('verify-result').getAttribute('data-answer', { timeout: 100 }).then(Number).catch(() => 0);

async function checkCode(page, text) {
  const before = await answers(page);
  await page.getByTestId('verify-input').fill(text);
  await page.getByTestId('verify-submit').click();
  await until('the check answered', async () => (await answers(page)) > before);
}

test('two people verify each other; a new companion changes nothing; bad codes are refused', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browsers = await Promise.all([launchBrowser(), launchBrowser({ colorScheme: 'dark' }), launchBrowser(), launchBrowser()]);
  try {
    const [a, b, b2, carol] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await createAccount(carol, server.url, 'carol');
    await openChat(a, 'bob');
    await send(a, 'hi bob');
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 30_000 });
    await until('Bob has it', async () => (await bodies(b)).includes('hi bob'));

    await openCode(a);
    await openCode(b);
    const aliceDigits = await digits(a);
    assert.match(aliceDigits.replace(/\s/g, ''), /^\d{60}$/);
    assert.equal(await digits(b), aliceDigits, 'both see the same 60 digits');
    assert.equal(await a.getByTestId('verified-state').textContent(), 'Not verified');
    assert.equal(await a.getByTestId('contact-device').count(), 1);
    await screenshot(a, 'security-code');

    // Bad input first: not a code, a truncated one, Carol's code for Alice.
    await checkCode(a, 'hello');
    assert.match(await result(a), /not a Tandem security code/);
    const bobText = await codeText(b);
    await checkCode(a, bobText.slice(0, 30));
    assert.match(await result(a), /not a Tandem security code|does not match/);
    await checkCode(a, 'tandem-code:AAAA');
    assert.match(await result(a), /not a Tandem security code/, 'well-formed text, not a code');
    await openChat(carol, 'alice');
    await openCode(carol);
    await checkCode(a, await codeText(carol));
    assert.match(await result(a), /does not match/);
    assert.equal(await a.getByTestId('verified-state').textContent(), 'Not verified', 'nothing changed');

    // The real codes: each pastes the other's text.
    await checkCode(a, bobText);
    assert.match(await result(a), /codes match/);
    await checkCode(b, await codeText(a));
    assert.match(await result(b), /codes match/);
    for (const p of [a, b]) {
      await until('verified', async () => (await p.getByTestId('verified-state').textContent()).includes('Verified'));
      await p.getByTestId('verified-badge').waitFor();
    }
    await screenshot(b, 'security-code-verified');

    // Bob links a companion: Alice's code for Bob stays the same, and Bob stays verified.
    await b.getByTestId('close-security-code').click();
    await b.getByTestId('open-devices').click();
    await startLink(b2, server.url);
    await confirmLink(b, b2);
    await b2.getByTestId('my-handle').filter({ hasText: '@bob' }).waitFor({ timeout: 30_000 });
    await a.getByTestId('close-security-code').click();
    await send(a, 'to both of bob');
    await b2.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 30_000 });
    await until('the new companion gets it', async () => (await bodies(b2)).includes('to both of bob'));
    await openCode(a);
    await until('two signed devices of Bob', async () => (await a.getByTestId('contact-device').count()) === 2);
    assert.equal(await digits(a), aliceDigits, 'the digits did not change');
    assert.match(await a.getByTestId('verified-state').textContent(), /Verified/);
    await a.getByTestId('verified-badge').waitFor();
    for (const x of browsers) assert.deepEqual(x.errors, []);
  } finally {
    for (const x of browsers) await x.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a device the relay injects into Bob’s list gets nothing, and Alice is warned', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir, extraArgs: ['--test-misbehave', 'inject-device:bob'] });
  const browsers = await Promise.all([launchBrowser(), launchBrowser()]);
  try {
    const [a, b] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await send(a, 'only for the real bob');
    await a.getByTestId('device-warning').waitFor({ timeout: 20_000 });
    assert.match(await a.getByTestId('device-warning').textContent(), /never signed/);
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 30_000 });
    await until('Bob gets it', async () => (await bodies(b)).includes('only for the real bob'));
    await until('Alice sees it delivered', async () => ['Delivered', 'Read'].includes(
      await a.getByTestId('message-state').last().getAttribute('data-state')));
    await openCode(a);
    await a.getByTestId('contact-device-rejected').waitFor();
    assert.match(await a.getByTestId('contact-device-rejected').textContent(), /Device 99.*never sends/s);
    await screenshot(a, 'injected-device');
    for (const x of browsers) assert.deepEqual(x.errors, []);
  } finally {
    for (const x of browsers) await x.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('Bob starts over with new keys: Alice is told, and her send waits until she accepts', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browsers = await Promise.all([launchBrowser(), launchBrowser()]);
  try {
    const [a, b] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await send(a, 'hello');
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 30_000 });
    await until('Bob has it', async () => (await bodies(b)).includes('hello'));
    await openCode(a);
    await openCode(b);
    const before = await digits(a);
    await checkCode(a, await codeText(b));
    assert.match(await result(a), /codes match/);
    await a.getByTestId('close-security-code').click();
    await b.getByTestId('close-security-code').click();

    // Bob resets his keys from his device list.
    await b.getByTestId('open-devices').click();
    await b.getByTestId('reset-keys').click();
    await b.getByTestId('reset-keys').filter({ hasText: 'Confirm' }).click();
    await until('Bob has new keys', async () => /New security keys/.test(await b.getByTestId('info').textContent()), 30_000);
    await b.getByTestId('my-handle').filter({ hasText: '@bob' }).waitFor();

    // Alice writes: her client learns of the new key, holds the message and says why.
    await send(a, 'are you still you?');
    await a.getByTestId('key-held-notice').waitFor({ timeout: 30_000 });
    await screenshot(a, 'key-change-held');
    assert.equal((await a.getByTestId('message-state').last().getAttribute('data-state')), 'Waiting to send');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await b.getByTestId('chat-row').count(), 0, 'nothing reached Bob');

    // She accepts the new code: the held message goes out, once.
    await a.getByTestId('accept-key-change').click();
    await a.getByTestId('key-held-notice').waitFor({ state: 'detached', timeout: 20_000 });
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).click({ timeout: 30_000 });
    await until('Bob gets the held message', async () => (await bodies(b)).includes('are you still you?'));
    assert.equal((await bodies(b)).filter((t) => t === 'are you still you?').length, 1);
    await openCode(a);
    assert.notEqual(await digits(a), before, 'a new account key, a new code');
    assert.equal(await a.getByTestId('verified-state').textContent(), 'Not verified');
    for (const x of browsers) assert.deepEqual(x.errors, []);
  } finally {
    for (const x of browsers) await x.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

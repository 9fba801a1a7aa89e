// Tandem in Firefox (Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core)
// against the real server and the real built app: two people, each in their own Firefox
// profile, create accounts, run the engine in its worker, chat both ways, and a reload keeps
// the conversation (IndexedDB). The other suites drive Chromium.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';
import { startServer, tempDir, artifactsDir, launchBrowser } from './support/harness.mjs';
import { until, createAccount as createAccountChromium, openChat } from './support/chat.mjs';

const firefoxPath = process.env.FIREFOX ?? '/usr/bin/firefox-esr';

/** Firefox with its own fresh profile (a separate "browser"). */
async function launchFirefox() {
  const profile = tempDir('firefox');
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: firefoxPath,
    headless: true,
    userDataDir: profile,
    defaultViewport: { width: 1200, height: 800 },
    // Calls: Firefox's fake camera and microphone, no permission prompt, sound without a click.
    extraPrefsFirefox: {
      'media.navigator.streams.fake': true,
      'media.navigator.permission.disabled': true,
      'media.autoplay.default': 0,
    },
  });
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return {
    page,
    errors,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

const text = (page, testId) => page.$$eval(`[data-testid="${testId}"]`, (els) => els.map((e) => e.textContent));
const bodies = (page) => text(page, 'message-body');
const hasText = async (page, testId, want) => (await text(page, testId)).some((t) => t.includes(want));

/**
 * Enters text the way a paste or an input method does (one insertion, with its input event):
 * Firefox's WebDriver key actions split characters outside the Basic Multilingual Plane
 * (emoji) into two lone surrogates.
 */
async function type(page, testId, value) {
  await page.click(`[data-testid="${testId}"]`);
  await page.$eval(`[data-testid="${testId}"]`, (el, v) => document.execCommand('insertText', false, v), value);
}

async function createAccount(page, url, handle) {
  await page.goto(url);
  await until('connected', () => hasText(page, 'connection-state', 'Connected'));
  await type(page, 'handle-input', handle);
  await page.click('[data-testid="create-account"]');
  await until(`@${handle} set up`, () => hasText(page, 'my-handle', `@${handle}`), 30_000);
}

async function send(page, message) {
  await type(page, 'composer', message);
  await page.keyboard.press('Enter');
}

/** Opens the chat list's row for `name`. */
const openChatRow = (page, name) =>
  page.$$eval('[data-testid="chat-row"]', (rows, n) => rows.find((r) => r.textContent.includes(n))?.click(), name);

const engineInWorker = (page) =>
  page.evaluate(() => performance.getEntriesByName('tandem-engine-worker').length === 1);

test('Firefox: two people chat, the engine in its worker, a reload keeps the chat', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const alice = await launchFirefox();
  const bob = await launchFirefox();
  try {
    const [a, b] = [alice.page, bob.page];
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await until("Alice's engine in its worker", () => engineInWorker(a));
    await until("Bob's engine in its worker", () => engineInWorker(b));

    await type(a, 'new-chat-input', 'bob');
    await a.keyboard.press('Enter');
    await until('the chat with bob', () => hasText(a, 'conversation-name', 'bob'));
    await send(a, 'Hallo aus Firefox 🦊');
    await until('Bob sees the chat', () => hasText(b, 'chat-row', 'alice'));
    await openChatRow(b, 'alice');
    await until('Bob reads it', async () => (await bodies(b)).includes('Hallo aus Firefox 🦊'));
    await send(b, 'Hello from the other fox.');
    await until('Alice gets the reply', async () => (await bodies(a)).includes('Hello from the other fox.'));
    await until('Alice sees her message read', async () => {
      const states = await a.$$eval('[data-testid="message-state"]', (els) => els.map((e) => e.dataset.state));
      return states.at(0) === 'Read';
    });

    mkdirSync(artifactsDir, { recursive: true });
    await a.screenshot({ path: join(artifactsDir, 'firefox-conversation.png'), fullPage: true });

    // A reload reopens the same device from IndexedDB, with the conversation.
    await b.reload();
    await until('Bob after the reload', () => hasText(b, 'my-handle', '@bob'), 30_000);
    await openChatRow(b, 'alice');
    await until('the history after the reload', async () => {
      const all = await bodies(b);
      return all.includes('Hallo aus Firefox 🦊') && all.includes('Hello from the other fox.');
    });

    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
  } catch (e) {
    // What each screen showed when it failed.
    mkdirSync(artifactsDir, { recursive: true });
    for (const [name, p] of [['alice', alice.page], ['bob', bob.page]]) {
      await p.screenshot({ path: join(artifactsDir, `firefox-failed-${name}.png`), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await alice.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('Firefox takes a video call from Chromium: frames opened end to end both ways', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const chromium = await launchBrowser();
  const bob = await launchFirefox();
  try {
    const a = await chromium.context.newPage();
    const b = bob.page;
    await createAccountChromium(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    const attr = (page, name) => page.$eval('[data-testid="call-screen"]', (el, n) => el.getAttribute(n), name).catch(() => null);

    await a.getByTestId('call-video').click();
    await until('Firefox rings', async () => (await attr(b, 'data-state')) === 'incoming', 30_000);
    await b.click('[data-testid="call-answer"]');
    await until('Firefox in the call', async () => (await attr(b, 'data-state')) === 'in-call', 30_000);
    await until('Chromium in the call', async () => (await a.getByTestId('call-screen').getAttribute('data-state').catch(() => null)) === 'in-call', 30_000);
    await until('Firefox opens frames', async () => Number(await attr(b, 'data-frames-opened')) > 30, 30_000);
    await until('Chromium opens frames', async () => Number(await a.getByTestId('call-screen').getAttribute('data-frames-opened')) > 30, 30_000);
    assert.equal(Number(await attr(b, 'data-frames-dropped')), 0);
    await until('Firefox decodes video', async () => Number(await attr(b, 'data-frames-decoded')) > 10, 30_000);
    assert.equal(await attr(b, 'data-video-aes'), 'webcrypto', 'Firefox opens video with WebCrypto');
    mkdirSync(artifactsDir, { recursive: true });
    await b.screenshot({ path: join(artifactsDir, 'firefox-call.png') });
    await b.click('[data-testid="call-hang-up"]');
    await until('Chromium sees the end', async () => (await a.getByTestId('call-screen').count()) === 0, 20_000);
    assert.deepEqual(bob.errors, []);
    assert.deepEqual(chromium.errors, []);
  } catch (e) {
    mkdirSync(artifactsDir, { recursive: true });
    await bob.page.screenshot({ path: join(artifactsDir, 'firefox-call-failed.png') }).catch(() => {});
    throw e;
  } finally {
    await chromium.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('Firefox in a group: joins a Chromium group, writes to it, opens its info screen', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const chromium = await launchBrowser();
  const bob = await launchFirefox();
  try {
    const a = await chromium.context.newPage();
    const b = bob.page;
    await createAccountChromium(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await a.getByTestId('open-new-group').click();
    await a.getByTestId('group-title-input').fill('Foxes');
    await a.getByTestId('group-members-input').fill('bob');
    await a.getByTestId('create-group').click();
    await a.getByTestId('conversation-name').filter({ hasText: 'Foxes' }).waitFor({ timeout: 30_000 });

    await until('Firefox sees the group', () => hasText(b, 'chat-row', 'Foxes'), 30_000);
    await openChatRow(b, 'Foxes');
    await until('the invitation', () => hasText(b, 'group-invitation', 'alice added you'), 20_000);
    await b.click('[data-testid="join-group"]');
    await until('joined', async () => (await b.$('[data-testid="group-invitation"]')) === null);
    await send(b, 'Firefox made it 🦊');
    await until('Chromium hears it', async () => (await a.getByTestId('message-body').allTextContents()).includes('Firefox made it 🦊'), 30_000);
    assert.ok((await a.getByTestId('message-sender').allTextContents()).includes('bob'));
    await a.getByTestId('composer').fill('welcome @bob');
    await a.getByTestId('composer').press('Enter');
    await until('Firefox hears it, marked', async () => (await text(b, 'mention')).includes('@bob'), 30_000);

    // The info screen: both members, Alice the admin, no admin controls for Bob.
    await b.click('[data-testid="open-group-info"]');
    await until('members listed', async () => (await text(b, 'member-name')).length === 2);
    assert.deepEqual((await text(b, 'member-name')).sort(), ['You', 'alice']);
    assert.equal(await b.$('[data-testid="group-add-input"]'), null);
    mkdirSync(artifactsDir, { recursive: true });
    await b.screenshot({ path: join(artifactsDir, 'firefox-group-info.png') });
    assert.deepEqual(bob.errors, []);
    assert.deepEqual(chromium.errors, []);
  } catch (e) {
    mkdirSync(artifactsDir, { recursive: true });
    await bob.page.screenshot({ path: join(artifactsDir, 'firefox-group-failed.png') }).catch(() => {});
    throw e;
  } finally {
    await chromium.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

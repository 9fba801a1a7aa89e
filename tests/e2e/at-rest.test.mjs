// Encryption at rest and the app lock, in Chromium with the real relay and app: a browser
// locked with a passphrase is closed, its profile directory copied, and the copy shows no
// message text and holds no usable key, in its files or through IndexedDB; opened in a new
// browser it asks for the passphrase, refuses a wrong one and opens with the right one. A
// passkey lock (virtual authenticator with the PRF extension) locks and unlocks, and a
// forgotten lock deletes the browser's data only after a second click.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies } from './support/chat.mjs';

function filesUnder(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

/** Every file of the profile's IndexedDB for the app's origin. */
function indexedDbFiles(profile) {
  const root = join(profile, 'Default', 'IndexedDB');
  return filesUnder(root);
}

function contains(files, text) {
  const needles = [Buffer.from(text, 'utf8'), Buffer.from(text, 'utf16le')];
  return files.some((f) => {
    const bytes = readFileSync(f);
    return needles.some((n) => bytes.includes(n));
  });
}

/** In the page: every value of every object store, searched for `text`; and every CryptoKey. */
async function scanDatabase(page, text) {
  return page.evaluate(async (text) => {
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open('tandem-browser');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const needle = new TextEncoder().encode(text);
    const hasBytes = (b) => {
      outer: for (let i = 0; i + needle.length <= b.length; i++) {
        for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
        return true;
      }
      return false;
    };
    let found = 0, keys = 0, values = 0;
    const visit = (v) => {
      if (v === null || v === undefined) return;
      if (v instanceof CryptoKey) { keys++; return; }
      if (typeof v === 'string') { if (v.includes(text)) found++; return; }
      if (v instanceof ArrayBuffer) { if (hasBytes(new Uint8Array(v))) found++; return; }
      if (ArrayBuffer.isView(v)) { if (hasBytes(new Uint8Array(v.buffer, v.byteOffset, v.byteLength))) found++; return; }
      if (typeof v === 'object') for (const k of Object.keys(v)) visit(v[k]);
    };
    for (const name of db.objectStoreNames) {
      const all = await new Promise((res, rej) => {
        const r = db.transaction(name).objectStore(name).getAll();
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      values += all.length;
      all.forEach(visit);
    }
    db.close();
    return { found, keys, values };
  }, text);
}

test('a locked profile, copied, shows no message and no key, and opens only with the passphrase', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browserA = await launchBrowser();
  const browserB = await launchBrowser();
  const marker = `at-rest-${randomBytes(12).toString('hex')}`;
  const reply = `reply-${randomBytes(12).toString('hex')}`;
  const passphrase = 'correct horse battery staple';
  let copy;
  let browserC;
  try {
    const a = await browserA.context.newPage();
    const b = await browserB.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await send(a, marker);
    await b.getByTestId('chat-row').filter({ hasText: 'alice' }).first().click();
    await until('bob has the message', async () => (await bodies(b)).includes(marker));
    await send(b, reply);
    await until('alice has the reply', async () => (await bodies(a)).includes(reply));

    // Before the lock the values are sealed already, but the key sits in the profile.
    const open = await scanDatabase(a, marker);
    assert.equal(open.found, 0, 'no message text in any stored value');
    assert.ok(open.keys >= 1, 'the data key is stored (usable, not readable) while unlocked');

    await a.getByTestId('open-devices').click();
    await a.getByTestId('lock-passphrase').fill('short');
    await a.getByTestId('lock-passphrase-again').fill('short');
    await a.getByTestId('lock-with-passphrase').click();
    await until('a short passphrase refused', async () => /at least 8/.test(await a.getByTestId('app-lock-error').textContent()));
    await a.getByTestId('lock-passphrase').fill(passphrase);
    await a.getByTestId('lock-passphrase-again').fill(passphrase);
    await a.getByTestId('lock-with-passphrase').click();
    await until('locked', async () => (await a.getByTestId('app-lock-state').getAttribute('data-locked')) === 'true', 30_000);
    await screenshot(a, 'app-lock-on');
    const locked = await scanDatabase(a, marker);
    assert.equal(locked.keys, 0, 'no CryptoKey left in the database once locked');
    assert.equal(locked.found, 0);
    // Still usable in this tab: the key stays in memory until the page closes.
    await a.getByTestId('chat-row').filter({ hasText: 'bob' }).first().click();
    await send(a, 'after the lock');
    await until('bob has the later message', async () => (await bodies(b)).includes('after the lock'));

    // The device record is kept in clear (it holds no secret): a control for the file search.
    const deviceId = await a.evaluate(() => new Promise((res, rej) => {
      const r = indexedDB.open('tandem-browser');
      r.onsuccess = () => {
        const get = r.result.transaction('device').objectStore('device').get('self');
        get.onsuccess = () => { r.result.close(); res(get.result.id); };
        get.onerror = () => rej(get.error);
      };
    }));
    assert.match(deviceId, /^[0-9a-f]{32}$/);
    await browserA.close({ keepProfile: true });
    copy = tempDir('copied-profile');
    cpSync(browserA.profile, copy, { recursive: true });
    rmSync(browserA.profile, { recursive: true, force: true });

    // The copied files: the device record (kept in clear) is found, so the search reads
    // values; the message texts are not.
    const files = indexedDbFiles(copy);
    assert.ok(files.length > 0, 'the copy has IndexedDB files');
    assert.ok(contains(files, 'correct') === false, 'the passphrase is not stored');
    assert.ok(contains(files, deviceId), 'the search finds a value kept in clear');
    assert.equal(contains(files, marker), false, 'the sent text is not in the files');
    assert.equal(contains(files, reply), false, 'the received text is not in the files');

    // Opened in another browser: locked; a wrong passphrase is refused; the right one opens.
    // A phone-sized window in the dark theme: the lock screen must read well there too.
    browserC = await launchBrowser({ profile: copy, colorScheme: 'dark', viewport: { width: 390, height: 760 } });
    const c = await browserC.context.newPage();
    await c.goto(server.url);
    await c.getByTestId('locked').waitFor({ timeout: 20_000 });
    const copied = await scanDatabase(c, marker);
    assert.equal(copied.keys, 0, 'the copy holds no CryptoKey');
    assert.equal(copied.found, 0, 'the copy holds no message text');
    assert.ok(copied.values > 10, 'the copy holds the sealed data');
    assert.equal(await c.getByTestId('chat-row').count(), 0, 'no chat shows while locked');
    await screenshot(c, 'app-locked');
    await c.getByTestId('unlock-passphrase').fill('wrong passphrase');
    await c.getByTestId('unlock').click();
    await until('a wrong passphrase refused', async () => /does not unlock/.test(await c.getByTestId('unlock-error').textContent()), 30_000);
    await c.getByTestId('unlock-passphrase').fill(passphrase);
    await c.getByTestId('unlock-passphrase').press('Enter');
    await c.getByTestId('my-handle').filter({ hasText: '@alice' }).waitFor({ timeout: 30_000 });
    await c.getByTestId('chat-row').filter({ hasText: 'bob' }).first().click();
    await until('the history opens', async () => (await bodies(c)).includes(reply));
  } finally {
    await browserB.close();
    if (browserC) await browserC.close();
    else if (copy) rmSync(copy, { recursive: true, force: true });
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a passkey with the PRF extension locks and unlocks the app', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browser = await launchBrowser();
  try {
    const a = await browser.context.newPage();
    const cdp = await browser.context.newCDPSession(a);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasPrf: true,
        hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    await createAccount(a, server.url, 'carol');
    await a.getByTestId('open-devices').click();
    await a.getByTestId('lock-with-passkey').click();
    await until('locked with the passkey', async () => (await a.getByTestId('app-lock-state').getAttribute('data-locked')) === 'true', 30_000);
    assert.equal((await scanDatabase(a, 'carol')).keys, 0, 'no CryptoKey stored');
    await a.getByTestId('lock-now').click();
    await a.getByTestId('locked').waitFor({ timeout: 20_000 });
    await a.getByTestId('unlock').click();
    await a.getByTestId('my-handle').filter({ hasText: '@carol' }).waitFor({ timeout: 30_000 });
    await screenshot(a, 'app-unlocked-passkey');

    // Forgotten: the person deletes this browser's data from the lock screen, after a second
    // click, and is told the device is still listed until the main device logs it out.
    await a.getByTestId('open-devices').click();
    await a.getByTestId('lock-now').click();
    await a.getByTestId('locked').waitFor({ timeout: 20_000 });
    await a.getByText('Forgot it?').click();
    await a.getByTestId('locked-delete').click();
    assert.equal(await a.getByTestId('locked').count(), 1, 'one click deletes nothing');
    await a.getByTestId('locked-delete').click();
    await until('told what happened', async () => /still listed/.test(await a.getByTestId('logged-out').textContent()), 30_000);
    await screenshot(a, 'app-lock-forgotten');
    assert.equal(await a.getByTestId('create-account').count(), 1, 'the welcome screen, ready for a new start');
  } finally {
    await browser.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

// Links that must fail cleanly: a relay that tampers with the link message, and an account
// that already has its 4 companions. Each says what happened in the UI and links nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount } from './support/chat.mjs';
import { deviceRows, pasteCode, showCode, startLink, confirmLink } from './support/link.mjs';

const problem = (page) => page.getByTestId('link-problem').textContent();

test('a pasted code whose digits the person does not confirm links nothing', async () => {
  // A stranger sends Alice a link code; she pastes it on her phone. The stranger's browser
  // says yes, but Alice has no new device in front of her: she answers no.
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browserA = await launchBrowser();
  const browserB = await launchBrowser();
  try {
    const a = await browserA.context.newPage();
    const b = await browserB.context.newPage();
    await createAccount(a, server.url, 'alice');
    await a.getByTestId('open-devices').click();
    await startLink(b, server.url);
    await pasteCode(a, await showCode(b));
    await a.getByTestId('link-confirm').click();
    await a.getByTestId('primary-match-code').waitFor({ timeout: 20_000 });
    await b.getByTestId('link-match-yes').click();
    await a.getByTestId('primary-match-no').click();
    await a.getByTestId('link-done').filter({ hasText: 'Not linked' }).waitFor({ timeout: 20_000 });
    await screenshot(a, 'link-refused-by-primary');
    // The stranger's browser is not signed in and keeps nothing; Alice lists only her phone.
    // Whichever reaches the relay first: the refusal cancels the link before the stranger's
    // device registers (it is told the link was not accepted and offers a new code), or
    // the device registered and the signed removal logs it out and wipes it.
    const refused = b.getByTestId('link-problem').filter({ hasText: 'did not accept the link' });
    await b.getByTestId('logged-out').or(refused).waitFor({ timeout: 30_000 });
    await screenshot(b, 'link-refused-stranger');
    assert.equal(await b.getByTestId('my-handle').count(), 0, 'the stranger is not signed in');
    await a.reload();
    await a.getByTestId('open-devices').click();
    await until('A lists its own device', async () => (await deviceRows(a)) === 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await deviceRows(a), 1);
    assert.deepEqual(browserA.errors, []);
  } finally {
    await browserA.close();
    await browserB.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a link message tampered with by the relay is refused and links nothing', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir, extraArgs: ['--test-misbehave', 'tamper-provisioning'] });
  const browserA = await launchBrowser();
  const browserB = await launchBrowser();
  try {
    const a = await browserA.context.newPage();
    const b = await browserB.context.newPage();
    await createAccount(a, server.url, 'alice');
    await a.getByTestId('open-devices').click();
    await startLink(b, server.url);
    const code = await showCode(b);
    await pasteCode(a, code);
    await a.getByTestId('link-confirm').click();
    await until('B refuses the damaged link message', async () => /damaged or forged/.test(await problem(b)));
    await screenshot(b, 'link-tampered');
    // B offers a fresh code and stays unlinked; A still has one device.
    await until('a new code on B', async () => (await showCode(b)) !== code);
    assert.equal(await b.getByTestId('my-handle').count(), 0, 'B is not signed in');
    await a.reload();
    await a.getByTestId('open-devices').click();
    await until('A lists its own device', async () => (await deviceRows(a)) === 1);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(await deviceRows(a), 1, 'no half-linked device');
    assert.deepEqual(browserB.errors, []);
  } finally {
    await browserA.close();
    await browserB.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('an account with 4 companions shows its cap and links no fifth', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browserA = await launchBrowser();
  try {
    const a = await browserA.context.newPage();
    await createAccount(a, server.url, 'carol');
    await a.getByTestId('open-devices').click();
    for (let i = 1; i <= 4; i++) {
      const companion = await launchBrowser();
      try {
        const page = await companion.context.newPage();
        await startLink(page, server.url);
        await confirmLink(a, page);
        await page.getByTestId('my-handle').filter({ hasText: '@carol' }).waitFor({ timeout: 30_000 });
        await until(`${i + 1} devices listed on A`, async () => (await deviceRows(a)) === i + 1);
        await a.getByTestId('link-another').click();
      } finally {
        await companion.close();
      }
    }
    // The primary shows the cap instead of the link form, before anyone tries.
    await until('the cap shown', async () => (await a.getByTestId('companion-count').textContent()) === '4 of 4 linked devices');
    await a.getByTestId('companion-cap').waitFor();
    assert.equal(await a.getByTestId('link-input').count(), 0, 'no link form at the cap');
    await screenshot(a, 'link-limit');
    // A fifth browser waiting with its code cannot be linked from here. (The relay refuses a
    // fifth companion too; its own tests show that.)
    const fifth = await launchBrowser();
    try {
      const page = await fifth.context.newPage();
      await startLink(page, server.url);
      await showCode(page);
      await a.reload();
      await a.getByTestId('open-devices').click();
      await a.getByTestId('companion-cap').waitFor({ timeout: 20_000 });
      assert.equal(await deviceRows(a), 5, 'still the primary and 4 companions');
      assert.equal(await page.getByTestId('my-handle').count(), 0, 'the fifth browser is not signed in');
    } finally {
      await fifth.close();
    }
  } finally {
    await browserA.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

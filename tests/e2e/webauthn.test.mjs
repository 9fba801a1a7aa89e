// Biometric confirmation of links with a passkey, in headless Chromium with a virtual
// platform authenticator (Chrome DevTools Protocol), the page served from http://localhost:
// enrolment, a link refused when user verification fails, a link approved with it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount } from './support/chat.mjs';
import { deviceRows, linkError, pasteCode, showCode, startLink, confirmLink } from './support/link.mjs';

test('a passkey is enrolled, and a link needs a verified fingerprint', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browserA = await launchBrowser();
  const browserB = await launchBrowser();
  try {
    const a = await browserA.context.newPage();
    const b = await browserB.context.newPage();
    const cdp = await browserA.context.newCDPSession(a);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', transport: 'internal', hasResidentKey: true,
        hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    await createAccount(a, server.url, 'alice');
    await a.getByTestId('open-devices').click();
    const state = a.getByTestId('passkey-state');
    await until('not enrolled yet', async () => (await state.getAttribute('data-enrolled')) === 'false');
    await a.getByTestId('passkey-enrol').click();
    await until('enrolled', async () => (await state.getAttribute('data-enrolled')) === 'true');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1, 'one passkey on the authenticator');
    await screenshot(a, 'passkey-enrolled');

    // The fingerprint does not match: nothing is linked, and A says why.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await startLink(b, server.url);
    await pasteCode(a, await showCode(b));
    await a.getByTestId('link-confirm').click();
    await until('the refusal explained', async () => /did not succeed.*not linked|not verified.*nothing was approved/s.test(await linkError(a)), 30_000);
    await screenshot(a, 'passkey-refused');
    assert.equal(await a.getByTestId('primary-match-code').count(), 0);
    assert.equal(await deviceRows(a), 1, 'still one device');
    assert.equal(await b.getByTestId('my-handle').count(), 0, 'B is not linked');

    // Verified this time: the link goes through.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });
    await a.getByRole('button', { name: 'Cancel' }).click();
    await confirmLink(a, b);
    await b.getByTestId('my-handle').filter({ hasText: '@alice' }).waitFor({ timeout: 30_000 });
    await until('two devices on A', async () => (await deviceRows(a)) === 2);
    const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.ok(after.credentials[0].signCount >= 1, 'the passkey signed the approval');

    // Removing the passkey goes back to a click to confirm.
    await a.getByTestId('passkey-remove').click();
    await until('not enrolled again', async () => (await state.getAttribute('data-enrolled')) === 'false');
    assert.deepEqual(browserA.errors, []);
  } finally {
    await browserA.close();
    await browserB.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

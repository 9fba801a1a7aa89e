// The first screen against the real server and the real built app: connection state, the
// persistent device record, offline and reconnect, and the app hosted as a static site.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startServer, startStaticHost, launchBrowser, screenshot, tempDir, distDir } from './support/harness.mjs';

async function waitForText(locator, text, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = (await locator.textContent().catch(() => null))?.trim();
    if (last === text) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`expected "${text}", last saw "${last}"`);
}

test('first screen connects, keeps its device record, shows offline and reconnects', async () => {
  const dataDir = tempDir('data');
  let server = await startServer({ dataDir });
  const browser = await launchBrowser();
  try {
    const page = await browser.context.newPage();
    await page.goto(server.url);
    const state = page.getByTestId('connection-state');
    await waitForText(state, 'Connected');
    await assert.doesNotReject(page.getByRole('heading', { name: 'Private messages on every device' }).waitFor());
    assert.equal(await page.title(), 'Tandem');
    const deviceId = await page.getByTestId('device-id').getAttribute('data-full-id');
    assert.match(deviceId, /^[0-9a-f]{32}$/);
    assert.match(await page.getByTestId('server-details').textContent(), /Tandem server \d+\.\d+\.\d+/);
    await screenshot(page, 'first-screen');

    // A reload finds the same record in IndexedDB.
    await page.reload();
    await waitForText(state, 'Connected');
    assert.equal(await page.getByTestId('device-id').getAttribute('data-full-id'), deviceId);
    assert.equal(await page.getByText('This browser was just set up').count(), 0);

    // The server goes away: the app says so, with a way to retry.
    await server.stop();
    await waitForText(state, 'Offline');
    const banner = page.getByTestId('offline-banner');
    await banner.waitFor();
    assert.match(await banner.textContent(), /You're offline/);
    assert.equal(await page.getByRole('button', { name: 'Retry now' }).count(), 1);
    await screenshot(page, 'offline');

    // It comes back on the same port with the same data: the app reconnects by itself.
    server = await startServer({ dataDir, port: server.port });
    await waitForText(state, 'Connected', 30_000);
    assert.equal(await banner.count(), 0);
    assert.equal(await page.getByTestId('device-id').getAttribute('data-full-id'), deviceId);
    assert.deepEqual(browser.errors, []);
  } finally {
    await browser.close();
    await server.stop().catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the app hosted as a plain static site talks to a configured server', async () => {
  const dataDir = tempDir('data');
  const relay = await startServer({ dataDir, apiOnly: true });
  const host = await startStaticHost(distDir);
  const browser = await launchBrowser({ colorScheme: 'dark', viewport: { width: 390, height: 844 } });
  try {
    const page = await browser.context.newPage();
    // Without configuration the static host is not a relay: the app reports it cannot connect.
    await page.goto(host.url);
    await waitForText(page.getByTestId('connection-state'), 'Offline');
    // ?server= points it at the relay, and the choice is remembered.
    await page.goto(`${host.url}?server=${encodeURIComponent(relay.url)}`);
    await waitForText(page.getByTestId('connection-state'), 'Connected');
    assert.match(await page.getByTestId('server-url').textContent(), new RegExp(`ws://localhost:${relay.port}/v1/socket`));
    await page.goto(host.url);
    await waitForText(page.getByTestId('connection-state'), 'Connected');
    await screenshot(page, 'static-host-narrow-dark');

    // A bad address in settings is refused with an explanation; nothing changes.
    await page.getByRole('button', { name: 'Use another server' }).click();
    await page.getByLabel('Server address').fill('ftp://example.com');
    await page.getByRole('button', { name: 'Connect' }).click();
    assert.match(await page.locator('#server-error').textContent(), /not supported/);
    await page.keyboard.press('Escape');
    assert.match(await page.getByTestId('server-url').textContent(), new RegExp(`localhost:${relay.port}`));
    await waitForText(page.getByTestId('connection-state'), 'Connected');

    // "Use this page's server" forgets the setting.
    await page.getByRole('button', { name: "Use this page's server" }).click();
    await waitForText(page.getByTestId('connection-state'), 'Offline');
    assert.deepEqual(browser.errors, []);
  } finally {
    await browser.close();
    await host.stop();
    await relay.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

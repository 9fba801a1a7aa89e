// What people do in the app, for the end-to-end tests.

import assert from 'node:assert/strict';

export async function until(what, fn, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e.message; }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what} (last: ${last})`);
}

export async function createAccount(page, url, handle) {
  await page.goto(url);
  await page.getByTestId('connection-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
  await page.getByTestId('handle-input').fill(handle);
  await page.getByTestId('create-account').click();
  await page.getByTestId('my-handle').filter({ hasText: `@${handle}` }).waitFor({ timeout: 30_000 });
}

export async function openChat(page, handle) {
  await page.getByTestId('new-chat-input').fill(handle);
  await page.getByTestId('new-chat-input').press('Enter');
  await page.getByTestId('conversation-name').filter({ hasText: handle }).waitFor();
}

export async function send(page, text) {
  const composer = page.getByTestId('composer');
  await composer.fill(text);
  await composer.press('Enter');
}

export const bodies = (page) => page.getByTestId('message-body').allTextContents();
export const states = (page) => page.getByTestId('message-state').evaluateAll((els) => els.map((e) => e.dataset.state));


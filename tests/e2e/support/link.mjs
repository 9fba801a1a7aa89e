// Linking a companion browser, as a person does it: the companion shows a code, the primary
// pastes its text, checks which device asks, and confirms.

import assert from 'node:assert/strict';
import { until } from './chat.mjs';

export const codeText = (page) => page.getByTestId('link-code-text').inputValue();
export const linkError = (page) => page.getByTestId('link-error').textContent();
export const deviceRows = (page) => page.getByTestId('device-row').count();

/** Waits for the companion's code and returns its text. */
export async function showCode(page) {
  await page.getByTestId('link-code-text').waitFor({ timeout: 20_000 });
  const text = await codeText(page);
  assert.match(text, /^tandem-link:[A-Za-z0-9_-]+$/);
  return text;
}

/** The primary pastes `text` into its link form (the device panel must be open). */
export async function pasteCode(primary, text) {
  await primary.getByTestId('link-input').fill(text);
  await primary.getByTestId('link-continue').click();
}

/** Opens the app on `companion` and starts linking there. */
export async function startLink(companion, url) {
  await companion.goto(url);
  await companion.getByTestId('connection-state').filter({ hasText: 'Connected' }).waitFor({ timeout: 20_000 });
  await companion.getByTestId('start-link').click();
}

/**
 * Links `companion` (showing its code) to `primary` (device panel open). Codes rotate every
 * 20 s, so one may be replaced between reading and confirming: like a person, try again
 * with the code shown then, at most three times. Returns the primary's matching code.
 */
export async function confirmLink(primary, companion, { onConfirm } = {}) {
  for (let attempt = 1; attempt <= 3; attempt++) {
    await pasteCode(primary, await showCode(companion));
    if (onConfirm) await onConfirm(attempt);
    await primary.getByTestId('link-confirm').click();
    const outcome = await until('the link sent or refused', async () => {
      if (await primary.getByTestId('primary-match-code').count()) return 'sent';
      if (/expired/.test(await linkError(primary))) return 'replaced';
      return false;
    });
    if (outcome === 'sent') return compareCodes(primary, companion);
  }
  assert.fail('three link codes in a row were replaced before they were used');
}

/**
 * Both screens show a six-digit code: like a person, compare them and say yes on both.
 * Nothing is linked before: the companion registers only after its yes, and the primary
 * signs it into the account only after its own. Returns the digits.
 */
export async function compareCodes(primary, companion) {
  const digits = await primary.getByTestId('primary-match-code').textContent();
  await companion.getByTestId('companion-match-code').waitFor({ timeout: 20_000 });
  assert.equal(await companion.getByTestId('companion-match-code').textContent(), digits);
  await companion.getByTestId('link-match-yes').click();
  await primary.getByTestId('primary-match-yes').click();
  await primary.getByTestId('link-done').waitFor({ timeout: 20_000 });
  return digits;
}

/**
 * Links `companion` to the account of `primary` (its device panel open) the whole way, and
 * waits until the companion shows the account's handle.
 */
export async function linkCompanion(primary, companion, url, handle) {
  await startLink(companion, url);
  await confirmLink(primary, companion);
  await companion.getByTestId('my-handle').filter({ hasText: `@${handle}` }).waitFor({ timeout: 30_000 });
}

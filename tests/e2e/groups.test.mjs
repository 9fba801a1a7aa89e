// Group chats in the browser through the real relay: a group is created from the app,
// strangers see an invitation and join, everyone's texts reach every device of everyone
// with the sender's name (Bob has two browsers: a primary and a linked companion), and
// the group info screen adds, removes, promotes, demotes and renames: someone added sees
// nothing from before, someone removed or gone sees nothing after, and every device shows
// the same change lines in the same order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startServer, launchBrowser, screenshot, tempDir, repoRoot } from './support/harness.mjs';
import { until, createAccount, openChat, send, bodies } from './support/chat.mjs';
import { linkCompanion } from './support/link.mjs';

const senders = (page) => page.getByTestId('message-sender').allTextContents();
const lines = (page) => page.getByTestId('notice-text').allTextContents();

/** Opens the chat named `name` from the chat list. */
async function openRow(page, name) {
  const row = page.getByTestId('chat-row').filter({ hasText: name });
  await row.first().waitFor({ timeout: 20_000 });
  await row.first().click();
  await page.getByTestId('conversation-name').filter({ hasText: name }).waitFor();
}

/** The group's change lines (not the call or key lines) on `page`, in order. */
const changeLines = async (page) => (await lines(page)).filter((l) => / (created the group|added|removed|left|made|renamed)/.test(l));

/** Opens the group's info screen (once) and waits for its member rows. */
async function openInfo(page) {
  if ((await page.getByTestId('group-info').count()) === 0) await page.getByTestId('open-group-info').click();
  await page.getByTestId('group-member').first().waitFor();
}

/** The member row named `name` on the info screen. */
const memberRow = (page, name) => page.getByTestId('group-member').filter({ has: page.getByTestId('member-name').getByText(name, { exact: true }) });

/** Waits for the info screen to say `done`, and no error. */
async function settled(page, done) {
  await until(done, async () => {
    const err = await page.getByTestId('group-info-error').textContent();
    if (err) throw new Error(err);
    return (await page.getByTestId('group-info-status').textContent()).includes(done);
  }, 30_000);
}

test('a group made in the browser: invitations, two devices, info screen edits, leaving', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browsers = await Promise.all([
    launchBrowser(), launchBrowser(), launchBrowser({ viewport: { width: 420, height: 820 } }),
    launchBrowser({ colorScheme: 'dark' }), launchBrowser(),
  ]);
  try {
    const [a, b1, b2, c, d] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await createAccount(b1, server.url, 'bob');
    await createAccount(c, server.url, 'carol');
    await createAccount(d, server.url, 'dave');
    await b1.getByTestId('open-devices').click();
    await linkCompanion(b1, b2, server.url, 'bob');
    await b1.getByTestId('close-devices').click().catch(() => {});
    const bobs = [b1, b2];

    // Bad input first: no name, no people, someone who does not exist.
    await a.getByTestId('open-new-group').click();
    await a.getByTestId('create-group').click();
    await until('no name', async () => /Give the group a name/.test(await a.getByTestId('group-error').textContent()));
    await a.getByTestId('group-title-input').fill('Climbing');
    await a.getByTestId('group-members-input').fill('bob, nobody_here');
    await a.getByTestId('create-group').click();
    await until('unknown person', async () => /nobody_here/.test(await a.getByTestId('group-error').textContent()));
    await a.getByTestId('group-members-input').fill('@bob, carol');
    await screenshot(a, 'group-new');
    await a.getByTestId('create-group').click();
    await a.getByTestId('conversation-name').filter({ hasText: 'Climbing' }).waitFor({ timeout: 30_000 });
    assert.equal(await a.getByTestId('group-members').textContent(), '3 members');

    // Bob and Carol are strangers to Alice: an invitation waits, no composer until they join.
    for (const p of [b1, c]) {
      await openRow(p, 'Climbing');
      await p.getByTestId('group-invitation').waitFor();
      await until('inviter named', async () => /alice added you/.test(await p.getByTestId('group-invitation').textContent()));
      assert.equal(await p.getByTestId('composer').isVisible(), false);
    }
    await until('the line names people', async () => (await lines(b1)).some((l) => /^alice created the group with (you and carol|carol and you)\.$/.test(l)));
    assert.ok((await lines(a)).some((l) => /^You created the group with (bob and carol|carol and bob)\.$/.test(l)));
    await screenshot(b1, 'group-invitation');
    for (const p of [b1, c]) {
      await p.getByTestId('join-group').click();
      await until('joined', async () => (await p.getByTestId('group-invitation').count()) === 0);
      await p.getByTestId('composer').waitFor();
    }
    // Bob joined on his primary: his companion is in too, without asking him again.
    await openRow(b2, 'Climbing');
    await until('the companion joined with the account', async () => (await b2.getByTestId('group-invitation').count()) === 0, 30_000);
    await b2.getByTestId('composer').waitFor();

    await send(a, 'hello group');
    for (const p of [...bobs, c]) {
      await until('Alice heard', async () => (await bodies(p)).includes('hello group'), 30_000);
      assert.deepEqual(await senders(p), ['alice']);
    }
    // Bob writes from his companion: everyone hears it, his primary shows it as his own.
    await send(b2, 'hi all, from the laptop');
    for (const p of [a, c, b1]) {
      await until('Bob heard', async () => (await bodies(p)).includes('hi all, from the laptop'), 30_000);
    }
    for (const p of [a, c]) assert.ok((await senders(p)).includes('bob'));
        // A mention: it stands out for everyone, and marks the message for the person named.
        // Bob looks at his devices on his primary and at the chat list on his (narrow)
    // companion: the group's row says he was mentioned.
    await b1.getByTestId('open-devices').click();
    await b2.getByRole('button', { name: 'Back to chats' }).click();
    await send(c, 'see you there @alice and @bob.');
    await until('Alice heard', async () => (await bodies(a)).includes('see you there @alice and @bob.'), 30_000);
    const mentioned = a.locator('[data-testid=message].mentioned');
    await until('marked for Alice', async () => (await mentioned.count()) === 1);
    assert.deepEqual(await mentioned.getByTestId('mention').allTextContents(), ['@alice', '@bob']);
    assert.equal(await a.locator('.mention-me').textContent(), '@alice');
    await screenshot(a, 'group-mention');
        const climbing = (p) => p.getByTestId('chat-row').filter({ hasText: 'Climbing' });
    for (const p of bobs) {
      await until('the row says @', async () => (await climbing(p).getByTestId('chat-mention').count()) === 1, 30_000);
      assert.match(await climbing(p).getAttribute('aria-label'), /Climbing, 1 unread, mentions you/);
    }
    assert.equal(await climbing(a).getByTestId('chat-mention').count(), 0, 'read while open');
    await screenshot(b2, 'group-mention-row');
    // He opens it on his primary: read there, the "@" goes on both.
    await openRow(b1, 'Climbing');
    await until('Bob heard', async () => (await bodies(b1)).includes('see you there @alice and @bob.'), 30_000);
    assert.equal(await b1.locator('.mention-me').textContent(), '@bob');
    for (const p of bobs) {
      await until('the @ went', async () => (await climbing(p).getByTestId('chat-mention').count()) === 0, 30_000);
    }
    await openRow(b2, 'Climbing');
        // Open, the group reads as read: no unread count on its row.
    await until('read while open', async () => (await c.getByTestId('chat-row').getByTestId('unread').count()) === 0);
    await screenshot(c, 'group-chat');

    // Read receipts in a group go to the sender alone: Alice's first message turns "Read"
    // once Bob (on either device) and Carol read it, and its info says who.
    const hello = a.getByTestId('message').filter({ hasText: 'hello group' });
    await until('read by both', async () => (await hello.getByTestId('message-state').getAttribute('data-state')) === 'Read', 30_000);
    await hello.hover();
    await hello.getByTestId('message-info').click();
    await until('info says who', async () => /Read by 2 of 2/.test(await a.getByTestId('receipt-summary').textContent()));
    assert.deepEqual((await a.getByTestId('receipt-name').allTextContents()).sort(), ['bob', 'carol']);
    await screenshot(a, 'group-message-info');
    await a.getByTestId('close-message-info').click();
    // Someone else's message has no info (only its sender hears receipts).
    assert.equal(await a.getByTestId('message').filter({ hasText: 'hi all, from the laptop' }).getByTestId('message-info').count(), 0);

    // A reply: Carol answers Bob's message (Esc drops a reply she did not want); everyone
    // sees the quote, and the quote leads to the message.
    const bobsLine = c.getByTestId('message').filter({ hasText: 'hi all, from the laptop' });
    await bobsLine.hover();
    await bobsLine.getByTestId('message-reply').click();
    await until('replying', async () => /Replying to bob/.test(await c.getByTestId('reply-bar').textContent()));
    await c.getByTestId('composer').press('Escape');
    await until('reply dropped', async () => (await c.getByTestId('reply-bar').count()) === 0);
    await bobsLine.hover();
    await bobsLine.getByTestId('message-reply').click();
    await c.getByTestId('reply-bar').waitFor();
    await c.keyboard.type('count me in');
    await c.keyboard.press('Enter');
    await until('bar gone once sent', async () => (await c.getByTestId('reply-bar').count()) === 0);
    for (const p of [a, b1, b2, c]) {
      const reply = p.getByTestId('message').filter({ hasText: 'count me in' });
      await until('reply arrived', async () => (await reply.count()) === 1, 30_000);
      const quote = await reply.getByTestId('message-quote').textContent();
      assert.match(quote, /hi all, from the laptop/);
      assert.match(quote, p === b1 || p === b2 ? /You/ : /bob/);
    }
    await a.getByTestId('message').filter({ hasText: 'count me in' }).getByTestId('message-quote').click();
    await until('the answered message is shown', async () => (await a.locator('[data-testid=message].flash').count()) === 1);
    await screenshot(a, 'group-reply');


    // The info screen: everyone listed, Alice the admin; only admins see the controls.
    await openInfo(a);
    assert.equal(await a.getByTestId('group-member').count(), 3);
    await until('names learned', async () => {
      const names = await a.getByTestId('member-name').allTextContents();
      return names[0] === 'You' && [...names.slice(1)].sort().join() === 'bob,carol';
    });
    assert.equal(await memberRow(a, 'You').getByTestId('member-admin').count(), 1);
    assert.match(await memberRow(a, 'bob').getByTestId('member-trust').textContent(), /Not verified/);
    await openInfo(c);
    assert.equal(await c.getByTestId('group-add-input').count(), 0, 'no admin controls for a member');
    assert.equal(await c.getByTestId('member-remove').count(), 0);
    await c.getByTestId('close-group-info').click();

    // Bad input on the info screen: nobody to add, someone unknown.
    await a.getByTestId('group-add').click();
    await until('nobody typed', async () => /Type the Tandem names/.test(await a.getByTestId('group-info-error').textContent()));
    await a.getByTestId('group-add-input').fill('no_such_person');
    await a.getByTestId('group-add').click();
    await until('unknown person', async () => /no_such_person/.test(await a.getByTestId('group-info-error').textContent()));

    // Alice adds Dave: he is asked, joins, and sees nothing from before he was added.
    await a.getByTestId('group-add-input').fill('dave');
    await a.getByTestId('group-add').click();
    await settled(a, 'Added dave.');
    await until('four rows', async () => (await a.getByTestId('group-member').count()) === 4);
    // Adding someone who is in already signs nothing and says so.
    await a.getByTestId('group-add-input').fill('dave, bob');
    await a.getByTestId('group-add').click();
    await until('already in', async () => /in the group already/.test(await a.getByTestId('group-info-error').textContent()));
    await openRow(d, 'Climbing');
    await d.getByTestId('join-group').click();
    await d.getByTestId('composer').waitFor();
    await a.getByTestId('close-group-info').click();
    await send(a, 'welcome dave');
    await until('Dave heard', async () => (await bodies(d)).includes('welcome dave'), 30_000);
    assert.deepEqual(await bodies(d), ['welcome dave'], 'nothing from before he joined');
    for (const p of [...bobs, c]) await until('the others heard', async () => (await bodies(p)).includes('welcome dave'), 30_000);

    // Alice makes Bob an admin; Bob (on his companion) renames the group; Alice dismisses him.
    await openInfo(a);
    await memberRow(a, 'bob').getByTestId('member-promote').click();
    await settled(a, 'bob is an admin now.');
    await until('the admin pill', async () => (await memberRow(a, 'bob').getByTestId('member-admin').count()) === 1);
    await until('Bob may edit', async () => {
      await openInfo(b2);
      return (await b2.getByTestId('group-rename-input').count()) === 1;
    }, 30_000);
    await b2.getByTestId('group-rename-input').fill('Climbing club');
    await b2.getByTestId('group-rename').click();
    await settled(b2, 'Renamed to “Climbing club”.');
    await screenshot(b2, 'group-info-narrow');
    for (const p of [a, b1, c, d]) {
      await until('renamed everywhere', async () => (await p.getByTestId('conversation-name').textContent()) === 'Climbing club', 30_000);
    }
    await memberRow(a, 'bob').getByTestId('member-demote').click();
    await settled(a, 'bob is no longer an admin.');
    await until('Bob may no longer edit', async () => (await b2.getByTestId('group-rename-input').count()) === 0, 30_000);
    await b2.getByTestId('close-group-info').click();

    // Alice removes Carol (asked first; Cancel keeps her): Carol cannot write and hears
    // nothing after; everyone else does.
    await memberRow(a, 'carol').getByTestId('member-remove').click();
    await memberRow(a, 'carol').getByTestId('member-remove-cancel').click();
    await memberRow(a, 'carol').getByTestId('member-remove').click();
    await screenshot(a, 'group-info');
    await memberRow(a, 'carol').getByTestId('member-remove-confirm').click();
    await settled(a, 'Removed carol.');
    await until('three rows', async () => (await a.getByTestId('group-member').count()) === 3);
    await until('Carol cannot write', async () => !(await c.getByTestId('composer').isVisible()), 30_000);
    await a.getByTestId('close-group-info').click();
    await send(a, 'after carol');
    for (const p of [...bobs, d]) await until('the rest heard', async () => (await bodies(p)).includes('after carol'), 30_000);

    // Dave leaves (asked first; Cancel keeps him).
    await d.getByTestId('leave-group').click();
    await d.getByTestId('leave-cancel').click();
    await d.getByTestId('leave-group').waitFor();
    await d.getByTestId('leave-group').click();
    await screenshot(d, 'group-leave-confirm');
    await d.getByTestId('leave-confirm').click();
    await until('Alice sees the leave', async () => (await lines(a)).includes('dave left.'), 30_000);
    await until('Dave cannot write', async () => !(await d.getByTestId('composer').isVisible()));
    await send(b1, 'just us now');
    await until('Alice heard', async () => (await bodies(a)).includes('just us now'), 30_000);
    await until('his companion too', async () => (await bodies(b2)).includes('just us now'), 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal((await bodies(c)).includes('after carol'), false, 'nothing after removal');
    assert.equal((await bodies(c)).includes('just us now'), false);
    assert.equal((await bodies(d)).includes('just us now'), false, 'nothing after leaving');

    // Every device of the people still in shows the same changes in the same order.
    const expected = [
      /^(You|alice) created the group with /,
      /^(You|alice) added (you|dave)\.$/,
      /^(You|alice) made (you|bob) admin\.$/,
      /^(You|bob) renamed the group to “Climbing club”\.$/,
      /^(You|alice) removed (you|bob) as admin\.$/,
      /^(You|alice) removed (you|carol)\.$/,
      /^dave left\.$/,
    ];
    for (const p of [a, b1, b2]) {
      const got = await changeLines(p);
      assert.equal(got.length, expected.length, `${got.join(' | ')}`);
      got.forEach((l, i) => assert.match(l, expected[i]));
    }
    await screenshot(a, 'group-after-leave');
  } finally {
    await Promise.all(browsers.map((x) => x.close()));
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

const codeText = async (page) => {
  await page.getByTestId('security-code-text').waitFor({ timeout: 20_000 });
  return page.getByTestId('security-code-text').inputValue();
};
const answers = (page) => page.getByTestId('verify-result').getAttribute('data-answer', { timeout: 100 }).then(Number).catch(() => 0);

test('a verified member starts over with new keys: the group\'s messages wait for Alice, go without him, then to him', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browsers = await Promise.all([launchBrowser(), launchBrowser(), launchBrowser()]);
  try {
    const [a, b, c] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await createAccount(c, server.url, 'carol');
    // Alice and Bob talk, compare codes, and Alice marks Bob verified.
    await openChat(a, 'bob');
    await send(a, 'hi bob');
    await openRow(b, 'alice');
    await until('Bob has it', async () => (await bodies(b)).includes('hi bob'), 30_000);
    await b.getByTestId('open-security-code').click();
    const bobsCode = await codeText(b);
    await a.getByTestId('open-security-code').click();
    await a.getByTestId('security-digits').waitFor({ timeout: 20_000 });
    const before = await answers(a);
    await a.getByTestId('verify-input').fill(bobsCode);
    await a.getByTestId('verify-submit').click();
    await until('checked', async () => (await answers(a)) > before);
    assert.match(await a.getByTestId('verify-result').textContent(), /codes match/);
    await a.getByTestId('close-security-code').click();
    await b.getByTestId('close-security-code').click();

    // Alice makes a group with Bob and Carol; Carol joins.
    await a.getByTestId('open-new-group').click();
    await a.getByTestId('group-title-input').fill('Ropes');
    // Bob is picked from Alice's chats with one click (a second click would unpick him).
    await a.getByTestId('group-members-input').fill('carol');
    await a.getByTestId('pick-contact').filter({ hasText: 'bob' }).click();
    assert.equal(await a.getByTestId('group-members-input').inputValue(), 'carol, bob');
    assert.equal(await a.getByTestId('pick-contact').filter({ hasText: 'bob' }).getAttribute('aria-pressed'), 'true');
    await screenshot(a, 'group-new-pick');
    await a.getByTestId('create-group').click();
    await a.getByTestId('conversation-name').filter({ hasText: 'Ropes' }).waitFor({ timeout: 30_000 });
    await openRow(c, 'Ropes');
    await c.getByTestId('join-group').click();
    await c.getByTestId('composer').waitFor();
    await send(a, 'before the change');
    await until('Carol heard', async () => (await bodies(c)).includes('before the change'), 30_000);
    assert.equal(await a.getByTestId('key-held-notice').count(), 0);

    // Bob starts over with new keys.
    await b.getByTestId('open-devices').click();
    await b.getByTestId('reset-keys').click();
    await b.getByTestId('reset-keys').filter({ hasText: 'Confirm' }).click();
    await until('Bob has new keys', async () => /New security keys/.test(await b.getByTestId('info').textContent()), 30_000);

    // Alice writes to the group: her client learns of Bob's new key, and because she had
    // verified him the whole message waits (Carol gets nothing yet) with the reason shown.
    await send(a, 'is everyone still who they were?');
    await a.getByTestId('key-held-notice').waitFor({ timeout: 30_000 });
    assert.match(await a.getByTestId('key-held-notice').textContent(), /bob's security code changed/);
    assert.equal(await a.getByTestId('message-state').last().getAttribute('data-state'), 'Waiting to send');
    await screenshot(a, 'group-key-held');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await bodies(c)).includes('is everyone still who they were?'), false, 'held for everyone');

    // "View code" shows Bob's new code in the group; Done goes back.
    await a.getByTestId('key-held-notice').getByRole('button', { name: 'View code' }).click();
    await a.getByTestId('security-digits').waitFor({ timeout: 20_000 });
    await a.getByTestId('close-security-code').click();

        // She sends it without Bob: Carol gets it (once); the notice stays, since the next
    // message would wait again.
    await a.getByTestId('send-without').click();
    await until('Carol gets it', async () => (await bodies(c)).includes('is everyone still who they were?'), 30_000);
    await until('sent', async () => (await a.getByTestId('message-state').last().getAttribute('data-state')) !== 'Waiting to send', 20_000);
    assert.equal(await a.getByTestId('key-held-notice').count(), 1);
    assert.equal((await bodies(c)).filter((t) => t === 'is everyone still who they were?').length, 1);

    // The next one waits; she accepts: it goes out, once.
    await send(a, 'welcome back bob');
    await until('waits', async () => (await a.getByTestId('message-state').last().getAttribute('data-state')) === 'Waiting to send', 20_000);
    await a.getByTestId('accept-key-change').click();
    await a.getByTestId('key-held-notice').waitFor({ state: 'detached', timeout: 20_000 });
    await until('Carol gets it', async () => (await bodies(c)).includes('welcome back bob'), 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await bodies(c)).filter((t) => t === 'welcome back bob').length, 1);
    await until('sent', async () => (await a.getByTestId('message-state').last().getAttribute('data-state')) !== 'Waiting to send', 20_000);
  } finally {
    await Promise.all(browsers.map((x) => x.close()));
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a 301-member group: adding 300 people shows progress, the member list stays a screenful of rows', async () => {
  const dataDir = tempDir('data');
  // Set-up only: 300 registrations and Alice's 300 handle lookups come from one address.
  const server = await startServer({ dataDir, extraArgs: ['--auth-per-minute', '1000000', '--lookup-per-minute', '1000000'] });
  const browser = await launchBrowser();
  try {
    const people = 300;
    execFileSync(join(repoRoot, 'target', 'debug', 'tandem-load'), [
      '--url', `ws://127.0.0.1:${server.port}/v1/socket`, '--mode', 'members', '--devices', String(people), '--prefix', 'big',
    ], { stdio: 'ignore' });
    const a = await browser.context.newPage();
    await createAccount(a, server.url, 'alice');
    await a.getByTestId('open-new-group').click();
    await a.getByTestId('group-title-input').fill('Everyone');
    await a.getByTestId('group-members-input').fill('big_m0');
    await a.getByTestId('create-group').click();
    await a.getByTestId('conversation-name').filter({ hasText: 'Everyone' }).waitFor({ timeout: 30_000 });

    // 299 more from the info screen: finding them, then telling all 300, with progress.
    await a.getByTestId('open-group-info').click();
    const handles = Array.from({ length: people - 1 }, (_, i) => `big_m${i + 1}`).join(', ');
    await a.getByTestId('group-add-input').fill(handles);
    await a.getByTestId('group-add').click();
    await until('progress shown', async () => /Telling the group's members: \d+ of 30\d people/.test(await a.getByTestId('work-progress').textContent({ timeout: 100 }).catch(() => '')), 60_000);
    await screenshot(a, 'group-large-progress');
    await until('added', async () => {
      const err = await a.getByTestId('group-info-error').textContent();
      if (err) throw new Error(err);
      return /Added/.test(await a.getByTestId('group-info-status').textContent());
    }, 120_000);
    // The status names a few and counts the rest.
    assert.match(await a.getByTestId('group-info-status').textContent(), /^Added big_m1, big_m2, big_m3, big_m4, big_m5 and 294 others?\.$/);
    await a.getByTestId('work-progress').waitFor({ state: 'detached', timeout: 10_000 });
    assert.equal(await a.getByTestId('group-members').textContent(), '301 members');

    // Virtualised: a screenful of rows in the document, each saying where it stands.
    const rows = a.getByTestId('group-member');
    await until('rows drawn', async () => (await rows.count()) > 5);
    assert.ok((await rows.count()) < 40, `${await rows.count()} rows in the document`);
    assert.equal(await rows.first().getAttribute('aria-setsize'), '301');
    assert.equal(await a.getByTestId('member-name').first().textContent(), 'You');
    // Scrolled to the end: the last rows are drawn, the first are gone.
    await a.locator('.member-scroll').evaluate((el) => { el.scrollTop = el.scrollHeight; });
    await until('the end drawn', async () => (await rows.last().getAttribute('aria-posinset')) === '301');
    assert.ok((await rows.count()) < 40);
    assert.notEqual(await a.getByTestId('member-name').first().textContent(), 'You');
        await until('names learned', async () => (await a.getByTestId('member-name').allTextContents()).every((n) => n.startsWith('big_m')), 30_000);
    // Members are listed by name (the people Alice added by name are known to her).
    const shown = await a.getByTestId('member-name').allTextContents();
    assert.deepEqual(shown, [...shown].sort(), 'alphabetical');
    assert.equal(shown.at(-1), 'big_m99');
    await screenshot(a, 'group-large-members');
    await a.getByTestId('close-group-info').click();
    await send(a, 'hello, all 300 of you');
    await until('sent', async () => (await a.getByTestId('message-state').last().getAttribute('data-state')) !== 'Waiting to send', 60_000);
    assert.deepEqual(browser.errors, []);
  } finally {
    await browser.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

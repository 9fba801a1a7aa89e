// 1:1 calls between real browsers through the real relay, with Chromium's fake camera and
// microphone: every device of the callee rings, the first to answer takes the call, media
// flows both ways end-to-end encrypted (SFrame in the media worker), and hangups, declines
// and the end-to-end checks leave the right lines on every device.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, launchBrowser, screenshot, tempDir } from './support/harness.mjs';
import { until, createAccount, openChat } from './support/chat.mjs';
import { linkCompanion } from './support/link.mjs';

const callState = (page) => page.getByTestId('call-screen').getAttribute('data-state').catch(() => null);
const status = (page) => page.getByTestId('call-status').textContent().catch(() => '');
const lines = (page) => page.getByTestId('notice-text').allTextContents();

async function link(primary, companion, url, handle) {
  await primary.getByTestId('open-devices').click();
  await linkCompanion(primary, companion, url, handle);
}

/** The remote video's frames decoded, and whether it shows something (not black). */
const remoteVideo = (page) => page.evaluate(() => {
  const v = document.querySelector('[data-testid=remote-video]');
  if (!v || !v.videoWidth) return { decoded: 0, lit: 0 };
  const c = document.createElement('canvas');
  c.width = 64; c.height = 48;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0, 64, 48);
  const px = g.getImageData(0, 0, 64, 48).data;
  let lit = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] > 60) lit++;
  const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : { totalVideoFrames: 0 };
  return { decoded: q.totalVideoFrames, lit };
});

/** Inbound audio energy and video frames decoded, from the peer connection's stats. */
const attr = async (page, name) => page.getByTestId('call-screen').getAttribute(name).catch(() => null);
const energy = async (page) => Number(await attr(page, 'data-audio-energy'));
/** Whether the received audio's energy still rises over two seconds. */
async function audioRising(page) {
  const before = await energy(page);
  await new Promise((r) => setTimeout(r, 2000));
  return (await energy(page)) > before + 1e-4;
}
const opened = async (page) => Number(await page.getByTestId('call-screen').getAttribute('data-frames-opened'));
const dropped = async (page) => Number(await page.getByTestId('call-screen').getAttribute('data-frames-dropped'));

test('Alice calls Bob on two devices: both ring, one answers, media flows both ways, hangup ends it', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const browsers = await Promise.all([launchBrowser(), launchBrowser(), launchBrowser({ colorScheme: 'dark' })]);
  try {
    const [a, b1, b2] = await Promise.all(browsers.map((x) => x.context.newPage()));
    await createAccount(a, server.url, 'alice');
    await createAccount(b1, server.url, 'bob');
    await link(b1, b2, server.url, 'bob');
    await b1.getByTestId('close-devices').click().catch(() => {});
    await openChat(a, 'bob');

    // The relay's stored and forwarded bytes: nothing of the SDP in clear (checked below).
    await a.getByTestId('call-video').click();
    await until('Alice calling', async () => (await callState(a)) === 'calling');
    for (const b of [b1, b2]) {
      await until('Bob rings', async () => (await callState(b)) === 'incoming', 20_000);
      assert.match(await b.getByTestId('call-title').textContent(), /alice is video calling you/);
      await until('ringtone', async () => (await attr(b, 'data-ringtone')) === 'true');
    }
    await screenshot(b2, 'call-incoming');

    // Bob answers on his second device; the first stops ringing.
    await b2.getByTestId('call-answer').click();
    await until('Bob 1 told', async () => /Answered on another device/.test(await status(b1)));
    assert.equal(await attr(b2, 'data-ringtone'), 'false', 'the ringtone stops on answer');
    for (const p of [a, b2]) await until('in call', async () => (await callState(p)) === 'in-call', 30_000);

    // Frames are opened end to end, and the remote video shows the fake camera's pattern.
    for (const p of [a, b2]) {
      await until('frames opened', async () => (await opened(p)) > 30, 30_000);
      await until('remote video lit', async () => { const v = await remoteVideo(p); return v.decoded > 10 && v.lit > 100; }, 30_000);
      assert.equal(await dropped(p), 0);
      await until('audio flows', () => audioRising(p), 30_000);
      // Video goes through WebCrypto's AES-GCM (hardware AES) in the worker.
      assert.equal(await attr(p, 'data-video-aes'), 'webcrypto');
    }
    await screenshot(a, 'call-in-progress');

    // Mute and camera off are seen by the other side: its screen says so, the audio goes
    // silent and the picture dark.
    await a.getByTestId('call-mute').click();
    assert.equal(await a.getByTestId('call-mute').getAttribute('aria-pressed'), 'true');
    await until('Bob sees the mute', async () => (await attr(b2, 'data-remote-muted')) === 'true');
    await until('silence', async () => !(await audioRising(b2)), 20_000);
    await a.getByTestId('call-camera').click();
    assert.equal(await a.getByTestId('call-camera').getAttribute('aria-pressed'), 'true');
    await until('Bob sees the camera off', async () => (await attr(b2, 'data-remote-camera-off')) === 'true');
    assert.match(await b2.getByTestId('call-remote-state').textContent(), /alice muted their microphone and turned their camera off/);
    await until('dark picture', async () => (await remoteVideo(b2)).lit === 0, 20_000);
    await screenshot(b2, 'call-remote-muted');
    await a.getByTestId('call-mute').click();
    await a.getByTestId('call-camera').click();
    await until('Bob hears Alice again', async () => (await attr(b2, 'data-remote-muted')) === 'false' && (await audioRising(b2)), 20_000);
    await until('picture back', async () => (await remoteVideo(b2)).lit > 100, 20_000);

    // Bob switches to another microphone mid-call: the new one is end-to-end protected too.
    await b2.getByTestId('call-devices').click();
    const mics = b2.getByTestId('call-microphone');
    await until('microphones listed', async () => (await mics.locator('option').count()) > 1);
    const current = await mics.inputValue();
    const other = (await mics.locator('option').evaluateAll((os) => os.map((o) => o.value))).find((v) => v !== current);
    await mics.selectOption(other);
    await until('switched', async () => (await mics.inputValue()) === other);
    assert.equal(await b2.getByTestId('call-note').textContent(), '');
    await screenshot(b2, 'call-devices');
    await until('Alice hears the new microphone', () => audioRising(a), 20_000);
    assert.equal(await dropped(a), 0);

    // A network change on Alice's side: she restarts ICE through the encrypted signalling,
    // and the call goes on.
    await a.evaluate(() => window.dispatchEvent(new Event('online')));
    for (const p of [a, b2]) await until('ICE generation 1', async () => (await attr(p, 'data-ice-generation')) === '1', 20_000);
    const before = await opened(b2);
    await until('frames after the restart', async () => (await opened(b2)) > before + 30, 20_000);
    assert.equal(await callState(a), 'in-call');

    await a.getByTestId('call-hang-up').click();
    await until('Bob sees the end', async () => /Call ended/.test(await status(b2)));
    // The call's line on every device of both people.
    await openChat(b1, 'alice').catch(async () => { await b1.getByTestId('chat-row').filter({ hasText: 'alice' }).click(); });
    await until('Alice line', async () => (await lines(a)).some((l) => /Outgoing video call, \d/.test(l)));
    await until('Bob 2 line', async () => { await b2.getByTestId('chat-row').filter({ hasText: 'alice' }).click().catch(() => {}); return (await lines(b2)).some((l) => /Incoming video call, \d/.test(l)); });
    await until('Bob 1 line', async () => (await lines(b1)).some((l) => /answered on another device/.test(l)));

    // Nobody answers for 45 s: a missed call on every device of both people.
    await a.getByTestId('call-voice').click();
    for (const b of [b1, b2]) await until('Bob rings', async () => (await callState(b)) === 'incoming', 20_000);
    await until('no answer', async () => /No answer/i.test(await status(a)), 60_000);
    await until('Alice line', async () => (await lines(a)).some((l) => /Outgoing voice call, no answer/.test(l)));
    for (const b of [b1, b2]) {
      await until('stopped ringing', async () => (await callState(b)) !== 'incoming', 10_000);
      await until('missed line', async () => (await lines(b)).some((l) => /Missed voice call/.test(l)));
    }
    await screenshot(b1, 'call-missed');

    // The relay never saw the SDP in clear.
    const stored = readdirSync(dataDir).map((f) => join(dataDir, f)).filter((f) => statSync(f).isFile());
    for (const f of stored) assert.ok(!readFileSync(f).includes('a=fingerprint'), `${f} holds SDP in clear`);
    for (const b of browsers) assert.deepEqual(b.errors, []);
  } finally {
    await Promise.all(browsers.map((b) => b.close()));
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('decline, busy, a wrong secret, a certificate that is not the offered one, and the relay\'s ICE servers', async () => {
  const dataDir = tempDir('data');
  // The relay names STUN and TURN servers (nothing listens there: the calls still connect
  // by host candidates, and the app must have handed the servers to its peer connections).
  const server = await startServer({
    dataDir,
    extraArgs: ['--stun-url', 'stun:127.0.0.1:9', '--turn-url', 'turn:127.0.0.1:9?transport=udp', '--turn-secret', 'test-secret'],
  });
  const alice = await launchBrowser();
  const bob = await launchBrowser();
  const carol = await launchBrowser();
  try {
    const a = await alice.context.newPage();
    const b = await bob.context.newPage();
    const c = await carol.context.newPage();
    await a.addInitScript(() => {
      const Native = RTCPeerConnection;
      window.__iceConfigs = [];
      window.RTCPeerConnection = function (config, ...rest) {
        window.__iceConfigs.push(JSON.parse(JSON.stringify(config || {})));
        return new Native(config, ...rest);
      };
      window.RTCPeerConnection.prototype = Native.prototype;
    });
    // Bob's tab can be made to hold a wrong secret or to see another certificate, from
    // outside the app: the key the page hands its media worker, and the stats it reads.
    await b.addInitScript(() => {
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (m, ...rest) {
        if (window.__wrongKey && m && m.key) { const k = new Uint8Array(m.key); k[0] ^= 1; m = { ...m, key: k }; }
        return post.call(this, m, ...rest);
      };
      // The tab can be put in the background; the browser's notifications are recorded.
      Object.defineProperty(document, 'visibilityState', { get: () => (window.__hidden ? 'hidden' : 'visible') });
      const NativeNotification = window.Notification;
      window.__notes = [];
      window.Notification = function (title, options) {
        const n = new NativeNotification(title, options);
        const note = { title, body: options && options.body, closed: false };
        window.__notes.push(note);
        const close = n.close.bind(n);
        n.close = () => { note.closed = true; close(); };
        return n;
      };
      Object.defineProperty(window.Notification, 'permission', { get: () => NativeNotification.permission });
      window.Notification.requestPermission = (...args) => NativeNotification.requestPermission(...args);
      const stats = RTCPeerConnection.prototype.getStats;
      RTCPeerConnection.prototype.getStats = async function (...args) {
        const r = await stats.apply(this, args);
        if (!window.__otherCert) return r;
        const m = new Map();
        for (const [k, v] of r) m.set(k, v.type === 'certificate' ? { ...v, fingerprint: v.fingerprint.replace(/^../, v.fingerprint.startsWith('00') ? '11' : '00') } : v);
        return m;
      };
    });
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await createAccount(c, server.url, 'carol');
    await openChat(a, 'bob');
    await openChat(c, 'bob');

    // Declined: both sides end, with the line. Bob's tab is in the background: the browser
    // shows a notification while it rings, and closes it when the ringing stops.
    await bob.context.grantPermissions(['notifications']);
    await b.evaluate(() => { window.__hidden = true; });
    await a.getByTestId('call-voice').click();
    await until('Bob rings', async () => (await callState(b)) === 'incoming');
    const notes = await b.evaluate(() => window.__notes);
    assert.deepEqual(notes.map((n) => n.title), ['Incoming call from alice']);
    assert.equal(notes[0].closed, false);
    await b.evaluate(() => { window.__hidden = false; });
    await b.getByTestId('call-decline').click();
    await until('Alice told', async () => /Call declined/.test(await status(a)));
    await until('Alice line', async () => (await lines(a)).some((l) => /Outgoing voice call, declined/.test(l)));
    assert.equal(await b.evaluate(() => window.__notes[0].closed), true, 'the notification went with the ringing');

    // A wrong secret on Bob's side: he opens no frame, every one dropped as unauthentic.
    await b.evaluate(() => { window.__wrongKey = true; });
    await a.getByTestId('call-video').click();
    await until('Bob rings', async () => (await callState(b)) === 'incoming');
    await b.getByTestId('call-answer').click();
    await until('in call', async () => (await callState(b)) === 'in-call', 30_000);
    await until('frames dropped', async () => (await dropped(b)) > 30, 30_000);
    assert.equal(await opened(b), 0, 'no frame opened under a wrong secret');
    assert.equal(await attr(b, 'data-video-aes'), 'webcrypto', 'the video frames were tried with WebCrypto');

    // The peer connection got the relay's servers, TURN with a time-limited credential.
    const servers = (await a.evaluate(() => window.__iceConfigs)).at(-1).iceServers;
    assert.deepEqual(servers[0].urls, ['stun:127.0.0.1:9']);
    assert.deepEqual(servers[1].urls, ['turn:127.0.0.1:9?transport=udp']);
    assert.match(servers[1].username, /^\d{10}:[0-9a-f]{32}$/);
    assert.equal(servers[1].credential.length, 28);

    // Carol calls Bob while he is in a call: busy, and nothing rings on his side.
    await c.getByTestId('call-voice').click();
    await until('Carol told', async () => /in another call/.test(await status(c)), 20_000);
    await until('Carol line', async () => (await lines(c)).some((l) => /Outgoing voice call, busy/.test(l)));
    assert.equal(await callState(b), 'in-call');
    await a.getByTestId('call-hang-up').click();
    await until('ended', async () => (await callState(b)) !== 'in-call');
    await b.evaluate(() => { window.__wrongKey = false; window.__otherCert = true; });

    // Another certificate than the encrypted offer named: the call ends with the warning.
    await a.getByTestId('call-voice').click();
    await until('Bob rings', async () => (await callState(b)) === 'incoming', 20_000);
    await b.getByTestId('call-answer').click();
    await until('warning', async () => /not the one your contact's encrypted call offer named/.test(await status(b)), 30_000);
    assert.equal(await b.getByTestId('call-status').getAttribute('role'), 'alert');
    await screenshot(b, 'call-security-warning');
    await until('Alice sees it end', async () => (await callState(a)) !== 'connecting' && (await callState(a)) !== 'in-call', 30_000);
    // Bob's side of Carol's busy call: a missed call in their chat.
    await b.getByTestId('chat-row').filter({ hasText: 'carol' }).click();
    await until('Bob line', async () => (await lines(b)).some((l) => /Missed voice call/.test(l)));
  } finally {
    await alice.close();
    await bob.close();
    await carol.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a reload mid-call ends the call on that side; the other side is told the connection was lost and keeps a line', async () => {
  const dataDir = tempDir('data');
  const server = await startServer({ dataDir });
  const alice = await launchBrowser();
  const bob = await launchBrowser();
  try {
    const a = await alice.context.newPage();
    const b = await bob.context.newPage();
    await createAccount(a, server.url, 'alice');
    await createAccount(b, server.url, 'bob');
    await openChat(a, 'bob');
    await a.getByTestId('call-voice').click();
    await until('Bob rings', async () => (await callState(b)) === 'incoming', 20_000);
    await b.getByTestId('call-answer').click();
    for (const p of [a, b]) await until('in call', async () => (await callState(p)) === 'in-call', 30_000);
    await until('audio flows', () => audioRising(a), 30_000);

    // Bob's tab reloads: the call (its secret in memory only) is gone there, and no call
    // screen comes back.
    await b.reload();
    await b.getByTestId('chat-list').waitFor({ timeout: 30_000 }).catch(() => {});
    assert.equal(await b.getByTestId('call-screen').count(), 0);
    // Alice's side sees the connection drop, tries to restart it, then ends the call.
    await until('Alice told', async () => /connection was lost/.test(await status(a)), 90_000);
    await until('Alice line', async () => (await lines(a)).some((l) => /Outgoing voice call/.test(l)), 20_000);
    // Bob can call again at once.
    await openChat(b, 'alice');
    await b.getByTestId('call-voice').click();
    await until('Alice rings', async () => (await callState(a)) === 'incoming', 20_000);
    await a.getByTestId('call-decline').click();
    await until('Bob told', async () => /Call declined/.test(await status(b)), 20_000);
  } finally {
    await alice.close();
    await bob.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

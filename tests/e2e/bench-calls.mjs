// Call benchmarks (issue 16) against the real relay and the release build, Chromium with its
// fake camera and microphone, on loopback:
//   1. click "Video" → the first remote video frame shown on the caller's screen (the callee
//      answers the moment it rings), 9 calls, p50 and max;
//   2. click → ringing on all 5 devices of the callee (a primary and 4 companions), 5 calls;
//   3. CPU of a 2-minute video call with the end-to-end frame layer and without it (the same
//      app, its transforms left out by an init script), both browsers' process trees.
// Run (after `trunk build --release` and `cargo build -p tandem-server`):
// `node tests/e2e/bench-calls.mjs` (`CALL_SECONDS=30` for a short run). Results go to
// BENCHMARKS.md.

import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { startServer, launchBrowser, tempDir, screenshot } from './support/harness.mjs';
import { createAccount, openChat, until } from './support/chat.mjs';
import { linkCompanion } from './support/link.mjs';

const CALL_SECONDS = Number(process.env.CALL_SECONDS ?? 120);
const FIRST_FRAME_CALLS = Number(process.env.FIRST_FRAME_CALLS ?? 9);
const pct = (v, p) => [...v].sort((a, b) => a - b)[Math.min(v.length - 1, Math.floor(v.length * p))];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const step = (what) => { if (process.env.DEBUG) console.error(`[${new Date().toISOString()}] ${what}`); };
const state = (page) => page.getByTestId('call-screen').getAttribute('data-state').catch(() => null);

/** In every page: when a call rings, the time (and, with `autoAnswer`, answer at once); when
 *  the remote video shows its first frame, the time. Wall clock: the pages share the machine. */
function observe({ autoAnswer }) {
  window.__rang = 0; window.__firstFrame = 0;
  const seen = new WeakSet();
  new MutationObserver(() => {
    const screen = document.querySelector('[data-testid=call-screen]');
    if (screen && screen.dataset.state === 'incoming' && !window.__rang) {
      window.__rang = Date.now();
      if (window.__autoAnswer) document.querySelector('[data-testid=call-answer]')?.click();
    }
    const v = document.querySelector('[data-testid=remote-video]');
    if (v && !seen.has(v)) {
      seen.add(v);
      v.requestVideoFrameCallback(() => { if (!window.__firstFrame) window.__firstFrame = Date.now(); });
    }
  }).observe(document, { childList: true, subtree: true, attributes: true });
  window.__autoAnswer = autoAnswer;
}

/** Leaves out the end-to-end transforms (the "without E2EE" side of the CPU comparison). */
function noFrameLayer() {
  window.RTCRtpScriptTransform = function () {};
}

/** The media worker without WebCrypto: video frames go the all-wasm way too (the worker is
 *  started from a module that hides `crypto.subtle`, then runs the real script). */
function noWebCrypto() {
  const Native = window.Worker;
  window.Worker = function (url, options) {
    if (!String(url).includes('media-worker.js')) return new Native(url, options);
    // Messages that arrive while the real script loads are handed to it afterwards.
    const src = `Object.defineProperty(self.crypto, 'subtle', { value: undefined });
      const early = []; const keep = (e) => early.push(e.data);
      self.addEventListener('message', keep);
      await import(${JSON.stringify(String(url))});
      self.removeEventListener('message', keep);
      for (const data of early) self.dispatchEvent(new MessageEvent('message', { data }));`;
    return new Native(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })), { type: 'module' });
  };
  window.Worker.prototype = Native.prototype;
}

async function hangUpAndSettle(caller, callees) {
  await caller.getByTestId('call-hang-up').click().catch(() => {});
  for (const p of [caller, ...callees]) await until('idle', async () => !['incoming', 'calling', 'connecting', 'in-call'].includes(await state(p)), 30_000);
  await sleep(4500); // the "call ended" note goes
}

async function clickCall(page, kind) {
  return page.evaluate((k) => {
    window.__firstFrame = 0;
    const t0 = Date.now();
    document.querySelector(`[data-testid=call-${k}]`).click();
    return t0;
  }, kind);
}

/** utime + stime (clock ticks) of every process whose command line names `profile`, and of
 *  their descendants. */
function cpuTicks(profiles) {
  const procs = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      procs.push({ pid: Number(pid), ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]), cmd });
    } catch { /* gone */ }
  }
  const chosen = new Set(procs.filter((p) => profiles.some((prof) => p.cmd.includes(prof))).map((p) => p.pid));
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) if (!chosen.has(p.pid) && chosen.has(p.ppid)) { chosen.add(p.pid); grew = true; }
  }
  return procs.filter((p) => chosen.has(p.pid)).reduce((s, p) => s + p.ticks, 0);
}

const dataDir = tempDir('data');
const server = await startServer({ dataDir, extraArgs: ['--auth-per-minute', '100000'] });
const browsers = [];
const launch = async (opts) => { const b = await launchBrowser(opts); browsers.push(b); return b; };
try {
  // ONLY_CPU=1: the CPU comparison alone.
  if (!process.env.ONLY_CPU) await clickAndRing();
  // 3. CPU of a call with and without the frame layer (fresh browsers for each).
  await cpuComparison();
} finally {
  for (const b of browsers) await b.close().catch(() => {});
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}

async function clickAndRing() {
  // 1. Click to first remote frame.
  const alice = await launch();
  const a = await alice.context.newPage();
  await a.addInitScript(observe, { autoAnswer: false });
  const bobs = [];
  for (let i = 0; i < 5; i++) {
    const b = await launch();
    const p = await b.context.newPage();
    await p.addInitScript(observe, { autoAnswer: i === 0 });
    bobs.push({ browser: b, page: p });
  }
  await createAccount(a, server.url, 'alice');
  await createAccount(bobs[0].page, server.url, 'bob');
  await openChat(a, 'bob');
  const firstFrame = [];
  for (let i = 0; i < FIRST_FRAME_CALLS; i++) {
    const t0 = await clickCall(a, 'video');
    await until('first frame', () => a.evaluate(() => window.__firstFrame), 30_000);
    firstFrame.push((await a.evaluate(() => window.__firstFrame)) - t0);
    await hangUpAndSettle(a, [bobs[0].page]);
    await bobs[0].page.evaluate(() => { window.__rang = 0; });
  }
  if (firstFrame.length) console.log(`click → first remote video frame: p50 ${pct(firstFrame, 0.5)} ms, max ${Math.max(...firstFrame)} ms (${firstFrame.join(', ')})`);

  // 2. Ringing on 5 devices.
  await bobs[0].page.evaluate(() => { window.__autoAnswer = false; });
  await bobs[0].page.getByTestId('open-devices').click();
  for (const [i, b] of bobs.slice(1).entries()) {
    step(`linking companion ${i + 1}`);
    if (i > 0) await bobs[0].page.getByTestId('link-another').click();
    await linkCompanion(bobs[0].page, b.page, server.url, 'bob').catch(async (e) => {
      await screenshot(bobs[0].page, 'bench-calls-link-primary');
      await screenshot(b.page, 'bench-calls-link-companion');
      throw e;
    });
  }
  await bobs[0].page.getByTestId('close-devices').click().catch(() => {});
  await sleep(3000);
  const ringing = [];
  for (let i = 0; i < 5; i++) {
    for (const b of bobs) await b.page.evaluate(() => { window.__rang = 0; });
    step(`ringing call ${i + 1}`);
    const t0 = await clickCall(a, 'voice');
    for (const b of bobs) await until('rings', () => b.page.evaluate(() => window.__rang), 30_000);
    step('all rang');
    const times = await Promise.all(bobs.map((b) => b.page.evaluate(() => window.__rang - 0)));
    ringing.push(Math.max(...times) - t0);
    await hangUpAndSettle(a, bobs.map((b) => b.page));
  }
  console.log(`click → ringing on all 5 devices: p50 ${pct(ringing, 0.5)} ms, max ${Math.max(...ringing)} ms (${ringing.join(', ')})`);
  for (const b of bobs.slice(1)) await b.browser.close();
}

async function cpuComparison() {
  const cpu = {};
  // Modes: e2ee (the app as it is), none (no frame layer), wasm (the frame layer without
  // WebCrypto); CPU_ORDER picks which and in what order.
  const runs = {};
  for (const mode of (process.env.CPU_ORDER || 'e2ee,none').split(',')) {
    runs[mode] = (runs[mode] || 0) + 1;
    const who = `${mode}${runs[mode]}`; // a mode may run more than once
    step(`CPU run: ${mode}`);
    const pair = [await launch(), await launch()];
    const [x, y] = await Promise.all(pair.map((b) => b.context.newPage()));
    await x.addInitScript(observe, { autoAnswer: false });
    await y.addInitScript(observe, { autoAnswer: true });
    if (mode === 'none') for (const p of [x, y]) await p.addInitScript(noFrameLayer);
    if (mode === 'wasm') for (const p of [x, y]) await p.addInitScript(noWebCrypto);
    await createAccount(x, server.url, `x${who}`);
    await createAccount(y, server.url, `y${who}`);
    await openChat(x, `y${who}`);
    await clickCall(x, 'video');
    await until('first frame', () => x.evaluate(() => window.__firstFrame), 30_000);
    await sleep(5000);
    const profiles = pair.map((b) => b.profile);
    const t0 = cpuTicks(profiles);
    await sleep(CALL_SECONDS * 1000);
    const ticks = cpuTicks(profiles) - t0;
    const opened = Number(await y.getByTestId('call-screen').getAttribute('data-frames-opened'));
    const aes = await y.getByTestId('call-screen').getAttribute('data-video-aes');
    cpu[mode] = ticks / 100 / CALL_SECONDS; // cores busy on average (100 ticks a second)
    console.log(`${mode}: ${(ticks / 100).toFixed(1)} s CPU over ${CALL_SECONDS} s (${cpu[mode].toFixed(2)} cores), frames opened end to end: ${opened}, video AES: ${aes || '-'}`);
    await hangUpAndSettle(x, [y]);
  }
  if (cpu.none) for (const m of ['e2ee', 'wasm']) if (cpu[m]) console.log(`CPU ${m} / none: ${(cpu[m] / cpu.none).toFixed(3)}×`);
}

// Shared helpers for the end-to-end tests: start the real tandem-server with the real built
// app, launch Debian's Chromium with a fresh profile, save screenshots.

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve, dirname, extname, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..', '..');
export const distDir = process.env.TANDEM_DIST ?? join(repoRoot, 'dist');
export const serverBin = process.env.TANDEM_SERVER_BIN ?? join(repoRoot, 'target', 'debug', 'tandem-server');
export const artifactsDir = process.env.TANDEM_ARTIFACTS ?? join(repoRoot, 'artifacts', 'e2e');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `tandem-${prefix}-`));
}

/**
 * Starts tandem-server on `port` (0 = any free port) with `dataDir`; resolves once it prints
 * its URL. Returns { url, port, stop() }; stop sends SIGTERM and waits for the exit.
 */
export async function startServer({ dataDir, port = 0, apiOnly = false, extraArgs = [] } = {}) {
  if (!existsSync(serverBin)) throw new Error(`tandem-server binary not found at ${serverBin}; build it first`);
  if (!apiOnly && !existsSync(join(distDir, 'index.html'))) throw new Error(`built app not found in ${distDir}; run trunk build --release`);
  const args = ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--dist', distDir];
  if (apiOnly) args.push('--api-only');
  args.push(...extraArgs);
  const child = spawn(serverBin, args, { env: { ...process.env, TANDEM_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const url = await new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`server did not start in 20 s: ${stderr}`)), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/running at (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); res(m[1]); }
    });
    exited.then(({ code }) => { clearTimeout(timer); rej(new Error(`server exited with ${code}: ${stderr}`)); });
  });
  const actualPort = Number(new URL(url).port);
  return {
    // localhost, not 127.0.0.1: a secure context with a valid WebAuthn RP ID.
    url: `http://localhost:${actualPort}/`,
    port: actualPort,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const r = await exited;
      if (r.code !== 0 && r.signal === null) throw new Error(`server exited with ${r.code}: ${stderr}`);
    },
  };
}

/** A plain static file server for `dir` (no relay), as if the app were hosted elsewhere. */
export async function startStaticHost(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css', '.svg': 'image/svg+xml', '.txt': 'text/plain' };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    let file = join(dir, path);
    if (!existsSync(file) || statSync(file).isDirectory()) file = join(dir, 'index.html');
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  return { url: `http://localhost:${port}/`, stop: () => new Promise((r) => server.close(r)) };
}

/** Chromium with its own fresh profile directory (a separate "browser"). */
export async function launchBrowser({ colorScheme = 'light', viewport = { width: 1280, height: 800 }, profile: given } = {}) {
  const profile = given ?? tempDir('profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    colorScheme,
    viewport,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage',
      // Calls: Chromium's fake camera (a moving test pattern) and microphone (a beep), no prompt.
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--autoplay-policy=no-user-gesture-required'],
  });
  const errors = [];
  context.on('page', (p) => p.on('pageerror', (e) => errors.push(e.message)));
  return {
    context,
    errors,
    profile,
    async close({ keepProfile = false } = {}) {
      await context.close();
      if (!keepProfile) rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page, name) {
  mkdirSync(artifactsDir, { recursive: true });
  const path = join(artifactsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

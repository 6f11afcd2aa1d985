// Harness for the browser end-to-end tests of the web client.
//
// - startServer(): the signal-server binary on `--port 0 --host 127.0.0.1
//   --static-dir <dist>` (+ per-test flags), parsed like tests/js/server.mjs.
// - launchChromium() / launchFirefox(): puppeteer-core on the apt browsers,
//   with exactly the flags/prefs of shared/TOOLCHAIN.md, never downloading one.
// - joinRoom(): `/r/<room>?name=<name>` and wait for `#room[data-state=joined]`.
// - polling helpers with deadlines (no bare sleeps) for the DOM contract of
//   docs/client-contract.md.
// - e2e(): a node:test wrapper that owns every server/browser a test starts,
//   saves screenshots + console logs + page state into artifacts/ when the test
//   fails, and always closes everything.
//
// Run the tests inside a loopback-only network namespace (run-in-netns.sh).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

export const SERVER_BIN = process.env.SIGNAL_SERVER_BIN
  ? path.resolve(process.env.SIGNAL_SERVER_BIN)
  : path.join(repo, 'target/debug/signal-server');
export const WEB_DIST = process.env.WEB_DIST
  ? path.resolve(process.env.WEB_DIST)
  : path.join(repo, 'dist');
export const ARTIFACTS = process.env.ARTIFACTS_DIR
  ? path.resolve(process.env.ARTIFACTS_DIR)
  : path.join(here, 'artifacts');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
export const FIREFOX = process.env.FIREFOX_BIN || '/usr/bin/firefox-esr';

/** shared/TOOLCHAIN.md, "Real browsers for tests": the flags, verbatim. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--allow-loopback-in-peer-connection',
];

/** shared/TOOLCHAIN.md, "Firefox": the four required prefs. */
export const FIREFOX_PREFS = {
  'media.navigator.streams.fake': true,
  'media.peerconnection.ice.loopback': true,
  'permissions.default.camera': 1,
  'permissions.default.microphone': 1,
};

const LAUNCH_TIMEOUT_MS = 60_000;
const PROTOCOL_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------
// small utilities

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a rejection after `ms` (the timer never keeps the process alive). */
export function withTimeout(promise, ms, what = 'operation') {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    timer.unref?.();
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

/** A room name that is unique per call (valid: [A-Za-z0-9_-]{1,64}). */
export function uniqueRoom(prefix = 'e2e') {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

export function median(xs) {
  return percentile(xs, 50);
}

/** Nearest-rank percentile; NaN for an empty list. */
export function percentile(xs, p) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/**
 * Poll `probe` until it returns {ok: true, value}; throw with the last
 * observation (and `explain()` output, if given) after `timeout` ms.
 * `probe` may also return a bare truthy/falsy value.
 */
export async function waitFor(desc, probe, { timeout = 30_000, interval = 250, explain } = {}) {
  const start = Date.now();
  let last;
  let lastErr;
  for (;;) {
    try {
      const r = await probe();
      lastErr = undefined;
      if (r && typeof r === 'object' && 'ok' in r) {
        last = r.value;
        if (r.ok) return r.value;
      } else {
        last = r;
        if (r) return r;
      }
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() - start >= timeout) {
      let extra = '';
      if (explain) {
        try { extra = `\n  page state: ${JSON.stringify(await explain())}`; } catch (e) { extra = `\n  (state unavailable: ${e.message})`; }
      }
      const err = new Error(`timed out after ${timeout} ms waiting for ${desc}` +
        `\n  last observed: ${JSON.stringify(last)}` +
        (lastErr ? `\n  last error: ${lastErr.message}` : '') + extra);
      throw err;
    }
    await delay(interval);
  }
}

// ---------------------------------------------------------------------------
// server

const SERVER_ENV_VARS = ['PORT', 'HOST', 'STATIC_DIR', 'HISTORY_LIMIT', 'MAX_PEERS_PER_ROOM',
  'MAX_MESSAGE_BYTES', 'RATE_LIMIT_BURST', 'RATE_LIMIT_PER_SEC', 'SEND_BUFFER', 'DEFAULT_MODE',
  'STUN_URLS', 'TURN_URLS', 'TURN_SECRET', 'TURN_TTL_SECS', 'TURN_USERNAME', 'TURN_CREDENTIAL',
  'CORS_ORIGINS', 'LISTEN_BACKLOG', 'PING_INTERVAL_MS', 'PING_TIMEOUT_MS', 'WS_READ_BUFFER',
  'MAX_CONNS_PER_IP', 'TRUST_PROXY', 'REDIS_URL'];
const LISTENING = /signal-server listening on (http:\/\/[^\s]+?):(\d+)\s*$/m;
const MAX_LOG = 512 * 1024;

/** Processes still alive, killed if the test process exits abruptly. */
const liveProcs = new Set();
process.on('exit', () => {
  for (const p of liveProcs) {
    try { p.kill('SIGKILL'); } catch { /* gone */ }
  }
});

export function checkPrerequisites() {
  const missing = [];
  if (!existsSync(SERVER_BIN)) missing.push(`server binary ${SERVER_BIN} (set SIGNAL_SERVER_BIN)`);
  if (!existsSync(path.join(WEB_DIST, 'index.html'))) missing.push(`web client ${WEB_DIST}/index.html (build it, or set WEB_DIST)`);
  return missing;
}

/**
 * Start signal-server serving the built client.
 * @param {string[]} flags extra flags, e.g. ['--max-peers-per-room', '1']
 */
export async function startServer(flags = [], { staticDir = WEB_DIST, env: extraEnv = {}, timeoutMs = 20_000, port = 0, host = '127.0.0.1' } = {}) {
  if (!existsSync(SERVER_BIN)) throw new Error(`signal-server binary not found at ${SERVER_BIN} (set SIGNAL_SERVER_BIN)`);
  const args = ['--port', String(port), '--host', host, '--static-dir', staticDir, ...flags];
  const env = { ...process.env };
  for (const k of SERVER_ENV_VARS) delete env[k];
  // The SFU's negotiation and forwarding decisions at debug level (a few
  // lines per connection and stream, nothing per packet): the server's log
  // is kept only when a test fails, and then it says why media did not flow.
  env.RUST_LOG ??= 'info,sfu=debug';
  Object.assign(env, extraEnv);
  const proc = spawn(SERVER_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  liveProcs.add(proc);
  const server = new Server(proc, args);
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `signal-server did not print its listening line within ${timeoutMs} ms\nargs: ${args.join(' ')}\n${server.log()}`)), timeoutMs);
      const check = () => {
        const m = LISTENING.exec(server.stdout);
        if (m) {
          clearTimeout(timer);
          server.url = `${m[1]}:${m[2]}`;
          server.port = Number(m[2]);
          resolve();
        }
      };
      proc.stdout.on('data', check);
      proc.once('error', (e) => { clearTimeout(timer); reject(e); });
      proc.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`signal-server exited before listening (code ${code}, signal ${sig})\nargs: ${args.join(' ')}\n${server.log()}`));
      });
    });
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

export class Server {
  constructor(proc, args) {
    this.proc = proc;
    this.args = args;
    this.url = '';
    this.port = 0;
    this.stdout = '';
    this.stderr = '';
    this.exit = null;
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { this.stdout = (this.stdout + d).slice(-MAX_LOG); });
    proc.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-MAX_LOG); });
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => { this.exit = { code, signal }; liveProcs.delete(proc); resolve(this.exit); });
    });
  }

  get alive() { return this.exit === null && this.proc.exitCode === null; }

  log() { return `args: ${this.args.join(' ')}\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`; }

  panics() {
    return (this.stdout + '\n' + this.stderr).split('\n').filter((l) => /panicked at/.test(l));
  }

  async assertHealthy() {
    if (!this.alive) throw new Error(`signal-server exited: ${JSON.stringify(this.exit)}\n${this.stderr.slice(-4000)}`);
    const p = this.panics();
    if (p.length) throw new Error(`signal-server logged a panic:\n${p.join('\n')}`);
  }

  /** SIGKILL: a crash, nothing closed cleanly. */
  async kill() {
    if (this.alive) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    liveProcs.delete(this.proc);
  }

  async stop() {
    if (this.alive) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => { if (this.alive) this.proc.kill('SIGKILL'); }, 3000);
      await this.exited;
      clearTimeout(t);
    }
    liveProcs.delete(this.proc);
  }
}

// ---------------------------------------------------------------------------
// browsers

/**
 * Launch headless Chromium (apt) with TOOLCHAIN's flags and a fresh profile.
 * `headless: false` only stops puppeteer adding its own `--headless=new`:
 * `--headless` is in CHROMIUM_ARGS. `dropArgs` removes some of the standard
 * flags (e.g. `--use-fake-device-for-media-stream` for a browser without a
 * camera or microphone).
 */
export async function launchChromium({ extraArgs = [], dropArgs = [], executablePath = CHROMIUM } = {}) {
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'e2e-chromium-'));
  const browser = await puppeteer.launch({
    browser: 'chrome',
    executablePath,
    // DevTools over pipes, not a TCP port: a browser in another network
    // namespace (netcut.mjs) has its own 127.0.0.1.
    pipe: true,
    headless: false,
    args: [...CHROMIUM_ARGS.filter((a) => !dropArgs.includes(a)), ...extraArgs],
    userDataDir,
    timeout: LAUNCH_TIMEOUT_MS,
    protocolTimeout: PROTOCOL_TIMEOUT_MS,
    defaultViewport: { width: 1280, height: 800 },
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  trackBrowserProcess(browser);
  browser.__kind = 'chromium';
  browser.__profile = userDataDir;
  return browser;
}

/** Launch headless Firefox ESR (apt) over WebDriver BiDi with the required prefs. */
export async function launchFirefox({ extraPrefs = {} } = {}) {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    extraPrefsFirefox: { ...FIREFOX_PREFS, ...extraPrefs },
    timeout: LAUNCH_TIMEOUT_MS,
    protocolTimeout: PROTOCOL_TIMEOUT_MS,
    defaultViewport: { width: 1280, height: 800 },
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  trackBrowserProcess(browser);
  browser.__kind = 'firefox';
  return browser;
}

function trackBrowserProcess(browser) {
  const proc = browser.process();
  if (proc) {
    liveProcs.add(proc);
    proc.once('exit', () => liveProcs.delete(proc));
  }
}

export async function closeBrowser(browser) {
  if (!browser) return;
  const proc = browser.process();
  try {
    await withTimeout(browser.close(), 15_000, 'browser.close()');
  } catch {
    try { proc?.kill('SIGKILL'); } catch { /* gone */ }
  }
  if (browser.__profile) await rm(browser.__profile, { recursive: true, force: true }).catch(() => {});
}

// ---------------------------------------------------------------------------
// pages: console capture, joining, reading the DOM contract

/** How Chromium and Firefox report what a Content-Security-Policy blocked. */
const CSP_VIOLATION = /Content.Security.Policy|Refused to (load|execute|connect|apply|compile|create)/i;

/** Attach console/error capture to a page; the lines live on page.__log. */
export function instrumentPage(page, label) {
  page.__label = label;
  page.__log = [];
  const t0 = Date.now();
  const push = (s) => {
    page.__log.push(`[+${((Date.now() - t0) / 1000).toFixed(3)}s] ${s}`);
    if (page.__log.length > 5000) page.__log.shift();
  };
  page.on('console', (m) => {
    let text;
    try { text = m.text(); } catch { text = '<unreadable>'; }
    push(`console.${m.type()}: ${text}`);
  });
  page.on('pageerror', (e) => push(`pageerror: ${e?.stack || e?.message || e}`));
  page.on('requestfailed', (r) => push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('response', (r) => { if (r.status() >= 400) push(`http ${r.status()}: ${r.url()}`); });
  page.on('error', (e) => push(`page crashed: ${e?.message || e}`));
  return page;
}

export function roomUrl(server, room, name, extra = {}) {
  const q = new URLSearchParams({ name, ...extra });
  return `${server.url}/r/${encodeURIComponent(room)}?${q}`;
}

/** Everything a failing test (or a human) wants to know about a page. */
export async function pageState(page) {
  return page.evaluate(() => {
    const attr = (el, n) => (el ? el.getAttribute(n) : null);
    const room = document.querySelector('#room');
    const status = document.querySelector('#status');
    const self = document.querySelector('#self-id');
    const tiles = [...document.querySelectorAll('.tile[data-peer-id]')].map((t) => {
      const id = t.getAttribute('data-peer-id');
      const v = t.querySelector('video') || document.querySelector(`video[data-peer-id="${CSS.escape(id)}"]`);
      return {
        id,
        name: t.querySelector('.tile-name')?.textContent ?? null,
        conn: attr(t, 'data-connection-state'),
        frames: attr(t, 'data-frames-decoded'),
        audio: attr(t, 'data-audio-packets'),
        firstFrameMs: attr(t, 'data-first-frame-ms'),
        quality: attr(t, 'data-quality'),
        video: v ? { w: v.videoWidth, h: v.videoHeight, t: v.currentTime, ready: v.readyState, paused: v.paused, hasSrc: !!v.srcObject } : null,
      };
    });
    const msgs = [...document.querySelectorAll('.msg')].slice(-10).map((m) => ({
      id: m.getAttribute('data-msg-id'),
      from: m.getAttribute('data-from'),
      via: m.getAttribute('data-via'),
      text: m.querySelector('.msg-text')?.textContent ?? null,
      ticks: m.querySelector('.msg-ticks')?.getAttribute('data-ticks') ?? null,
    }));
    return {
      url: location.href,
      title: document.title,
      lobby: !!document.querySelector('#lobby'),
      room: room ? { room: attr(room, 'data-room'), state: attr(room, 'data-state') } : null,
      status: status ? { kind: attr(status, 'data-kind'), text: status.textContent.trim().slice(0, 300) } : null,
      self: attr(self, 'data-peer-id'),
      tiles,
      msgs,
      typing: document.querySelector('#typing')?.textContent ?? null,
      rtt: [...document.querySelectorAll('#rtt-panel tr[data-peer-id]')].map((r) => ({
        id: r.getAttribute('data-peer-id'),
        relay: r.querySelector('.rtt-relay')?.getAttribute('data-ms') ?? null,
        p2p: r.querySelector('.rtt-p2p')?.getAttribute('data-ms') ?? null,
      })),
      bodyText: document.body ? document.body.innerText.slice(0, 500) : null,
    };
  });
}

const explainer = (page) => () => pageState(page);

/** Navigate to `/r/<room>?name=` and wait until joined (unless `waitJoined: false`). */
export async function joinRoom(page, server, room, name, { extra = {}, waitJoined = true, timeout = 45_000 } = {}) {
  const res = await page.goto(roomUrl(server, room, name, extra), { waitUntil: 'domcontentloaded', timeout });
  // The client runs under the server's Content-Security-Policy (a violation fails the test, see e2e()).
  const headers = res?.headers() ?? {};
  if (Object.keys(headers).length && !headers['content-security-policy']) {
    throw new Error(`${page.__label}: the client page came without a Content-Security-Policy`);
  }
  if (waitJoined) {
    try {
      await waitJoinedState(page, { timeout });
    } catch (e) {
      const csp = cspViolations(page);
      if (csp.length) e.message += `\n  ${csp.length} Content-Security-Policy violation(s), first: ${csp[0]}`;
      throw e;
    }
  }
  return page;
}

/** Console lines that say the Content-Security-Policy blocked something. */
export function cspViolations(page) {
  return (page.__log ?? []).filter((l) => CSP_VIOLATION.test(l));
}

export async function waitJoinedState(page, { timeout = 45_000 } = {}) {
  return waitFor(`${page.__label}: #room[data-state=joined]`, () => page.evaluate(() => {
    const r = document.querySelector('#room');
    const state = r?.getAttribute('data-state') ?? null;
    return { ok: state === 'joined', value: state };
  }), { timeout, explain: explainer(page) });
}

/** Own peer id from `#self-id[data-peer-id]` (waits until it is set). */
export async function selfId(page, { timeout = 20_000 } = {}) {
  return waitFor(`${page.__label}: #self-id[data-peer-id]`, () => page.evaluate(() => {
    const v = document.querySelector('#self-id')?.getAttribute('data-peer-id') || null;
    return { ok: !!v, value: v };
  }), { timeout, explain: explainer(page) });
}

/** Remote tiles' peer ids (own id excluded should the client ever tag a local tile). */
export async function remotePeerIds(page) {
  return page.evaluate(() => {
    const self = document.querySelector('#self-id')?.getAttribute('data-peer-id');
    return [...document.querySelectorAll('.tile[data-peer-id]')]
      .map((t) => t.getAttribute('data-peer-id'))
      .filter((id) => id && id !== self);
  });
}

/** Wait until the remote tiles are exactly `ids` (any order). */
export async function waitTiles(page, ids, { timeout = 30_000 } = {}) {
  const want = [...ids].sort();
  return waitFor(`${page.__label}: remote tiles == ${JSON.stringify(want)}`, async () => {
    const got = (await remotePeerIds(page)).sort();
    return { ok: JSON.stringify(got) === JSON.stringify(want), value: got };
  }, { timeout, explain: explainer(page) });
}

/** Wait until the number of remote tiles is `n`. */
export async function waitTileCount(page, n, { timeout = 30_000 } = {}) {
  return waitFor(`${page.__label}: ${n} remote tile(s)`, async () => {
    const got = await remotePeerIds(page);
    return { ok: got.length === n, value: got };
  }, { timeout, explain: explainer(page) });
}

const sel = (id) => `[data-peer-id="${String(id).replace(/["\\]/g, '\\$&')}"]`;

async function tileAttr(page, peerId, name) {
  return page.evaluate((s, n) => document.querySelector(`.tile${s}`)?.getAttribute(n) ?? null, sel(peerId), name);
}

/** Wait until the tile's `data-frames-decoded` increases between two reads (and > 0). */
export async function waitFramesIncreasing(page, peerId, { timeout = 30_000 } = {}) {
  let first = null;
  return waitFor(`${page.__label}: data-frames-decoded of ${peerId} increasing`, async () => {
    const v = Number(await tileAttr(page, peerId, 'data-frames-decoded'));
    if (!Number.isFinite(v) || v <= 0) return { ok: false, value: { first, now: v } };
    if (first === null) { first = v; return { ok: false, value: { first, now: v } }; }
    return { ok: v > first, value: { first, now: v } };
  }, { timeout, interval: 400, explain: explainer(page) });
}

/** Wait until the tile's `data-audio-packets` > 0. */
export async function waitAudioPackets(page, peerId, { timeout = 30_000 } = {}) {
  return waitFor(`${page.__label}: data-audio-packets of ${peerId} > 0`, async () => {
    const v = Number(await tileAttr(page, peerId, 'data-audio-packets'));
    return { ok: Number.isFinite(v) && v > 0, value: v };
  }, { timeout, explain: explainer(page) });
}

/** Wait until `video[data-peer-id=X]` has videoWidth > 0 and its currentTime advances. */
export async function waitVideoPlaying(page, peerId, { timeout = 30_000 } = {}) {
  let first = null;
  return waitFor(`${page.__label}: video${sel(peerId)} playing (videoWidth > 0, currentTime increasing)`, async () => {
    const v = await page.evaluate((s) => {
      const el = document.querySelector(`video${s}`);
      return el ? { w: el.videoWidth, h: el.videoHeight, t: el.currentTime, ready: el.readyState, paused: el.paused } : null;
    }, sel(peerId));
    if (!v || !(v.w > 0)) return { ok: false, value: v };
    if (first === null) { first = v.t; return { ok: false, value: v }; }
    return { ok: v.t > first, value: { ...v, firstT: first } };
  }, { timeout, interval: 300, explain: explainer(page) });
}

/** All three media checks of one remote peer on one page. */
export async function waitMediaFlowing(page, peerId, { timeout = 45_000, audio = true } = {}) {
  await waitVideoPlaying(page, peerId, { timeout });
  await waitFramesIncreasing(page, peerId, { timeout });
  if (audio) await waitAudioPackets(page, peerId, { timeout });
}

// ---------------------------------------------------------------------------
// chat

/** Replace an input's value as a user would (select all, type over it). */
export async function fillInput(page, selector, value) {
  await page.waitForSelector(selector, { timeout: 20_000 });
  await page.focus(selector);
  await page.evaluate((s) => { const el = document.querySelector(s); el.select?.(); }, selector);
  await page.keyboard.press('Backspace');
  if (value) await page.type(selector, value);
}

export async function setTransport(page, transport) {
  await page.waitForSelector('#chat-transport', { timeout: 20_000 });
  await page.select('#chat-transport', transport);
  await waitFor(`${page.__label}: #chat-transport = ${transport}`, () =>
    page.evaluate(() => document.querySelector('#chat-transport')?.value).then((v) => ({ ok: v === transport, value: v })),
  { timeout: 5_000 });
}

/** Type `text` into #chat-input and press Enter. */
export async function sendChat(page, text) {
  await fillInput(page, '#chat-input', text);
  await page.keyboard.press('Enter');
}

/** The first `.msg` whose `.msg-text` equals `text`, as plain data (or null). */
export async function findMessage(page, text) {
  return page.evaluate((want) => {
    for (const m of document.querySelectorAll('.msg')) {
      const t = m.querySelector('.msg-text');
      if (t && t.textContent === want) {
        return {
          id: m.getAttribute('data-msg-id'),
          from: m.getAttribute('data-from'),
          via: m.getAttribute('data-via'),
          author: m.querySelector('.msg-author')?.textContent ?? null,
          ticks: m.querySelector('.msg-ticks')?.getAttribute('data-ticks') ?? null,
          textChildren: t.children.length,
        };
      }
    }
    return null;
  }, text);
}

/** Wait for a message with this text; `check(msg)` decides when it is as expected. */
export async function waitMessage(page, text, check = () => true, { timeout = 20_000, desc = '' } = {}) {
  return waitFor(`${page.__label}: .msg .msg-text == ${JSON.stringify(text)} ${desc}`, async () => {
    const m = await findMessage(page, text);
    return { ok: !!m && !!check(m), value: m };
  }, { timeout, explain: explainer(page) });
}

export async function typingText(page) {
  return page.evaluate(() => document.querySelector('#typing')?.textContent ?? null);
}

// ---------------------------------------------------------------------------
// the per-test context and node:test wrapper

function slug(s) {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80);
}

export class E2E {
  constructor(name) {
    this.name = name;
    this.servers = [];
    this.browsers = [];
    this.pages = [];
    this.notes = [];
  }

  async server(flags = [], opts) {
    const s = await startServer(flags, opts);
    this.servers.push(s);
    return s;
  }

  async chromium(opts) {
    const b = await launchChromium(opts);
    this.browsers.push(b);
    return b;
  }

  async firefox(opts) {
    const b = await launchFirefox(opts);
    this.browsers.push(b);
    return b;
  }

  /** A new page in `browser`, labelled for logs/screenshots. */
  async page(browser, label) {
    const pages = await browser.pages();
    // Reuse the initial about:blank tab so each browser shows one page.
    const page = pages.length === 1 && !pages[0].__label && pages[0].url() === 'about:blank'
      ? pages[0] : await browser.newPage();
    instrumentPage(page, label);
    // Report what the Content-Security-Policy blocks as a console line, in
    // both browsers (their own CSP messages do not all reach puppeteer).
    await page.evaluateOnNewDocument(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`Content-Security-Policy violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`);
      });
    });
    page.__browser = browser;
    page.setDefaultTimeout(30_000);
    this.pages.push(page);
    return page;
  }

  /** Launch a browser of `kind`, open a page and join `room` as `name`. */
  async joiner(kind, server, room, name, opts = {}) {
    const browser = kind === 'firefox' ? await this.firefox() : await this.chromium();
    const page = await this.page(browser, opts.label ?? name);
    await joinRoom(page, server, room, name, opts);
    return page;
  }

  note(s) { this.notes.push(s); }

  /** Crash a server (SIGKILL) and stop checking it at the end of the test. */
  async crashServer(server) {
    await server.kill();
    this.servers = this.servers.filter((s) => s !== server);
  }

  /** Stop a server (SIGTERM) and stop checking it at the end of the test. */
  async stopServer(server) {
    await server.stop();
    this.servers = this.servers.filter((s) => s !== server);
  }

  /** Run `fn` when the test ends, after its browsers are closed. */
  onClose(fn) {
    (this.cleanups ??= []).push(fn);
  }

  /**
   * Freeze a page's whole browser (SIGSTOP to its process group: puppeteer
   * starts browsers detached, in their own group). Its sockets stay open but
   * nothing answers, as with a machine that drops off the network.
   */
  freezeBrowserOf(page) {
    const proc = page.__browser.process();
    if (!proc?.pid) throw new Error('no browser process to freeze');
    process.kill(-proc.pid, 'SIGSTOP');
  }

  /** SIGKILL a page's whole browser (process group) and forget it. */
  async killBrowserOf(page) {
    const b = page.__browser;
    const proc = b.process();
    this.pages = this.pages.filter((p) => p.__browser !== b);
    this.browsers = this.browsers.filter((x) => x !== b);
    if (proc?.pid) {
      try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
      try { process.kill(-proc.pid, 'SIGCONT'); } catch { /* gone */ }
    }
    try { b.disconnect(); } catch { /* gone */ }
    if (b.__profile) await rm(b.__profile, { recursive: true, force: true }).catch(() => {});
  }

  async closeBrowserOf(page) {
    const b = page.__browser;
    this.pages = this.pages.filter((p) => p.__browser !== b);
    this.browsers = this.browsers.filter((x) => x !== b);
    await closeBrowser(b);
  }

  async saveArtifacts(err) {
    await mkdir(ARTIFACTS, { recursive: true });
    const base = slug(this.name);
    const written = [];
    for (const page of this.pages) {
      const stem = path.join(ARTIFACTS, `${base}-${slug(page.__label || 'page')}`);
      try {
        await withTimeout(page.screenshot({ path: `${stem}.png`, fullPage: true }), 15_000, 'screenshot');
        written.push(`${stem}.png`);
      } catch (e) { page.__log?.push(`(screenshot failed: ${e.message})`); }
      let state = null;
      try { state = await withTimeout(pageState(page), 10_000, 'pageState'); } catch (e) { state = { error: e.message }; }
      await writeFile(`${stem}.log`, [
        `page ${page.__label} (${page.__browser?.__kind}) ${safeUrl(page)}`,
        `state: ${JSON.stringify(state, null, 2)}`,
        '--- console',
        ...(page.__log ?? []),
      ].join('\n') + '\n');
      written.push(`${stem}.log`);
      try {
        const html = await withTimeout(page.content(), 10_000, 'page.content()');
        await writeFile(`${stem}.html`, html);
      } catch { /* page gone */ }
    }
    this.servers.forEach((s, i) => {
      written.push(path.join(ARTIFACTS, `${base}-server${i}.log`));
    });
    await Promise.all(this.servers.map((s, i) => writeFile(path.join(ARTIFACTS, `${base}-server${i}.log`), s.log())));
    await writeFile(path.join(ARTIFACTS, `${base}-error.txt`), `${err?.stack || err}\n\nnotes:\n${this.notes.join('\n')}\n`);
    return written;
  }

  async closeAll() {
    await Promise.allSettled(this.browsers.map((b) => closeBrowser(b)));
    await Promise.allSettled((this.cleanups ?? []).map((fn) => fn()));
    this.browsers = [];
    this.pages = [];
    await Promise.allSettled(this.servers.map((s) => s.stop()));
  }
}

function safeUrl(page) {
  try { return page.url(); } catch { return '?'; }
}

/**
 * Define a browser test. `fn(ctx, t)` gets an E2E context; the wrapper
 * enforces its own deadline (so artifacts are saved and everything is
 * closed even when a wait hangs), saves artifacts on failure, and always
 * closes browsers and servers. `todo: 'reason'` marks a test of a known
 * client bug (reported, not counted as a failure).
 */
export function e2e(name, fn, { timeout = 180_000, skipIfNoDist = true, todo = false } = {}) {
  const missing = checkPrerequisites();
  const skip = skipIfNoDist && missing.length ? `missing: ${missing.join('; ')}` : false;
  // `todo`: a known client bug, as a reason string; the test runs (artifacts
  // on failure as usual) but node:test does not count its failure.
  test(name, { timeout: timeout + 60_000, skip, todo }, async (t) => {
    const ctx = new E2E(name);
    const started = Date.now();
    try {
      await withTimeout(fn(ctx, t), timeout, 'test');
      for (const s of ctx.servers) await s.assertHealthy();
      for (const n of ctx.notes) t.diagnostic(n);
      // A blocked script, style, connection or media source is a failure: the
      // client must work under its Content-Security-Policy.
      for (const page of ctx.pages) {
        const csp = cspViolations(page);
        if (csp.length) throw new Error(`${page.__label}: Content-Security-Policy violation: ${csp[0]}`);
      }
      // An uncaught exception in a page is a client bug: a failure.
      for (const page of ctx.pages) {
        const thrown = (page.__log ?? []).filter((l) => /pageerror/.test(l));
        if (thrown.length) throw new Error(`${page.__label}: ${thrown.length} uncaught page error(s), first: ${thrown[0]}`);
      }
      // Not a failure, but worth seeing: console errors and warnings.
      for (const page of ctx.pages) {
        const bad = (page.__log ?? []).filter((l) => /pageerror|page crashed|console\.(error|warn)/.test(l) && !/favicon|status of 404|integrity/.test(l));
        if (bad.length) t.diagnostic(`${page.__label}: ${bad.length} console error/warning line(s), first: ${bad[0]}`);
      }
    } catch (e) {
      try {
        const files = await ctx.saveArtifacts(e);
        t.diagnostic(`artifacts: ${files.map((f) => path.relative(here, f)).join(', ')}`);
      } catch (e2) {
        t.diagnostic(`saving artifacts failed: ${e2.message}`);
      }
      throw e;
    } finally {
      await ctx.closeAll();
      t.diagnostic(`took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  });
}

/**
 * Clicks `selector` (a download link) in `page` as a person would (or
 * calls it, when a function) and
 * waits until the browser has saved `name` whole (`size` bytes, or any
 * size once the partial file is gone); returns the saved file's path. The
 * folder is removed when the test ends.
 */
export async function saveDownload(ctx, page, selector, name, size = null) {
  // `selector` may also be a function that makes the browser save the file.
  const dir = await mkdtemp(path.join(tmpdir(), 'e2e-saved-'));
  ctx.onClose(() => rm(dir, { recursive: true, force: true }));
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: dir });
  await (typeof selector === 'function' ? selector() : page.click(selector));
  const saved = path.join(dir, name);
  await waitFor(`${page.__label}: ${name} saved`, async () => {
    const st = await stat(saved).catch(() => null);
    const partial = await stat(`${saved}.crdownload`).catch(() => null);
    return { ok: !!st && !partial && (size === null ? st.size > 0 : st.size === size), value: st?.size ?? 'absent' };
  }, { timeout: 30_000, interval: 100 });
  return saved;
}

/**
 * Keeps every RTCPeerConnection the page makes in `window.__pcs` (for
 * getStats); pass it to `page.evaluateOnNewDocument` before joining.
 */
export function keepPeerConnections() {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  };
}

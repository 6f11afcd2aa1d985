// Starts and stops the signal-server binary for the end-to-end tests.
//
// The binary is taken from $SIGNAL_SERVER_BIN, else
// <repo>/target/debug/signal-server (resolved from this file's directory).
// Every server gets `--port 0 --host 127.0.0.1 --static-dir <fresh tmp dir>`
// plus the flags a test asks for, and is killed by `stop()`.
//
// Scale-out: `startCluster()` starts two servers (nodes) on one real Redis.
// With SIGNAL_CLUSTER=1 in the environment, `startServer()` itself returns
// such a cluster, whose `url` alternates between the nodes: consecutive
// clients of a test land on different nodes, so the protocol suites run
// unchanged across nodes.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis } from './redis.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const SERVER_BIN = process.env.SIGNAL_SERVER_BIN
  ? path.resolve(process.env.SIGNAL_SERVER_BIN)
  : path.resolve(here, '../../target/debug/signal-server');

const LISTENING = /signal-server listening on (http:\/\/[^\s]+?):(\d+)\s*$/m;
const MAX_LOG = 256 * 1024;

/** Every server still running, so a crashing test run does not leak them. */
const running = new Set();
process.on('exit', () => {
  for (const s of running) {
    try { s.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/**
 * Start a server.
 * @param {string[]} flags extra command-line flags
 * @param {{staticFiles?: Record<string,string>, env?: Record<string,string>, startTimeoutMs?: number, portFlag?: boolean}} [opts]
 *   portFlag: false to leave out `--port 0` (e.g. to test $PORT)
 * @returns {Promise<Server>}
 */
export async function startServer(flags = [], opts = {}) {
  if (process.env.SIGNAL_CLUSTER === '1') return startCluster(flags, opts);
  return startNode(flags, opts);
}

let shared = null; // {redis, users}
let clusterSeq = 0;

/**
 * Two nodes on one Redis (shared by the clusters of this test process unless
 * `opts.redis` is given), each with its own key prefix per cluster.
 * @returns {Promise<Cluster>}
 */
export async function startCluster(flags = [], opts = {}) {
  let redis = opts.redis;
  let ownsShared = false;
  if (!redis) {
    shared ??= { redis: startRedis(), users: 0 };
    shared.users++;
    ownsShared = true;
    redis = await shared.redis;
  }
  const prefix = `t${process.pid}x${++clusterSeq}`;
  const nodeFlags = [...flags, '--redis-url', redis.url, '--redis-prefix', prefix];
  const nodes = await Promise.all([0, 1].map(() => startNode(nodeFlags, opts)));
  return new Cluster(nodes, redis, ownsShared);
}

/** Two nodes that look like one server to the protocol tests. */
export class Cluster {
  constructor(nodes, redis, ownsShared) {
    this.nodes = nodes;
    this.redis = redis;
    this.ownsShared = ownsShared;
    this.turn = 0;
  }

  /** Each read gives the next node's URL: consecutive clients alternate nodes. */
  get url() {
    return this.nodes[this.turn++ % this.nodes.length].url;
  }

  get(p, init) { return this.nodes[0].get(p, init); }

  panics() { return this.nodes.flatMap((n) => n.panics()); }

  async assertHealthy() {
    for (const n of this.nodes) await n.assertHealthy();
  }

  async stop() {
    await Promise.all(this.nodes.map((n) => n.stop()));
    if (this.ownsShared && --shared.users === 0) {
      const r = await shared.redis;
      shared = null;
      await r.stop();
    }
  }
}

/** One server process. */
export async function startNode(flags = [], opts = {}) {
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`signal-server binary not found at ${SERVER_BIN} (set SIGNAL_SERVER_BIN)`);
  }
  const staticDir = await mkdtemp(path.join(tmpdir(), 'signal-static-'));
  for (const [name, body] of Object.entries(opts.staticFiles ?? {})) {
    await writeFile(path.join(staticDir, name), body);
  }
  const portArgs = opts.portFlag === false ? [] : ['--port', '0'];
  const args = [...portArgs, '--host', '127.0.0.1', '--static-dir', staticDir, ...flags];
  // A clean environment for the flags that also read env vars, so the
  // caller's shell (PORT, HOST, ...) cannot change what a test sees.
  const env = { ...process.env };
  for (const k of ['PORT', 'HOST', 'STATIC_DIR', 'HISTORY_LIMIT', 'MAX_PEERS_PER_ROOM',
    'MAX_MESSAGE_BYTES', 'RATE_LIMIT_BURST', 'RATE_LIMIT_PER_SEC', 'SEND_BUFFER',
    'DEFAULT_MODE', 'STUN_URLS', 'TURN_URLS', 'TURN_SECRET', 'TURN_TTL_SECS', 'CORS_ORIGINS',
    'TURN_USERNAME', 'TURN_CREDENTIAL', 'LISTEN_BACKLOG', 'PING_INTERVAL_MS', 'PING_TIMEOUT_MS', 'WS_READ_BUFFER',
    'REDIS_URL', 'REDIS_PREFIX', 'REDIS_TLS_INSECURE', 'SFU', 'SFU_IP', 'SFU_PORTS', 'SFU_PUBLIC_IP', 'SFU_TCP',
    'MAX_CONNS_PER_IP', 'TRUST_PROXY', 'SEND_BUFFER_BYTES', 'SEND_BUFFER_BYTES_PER_IP', 'HISTORY_BYTES',
    'HISTORY_BYTES_PER_IP', 'MAX_ROOMS_PER_SOCKET', 'SFU_PEERS_PER_IP', 'CONFIG_REQUESTS_PER_MIN',
    'HTTP_HEADER_TIMEOUT_SECS', 'HTTP_IDLE_TIMEOUT_SECS']) {
    delete env[k];
  }
  Object.assign(env, opts.env ?? {});

  const proc = spawn(SERVER_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new Server(proc, args, staticDir);
  running.add(server);

  const timeoutMs = opts.startTimeoutMs ?? 20_000;
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`signal-server did not print its listening line within ${timeoutMs} ms\n` +
          `args: ${args.join(' ')}\nstdout:\n${server.stdout}\nstderr:\n${server.stderr}`));
      }, timeoutMs);
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
        reject(new Error(`signal-server exited before listening (code ${code}, signal ${sig})\n` +
          `args: ${args.join(' ')}\nstdout:\n${server.stdout}\nstderr:\n${server.stderr}`));
      });
    });
  } catch (e) {
    await server.stop();
    throw e;
  }
  if (server.port === 0) throw new Error('server reported port 0 instead of the real port');
  return server;
}

export class Server {
  constructor(proc, args, staticDir) {
    this.proc = proc;
    this.args = args;
    this.staticDir = staticDir;
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
      proc.once('exit', (code, signal) => { this.exit = { code, signal }; resolve(this.exit); });
    });
  }

  /** True while the process has not exited. */
  get alive() { return this.exit === null && this.proc.exitCode === null; }

  /** Log text that shows a panic somewhere in the server (tasks included). */
  panics() {
    const all = this.stdout + '\n' + this.stderr;
    return all.split('\n').filter((l) => /panicked at|RUST_BACKTRACE/.test(l));
  }

  /** GET a path; resolves {status, headers, body}. */
  async get(p, init) {
    const res = await fetch(this.url + p, { ...init, signal: AbortSignal.timeout(10_000) });
    return { status: res.status, headers: res.headers, body: await res.text() };
  }

  /** Assert the server is up, answers /healthz and logged no panic. */
  async assertHealthy() {
    if (!this.alive) throw new Error(`signal-server exited: ${JSON.stringify(this.exit)}\nstderr:\n${this.stderr.slice(-4000)}`);
    const panics = this.panics();
    if (panics.length) throw new Error(`signal-server logged a panic:\n${panics.join('\n')}`);
    const h = await this.get('/healthz');
    if (h.status !== 200) throw new Error(`/healthz answered ${h.status}`);
  }

  async stop() {
    running.delete(this);
    if (this.alive) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => { if (this.alive) this.proc.kill('SIGKILL'); }, 3000);
      await this.exited;
      clearTimeout(t);
    }
    await rm(this.staticDir, { recursive: true, force: true });
  }
}

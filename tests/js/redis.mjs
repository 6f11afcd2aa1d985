// Starts a real redis-server (Debian's, >= 7) on a free loopback port for the
// scale-out tests, and stops it. Nothing is persisted: no RDB, no AOF.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';

const running = new Set();
process.on('exit', () => {
  for (const r of running) {
    try { r.proc.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

/** A port that was free a moment ago (redis-server cannot pick one itself). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export class Redis {
  /**
   * @param {number} port
   * @param {{tls?: {cert: string, key: string}}} [opts] TLS only, as Heroku's
   *   Redis: `url` is then `rediss://…` (a self-signed certificate: the
   *   server needs `--redis-tls-insecure`, as on Heroku).
   */
  constructor(port, opts = {}) {
    this.port = port;
    this.tls = opts.tls;
    this.url = `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`;
    this.proc = null;
    this.log = '';
  }

  /** Starts (or restarts, on the same port) the server; resolves when it accepts connections. */
  async start(timeoutMs = 10_000) {
    const bin = process.env.REDIS_SERVER_BIN ?? 'redis-server';
    const listen = this.tls
      ? ['--port', '0', '--tls-port', String(this.port), '--tls-cert-file', this.tls.cert,
        '--tls-key-file', this.tls.key, '--tls-ca-cert-file', this.tls.cert, '--tls-auth-clients', 'no']
      : ['--port', String(this.port)];
    const args = [...listen, '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'notice'];
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    running.add(this);
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    const onData = (d) => { this.log = (this.log + d).slice(-64 * 1024); };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    this.exited = new Promise((resolve) => proc.once('exit', resolve));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server not ready in ${timeoutMs} ms:\n${this.log}`)), timeoutMs);
      const check = () => {
        if (/Ready to accept connections/.test(this.log)) { clearTimeout(timer); resolve(); }
      };
      proc.stdout.on('data', check);
      proc.once('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run ${bin}: ${e.message} (scripts/setup.sh installs redis-server)`)); });
      proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`redis-server exited (${code}):\n${this.log}`)); });
    });
    return this;
  }

  /** Kills the server at once (SIGKILL): a crash, not a shutdown. */
  async kill() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
    running.delete(this);
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
      await this.exited;
    }
    running.delete(this);
  }
}

/** A Redis on a free port; retries if another process took the port meanwhile. */
export async function startRedis(opts = {}) {
  let last;
  for (let i = 0; i < 5; i++) {
    const r = new Redis(await freePort(), opts);
    try { return await r.start(); } catch (e) { last = e; await r.kill(); }
  }
  throw last;
}

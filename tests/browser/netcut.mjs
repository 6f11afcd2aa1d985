// A second "host" for network-fault tests: its own network namespace, joined
// to the test's namespace by a veth pair, so its network can be cut and
// restored (a Wi-Fi drop, a dead uplink) while everything else keeps running.
//
//   test namespace (server, other browsers)        isolated host (one browser)
//   vh-N 10.77.N.1/24  <------ veth ------>  eth0 10.77.N.2/24
//
// The host's namespace is held by a `sleep` child of `unshare --net`; Chromium
// enters it through `nsenter` (a small wrapper script is its executable), and
// puppeteer talks to it over pipes, so DevTools needs no network. Needs the
// CAP_NET_ADMIN/CAP_SYS_ADMIN that run-in-netns.sh already gives the tests.

import { spawn, execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { CHROMIUM, waitFor } from './harness.mjs';

const run = promisify(execFile);

let seq = 0;

export class IsolatedHost {
  /** @param {number} n subnet number (1–254), unique per live host */
  constructor(n) {
    this.n = n;
    this.link = `vh-${process.pid % 10000}-${n}`;
    this.gateway = `10.77.${n}.1`; // the test namespace's side: the server
    this.address = `10.77.${n}.2`; // the host's own address
    this.holder = null;
    this.dir = null;
  }

  static async create() {
    const host = new IsolatedHost(++seq);
    await host.#setUp();
    return host;
  }

  async #setUp() {
    this.holder = spawn('unshare', ['--net', 'sleep', 'infinity'], { stdio: 'ignore' });
    const pid = this.holder.pid;
    // The holder's namespace exists once unshare has exec'd sleep.
    await waitFor('isolated host namespace', async () => {
      const [mine, its] = await Promise.all([
        run('readlink', ['/proc/self/ns/net']).then((r) => r.stdout.trim()),
        run('readlink', [`/proc/${pid}/ns/net`]).then((r) => r.stdout.trim()),
      ]);
      const cmd = await run('cat', [`/proc/${pid}/comm`]).then((r) => r.stdout.trim());
      return { ok: mine !== its && cmd === 'sleep', value: { mine, its, cmd } };
    }, { timeout: 10_000, interval: 50 });
    this.netns = `/proc/${pid}/ns/net`;
    await run('ip', ['link', 'add', this.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
    // IPv4 only: IPv6 link-local addresses would give ICE and the browser a
    // second path that the cut does not touch.
    await run('sh', ['-c', `echo 1 > /proc/sys/net/ipv6/conf/${this.link}/disable_ipv6`]);
    await this.exec('sh', ['-c', 'echo 1 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6']);
    await run('ip', ['addr', 'add', `${this.gateway}/24`, 'dev', this.link]);
    await run('ip', ['link', 'set', this.link, 'up']);
    await this.exec('ip', ['link', 'set', 'lo', 'up']);
    await this.exec('ip', ['addr', 'add', `${this.address}/24`, 'dev', 'eth0']);
    await this.exec('ip', ['link', 'set', 'eth0', 'up']);
    this.dir = await mkdtemp(path.join(tmpdir(), 'e2e-host-'));
    this.chromium = path.join(this.dir, 'chromium');
    await writeFile(this.chromium, `#!/bin/sh\nexec nsenter --net=${this.netns} ${CHROMIUM} "$@"\n`);
    await chmod(this.chromium, 0o755);
  }

  /**
   * A page in a new Chromium on this host, labelled `label`, for which
   * `server` (reached at {@link IsolatedHost#urlOf}, not a secure origin by
   * default) counts as secure, so that getUserMedia works.
   */
  async chromiumPage(ctx, server, label) {
    const browser = await ctx.chromium({
      executablePath: this.chromium,
      extraArgs: [`--unsafely-treat-insecure-origin-as-secure=${this.urlOf(server)}`],
    });
    return ctx.page(browser, label);
  }

  /** Runs a command inside the host's namespace. */
  exec(cmd, args) {
    return run('nsenter', [`--net=${this.netns}`, cmd, ...args]);
  }

  /** The URL of `server` as this host reaches it (the server must listen on 0.0.0.0). */
  urlOf(server) {
    return `http://${this.gateway}:${server.port}`;
  }

  /**
   * Cut the host off, on its side only (the test namespace's link stays up,
   * so the browsers there see no change of their own network):
   * - 'offline': its address goes away, as when Wi-Fi drops; the browser
   *   sees the network change and goes offline;
   * - 'blackhole': its packets to the other side are silently dropped, as
   *   on a dead uplink; nothing tells the browser.
   */
  async cut(mode) {
    if (this.cutMode) throw new Error(`already cut (${this.cutMode})`);
    if (mode === 'offline') await this.exec('ip', ['addr', 'del', `${this.address}/24`, 'dev', 'eth0']);
    else if (mode === 'blackhole') await this.exec('ip', ['route', 'add', 'blackhole', `${this.gateway}/32`]);
    else throw new Error(`unknown cut mode ${mode}`);
    this.cutMode = mode;
  }

  async restore() {
    if (this.cutMode === 'offline') await this.exec('ip', ['addr', 'add', `${this.address}/24`, 'dev', 'eth0']);
    else if (this.cutMode === 'blackhole') await this.exec('ip', ['route', 'del', 'blackhole', `${this.gateway}/32`]);
    this.cutMode = null;
  }

  /**
   * Limits what reaches the host to `rate` (tc's units, e.g. '1mbit'): a
   * token bucket on the test namespace's end of the link, whose queue
   * drops what waits longer than 100 ms, as a slow downlink does.
   */
  async throttle(rate) {
    await run('tc', ['qdisc', 'replace', 'dev', this.link, 'root', 'tbf', 'rate', rate, 'burst', '32kb', 'latency', '100ms']);
  }

  /**
   * Lets no UDP out of the host to the other side (a network that allows
   * TCP only): a routing rule that refuses it, so the browser's UDP sends
   * fail at once.
   */
  async blockUdp() {
    await this.exec('ip', ['rule', 'add', 'ipproto', 'udp', 'to', this.gateway, 'prohibit']);
  }

  /** Lifts {@link IsolatedHost#throttle}. */
  async unthrottle() {
    await run('tc', ['qdisc', 'del', 'dev', this.link, 'root']);
  }

  async destroy() {
    await run('ip', ['link', 'del', this.link]).catch(() => {});
    try { this.holder?.kill('SIGKILL'); } catch { /* gone */ }
    if (this.dir) await rm(this.dir, { recursive: true, force: true }).catch(() => {});
  }
}

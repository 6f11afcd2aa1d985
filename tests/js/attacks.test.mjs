// What one client address can make the server hold (issue "Hardening II",
// docs/security.md): each attack runs against a bound, the server's memory
// growth is measured (peak RSS from /proc), and two users at another
// address keep chatting throughout, every message delivered.
//
// Sizes are small enough for the test command; docs/security.md gives the
// figures at full size (ATTACK_PAIRS=120, ATTACK_SOCKETS=250, …).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { startServer, startCluster } from './server.mjs';
import { startRedis } from './redis.mjs';
import { RawClient } from './raw.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertOk, assertErr, roomName, eventually,
} from './client.mjs';

const env = (name, dflt) => Number(process.env[name] ?? dflt);
/** Memory growth allowed for any one attack from one address. */
const BOUND_MB = 64;

/** {rss, hwm} of a process, in MiB, from /proc. */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

/** The server processes (one, or the nodes of a cluster). */
const pidsOf = (server) => (server.nodes ?? [server]).map((s) => s.proc.pid);

/** RSS now, summed over the server's processes (MiB). */
const rssOf = (server) => pidsOf(server).reduce((sum, pid) => sum + memoryOf(pid).rss, 0);
/** Peak RSS so far, summed (MiB). */
const peakOf = (server) => pidsOf(server).reduce((sum, pid) => sum + memoryOf(pid).hwm, 0);

/** Scaled out: Redis's used memory (MiB); 0 on one node. */
const redisMb = async (server) => (server.redis ? usedMemoryMb(server.redis) : 0);

/** Two users at another client address (127.0.0.2) chatting every 40 ms. */
class Bystanders {
  async start(server) {
    const opts = { transports: ['websocket'], localAddress: '127.0.0.2' };
    this.room = roomName('bystanders');
    this.a = await connect(server.url, opts);
    this.b = await connect(server.url, opts);
    assertOk(await join(this.a, this.room, 'Ana'));
    assertOk(await join(this.b, this.room, 'Bo'));
    this.sent = 0;
    this.received = 0;
    this.failed = [];
    this.b.on('chat', (m) => { if (m.room === this.room) this.received++; });
    this.timer = setInterval(() => {
      this.sent++;
      emitAck(this.a, 'chat', { room: this.room, text: `still here ${this.sent}` }, 10_000)
        .then((ack) => { if (!ack.ok) this.failed.push(ack.error); })
        .catch((e) => this.failed.push(String(e)));
    }, 40);
    // A failed test must not keep the process alive.
    this.timer.unref();
    return this;
  }

  /**
   * Stops (after at least 10 messages: a short attack is still covered by
   * chat from before to after it), then checks every message was
   * acknowledged and delivered.
   */
  async check() {
    await eventually(() => assert.ok(this.sent >= 10), 5_000, 20).catch(() => {});
    clearInterval(this.timer);
    await eventually(() => assert.equal(this.received, this.sent), 10_000, 20)
      .catch(() => assert.fail(`bystanders: ${this.received}/${this.sent} delivered`));
    assert.deepEqual(this.failed, [], 'every bystander message acknowledged ok');
    assert.ok(this.sent >= 10, `the bystanders chatted throughout (${this.sent} messages)`);
  }
}

/** A metric summed over the server's processes (one, or a cluster's nodes). */
async function metric(server, name) {
  let sum = 0;
  for (const node of server.nodes ?? [server]) {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    sum += m ? Number(m[1]) : NaN;
  }
  return sum;
}

describe('paused readers fed 60 KB signals (queued bytes per socket and per address)', () => {
  let server;
  before(async () => { server = await startServer(['--rate-limit-burst', '2000', '--rate-limit-per-sec', '2000']); });
  after(async () => { closeAll(); await server?.stop(); });

  it('each receiver that stops reading is disconnected at its byte bound; memory stays bounded', async (t) => {
    const pairs = env('ATTACK_PAIRS', 20);
    const perSender = env('ATTACK_SIGNALS', 300);
    const bystanders = await new Bystanders().start(server);
    const base = rssOf(server);
    const sdp = `v=0 ${'x'.repeat(60_000)}`; // 60 KB
    const receivers = [];
    t.after(() => { for (const r of receivers) r.ws.terminate(); });
    const attack = Array.from({ length: pairs }, async (_, i) => {
      const room = roomName(`paused${i}`);
      const sender = await connect(server.url, { transports: ['websocket'] });
      assertOk(await join(sender, room, 'sender'));
      const receiver = new RawClient(server.url);
      receivers.push(receiver);
      await receiver.connect();
      receiver.send(`420${JSON.stringify(['join', { room, name: 'receiver' }])}`);
      const ack = await receiver.waitFor((f) => typeof f === 'string' && f.startsWith('430'));
      const id = JSON.parse(ack.slice(3))[0].self.id;
      // The receiver is cut at its own bound; when the address's bound
      // (all its sockets together) is crossed first, whichever socket of
      // the address crosses it is cut, the sender among them.
      let senderCut = false;
      const cut = new Promise((resolve) => {
        sender.on('peer-left', (e) => { if (e.id === id) resolve('receiver'); });
        sender.on('disconnect', () => { senderCut = true; resolve('sender'); });
      });
      receiver.ws._socket.pause();
      let sent = 0;
      for (; sent < perSender && !senderCut; sent++) {
        let res;
        try {
          res = await emitAck(sender, 'signal', { room, to: id, data: { type: 'offer', sdp } }, 20_000);
        } catch (e) {
          assert.ok(senderCut, `the only reason a signal goes unanswered is its sender being cut: ${e}`);
          break;
        }
        if (!res.ok) {
          assert.equal(res.error.code, 'unknown_peer', 'the receiver is gone, nothing else');
          break;
        }
      }
      let timer;
      const who = await Promise.race([cut, new Promise((r) => { timer = setTimeout(() => r('neither'), 30_000); })]);
      clearTimeout(timer);
      assert.notEqual(who, 'neither', `pair ${i}: neither side was cut after ${sent} signals`);
      return { sent, who };
    });
    const results = await Promise.all(attack);
    const sent = results.map((r) => r.sent);
    const receiversCut = results.filter((r) => r.who === 'receiver').length;
    const growth = peakOf(server) - base;
    const overflows = await metric(server, 'signal_send_overflow_total');
    t.diagnostic(`${pairs} pairs: signals accepted per pair: min ${Math.min(...sent)}, max ${Math.max(...sent)}; cut: ${receiversCut} receivers, ${pairs - receiversCut} senders (${overflows} sockets over a byte bound); peak RSS growth ${growth.toFixed(1)} MiB`);
    assert.ok(growth < BOUND_MB, `peak RSS growth ${growth.toFixed(1)} MiB < ${BOUND_MB} MiB`);
    // Most are cut at a byte bound; a reader the attack reaches late can be
    // cut by the ping timeout (45 s) first, as any reader that stops.
    assert.ok(overflows >= Math.ceil(pairs / 2), `sockets over a byte bound: ${overflows}`);
    await bystanders.check();
    await server.assertHealthy();
  });
});

describe('chat history in many rooms (history bytes per room and per address)', () => {
  let server;
  before(async () => { server = await startServer(['--rate-limit-burst', '2000', '--rate-limit-per-sec', '2000']); });
  after(async () => { closeAll(); await server?.stop(); });

  it("one address's kept history stays within its budget, however many rooms it writes to", async (t) => {
    const sockets = env('ATTACK_SOCKETS', 32);
    const roomsEach = 16; // --max-rooms-per-socket
    const messages = env('ATTACK_MESSAGES', 8);
    const bystanders = await new Bystanders().start(server);
    const base = rssOf(server);
    const redisBase = await redisMb(server);
    const text = '😀'.repeat(2000); // 8 000 bytes
    const rooms = [];
    await Promise.all(Array.from({ length: sockets }, async (_, i) => {
      const s = await connect(server.url, { transports: ['websocket'] });
      for (let r = 0; r < roomsEach; r++) {
        const room = roomName(`hist${i}x${r}`);
        rooms.push(room);
        assertOk(await join(s, room, 'writer'));
        for (let m = 0; m < messages; m++) assertOk(await emitAck(s, 'chat', { room, text }, 20_000));
      }
    }));
    const growth = peakOf(server) - base;
    const redisGrowth = (await redisMb(server)) - redisBase;
    // What a late joiner is sent, over every room: the kept history.
    const reader = await connect(server.url, { transports: ['websocket'], localAddress: '127.0.0.3' });
    let keptBytes = 0;
    let keptMessages = 0;
    for (const room of rooms) {
      const ack = assertOk(await join(reader, room, 'reader'));
      keptMessages += ack.history.length;
      keptBytes += ack.history.reduce((n, m) => n + Buffer.byteLength(m.text), 0);
      assertOk(await emitAck(reader, 'leave', { room }));
    }
    const written = sockets * roomsEach * messages * 8000;
    t.diagnostic(`${rooms.length} rooms, ${(written / 2 ** 20).toFixed(0)} MiB written: ${keptMessages} messages (${(keptBytes / 2 ** 20).toFixed(2)} MiB of text) kept; peak RSS growth ${growth.toFixed(1)} MiB${server.redis ? `, Redis +${redisGrowth.toFixed(1)} MiB` : ''}`);
    assert.ok(keptBytes <= 4 * 2 ** 20, 'kept history within the address budget (HISTORY_BYTES_PER_IP, 4 MiB)');
    assert.ok(keptMessages > 0, 'recent history is still kept');
    assert.ok(growth < BOUND_MB, `peak RSS growth ${growth.toFixed(1)} MiB < ${BOUND_MB} MiB`);
    await bystanders.check();
    await server.assertHealthy();
  });
});

describe('thousands of rooms (rooms per socket)', () => {
  let server;
  before(async () => { server = await startServer(['--rate-limit-burst', '2000', '--rate-limit-per-sec', '2000']); });
  after(async () => { closeAll(); await server?.stop(); });

  it('a socket is in at most 16 rooms; 4 000 rooms from one address stay bounded and go fast', async (t) => {
    const sockets = env('ATTACK_ROOM_SOCKETS', 250);
    const bystanders = await new Bystanders().start(server);
    const base = rssOf(server);
    const redisBase = await redisMb(server);
    const all = await Promise.all(Array.from({ length: sockets }, async (_, i) => {
      const s = await connect(server.url, { transports: ['websocket'] });
      for (let r = 0; r < 16; r++) assertOk(await join(s, roomName(`many${i}x${r}`), 'x'));
      return s;
    }));
    const extra = await emitAck(all[0], 'join', { room: roomName('seventeenth'), name: 'x' });
    assertErr(extra, 'bad_request');
    assert.match(extra.error.message, /at most 16 rooms/);
    // The bystanders' room (counted on each node it has a member on).
    const theirs = (server.nodes ?? [server]).length;
    assert.equal(await metric(server, 'signal_rooms'), sockets * 16 + theirs);
    const growth = peakOf(server) - base;
    const redisGrowth = (await redisMb(server)) - redisBase;
    const t0 = Date.now();
    for (const s of all) s.disconnect();
    await eventually(async () => assert.equal(await metric(server, 'signal_rooms'), theirs), 20_000, 50);
    const cleanup = Date.now() - t0;
    t.diagnostic(`${sockets * 16} rooms: peak RSS growth ${growth.toFixed(1)} MiB${server.redis ? `, Redis +${redisGrowth.toFixed(1)} MiB` : ''}; all gone ${cleanup} ms after the disconnects`);
    assert.ok(growth < BOUND_MB, `peak RSS growth ${growth.toFixed(1)} MiB < ${BOUND_MB} MiB`);
    await bystanders.check();
    await server.assertHealthy();
  });
});

describe('errors do not echo what they were sent', () => {
  let server;
  before(async () => { server = await startServer(); });
  after(async () => { closeAll(); await server?.stop(); });

  it('an unknown event with a 60 KB name is refused with a short message', async () => {
    const s = await connect(server.url, { transports: ['websocket'] });
    const ack = await emitAck(s, 'x'.repeat(60_000), { room: 'r' });
    assertErr(ack, 'bad_request');
    assert.ok(ack.error.message.length < 300, `message is ${ack.error.message.length} characters`);
    assert.match(ack.error.message, /unknown event "x{20,64}…"; expected join/);
  });
});

/** One Redis command over RESP (for CONFIG SET and INFO); resolves the raw reply. */
function redisCommand(redis, ...args) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(redis.port, '127.0.0.1');
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      data += d;
      // A simple reply, an error, or a complete bulk string.
      const bulk = /^\$(\d+)\r\n/.exec(data);
      if ((/^[+-:]/.test(data) && data.endsWith('\r\n')) || (bulk && data.length >= bulk[0].length + Number(bulk[1]) + 2)) {
        sock.end();
        resolve(data);
      }
    });
    sock.on('error', reject);
    sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join('')}`);
  });
}

async function usedMemoryMb(redis) {
  return Number(/used_memory:(\d+)/.exec(await redisCommand(redis, 'INFO', 'memory'))[1]) / 2 ** 20;
}

describe('scaled out on a small Redis', () => {
  let redis;
  let cluster;
  before(async () => {
    redis = await startRedis();
    // 16 MB for everything, as a small hosted Redis would be.
    await redisCommand(redis, 'CONFIG', 'SET', 'maxmemory', String(16 * 2 ** 20));
    cluster = await startCluster(['--rate-limit-burst', '2000', '--rate-limit-per-sec', '2000',
      '--history-bytes-per-ip', String(2 * 2 ** 20)], { redis });
  });
  after(async () => { closeAll(); await cluster?.stop(); await redis?.stop(); });

  it("one address cannot fill Redis with history: its budget holds across nodes", async (t) => {
    const bystanders = await new Bystanders().start(cluster);
    const before = await usedMemoryMb(redis);
    const text = '😀'.repeat(2000);
    await Promise.all(Array.from({ length: env('ATTACK_REDIS_SOCKETS', 16) }, async (_, i) => {
      const s = await connect(cluster.url, { transports: ['websocket'] });
      for (let r = 0; r < 16; r++) {
        const room = roomName(`redis${i}x${r}`);
        assertOk(await join(s, room, 'writer'));
        for (let m = 0; m < 4; m++) assertOk(await emitAck(s, 'chat', { room, text }, 20_000));
      }
    }));
    const growth = (await usedMemoryMb(redis)) - before;
    t.diagnostic(`Redis used memory grew ${growth.toFixed(1)} MiB (history budget of the address: 2 MiB)`);
    assert.ok(growth < 8, `Redis grew ${growth.toFixed(1)} MiB`);
    await bystanders.check();
  });

  it('a full Redis: a plain internal error (no Redis text), /healthz degraded, and back when it has room', async () => {
    const s = await connect(cluster.url, { transports: ['websocket'] });
    await redisCommand(redis, 'CONFIG', 'SET', 'maxmemory', '1');
    try {
      const ack = await emitAck(s, 'join', { room: roomName('full'), name: 'late' });
      assertErr(ack, 'internal');
      assert.equal(ack.error.message, 'room state is unavailable; try again shortly');
      const health = await Promise.all(cluster.nodes.map((n) => n.get('/healthz')));
      assert.ok(health.some((h) => h.status === 503), 'the node that failed reports degraded');
    } finally {
      await redisCommand(redis, 'CONFIG', 'SET', 'maxmemory', String(16 * 2 ** 20));
    }
    assertOk(await join(s, roomName('roomy'), 'late'));
  });
});

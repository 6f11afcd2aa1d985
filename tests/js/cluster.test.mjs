// Scale-out on Redis: two server processes (nodes) on one real redis-server.
// The protocol suites also run across nodes (`npm run test:cluster`); this
// file checks what only a cluster has: placement on named nodes, a node that
// dies or stops, Redis going away and coming back.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, startNode } from './server.mjs';
import { startRedis, freePort, Redis } from './redis.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertOk, assertErr, roomName, peersOf, eventually,
  assertNoEvent, pick,
} from './client.mjs';

const ws = { transports: ['websocket'] };
/** Documented bound for a crashed node's peers to be removed: heartbeat TTL 10 s + upkeep 2 s. */
const DEAD_NODE_BOUND_MS = 12_000;

let redis;
before(async () => { redis = await startRedis(); });
after(async () => { closeAll(); await redis?.stop(); });

async function metric(node, name) {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec((await node.get('/metrics')).body);
  return m ? Number(m[1]) : undefined;
}

describe('two nodes, one room', () => {
  let cluster;
  before(async () => { cluster = await startCluster([], { redis }); });
  after(async () => { await cluster?.stop(); });

  it('each node is connected to Redis and reports it', async () => {
    for (const n of cluster.nodes) {
      assert.equal(await metric(n, 'signal_redis_up'), 1);
      assert.equal((await n.get('/healthz')).status, 200);
    }
  });

  it('join lists members of both nodes; events cross nodes both ways', async () => {
    const [A, B] = cluster.nodes;
    const room = roomName('x');
    const a1 = await connect(A.url, ws);
    const b1 = await connect(B.url, ws);
    const a2 = await connect(A.url, ws);
    const j1 = await join(a1, room, 'Ana');
    const j2 = await join(b1, room, 'Bo');
    const j3 = await join(a2, room, 'Cy');
    assert.deepEqual(peersOf(j3.peers), [{ id: j1.self.id, name: 'Ana' }, { id: j2.self.id, name: 'Bo' }]);
    assert.deepEqual(await nextEvent(b1, 'peer-joined', 5000, (p) => p.name === 'Cy'), { room, id: j3.self.id, name: 'Cy' });

    // signal A→B and B→A, with the server-set `from`
    assertOk(await emitAck(a1, 'signal', { room, to: j2.self.id, data: { type: 'offer', sdp: 'v=0 a' } }));
    const s1 = await nextEvent(b1, 'signal');
    assert.deepEqual(s1, { room, from: j1.self.id, data: { type: 'offer', sdp: 'v=0 a' } });
    assertOk(await emitAck(b1, 'signal', { room, to: j1.self.id, data: { type: 'answer', sdp: 'v=0 b' } }));
    assert.equal((await nextEvent(a1, 'signal')).from, j2.self.id);

    // chat from B reaches both A sockets; history is shared
    const chat = assertOk(await emitAck(b1, 'chat', { room, text: 'hello from B' }));
    for (const s of [a1, a2]) assert.equal((await nextEvent(s, 'chat')).id, chat.id);
    assertOk(await emitAck(a1, 'chat-receipt', { room, id: chat.id }));
    assert.deepEqual(await nextEvent(b1, 'chat-receipt'), { room, id: chat.id, from: j1.self.id });
    const late = await connect(B.url, ws);
    const j4 = await join(late, room, 'Di');
    assert.deepEqual(j4.history.map((m) => m.text), ['hello from B']);

    // typing, media-state and peer-ping cross too
    assertOk(await emitAck(a2, 'typing', { room, typing: true }));
    assert.equal((await nextEvent(b1, 'typing')).from, j3.self.id);
    assertOk(await emitAck(b1, 'media-state', { room, audio: false, video: true, screen: false }));
    assert.equal((await nextEvent(a1, 'media-state')).from, j2.self.id);
    assertOk(await emitAck(a1, 'peer-ping', { room, to: j2.self.id, seq: 7, pong: false }));
    assert.equal((await nextEvent(b1, 'peer-ping')).seq, 7);

    // a disconnect on B is a peer-left on A
    b1.disconnect();
    assert.deepEqual(await nextEvent(a1, 'peer-left', 5000, (p) => p.id === j2.self.id), { room, id: j2.self.id });
  });

  it('room capacity and password hold across nodes', async () => {
    const [A, B] = cluster.nodes;
    const room = roomName('pw');
    const a = await connect(A.url, ws);
    const b = await connect(B.url, ws);
    await join(a, room, 'Ana', { password: 's3cret' });
    assertErr(await emitAck(b, 'join', { room, name: 'Bo', password: 'wrong' }), 'unauthorized');
    await join(b, room, 'Bo', { password: 's3cret' });
    // Each node counts its own sockets' memberships.
    for (const n of [A, B]) assert.ok((await metric(n, 'signal_peers')) >= 1, 'signal_peers on each node');
  });

  it('with no node running the SFU, SFU rooms are refused with a clear bad_request and not advertised', async () => {
    // SFU rooms across nodes: sfu-cluster.test.mjs.
    const [A, B] = cluster.nodes;
    for (const n of [A, B]) {
      const cfg = JSON.parse((await n.get('/api/config')).body);
      assert.deepEqual(cfg.modes, ['mesh']);
    }
    const b = await connect(B.url, ws);
    const ack = assertErr(await emitAck(b, 'join', { room: roomName('sfu'), name: 'Bo', mode: 'sfu' }), 'bad_request');
    assert.match(ack.error.message, /SFU/);
  });
});

describe('a node goes away', () => {
  /** Ana on node A; Bo and Cy on node B. */
  async function split(cluster, tag) {
    const [A, B] = cluster.nodes;
    const room = roomName(tag);
    const a = await connect(A.url, ws);
    const b1 = await connect(B.url, ws);
    const b2 = await connect(B.url, ws);
    await join(a, room, 'Ana');
    const acks = [await join(b1, room, 'Bo'), await join(b2, room, 'Cy')];
    return { room, a, acks, ids: acks.map((k) => k.self.id) };
  }

  it('killed (SIGKILL), resume off: peers on the other node get peer-left within the documented bound', async () => {
    const cluster = await startCluster(['--resume-grace-secs', '0'], { redis });
    try {
      const [A, B] = cluster.nodes;
      const { room, a, ids } = await split(cluster, 'kill');
      const t0 = Date.now();
      B.proc.kill('SIGKILL');
      const left = await Promise.all(ids.map((id) =>
        nextEvent(a, 'peer-left', DEAD_NODE_BOUND_MS + 3000, (p) => p.id === id).then(() => Date.now() - t0)));
      const worst = Math.max(...left);
      console.log(`# peer-left after node kill: ${left.join(' / ')} ms (bound ${DEAD_NODE_BOUND_MS} ms)`);
      assert.ok(worst <= DEAD_NODE_BOUND_MS + 1000, `peer-left after ${worst} ms`);
      // the room state agrees: a newcomer sees only Ana
      const c = await connect(A.url, ws);
      assert.deepEqual((await join(c, room, 'Di')).peers.map((p) => p.name), ['Ana']);
    } finally {
      await cluster.stop();
    }
  });

  it('killed (SIGKILL): its peers are held (peer-reconnecting within the bound), resume on the other node, or leave after the grace period', async () => {
    const cluster = await startCluster(['--resume-grace-secs', '3'], { redis });
    try {
      const [A, B] = cluster.nodes;
      const { room, a, acks, ids } = await split(cluster, 'kill-held');
      const t0 = Date.now();
      B.proc.kill('SIGKILL');
      await Promise.all(ids.map((id) => nextEvent(a, 'peer-reconnecting', DEAD_NODE_BOUND_MS + 3000, (p) => p.id === id)));
      const held = Date.now() - t0;
      console.log(`# peer-reconnecting after node kill: ${held} ms (bound ${DEAD_NODE_BOUND_MS} ms)`);
      assert.ok(held <= DEAD_NODE_BOUND_MS + 1000, `peer-reconnecting after ${held} ms`);
      // Bo comes back on node A with its token; Cy does not.
      const bo = await connect(A.url, ws);
      const ack = await join(bo, room, 'Bo', { resume: acks[0].resume });
      assert.equal(ack.resumed, true);
      assert.equal(ack.self.id, ids[0]);
      assert.deepEqual(await nextEvent(a, 'peer-resumed'), { room, id: ids[0] });
      assert.deepEqual(pick(await nextEvent(a, 'peer-left', 6000), ['room', 'id']), { room, id: ids[1] });
      const c = await connect(A.url, ws);
      assert.deepEqual((await join(c, room, 'Di')).peers.map((p) => p.name).sort(), ['Ana', 'Bo']);
    } finally {
      await cluster.stop();
    }
  });

  it('stopped (SIGTERM): its peers are held at once, not after the TTL, and resume on the other node', async () => {
    const cluster = await startCluster([], { redis });
    try {
      const [A, B] = cluster.nodes;
      const room = roomName('term');
      const a = await connect(A.url, ws);
      const b = await connect(B.url, ws);
      await join(a, room, 'Ana');
      const bo = await join(b, room, 'Bo');
      assertOk(await emitAck(a, 'signal', { room, to: bo.self.id, data: { type: 'offer', sdp: 'v=0 before' } }));
      await nextEvent(b, 'signal');
      const t0 = Date.now();
      const stopped = B.stop();
      await nextEvent(a, 'peer-reconnecting', 4000, (p) => p.id === bo.self.id);
      console.log(`# peer-reconnecting after SIGTERM: ${Date.now() - t0} ms`);
      await stopped;
      assertOk(await emitAck(a, 'signal', { room, to: bo.self.id, data: { type: 'offer', sdp: 'v=0 kept' } }));
      const b2 = await connect(A.url, ws);
      const ack = await join(b2, room, 'Bo', { resume: bo.resume });
      assert.equal(ack.resumed, true);
      assert.equal(ack.self.id, bo.self.id);
      assert.equal((await nextEvent(b2, 'signal')).data.sdp, 'v=0 kept', 'the event kept while its node was down');
      await assertNoEvent(a, 'peer-left');
    } finally {
      await cluster.stop();
    }
  });

  it('stopped (SIGTERM), resume off: its peers leave at once, not after the TTL', async () => {
    const cluster = await startCluster(['--resume-grace-secs', '0'], { redis });
    try {
      const [A, B] = cluster.nodes;
      const room = roomName('term0');
      const a = await connect(A.url, ws);
      const b = await connect(B.url, ws);
      await join(a, room, 'Ana');
      const idB = (await join(b, room, 'Bo')).self.id;
      const t0 = Date.now();
      const stopped = B.stop();
      await nextEvent(a, 'peer-left', 4000, (p) => p.id === idB);
      console.log(`# peer-left after SIGTERM: ${Date.now() - t0} ms`);
      await stopped;
    } finally {
      await cluster.stop();
    }
  });
});

describe('Redis unavailable', () => {
  it('down mid-run: clear internal errors, /healthz 503, nothing hangs; back: the room works again', async () => {
    const own = await startRedis();
    const cluster = await startCluster([], { redis: own });
    try {
      const [A, B] = cluster.nodes;
      const room = roomName('down');
      const a = await connect(A.url, ws);
      const b = await connect(B.url, ws);
      const ja = await join(a, room, 'Ana');
      await join(b, room, 'Bo');

      // Redis frozen: its connections hang, as in a network partition.
      own.proc.kill('SIGSTOP');
      await eventually(async () => assert.equal((await A.get('/healthz')).status, 503), 10_000, 100);
      const t0 = Date.now();
      const ack = await emitAck(b, 'chat', { room, text: 'lost?' }, 8000);
      assertErr(ack, 'internal', 'chat while Redis is down');
      assert.match(ack.error.message, /unavailable/);
      assert.ok(Date.now() - t0 < 5000, 'the error came fast');
      assert.equal(await metric(A, 'signal_redis_up'), 0);
      assert.equal((await A.get('/api/config')).status, 200, 'HTTP keeps serving');

      own.proc.kill('SIGCONT');
      for (const n of [A, B]) await eventually(async () => assert.equal((await n.get('/healthz')).status, 200), 15_000, 100);
      const chat = assertOk(await emitAck(b, 'chat', { room, text: 'back' }));
      assert.equal((await nextEvent(a, 'chat', 5000, (m) => m.id === chat.id)).from.id, (await emitAck(b, 'join', { room, name: 'Bo' })).self.id);
      assertOk(await emitAck(a, 'typing', { room, typing: false }));
      assert.equal((await nextEvent(b, 'typing')).from, ja.self.id);
      assert.ok((await metric(A, 'signal_redis_connects_total')) >= 2, 'reconnected');
    } finally {
      await cluster.stop();
      await own.stop();
    }
  });

  it('down at start: the node starts, serves HTTP, answers join with internal; joins work once Redis is up', async () => {
    const port = await freePort();
    const later = new Redis(port);
    const flags = ['--redis-url', later.url, '--redis-prefix', `late${process.pid}`];
    const node = await startNode(flags);
    try {
      assert.equal((await node.get('/healthz')).status, 503);
      assert.equal((await node.get('/api/config')).status, 200);
      const a = await connect(node.url, ws);
      assertErr(await emitAck(a, 'join', { room: roomName('late'), name: 'Ana' }), 'internal');
      await later.start();
      await eventually(async () => assert.equal((await node.get('/healthz')).status, 200), 15_000, 100);
      await join(a, roomName('late'), 'Ana');
    } finally {
      await node.stop();
      await later.stop();
    }
  });
});

describe('Redis restarted empty', () => {
  it('crashed and restarted without its data: each node puts its members back, the call goes on with the same peer ids', async () => {
    const own = await startRedis();
    const cluster = await startCluster([], { redis: own });
    try {
      const [A, B] = cluster.nodes;
      const room = roomName('wiped');
      const a = await connect(A.url, ws);
      const b = await connect(B.url, ws);
      const ja = await join(a, room, 'Ana', { password: 'pw1' });
      const jb = await join(b, room, 'Bo', { password: 'pw1' });

      await own.kill();
      await own.start(); // same port, empty
      for (const n of [A, B]) await eventually(async () => assert.equal((await n.get('/healthz')).status, 200), 15_000, 100);
      // Joins that come in before the restore must not hide the loss.
      for (const n of [A, B]) await join(await connect(n.url, ws), roomName('fresh'), 'Eve');
      // Restored by each node's next upkeep (every 2 s).
      const chat = await eventually(async () => assertOk(await emitAck(a, 'chat', { room, text: 'still here' })), 10_000, 200);
      assert.equal((await nextEvent(b, 'chat', 5000, (m) => m.id === chat.id)).from.id, ja.self.id);
      assertOk(await emitAck(b, 'signal', { room, to: ja.self.id, data: { type: 'bye' } }));
      assert.equal((await nextEvent(a, 'signal')).from, jb.self.id);
      // The room's password came back with its members.
      const c = await connect(A.url, ws);
      assertErr(await emitAck(c, 'join', { room, name: 'Cy', password: 'nope' }), 'unauthorized');
      const jc = await join(c, room, 'Cy', { password: 'pw1' });
      assert.deepEqual(jc.peers.map((p) => p.id).sort(), [ja.self.id, jb.self.id].sort());
    } finally {
      await cluster.stop();
      await own.stop();
    }
  });
});

describe('Redis over TLS (as Heroku\'s)', () => {
  it('rediss:// with a self-signed certificate (REDIS_TLS_INSECURE): two nodes relay across it', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const dir = await mkdtemp(path.join(tmpdir(), 'redis-tls-'));
    const tls = { cert: path.join(dir, 'cert.pem'), key: path.join(dir, 'key.pem') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', tls.key,
      '-out', tls.cert, '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    const own = await startRedis({ tls });
    const cluster = await startCluster([], { redis: own, env: { REDIS_TLS_INSECURE: 'true' } });
    try {
      const [A, B] = cluster.nodes;
      for (const n of [A, B]) assert.equal(await metric(n, 'signal_redis_up'), 1);
      const room = roomName('tls');
      const a = await connect(A.url, ws);
      const b = await connect(B.url, ws);
      const ja = await join(a, room, 'Ana');
      await join(b, room, 'Bo');
      const chat = assertOk(await emitAck(a, 'chat', { room, text: 'over TLS' }));
      assert.equal((await nextEvent(b, 'chat', 5000, (m) => m.id === chat.id)).from.id, ja.self.id);
    } finally {
      await cluster.stop();
      await own.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

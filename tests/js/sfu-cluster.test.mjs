// SFU rooms in a scaled-out deployment (docs/sfu-scale-out.md), with the
// official socket.io client against real nodes on one real Redis. Each SFU
// room is hosted by one node that runs the SFU (its owner); members on any
// node reach it through Redis, and when the owner dies the room moves to
// another SFU node and its members are told with `sfu-moved`.
//
// Which node's SFU answered is read from the answer itself: each node's SFU
// listens on its own UDP port, and its candidates name it.

import { describe, it, before, after } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { startNode } from './server.mjs';
import { startRedis } from './redis.mjs';
import { OFFER } from './sdp.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertOk, assertErr, roomName, eventually, received,
} from './client.mjs';

const ws = { transports: ['websocket'] };
/** SFU_ALIVE_TTL (3 s) + one SFU sweep (1 s), plus scheduling slack. */
const MOVE_BOUND_MS = 6_000;

let redis;
let prefixSeq = 0;
/** The key prefix of the last `nodes()`. */
let lastPrefix = '';
before(async () => { redis = await startRedis(); });
after(async () => { closeAll(); await redis?.stop(); });

/** Nodes on one fresh key prefix; `sfuPorts[i]`: node i's SFU port, or null for none. */
async function nodes(sfuPorts, { on = redis } = {}) {
  const prefix = `sfu${process.pid}x${++prefixSeq}`;
  lastPrefix = prefix;
  return Promise.all(sfuPorts.map((port) => startNode([
    '--redis-url', on.url, '--redis-prefix', prefix,
    ...(port ? ['--sfu', '--sfu-ports', `${port}-${port}`] : []),
  ])));
}

async function metric(node, name) {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec((await node.get('/metrics')).body);
  return m ? Number(m[1]) : undefined;
}

/** Offers to "sfu"; resolves the UDP port the answering SFU's candidates name. */
async function offer(socket, room) {
  const answer = nextEvent(socket, 'signal', 10_000, (s) => s.room === room && s.from === 'sfu' && s.data?.type === 'answer');
  assertOk(await emitAck(socket, 'signal', { room, to: 'sfu', data: { type: 'offer', sdp: OFFER } }), 'offer to sfu');
  const { data } = await answer;
  const ports = [...data.sdp.matchAll(/^a=candidate:\S+ \d+ udp \d+ \S+ (\d+) typ host/gm)].map((m) => Number(m[1]));
  assert.ok(ports.length > 0, `the answer names the SFU's UDP port:\n${data.sdp}`);
  return ports[0];
}

async function stopAll(list) {
  await Promise.all(list.map((n) => n.stop()));
}

describe('SFU rooms across nodes', () => {
  it('a member on a node without the SFU reaches the owner\'s SFU and back; bye and leave end its connection there', async () => {
    const [A, B] = await nodes([45110, null]);
    try {
      // B runs no SFU, yet offers SFU rooms: A does.
      await eventually(async () => {
        const cfg = JSON.parse((await B.get('/api/config')).body);
        assert.deepEqual(cfg.modes, ['mesh', 'sfu']);
        assert.equal(cfg.simulcast, true, 'the shard engine takes simulcast');
      }, 5_000);
      const room = roomName('across');
      const b1 = await connect(B.url, ws);
      const b2 = await connect(B.url, ws);
      const j1 = await join(b1, room, 'Ana', { mode: 'sfu' });
      assert.equal(j1.room.mode, 'sfu');
      assert.ok(j1.room.sfuEpoch > 0, 'the placement of the room\'s SFU (an epoch: Redis\'s clock in ms at the move)');
      assert.equal(await offer(b1, room), 45110, 'answered by A\'s SFU');
      // Candidates and views cross too (acked ok, queued on A).
      assertOk(await emitAck(b1, 'signal', { room, to: 'sfu', data: { type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 } } }));
      const j2 = await join(b2, room, 'Ben');
      assertOk(await emitAck(b1, 'sfu-view', { room, peer: j2.self.id, height: 240 }));
      assert.equal(await offer(b2, room), 45110);
      await eventually(async () => assert.equal(await metric(A, 'signal_sfu_peers'), 2), 5_000);
      assert.equal(await metric(B, 'signal_sfu_rooms'), 0, 'B hosts nothing');
      // A bad description is refused on B, before anything crosses.
      assertErr(await emitAck(b1, 'signal', { room, to: 'sfu', data: { type: 'offer', sdp: 'v=0 nonsense' } }), 'bad_request');
      // bye ends Ana's connection on A; Ben's leave ends his, and the room.
      assertOk(await emitAck(b1, 'signal', { room, to: 'sfu', data: { type: 'bye' } }));
      await eventually(async () => assert.equal(await metric(A, 'signal_sfu_peers'), 1), 5_000);
      assertOk(await emitAck(b2, 'leave', { room }));
      assertOk(await emitAck(b1, 'leave', { room }));
      await eventually(async () => assert.equal(await metric(A, 'signal_sfu_rooms'), 0), 5_000);
      for (const n of [A, B]) await n.assertHealthy();
    } finally {
      await stopAll([A, B]);
    }
  });

  it('a node without --sfu never owns a room; with no SFU node alive, SFU rooms are refused and not offered', async () => {
    const [A, B] = await nodes([45120, null]);
    try {
      // What a user of node B sees first: SFU rooms offered (A announced itself before it listened).
      await eventually(async () => assert.deepEqual(JSON.parse((await B.get('/api/config')).body).modes, ['mesh', 'sfu']), 5_000);
      const rooms = [];
      for (let i = 0; i < 4; i++) {
        const room = roomName(`own${i}`);
        const s = await connect(B.url, ws);
        await join(s, room, `P${i}`, { mode: 'sfu' });
        assert.equal(await offer(s, room), 45120, `room ${i}: hosted by A, the only SFU node`);
        rooms.push(room);
      }
      assert.equal(await metric(A, 'signal_sfu_rooms'), 4);
      assert.equal(await metric(B, 'signal_sfu_rooms'), 0);
      await A.stop();
      // A retired at once (SIGTERM): B knows no SFU node lives.
      await eventually(async () => {
        const cfg = JSON.parse((await B.get('/api/config')).body);
        assert.deepEqual(cfg.modes, ['mesh']);
        assert.equal(cfg.simulcast, false);
      }, 5_000);
      const s = await connect(B.url, ws);
      const ack = assertErr(await emitAck(s, 'join', { room: roomName('none'), name: 'Cy', mode: 'sfu' }), 'bad_request');
      assert.match(ack.error.message, /SFU/);
      // A member of a room whose SFU has nowhere to go gets a clear error.
      const late = await connect(B.url, ws);
      await join(late, rooms[0], 'Di');
      const refused = assertErr(await emitAck(late, 'signal', { room: rooms[0], to: 'sfu', data: { type: 'offer', sdp: OFFER } }), 'internal');
      assert.match(refused.error.message, /SFU/);
      await B.assertHealthy();
    } finally {
      await stopAll([A, B]);
    }
  });

  it('the owner killed (SIGKILL): the room moves to the other SFU node, members are told within the bound, offers reach the new owner', async () => {
    const [A1, A2, B] = await nodes([45130, 45131, null]);
    try {
      const room = roomName('moves');
      // Created through A1: on a tie the creating node owns the room.
      const a1 = await connect(A1.url, ws);
      await join(a1, room, 'Ana', { mode: 'sfu' });
      const [b, a2] = [await connect(B.url, ws), await connect(A2.url, ws)];
      const jb = await join(b, room, 'Ben');
      await join(a2, room, 'Cy');
      const first = jb.room.sfuEpoch;
      assert.ok(first > 0);
      assert.equal(await offer(b, room), 45130, 'A1 owns the room');
      assert.equal(await offer(a2, room), 45130);

      const killed = Date.now();
      A1.proc.kill('SIGKILL');
      const [mb, ma2] = await Promise.all([
        nextEvent(b, 'sfu-moved', MOVE_BOUND_MS + 2_000, (m) => m.room === room),
        nextEvent(a2, 'sfu-moved', MOVE_BOUND_MS + 2_000, (m) => m.room === room),
      ]);
      const tookMs = Date.now() - killed;
      console.log(`# sfu-moved ${tookMs} ms after the owner was killed`);
      assert.equal(mb.room, room);
      assert.ok(mb.epoch > first, `a later placement: ${first} then ${mb.epoch}`);
      assert.deepEqual(ma2, mb);
      assert.ok(tookMs <= MOVE_BOUND_MS, `moved within ${MOVE_BOUND_MS} ms (took ${tookMs})`);
      // Offers now reach A2's SFU, wherever the member is.
      assert.equal(await offer(b, room), 45131, 'A2 owns the room now');
      assert.equal(await offer(a2, room), 45131);
      await eventually(async () => assert.equal(await metric(A2, 'signal_sfu_peers'), 2), 5_000);
      // A later joiner is told the new placement in its ack.
      const late = await connect(B.url, ws);
      assert.equal((await join(late, room, 'Di')).room.sfuEpoch, mb.epoch);
      const moves = (await metric(A2, 'signal_sfu_moves_total')) + (await metric(B, 'signal_sfu_moves_total'));
      assert.equal(moves, 1, 'moved once, by one node');
      for (const n of [A2, B]) await n.assertHealthy();
    } finally {
      await stopAll([A1, A2, B]);
    }
  });

  it('the owner stopped (SIGTERM): the room moves at once', async () => {
    const [A1, A2] = await nodes([45140, 45141]);
    try {
      const room = roomName('retire');
      const a1 = await connect(A1.url, ws);
      await join(a1, room, 'Ana', { mode: 'sfu' });
      const a2 = await connect(A2.url, ws);
      await join(a2, room, 'Ben');
      assert.equal(await offer(a2, room), 45140);
      const stopped = Date.now();
      const moved = nextEvent(a2, 'sfu-moved', 5_000, (m) => m.room === room);
      await A1.stop();
      const mv = await moved;
      assert.ok(mv.room === room && mv.epoch > 0);
      console.log(`# sfu-moved ${Date.now() - stopped} ms after SIGTERM to the owner`);
      assert.equal(await offer(a2, room), 45141);
    } finally {
      await stopAll([A1, A2]);
    }
  });

  it('Redis restarted empty: the room stays on its SFU node, nobody is moved, offers still reach it', async () => {
    const own = await startRedis();
    const [A1, A2, B] = await nodes([45150, 45151, null], { on: own });
    try {
      const room = roomName('wiped');
      const a1 = await connect(A1.url, ws);
      await join(a1, room, 'Ana', { mode: 'sfu' });
      const [b, a2] = [await connect(B.url, ws), await connect(A2.url, ws)];
      await join(b, room, 'Ben');
      await join(a2, room, 'Cy');
      for (const s of [a1, b, a2]) assert.equal(await offer(s, room), 45150, 'A1 hosts the room');

      await own.kill();
      await own.start(); // same port, empty
      for (const n of [A1, A2, B]) await eventually(async () => assert.equal((await n.get('/healthz')).status, 200), 15_000, 100);
      // Each node puts its members back (every 2 s); A1 claims the room it
      // hosts (every second): the room's hash names an owner again.
      const chat = await eventually(async () => assertOk(await emitAck(b, 'chat', { room, text: 'still here' })), 10_000, 200);
      await nextEvent(a1, 'chat', 5_000, (m) => m.id === chat.id);
      const owner = () => execFileSync('redis-cli', ['-p', String(own.port), 'HGET', `${lastPrefix}:r:${room}`, 'sfu'], { encoding: 'utf8' }).trim();
      await eventually(() => assert.notEqual(owner(), '', 'claimed by the node that hosts it'), 5_000, 100);
      // A newcomer's offer reaches A1's SFU, where the others still are.
      const late = await connect(B.url, ws);
      await join(late, room, 'Di');
      assert.equal(await offer(late, room), 45150, 'answered by A1');
      assert.equal(await metric(A1, 'signal_sfu_rooms'), 1);
      assert.equal(await metric(A1, 'signal_sfu_peers'), 4, 'every connection kept, and the newcomer\'s');
      assert.equal(await metric(A2, 'signal_sfu_rooms'), 0);
      for (const s of [a1, b, a2]) {
        assert.equal(received(s, 'sfu-moved').length, 0, 'nobody was told to move');
      }
    } finally {
      await stopAll([A1, A2, B]);
      await own.stop();
    }
  });

  it('Redis frozen past the liveness TTL: no room moves when it is back, though a node that died meanwhile is swept', async () => {
    const own = await startRedis();
    const [A1, A3, B] = await nodes([45160, 45161, null], { on: own });
    try {
      // Room x on A1, room y on A3 (made there: on a tie the creating node owns it).
      const [x, y] = [roomName('frozen-x'), roomName('frozen-y')];
      const a1 = await connect(A1.url, ws);
      await join(a1, x, 'Ana', { mode: 'sfu' });
      const a3 = await connect(A3.url, ws);
      await join(a3, y, 'Ann', { mode: 'sfu' });
      const [bx, by] = [await connect(B.url, ws), await connect(B.url, ws)];
      await join(bx, x, 'Ben');
      await join(by, y, 'Bob');
      assert.equal(await offer(bx, x), 45160);
      assert.equal(await offer(by, y), 45161);

      own.proc.kill('SIGSTOP');
      const frozenAt = Date.now();
      // Each node notices Redis is gone; the fault lasts 5 s, past every
      // liveness (TTL 3 s), which nobody can refresh meanwhile.
      for (const n of [A1, A3, B]) await eventually(async () => assert.equal((await n.get('/healthz')).status, 503), 10_000, 200);
      await new Promise((r) => setTimeout(r, Math.max(0, 5_000 - (Date.now() - frozenAt))));
      own.proc.kill('SIGCONT');
      for (const n of [A1, A3, B]) await eventually(async () => assert.equal((await n.get('/healthz')).status, 200), 15_000, 100);
      // A3 dies now: its room must move once the nodes have settled; x must not.
      A3.proc.kill('SIGKILL');
      const moved = await nextEvent(by, 'sfu-moved', 15_000, (m) => m.room === y);
      assert.ok(moved.epoch > 0);
      assert.equal(await offer(by, y), 45160, 'y moved to A1, the only SFU node left');
      assert.equal(received(bx, 'sfu-moved').length, 0, 'x did not move');
      assert.equal(await offer(bx, x), 45160, 'x still on A1');
      assert.equal(await metric(A1, 'signal_sfu_rooms'), 2);
    } finally {
      await stopAll([A1, A3, B]);
      await own.stop();
    }
  });

  it('the owner stalled (SIGSTOP) past its liveness: the room moves; back, the old node ends its copy and its own members are told too', async () => {
    const [A1, A2, B] = await nodes([45170, 45171, null]);
    try {
      const room = roomName('stalled');
      const a1 = await connect(A1.url, ws);
      const ja = await join(a1, room, 'Ana', { mode: 'sfu' });
      const b = await connect(B.url, ws);
      await join(b, room, 'Ben');
      assert.equal(await offer(a1, room), 45170);
      assert.equal(await offer(b, room), 45170);
      A1.proc.kill('SIGSTOP');
      let moved;
      try {
        moved = await nextEvent(b, 'sfu-moved', MOVE_BOUND_MS + 4_000, (m) => m.room === room);
      } finally {
        A1.proc.kill('SIGCONT');
      }
      assert.ok(moved.epoch > ja.room.sfuEpoch);
      // Ana's socket is on A1, which was asleep when the move was announced.
      assert.deepEqual(await nextEvent(a1, 'sfu-moved', 5_000, (m) => m.room === room), moved);
      await eventually(async () => assert.equal(await metric(A1, 'signal_sfu_rooms'), 0, 'A1 ended its copy'), 5_000, 200);
      assert.equal(await offer(a1, room), 45171, 'Ana reaches A2 now');
      assert.equal(await offer(b, room), 45171);
    } finally {
      await stopAll([A1, A2, B]);
    }
  });
});

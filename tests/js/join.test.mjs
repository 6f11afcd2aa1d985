// join, peer-joined, peer-left: the ack shape, names, ids and membership events.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertNoEvent, assertOk, roomName,
  peersOf, pick, UUID_RE, eventually,
} from './client.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { closeAll(); await server?.stop(); });

const ws = { transports: ['websocket'] };

describe('join ack', () => {
  it('first joiner gets {ok, self{id,name}, room{id,mode:"mesh"}, peers:[], history:[]}', async () => {
    const a = await connect(server.url, ws);
    const room = roomName('shape');
    const ack = await join(a, room, 'Ana');
    assert.equal(ack.ok, true);
    assert.ok(ack.self && typeof ack.self === 'object', 'self is an object');
    assert.equal(typeof ack.self.id, 'string');
    assert.match(ack.self.id, UUID_RE);
    assert.equal(ack.self.name, 'Ana');
    assert.deepEqual(pick(ack.room, ['id', 'mode']), { id: room, mode: 'mesh' });
    assert.ok(Array.isArray(ack.peers), 'peers is an array');
    assert.deepEqual(ack.peers, []);
    assert.ok(Array.isArray(ack.history), 'history is an array');
    assert.deepEqual(ack.history, []);
  });

  it('peers lists everyone already in the room, in join order, excluding self', async () => {
    const room = roomName('order');
    const names = ['P1', 'P2', 'P3', 'P4', 'P5'];
    const joined = [];
    for (const name of names) {
      const s = await connect(server.url, ws);
      const ack = await join(s, room, name);
      assert.deepEqual(peersOf(ack.peers), joined, `peers seen by ${name}`);
      assert.ok(!ack.peers.some((p) => p.id === ack.self.id), 'self is not in peers');
      joined.push({ id: ack.self.id, name });
    }
  });

  it('name is trimmed: in the ack, in peers and in peer-joined', async () => {
    const room = roomName('trim');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    const ackA = await join(a, room, '  Ana  ');
    assert.equal(ackA.self.name, 'Ana');
    const ackB = await join(b, room, '\tBo \n');
    assert.equal(ackB.self.name, 'Bo');
    assert.deepEqual(peersOf(ackB.peers), [{ id: ackA.self.id, name: 'Ana' }]);
    const pj = await nextEvent(a, 'peer-joined');
    assert.deepEqual(pick(pj, ['room', 'id', 'name']), { room, id: ackB.self.id, name: 'Bo' });
  });

  it('names are plain text: markup and non-ASCII are kept verbatim; 32 characters (not bytes) allowed', async () => {
    const room = roomName('markup');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    const markup = '<img src=x onerror=alert(1)>&amp;'.slice(0, 32);
    const ackA = await join(a, room, markup);
    assert.equal(ackA.self.name, markup);
    const longUnicode = 'é'.repeat(32);
    const ackB = await join(b, room, ` ${longUnicode} `);
    assert.equal(ackB.self.name, longUnicode);
    assert.deepEqual(peersOf(ackB.peers), [{ id: ackA.self.id, name: markup }]);
    const pj = await nextEvent(a, 'peer-joined');
    assert.equal(pj.name, longUnicode);
  });

  it('room names of 1 and 64 characters of [A-Za-z0-9_-] are accepted', async () => {
    const a = await connect(server.url, ws);
    const r64 = ('Ab_-9' + roomName('x').replace(/[^A-Za-z0-9_-]/g, '')).padEnd(64, 'z').slice(0, 64);
    assert.equal(r64.length, 64);
    const ack = await join(a, r64, 'Ana');
    assert.equal(ack.room.id, r64);
    const ack1 = await join(a, 'Q', 'Ana');
    assert.equal(ack1.room.id, 'Q');
    assertOk(await emitAck(a, 'leave', { room: 'Q' }));
  });

  it('peer ids are UUIDs and differ per connection, even with the same name', async () => {
    const room = roomName('ids');
    const ids = new Set();
    for (let i = 0; i < 4; i++) {
      const s = await connect(server.url, ws);
      const ack = await join(s, room, 'Same');
      assert.match(ack.self.id, UUID_RE);
      ids.add(ack.self.id);
    }
    assert.equal(ids.size, 4);
    // A new connection of the same client program gets a new id too.
    const again = await connect(server.url, ws);
    const ack = await join(again, roomName('ids2'), 'Same');
    assert.ok(!ids.has(ack.self.id));
  });

  it('joining the same room twice from one socket: ok, same self.id, no second peer-joined', async () => {
    const room = roomName('twice');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    await join(a, room, 'Ana');
    const first = await join(b, room, 'Bo');
    await nextEvent(a, 'peer-joined');
    const second = await join(b, room, 'Bo');
    assert.equal(second.self.id, first.self.id);
    assert.deepEqual(pick(second.room, ['id', 'mode']), { id: room, mode: 'mesh' });
    await assertNoEvent(a, 'peer-joined', () => true, 'after a repeated join');
  });
});

describe('peer-joined / peer-left', () => {
  it('peer-joined {room,id,name} goes to everyone already in the room, not to the joiner', async () => {
    const room = roomName('pj');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    const c = await connect(server.url, ws);
    const ackA = await join(a, room, 'Ana');
    const ackB = await join(b, room, 'Bo');
    assert.deepEqual(pick(await nextEvent(a, 'peer-joined'), ['room', 'id', 'name']),
      { room, id: ackB.self.id, name: 'Bo' });
    const ackC = await join(c, room, 'Cy');
    assert.deepEqual(pick(await nextEvent(a, 'peer-joined'), ['room', 'id', 'name']),
      { room, id: ackC.self.id, name: 'Cy' });
    assert.deepEqual(pick(await nextEvent(b, 'peer-joined'), ['room', 'id', 'name']),
      { room, id: ackC.self.id, name: 'Cy' });
    await assertNoEvent(b, 'peer-joined', () => true, 'to B about itself');
    await assertNoEvent(c, 'peer-joined', () => true, 'to the joiner C');
    assert.ok(ackA.self.id !== ackB.self.id);
  });

  // Two sockets joining one room at the same moment: each either finds the
  // other in its ack's `peers` or gets its peer-joined, and never a
  // peer-joined before its own join ack (a client that builds its peer list
  // from the ack would drop it). Found by `bench signal` (Rust clients that
  // join the instant they connect), which lost a partner in about one pair
  // in 400 before the ack was sent under the registry lock; this test states
  // the rule, but JS clients rarely hit the window, so it did not catch the
  // race on the old server in three runs — `bench signal` is the reproducer.
  // Scaled out, a join on another node can still overtake the ack (not
  // ordered across nodes: docs/scale-out.md, "Ordering"), so there the test
  // holds that nobody misses the other (a peer-joined that came before the
  // joiner's socket entered the room's group was lost in 2 of 3 runs, before
  // it also went to each member's own connection) and reports the early ones.
  it('simultaneous joins: nobody misses the other, nor gets a peer-joined before its own join ack (one node)', async (t) => {
    const pairs = 150;
    // Its own server: 300 sockets from one address exceed the default per-address limit.
    const own = await startServer(['--max-conns-per-ip', '0']);
    try {
      const early = await simultaneousJoins(own, pairs);
      if (process.env.SIGNAL_CLUSTER === '1') {
        t.diagnostic(`across nodes, ${early.length} of ${2 * pairs} joiners got the other's peer-joined before their own ack`);
      } else {
        assert.deepEqual(early, []);
      }
    } finally {
      closeAll();
      await own.stop();
    }
  });

  // A join at the instant a member leaves: the joiner's ack lists the
  // leaver only if the leave came after the join, and then the joiner gets
  // its peer-left (else it would show a peer that is gone for the whole
  // call). Scaled out, joiner and leaver are on different nodes.
  it('a join at the instant another leaves: a leaver in the ack is followed by its peer-left', async () => {
    const rooms = 150;
    const own = await startServer(['--max-conns-per-ip', '0']);
    try {
      // Connected in pairs, leaver then joiner: on two nodes, each pair spans both.
      const socks = [];
      for (let i = 0; i < rooms; i++) {
        socks.push(await connect(own.url, ws), await connect(own.url, ws));
      }
      const room = (i) => `bye-${process.pid}-${i}`;
      const leavers = await Promise.all(Array.from({ length: rooms }, (_, i) => join(socks[2 * i], room(i), `x${i}`)));
      const gone = Array.from({ length: rooms }, () => []);
      for (let i = 0; i < rooms; i++) socks[2 * i + 1].on('peer-left', (ev) => gone[i].push(ev.id));
      const acks = await Promise.all(Array.from({ length: rooms }, (_, i) => {
        const left = emitAck(socks[2 * i], 'leave', { room: room(i) }).then((a) => assertOk(a));
        return Promise.all([join(socks[2 * i + 1], room(i), `a${i}`), left]).then(([ack]) => ack);
      }));
      let listed = 0;
      for (let i = 0; i < rooms; i++) {
        const x = leavers[i].self.id;
        if (!acks[i].peers.some((p) => p.id === x)) continue;
        listed += 1;
        await eventually(() => assert.deepEqual(gone[i], [x], `room ${i}: the joiner listed the leaver and gets its peer-left once`));
      }
      assert.ok(listed > 0, 'some joins came before the leave (else the test shows nothing)');
    } finally {
      closeAll();
      await own.stop();
    }
  });

  it('peer-left {room,id} goes to the rest of the room after a leave', async () => {
    const room = roomName('pl');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    const c = await connect(server.url, ws);
    await join(a, room, 'Ana');
    const ackB = await join(b, room, 'Bo');
    await join(c, room, 'Cy');
    assertOk(await emitAck(b, 'leave', { room }));
    for (const s of [a, c]) {
      assert.deepEqual(pick(await nextEvent(s, 'peer-left'), ['room', 'id']), { room, id: ackB.self.id });
    }
    await assertNoEvent(b, 'peer-left', () => true, 'to the leaver');
    // The leaver is gone from the room's peer list.
    const d = await connect(server.url, ws);
    const ackD = await join(d, room, 'Di');
    assert.deepEqual(ackD.peers.map((p) => p.name), ['Ana', 'Cy']);
  });

  it('peer-left goes to the room after a disconnect', async () => {
    const room = roomName('pld');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    await join(a, room, 'Ana');
    const ackB = await join(b, room, 'Bo');
    b.disconnect();
    assert.deepEqual(pick(await nextEvent(a, 'peer-left'), ['room', 'id']), { room, id: ackB.self.id });
    const c = await connect(server.url, ws);
    const ackC = await join(c, room, 'Cy');
    assert.deepEqual(ackC.peers.map((p) => p.name), ['Ana']);
  });

  it('a disconnect leaves every room of a multi-room socket', async () => {
    const r1 = roomName('multi1');
    const r2 = roomName('multi2');
    const r3 = roomName('multi3');
    const m = await connect(server.url, ws);
    const x = await connect(server.url, ws);
    const y = await connect(server.url, ws);
    await join(x, r1, 'X');
    await join(y, r2, 'Y');
    const ack1 = await join(m, r1, 'Multi');
    const ack2 = await join(m, r2, 'Multi');
    const ack3 = await join(m, r3, 'Multi'); // m alone in r3
    await nextEvent(x, 'peer-joined');
    await nextEvent(y, 'peer-joined');
    m.disconnect();
    assert.deepEqual(pick(await nextEvent(x, 'peer-left'), ['room', 'id']), { room: r1, id: ack1.self.id });
    assert.deepEqual(pick(await nextEvent(y, 'peer-left'), ['room', 'id']), { room: r2, id: ack2.self.id });
    // Each peer hears only about its own room.
    await assertNoEvent(x, 'peer-left', () => true, 'about another room');
    await assertNoEvent(y, 'peer-left', () => true, 'about another room');
    // r3 was emptied by the disconnect (nobody to tell): a join with a
    // password works only on a fresh room. The server may finish the
    // disconnect after the peer-left events, hence `eventually`.
    const z = await connect(server.url, ws);
    await eventually(async () => {
      const ackZ = await join(z, r3, 'Z', { password: 'new-owner' });
      assert.deepEqual(ackZ.peers, []);
    });
    assert.ok(ack3.self.id);
    // r1, r2 no longer list m.
    const w = await connect(server.url, ws);
    assert.deepEqual((await join(w, r1, 'W')).peers.map((p) => p.name), ['X']);
    assert.deepEqual((await join(w, r2, 'W')).peers.map((p) => p.name), ['Y']);
  });
});

it('server stayed up and logged no panic', async () => {
  await server.assertHealthy();
});

/** `pairs` rooms of two sockets, all joining at once (see the test above). */
async function simultaneousJoins(server, pairs) {
  const sockets = await Promise.all(Array.from({ length: 2 * pairs }, () => connect(server.url, ws)));
  const early = [];
  const results = await Promise.all(sockets.map((sock, i) => {
    const room = `race-${process.pid}-${i >> 1}`;
    let acked = false;
    const seen = [];
    sock.on('peer-joined', (ev) => {
      if (!acked) early.push(`${room}: socket ${i} got peer-joined ${ev.id} before its join ack`);
      seen.push(ev.id);
    });
    // The ack callback itself, not a promise: a promise settles a microtask
    // later, after events read in the same chunk.
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${room}: no join ack`)), 10_000);
      sock.emit('join', { room, name: `p${i}` }, (ack) => {
        acked = true;
        clearTimeout(timer);
        resolve({ ack, seen });
      });
    });
  }));
  for (let p = 0; p < pairs; p++) {
    const [a, b] = [results[2 * p], results[2 * p + 1]];
    const first = a.ack.peers.length === 0 ? a : b;
    const second = first === a ? b : a;
    assert.deepEqual(second.ack.peers.map((x) => x.id), [first.ack.self.id], `pair ${p}: the second joiner's ack lists the first`);
    await eventually(() => assert.ok(first.seen.includes(second.ack.self.id), `pair ${p}: peer-joined reaches the first joiner`));
  }
  return early;
}

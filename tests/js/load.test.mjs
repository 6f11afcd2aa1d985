// No lost acks right after connect: many clients connect and emit `join`
// at once, without waiting for the connection; every join is acked and the
// room state is consistent.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import { open, closeAll, emitAck, nextEvent, assertOk, roomName, UUID_RE } from './client.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { closeAll(); await server?.stop(); });

/**
 * Open `n` sockets with `opts`, each emitting join right away into one of
 * `rooms` rooms; check every ack and the per-room join order.
 */
async function burst(n, roomsCount, opts, tag) {
  const rooms = Array.from({ length: roomsCount }, (_, i) => roomName(`${tag}${i}`));
  const sockets = [];
  const pending = [];
  for (let i = 0; i < n; i++) {
    const s = open(server.url, opts);
    sockets.push(s);
    const room = rooms[i % roomsCount];
    // Emitted before the socket is connected: the client buffers it.
    pending.push(emitAck(s, 'join', { room, name: `c${i}` }, 30_000).then((ack) => ({ ack, room, s, i })));
  }
  const settled = await Promise.allSettled(pending);
  const lost = settled.map((r, i) => [r, i]).filter(([r]) => r.status === 'rejected');
  assert.equal(lost.length, 0, `${lost.length} of ${n} joins got no ack, e.g. client ${lost[0]?.[1]}: ${lost[0]?.[0].reason?.message}`);
  const results = settled.map((r) => r.value);
  for (const { ack, i } of results) assertOk(ack, `join of client ${i}`);
  const ids = new Set(results.map((r) => r.ack.self.id));
  assert.equal(ids.size, n, 'every connection got its own peer id');
  for (const id of ids) assert.match(id, UUID_RE);

  // Per room: the joins were serialized; the ack with k peers lists exactly
  // the k earlier joiners, in order.
  const perRoom = n / roomsCount;
  for (const room of rooms) {
    const acks = results.filter((r) => r.room === room).sort((x, y) => x.ack.peers.length - y.ack.peers.length);
    assert.deepEqual(acks.map((r) => r.ack.peers.length), Array.from({ length: perRoom }, (_, k) => k), `${room}: peer counts 0..${perRoom - 1}`);
    const order = acks.map((r) => r.ack.self.id);
    for (const [k, r] of acks.entries()) {
      assert.deepEqual(r.ack.peers.map((p) => p.id), order.slice(0, k), `${room}: peers of joiner #${k}`);
      assert.equal(r.ack.room.id, room);
    }
    // Everyone hears about each later joiner.
    for (const [k, r] of acks.entries()) {
      for (let later = k + 1; later < perRoom; later++) {
        const want = order[later];
        await nextEvent(r.s, 'peer-joined', 10_000, (p) => p.id === want && p.room === room);
      }
    }
  }
  for (const s of sockets) s.disconnect();
}

describe('connect + immediate join burst', () => {
  it('200 websocket clients each emit join before connecting: all 200 acked, ids unique, per-room order consistent', { timeout: 90_000 }, async () => {
    await burst(200, 20, { transports: ['websocket'] }, 'ws');
  });

  it('200 clients on the default transports (polling, then upgrade) each emit join before connecting: all acked', { timeout: 90_000 }, async () => {
    await burst(200, 20, {}, 'poll');
  });
});

it('server stayed up and logged no panic', async () => {
  await server.assertHealthy();
});

// Every error code this server can produce, with the flags that make it
// reachable: bad_request, not_in_room, unknown_peer, room_full,
// unauthorized, rate_limited, payload_too_large.
//
// `internal` is not reachable from outside: it is the answer to a server
// bug, which no well- or ill-formed input may trigger; it is therefore not
// tested (every test here asserts the exact expected code, so an `internal`
// anywhere would fail them).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startServer } from './server.mjs';
import {
  connect, closeAll, emitAck, emitAckArgs, join, nextEvent, assertNoEvent, assertOk, assertErr,
  roomName, received, pick,
} from './client.mjs';

let server; // defaults
let full; // --max-peers-per-room 2
let rate; // --rate-limit-burst 5 --rate-limit-per-sec 1
let big; // --max-message-bytes 2000
before(async () => {
  [server, full, rate, big] = await Promise.all([
    startServer(),
    startServer(['--max-peers-per-room', '2']),
    startServer(['--rate-limit-burst', '5', '--rate-limit-per-sec', '1']),
    startServer(['--max-message-bytes', '2000', '--resume-grace-secs', '1']),
  ]);
});
after(async () => {
  closeAll();
  await Promise.all([server, full, rate, big].map((s) => s?.stop()));
});

const ws = { transports: ['websocket'] };
const EVENTS = ['join', 'leave', 'signal', 'chat', 'typing'];

describe('bad_request', () => {
  it('a payload that is not one JSON object (string, array, number, bool, null, none) is bad_request, for every event', async () => {
    const a = await connect(server.url, ws);
    const shapes = [['a string', ['room']], ['an array', [['room', 'Ana']]], ['a number', [42]], ['a bool', [true]],
      ['null', [null]], ['no payload at all', []]];
    for (const ev of EVENTS) {
      for (const [label, args] of shapes) {
        assertErr(await emitAckArgs(a, ev, args), 'bad_request', `${ev} with ${label}`);
      }
    }
    assert.ok(a.connected, 'still connected');
  });

  it('join: missing fields, wrong types, bad room names, bad names are bad_request', async () => {
    const a = await connect(server.url, ws);
    const room = roomName('badjoin');
    const cases = [
      ['room missing', { name: 'Ana' }],
      ['name missing', { room }],
      ['room a number', { room: 12, name: 'Ana' }],
      ['room null', { room: null, name: 'Ana' }],
      ['name a number', { room, name: 5 }],
      ['name an object', { room, name: { first: 'Ana' } }],
      ['room empty', { room: '', name: 'Ana' }],
      ['room "a b"', { room: 'a b', name: 'Ana' }],
      ['room of 65 chars', { room: 'a'.repeat(65), name: 'Ana' }],
      ['room with a slash', { room: 'a/b', name: 'Ana' }],
      ['room with a dot', { room: 'a.b', name: 'Ana' }],
      ['room non-ASCII', { room: 'café', name: 'Ana' }],
      ['room with markup', { room: '<script>', name: 'Ana' }],
      ['name empty', { room, name: '' }],
      ['name only spaces', { room, name: '    ' }],
      ['name of 33 chars', { room, name: 'n'.repeat(33) }],
      ['name of 33 two-byte chars', { room, name: 'é'.repeat(33) }],
      ['password a number', { room, name: 'Ana', password: 12 }],
      ['password an object', { room, name: 'Ana', password: { p: 1 } }],
      ['mode unknown', { room, name: 'Ana', mode: 'p2p' }],
    ];
    for (const [label, payload] of cases) {
      assertErr(await emitAck(a, 'join', payload), 'bad_request', `join with ${label}`);
    }
    // None of them joined or created anything: `room` is still fresh.
    assertErr(await emitAck(a, 'chat', { room, text: 'x' }), 'not_in_room');
    const b = await connect(server.url, ws);
    const ack = await join(b, room, 'Bo', { password: 'mine' });
    assert.deepEqual(ack.peers, []);
  });

  it('a name of 32 characters after trimming is fine, 33 is not', async () => {
    const a = await connect(server.url, ws);
    const room = roomName('name32');
    assert.equal((await join(a, room, `   ${'n'.repeat(32)}   `)).self.name, 'n'.repeat(32));
    assertErr(await emitAck(a, 'join', { room: roomName('name33'), name: ` ${'n'.repeat(33)} ` }), 'bad_request');
  });

  it('an unknown event is bad_request (including server->client event names sent by a client)', async () => {
    const a = await connect(server.url, ws);
    const room = roomName('unk');
    await join(a, room, 'Ana');
    for (const ev of ['foo', 'JOIN', 'peer-joined', 'peer-left', 'message', 'join ', 'x'.repeat(200)]) {
      assertErr(await emitAck(a, ev, { room }), 'bad_request', `event ${JSON.stringify(ev).slice(0, 40)}`);
    }
    // Without an ack it is simply ignored: the socket stays usable.
    a.emit('no-such-event', { room });
    assertOk(await emitAck(a, 'chat', { room, text: 'still fine' }));
    assert.ok(a.connected);
  });
});

describe('not_in_room / unknown_peer', () => {
  it('not_in_room for leave/chat/typing/signal on a room the socket has not joined', async () => {
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    const room = roomName('nir');
    const idB = (await join(b, room, 'Bo')).self.id;
    assertErr(await emitAck(a, 'leave', { room }), 'not_in_room', 'leave');
    assertErr(await emitAck(a, 'chat', { room, text: 'x' }), 'not_in_room', 'chat');
    assertErr(await emitAck(a, 'typing', { room, typing: true }), 'not_in_room', 'typing');
    assertErr(await emitAck(a, 'signal', { room, to: idB, data: { type: 'bye' } }), 'not_in_room', 'signal');
    await assertNoEvent(b, 'chat');
    await assertNoEvent(b, 'typing');
    await assertNoEvent(b, 'signal');
  });

  it('unknown_peer for a signal to an id that is not in that room', async () => {
    const a = await connect(server.url, ws);
    const room = roomName('unkp');
    await join(a, room, 'Ana');
    assertErr(await emitAck(a, 'signal', { room, to: randomUUID(), data: { type: 'bye' } }), 'unknown_peer');
  });
});

describe('room_full (--max-peers-per-room 2)', () => {
  it('the third joiner gets room_full; nothing changes; a slot freed by a leave can be taken', async () => {
    const room = roomName('full');
    const a = await connect(full.url, ws);
    const b = await connect(full.url, ws);
    const c = await connect(full.url, ws);
    const idA = (await join(a, room, 'Ana')).self.id;
    await join(b, room, 'Bo');
    await nextEvent(a, 'peer-joined');
    assertErr(await emitAck(c, 'join', { room, name: 'Cy' }), 'room_full');
    assertErr(await emitAck(c, 'chat', { room, text: 'x' }), 'not_in_room', 'the refused joiner is not in the room');
    await assertNoEvent(a, 'peer-joined');
    await assertNoEvent(b, 'peer-joined');
    // A member re-joining a full room is not refused (it is already counted).
    assertOk(await emitAck(a, 'join', { room, name: 'Ana' }), 'repeated join of a member');
    assertOk(await emitAck(b, 'leave', { room }));
    const ackC = await join(c, room, 'Cy');
    assert.deepEqual(ackC.peers.map((p) => p.id), [idA]);
  });

  it('room_full is per room: another room still has space', async () => {
    const r1 = roomName('full1');
    const sockets = await Promise.all([0, 1, 2].map(() => connect(full.url, ws)));
    await join(sockets[0], r1, 'A');
    await join(sockets[1], r1, 'B');
    assertErr(await emitAck(sockets[2], 'join', { room: r1, name: 'C' }), 'room_full');
    await join(sockets[2], roomName('full2'), 'C');
  });
});

describe('unauthorized (room password)', () => {
  it('the creator sets a password; join without it or with a wrong one is unauthorized; the right one works', async () => {
    const room = roomName('pw');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    const ackA = await join(a, room, 'Ana', { password: 's3cret' });
    assert.ok(!JSON.stringify(ackA).includes('s3cret'), 'the ack does not echo the password');
    assertErr(await emitAck(b, 'join', { room, name: 'Bo' }), 'unauthorized', 'no password');
    assertErr(await emitAck(b, 'join', { room, name: 'Bo', password: 'S3CRET' }), 'unauthorized', 'wrong case');
    assertErr(await emitAck(b, 'join', { room, name: 'Bo', password: 's3cret ' }), 'unauthorized', 'trailing space');
    assertErr(await emitAck(b, 'join', { room, name: 'Bo', password: '' }), 'unauthorized', 'empty password');
    assertErr(await emitAck(b, 'join', { room, name: 'Bo', password: null }), 'unauthorized', 'null password');
    assertErr(await emitAck(b, 'chat', { room, text: 'x' }), 'not_in_room', 'refused joiner is not in');
    await assertNoEvent(a, 'peer-joined', () => true, 'for refused joins');
    const ackB = await join(b, room, 'Bo', { password: 's3cret' });
    assert.deepEqual(ackB.peers.map((p) => p.id), [ackA.self.id]);
    assert.equal((await nextEvent(a, 'peer-joined')).id, ackB.self.id);
    assert.equal(received(a, 'peer-joined').length, 1);
  });

  it('an empty password at creation means no password', async () => {
    const room = roomName('nopw');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    await join(a, room, 'Ana', { password: '' });
    await join(b, room, 'Bo');
  });
});

describe('rate_limited (--rate-limit-burst 5 --rate-limit-per-sec 1)', () => {
  it('10 quick events: the first few ok, the rest rate_limited, every one acknowledged; limited ones are not relayed', async () => {
    const room = roomName('rate');
    const a = await connect(rate.url, ws);
    const b = await connect(rate.url, ws);
    await join(a, room, 'Ana');
    await join(b, room, 'Bo');
    const acks = await Promise.all(Array.from({ length: 10 }, (_, i) => emitAck(a, 'chat', { room, text: `m${i}` })));
    const ok = acks.filter((x) => x?.ok === true);
    const limited = acks.filter((x) => x?.ok === false);
    for (const x of limited) assertErr(x, 'rate_limited');
    assert.equal(ok.length + limited.length, 10, `every event acked: ${JSON.stringify(acks)}`);
    assert.ok(ok.length >= 1, `some events pass: ${ok.length}`);
    // Burst 5, minus the join (if it counts), plus at most ~1 refill.
    assert.ok(ok.length <= 6, `at most burst (+1 refill) pass: ${ok.length} ok`);
    assert.ok(limited.length >= 4, `the rest are rate_limited: ${limited.length}`);
    // Exactly the accepted messages reached B, in order.
    const okIds = new Set(ok.map((x) => x.id));
    const gotTexts = [];
    for (let i = 0; i < ok.length; i++) {
      const ev = await nextEvent(b, 'chat');
      assert.ok(okIds.has(ev.id), 'relayed chat was one that got an ok ack');
      gotTexts.push(ev.text);
    }
    await assertNoEvent(b, 'chat', () => true, 'for rate-limited messages');
    const okTexts = acks.map((x, i) => (x.ok ? `m${i}` : null)).filter(Boolean);
    assert.deepEqual(gotTexts, okTexts);
    assert.ok(a.connected, 'a rate-limited client is not disconnected');
  });

  it('tokens refill: after a pause the limited socket can send again; other sockets were never limited', async () => {
    const room = roomName('refill');
    const a = await connect(rate.url, ws);
    const c = await connect(rate.url, ws);
    await join(a, room, 'Ana');
    await join(c, room, 'Cy');
    const acks = await Promise.all(Array.from({ length: 8 }, () => emitAck(a, 'typing', { room, typing: true })));
    assert.ok(acks.some((x) => x.ok === false && x.error.code === 'rate_limited'), 'bucket emptied');
    // Another socket has its own bucket.
    assertOk(await emitAck(c, 'chat', { room, text: 'not limited' }));
    // Refill is 1/s: poll (bounded) until a send is accepted again.
    const start = Date.now();
    let ack;
    do {
      await new Promise((r) => setTimeout(r, 200));
      ack = await emitAck(a, 'chat', { room, text: 'after pause' });
    } while (!ack.ok && Date.now() - start < 4000);
    assertOk(ack, 'a send after the refill');
  });
});

describe('payload_too_large (--max-message-bytes 2000)', () => {
  it('a signal offer with a 5000-byte sdp is payload_too_large, not relayed, and the socket stays usable', async () => {
    const room = roomName('big');
    const a = await connect(big.url, ws);
    const b = await connect(big.url, ws);
    await join(a, room, 'Ana');
    const idB = (await join(b, room, 'Bo')).self.id;
    const sdp = 'v=0\r\n' + 'a'.repeat(4995);
    assert.equal(sdp.length, 5000);
    assertErr(await emitAck(a, 'signal', { room, to: idB, data: { type: 'offer', sdp } }), 'payload_too_large');
    await assertNoEvent(b, 'signal');
    assert.ok(a.connected);
    // Under the limit still works, on the same socket.
    assertOk(await emitAck(a, 'signal', { room, to: idB, data: { type: 'offer', sdp: 'v=0\r\n' + 'a'.repeat(1000) } }));
    assert.equal((await nextEvent(b, 'signal')).data.sdp.length, 1005);
    assertOk(await emitAck(a, 'chat', { room, text: 'small' }));
    assert.equal((await nextEvent(b, 'chat')).text, 'small');
  });

  it('a chat over the byte limit but within 2000 characters (1000 four-byte emoji = 4000 bytes) is payload_too_large', async () => {
    const room = roomName('bigchat');
    const a = await connect(big.url, ws);
    const b = await connect(big.url, ws);
    await join(a, room, 'Ana');
    await join(b, room, 'Bo');
    assertErr(await emitAck(a, 'chat', { room, text: '😀'.repeat(1000) }), 'payload_too_large');
    await assertNoEvent(b, 'chat');
  });

  it('a packet over 4x the limit closes only that client\'s connection; the room sees it lost, then leave', async () => {
    const room = roomName('huge');
    const a = await connect(big.url, ws);
    const b = await connect(big.url, ws);
    const idA = (await join(a, room, 'Ana')).self.id;
    const idB = (await join(b, room, 'Bo')).self.id;
    const disconnected = new Promise((resolve) => a.once('disconnect', resolve));
    a.emit('signal', { room, to: idB, data: { type: 'offer', sdp: 'x'.repeat(9000) } }, () => {});
    const reason = await Promise.race([disconnected, new Promise((_, rej) => setTimeout(() => rej(new Error('client sending > 4x max-message-bytes was not disconnected within 5 s')), 5000))]);
    assert.ok(reason, 'disconnect reason');
    // A closed transport is a lost connection: its seat is held for the
    // grace period (1 s here), then it leaves.
    assert.deepEqual(await nextEvent(b, 'peer-reconnecting'), { room, id: idA });
    assert.deepEqual(pick(await nextEvent(b, 'peer-left', 5000), ['room', 'id']), { room, id: idA });
    await assertNoEvent(b, 'signal');
    assert.ok(b.connected);
    await big.assertHealthy();
  });
});

it('servers stayed up and logged no panic', async () => {
  for (const s of [server, full, rate, big]) await s.assertHealthy();
});

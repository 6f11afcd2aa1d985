// Both Engine.IO transports: WebSocket only, HTTP long-polling only, and
// polling upgraded to WebSocket, alone and mixed in one room.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import {
  open, connect, waitConnected, waitUpgraded, closeAll, emitAck, join, nextEvent, assertNoEvent,
  assertOk, roomName, pick,
} from './client.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { closeAll(); await server?.stop(); });

const TRANSPORTS = {
  websocket: { transports: ['websocket'] },
  polling: { transports: ['polling'] },
  upgrade: { transports: ['polling', 'websocket'] },
};

/** Connect with a transport set; for `upgrade`, also wait for the upgrade. */
async function client(kind) {
  const s = await connect(server.url, TRANSPORTS[kind]);
  if (kind === 'upgrade') await waitUpgraded(s);
  const name = s.io.engine.transport.name;
  assert.equal(name, kind === 'polling' ? 'polling' : 'websocket', `${kind} client runs on ${name}`);
  return s;
}

/** join, typing, chat, signal both ways, leave between two sockets. */
async function flow(a, b, tag) {
  const room = roomName(tag);
  const ackA = await join(a, room, 'Ana');
  const ackB = await join(b, room, 'Bo');
  assert.deepEqual(ackB.peers.map((p) => p.id), [ackA.self.id]);
  assert.equal((await nextEvent(a, 'peer-joined')).id, ackB.self.id);

  assertOk(await emitAck(b, 'typing', { room, typing: true }));
  assert.deepEqual(pick(await nextEvent(a, 'typing'), ['room', 'from', 'typing']), { room, from: ackB.self.id, typing: true });

  const chat = assertOk(await emitAck(a, 'chat', { room, text: `hello from ${tag}` }));
  const ev = await nextEvent(b, 'chat');
  assert.deepEqual(pick(ev, ['room', 'id', 'text', 'ts']), { room, id: chat.id, text: `hello from ${tag}`, ts: chat.ts });

  const offer = { type: 'offer', sdp: 'v=0\r\n' + 'a=x\r\n'.repeat(2000) };
  assertOk(await emitAck(a, 'signal', { room, to: ackB.self.id, data: offer }));
  assert.deepEqual(pick(await nextEvent(b, 'signal'), ['room', 'from', 'data']), { room, from: ackA.self.id, data: offer });
  assertOk(await emitAck(b, 'signal', { room, to: ackA.self.id, data: { type: 'answer', sdp: 'v=0\r\n' } }));
  assert.equal((await nextEvent(a, 'signal')).from, ackB.self.id);

  assertOk(await emitAck(b, 'leave', { room }));
  assert.deepEqual(pick(await nextEvent(a, 'peer-left'), ['room', 'id']), { room, id: ackB.self.id });
  await assertNoEvent(a, 'chat');
  await assertNoEvent(b, 'chat');
  await assertNoEvent(a, 'signal');
  await assertNoEvent(b, 'signal');
}

describe('each transport alone', () => {
  for (const kind of Object.keys(TRANSPORTS)) {
    it(`${kind}: join, typing, chat, signal both ways and leave work between two ${kind} clients`, async () => {
      const a = await client(kind);
      const b = await client(kind);
      await flow(a, b, kind);
    });
  }
});

describe('mixed transports', () => {
  it('websocket, polling and upgraded clients in one room exchange chat and signals with each other', async () => {
    const room = roomName('mixed');
    const kinds = ['websocket', 'polling', 'upgrade'];
    const socks = [];
    const ids = [];
    for (const kind of kinds) {
      const s = await client(kind);
      const ack = await join(s, room, kind);
      assert.deepEqual(ack.peers.map((p) => p.name), kinds.slice(0, socks.length));
      socks.push(s);
      ids.push(ack.self.id);
    }
    for (let i = 0; i < 3; i++) {
      const text = `chat from ${kinds[i]}`;
      assertOk(await emitAck(socks[i], 'chat', { room, text }));
      for (let j = 0; j < 3; j++) {
        if (j === i) continue;
        const ev = await nextEvent(socks[j], 'chat');
        assert.deepEqual(pick(ev, ['room', 'text']), { room, text }, `${kinds[j]} hears ${kinds[i]}`);
        assert.equal(ev.from.id, ids[i]);
      }
      for (let j = 0; j < 3; j++) {
        if (j === i) continue;
        const data = { type: 'offer', sdp: `v=0\r\no=${kinds[i]}->${kinds[j]}\r\n` };
        assertOk(await emitAck(socks[i], 'signal', { room, to: ids[j], data }));
        assert.deepEqual(pick(await nextEvent(socks[j], 'signal'), ['from', 'data']), { from: ids[i], data });
      }
    }
    for (const s of socks) {
      await assertNoEvent(s, 'chat');
      await assertNoEvent(s, 'signal');
    }
    socks[1].disconnect(); // the polling client goes away
    for (const j of [0, 2]) {
      assert.deepEqual(pick(await nextEvent(socks[j], 'peer-left'), ['room', 'id']), { room, id: ids[1] });
    }
  });

  it('no event is lost across the polling -> websocket upgrade (join emitted before connect, 50 chats during the upgrade)', async () => {
    const room = roomName('upg');
    const a = await client('websocket');
    await join(a, room, 'Ana');
    const c = open(server.url, TRANSPORTS.upgrade);
    const joined = emitAck(c, 'join', { room, name: 'Up' }); // buffered until connected
    await waitConnected(c);
    const upgraded = waitUpgraded(c);
    assertOk(await joined);
    const texts = Array.from({ length: 50 }, (_, i) => `u${i}`);
    const acks = await Promise.all(texts.map((text) => emitAck(a, 'chat', { room, text })));
    acks.forEach((ack) => assertOk(ack));
    await upgraded;
    const got = [];
    for (let i = 0; i < texts.length; i++) got.push((await nextEvent(c, 'chat', 10_000)).text);
    assert.deepEqual(got, texts);
    assertOk(await emitAck(c, 'chat', { room, text: 'after upgrade' }));
    assert.equal((await nextEvent(a, 'chat')).text, 'after upgrade');
  });

  it('a polling client receives a quick burst of events (batched payloads) completely and in order', async () => {
    const room = roomName('batch');
    const a = await client('websocket');
    const p = await client('polling');
    await join(p, room, 'Poll');
    await join(a, room, 'Ana');
    const texts = Array.from({ length: 40 }, (_, i) => `b${i} ${'é'.repeat(i)}`);
    const acks = await Promise.all(texts.map((text) => emitAck(a, 'chat', { room, text })));
    acks.forEach((ack) => assertOk(ack));
    const got = [];
    for (let i = 0; i < texts.length; i++) got.push((await nextEvent(p, 'chat', 10_000)).text);
    assert.deepEqual(got, texts);
  });

  it('a polling client can send many events at once (batched POSTs) and gets every ack', async () => {
    const room = roomName('pollsend');
    const p = await client('polling');
    const a = await client('websocket');
    await join(p, room, 'Poll');
    await join(a, room, 'Ana');
    const texts = Array.from({ length: 30 }, (_, i) => `p${i}`);
    const acks = await Promise.all(texts.map((text) => emitAck(p, 'chat', { room, text }, 10_000)));
    acks.forEach((ack) => assertOk(ack));
    const got = [];
    for (let i = 0; i < texts.length; i++) got.push((await nextEvent(a, 'chat')).text);
    assert.deepEqual(got, texts);
  });
});

it('server stayed up and logged no panic', async () => {
  await server.assertHealthy();
});

// chat and typing: acks, relays to the others only, verbatim text, limits,
// history for late joiners (bounded by --history-limit).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertNoEvent, assertOk, assertErr, roomName,
  pick, UUID_RE,
} from './client.mjs';

let server;
let small; // --history-limit 3
before(async () => {
  server = await startServer();
  small = await startServer(['--history-limit', '3']);
});
after(async () => { closeAll(); await server?.stop(); await small?.stop(); });

const ws = { transports: ['websocket'] };

async function trio(tag, url = server.url) {
  const room = roomName(tag);
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(url, ws)));
  const ids = {};
  ids.a = (await join(a, room, 'Ana')).self.id;
  ids.b = (await join(b, room, 'Bo')).self.id;
  ids.c = (await join(c, room, 'Cy')).self.id;
  return { room, a, b, c, ids };
}

const CHAT_KEYS = ['room', 'id', 'from', 'text', 'ts'];

describe('chat', () => {
  it('ack is {ok, id: UUID, ts: server Unix ms near now}', async () => {
    const { room, a } = await trio('ack');
    const before = Date.now();
    const ack = assertOk(await emitAck(a, 'chat', { room, text: 'hello' }));
    const after = Date.now();
    assert.match(ack.id, UUID_RE);
    assert.equal(typeof ack.ts, 'number');
    assert.ok(Number.isInteger(ack.ts), `ts ${ack.ts} is an integer`);
    assert.ok(ack.ts >= before - 1000 && ack.ts <= after + 1000, `ts ${ack.ts} within [${before}, ${after}] (±1 s)`);
    const ack2 = assertOk(await emitAck(a, 'chat', { room, text: 'again' }));
    assert.notEqual(ack2.id, ack.id, 'message ids are unique');
    assert.ok(ack2.ts >= ack.ts, 'ts does not go backwards');
  });

  it('the others get {room, id, from{id,name}, text, ts} matching the ack; the sender gets no chat event', async () => {
    const { room, a, b, c, ids } = await trio('relay');
    const ack = assertOk(await emitAck(a, 'chat', { room, text: 'hi all' }));
    const expected = { room, id: ack.id, from: { id: ids.a, name: 'Ana' }, text: 'hi all', ts: ack.ts };
    for (const s of [b, c]) {
      const ev = await nextEvent(s, 'chat');
      assert.deepEqual({ ...pick(ev, CHAT_KEYS), from: pick(ev.from, ['id', 'name']) }, expected);
    }
    await assertNoEvent(a, 'chat', () => true, 'echoed to the sender');
    await assertNoEvent(b, 'chat', () => true, '(duplicate)');
  });

  it('a forged `from` in the chat payload is ignored', async () => {
    const { room, a, b, ids } = await trio('forge');
    assertOk(await emitAck(a, 'chat', { room, text: 'me', from: { id: ids.b, name: 'Bo' } }));
    const ev = await nextEvent(b, 'chat');
    assert.deepEqual(pick(ev.from, ['id', 'name']), { id: ids.a, name: 'Ana' });
  });

  it('markup, quotes, newlines and non-ASCII are relayed verbatim', async () => {
    const { room, a, b } = await trio('verbatim');
    const text = '<script>alert("x")</script> &amp; &lt;b&gt; \'q\' "dq"\nline2\ttab  spaces  ✓ 😀 é';
    assertOk(await emitAck(a, 'chat', { room, text }));
    assert.equal((await nextEvent(b, 'chat')).text, text);
  });

  it('text of 2000 characters is ok (ASCII and multi-byte); 2001 and "" are bad_request and not relayed', async () => {
    const { room, a, b } = await trio('limits');
    const t2000 = 'x'.repeat(2000);
    assertOk(await emitAck(a, 'chat', { room, text: t2000 }), '2000 ASCII chars');
    assert.equal((await nextEvent(b, 'chat')).text, t2000);
    const e2000 = 'é'.repeat(2000); // 4000 bytes: the limit counts characters
    assertOk(await emitAck(a, 'chat', { room, text: e2000 }), '2000 two-byte chars');
    assert.equal((await nextEvent(b, 'chat')).text, e2000);
    assertErr(await emitAck(a, 'chat', { room, text: 'x'.repeat(2001) }), 'bad_request', '2001 chars');
    assertErr(await emitAck(a, 'chat', { room, text: '' }), 'bad_request', 'empty text');
    await assertNoEvent(b, 'chat', () => true, 'for rejected chats');
  });

  it('bad_request: malformed chat payloads', async () => {
    const { room, a, b } = await trio('malformed');
    const cases = [
      ['text missing', { room }],
      ['text a number', { room, text: 5 }],
      ['text null', { room, text: null }],
      ['text an array', { room, text: ['hi'] }],
      ['room missing', { text: 'hi' }],
      ['room empty', { room: '', text: 'hi' }],
      ['room with a slash', { room: 'a/b', text: 'hi' }],
      ['payload a string', 'hi'],
      ['payload an array', [room, 'hi']],
      ['payload null', null],
    ];
    for (const [label, payload] of cases) {
      assertErr(await emitAck(a, 'chat', payload), 'bad_request', `chat with ${label}`);
    }
    await assertNoEvent(b, 'chat');
  });

  it('not_in_room: chat to a room not joined (existing or not)', async () => {
    const { room, b } = await trio('nir');
    const outsider = await connect(server.url, ws);
    await join(outsider, roomName('own'), 'Out');
    assertErr(await emitAck(outsider, 'chat', { room, text: 'let me in' }), 'not_in_room');
    assertErr(await emitAck(outsider, 'chat', { room: roomName('none'), text: 'x' }), 'not_in_room');
    await assertNoEvent(b, 'chat');
  });

  it('a chat sent without an ack callback is still relayed', async () => {
    const { room, a, b, ids } = await trio('noack');
    a.emit('chat', { room, text: 'fire and forget' });
    const ev = await nextEvent(b, 'chat');
    assert.equal(ev.text, 'fire and forget');
    assert.equal(ev.from.id, ids.a);
    assert.match(ev.id, UUID_RE);
  });

  it('a busy chat (20 messages fired at once) is all acked and relayed in order', async () => {
    const { room, a, b } = await trio('busy');
    const texts = Array.from({ length: 20 }, (_, i) => `msg ${i}`);
    const acks = await Promise.all(texts.map((text) => emitAck(a, 'chat', { room, text })));
    acks.forEach((ack, i) => assertOk(ack, `chat #${i}`));
    const got = [];
    for (let i = 0; i < texts.length; i++) got.push((await nextEvent(b, 'chat')).text);
    assert.deepEqual(got, texts);
  });
});

describe('chat history', () => {
  it('a late joiner gets the room history, oldest first, with the relayed fields', async () => {
    const { room, a, b, ids } = await trio('hist');
    const sent = [];
    for (const [s, name, id, text] of [[a, 'Ana', ids.a, 'one'], [b, 'Bo', ids.b, 'two <b>'], [a, 'Ana', ids.a, 'three']]) {
      const ack = assertOk(await emitAck(s, 'chat', { room, text }));
      sent.push({ room, id: ack.id, from: { id, name }, text, ts: ack.ts });
    }
    const late = await connect(server.url, ws);
    const ack = await join(late, room, 'Late');
    assert.deepEqual(ack.history.map((m) => ({ ...pick(m, CHAT_KEYS), from: pick(m.from, ['id', 'name']) })), sent);
  });

  it('history survives the sender leaving, and is gone when the room empties', async () => {
    const room = roomName('hist2');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    await join(a, room, 'Ana');
    await join(b, room, 'Bo');
    assertOk(await emitAck(a, 'chat', { room, text: 'before leaving' }));
    assertOk(await emitAck(a, 'leave', { room }));
    const c = await connect(server.url, ws);
    const ackC = await join(c, room, 'Cy');
    assert.deepEqual(ackC.history.map((m) => m.text), ['before leaving']);
    assertOk(await emitAck(b, 'leave', { room }));
    assertOk(await emitAck(c, 'leave', { room }));
    const d = await connect(server.url, ws);
    const ackD = await join(d, room, 'Di');
    assert.deepEqual(ackD.history, [], 'a re-created room starts with no history');
  });

  it('history is bounded by --history-limit: with 3, after 5 messages a joiner gets the last 3', async () => {
    const { room, a } = await trio('limit', small.url);
    const ids = [];
    for (let i = 1; i <= 5; i++) ids.push(assertOk(await emitAck(a, 'chat', { room, text: `m${i}` })).id);
    const late = await connect(small.url, ws);
    const ack = await join(late, room, 'Late');
    assert.deepEqual(ack.history.map((m) => m.text), ['m3', 'm4', 'm5']);
    assert.deepEqual(ack.history.map((m) => m.id), ids.slice(2));
  });

  it('history is per room', async () => {
    const r1 = roomName('per1');
    const r2 = roomName('per2');
    const a = await connect(server.url, ws);
    await join(a, r1, 'Ana');
    await join(a, r2, 'Ana');
    assertOk(await emitAck(a, 'chat', { room: r1, text: 'in r1' }));
    assertOk(await emitAck(a, 'chat', { room: r2, text: 'in r2' }));
    const late = await connect(server.url, ws);
    assert.deepEqual((await join(late, r1, 'L')).history.map((m) => [m.room, m.text]), [[r1, 'in r1']]);
    assert.deepEqual((await join(late, r2, 'L')).history.map((m) => [m.room, m.text]), [[r2, 'in r2']]);
  });
});

describe('typing', () => {
  it('typing {room, from, typing} goes to the others, not the sender; true then false', async () => {
    const { room, a, b, c, ids } = await trio('typing');
    assertOk(await emitAck(a, 'typing', { room, typing: true }));
    for (const s of [b, c]) {
      assert.deepEqual(pick(await nextEvent(s, 'typing'), ['room', 'from', 'typing']), { room, from: ids.a, typing: true });
    }
    assertOk(await emitAck(a, 'typing', { room, typing: false }));
    for (const s of [b, c]) {
      assert.deepEqual(pick(await nextEvent(s, 'typing'), ['room', 'from', 'typing']), { room, from: ids.a, typing: false });
    }
    await assertNoEvent(a, 'typing', () => true, 'echoed to the sender');
  });

  it('typing: not_in_room for a room not joined; bad_request for a non-boolean or missing flag', async () => {
    const { room, a, b } = await trio('typing-err');
    const outsider = await connect(server.url, ws);
    assertErr(await emitAck(outsider, 'typing', { room, typing: true }), 'not_in_room');
    for (const [label, payload] of [
      ['typing a string', { room, typing: 'yes' }],
      ['typing a number', { room, typing: 1 }],
      ['typing null', { room, typing: null }],
      ['typing missing', { room }],
      ['room missing', { typing: true }],
      ['payload a bool', true],
    ]) {
      assertErr(await emitAck(a, 'typing', payload), 'bad_request', label);
    }
    await assertNoEvent(b, 'typing');
  });
});

describe('reaction', () => {
  it('reaction {room, from, emoji} goes to the others, not the sender, emoji verbatim', async () => {
    const { room, a, b, c, ids } = await trio('reaction');
    for (const emoji of ['👍🏽', '👨\u200d👩\u200d👧\u200d👦', '🎉']) {
      assert.deepEqual(assertOk(await emitAck(b, 'reaction', { room, emoji })), { ok: true });
      for (const s of [a, c]) {
        assert.deepEqual(pick(await nextEvent(s, 'reaction'), ['room', 'from', 'emoji']), { room, from: ids.b, emoji });
      }
    }
    await assertNoEvent(b, 'reaction', () => true, 'echoed to the sender');
  });

  it('reaction: not_in_room for a room not joined; bad_request outside 1-16 characters', async () => {
    const { room, a, b } = await trio('reaction-err');
    const outsider = await connect(server.url, ws);
    assertErr(await emitAck(outsider, 'reaction', { room, emoji: '👍' }), 'not_in_room');
    for (const [label, payload] of [
      ['empty', { room, emoji: '' }],
      ['blank', { room, emoji: '   ' }],
      ['17 characters', { room, emoji: 'x'.repeat(17) }],
      ['a number', { room, emoji: 5 }],
      ['missing', { room }],
    ]) {
      assertErr(await emitAck(a, 'reaction', payload), 'bad_request', label);
    }
    await assertNoEvent(b, 'reaction');
  });
});

it('servers stayed up and logged no panic', async () => {
  await server.assertHealthy();
  await small.assertHealthy();
});

// Raw-protocol behaviour and robustness against garbage: acks are answered
// exactly once with the right id; malformed frames and packets never
// disturb other clients, never change room state, never bring the server
// down.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startServer } from './server.mjs';
import { RawClient } from './raw.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertNoEvent, assertOk, assertErr, roomName, pick,
} from './client.mjs';

let server;
const raws = new Set();
// Seats of lost connections are held 1 s (PROTOCOL.md version 2, resume):
// a raw client dropped mid-way is gone from its room that much later.
before(async () => { server = await startServer(['--resume-grace-secs', '1']); });
after(async () => {
  for (const r of raws) r.close();
  closeAll();
  await server?.stop();
});

const ws = { transports: ['websocket'] };

async function raw() {
  const r = new RawClient(server.url);
  raws.add(r);
  await r.connect();
  return r;
}

describe('raw socket.io packets', () => {
  it('each ack-ed event gets exactly one ack, carrying its own id, in the protocol shape', async () => {
    const room = roomName('raw');
    const b = await connect(server.url, ws);
    const idB = (await join(b, room, 'Bo')).self.id;
    const r = await raw();
    const j = await r.call(1, 'join', { room, name: 'Raw' });
    assert.equal(j.ok, true);
    assert.deepEqual(j.self.name, 'Raw');
    assert.equal((await nextEvent(b, 'peer-joined')).id, j.self.id);
    const c = await r.call(2, 'chat', { room, text: 'raw hi' });
    assert.equal(c.ok, true);
    assert.equal((await nextEvent(b, 'chat')).text, 'raw hi');
    const e = await r.call(3, 'nope', {});
    assert.deepEqual(pick(e, ['ok']), { ok: false });
    assert.equal(e.error.code, 'bad_request');
    const s = await r.call(4, 'signal', { room, to: idB, data: { type: 'bye' } });
    assert.equal(s.ok, true);
    assert.equal((await nextEvent(b, 'signal')).from, j.self.id);
    // Large ack ids are echoed back too.
    const big = await r.call(987654321, 'typing', { room, typing: false });
    assert.equal(big.ok, true);
    // An ack round trip later, no id was answered twice.
    await r.call(5, 'leave', { room: 'zz-never' });
    for (const id of [1, 2, 3, 4, 5, 987654321]) {
      assert.equal(r.acksWithId(id).length, 1, `exactly one ack for id ${id}: ${r.acksWithId(id)}`);
    }
  });

  it('an event without an ack id gets no answer but the same handling', async () => {
    const room = roomName('rawnoack');
    const b = await connect(server.url, ws);
    await join(b, room, 'Bo');
    const r = await raw();
    assert.equal((await r.call(1, 'join', { room, name: 'Raw' })).ok, true);
    const before = r.frames.length;
    r.send(`42${JSON.stringify(['chat', { room, text: 'no ack wanted' }])}`);
    r.send(`42${JSON.stringify(['chat', { room, text: '' }])}`); // invalid, and no ack: silently refused
    assert.equal((await nextEvent(b, 'chat')).text, 'no ack wanted');
    await r.call(2, 'leave', { room: 'zz-never' });
    const extra = r.frames.slice(before).filter((f) => typeof f === 'string' && f.startsWith('43') && !f.startsWith('432['));
    assert.deepEqual(extra, [], 'no ack frames for events sent without an ack id');
    await assertNoEvent(b, 'chat');
  });

  it('an ack-ed event without payload (`421["join"]`) is answered bad_request', async () => {
    const r = await raw();
    r.send('421["join"]');
    const f = await r.waitFor((x) => typeof x === 'string' && x.startsWith('431['));
    const ack = JSON.parse(f.slice(3))[0];
    assertErr(ack, 'bad_request');
  });
});

/** Garbage to throw at the server: [label, frame, options for ws.send]. */
function garbage() {
  const list = [
    ['truncated event', '42["join"'],
    ['event name a number', '42[1,2]'],
    ['bad packet type char', '4x'],
    ['event without data', '42'],
    ['empty event array', '42[]'],
    ['event object', '42{}'],
    ['event a string', '42"join"'],
    ['truncated payload', '42["join",{"room":'],
    ['ack-ed truncated', '427["chat",{"room":"x","text":'],
    ['join with extra args', '428["join",{"room":"garb","name":"x"},"extra",1]'],
    ['ack for an id never sent', '43999[{"ok":true}]'],
    ['client CONNECT_ERROR', '44{"message":"x"}'],
    ['unknown namespace connect', '40/nonexistent,'],
    ['binary event placeholder, no attachment', '451-["chat",{"_placeholder":true,"num":0}]'],
    ['binary ack nonsense', '461-[{"_placeholder":true,"num":9}]'],
    ['socket.io type 7', '47'],
    ['engine.io type 9', '9'],
    ['empty frame', ''],
    ['engine.io noop', '6'],
    ['engine.io upgrade on ws', '5'],
    ['engine.io probe', '2probe'],
    ['engine.io pong unasked', '3'],
    ['lone surrogate escape', '42["chat",{"room":"r","text":"\\ud800"}]'],
    ['NUL bytes', '42["chat",{"room":"r\u0000","text":"\u0000"}]'],
    ['deeply nested arrays', '42["join",' + '['.repeat(50_000) + ']'.repeat(50_000) + ']'],
    ['deeply nested objects', '42["join",' + '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000) + ']'],
    ['100 kB nonsense', '42' + 'ü'.repeat(50_000)],
    ['huge number', '42["typing",{"room":"r","typing":1' + '0'.repeat(5000) + '}]'],
    ['random binary frame', randomBytes(2048), { binary: true }],
    ['invalid UTF-8 text frame', Buffer.from([0x34, 0x32, 0xff, 0xfe, 0xc3, 0x28]), { binary: false }],
    ['huge nonsense (> 4x max message bytes)', 'x'.repeat(300_000)],
  ];
  for (let i = 0; i < 40; i++) {
    const len = 1 + Math.floor(Math.random() * 500);
    const printable = Array.from(randomBytes(len), (b) => String.fromCharCode(32 + (b % 95))).join('');
    list.push([`random text #${i}`, (i % 2 ? '42' : '') + printable]);
  }
  return list;
}

describe('garbage', () => {
  it('a raw client sending garbage frames and malformed packets disturbs nobody: two clients keep chatting, the server stays up', async (t) => {
    const room = roomName('garb');
    const a = await connect(server.url, ws);
    const b = await connect(server.url, ws);
    let disconnects = 0;
    for (const s of [a, b]) s.on('disconnect', () => { disconnects += 1; });
    const idA = (await join(a, room, 'Ana')).self.id;
    const idB = (await join(b, room, 'Bo')).self.id;

    let sending = true;
    const chatter = (async () => {
      let n = 0;
      while (sending || n < 20) {
        const [from, to] = n % 2 ? [a, b] : [b, a];
        const text = `m${n}`;
        const ack = await emitAck(from, 'chat', { room, text });
        assertOk(ack, `chat ${n} during garbage`);
        assert.equal((await nextEvent(to, 'chat')).text, text);
        if (n % 5 === 0) {
          assertOk(await emitAck(a, 'signal', { room, to: idB, data: { type: 'candidate', candidate: null } }));
          assert.equal((await nextEvent(b, 'signal')).from, idA);
        }
        n += 1;
      }
      return n;
    })();

    const results = [];
    try {
      let r = await raw();
      for (const [label, frame, opts] of garbage()) {
        if (r.closed) r = await raw();
        r.trySend(frame, opts);
        // Give the server a reply chance via an ack round trip when the
        // connection survived; a closed connection is a fine answer too.
        let outcome;
        try {
          const id = 100 + results.length;
          const ack = await r.call(id, 'leave', { room: 'zz-never' }, 3000);
          outcome = `alive (${ack?.error?.code ?? JSON.stringify(ack)})`;
        } catch {
          outcome = r.closed ? `closed ${JSON.stringify(r.closeInfo)}` : 'no answer';
          if (!r.closed) { r.close(); }
          r = await raw();
        }
        results.push([label, outcome]);
      }
      r.close();
    } finally {
      sending = false;
    }
    const rounds = await chatter;
    assert.ok(rounds >= 20);
    assert.equal(disconnects, 0, 'the normal clients were never disconnected');
    assert.ok(a.connected && b.connected);

    // Room state is unchanged: exactly Ana and Bo.
    const c = await connect(server.url, ws);
    const ack = await join(c, room, 'Cy');
    assert.deepEqual(ack.peers.map((p) => p.id), [idA, idB]);
    await server.assertHealthy();
    // Keep the outcomes visible in the test output for diagnosis.
    for (const [label, outcome] of results) t.diagnostic(`garbage ${label}: ${outcome}`);
  });

  it('a WebSocket that never completes the handshake, or drops mid-way, changes nothing', async () => {
    const room = roomName('half');
    const a = await connect(server.url, ws);
    await join(a, room, 'Ana');
    const r1 = new RawClient(server.url); raws.add(r1);
    await r1.open(); // no '40'
    r1.close();
    const r2 = new RawClient(server.url); raws.add(r2);
    await r2.connect();
    r2.send('421["join",{"room":"' + room + '","name":"Drop"}]');
    r2.close(); // gone before (or just after) its join is handled
    // Either the join never happened or the disconnect undid it: in the end
    // only Ana is in the room.
    const b = await connect(server.url, ws);
    const check = async () => {
      const ack = await emitAck(b, 'join', { room, name: 'Bo' });
      assertOk(ack);
      return ack;
    };
    const ackB = await check();
    assert.equal(ackB.peers[0]?.name, 'Ana');
    if (ackB.peers.length !== 1) {
      // The dropped socket's seat is held for the grace period (or its
      // disconnect is still in flight): its peer-left must follow.
      await nextEvent(b, 'peer-left', 5000);
    }
    await server.assertHealthy();
  });

  it('HTTP long-polling garbage: bad sid, bad EIO, bad transport and malformed POST bodies get 4xx, not 5xx; the server stays up', async () => {
    const base = `${server.url}/socket.io/`;
    const statuses = {};
    const req = async (label, url, init) => {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
      await res.text();
      statuses[label] = res.status;
      return res.status;
    };
    assert.ok((await req('POST unknown sid', `${base}?EIO=4&transport=polling&sid=nope`, { method: 'POST', body: '42["join"' })) >= 400);
    assert.ok((await req('GET unknown sid', `${base}?EIO=4&transport=polling&sid=nope`)) >= 400);
    assert.ok((await req('GET EIO=2', `${base}?EIO=2&transport=polling`)) >= 400);
    assert.ok((await req('GET bad transport', `${base}?EIO=4&transport=carrier-pigeon`)) >= 400);
    for (const [label, s] of Object.entries(statuses)) assert.ok(s < 500, `${label}: ${s}`);

    // A real polling session that POSTs malformed payloads.
    const hs = await fetch(`${base}?EIO=4&transport=polling`, { signal: AbortSignal.timeout(10_000) });
    const body = await hs.text();
    assert.equal(hs.status, 200);
    const sid = JSON.parse(body.slice(body.indexOf('{'))).sid;
    const post = (data) => fetch(`${base}?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: data, signal: AbortSignal.timeout(10_000) })
      .then(async (r) => { await r.text(); return r.status; }, () => 'network error');
    const postStatuses = [];
    for (const data of ['40', '42["join"', '4x', '\x1e\x1e', 'b' + 'AAAA'.repeat(10), '42[1,2]\x1e42{}', '']) {
      postStatuses.push([JSON.stringify(data), await post(data)]);
    }
    for (const [label, s] of postStatuses) assert.ok(s === 'network error' || s < 500, `POST ${label}: ${s}`);
    await server.assertHealthy();
    // Normal clients still work.
    const room = roomName('after-poll');
    const a = await connect(server.url, { transports: ['polling'] });
    const b = await connect(server.url, ws);
    await join(a, room, 'Ana');
    await join(b, room, 'Bo');
    assertOk(await emitAck(a, 'chat', { room, text: 'ok' }));
    assert.equal((await nextEvent(b, 'chat')).text, 'ok');
  });
});

it('server stayed up and logged no panic', async () => {
  await server.assertHealthy();
});

// The documented limits that protect everyone from one client
// (docs/server-contract.md, "Limits"): connections per address, and a client
// that never reads what it is sent.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer } from './server.mjs';
import { RawClient } from './raw.mjs';
import {
  open, connect, closeAll, emitAck, join, nextEvent, assertOk, roomName, eventually,
} from './client.mjs';

/** A polling handshake from `localAddress`, optionally with X-Forwarded-For: {status, body}. */
function handshake(server, { localAddress = '127.0.0.1', forwardedFor } = {}) {
  const url = new URL('/socket.io/?EIO=4&transport=polling', server.url);
  return new Promise((resolve, reject) => {
    const req = http.get(url, {
      localAddress,
      headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {},
      agent: false,
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, retryAfter: res.headers['retry-after'] }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('handshake timed out')));
  });
}

/** The `sid` of a polling handshake's open packet. */
const sidOf = (body) => JSON.parse(body.slice(1)).sid;

/** Closes a polling session (Engine.IO close packet). */
function closeSession(server, sid, { localAddress = '127.0.0.1', forwardedFor } = {}) {
  const url = new URL(`/socket.io/?EIO=4&transport=polling&sid=${sid}`, server.url);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST', localAddress, agent: false,
      headers: { 'content-type': 'text/plain;charset=UTF-8', ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end('1');
  });
}

async function metric(server, name) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('connections per address (--max-conns-per-ip)', () => {
  let server;
  before(async () => { server = await startServer(['--max-conns-per-ip', '3']); });
  after(async () => { closeAll(); await server?.stop(); });

  it('the official client beyond the limit gets a connect_error; others keep working; a freed slot is reusable', async () => {
    const room = roomName('perip');
    const a = await connect(server.url, { transports: ['websocket'] });
    const b = await connect(server.url, { transports: ['websocket'] });
    const c = await connect(server.url);
    assertOk(await join(a, room, 'a'));
    assertOk(await join(b, room, 'b'));
    // The fourth, on either transport, is refused before any session exists.
    for (const transports of [['websocket'], ['polling']]) {
      await assert.rejects(connect(server.url, { transports }), /connect_error/);
    }
    const refused = await handshake(server);
    assert.equal(refused.status, 429);
    assert.match(refused.body, /too many connections from this address \(at most 3\)/);
    assert.equal(refused.retryAfter, '10');
    assert.ok(await metric(server, 'signal_connections_refused_total') >= 3);

    // The three still work: a relay between a and b.
    const got = nextEvent(b, 'chat');
    assertOk(await emitAck(a, 'chat', { room, text: 'still here' }));
    assert.equal((await got).text, 'still here');

    // Another address is counted apart (127.0.0.0/8 is all loopback).
    const other = await handshake(server, { localAddress: '127.0.0.2' });
    assert.equal(other.status, 200);
    await closeSession(server, sidOf(other.body), { localAddress: '127.0.0.2' });

    // Closing one frees its slot once the session is gone.
    c.disconnect();
    await eventually(async () => assert.equal((await handshake(server)).status, 200), 5000, 100)
      .catch(() => assert.fail('a slot freed by a disconnect was not reusable within 5 s'));
  });

  it('X-Forwarded-For is ignored unless the proxy is trusted', async () => {
    // Its own server, its own slots: fill them from 127.0.0.1, then a forged header changes nothing.
    const own = await startServer(['--max-conns-per-ip', '2']);
    try {
      for (let i = 0; i < 2; i++) assert.equal((await handshake(own)).status, 200);
      const forged = await handshake(own, { forwardedFor: '203.0.113.9' });
      assert.equal(forged.status, 429);
    } finally {
      await own.stop();
    }
  });
});

describe('behind a trusted proxy (--trust-proxy)', () => {
  let server;
  before(async () => { server = await startServer(['--max-conns-per-ip', '2', '--trust-proxy']); });
  after(async () => { closeAll(); await server?.stop(); });

  it('counts the last X-Forwarded-For address, the one the proxy appended', async () => {
    const xff = (client) => `198.51.100.77, ${client}`; // the first entry is the client's claim
    const ok1 = await handshake(server, { forwardedFor: xff('203.0.113.1') });
    const ok2 = await handshake(server, { forwardedFor: xff('203.0.113.1') });
    assert.deepEqual([ok1.status, ok2.status], [200, 200]);
    assert.equal((await handshake(server, { forwardedFor: xff('203.0.113.1') })).status, 429);
    assert.equal((await handshake(server, { forwardedFor: xff('203.0.113.2') })).status, 200);
    // The socket.io upgrade/poll of an existing session is not a new connection.
    await closeSession(server, sidOf(ok1.body), { forwardedFor: xff('203.0.113.1') });
    // A polling session closed by its close packet frees its slot within
    // engineioxide's upgrade timeout (10 s): the pending upgrade task keeps
    // the session's request, which holds the slot, until then (measured
    // ~10.0 s). A WebSocket session frees it at once (the test above).
    await eventually(async () => assert.equal((await handshake(server, { forwardedFor: xff('203.0.113.1') })).status, 200), 15_000, 250);
  });
});

describe('a client that never reads', () => {
  let server;
  before(async () => {
    server = await startServer(['--ping-interval-ms', '3000', '--ping-timeout-ms', '3000', '--send-buffer', '64',
      '--rate-limit-burst', '10000', '--rate-limit-per-sec', '10000']);
  });
  after(async () => { closeAll(); await server?.stop(); });

  it('fills only its own bounded buffer, is dropped by the ping timeout, and slows no one', async () => {
    const room = roomName('slow');
    const talker = await connect(server.url, { transports: ['websocket'] });
    const listener = await connect(server.url, { transports: ['websocket'] });
    assertOk(await join(talker, room, 'talker'));
    assertOk(await join(listener, room, 'listener'));
    // The slow client joins, then stops reading: its TCP receive window fills.
    const slow = new RawClient(server.url);
    await slow.connect();
    slow.send(`420${JSON.stringify(['join', { room, name: 'slow' }])}`);
    const ackFrame = await slow.waitFor((f) => typeof f === 'string' && f.startsWith('430'));
    const slowId = JSON.parse(ackFrame.slice(3))[0].self.id;
    await nextEvent(talker, 'peer-joined');
    slow.ws._socket.pause();

    // 3 000 messages of 1.9 kB: about 6 MB towards the slow client, more than
    // its socket buffers and its 64-packet send buffer hold.
    const N = 3000;
    const text = 'x'.repeat(1900);
    let delivered = 0;
    listener.on('chat', () => { delivered++; });
    const left = nextEvent(talker, 'peer-left', 30_000, (e) => e.id === slowId);
    const t0 = Date.now();
    for (let i = 0; i < N; i++) {
      const ack = await emitAck(talker, 'chat', { room, text });
      assertOk(ack, `chat ${i}`);
    }
    await eventually(() => assert.equal(delivered, N), 10_000, 50)
      .catch(() => assert.fail(`listener got ${delivered}/${N}`));
    // Not answering pings, the slow client is gone within interval + timeout of its last pong.
    const gone = await left;
    assert.equal(gone.id, slowId);
    const elapsed = Date.now() - t0;
    assert.ok(await metric(server, 'signal_send_dropped_total') > 0, 'packets beyond the send buffer were dropped and counted');
    // The server is fine and the room works.
    const late = await connect(server.url);
    const ack = await join(late, room, 'late');
    assertOk(ack);
    assert.deepEqual(ack.peers.map((p) => p.name).sort(), ['listener', 'talker']);
    assert.ok(elapsed < 60_000);
    slow.close?.();
  });
});

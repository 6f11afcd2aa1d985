// What unauthenticated HTTP lets anyone do (issue "Hardening II",
// docs/server-contract.md "Limits"): connections that never finish their
// request head, idle keep-alive connections, cross-origin socket.io
// handshakes, the static folder's edges (symlinks, dotfiles, `//x`), cache
// headers, what /metrics tells about rooms, and /api/config's budget.
//
// Each attack runs while two users at another address (127.0.0.2) chat,
// every message acknowledged and delivered.

import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startServer } from './server.mjs';
import { OFFER } from './sdp.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertOk, roomName, eventually,
} from './client.mjs';

const servers = [];
async function start(flags, opts) {
  const s = await startServer(flags, opts);
  servers.push(s);
  return s;
}
after(async () => {
  closeAll();
  await Promise.all(servers.map((s) => s.stop()));
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Two users at 127.0.0.2 chatting in their own room every 40 ms, in turns;
 * `stop()` asserts every message was acknowledged and delivered, in order.
 * @param {{transports?: string[][]}} [opts] the two users' transports
 */
async function bystanders(server, { transports = [['websocket'], ['websocket']] } = {}) {
  const room = roomName('bystanders');
  const users = [];
  for (const [i, t] of transports.entries()) {
    const s = await connect(server.url, { transports: t, localAddress: '127.0.0.2' });
    assertOk(await join(s, room, i ? 'Bo' : 'Ana'));
    const got = [];
    s.on('chat', (m) => got.push(m.text));
    const lost = [];
    s.on('disconnect', (reason) => lost.push(reason));
    users.push({ s, got, sent: [], lost });
  }
  let running = true;
  let failure = null;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const from = users[i % 2];
      const text = `m${i}`;
      try {
        assertOk(await emitAck(from.s, 'chat', { room, text }));
      } catch (e) {
        failure = e;
        return;
      }
      from.sent.push(text);
      await sleep(40);
    }
  })();
  return {
    async stop() {
      // At least a few exchanges, however quick the attack was.
      await eventually(() => assert.ok(failure || users[0].sent.length + users[1].sent.length >= 10), 10_000);
      running = false;
      await loop;
      if (failure) throw failure;
      const [a, b] = users;
      await eventually(() => {
        assert.deepEqual(b.got, a.sent, 'everything Ana sent reached Bo');
        assert.deepEqual(a.got, b.sent, 'everything Bo sent reached Ana');
      });
      for (const u of users) assert.deepEqual(u.lost, [], 'no bystander was disconnected');
      const n = a.sent.length + b.sent.length;
      assert.ok(n >= 10, `the bystanders chatted throughout (${n} messages)`);
      for (const u of users) u.s.disconnect();
      return n;
    },
  };
}

/** Prometheus sample value (labels as an exact `{...}` string, or none). */
async function metric(server, name, labels = '') {
  const text = (await server.get('/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? NaN : Number(line.split(' ').pop());
}

/**
 * A raw TCP connection to the server: `opened`/`closed` times (ms),
 * `request(text)` for one HTTP/1.1 exchange (Content-Length bodies).
 */
function rawConnection(server) {
  return new Promise((resolve, reject) => {
    const c = { opened: 0, closed: null, buf: '' };
    c.socket = net.connect(server.port, '127.0.0.1', () => { c.opened = Date.now(); resolve(c); });
    c.socket.setEncoding('latin1');
    c.socket.on('error', () => {});
    c.socket.on('data', (d) => { c.buf += d; c.onData?.(); });
    c.ended = new Promise((done) => c.socket.on('close', () => { c.closed = Date.now(); done(c.closed); }));
    c.socket.once('error', reject);
    c.request = (text) => new Promise((done, fail) => {
      c.buf = '';
      c.onData = () => {
        const head = c.buf.indexOf('\r\n\r\n');
        if (head < 0) return;
        const lines = c.buf.slice(0, head).split('\r\n');
        const headers = Object.fromEntries(lines.slice(1).map((l) => {
          const i = l.indexOf(':');
          return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()];
        }));
        const length = Number(headers['content-length'] ?? 0);
        if (c.buf.length < head + 4 + length) return;
        c.onData = null;
        done({ status: Number(lines[0].split(' ')[1]), headers, body: c.buf.slice(head + 4, head + 4 + length) });
      };
      c.ended.then(() => fail(new Error(`connection closed before the response (got ${JSON.stringify(c.buf)})`)));
      c.socket.write(text);
    });
  });
}

/** GET with node's http (paths such as `//x` are sent as they are). */
function rawGet(server, p, headers = {}, opts = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: server.port, path: p, headers, agent: false, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${p} timed out`)));
  });
}

/** POSTs Engine.IO packets `body` to a polling session. */
function postPacket(server, p, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: server.port, path: p, method: 'POST', agent: false,
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
    }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode })); });
    req.on('error', reject);
    req.end(body);
  });
}

describe('slow request heads (--http-header-timeout-secs)', () => {
  it('200 connections that never finish their request head are closed within the deadline; new ones keep working', async (t) => {
    const server = await start(['--http-header-timeout-secs', '1']);
    const chat = await bystanders(server);
    const N = 200;
    const conns = [];
    for (let i = 0; i < N; i++) {
      const c = await rawConnection(server);
      // Half send nothing; half dribble a head that never ends.
      if (i % 2) {
        c.socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
        c.drip = setInterval(() => c.socket.write('X-Slow: 1\r\n'), 200);
      }
      conns.push(c);
    }
    // While they are open, the server answers new connections.
    assert.ok(await metric(server, 'signal_http_connections') >= N / 2, 'the slow connections are open');
    assert.equal((await server.get('/healthz')).status, 200);
    const late = await connect(server.url, { transports: ['polling'] });
    assertOk(await join(late, roomName('late'), 'Late'));
    late.disconnect();

    await Promise.all(conns.map((c) => c.ended));
    for (const c of conns) clearInterval(c.drip);
    const open = conns.map((c) => c.closed - c.opened).sort((a, b) => a - b);
    t.diagnostic(`slow connections stayed open ${open[0]}..${open[N - 1]} ms (median ${open[N >> 1]}), header timeout 1000 ms`);
    assert.ok(open[0] >= 900, `none closed before the deadline (${open[0]} ms)`);
    assert.ok(open[N - 1] <= 2500, `all closed by the deadline plus one timer tick (${open[N - 1]} ms)`);
    assert.ok(await metric(server, 'signal_http_closed_total', '{reason="header_timeout"}') >= N);
    await eventually(async () => assert.ok(await metric(server, 'signal_http_connections') <= 2));
    await chat.stop();
    await server.assertHealthy();
  });
});

describe('idle keep-alive connections (--http-idle-timeout-secs)', () => {
  const flags = ['--http-idle-timeout-secs', '2', '--http-header-timeout-secs', '1',
    '--ping-interval-ms', '3000', '--ping-timeout-ms', '3000'];

  it('are closed after the idle timeout; a connection in use, a long poll and WebSockets are not', async (t) => {
    const server = await start(flags);
    // One bystander on polling: its long polls (3 s here) outlast both deadlines.
    const chat = await bystanders(server, { transports: [['websocket'], ['polling']] });

    // 20 connections each make one request, then idle.
    const idle = [];
    for (let i = 0; i < 20; i++) {
      const c = await rawConnection(server);
      const res = await c.request('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      assert.equal(res.status, 200);
      c.answered = Date.now();
      idle.push(c);
    }
    // One keeps making a request every 500 ms for 4 s: never idle for 2 s.
    const busy = await rawConnection(server);
    for (let i = 0; i < 8; i++) {
      assert.equal((await busy.request('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).status, 200);
      await sleep(500);
    }
    assert.equal(busy.closed, null, 'a connection in use stays open');
    // A long poll is held by the server for the ping interval (3 s): in flight, not idle.
    const hs = await rawGet(server, '/socket.io/?EIO=4&transport=polling', {}, { localAddress: '127.0.0.3' });
    const sid = JSON.parse(hs.body.slice(1)).sid;
    const poller = await rawConnection(server);
    const pollPath = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const poll = () => poller.request(`GET ${pollPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    assert.equal((await poll()).body, '2', 'the first poll gets the first ping at once');
    assert.equal((await postPacket(server, pollPath, '3')).status, 200, 'pong');
    const t0 = Date.now();
    const held = await poll();
    const heldMs = Date.now() - t0;
    assert.equal(held.status, 200);
    assert.equal(held.body, '2', 'the next ping');
    assert.ok(heldMs >= 2500, `the long poll was held ${heldMs} ms, beyond both deadlines, and answered`);
    assert.equal(poller.closed, null, 'on a connection that stays open');

    await Promise.all(idle.map((c) => c.ended));
    const after = idle.map((c) => c.closed - c.answered).sort((a, b) => a - b);
    t.diagnostic(`idle connections closed ${after[0]}..${after[after.length - 1]} ms after their response (idle timeout 2000 ms)`);
    assert.ok(after[0] >= 1800, `none closed before the idle timeout (${after[0]} ms)`);
    assert.ok(after[after.length - 1] <= 3500, `all closed soon after it (${after[after.length - 1]} ms)`);
    assert.ok(await metric(server, 'signal_http_closed_total', '{reason="idle"}') >= 20);
    busy.socket.destroy();
    poller.socket.destroy();
    // The WebSocket and polling bystanders lived through all of it (> 7 s).
    await chat.stop();
    await server.assertHealthy();
  });
});

describe('Origin of socket.io handshakes', () => {
  /** Opens a raw Engine.IO WebSocket; resolves 'open' or the HTTP status it was refused with. */
  function wsHandshake(server, origin) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/socket.io/?EIO=4&transport=websocket`,
        origin === undefined ? {} : { origin });
      ws.on('open', () => { ws.close(); resolve('open'); });
      ws.on('unexpected-response', (_req, res) => { res.resume(); resolve(res.statusCode); });
      ws.on('error', reject);
    });
  }
  const polling = (server, origin) =>
    rawGet(server, '/socket.io/?EIO=4&transport=polling', origin === undefined ? {} : { origin });

  it('a cross-origin WebSocket or polling handshake gets 403; same-origin and no-Origin ones work', async () => {
    const server = await start([]);
    const chat = await bystanders(server);
    const self = `http://127.0.0.1:${server.port}`;
    for (const origin of ['http://evil.example', `http://127.0.0.1:${server.port + 1}`, 'null', `http://localhost:${server.port}`]) {
      assert.equal(await wsHandshake(server, origin), 403, `WebSocket from ${origin}`);
      const res = await polling(server, origin);
      assert.equal(res.status, 403, `polling from ${origin}`);
      assert.match(res.body, /cross-origin/);
    }
    // The page's own origin (http or https: a TLS proxy in front), or none.
    for (const origin of [self, `https://127.0.0.1:${server.port}`, undefined]) {
      assert.equal(await wsHandshake(server, origin), 'open', `WebSocket from ${origin}`);
      const res = await polling(server, origin);
      assert.equal(res.status, 200, `polling from ${origin}`);
      assert.match(res.body, /^0\{"sid"/);
    }
    // The official client, as a browser on another site would send it.
    await assert.rejects(connect(server.url, { transports: ['websocket'], extraHeaders: { origin: 'http://evil.example' } }), /connect_error/);
    const same = await connect(server.url, { transports: ['websocket'], extraHeaders: { origin: self } });
    assertOk(await join(same, roomName('same-origin'), 'Same'));
    same.disconnect();
    assert.ok(await metric(server, 'signal_http_refused_total', '{reason="origin"}') >= 9);
    await chat.stop();
    await server.assertHealthy();
  });

  it('--cors-origins admits the listed origins, and * any', async () => {
    const listed = await start(['--cors-origins', 'http://ok.example']);
    assert.equal(await wsHandshake(listed, 'http://ok.example'), 'open');
    assert.equal((await polling(listed, 'http://ok.example')).status, 200);
    assert.equal(await wsHandshake(listed, 'http://evil.example'), 403);
    assert.equal((await polling(listed, 'http://evil.example')).status, 403);
    const any = await start(['--cors-origins', '*']);
    assert.equal(await wsHandshake(any, 'http://evil.example'), 'open');
  });

  it('behind a trusted proxy the forwarded host is the page\'s own', async () => {
    const server = await start(['--trust-proxy']);
    const res = await rawGet(server, '/socket.io/?EIO=4&transport=polling',
      { origin: 'https://meet.example', 'x-forwarded-host': 'meet.example' });
    assert.equal(res.status, 200);
    const plain = await start([]);
    const refused = await rawGet(plain, '/socket.io/?EIO=4&transport=polling',
      { origin: 'https://meet.example', 'x-forwarded-host': 'meet.example' });
    assert.equal(refused.status, 403, 'X-Forwarded-Host counts only with --trust-proxy');
  });
});

describe('static files', () => {
  it('no symlink out of the folder, no dotfile, no protocol-relative redirect; hashed assets immutable, pages no-cache', async () => {
    const server = await start([], { staticFiles: { 'index.html': '<!doctype html><title>client</title>', 'app.js': 'app();' } });
    const chat = await bystanders(server);
    const dir = server.staticDir;
    const outside = await mkdtemp(path.join(tmpdir(), 'signal-outside-'));
    try {
      await writeFile(path.join(outside, 'secret.txt'), 'TOP-SECRET');
      await symlink(path.join(outside, 'secret.txt'), path.join(dir, 'leak.txt'));
      await symlink(outside, path.join(dir, 'elsewhere'));
      await symlink(path.join(dir, 'app.js'), path.join(dir, 'alias.js'));
      await writeFile(path.join(dir, '.hidden'), 'HIDDEN');
      await mkdir(path.join(dir, '.git'));
      await writeFile(path.join(dir, '.git', 'config'), 'HIDDEN');
      await mkdir(path.join(dir, 'x'));
      await writeFile(path.join(dir, 'x', 'index.html'), '<!doctype html><title>x</title>');
      await writeFile(path.join(dir, 'web-client-9957c8fa1c0107ef_bg.wasm'), 'wasm');
      await writeFile(path.join(dir, 'style-5e61453f0c612840.css'), 'body{}');

      for (const p of ['/leak.txt', '/elsewhere/secret.txt', '/.hidden', '/%2Ehidden', '/.git/config', '/x/../.hidden']) {
        const res = await rawGet(server, p);
        assert.equal(res.status, 404, p);
        assert.ok(!/TOP-SECRET|HIDDEN/.test(res.body), `${p}: ${res.body}`);
      }
      // A symlink that stays inside is fine.
      assert.equal((await rawGet(server, '/alias.js')).body, 'app();');
      // A folder without its slash is redirected to it, on this host only.
      for (const p of ['//x', '///x', '//x/', '/x//']) {
        const res = await rawGet(server, p);
        assert.ok(!(res.headers.location ?? '').startsWith('//'), `${p}: Location ${res.headers.location}`);
        assert.ok(res.status === 404 || res.status === 200, `${p}: ${res.status}`);
      }
      const folder = await rawGet(server, '/x');
      assert.ok([301, 307, 308].includes(folder.status), `/x: ${folder.status}`);
      assert.equal(folder.headers.location, '/x/');
      assert.equal((await rawGet(server, '/x/')).status, 200);

      const immutable = 'public, max-age=31536000, immutable';
      for (const p of ['/web-client-9957c8fa1c0107ef_bg.wasm', '/style-5e61453f0c612840.css']) {
        const res = await rawGet(server, p);
        assert.equal(res.status, 200, p);
        assert.equal(res.headers['cache-control'], immutable, p);
      }
      for (const p of ['/', '/index.html', '/r/some-room', '/app.js']) {
        const res = await rawGet(server, p);
        assert.equal(res.status, 200, p);
        assert.equal(res.headers['cache-control'], 'no-cache', p);
      }
      // A missing hashed-looking asset is not cached for a year.
      const missing = await rawGet(server, '/web-client-0123456789abcdef.js');
      assert.equal(missing.status, 404);
      assert.notEqual(missing.headers['cache-control'], immutable);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
    await chat.stop();
    await server.assertHealthy();
  });
});

describe('/metrics', () => {
  it('names no SFU room and no peer while SFU rooms exist, and stays small', async (t) => {
    const server = await start(['--sfu', '--sfu-ports', '43000-43199']);
    const chat = await bystanders(server);
    const baseline = (await server.get('/metrics')).body;
    const rooms = [];
    const ids = [];
    const users = [];
    for (let i = 0; i < 4; i++) users.push(await connect(server.url, { transports: ['websocket'] }));
    for (let r = 0; r < 12; r++) {
      const room = roomName('sfu-secret');
      rooms.push(room);
      for (const [k, u] of users.slice(0, 2 + (r % 3)).entries()) {
        const ack = await join(u, room, `P${k}`, { mode: 'sfu' });
        ids.push(ack.self.id);
      }
    }
    // One peer per room offers: the SFU makes a peer connection and answers.
    for (const room of rooms) {
      assertOk(await emitAck(users[0], 'signal', { room, to: 'sfu', data: { type: 'offer', sdp: OFFER } }));
      const answer = await nextEvent(users[0], 'signal', 10_000, (s) => s.room === room && s.data?.type === 'answer');
      assert.equal(answer.from, 'sfu');
    }
    const text = (await server.get('/metrics')).body;
    for (const secret of [...rooms, ...new Set(ids)]) {
      assert.ok(!text.includes(secret), `/metrics names ${secret}`);
    }
    assert.ok(!/\{[^}]*\b(room|peer)=/.test(text), 'no room or peer label');
    assert.equal(await metric(server, 'signal_sfu_rooms'), rooms.length);
    assert.ok(await metric(server, 'signal_sfu_peers') >= rooms.length, 'the offering peers are counted');
    assert.equal(await metric(server, 'signal_sfu_room_peers_count'), rooms.length);
    assert.equal(await metric(server, 'signal_sfu_room_peers_bucket', '{le="+Inf"}'), rooms.length);
    // The page does not grow with rooms or peers: only numbers change.
    t.diagnostic(`/metrics: ${baseline.length} bytes with no room, ${text.length} with ${rooms.length} SFU rooms`);
    assert.ok(text.length < 16 * 1024, `/metrics is ${text.length} bytes`);
    assert.ok(Math.abs(text.length - baseline.length) < 400, `grew from ${baseline.length} to ${text.length} bytes`);
    for (const u of users) u.disconnect();
    await eventually(async () => assert.equal(await metric(server, 'signal_sfu_rooms'), 0));
    await chat.stop();
    await server.assertHealthy();
  });
});

describe('/api/config budget (--config-requests-per-min)', () => {
  it('429 with Retry-After past the per-minute budget of an address; other addresses unaffected', async () => {
    const server = await start(['--config-requests-per-min', '5', '--turn-urls', 'turn:127.0.0.1:3478', '--turn-secret', 's']);
    const chat = await bystanders(server);
    for (let i = 0; i < 5; i++) {
      const res = await rawGet(server, '/api/config');
      assert.equal(res.status, 200, `request ${i + 1} of 5`);
    }
    const refused = await rawGet(server, '/api/config');
    assert.equal(refused.status, 429);
    const retry = Number(refused.headers['retry-after']);
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After: ${refused.headers['retry-after']}`);
    assert.match(refused.body, /at most 5 a minute/);
    assert.ok(!/credential/.test(refused.body), 'no credentials past the budget');
    // Another address has its own budget; other routes have none.
    assert.equal((await rawGet(server, '/api/config', {}, { localAddress: '127.0.0.4' })).status, 200);
    assert.equal((await rawGet(server, '/healthz')).status, 200);
    assert.equal((await rawGet(server, '/')).status !== 429, true);
    assert.ok(await metric(server, 'signal_http_refused_total', '{reason="config_rate"}') >= 1);
    await chat.stop();
    await server.assertHealthy();
  });

  it('behind a trusted proxy the budget is per forwarded address', async () => {
    const server = await start(['--config-requests-per-min', '2', '--trust-proxy']);
    const from = (ip) => rawGet(server, '/api/config', { 'x-forwarded-for': `203.0.113.9, ${ip}` });
    assert.equal((await from('198.51.100.1')).status, 200);
    assert.equal((await from('198.51.100.1')).status, 200);
    assert.equal((await from('198.51.100.1')).status, 429);
    assert.equal((await from('198.51.100.2')).status, 200);
  });
});

// HTTP routes: /healthz, /api/config (STUN, TURN with time-limited
// credentials), /metrics, the static web client, CORS and $PORT.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import net from 'node:net';
import { startServer } from './server.mjs';
import {
  connect, closeAll, emitAck, join, assertOk, assertErr, roomName, eventually,
} from './client.mjs';

const servers = [];
async function start(flags, opts) {
  const s = await startServer(flags, opts);
  servers.push(s);
  return s;
}
let server;
before(async () => {
  server = await start([], { staticFiles: { 'index.html': '<!doctype html><title>signal test client</title>', 'app.js': 'console.log("asset");' } });
});
after(async () => {
  closeAll();
  await Promise.all(servers.map((s) => s.stop()));
});

const ws = { transports: ['websocket'] };
const urlsOf = (entry) => (Array.isArray(entry.urls) ? entry.urls : [entry.urls]);

async function getJson(s, path) {
  const res = await s.get(path);
  assert.equal(res.status, 200, `${path} status`);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/, `${path} content-type`);
  return JSON.parse(res.body);
}

describe('/healthz', () => {
  it('GET /healthz is 200 with body "ok"', async () => {
    const res = await server.get('/healthz');
    assert.equal(res.status, 200);
    assert.equal(res.body.trimEnd(), 'ok');
  });
});

describe('/api/config', () => {
  it('has an iceServers array of RTCIceServer objects and modes ["mesh"]', async () => {
    const cfg = await getJson(server, '/api/config');
    assert.ok(Array.isArray(cfg.iceServers), 'iceServers is an array');
    for (const e of cfg.iceServers) {
      assert.ok(e && typeof e === 'object' && 'urls' in e, `RTCIceServer has urls: ${JSON.stringify(e)}`);
      for (const u of urlsOf(e)) assert.match(u, /^(stun|stuns|turn|turns):/);
    }
    assert.deepEqual(cfg.modes, ['mesh']);
  });

  it('--stun-urls (comma separated) become STUN entries without credentials', async () => {
    const s = await start(['--stun-urls', 'stun:stun.example.org:3478,stun:stun2.example.org:19302']);
    const cfg = await getJson(s, '/api/config');
    const all = cfg.iceServers.flatMap(urlsOf);
    assert.ok(all.includes('stun:stun.example.org:3478'), JSON.stringify(cfg));
    assert.ok(all.includes('stun:stun2.example.org:19302'), JSON.stringify(cfg));
    for (const e of cfg.iceServers.filter((x) => urlsOf(x).some((u) => u.startsWith('stun:')))) {
      assert.equal(e.username, undefined);
      assert.equal(e.credential, undefined);
    }
    assert.deepEqual(cfg.modes, ['mesh']);
  });

  it('--turn-urls with --turn-secret: username "<expiry>:<id>" expiring in the future, credential = base64(HMAC-SHA1(secret, username))', async () => {
    const s = await start(['--turn-urls', 'turn:127.0.0.1:3478', '--turn-secret', 's3cret']);
    const t0 = Math.floor(Date.now() / 1000);
    const res = await s.get('/api/config');
    assert.equal(res.status, 200);
    assert.ok(!res.body.includes('s3cret'), 'the secret itself is never sent');
    const cfg = JSON.parse(res.body);
    const turn = cfg.iceServers.find((e) => urlsOf(e).includes('turn:127.0.0.1:3478'));
    assert.ok(turn, `a TURN entry: ${JSON.stringify(cfg)}`);
    assert.equal(typeof turn.username, 'string');
    const m = /^(\d+):(.+)$/.exec(turn.username);
    assert.ok(m, `username "<unix-expiry>:<id>": ${turn.username}`);
    const expiry = Number(m[1]);
    assert.ok(expiry > t0, `expiry ${expiry} is in the future (now ${t0})`);
    assert.ok(expiry <= t0 + 86400 + 5, `expiry ${expiry} within the default TTL of 86400 s`);
    assert.ok(expiry >= t0 + 86400 - 5, `expiry ${expiry} uses the default TTL of 86400 s`);
    const expected = createHmac('sha1', 's3cret').update(turn.username).digest('base64');
    assert.equal(turn.credential, expected);
    assert.ok(turn.credentialType === undefined || turn.credentialType === 'password');
  });

  it('--turn-ttl-secs sets the credential lifetime; each request gets valid credentials', async () => {
    const s = await start(['--turn-urls', 'turn:127.0.0.1:3478,turns:127.0.0.1:5349', '--turn-secret', 'other', '--turn-ttl-secs', '600']);
    for (let i = 0; i < 2; i++) {
      const t0 = Math.floor(Date.now() / 1000);
      const cfg = await getJson(s, '/api/config');
      const turn = cfg.iceServers.find((e) => urlsOf(e).includes('turn:127.0.0.1:3478'));
      assert.ok(turn, JSON.stringify(cfg));
      assert.ok(cfg.iceServers.some((e) => urlsOf(e).includes('turns:127.0.0.1:5349')), 'second TURN url listed');
      const expiry = Number(turn.username.split(':')[0]);
      assert.ok(expiry >= t0 + 600 - 5 && expiry <= t0 + 600 + 5, `expiry ${expiry} ≈ now + 600 (${t0 + 600})`);
      assert.equal(turn.credential, createHmac('sha1', 'other').update(turn.username).digest('base64'));
    }
  });
});

/** Value of an un-labelled Prometheus sample, or of one with the given labels. */
function sample(text, name, labels = null) {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    if (labels === null && !m[2]) return Number(m[3]);
    if (labels !== null && m[2] && Object.entries(labels).every(([k, v]) => m[2].includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

describe('/metrics', () => {
  it('is Prometheus text with signal_connections, signal_rooms and signal_events_total', async () => {
    const res = await server.get('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    for (const name of ['signal_connections', 'signal_rooms', 'signal_events_total']) {
      assert.match(res.body, new RegExp(`^${name}`, 'm'), `${name} present`);
    }
    assert.match(res.body, /^# TYPE signal_connections gauge/m);
    assert.match(res.body, /^# TYPE signal_events_total counter/m);
  });

  it('gauges and counters follow activity: connections, rooms, peers, events, errors', async () => {
    const s = await start([]);
    const scrape = async () => (await s.get('/metrics')).body;
    const a = await connect(s.url, ws);
    const b = await connect(s.url, ws);
    const room = roomName('metrics');
    await join(a, room, 'Ana');
    await join(b, room, 'Bo');
    await join(a, roomName('metrics2'), 'Ana');
    assertOk(await emitAck(a, 'chat', { room, text: 'x' }));
    assertErr(await emitAck(a, 'leave', { room: 'zz-never' }), 'not_in_room');
    await eventually(async () => {
      const text = await scrape();
      assert.equal(sample(text, 'signal_connections'), 2, 'signal_connections');
      assert.equal(sample(text, 'signal_rooms'), 2, 'signal_rooms');
      if (sample(text, 'signal_peers') !== undefined) assert.equal(sample(text, 'signal_peers'), 3, 'signal_peers');
      assert.ok(sample(text, 'signal_events_total', { event: 'join' }) >= 3, 'join events counted');
      assert.ok(sample(text, 'signal_events_total', { event: 'chat' }) >= 1, 'chat events counted');
      assert.ok(sample(text, 'signal_errors_total', { code: 'not_in_room' }) >= 1, 'errors counted by code');
    });
    a.disconnect();
    b.disconnect();
    await eventually(async () => {
      const text = await scrape();
      assert.equal(sample(text, 'signal_connections'), 0, 'connections back to 0');
      assert.equal(sample(text, 'signal_rooms'), 0, 'rooms back to 0');
    });
  });
});

describe('static web client, CORS, $PORT', () => {
  it('GET / serves index.html from --static-dir, and its assets', async () => {
    const res = await server.get('/');
    assert.equal(res.status, 200);
    assert.match(res.body, /signal test client/);
    const js = await server.get('/app.js');
    assert.equal(js.status, 200);
    assert.equal(js.body, 'console.log("asset");');
  });

  it('every answer carries the security headers (the client page, its assets, the API)', async () => {
    for (const route of ['/', '/app.js', '/api/config', '/healthz', '/r/some-room']) {
      const res = await server.get(route);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', route);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', route);
      assert.equal(res.headers.get('referrer-policy'), 'same-origin', route);
      assert.equal(res.headers.get('permissions-policy'), 'camera=(self), microphone=(self), display-capture=(self)', route);
    }
  });

  it('client pages carry a Content-Security-Policy that admits exactly their inline scripts, by hash', async () => {
    const loader = "\nimport init from '/app.js';\nawait init();\n";
    const page = `<!doctype html><head><script type="module">${loader}</script><script src="/socket.io.min.js"></script></head>`;
    const s = await start([], { staticFiles: { 'index.html': page } });
    const digest = createHash('sha256').update(loader, 'utf8').digest('base64');
    for (const route of ['/', '/r/some-room']) {
      const res = await s.get(route);
      assert.equal(res.status, 200, route);
      assert.equal(res.body, page, `${route}: the page itself is unchanged`);
      const csp = res.headers.get('content-security-policy') ?? '';
      const directive = (name) => csp.split(';').map((d) => d.trim()).find((d) => d.startsWith(`${name} `));
      assert.equal(directive('script-src'), `script-src 'self' 'wasm-unsafe-eval' 'sha256-${digest}'`, route);
      assert.equal(directive('connect-src'), "connect-src 'self'", route);
      assert.equal(directive('frame-ancestors'), "frame-ancestors 'none'", route);
      assert.equal(directive('object-src'), "object-src 'none'", route);
      assert.ok(!/unsafe-inline|'unsafe-eval'/.test(csp), `${route}: ${csp}`);
    }
    // Not a page: no policy needed (and none that could break a fetch).
    assert.equal((await s.get('/api/config')).headers.get('content-security-policy'), null);
  });

  it('CORS is closed by default and open to the listed origins with --cors-origins', async () => {
    const closed = await server.get('/api/config', { headers: { Origin: 'http://evil.example' } });
    assert.equal(closed.headers.get('access-control-allow-origin'), null);
    const s = await start(['--cors-origins', 'http://ok.example']);
    const ok = await s.get('/api/config', { headers: { Origin: 'http://ok.example' } });
    assert.equal(ok.headers.get('access-control-allow-origin'), 'http://ok.example');
    const other = await s.get('/api/config', { headers: { Origin: 'http://evil.example' } });
    assert.notEqual(other.headers.get('access-control-allow-origin'), 'http://evil.example');
  });

  it('listens on $PORT when no --port is given', async () => {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
    });
    const s = await start([], { portFlag: false, env: { PORT: String(port) } });
    assert.equal(s.port, port);
    assert.equal((await s.get('/healthz')).status, 200);
  });
});

it('servers stayed up and logged no panic', async () => {
  for (const s of servers) await s.assertHealthy();
});

// Randomized wire fuzzing of the running server (docs/fuzzing.md).
//
// garbage.test.mjs throws a fixed list of bad frames, one at a time. This
// test throws volume: seeded random and mutated Engine.IO / Socket.IO traffic
// over raw WebSockets, HTTP long-polling sessions and raw HTTP, from several
// connections at once, while two well-behaved socket.io-client peers in one
// room keep chatting (with acks) and signalling. At the end:
// - the server is alive, logged no panic, answers /healthz 200;
// - every bystander message was acked and delivered, in order, and neither
//   bystander was disconnected;
// - the server's connection gauge returns to the bystanders alone (no leaked
//   sessions or memberships), and a fresh joiner sees exactly the bystanders.
//
// WIREFUZZ_SEED (printed) reproduces a run; WIREFUZZ_FRAMES sets its volume
// (the default fits in ~30 s); WIREFUZZ_WORKERS the concurrent connections;
// WIREFUZZ_MAX_CONNS_PER_IP the server's per-address session limit (0 lifts
// it for long runs); WIREFUZZ_DEBUG=1 keeps logs for leak hunting. Two
// regression tests of what it found run first.
// Each connection draws from its own generator, seeded from (seed, worker,
// index), so one connection's traffic is reproducible on its own. When the
// server logs a panic, the frames of the connections in flight are written
// to a file named in the failure.

import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startServer } from './server.mjs';
import { RawClient } from './raw.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertOk, roomName, eventually, short,
} from './client.mjs';

const SEED = (process.env.WIREFUZZ_SEED !== undefined
  ? Number(process.env.WIREFUZZ_SEED)
  : Math.floor(Math.random() * 2 ** 32)) >>> 0;
const FRAMES = Number(process.env.WIREFUZZ_FRAMES ?? 10_000);
const WORKERS = Number(process.env.WIREFUZZ_WORKERS ?? 4);
// The server's per-address session limit (`--max-conns-per-ip`); unset: its
// default. A session that closes before connecting to a namespace keeps its
// slot for socketioxide's connect timeout (45 s, docs/fuzzing.md), so long
// runs meet the limit; 0 lifts it.
const MAX_CONNS = process.env.WIREFUZZ_MAX_CONNS_PER_IP;
// Shorter heartbeats than the defaults, so sessions the fuzzer abandons
// (a polling session nobody polls) are reaped within seconds.
const PING_MS = 4000;
// WIREFUZZ_DEBUG=1: server debug logs, and every connection's frames kept.
const DEBUG = process.env.WIREFUZZ_DEBUG === '1';
const allFrames = new Map(); // conn -> {sid, frames} (DEBUG only)
const MAX_MESSAGE_BYTES = 65536; // the server's default; the transport limit is 4x

// ---------------------------------------------------------------------------
// Seeded randomness (mulberry32).

function mix(...xs) {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

function rng(seed) {
  let a = seed >>> 0;
  const r = {
    u32() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (t ^ (t >>> 14)) >>> 0;
    },
    below(n) { return n <= 1 ? 0 : r.u32() % n; },
    chance(p) { return r.u32() / 2 ** 32 < p; },
    pick(xs) { return xs[r.below(xs.length)]; },
    bytes(n) { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = r.u32() & 0xff; return b; },
    /** Pick by weight: [[weight, value], ...]. */
    weighted(pairs) {
      let total = 0;
      for (const [w] of pairs) total += w;
      let x = r.below(total);
      for (const [w, v] of pairs) { if (x < w) return v; x -= w; }
      return pairs[pairs.length - 1][1];
    },
  };
  return r;
}

// ---------------------------------------------------------------------------
// Generators.

const EVENTS = ['join', 'leave', 'signal', 'chat', 'typing', 'media-state', 'chat-receipt', 'peer-ping'];
const KEYS = ['room', 'name', 'mode', 'password', 'to', 'data', 'type', 'sdp', 'candidate', 'sdpMid',
  'sdpMLineIndex', 'usernameFragment', 'text', 'typing', 'audio', 'video', 'screen', 'id', 'seq', 'pong',
  '__proto__', 'constructor', ''];
const CHARS = ['a', 'Z', '0', '_', '-', ' ', '.', '/', 'é', '\u0000', '\n', '\t', '\u007f', '\u0085',
  '\u00a0', '\u200b', '\u2028', '\u3000', '\ufeff', '\u202e', '😀', '"', '\\', '<', '\ud800', '\udfff', ','];

function edgeString(r) {
  const len = r.weighted([
    [3, 0], [3, 1], [6, r.below(8)], [2, 31 + r.below(4)], [2, 63 + r.below(4)], [1, 127 + r.below(4)],
    [1, 1999 + r.below(3)], [1, 70_000],
  ]);
  if (len > 100 && r.chance(0.5)) return r.pick(CHARS).repeat(len);
  let s = '';
  for (let i = 0; i < len; i++) s += r.pick(CHARS);
  return s;
}

/** A random JSON value (as a JS value; JSON.stringify'd later). */
function randomValue(r, depth = 0) {
  switch (r.below(depth > 2 ? 7 : 10)) {
    case 0: return null;
    case 1: return r.chance(0.5);
    case 2: return r.pick([0, -1, 1, 1.5, 65535, 65536, 4294967295, 4294967296, 2 ** 53 + 2, -(2 ** 63), 1e308, -0]);
    case 3: return r.pick(['mesh', 'sfu', 'offer', 'answer', 'candidate', 'bye', 'v=0', '', 'sfu ']);
    case 4: case 5: case 6: return edgeString(r);
    case 7: return Array.from({ length: r.below(4) }, () => randomValue(r, depth + 1));
    default: {
      const o = {};
      for (let i = r.below(4); i > 0; i--) o[r.pick(KEYS)] = randomValue(r, depth + 1);
      return o;
    }
  }
}

function signalData(r) {
  return r.pick([
    () => ({ type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' }),
    () => ({ type: 'answer', sdp: 'v=0\r\n' }),
    () => ({ type: 'candidate', candidate: { candidate: 'candidate:1 1 udp 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 } }),
    () => ({ type: 'candidate', candidate: null }),
    () => ({ type: 'bye' }),
  ])();
}

/** A valid payload for `event`, aimed at one of the rooms this connection knows. */
function template(r, event, ctx) {
  const room = r.weighted([[6, ctx.ownRoom], [3, ctx.bystanderRoom], [1, 'zz-never']]);
  const peer = () => r.weighted([[3, ctx.bystanderIds[0]], [3, ctx.bystanderIds[1]], [1, 'sfu'], [1, ctx.selfId ?? 'x'], [1, '00000000-0000-4000-8000-000000000000']]);
  switch (event) {
    case 'join': {
      const p = { room, name: r.pick(['Fuzz', ' fz ', 'é'.repeat(32), '<b>x</b>']) };
      if (r.chance(0.3)) p.mode = r.pick(['mesh', 'sfu']);
      if (r.chance(0.2)) p.password = r.pick(['', 'pw']);
      return p;
    }
    case 'leave': return { room };
    case 'signal': return { room, to: peer(), data: signalData(r) };
    case 'chat': return { room, text: r.pick(['fuzz', ' ', 'x'.repeat(2000), '😀<i>']) };
    case 'typing': return { room, typing: r.chance(0.5) };
    case 'media-state': return { room, audio: r.chance(0.5), video: r.chance(0.5), ...(r.chance(0.5) ? { screen: true } : {}) };
    case 'chat-receipt': return { room, id: r.pick(ctx.msgIds.length ? ctx.msgIds : ['m']) };
    default: return { room, to: peer(), seq: r.below(1000), pong: r.chance(0.5) };
  }
}

/** Mutate a JSON-able value in place-ish (returns the new value). */
function mutateValue(r, v, depth = 0) {
  const descend = depth < 4 && r.below(3) !== 0;
  if (v && typeof v === 'object' && !Array.isArray(v) && descend && Object.keys(v).length) {
    const k = r.pick(Object.keys(v));
    switch (r.below(5)) {
      case 0: delete v[k]; break;
      case 1: v[r.pick(KEYS)] = randomValue(r, depth); break;
      default: v[k] = mutateValue(r, v[k], depth + 1);
    }
    return v;
  }
  if (Array.isArray(v) && descend && v.length) {
    const i = r.below(v.length);
    v[i] = mutateValue(r, v[i], depth + 1);
    return v;
  }
  if (v && typeof v === 'object' && !Array.isArray(v) && r.chance(0.4)) {
    const { type, ...rest } = v; // an object as its values (serde reads structs from arrays)
    return type === undefined ? Object.values(rest) : [type, ...Object.values(rest)];
  }
  if (typeof v === 'string' && r.chance(0.3)) return { [v]: null }; // enum-as-object form
  return randomValue(r, depth);
}

/** Text-level damage to a JSON text. */
function mutateText(r, s) {
  switch (r.below(9)) {
    case 0: return s.slice(0, r.below(s.length + 1)); // truncated
    case 1: { const i = r.below(s.length + 1); return s.slice(0, i) + r.pick(['{', '}', '[', ']', '"', ',', ':', '\\', 'null', '\u0000', '\ud800']) + s.slice(i); }
    case 2: return s.replace(/^\{/, '{"room":"dup",'); // duplicate key
    case 3: return s.replace(/\d+/, r.pick(['1e400', '-0', '18446744073709551616', '1.0', '0x10', 'NaN', 'Infinity', '--1']));
    case 4: { const n = r.pick([10, 129, 1000, 20_000]); return '['.repeat(n) + s + ']'.repeat(n); }
    case 5: return s.replace(/"([a-z]+)"/, (_, k) => `"\\u00${k.charCodeAt(0).toString(16)}${k.slice(1)}"`); // escaped key
    case 6: return s + r.pick([',', ']', ' ', '\n', '}']); // trailing junk
    case 7: return s.replace(/"/, "'");
    default: return s;
  }
}

/** The JSON body of a Socket.IO event packet (after type, namespace and ack id). */
function eventBody(r, ctx) {
  return r.weighted([
    [800, () => { // a known event with a mutated valid payload
      const ev = r.pick(EVENTS);
      let p = template(r, ev, ctx);
      for (let i = r.below(3); i > 0; i--) p = mutateValue(r, p);
      const args = r.weighted([[8, [p]], [1, []], [1, [p, randomValue(r)]], [1, [p, p, p, p]]]);
      const text = JSON.stringify([ev, ...args]);
      return r.chance(0.05) ? mutateText(r, text) : text;
    }],
    // The rest mostly gets the connection closed (the server cannot read an
    // event name): rarer, so connections live long enough to reach handlers.
    [140, () => JSON.stringify([r.pick(EVENTS), randomValue(r)])], // non-object payloads
    [6, () => JSON.stringify([randomValue(r), ...Array.from({ length: r.below(3) }, () => randomValue(r))])], // odd names
    [4, () => JSON.stringify(randomValue(r))], // not an array
    [8, () => mutateText(r, mutateText(r, JSON.stringify([r.pick(EVENTS), template(r, r.pick(EVENTS), ctx)])))],
    [2, () => r.bytes(1 + r.below(64)).toString('latin1')],
    [4, () => `["${r.pick(EVENTS)}",${'{"a":'.repeat(200 + r.below(3000))}1${'}'.repeat(200 + r.below(3000))}]`],
    [4, () => `["chat",{"room":"${ctx.ownRoom}","text":"${'x'.repeat(MAX_MESSAGE_BYTES + r.below(10))}"}]`],
    [1, () => ''],
  ])();
}

/** A Socket.IO packet: type, attachments, namespace, ack id, data. */
function sioPacket(r, ctx) {
  const type = r.weighted([[400, '2'], [8, '0'], [2, '1'], [8, '3'], [1, '4'], [12, '5'], [4, '6'], [2, r.pick(['7', '8', '9', 'x', ' ', '', '-'])]]);
  let att = '';
  if (type === '5' || type === '6' || r.chance(0.02)) {
    att = r.weighted([[12, '1-'], [6, '2-'], [4, '0-'], [1, '10-'], [1, '100000-'], [1, '18446744073709551616-'], [1, '-'], [1, 'x-'], [1, ''], [1, '1']]);
    ctx.expectAttachments = Math.min(Number.parseInt(att, 10) || 0, 20);
  }
  const nsp = r.chance(0.015)
    ? r.pick(['/', '/,', '/admin,', '//,', '/é,', '/socket.io,', `/${edgeString(r)},`, '/' + 'n'.repeat(5000) + ','])
    : '';
  const ack = r.chance(0.6)
    ? r.weighted([[60, String(1 + r.below(10_000))], [1, '0'], [1, '9223372036854775807'], [1, '9223372036854775808'],
      [1, '99999999999999999999999999'], [1, '-1'], [1, '1.5'], [1, '007'], [1, '4294967296']])
    : '';
  let data;
  if (type === '0') data = r.pick(['', '{}', '{"token":"x"}', JSON.stringify(randomValue(r)), 'null', '{']);
  else if (type === '3' || type === '6') data = JSON.stringify(r.chance(0.5) ? [randomValue(r)] : randomValue(r));
  else if (type === '5' && r.chance(0.7)) {
    data = JSON.stringify([r.pick(EVENTS), { ...template(r, 'chat', ctx), text: { _placeholder: true, num: r.pick([0, 1, -1, 99, 'x']) } }]);
  } else data = eventBody(r, ctx);
  return type + att + nsp + ack + data;
}

/** One Engine.IO-over-WebSocket frame: [data, {binary}]. */
function wsFrame(r, ctx) {
  if (ctx.expectAttachments > 0 && r.chance(0.95)) {
    ctx.expectAttachments -= 1;
    return [r.bytes(r.below(2048)), { binary: true }];
  }
  return r.weighted([
    [300, () => ['4' + sioPacket(r, ctx), { binary: false }]],
    [4, () => [r.pick(['0', '1', '2', '3', '5', '6', '7', '8', '9', 'b', '']) + r.pick(['', 'probe', JSON.stringify(randomValue(r)), r.bytes(8).toString('latin1')]), { binary: false }]],
    [3, () => [r.bytes(1 + r.below(4096)), { binary: true }]],
    [2, () => [Buffer.concat([Buffer.from('42["chat",{"room":"x","text":"'), r.bytes(1 + r.below(16)), Buffer.from('"}]')]), { binary: false }]], // invalid UTF-8 text
    [2, () => ['b' + r.bytes(r.below(64)).toString('base64'), { binary: false }]],
    [1, () => ['4' + sioPacket(r, ctx).repeat(2), { binary: false }]],
    [1, () => ['4' + '2' + JSON.stringify(['chat', { room: 'x', text: 'y'.repeat(r.pick([4 * MAX_MESSAGE_BYTES + 1, 3 * MAX_MESSAGE_BYTES])) }]), { binary: false }]],
  ])();
}

/** One Engine.IO packet inside a polling payload. */
function pollPacket(r, ctx) {
  return r.weighted([
    [80, () => '4' + sioPacket(r, ctx)],
    [6, () => 'b' + (r.chance(0.7) ? r.bytes(r.below(256)).toString('base64') : edgeString(r))],
    [4, () => r.pick(['0', '1', '2', '3', '5', '6', '7', '9', '', '2probe'])],
    [4, () => `${r.pick(['9999999999', '18446744073709551616', '3', '-1', '0'])}:42["chat",{}]`], // EIO3 length prefixes
    [3, () => r.bytes(1 + r.below(128)).toString('latin1')],
    [2, () => '4' + sioPacket(r, ctx).replace(/\u001e/g, '')],
  ])();
}

// ---------------------------------------------------------------------------
// The fuzzing connections.

const stats = {
  seed: SEED,
  frames: 0,
  wsFrames: 0,
  pollPackets: 0,
  pollRequests: 0,
  rawHttpRequests: 0,
  opened: { ws: 0, polling: 0, upgrade: 0, raw: 0 },
  refused: { ws: 0, polling: 0 },
  closedByServer: { ws: 0, polling: 0 },
  closeCodes: {},
  framesPerWs: { '1': 0, '2-9': 0, '10-49': 0, '50+': 0 },
  httpStatus: {},
  limitedBackoffs: 0,
  aliveAtEnd: 0,
  silentAtEnd: 0,
  acks: 0,
  errorCodes: {},
  bystander: { chats: 0, signals: 0 },
};

function count(obj, key) { obj[key] = (obj[key] ?? 0) + 1; }


/** Frames of the connections in flight, dumped when the server panics. */
const inFlight = new Map();

function record(conn, frame) {
  stats.frames += 1;
  const log = inFlight.get(conn);
  if (log) log.push(typeof frame === 'string' ? frame.slice(0, 20_000) : `<binary ${Buffer.from(frame).toString('base64').slice(0, 20_000)}>`);
}

let server;
let panicReport = null;

function checkPanic() {
  if (panicReport || !server) return;
  const p = server.panics();
  if (p.length || !server.alive) {
    const file = path.join(tmpdir(), `wirefuzz-panic-${SEED}-${Date.now()}.json`);
    writeFileSync(file, JSON.stringify({ seed: SEED, panics: p, exit: server.exit, inFlight: Object.fromEntries(inFlight) }, null, 1));
    panicReport = `server ${server.alive ? 'panicked' : 'exited'} (seed ${SEED}); frames of the connections in flight: ${file}\n${p.join('\n')}`;
  }
}

function noteReply(text) {
  if (typeof text !== 'string' || !text.startsWith('43')) return;
  stats.acks += 1;
  const m = /"code":"([a-z_]+)"/.exec(text);
  if (m) count(stats.errorCodes, m[1]);
}

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));

/** A raw WebSocket Engine.IO session. */
async function wsSession(r, conn, ctx) {
  const query = r.weighted([[30, 'EIO=4&transport=websocket'], [1, 'EIO=3&transport=websocket'],
    [1, 'transport=websocket'], [1, 'EIO=4&transport=polling'], [1, `EIO=4&transport=websocket&sid=${r.pick(['nope', 'A'.repeat(16)])}`]]);
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/socket.io/?${query}`, { maxPayload: 64 * 1024 * 1024 });
  let closed = false;
  let weClosed = false;
  let sent = 0;
  const frames = [];
  const waiters = new Set();
  ws.on('message', (data, isBinary) => {
    const s = isBinary ? data : data.toString('utf8');
    if (s === '2' && !ctx.mute) ws.send('3');
    noteReply(s);
    frames.push(s);
    for (const w of [...waiters]) w(s);
  });
  const whenClosed = new Promise((res) => ws.on('close', (code) => {
    closed = true;
    if (!weClosed) {
      stats.closedByServer.ws += 1;
      count(stats.closeCodes, code);
    }
    for (const w of [...waiters]) w(null);
    res();
  }));
  ws.on('error', () => { /* surfaced as close */ });
  ws.on('unexpected-response', (_req, res) => {
    count(stats.httpStatus, `ws ${res.statusCode}`);
    if (res.statusCode === 429) ctx.limited = true;
    res.resume();
    ws.terminate();
  });
  const waitFor = (pred, ms) => {
    const found = frames.find((f) => typeof f === 'string' && pred(f));
    if (found) return Promise.resolve(found);
    return new Promise((res) => {
      const t = setTimeout(() => { waiters.delete(w); res(null); }, ms);
      const w = (f) => {
        if (f === null || (typeof f === 'string' && pred(f))) { clearTimeout(t); waiters.delete(w); res(f); }
      };
      waiters.add(w);
    });
  };
  const send = (data, opts) => {
    if (closed || ws.readyState !== WebSocket.OPEN) return false;
    try { ws.send(data, opts); } catch { return false; }
    record(conn, data);
    stats.wsFrames += 1;
    sent += 1;
    return true;
  };

  const open = await waitFor((f) => f.startsWith('0{'), 5000);
  if (!open) {
    stats.refused.ws += 1;
    ws.terminate();
    await whenClosed;
    return;
  }
  stats.opened.ws += 1;
  ctx.mute = r.chance(0.05); // a few never answer pings
  if (r.chance(0.9)) {
    send('40');
    const c = await waitFor((f) => f.startsWith('40'), 3000);
    if (c) {
      try { ctx.sid = JSON.parse(c.slice(2)).sid; } catch { /* odd */ }
      if (r.chance(0.6)) { // be in a room, so signal/chat/leave reach room state
        const id = 900_000 + r.below(1000);
        send(`42${id}${JSON.stringify(['join', { room: r.chance(0.3) ? ctx.bystanderRoom : ctx.ownRoom, name: 'Fuzz' }])}`);
        const a = await waitFor((f) => f.startsWith(`43${id}[`), 3000);
        try { ctx.selfId = JSON.parse(a.slice(2 + String(id).length))[0]?.self?.id; } catch { /* refused or gone */ }
      }
    }
  }
  const n = 1 + r.below(120);
  for (let i = 0; i < n && !closed && stats.frames < FRAMES; i++) {
    const [data, opts] = wsFrame(r, ctx);
    send(data, opts);
    // Yield often, so a close by the server is seen before many more frames.
    if (ws.bufferedAmount > 1 << 20 || i % 4 === 3) await sleep(0);
  }
  // Does it still answer? (Not required: a connection the server closed,
  // or one left waiting for binary attachments, is a fine outcome.)
  if (!closed) {
    const id = 990_000 + r.below(1000);
    send(`42${id}["leave",{"room":"zz-never"}]`);
    const a = await waitFor((f) => f.startsWith(`43${id}[`), 3000);
    if (a) stats.aliveAtEnd += 1; else if (!closed) stats.silentAtEnd += 1;
  }
  weClosed = !closed;
  count(stats.framesPerWs, sent <= 1 ? '1' : sent < 10 ? '2-9' : sent < 50 ? '10-49' : '50+');
  if (r.chance(0.5)) ws.close(); else ws.terminate();
  await Promise.race([whenClosed, sleep(3000).then(() => ws.terminate())]);
}

/** An HTTP long-polling Engine.IO session (sometimes upgraded to WebSocket). */
async function pollingSession(r, conn, ctx) {
  const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
  const req = async (url, init = {}, timeoutMs = 3000) => {
    stats.pollRequests += 1;
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      const body = await res.text();
      count(stats.httpStatus, `${init.method ?? 'GET'} ${res.status}`);
      return { status: res.status, body };
    } catch (e) {
      count(stats.httpStatus, `${init.method ?? 'GET'} ${e.name === 'TimeoutError' ? 'timeout' : 'network error'}`);
      return { status: 0, body: '' };
    }
  };
  const hsQuery = r.weighted([[20, ''], [1, '&b64=1'], [1, '&t=abc'], [1, '&j=0']]);
  const hs = await req(base + hsQuery);
  if (hs.status === 429) ctx.limited = true;
  if (hs.status !== 200 || !hs.body.startsWith('0{')) { stats.refused.polling += 1; return; }
  stats.opened.polling += 1;
  let sid;
  try { sid = JSON.parse(hs.body.slice(1)).sid; } catch { return; }
  const url = `${base}&sid=${encodeURIComponent(sid)}`;
  const post = (body) => req(url, { method: 'POST', body, headers: { 'content-type': r.pick(['text/plain;charset=UTF-8', 'application/octet-stream', 'application/json']) } });
  const poll = async (ms) => {
    const g = await req(url, {}, ms);
    for (const p of g.body.split('\x1e')) {
      noteReply(p.startsWith('4') ? p.slice(1) : p);
      if (p.startsWith('40{')) { try { ctx.sid = JSON.parse(p.slice(2)).sid; } catch { /* odd */ } }
    }
    return g;
  };
  let gone = false;
  const noteGone = (s) => { if (s.status >= 400 && !gone) { gone = true; stats.closedByServer.polling += 1; } };
  if (r.chance(0.9)) noteGone(await post('40'));
  const batches = 1 + r.below(12);
  for (let b = 0; b < batches && !gone && stats.frames < FRAMES; b++) {
    const packets = Array.from({ length: 1 + r.below(8) }, () => pollPacket(r, ctx));
    for (const p of packets) { record(conn, p); stats.pollPackets += 1; }
    let body = packets.join(r.chance(0.95) ? '\x1e' : r.pick(['\x1e\x1e', '', '\n']));
    if (r.chance(0.03)) body = '4' + '2["chat",{"room":"x","text":"' + 'z'.repeat(4 * MAX_MESSAGE_BYTES) + '"}]';
    // Invalid UTF-8 somewhere in the body (fetch sends a Buffer as is).
    if (r.chance(0.04)) body = Buffer.concat([Buffer.from(body), Buffer.from(r.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80]])), Buffer.from('\x1e42["chat",{}]')]);
    noteGone(await post(body));
    if (gone) break;
    switch (r.below(10)) {
      case 0: { // two polls at once: engine.io closes the session
        const [a, c] = await Promise.all([poll(1500), poll(1500)]);
        noteGone(a); noteGone(c);
        break;
      }
      case 1: noteGone(await req(url, { method: r.pick(['PUT', 'DELETE', 'PATCH']), body: 'x' })); break;
      default: noteGone(await poll(r.chance(0.5) ? 300 : 1500));
    }
  }
  if (!gone && r.chance(0.15)) { // upgrade this session, then misbehave on the WebSocket
    stats.opened.upgrade += 1;
    const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket&sid=${encodeURIComponent(sid)}`);
    ws.on('error', () => {});
    ws.on('message', (d, isBinary) => noteReply(isBinary ? '' : d.toString()));
    const opened = await new Promise((res) => { ws.once('open', () => res(true)); ws.once('close', () => res(false)); setTimeout(() => res(false), 3000); });
    if (opened) {
      for (const f of r.pick([['2probe', '5'], ['2probe'], ['5'], ['2probe', '5', '2probe', '5'], ['3probe', '6']])) { ws.send(f); record(conn, f); stats.wsFrames += 1; }
      for (let i = r.below(20); i > 0; i--) { const [d, o] = wsFrame(r, ctx); ws.send(d, o); record(conn, d); stats.wsFrames += 1; }
      await sleep(50);
    }
    ws.terminate();
  }
  if (!gone) await post('1'); // close; the server reaps the others by ping timeout
}

/** Raw HTTP requests with lying framing, straight to the socket.io path. */
async function rawHttp(r, conn, ctx) {
  stats.opened.raw += 1;
  const { port } = server;
  const head = r.pick([
    `POST /socket.io/?EIO=4&transport=polling&sid=nope HTTP/1.1\r\nHost: x\r\nContent-Length: ${r.pick(['99999999999', '18446744073709551616', '-1', '5', 'abc'])}\r\n\r\n42["chat"`,
    'POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n42',
    'POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\n42[\r\n0\r\n\r\n',
    `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: ${r.pick(['13', '8', '99'])}\r\nSec-WebSocket-Key: ${r.pick(['dGhlIHNhbXBsZSBub25jZQ==', '', 'x'])}\r\n\r\n\x81\xff`,
    `GET /socket.io/?${r.bytes(64).toString('latin1')} HTTP/1.1\r\nHost: x\r\n\r\n`,
    `GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n${'X-Junk: a\r\n'.repeat(200)}\r\n`,
  ]);
  record(conn, head);
  stats.rawHttpRequests += 1;
  await new Promise((res) => {
    const s = net.connect(port, '127.0.0.1', () => { s.write(Buffer.from(head, 'latin1')); setTimeout(() => s.destroy(), 100 + r.below(400)); });
    s.on('data', (d) => {
      const m = /^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'));
      if (m) count(stats.httpStatus, `raw ${m[1]}`);
      if (m?.[1] === '429') ctx.limited = true;
    });
    s.on('error', () => {});
    s.on('close', res);
  });
}

async function worker(w, ctx0) {
  for (let k = 0; stats.frames < FRAMES && !panicReport; k++) {
    const conn = `${w}.${k}`;
    const r = rng(mix(SEED, w, k));
    const ctx = { ...ctx0, ownRoom: `wf-${w}-${k % 4}`, expectAttachments: 0, selfId: null };
    inFlight.set(conn, []);
    try {
      const kind = r.weighted([[70, 'ws'], [25, 'polling'], [5, 'raw']]);
      if (kind === 'ws') await wsSession(r, conn, ctx);
      else if (kind === 'polling') await pollingSession(r, conn, ctx);
      else await rawHttp(r, conn, ctx);
    } finally {
      checkPanic();
      if (DEBUG) allFrames.set(conn, { sid: ctx.sid, frames: inFlight.get(conn) });
      inFlight.delete(conn);
    }
    // Over the per-address limit: back off instead of spinning on 429s.
    if (ctx.limited) { stats.limitedBackoffs += 1; await sleep(200); }
  }
}

// ---------------------------------------------------------------------------

before(async () => {
  const limit = MAX_CONNS === undefined ? [] : ['--max-conns-per-ip', MAX_CONNS];
  server = await startServer(['--ping-interval-ms', String(PING_MS), '--ping-timeout-ms', String(PING_MS), ...limit],
    DEBUG ? { env: { RUST_LOG: 'signal_server=debug' } } : {});
});
after(async () => {
  closeAll();
  await server?.stop();
});

async function metric(name) {
  const m = await server.get('/metrics');
  const line = m.body.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

function rssKb() {
  try {
    const s = readFileSync(`/proc/${server.proc.pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(s)?.[1]);
  } catch { return NaN; }
}

// Regressions of what the fuzzer found (docs/fuzzing.md), deterministic
// enough to fail reliably before their fixes.

it('regression: `40` followed at once by an unparsable packet leaks no connection from the gauge', async () => {
  for (let i = 0; i < 300; i++) {
    const r = new RawClient(server.url);
    if (i % 3 === 0) await r.open(); else await r.connect();
    r.send(i % 3 === 2 ? '40{"a":1}' : '40');
    if (i % 5 === 4) r.close(); else r.send('4x');
    await Promise.race([r.whenClosed, sleep(3000)]);
    r.close();
  }
  await eventually(async () => assert.equal(await metric('signal_connections'), 0), 10_000, 100);
});

it('regression: a polling POST that breaks its session, then connects and joins, leaves no member behind', async () => {
  const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
  const text = async (url, init) => (await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })).text();
  for (let t = 0; t < 20; t++) {
    const sid = JSON.parse((await text(base)).slice(1)).sid;
    const url = `${base}&sid=${sid}`;
    await text(url, { method: 'POST', body: '40' });
    await text(url); // the connect answer
    // `4x` closes the session; Engine.IO reads the rest of the POST anyway,
    // and announces the disconnect on another task meanwhile.
    const joins = Array.from({ length: 200 }, (_, i) => `42["join",{"room":"ghost-${t}-${i}","name":"g"}]`);
    await text(url, { method: 'POST', body: ['4x', '40', ...joins].join('\x1e') });
  }
  await eventually(async () => {
    assert.equal(await metric('signal_connections'), 0, 'connections');
    assert.equal(await metric('signal_peers'), 0, 'members left behind');
    assert.equal(await metric('signal_rooms'), 0, 'rooms left behind');
  }, 10_000, 100);
  await server.assertHealthy();
});

it(`wire fuzzing (seed ${SEED}, ${FRAMES} frames): bystanders unharmed, server up, state unchanged`, async (t) => {
  t.diagnostic(`WIREFUZZ_SEED=${SEED} WIREFUZZ_FRAMES=${FRAMES} WIREFUZZ_WORKERS=${WORKERS}`);
  console.log(`wirefuzz: WIREFUZZ_SEED=${SEED} WIREFUZZ_FRAMES=${FRAMES}`);
  const started = Date.now();
  const room = roomName('wf-bystanders');
  const a = await connect(server.url, { transports: ['websocket'] });
  const b = await connect(server.url); // polling, then upgraded
  let disconnects = 0;
  for (const s of [a, b]) s.on('disconnect', (why) => { disconnects += 1; console.log(`bystander disconnected: ${why}`); });
  const idA = (await join(a, room, 'Ana')).self.id;
  const idB = (await join(b, room, 'Bo')).self.id;
  const ctx0 = { bystanderRoom: room, bystanderIds: [idA, idB], msgIds: [] };

  // Bystanders: paced chat with acks (well under the rate limit) and signals;
  // each message must arrive, in order, from its sender.
  let fuzzing = true;
  const chatter = async (from, to, fromId, toId, tag) => {
    let n = 0;
    while (fuzzing || n < 10) {
      const text = `${tag}${n}`;
      const ack = await emitAck(from, 'chat', { room, text }, 15_000);
      assertOk(ack, `bystander chat ${text}`);
      ctx0.msgIds.push(ack.id);
      if (ctx0.msgIds.length > 50) ctx0.msgIds.shift();
      const got = await nextEvent(to, 'chat', 15_000, (p) => p?.from?.id === fromId);
      assert.equal(got.text, text, `bystander chat order/content (${tag})`);
      stats.bystander.chats += 1;
      if (n % 4 === 0) {
        const data = { type: 'candidate', candidate: { candidate: `candidate:${n} 1 udp 1 127.0.0.1 ${1000 + (n % 60000)} typ host`, sdpMid: '0', sdpMLineIndex: 0 } };
        assertOk(await emitAck(from, 'signal', { room, to: toId, data }, 15_000), `bystander signal ${tag}${n}`);
        const sig = await nextEvent(to, 'signal', 15_000, (p) => p?.from === fromId);
        assert.deepEqual(sig.data, data, 'bystander signal content');
        stats.bystander.signals += 1;
      }
      n += 1;
      await sleep(25);
    }
    return n;
  };
  const chatters = Promise.all([chatter(a, b, idA, idB, 'a'), chatter(b, a, idB, idA, 'b')]);
  chatters.catch(() => {}); // awaited below; keep an early failure from going unhandled

  const rssBefore = rssKb();
  // Long runs say how far they are.
  const progress = FRAMES > 20_000 ? setInterval(() => {
    console.log(`wirefuzz: ${stats.frames}/${FRAMES} frames, ${stats.opened.ws + stats.opened.polling + stats.opened.raw} connections, ${stats.bystander.chats} bystander chats, rss ${rssKb()} kB, ${Math.round((Date.now() - started) / 1000)} s`);
  }, 30_000) : null;
  try {
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w, ctx0)));
  } finally {
    fuzzing = false;
    clearInterval(progress);
  }
  const fuzzMs = Date.now() - started;
  if (panicReport) assert.fail(panicReport);
  await chatters;

  assert.equal(disconnects, 0, 'the bystanders were never disconnected');
  assert.ok(a.connected && b.connected, 'bystanders still connected');
  await server.assertHealthy();

  // Every fuzzing session ends (closed, or reaped by the ping timeout):
  // only the two bystanders remain, in one room.
  await eventually(async () => {
    if (DEBUG) {
      const log = server.stderr.replace(/\x1b\[[0-9;]*m/g, '');
      const up = new Set([...log.matchAll(/ connected sid=([A-Za-z0-9_-]+)/g)].map((m) => m[1]));
      for (const m of log.matchAll(/ disconnected sid=([A-Za-z0-9_-]+)/g)) up.delete(m[1]);
      const leaked = [...allFrames];
      writeFileSync(path.join(tmpdir(), 'wirefuzz-server.log'), log);
      writeFileSync(path.join(tmpdir(), 'wirefuzz-leaked.json'), JSON.stringify({ up: [...up], leaked }, null, 1));
    }
    assert.equal(await metric('signal_connections'), 2, 'only the bystanders are connected');
    assert.equal(await metric('signal_rooms'), 1, 'only the bystanders\' room is left');
    assert.equal(await metric('signal_peers'), 2, 'only the bystanders are in a room');
  }, 4 * PING_MS + 10_000, 250);

  // A fresh joiner sees exactly the bystanders, in join order. It needs a
  // session slot of this address: sessions that closed unconnected hold
  // theirs up to socketioxide's 45 s connect timeout; a slot still held
  // after that would be a leak.
  await eventually(async () => {
    const res = await fetch(`${server.url}/socket.io/?EIO=4&transport=polling`, { signal: AbortSignal.timeout(5000) });
    const body = await res.text();
    assert.notEqual(res.status, 429, 'the per-address session limit is still reached');
    const sid = JSON.parse(body.slice(1)).sid;
    await (await fetch(`${server.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: 'POST', body: '1' })).text();
  }, 60_000, 500);
  const c = await connect(server.url, { transports: ['websocket'] });
  const ack = await join(c, room, 'Cy');
  assert.deepEqual(ack.peers.map((p) => p.id), [idA, idB], `peers after fuzzing: ${short(ack.peers)}`);
  assert.equal((await nextEvent(a, 'peer-joined', 5000, (p) => p.id === ack.self.id)).name, 'Cy');
  await server.assertHealthy();

  const summary = {
    ...stats,
    ms: Date.now() - started,
    fuzzMs,
    rssKb: { before: rssBefore, after: rssKb() },
    connectionsTotal: await metric('signal_connections_total'),
  };
  if (DEBUG) writeFileSync(path.join(tmpdir(), 'wirefuzz-stats.json'), JSON.stringify(summary, null, 1));
  console.log(`wirefuzz summary: ${JSON.stringify(summary)}`);
  t.diagnostic(`wirefuzz summary: ${JSON.stringify(summary)}`);
});

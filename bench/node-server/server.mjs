#!/usr/bin/env node
// A Node.js socket.io signaling server implementing shared/PROTOCOL.md (plus
// the extensions of docs/protocol-extensions.md), written the way a Node
// developer would ship it: socket.io 4.x with its in-memory adapter, plain
// Maps for room state, socket.io rooms for broadcasts. It exists to be
// benchmarked side by side with the Rust signal-server, and takes the same
// command-line flags for what both implement (see README.md).

import { createHash, randomUUID, timingSafeEqual, createHmac } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Server } from 'socket.io';

// ---------------------------------------------------------------------------
// Configuration: `--flag value` (or `--flag=value`), else the env var in caps.

const FLAGS = {
  host: { env: 'HOST' },
  port: { env: 'PORT', int: true },
  'static-dir': { env: 'STATIC_DIR', default: 'dist' },
  'max-peers-per-room': { env: 'MAX_PEERS_PER_ROOM', int: true, default: 100 },
  'history-limit': { env: 'HISTORY_LIMIT', int: true, default: 100 },
  'max-message-bytes': { env: 'MAX_MESSAGE_BYTES', int: true, default: 65536 },
  'rate-limit-burst': { env: 'RATE_LIMIT_BURST', int: true, default: 300 },
  'rate-limit-per-sec': { env: 'RATE_LIMIT_PER_SEC', int: true, default: 100 },
  'listen-backlog': { env: 'LISTEN_BACKLOG', int: true, default: 4096 },
  'stun-urls': { env: 'STUN_URLS', list: true, default: '' },
  'turn-urls': { env: 'TURN_URLS', list: true, default: '' },
  'turn-secret': { env: 'TURN_SECRET' },
  'turn-ttl-secs': { env: 'TURN_TTL_SECS', int: true, default: 86400 },
  'cors-origins': { env: 'CORS_ORIGINS', list: true, default: '' },
};

function parseConfig(argv, env) {
  const given = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      console.warn(`signal-server (node): ignoring unexpected argument ${JSON.stringify(arg)}`);
      continue;
    }
    let [name, value] = arg.slice(2).split(/=(.*)/s, 2);
    if (value === undefined && i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    if (!Object.hasOwn(FLAGS, name)) {
      console.warn(`signal-server (node): ignoring unknown flag --${name}`);
      continue;
    }
    if (value === undefined) fail(`--${name} needs a value`);
    given[name] = value;
  }
  const config = {};
  for (const [name, spec] of Object.entries(FLAGS)) {
    let raw = given[name] ?? env[spec.env] ?? spec.default;
    if (raw !== undefined && spec.int) {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
      raw = n;
    }
    if (spec.list) raw = String(raw).split(',').map((s) => s.trim()).filter(Boolean);
    config[name] = raw;
  }
  config.port ??= 3000;
  // Heroku sets PORT and expects the app on every interface.
  config.host ??= env.PORT !== undefined ? '0.0.0.0' : '127.0.0.1';
  return config;
}

function fail(message) {
  console.error(`signal-server (node): ${message}`);
  process.exit(2);
}

const config = parseConfig(process.argv.slice(2), process.env);
const MAX_PEERS = config['max-peers-per-room'];
const HISTORY_LIMIT = config['history-limit'];
const MAX_MESSAGE_BYTES = config['max-message-bytes'];
const RATE_BURST = config['rate-limit-burst'];
const RATE_PER_SEC = config['rate-limit-per-sec'];

// ---------------------------------------------------------------------------
// Errors and validation

/** A failed event: answered `{ok: false, error: {code, message}}`. */
class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

const badRequest = (message) => new ProtocolError('bad_request', message);
const notInRoom = () => new ProtocolError('not_in_room', 'you have not joined this room');
const unknownPeer = () => new ProtocolError('unknown_peer', 'no such peer in this room');

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const CONTROL_RE = /\p{Cc}/u;

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);

/** Length in Unicode code points (what the protocol's limits count). */
function codePoints(s) {
  let n = 0;
  for (const _ of s) n++; // eslint-disable-line no-unused-vars
  return n;
}

function roomOf(p) {
  if (typeof p.room !== 'string' || !ROOM_RE.test(p.room)) {
    throw badRequest("invalid payload: room must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'");
  }
  return p.room;
}

function stringField(p, key) {
  if (typeof p[key] !== 'string') throw badRequest(`invalid payload: ${key} must be a string`);
  return p[key];
}

function boolField(p, key, fallback) {
  const v = p[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'boolean') throw badRequest(`invalid payload: ${key} must be a boolean`);
  return v;
}

function displayName(p) {
  const name = typeof p.name === 'string' ? p.name.trim() : '';
  const n = codePoints(name);
  if (n < 1 || n > 32 || CONTROL_RE.test(name)) {
    throw badRequest('invalid payload: name must be 1-32 characters after trimming');
  }
  return name;
}

function chatText(p) {
  const text = stringField(p, 'text');
  // UTF-16 length bounds the code point count from above.
  if (text.length === 0 || (text.length > 2000 && codePoints(text) > 2000)) {
    throw badRequest('invalid payload: text must be 1-2000 characters');
  }
  return text;
}

/** `null`/absent/"" mean no password. */
function password(p) {
  const v = p.password;
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw badRequest('invalid payload: password must be a string');
  if (codePoints(v) > 128) throw badRequest('invalid payload: password must be at most 128 characters');
  return v;
}

const optString = (v) => v === undefined || v === null || typeof v === 'string';

/**
 * A SIGNAL of PROTOCOL.md, rebuilt from its known fields only, so nothing
 * but what the protocol defines is relayed.
 */
function signalData(d) {
  if (!isObject(d)) throw badRequest('invalid payload: data must be an object');
  switch (d.type) {
    case 'offer':
    case 'answer':
      if (typeof d.sdp !== 'string') throw badRequest('invalid payload: data.sdp must be a string');
      if (d.sdp.trim() === '') throw badRequest('sdp must not be empty');
      return { type: d.type, sdp: d.sdp };
    case 'candidate': {
      const c = d.candidate;
      if (c === undefined || c === null) return { type: 'candidate', candidate: null };
      const idx = c?.sdpMLineIndex;
      if (!isObject(c) || typeof c.candidate !== 'string' || !optString(c.sdpMid)
        || !(idx === undefined || idx === null || (Number.isInteger(idx) && idx >= 0 && idx <= 0xffff))
        || !optString(c.usernameFragment)) {
        throw badRequest('invalid payload: data.candidate must be an RTCIceCandidateInit or null');
      }
      const candidate = { candidate: c.candidate, sdpMid: c.sdpMid ?? null, sdpMLineIndex: idx ?? null };
      if (typeof c.usernameFragment === 'string') candidate.usernameFragment = c.usernameFragment;
      return { type: 'candidate', candidate };
    }
    case 'bye':
      return { type: 'bye' };
    default:
      throw badRequest('invalid payload: data.type must be offer, answer, candidate or bye');
  }
}

const sha256 = (s) => createHash('sha256').update(s, 'utf8').digest();

// ---------------------------------------------------------------------------
// Room state. Single process, single thread: plain Maps, no locks.
//
// room: {mode, passwordHash: Buffer|null, peers: Map<peerId, Peer> (join order), history: ChatMessage[]}
// peer: {id, name, socket, media: {audio, video, screen}|null}
// Each socket also keeps its own memberships: socket.data.rooms: Map<roomName, Peer>.

/** @type {Map<string, {mode: string, passwordHash: Buffer|null, peers: Map<string, any>, history: any[]}>} */
const rooms = new Map();

/** The sender's membership in `room`, or not_in_room. */
function membership(socket, room) {
  const me = socket.data.rooms.get(room);
  if (!me) throw notInRoom();
  return me;
}

/** The addressed peer of a signal / peer-ping, checked like the Rust server. */
function route(socket, room, to) {
  const me = membership(socket, room);
  if (to === me.id) throw badRequest('cannot signal yourself');
  const target = rooms.get(room).peers.get(to);
  if (!target) throw unknownPeer();
  return { me, target };
}

function leaveRoom(socket, room) {
  const me = membership(socket, room);
  socket.data.rooms.delete(room);
  const r = rooms.get(room);
  r.peers.delete(me.id);
  if (r.peers.size === 0) rooms.delete(room);
  socket.leave(room);
  socket.to(room).emit('peer-left', { room, id: me.id });
}

// ---------------------------------------------------------------------------
// Event handlers: each takes the socket and the payload (a plain object),
// returns the success ack's fields or throws a ProtocolError.

const handlers = {
  join(socket, p) {
    const room = roomOf(p);
    const name = displayName(p);
    if (p.mode !== undefined && p.mode !== null && p.mode !== 'mesh' && p.mode !== 'sfu') {
      throw badRequest('invalid payload: mode must be "mesh" or "sfu"');
    }
    const pw = password(p);
    let r = rooms.get(room);
    if (!r && p.mode === 'sfu') {
      throw badRequest('SFU mode is not enabled on this server; join with mode "mesh"');
    }
    // The ack: everyone else in join order (with their media state, once
    // announced), and the history, oldest first.
    const ack = (me) => ({
      self: { id: me.id, name: me.name },
      room: { id: room, mode: r.mode },
      peers: [...r.peers.values()]
        .filter((peer) => peer !== me)
        .map((peer) => (peer.media ? { id: peer.id, name: peer.name, media: peer.media } : { id: peer.id, name: peer.name })),
      history: r.history.slice(),
    });
    const already = socket.data.rooms.get(room);
    if (already) return ack(already); // idempotent: same id, no second peer-joined
    if (r) {
      if (r.passwordHash && (pw === null || !timingSafeEqual(r.passwordHash, sha256(pw)))) {
        throw new ProtocolError('unauthorized', 'wrong or missing room password');
      }
      if (r.peers.size >= MAX_PEERS) throw new ProtocolError('room_full', `room is full (${MAX_PEERS} peers)`);
    } else {
      if (MAX_PEERS === 0) throw new ProtocolError('room_full', 'room is full (0 peers)');
      r = { mode: 'mesh', passwordHash: pw === null ? null : sha256(pw), peers: new Map(), history: [] };
      rooms.set(room, r);
    }
    const me = { id: randomUUID(), name, socket, media: null };
    const reply = ack(me);
    r.peers.set(me.id, me);
    socket.data.rooms.set(room, me);
    socket.join(room);
    socket.to(room).emit('peer-joined', { room, id: me.id, name });
    return reply;
  },

  leave(socket, p) {
    leaveRoom(socket, roomOf(p));
    return {};
  },

  signal(socket, p) {
    const room = roomOf(p);
    const to = stringField(p, 'to');
    const data = signalData(p.data);
    const { me, target } = route(socket, room, to);
    target.socket.emit('signal', { room, from: me.id, data });
    return {};
  },

  chat(socket, p) {
    const room = roomOf(p);
    const text = chatText(p);
    const me = membership(socket, room);
    const msg = { room, id: randomUUID(), from: { id: me.id, name: me.name }, text, ts: Date.now() };
    if (HISTORY_LIMIT > 0) {
      const { history } = rooms.get(room);
      history.push(msg);
      if (history.length > HISTORY_LIMIT) history.shift();
    }
    socket.to(room).emit('chat', msg);
    return { id: msg.id, ts: msg.ts };
  },

  typing(socket, p) {
    const room = roomOf(p);
    const typing = boolField(p, 'typing');
    const me = membership(socket, room);
    socket.to(room).emit('typing', { room, from: me.id, typing });
    return {};
  },

  // Extensions (docs/protocol-extensions.md).

  'media-state'(socket, p) {
    const room = roomOf(p);
    const media = { audio: boolField(p, 'audio'), video: boolField(p, 'video'), screen: boolField(p, 'screen', false) };
    const me = membership(socket, room);
    me.media = media;
    socket.to(room).emit('media-state', { room, from: me.id, ...media });
    return {};
  },

  'chat-receipt'(socket, p) {
    const room = roomOf(p);
    const id = stringField(p, 'id');
    const me = membership(socket, room);
    const r = rooms.get(room);
    const msg = r.history.findLast((m) => m.id === id);
    if (!msg) throw badRequest("no such message in the room's recent history");
    const author = r.peers.get(msg.from.id);
    if (!author) throw new ProtocolError('unknown_peer', "the message's author has left");
    if (author !== me) author.socket.emit('chat-receipt', { room, id, from: me.id });
    return {};
  },

  'peer-ping'(socket, p) {
    const room = roomOf(p);
    const to = stringField(p, 'to');
    const { seq } = p;
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffffffff) throw badRequest('invalid payload: seq must be a u32');
    const pong = boolField(p, 'pong', false);
    const { me, target } = route(socket, room, to);
    target.socket.emit('peer-ping', { room, from: me.id, seq, pong });
    return {};
  },
};

const EVENTS = new Set(Object.keys(handlers));

// ---------------------------------------------------------------------------
// HTTP: /healthz, /api/config, the static web client. socket.io handles
// /socket.io/ itself before this handler sees the request.

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'permissions-policy': 'camera=(self), microphone=(self), display-capture=(self)',
};

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

const corsOrigins = config['cors-origins'];

function corsHeaders(req) {
  const origin = req.headers.origin;
  if (!origin || corsOrigins.length === 0) return {};
  if (corsOrigins.includes('*')) return { 'access-control-allow-origin': '*' };
  return corsOrigins.includes(origin) ? { 'access-control-allow-origin': origin, vary: 'Origin' } : { vary: 'Origin' };
}

function iceServers() {
  const out = [];
  if (config['stun-urls'].length) out.push({ urls: config['stun-urls'] });
  if (config['turn-urls'].length) {
    const entry = { urls: config['turn-urls'] };
    const secret = config['turn-secret'];
    if (secret) {
      // coturn `use-auth-secret`: time-limited credentials.
      entry.username = `${Math.floor(Date.now() / 1000) + config['turn-ttl-secs']}:${randomUUID().replaceAll('-', '')}`;
      entry.credential = createHmac('sha1', secret).update(entry.username).digest('base64');
    }
    out.push(entry);
  }
  return out;
}

const staticRoot = path.resolve(config['static-dir']);

async function serveStatic(req, res, headers) {
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  } catch {
    return send(res, 400, headers, 'bad request');
  }
  const file = path.join(staticRoot, path.normalize(pathname));
  if (!file.startsWith(staticRoot)) return send(res, 404, headers, 'not found');
  const target = pathname.endsWith('/') ? path.join(file, 'index.html') : file;
  const info = await stat(target).catch(() => null);
  if (info?.isFile()) {
    res.writeHead(200, {
      ...headers,
      'content-type': MIME[path.extname(target)] ?? 'application/octet-stream',
      'content-length': info.size,
    });
    if (req.method === 'HEAD') return res.end();
    return createReadStream(target).on('error', () => res.destroy()).pipe(res);
  }
  // A path without an extension is a client route (/r/<room>): index.html.
  if (path.extname(pathname) !== '') return send(res, 404, headers, 'not found');
  const html = await readFile(path.join(staticRoot, 'index.html'), 'utf8').catch(() => null);
  if (html === null) {
    return send(res, 503, headers, `The web client is not built: ${staticRoot}/index.html is missing.`);
  }
  return send(res, 200, { ...headers, 'content-type': MIME['.html'] }, html);
}

function send(res, status, headers, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, ...headers });
  res.end(body);
}

async function onRequest(req, res) {
  const headers = { ...SECURITY_HEADERS, ...corsHeaders(req) };
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, headers, 'method not allowed');
  const { pathname } = new URL(req.url, 'http://x');
  if (pathname === '/healthz') return send(res, 200, headers, 'ok');
  if (pathname === '/api/config') {
    const body = JSON.stringify({ iceServers: iceServers(), modes: ['mesh'], defaultMode: 'mesh' });
    return send(res, 200, { ...headers, 'cache-control': 'no-store' }, body, 'application/json');
  }
  return serveStatic(req, res, headers);
}

const httpServer = http.createServer((req, res) => {
  onRequest(req, res).catch((err) => {
    console.error('http error:', err);
    if (!res.headersSent) send(res, 500, {}, 'internal error');
    else res.destroy();
  });
});

// ---------------------------------------------------------------------------
// socket.io

const io = new Server(httpServer, {
  // An engine.io message over 4x the event limit closes that client's connection.
  maxHttpBufferSize: MAX_MESSAGE_BYTES * 4,
  cors: corsOrigins.length
    ? { origin: corsOrigins.includes('*') ? '*' : corsOrigins, methods: ['GET', 'POST'] }
    : undefined,
});

/** Per-socket token bucket: `burst` events at once, refilled at `perSec`. */
class TokenBucket {
  constructor(burst, perSec) {
    this.burst = burst;
    this.perSec = perSec;
    this.tokens = burst;
    this.last = performance.now();
  }

  take() {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSec);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

const RATE_MESSAGE = `too many events: at most ${RATE_BURST} at once and ${RATE_PER_SEC} per second`;

/**
 * Every event goes through here: rate limit, size, shape, handler, and
 * exactly one ack (if the client asked for one).
 */
function dispatch(socket, event, args) {
  const ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
  let reply;
  try {
    if (!socket.data.bucket.take()) throw new ProtocolError('rate_limited', RATE_MESSAGE);
    const size = Buffer.byteLength(JSON.stringify([event, ...args]));
    if (size > MAX_MESSAGE_BYTES) {
      throw new ProtocolError('payload_too_large', `event is ${size} bytes; the limit is ${MAX_MESSAGE_BYTES}`);
    }
    if (!EVENTS.has(event)) {
      throw badRequest(`unknown event ${JSON.stringify(event)}; expected ${[...EVENTS].join(', ')}`);
    }
    // The payload is the first argument (further ones are ignored, as the Rust server does).
    if (!isObject(args[0])) throw badRequest('payload must be a JSON object');
    reply = { ok: true, ...handlers[event](socket, args[0]) };
  } catch (err) {
    if (!(err instanceof ProtocolError)) {
      console.error(`internal error handling ${String(event).slice(0, 64)}:`, err);
      err = new ProtocolError('internal', 'internal server error');
    }
    reply = { ok: false, error: { code: err.code, message: err.message } };
  }
  ack?.(reply);
}

io.on('connection', (socket) => {
  socket.data.rooms = new Map();
  socket.data.bucket = new TokenBucket(RATE_BURST, RATE_PER_SEC);
  // One catch-all listener: known and unknown events alike are answered, in
  // the order they arrived. (onAny runs before socket.io's own "still
  // connected?" check: a packet decoded just before a disconnect must not
  // re-add the socket to a room.)
  socket.onAny((event, ...args) => {
    if (socket.connected) dispatch(socket, event, args);
  });
  socket.on('disconnect', () => {
    for (const room of [...socket.data.rooms.keys()]) leaveRoom(socket, room);
  });
});

// ---------------------------------------------------------------------------
// Start and stop

httpServer.on('error', (err) => fail(`cannot listen on ${config.host}:${config.port}: ${err.message}`));
httpServer.listen({ host: config.host, port: config.port, backlog: config['listen-backlog'] }, () => {
  const { address, family, port } = httpServer.address();
  const host = family === 'IPv6' ? `[${address}]` : address;
  // The one line on stdout: scripts and tests read the chosen port from it.
  process.stdout.write(`signal-server listening on http://${host}:${port}\n`);
  console.error(`signal-server (node ${process.version}, socket.io) serving; static dir ${staticRoot}`);
});

function shutdown(signal) {
  console.error(`${signal} received: disconnecting every socket`);
  setTimeout(() => process.exit(0), 5000).unref();
  io.close(() => process.exit(0));
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));

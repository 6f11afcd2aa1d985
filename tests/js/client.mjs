// Client-side helpers: the official socket.io-client plus an event log per
// socket, so a test can await an event that may already have arrived, and
// prove that an event did NOT arrive by ordering rather than by sleeping.

import assert from 'node:assert/strict';
import { io } from 'socket.io-client';

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const DEFAULT_TIMEOUT = 5000;

/** Every socket made here, so `closeAll()` can end them in `after` hooks. */
const sockets = new Set();

/** Per-socket log of received server events: {name, payload, consumed}. */
const logs = new WeakMap();

function track(socket) {
  const log = { events: [], waiters: new Set() };
  logs.set(socket, log);
  socket.onAny((name, ...args) => {
    const entry = { name, payload: args[0], args, consumed: false, at: Date.now() };
    log.events.push(entry);
    for (const w of [...log.waiters]) w(entry);
  });
  return log;
}

function logOf(socket) {
  const log = logs.get(socket);
  if (!log) throw new Error('socket was not created with connect()/open()');
  return log;
}

/**
 * Create a socket (not waiting for the connection). Options default to
 * {forceNew: true, reconnection: false}; pass {transports} to pick them.
 */
export function open(url, opts = {}) {
  const socket = io(url, { forceNew: true, reconnection: false, timeout: 10_000, ...opts });
  sockets.add(socket);
  track(socket);
  return socket;
}

/** Create a socket and wait until it is connected (rejects on connect_error). */
export async function connect(url, opts = {}, timeoutMs = 10_000) {
  const socket = open(url, opts);
  await waitConnected(socket, timeoutMs);
  return socket;
}

export function waitConnected(socket, timeoutMs = 10_000) {
  if (socket.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no connect within ${timeoutMs} ms`)); }, timeoutMs);
    const ok = () => { cleanup(); resolve(); };
    const bad = (err) => { cleanup(); reject(new Error(`connect_error: ${err?.message ?? err}`)); };
    function cleanup() { clearTimeout(timer); socket.off('connect', ok); socket.off('connect_error', bad); }
    socket.on('connect', ok);
    socket.on('connect_error', bad);
  });
}

/** Resolve when the socket's transport has upgraded to WebSocket. */
export function waitUpgraded(socket, timeoutMs = 10_000) {
  const engine = socket.io.engine;
  if (engine && engine.transport?.name === 'websocket') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no upgrade to websocket within ${timeoutMs} ms`)), timeoutMs);
    const attach = (eng) => eng.once('upgrade', () => { clearTimeout(timer); resolve(); });
    if (engine) attach(engine); else socket.io.once('open', () => attach(socket.io.engine));
  });
}

/** Close every socket made by this module. */
export function closeAll() {
  for (const s of sockets) s.disconnect();
  sockets.clear();
}

/** Emit with an ack; resolves the ack (rejects if none within timeoutMs). */
export async function emitAck(socket, event, payload, timeoutMs = DEFAULT_TIMEOUT) {
  try {
    return await socket.timeout(timeoutMs).emitWithAck(event, payload);
  } catch (e) {
    throw new Error(`no ack for ${event} ${short(payload)} within ${timeoutMs} ms (${e.message})`);
  }
}

/** Emit with an ack whose payload list is given as is (0, 1 or more args). */
export async function emitAckArgs(socket, event, args, timeoutMs = DEFAULT_TIMEOUT) {
  try {
    return await socket.timeout(timeoutMs).emitWithAck(event, ...args);
  } catch (e) {
    throw new Error(`no ack for ${event} ${short(args)} within ${timeoutMs} ms (${e.message})`);
  }
}

/**
 * Wait for the next not-yet-consumed event `name` (optionally matching
 * `where(payload)`), including one that arrived before this call. Marks it
 * consumed and resolves its payload.
 */
export function nextEvent(socket, name, timeoutMs = DEFAULT_TIMEOUT, where = () => true) {
  const log = logOf(socket);
  const match = (e) => !e.consumed && e.name === name && where(e.payload);
  const found = log.events.find(match);
  if (found) { found.consumed = true; return Promise.resolve(found.payload); }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      log.waiters.delete(waiter);
      const seen = log.events.map((e) => e.name).join(', ') || 'none';
      reject(new Error(`no '${name}' event within ${timeoutMs} ms (events seen: ${seen})`));
    }, timeoutMs);
    function waiter(e) {
      if (match(e)) {
        e.consumed = true;
        clearTimeout(timer);
        log.waiters.delete(waiter);
        resolve(e.payload);
      }
    }
    log.waiters.add(waiter);
  });
}

/** All received events named `name` (consumed or not), as payloads. */
export function received(socket, name) {
  return logOf(socket).events.filter((e) => e.name === name).map((e) => e.payload);
}

/** Unconsumed received events named `name`. */
export function pending(socket, name) {
  return logOf(socket).events.filter((e) => !e.consumed && e.name === name).map((e) => e.payload);
}

/**
 * An ordering barrier: one ack round trip on `socket`. Anything the server
 * queued for this socket before it handles this packet arrives before the
 * ack. The probe is a `leave` of a room nobody uses: answered
 * `not_in_room`, no side effect.
 */
export async function barrier(socket, timeoutMs = DEFAULT_TIMEOUT) {
  const ack = await emitAck(socket, 'leave', { room: 'zz-barrier-room-never-joined' }, timeoutMs);
  assert.equal(ack?.ok, false, `barrier probe should fail: ${short(ack)}`);
  assert.equal(ack.error?.code, 'not_in_room', `barrier probe: ${short(ack)}`);
}

/**
 * Assert that `socket` got no (unconsumed) event `name` matching `where`,
 * after an ordering barrier on it. Call it after the action that must not
 * reach this socket has been acknowledged to its sender.
 */
export async function assertNoEvent(socket, name, where = () => true, msg = '') {
  await barrier(socket);
  const got = pending(socket, name).filter(where);
  assert.equal(got.length, 0, `unexpected '${name}' event(s) ${msg}: ${short(got)}`);
}

/** Assert an ack is a success; returns it. */
export function assertOk(ack, what = '') {
  assert.ok(ack && typeof ack === 'object' && !Array.isArray(ack), `${what}: ack is not an object: ${short(ack)}`);
  assert.equal(ack.ok, true, `${what}: expected ok ack, got ${short(ack)}`);
  return ack;
}

/** Assert an ack is the error `code` with a message. */
export function assertErr(ack, code, what = '') {
  assert.ok(ack && typeof ack === 'object' && !Array.isArray(ack), `${what}: ack is not an object: ${short(ack)}`);
  assert.equal(ack.ok, false, `${what}: expected error ${code}, got ${short(ack)}`);
  assert.ok(ack.error && typeof ack.error === 'object', `${what}: no error object: ${short(ack)}`);
  assert.equal(ack.error.code, code, `${what}: expected error ${code}, got ${short(ack)}`);
  assert.equal(typeof ack.error.message, 'string', `${what}: error.message must be a string: ${short(ack)}`);
  assert.ok(ack.error.message.length > 0, `${what}: error.message must not be empty`);
  return ack;
}

/** Join and assert success; resolves the ack. */
export async function join(socket, room, name, extra = {}) {
  const ack = await emitAck(socket, 'join', { room, name, ...extra });
  return assertOk(ack, `join ${room} as ${name}`);
}

/** A fresh, valid room name. */
let roomSeq = 0;
export function roomName(tag = 'r') {
  roomSeq += 1;
  return `${tag}-${process.pid}-${roomSeq}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Pick the listed keys (protocol allows extra fields; tests compare these). */
export function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj && Object.hasOwn(obj, k)) out[k] = obj[k];
  return out;
}

/** {id,name} of each peer. */
export function peersOf(list) {
  return list.map((p) => pick(p, ['id', 'name']));
}

export function short(v) {
  let s;
  try { s = JSON.stringify(v); } catch { s = String(v); }
  if (s === undefined) s = String(v);
  return s.length > 300 ? `${s.slice(0, 300)}…(${s.length} chars)` : s;
}

/**
 * Retry `fn` until it stops throwing, for conditions the server reaches
 * asynchronously with no event to await (e.g. room removal after a
 * disconnect). Rethrows the last error after timeoutMs.
 */
export async function eventually(fn, timeoutMs = 5000, stepMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, stepMs));
    }
  }
}

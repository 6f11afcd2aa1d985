// PROTOCOL.md version 2, "Resume": a lost connection keeps its seat for a
// grace period. Each rule with the official socket.io client; with
// SIGNAL_CLUSTER=1 on two nodes on Redis, where consecutive sockets land on
// different nodes, so every resume below happens on the OTHER node than
// the one the seat was taken on.
//
// A lost connection is made by closing the Engine.IO transport under the
// socket (no socket.io DISCONNECT packet: what a dead network or a reload
// looks like to the server); a client-side `disconnect()` leaves.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertErr, assertOk, assertNoEvent, roomName,
  received, eventually, UUID_RE,
} from './client.mjs';

let server;
let short; // a server whose seats are held for 1 s
let off; // resume turned off
before(async () => {
  [server, short, off] = await Promise.all([
    startServer(),
    startServer(['--resume-grace-secs', '1']),
    startServer(['--resume-grace-secs', '0']),
  ]);
});
after(async () => {
  closeAll();
  await Promise.all([server?.stop(), short?.stop(), off?.stop()]);
});

const ws = { transports: ['websocket'] };

/** Waits until `cond()` (sync or async) is true. */
const until = (cond, timeoutMs = 5000) =>
  eventually(async () => assert.ok(await cond(), `condition ${cond}`), timeoutMs);

/** Drops `s`'s connection as a network would: no DISCONNECT packet. */
function lose(s) {
  s.io.engine.close();
}

/** A room of Ana (who will be lost) and Bo; returns both sockets and acks. */
async function pair(srv, tag, extra = {}) {
  const room = roomName(tag);
  const a = await connect(srv.url, ws);
  const ana = await join(a, room, 'Ana', extra);
  const b = await connect(srv.url, ws);
  const bo = await join(b, room, 'Bo', extra);
  await nextEvent(a, 'peer-joined');
  return { room, a, ana, b, bo };
}

/** Loses `a` and waits until `b` hears it is reconnecting. */
async function loseAndWait(a, b, id) {
  const seen = nextEvent(b, 'peer-reconnecting', 10_000, (p) => p.id === id);
  lose(a);
  return seen;
}

describe('resume tokens', () => {
  it('every join ack carries a resume token (a string of 1 to 256 characters), a new one per seat', async () => {
    const { ana, bo, a, room } = await pair(server, 'tok');
    for (const ack of [ana, bo]) {
      assert.equal(typeof ack.resume, 'string');
      assert.ok(ack.resume.length >= 1 && ack.resume.length <= 256, ack.resume);
      assert.equal(ack.resumed, undefined, 'no "resumed" without a token in the join');
    }
    assert.notEqual(ana.resume, bo.resume);
    const again = await join(a, room, 'Ana');
    assert.equal(again.resume, ana.resume, 'joining again (idempotent) gives the same seat and token');
  });

  it('a malformed token (empty, over 256 characters, not a string) is bad_request and joins nothing', async () => {
    const room = roomName('resume-bad');
    const s = await connect(server.url, ws);
    for (const resume of ['', 'x'.repeat(257), 42, { t: 1 }]) {
      assertErr(await emitAck(s, 'join', { room, name: 'Ana', resume }), 'bad_request', `resume=${JSON.stringify(resume).slice(0, 20)}`);
    }
    const ack = await join(s, room, 'Ana', { resume: 'x'.repeat(256) });
    assert.deepEqual(ack.peers, [], 'the refused joins left nothing behind');
    assert.equal(ack.resumed, false);
  });

  it('an unknown token: an ordinary join (new id, peer-joined, password checked) whose ack says resumed: false', async () => {
    const room = roomName('resume-unknown');
    const a = await connect(server.url, ws);
    const first = await join(a, room, 'Ana', { password: 'secret' });
    const b = await connect(server.url, ws);
    assertErr(await emitAck(b, 'join', { room, name: 'Bo', resume: 'guess' }), 'unauthorized');
    const joinedSeen = nextEvent(a, 'peer-joined');
    const ack = await join(b, room, 'Bo', { resume: 'guess', password: 'secret' });
    assert.equal(ack.resumed, false);
    assert.match(ack.self.id, UUID_RE);
    assert.notEqual(ack.self.id, first.self.id);
    assert.equal((await joinedSeen).id, ack.self.id);
  });
});

describe('a lost connection keeps its seat', () => {
  it('the others get peer-reconnecting at once and no peer-left', async () => {
    const { a, ana, b, room } = await pair(server, 'lost');
    const ev = await loseAndWait(a, b, ana.self.id);
    assert.deepEqual(ev, { room, id: ana.self.id });
    await assertNoEvent(b, 'peer-left');
  });

  it('events addressed to the held peer are acknowledged ok and arrive after its resume ack, in order', async () => {
    const { a, ana, b, room } = await pair(server, 'kept');
    await loseAndWait(a, b, ana.self.id);
    for (let n = 0; n < 5; n++) {
      assertOk(await emitAck(b, 'signal', { room, to: ana.self.id, data: { type: 'offer', sdp: `v=0 ${n}` } }), `signal ${n}`);
    }
    const a2 = await connect(server.url, ws);
    const order = [];
    a2.onAny((name) => order.push(name));
    const ack = await join(a2, room, 'Ana', { resume: ana.resume });
    assert.equal(ack.resumed, true);
    await until(() => received(a2, 'signal').length === 5);
    assert.deepEqual(received(a2, 'signal').map((s) => Number(s.data.sdp.slice(4))), [0, 1, 2, 3, 4]);
    assert.ok(received(a2, 'signal').every((s) => s.from === received(a2, 'signal')[0].from && s.room === room));
    assert.equal(order[0], 'signal', 'the kept signals come right after the ack');
  });

  it('at least the last 256 events are kept, in order', async () => {
    const { a, ana, b, room } = await pair(server, 'kept256');
    await loseAndWait(a, b, ana.self.id);
    const sent = 300;
    // In batches: a scaled-out node queues at most 256 events per socket.
    for (let first = 0; first < sent; first += 50) {
      const acks = [];
      for (let n = first; n < Math.min(first + 50, sent); n++) {
        acks.push(emitAck(b, 'signal', { room, to: ana.self.id, data: { type: 'offer', sdp: `v=0 ${n}` } }, 20_000));
      }
      for (const ack of await Promise.all(acks)) assertOk(ack);
    }
    const a2 = await connect(server.url, ws);
    assert.equal((await join(a2, room, 'Ana', { resume: ana.resume })).resumed, true);
    await until(() => received(a2, 'signal').length >= 256, 10_000);
    const got = received(a2, 'signal').map((s) => Number(s.data.sdp.slice(4)));
    assert.ok(got.length >= 256 && got.length <= sent, `${got.length} kept`);
    assert.deepEqual(got, Array.from({ length: got.length }, (_, i) => sent - got.length + i), 'the last ones, in order');
  });

  it('a held seat counts toward capacity and is listed to later joiners', async () => {
    const srv = await startServer(['--max-peers-per-room', '2']);
    try {
      const { a, ana, b, bo, room } = await pair(srv, 'cap');
      await loseAndWait(a, b, ana.self.id);
      const c = await connect(srv.url, ws);
      assertErr(await emitAck(c, 'join', { room, name: 'Cy' }), 'room_full');
      await emitAck(b, 'leave', { room });
      const ack = await join(c, room, 'Cy');
      assert.deepEqual(ack.peers.map((p) => p.id), [ana.self.id], 'the held seat is listed');
      assert.ok(bo.self.id);
    } finally {
      await srv.stop();
    }
  });

  it('a resume takes the seat back: same id, held name, no password, current peers and history, a new token; the others get peer-resumed, not peer-joined', async () => {
    const { a, ana, b, bo, room } = await pair(server, 'back', { password: 'pw' });
    await loseAndWait(a, b, ana.self.id);
    assertOk(await emitAck(b, 'chat', { room, text: 'while you were away' }));
    const c = await connect(server.url, ws);
    const cy = await join(c, room, 'Cy', { password: 'pw' });
    assert.deepEqual(cy.peers.map((p) => p.id), [ana.self.id, bo.self.id]);
    const resumedB = nextEvent(b, 'peer-resumed', 10_000);
    const resumedC = nextEvent(c, 'peer-resumed', 10_000);
    const a2 = await connect(server.url, ws);
    const ack = await join(a2, room, 'Someone else', { resume: ana.resume });
    assert.equal(ack.ok, true);
    assert.equal(ack.resumed, true);
    assert.deepEqual(ack.self, ana.self, 'same id, same name');
    assert.deepEqual(ack.room, ana.room);
    assert.deepEqual(ack.peers.map((p) => p.id).sort(), [bo.self.id, cy.self.id].sort());
    assert.deepEqual(ack.history.map((m) => m.text), ['while you were away']);
    assert.equal(typeof ack.resume, 'string');
    assert.notEqual(ack.resume, ana.resume, 'a new token');
    assert.deepEqual(await resumedB, { room, id: ana.self.id });
    assert.deepEqual(await resumedC, { room, id: ana.self.id });
    await assertNoEvent(b, 'peer-joined', (p) => p.id === ana.self.id);
    await assertNoEvent(b, 'peer-left');
    // Live again: signals reach it at once, and it can send.
    const sig = nextEvent(a2, 'signal');
    assertOk(await emitAck(b, 'signal', { room, to: ana.self.id, data: { type: 'offer', sdp: 'v=0' } }));
    assert.equal((await sig).from, bo.self.id);
    const chat = nextEvent(b, 'chat', 5000, (m) => m.text === 'back');
    assertOk(await emitAck(a2, 'chat', { room, text: 'back' }));
    assert.equal((await chat).from.id, ana.self.id);
  });

  it('each token resumes once: the used one is an ordinary join', async () => {
    const { a, ana, b, room } = await pair(server, 'once');
    await loseAndWait(a, b, ana.self.id);
    const a2 = await connect(server.url, ws);
    assert.equal((await join(a2, room, 'Ana', { resume: ana.resume })).resumed, true);
    const a3 = await connect(server.url, ws);
    const joined = nextEvent(b, 'peer-joined', 5000);
    const ack = await join(a3, room, 'Ana again', { resume: ana.resume });
    assert.equal(ack.resumed, false);
    assert.notEqual(ack.self.id, ana.self.id);
    assert.equal((await joined).id, ack.self.id);
  });

  it('a token of another room is an ordinary join', async () => {
    const { a, ana, b } = await pair(server, 'roomA');
    await loseAndWait(a, b, ana.self.id);
    const other = roomName('roomB');
    const s = await connect(server.url, ws);
    const ack = await join(s, other, 'Ana', { resume: ana.resume });
    assert.equal(ack.resumed, false);
    assert.notEqual(ack.self.id, ana.self.id);
  });

  it('a token also takes back a seat whose old connection the server has not yet seen go (a reload)', async () => {
    const { a, ana, b, room } = await pair(server, 'reload');
    const a2 = await connect(server.url, ws);
    const resumed = nextEvent(b, 'peer-resumed');
    const ack = await join(a2, room, 'Ana', { resume: ana.resume });
    assert.equal(ack.resumed, true);
    assert.equal(ack.self.id, ana.self.id);
    await resumed;
    // The old socket is out of the room: its sends are refused, and it
    // going away costs the seat nothing.
    assertErr(await emitAck(a, 'chat', { room, text: 'from the old tab' }), 'not_in_room');
    a.disconnect();
    const sig = nextEvent(a2, 'signal');
    assertOk(await emitAck(b, 'signal', { room, to: ana.self.id, data: { type: 'offer', sdp: 'v=0' } }));
    await sig;
    await assertNoEvent(b, 'peer-left');
  });
});

describe('the end of a seat', () => {
  it('when the grace period ends first, the held peer leaves (peer-left) and its token is dead', async () => {
    const { a, ana, b, room } = await pair(short, 'expire');
    await loseAndWait(a, b, ana.self.id);
    const left = await nextEvent(b, 'peer-left', 5000);
    assert.deepEqual(left, { room, id: ana.self.id });
    const a2 = await connect(short.url, ws);
    const ack = await join(a2, room, 'Ana', { resume: ana.resume });
    assert.equal(ack.resumed, false);
    assert.notEqual(ack.self.id, ana.self.id);
  });

  it('a signal to a peer whose hold ended is unknown_peer', async () => {
    const { a, ana, b, room } = await pair(short, 'expire-sig');
    await loseAndWait(a, b, ana.self.id);
    await nextEvent(b, 'peer-left', 5000);
    assertErr(await emitAck(b, 'signal', { room, to: ana.self.id, data: { type: 'offer', sdp: 'v=0' } }), 'unknown_peer');
  });

  it('a client-side disconnect() leaves at once, and its token is dead', async () => {
    const { a, ana, b, room } = await pair(server, 'bye');
    const left = nextEvent(b, 'peer-left');
    a.disconnect();
    assert.deepEqual(await left, { room, id: ana.self.id });
    assert.equal(received(b, 'peer-reconnecting').length, 0);
    const a2 = await connect(server.url, ws);
    assert.equal((await join(a2, room, 'Ana', { resume: ana.resume })).resumed, false);
  });

  it('a leave leaves at once, and its token is dead', async () => {
    const { a, ana, b, room } = await pair(server, 'leave');
    const left = nextEvent(b, 'peer-left');
    assertOk(await emitAck(a, 'leave', { room }));
    await left;
    lose(a);
    await assertNoEvent(b, 'peer-reconnecting');
    const a2 = await connect(server.url, ws);
    assert.equal((await join(a2, room, 'Ana', { resume: ana.resume })).resumed, false);
  });

  it('with a grace period of 0, a lost connection leaves at once (the old behaviour)', async () => {
    const { a, ana, b, room } = await pair(off, 'off');
    const left = nextEvent(b, 'peer-left');
    lose(a);
    assert.deepEqual(await left, { room, id: ana.self.id });
    assert.equal(received(b, 'peer-reconnecting').length, 0);
    const a2 = await connect(off.url, ws);
    assert.equal((await join(a2, room, 'Ana', { resume: ana.resume })).resumed, false);
  });
});

describe('/metrics', () => {
  it('counts seats held, resumed, expired and refused', async () => {
    const metric = async (name) => {
      let sum = 0;
      for (const n of short.nodes ?? [short]) {
        const text = (await n.get('/metrics')).body;
        const line = text.split('\n').find((l) => l.startsWith(`${name} `));
        assert.ok(line, `${name} in /metrics`);
        sum += Number(line.split(' ')[1]);
      }
      return sum;
    };
    const before = {
      resumed: await metric('signal_resume_total{outcome="resumed"}'),
      expired: await metric('signal_resume_total{outcome="expired"}'),
      refused: await metric('signal_resume_total{outcome="refused"}'),
    };
    const p = await pair(short, 'metrics');
    await loseAndWait(p.a, p.b, p.ana.self.id);
    await until(async () => (await metric('signal_resume_held')) >= 1, 5000);
    const a2 = await connect(short.url, ws);
    await join(a2, p.room, 'Ana', { resume: p.ana.resume });
    await loseAndWait(a2, p.b, p.ana.self.id);
    await nextEvent(p.b, 'peer-left', 5000);
    const s = await connect(short.url, ws);
    await join(s, roomName('metrics-refused'), 'X', { resume: 'nope' });
    assert.equal(await metric('signal_resume_total{outcome="resumed"}'), before.resumed + 1);
    await until(async () => (await metric('signal_resume_total{outcome="expired"}')) === before.expired + 1, 5000);
    assert.equal(await metric('signal_resume_total{outcome="refused"}'), before.refused + 1);
    await until(async () => (await metric('signal_resume_held')) === 0, 5000);
  });
});

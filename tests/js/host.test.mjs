// PROTOCOL.md version 2, "Host controls": the host, kick, lock,
// mute-request, hand and reaction, each rule with the official socket.io
// client; with SIGNAL_CLUSTER=1 on two nodes on Redis, where consecutive
// sockets land on different nodes (a host on node A kicks a peer on node B).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertErr, assertOk, assertNoEvent, roomName,
  received,
} from './client.mjs';

let server;
let strict; // a small rate limit
before(async () => {
  [server, strict] = await Promise.all([
    startServer(),
    startServer(['--rate-limit-burst', '20', '--rate-limit-per-sec', '5']),
  ]);
});
after(async () => {
  closeAll();
  await Promise.all([server?.stop(), strict?.stop()]);
});

const ws = { transports: ['websocket'] };

/** A room of Ana (the host), Bo and Cy, each on the next node. */
async function trio(tag, srv = server) {
  const room = roomName(tag);
  const a = await connect(srv.url, ws);
  const ana = await join(a, room, 'Ana');
  const b = await connect(srv.url, ws);
  const bo = await join(b, room, 'Bo');
  const c = await connect(srv.url, ws);
  const cy = await join(c, room, 'Cy');
  await nextEvent(a, 'peer-joined', 5000, (p) => p.id === cy.self.id);
  await nextEvent(b, 'peer-joined', 5000, (p) => p.id === cy.self.id);
  return { room, a, ana, b, bo, c, cy };
}

describe('the host', () => {
  it('the peer whose join created the room is host: self.host and peers[].host say so, absent for the others', async () => {
    const { ana, bo, cy } = await trio('host');
    assert.equal(ana.self.host, true);
    assert.equal(bo.self.host, undefined);
    assert.deepEqual(bo.peers.map((p) => [p.name, p.host]), [['Ana', true]]);
    assert.deepEqual(cy.peers.map((p) => [p.name, p.host]), [['Ana', true], ['Bo', undefined]]);
  });

  it('when the host leaves, the member present longest becomes host and the whole room gets host-changed', async () => {
    const { room, a, b, bo, c } = await trio('handover');
    const seenB = nextEvent(b, 'host-changed');
    const seenC = nextEvent(c, 'host-changed');
    assertOk(await emitAck(a, 'leave', { room }));
    assert.deepEqual(await seenB, { room, id: bo.self.id });
    assert.deepEqual(await seenC, { room, id: bo.self.id });
    const d = await connect(server.url, ws);
    const di = await join(d, room, 'Di');
    assert.deepEqual(di.peers.map((p) => [p.name, p.host]), [['Bo', true], ['Cy', undefined]]);
    // The new host has the controls.
    assertOk(await emitAck(b, 'lock', { room, locked: false }));
  });

  it('a member that is not the host leaving changes no host', async () => {
    const { room, a, b, c } = await trio('nohandover');
    assertOk(await emitAck(b, 'leave', { room }));
    await nextEvent(c, 'peer-left');
    await assertNoEvent(c, 'host-changed');
    await assertNoEvent(a, 'host-changed');
  });
});

describe('kick', () => {
  it('the peer gets kicked {room, by} and is out; the others get peer-left with reason "kicked"', async () => {
    const { room, a, ana, b, bo, c } = await trio('kick');
    const kicked = nextEvent(b, 'kicked');
    const left = nextEvent(c, 'peer-left');
    assertOk(await emitAck(a, 'kick', { room, peer: bo.self.id }));
    assert.deepEqual(await kicked, { room, by: ana.self.id });
    assert.deepEqual(await left, { room, id: bo.self.id, reason: 'kicked' });
    assertErr(await emitAck(b, 'chat', { room, text: 'still here?' }), 'not_in_room');
    await assertNoEvent(b, 'chat');
    const d = await connect(server.url, ws);
    assert.deepEqual((await join(d, room, 'Di')).peers.map((p) => p.name), ['Ana', 'Cy']);
    // Its resume token died with the seat.
    const b2 = await connect(server.url, ws);
    const again = await join(b2, room, 'Bo', { resume: bo.resume });
    assert.equal(again.resumed, false);
    assert.notEqual(again.self.id, bo.self.id);
  });

  it('a held peer (connection lost) can be kicked: its seat and token go', async () => {
    const { room, a, b, bo, c } = await trio('kick-held');
    const held = nextEvent(c, 'peer-reconnecting');
    b.io.engine.close();
    await held;
    const left = nextEvent(c, 'peer-left');
    assertOk(await emitAck(a, 'kick', { room, peer: bo.self.id }));
    assert.equal((await left).reason, 'kicked');
    const b2 = await connect(server.url, ws);
    assert.equal((await join(b2, room, 'Bo', { resume: bo.resume })).resumed, false);
  });

  it('not the host: forbidden, and nothing changes anywhere', async () => {
    const { room, a, ana, b, c, cy } = await trio('kick-forbidden');
    assertErr(await emitAck(b, 'kick', { room, peer: cy.self.id }), 'forbidden');
    assertErr(await emitAck(b, 'kick', { room, peer: ana.self.id }), 'forbidden');
    await assertNoEvent(c, 'kicked');
    await assertNoEvent(a, 'peer-left');
    assertOk(await emitAck(c, 'chat', { room, text: 'still in' }));
  });

  it('naming oneself is bad_request; a peer not in the room (or of another room) is unknown_peer', async () => {
    const { room, a, ana } = await trio('kick-bad');
    assertErr(await emitAck(a, 'kick', { room, peer: ana.self.id }), 'bad_request');
    assertErr(await emitAck(a, 'kick', { room, peer: '00000000-0000-4000-8000-000000000000' }), 'unknown_peer');
    const other = roomName('elsewhere');
    const x = await connect(server.url, ws);
    const xo = await join(x, other, 'Xo');
    assertErr(await emitAck(a, 'kick', { room, peer: xo.self.id }), 'unknown_peer');
    await assertNoEvent(x, 'kicked');
    assertErr(await emitAck(a, 'kick', { room: other, peer: xo.self.id }), 'not_in_room');
  });

  it('malformed: a missing or non-string peer is bad_request', async () => {
    const { room, a } = await trio('kick-malformed');
    for (const payload of [{ room }, { room, peer: 42 }, { peer: 'x' }]) {
      assertErr(await emitAck(a, 'kick', payload), 'bad_request', JSON.stringify(payload));
    }
  });
});

describe('lock', () => {
  it('the whole room gets room-locked; a join is forbidden while locked, a resume is not; unlock lets joins in', async () => {
    const { room, a, ana, b, bo, c } = await trio('lock');
    const seen = [a, b, c].map((s) => nextEvent(s, 'room-locked'));
    assertOk(await emitAck(a, 'lock', { room, locked: true }));
    for (const ev of await Promise.all(seen)) assert.deepEqual(ev, { room, locked: true, by: ana.self.id });
    const d = await connect(server.url, ws);
    const refused = assertErr(await emitAck(d, 'join', { room, name: 'Di' }), 'forbidden');
    assert.match(refused.error.message, /locked/);
    // A held seat still comes back.
    const held = nextEvent(c, 'peer-reconnecting');
    b.io.engine.close();
    await held;
    const b2 = await connect(server.url, ws);
    const back = await join(b2, room, 'Bo', { resume: bo.resume });
    assert.equal(back.resumed, true);
    assert.equal(back.room.locked, true, 'extension: the ack says the room is locked');
    const unlocked = nextEvent(c, 'room-locked');
    assertOk(await emitAck(a, 'lock', { room, locked: false }));
    assert.deepEqual(await unlocked, { room, locked: false, by: ana.self.id });
    const di = assertOk(await emitAck(d, 'join', { room, name: 'Di' }));
    assert.equal(di.room.locked, undefined, 'absent once unlocked');
  });

  it('not the host: forbidden, the room stays open', async () => {
    const { room, b, c } = await trio('lock-forbidden');
    assertErr(await emitAck(b, 'lock', { room, locked: true }), 'forbidden');
    await assertNoEvent(c, 'room-locked');
    const d = await connect(server.url, ws);
    assertOk(await emitAck(d, 'join', { room, name: 'Di' }));
  });

  it('locked must be a boolean', async () => {
    const { room, a } = await trio('lock-bad');
    assertErr(await emitAck(a, 'lock', { room, locked: 'yes' }), 'bad_request');
    assertErr(await emitAck(a, 'lock', { room }), 'bad_request');
  });
});

describe('mute-request', () => {
  it('the peer gets {room, from, kind}; nobody else does', async () => {
    const { room, a, ana, b, bo, c } = await trio('mute');
    for (const kind of ['audio', 'video']) {
      const got = nextEvent(b, 'mute-request');
      assertOk(await emitAck(a, 'mute-request', { room, peer: bo.self.id, kind }));
      assert.deepEqual(await got, { room, from: ana.self.id, kind });
    }
    await assertNoEvent(c, 'mute-request');
  });

  it('not the host: forbidden; oneself: bad_request; unknown peer: unknown_peer; bad kind: bad_request', async () => {
    const { room, a, ana, b, cy, c } = await trio('mute-bad');
    assertErr(await emitAck(b, 'mute-request', { room, peer: cy.self.id, kind: 'audio' }), 'forbidden');
    await assertNoEvent(c, 'mute-request');
    assertErr(await emitAck(a, 'mute-request', { room, peer: ana.self.id, kind: 'audio' }), 'bad_request');
    assertErr(await emitAck(a, 'mute-request', { room, peer: '00000000-0000-4000-8000-000000000000', kind: 'audio' }), 'unknown_peer');
    assertErr(await emitAck(a, 'mute-request', { room, peer: cy.self.id, kind: 'screen' }), 'bad_request');
  });

  it('to a held peer: acknowledged and kept, delivered after its resume', async () => {
    const { room, a, ana, b, bo, c } = await trio('mute-held');
    const held = nextEvent(c, 'peer-reconnecting');
    b.io.engine.close();
    await held;
    assertOk(await emitAck(a, 'mute-request', { room, peer: bo.self.id, kind: 'video' }));
    const b2 = await connect(server.url, ws);
    const got = nextEvent(b2, 'mute-request');
    assert.equal((await join(b2, room, 'Bo', { resume: bo.resume })).resumed, true);
    assert.deepEqual(await got, { room, from: ana.self.id, kind: 'video' });
  });
});

describe('hand', () => {
  it('any member: the others get hand; later joiners see "hand": true while raised', async () => {
    const { room, a, b, bo, c } = await trio('hand');
    const seenA = nextEvent(a, 'hand');
    const seenC = nextEvent(c, 'hand');
    assertOk(await emitAck(b, 'hand', { room, raised: true }));
    assert.deepEqual(await seenA, { room, from: bo.self.id, raised: true });
    assert.deepEqual(await seenC, { room, from: bo.self.id, raised: true });
    await assertNoEvent(b, 'hand');
    const d = await connect(server.url, ws);
    const di = await join(d, room, 'Di');
    assert.deepEqual(di.peers.map((p) => [p.name, p.hand]), [['Ana', undefined], ['Bo', true], ['Cy', undefined]]);
    const lowered = nextEvent(a, 'hand');
    assertOk(await emitAck(b, 'hand', { room, raised: false }));
    assert.equal((await lowered).raised, false);
    const e = await connect(server.url, ws);
    assert.ok((await join(e, room, 'Ed')).peers.every((p) => p.hand === undefined));
  });

  it('outside the room: not_in_room; raised must be a boolean', async () => {
    const { room, a } = await trio('hand-bad');
    const x = await connect(server.url, ws);
    assertErr(await emitAck(x, 'hand', { room, raised: true }), 'not_in_room');
    assertErr(await emitAck(a, 'hand', { room, raised: 1 }), 'bad_request');
  });
});

describe('reaction', () => {
  it('the others get {room, from, emoji}; 1 to 16 characters', async () => {
    const { room, a, ana, b, c } = await trio('react');
    const got = [b, c].map((s) => nextEvent(s, 'reaction'));
    assertOk(await emitAck(a, 'reaction', { room, emoji: '👍' }));
    for (const ev of await Promise.all(got)) assert.deepEqual(ev, { room, from: ana.self.id, emoji: '👍' });
    await assertNoEvent(a, 'reaction');
    for (const emoji of ['', 'x'.repeat(17), 5]) {
      assertErr(await emitAck(a, 'reaction', { room, emoji }), 'bad_request', JSON.stringify(emoji));
    }
  });

  it('a reaction flood is rate_limited, and the room keeps working', async () => {
    const { room, a, b } = await trio('flood', strict);
    const acks = [];
    for (let i = 0; i < 60; i++) acks.push(emitAck(a, 'reaction', { room, emoji: '🎉' }));
    const codes = (await Promise.all(acks)).map((k) => (k.ok ? 'ok' : k.error.code));
    assert.ok(codes.includes('rate_limited'), `a flood meets the limit: ${codes.join(',')}`);
    assert.ok(received(b, 'reaction').length <= codes.filter((c) => c === 'ok').length);
    assertOk(await emitAck(b, 'chat', { room, text: 'still fine' }));
  });
});

// signal: relayed to the addressed peer only, `from` set by the server,
// unknown_peer / not_in_room / bad_request.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startServer } from './server.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertNoEvent, assertOk, assertErr, roomName,
  pick, received,
} from './client.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { closeAll(); await server?.stop(); });

const ws = { transports: ['websocket'] };

/** Three peers A, B, C in a fresh room. */
async function trio(tag) {
  const room = roomName(tag);
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(server.url, ws)));
  const ids = {};
  ids.a = (await join(a, room, 'Ana')).self.id;
  ids.b = (await join(b, room, 'Bo')).self.id;
  ids.c = (await join(c, room, 'Cy')).self.id;
  return { room, a, b, c, ids };
}

const SDP_OFFER = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n';
const SDP_ANSWER = SDP_OFFER.replace('4611731400430051336', '1234');
const CANDIDATE = {
  candidate: 'candidate:842163049 1 udp 1677729535 192.0.2.10 46154 typ srflx raddr 10.0.0.1 rport 46154 generation 0',
  sdpMid: '0',
  sdpMLineIndex: 0,
};

describe('signal relay', () => {
  const kinds = [
    ['offer', { type: 'offer', sdp: SDP_OFFER }],
    ['answer', { type: 'answer', sdp: SDP_ANSWER }],
    ['candidate with an object', { type: 'candidate', candidate: CANDIDATE }],
    ['candidate with sdpMid/sdpMLineIndex null', { type: 'candidate', candidate: { candidate: CANDIDATE.candidate, sdpMid: null, sdpMLineIndex: null } }],
    ['candidate null (end of candidates)', { type: 'candidate', candidate: null }],
    ['bye', { type: 'bye' }],
  ];
  for (const [label, data] of kinds) {
    it(`${label}: relayed as {room, from, data} to the addressed peer only; the third peer and the sender get nothing`, async () => {
      const { room, a, b, c, ids } = await trio('sig');
      assertOk(await emitAck(a, 'signal', { room, to: ids.b, data }), `signal ${label}`);
      const ev = await nextEvent(b, 'signal');
      assert.deepEqual(pick(ev, ['room', 'from', 'data']), { room, from: ids.a, data });
      await assertNoEvent(c, 'signal', () => true, 'to the third peer');
      await assertNoEvent(a, 'signal', () => true, 'to the sender');
      await assertNoEvent(b, 'signal', () => true, '(a second copy to the addressee)');
    });
  }

  it('a candidate with usernameFragment (RTCIceCandidate.toJSON()) is accepted and relayed', async () => {
    const { room, a, b, ids } = await trio('ufrag');
    const cand = { ...CANDIDATE, usernameFragment: 'abcd' };
    assertOk(await emitAck(a, 'signal', { room, to: ids.b, data: { type: 'candidate', candidate: cand } }));
    const ev = await nextEvent(b, 'signal');
    assert.equal(ev.from, ids.a);
    assert.equal(ev.data.type, 'candidate');
    assert.deepEqual(pick(ev.data.candidate, ['candidate', 'sdpMid', 'sdpMLineIndex']), CANDIDATE);
  });

  it('`from` is set by the server: a forged `from` in the payload is ignored', async () => {
    const { room, a, b, c, ids } = await trio('forge');
    const data = { type: 'offer', sdp: SDP_OFFER };
    assertOk(await emitAck(a, 'signal', { room, to: ids.b, from: ids.c, data }));
    const ev = await nextEvent(b, 'signal');
    assert.equal(ev.from, ids.a, 'from must be the real sender');
    assert.equal(ev.room, room);
    // Nor can a mesh peer pose as the SFU.
    assertOk(await emitAck(a, 'signal', { room, to: ids.b, from: 'sfu', data: { type: 'bye' } }));
    const ev2 = await nextEvent(b, 'signal');
    assert.equal(ev2.from, ids.a);
    await assertNoEvent(c, 'signal');
  });

  it('replies flow both ways: B answers A, A gets {from: B}', async () => {
    const { room, a, b, ids } = await trio('reply');
    assertOk(await emitAck(a, 'signal', { room, to: ids.b, data: { type: 'offer', sdp: SDP_OFFER } }));
    const offer = await nextEvent(b, 'signal');
    assertOk(await emitAck(b, 'signal', { room, to: offer.from, data: { type: 'answer', sdp: SDP_ANSWER } }));
    const answer = await nextEvent(a, 'signal');
    assert.deepEqual(pick(answer, ['room', 'from', 'data']), { room, from: ids.b, data: { type: 'answer', sdp: SDP_ANSWER } });
  });

  it('a call set-up burst (offer + 60 trickled candidates + end) is all acked ok and delivered in order', async () => {
    const { room, a, b, ids } = await trio('burst');
    const datas = [{ type: 'offer', sdp: SDP_OFFER }];
    for (let i = 0; i < 60; i++) {
      datas.push({ type: 'candidate', candidate: { candidate: `candidate:${i} 1 udp ${2000 + i} 192.0.2.${i % 250} ${40000 + i} typ host`, sdpMid: '0', sdpMLineIndex: 0 } });
    }
    datas.push({ type: 'candidate', candidate: null });
    // Fire them all without waiting (as a browser trickles), then collect acks.
    const acks = await Promise.all(datas.map((data) => emitAck(a, 'signal', { room, to: ids.b, data })));
    acks.forEach((ack, i) => assertOk(ack, `signal #${i}`));
    const got = [];
    for (let i = 0; i < datas.length; i++) got.push(await nextEvent(b, 'signal'));
    assert.deepEqual(got.map((e) => e.data), datas, 'relayed in the order sent');
    assert.ok(got.every((e) => e.from === ids.a && e.room === room));
  });

  it('a realistic large SDP (20 kB) is relayed intact under the default limits', async () => {
    const { room, a, b, ids } = await trio('bigsdp');
    const sdp = SDP_OFFER + 'a=candidate:x\r\n'.repeat(1400);
    assert.ok(sdp.length > 20_000);
    assertOk(await emitAck(a, 'signal', { room, to: ids.b, data: { type: 'offer', sdp } }));
    const ev = await nextEvent(b, 'signal');
    assert.equal(ev.data.sdp, sdp);
  });

  it('a signal sent without an ack callback is still relayed', async () => {
    const { room, a, b, ids } = await trio('noack');
    a.emit('signal', { room, to: ids.b, data: { type: 'bye' } });
    const ev = await nextEvent(b, 'signal');
    assert.deepEqual(pick(ev, ['room', 'from', 'data']), { room, from: ids.a, data: { type: 'bye' } });
  });
});

describe('signal errors', () => {
  it('unknown_peer: a random UUID, and a peer that is in a different room', async () => {
    const { room, a, b, c, ids } = await trio('unk');
    assertErr(await emitAck(a, 'signal', { room, to: randomUUID(), data: { type: 'bye' } }), 'unknown_peer', 'random id');
    assertErr(await emitAck(a, 'signal', { room, to: 'not-a-uuid', data: { type: 'bye' } }), 'unknown_peer', 'non-uuid id');
    const other = roomName('unk-other');
    const d = await connect(server.url, ws);
    const idD = (await join(d, other, 'Di')).self.id;
    assertErr(await emitAck(a, 'signal', { room, to: idD, data: { type: 'offer', sdp: SDP_OFFER } }), 'unknown_peer', 'peer of another room');
    await assertNoEvent(d, 'signal', () => true, 'to a peer of another room');
    for (const s of [b, c]) await assertNoEvent(s, 'signal');
    assert.ok(ids.a);
  });

  it('unknown_peer: a peer that has left the room (same socket, other room still joined)', async () => {
    const { room, a, b, ids } = await trio('left');
    const other = roomName('left-other');
    await join(b, other, 'Bo');
    assertOk(await emitAck(b, 'leave', { room }));
    await nextEvent(a, 'peer-left');
    assertErr(await emitAck(a, 'signal', { room, to: ids.b, data: { type: 'bye' } }), 'unknown_peer');
    await assertNoEvent(b, 'signal');
  });

  it('not_in_room: signalling into a room the sender has not joined (even to a peer who is there)', async () => {
    const { room, b, ids } = await trio('nir');
    const outsider = await connect(server.url, ws);
    await join(outsider, roomName('nir-own'), 'Out');
    assertErr(await emitAck(outsider, 'signal', { room, to: ids.b, data: { type: 'bye' } }), 'not_in_room', 'room not joined');
    assertErr(await emitAck(outsider, 'signal', { room: roomName('nowhere'), to: ids.b, data: { type: 'bye' } }), 'not_in_room', 'room that does not exist');
    await assertNoEvent(b, 'signal');
  });

  it('bad_request: signalling yourself', async () => {
    const { room, a, ids } = await trio('self');
    assertErr(await emitAck(a, 'signal', { room, to: ids.a, data: { type: 'offer', sdp: SDP_OFFER } }), 'bad_request');
    await assertNoEvent(a, 'signal');
  });

  it('bad_request: malformed signal payloads, and nobody receives anything', async () => {
    const { room, a, b, c, ids } = await trio('malformed');
    const cases = [
      ['data missing', { room, to: ids.b }],
      ['data null', { room, to: ids.b, data: null }],
      ['data a string', { room, to: ids.b, data: 'offer' }],
      ['data an array', { room, to: ids.b, data: [{ type: 'bye' }] }],
      ['type missing', { room, to: ids.b, data: { sdp: SDP_OFFER } }],
      ['type unknown', { room, to: ids.b, data: { type: 'pranswer', sdp: SDP_OFFER } }],
      ['type not a string', { room, to: ids.b, data: { type: 1 } }],
      ['offer without sdp', { room, to: ids.b, data: { type: 'offer' } }],
      ['answer without sdp', { room, to: ids.b, data: { type: 'answer' } }],
      ['offer with empty sdp', { room, to: ids.b, data: { type: 'offer', sdp: '' } }],
      ['offer sdp a number', { room, to: ids.b, data: { type: 'offer', sdp: 42 } }],
      ['offer sdp an object', { room, to: ids.b, data: { type: 'offer', sdp: { sdp: 'x' } } }],
      ['candidate a string', { room, to: ids.b, data: { type: 'candidate', candidate: 'candidate:1' } }],
      ['candidate without candidate string', { room, to: ids.b, data: { type: 'candidate', candidate: { sdpMid: '0', sdpMLineIndex: 0 } } }],
      ['candidate.candidate a number', { room, to: ids.b, data: { type: 'candidate', candidate: { candidate: 5, sdpMid: '0', sdpMLineIndex: 0 } } }],
      ['sdpMLineIndex a string', { room, to: ids.b, data: { type: 'candidate', candidate: { ...CANDIDATE, sdpMLineIndex: '0' } } }],
      ['sdpMLineIndex negative', { room, to: ids.b, data: { type: 'candidate', candidate: { ...CANDIDATE, sdpMLineIndex: -1 } } }],
      ['sdpMid a number', { room, to: ids.b, data: { type: 'candidate', candidate: { ...CANDIDATE, sdpMid: 0 } } }],
      ['to missing', { room, data: { type: 'bye' } }],
      ['to a number', { room, to: 7, data: { type: 'bye' } }],
      ['to null', { room, to: null, data: { type: 'bye' } }],
      ['room missing', { to: ids.b, data: { type: 'bye' } }],
      ['room a number', { room: 5, to: ids.b, data: { type: 'bye' } }],
      ['room with a space', { room: 'a b', to: ids.b, data: { type: 'bye' } }],
    ];
    for (const [label, payload] of cases) {
      assertErr(await emitAck(a, 'signal', payload), 'bad_request', `signal with ${label}`);
    }
    for (const [label, payload] of [['a string', 'offer'], ['an array', [room, ids.b, { type: 'bye' }]], ['a number', 1], ['null', null]]) {
      assertErr(await emitAck(a, 'signal', payload), 'bad_request', `signal payload ${label}`);
    }
    for (const s of [a, b, c]) await assertNoEvent(s, 'signal', () => true, 'after malformed signals');
    assert.equal(received(b, 'signal').length, 0);
    // The sender is still fine.
    assertOk(await emitAck(a, 'signal', { room, to: ids.b, data: { type: 'bye' } }));
    await nextEvent(b, 'signal');
  });
});

it('server stayed up and logged no panic', async () => {
  await server.assertHealthy();
});

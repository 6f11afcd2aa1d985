// PROTOCOL.md version 2, "Resume", as far as this server goes today: it
// holds no seat on a lost connection yet (docs/resume-design.md), so every
// token is unknown, which the protocol answers with an ordinary join whose
// ack says `"resumed": false`. A malformed token is refused, nothing joined.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import { connect, closeAll, emitAck, join, nextEvent, assertErr, roomName, UUID_RE } from './client.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { closeAll(); await server?.stop(); });

const ws = { transports: ['websocket'] };

describe('join with a resume token', () => {
  it('an unknown token: an ordinary join (new id, peer-joined for the others) whose ack says resumed: false', async () => {
    const room = roomName('resume-unknown');
    const a = await connect(server.url, ws);
    const first = await join(a, room, 'Ana');
    assert.equal(first.resumed, undefined, 'no "resumed" without a token');
    const b = await connect(server.url, ws);
    const joinedSeen = nextEvent(a, 'peer-joined');
    const ack = await join(b, room, 'Bo', { resume: 'no-such-token' });
    assert.equal(ack.ok, true);
    assert.equal(ack.resumed, false);
    assert.match(ack.self.id, UUID_RE);
    assert.notEqual(ack.self.id, first.self.id);
    assert.deepEqual(ack.peers.map((p) => p.id), [first.self.id]);
    assert.equal((await joinedSeen).id, ack.self.id);
  });

  it('an unknown token does not skip the password', async () => {
    const room = roomName('resume-pw');
    const a = await connect(server.url, ws);
    await join(a, room, 'Ana', { password: 'secret' });
    const b = await connect(server.url, ws);
    assertErr(await emitAck(b, 'join', { room, name: 'Bo', resume: 'guess' }), 'unauthorized');
    const ok = await join(b, room, 'Bo', { resume: 'guess', password: 'secret' });
    assert.equal(ok.resumed, false);
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
});

// Extension (docs/protocol-extensions.md): `media-state` carries
// `"recording": true` while the sender records the call, so nobody is
// recorded without knowing: the room is told, and a later joiner's ack
// lists it. Absent when not recording, so the payloads of those who never
// record are unchanged. With SIGNAL_CLUSTER=1 on two nodes on Redis
// (consecutive sockets land on different nodes).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './server.mjs';
import { connect, closeAll, emitAck, join, nextEvent, assertOk, assertErr, roomName } from './client.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => {
  closeAll();
  await server?.stop();
});

const ws = { transports: ['websocket'] };

/** Ana and Bo in a new room (on two nodes when scaled out). */
async function pair(tag) {
  const room = roomName(tag);
  const a = await connect(server.url, ws);
  const ana = await join(a, room, 'Ana');
  const b = await connect(server.url, ws);
  await join(b, room, 'Bo');
  await nextEvent(a, 'peer-joined');
  return { room, a, ana, b };
}

describe('recording, told with media-state', () => {
  it('the room is told who records, a later joiner sees it in its ack, and when it stops', async () => {
    const { room, a, ana, b } = await pair('rec');

    const told = nextEvent(b, 'media-state');
    assertOk(await emitAck(a, 'media-state', { room, audio: true, video: true, screen: false, recording: true }));
    assert.deepEqual(await told, { room, from: ana.self.id, audio: true, video: true, screen: false, recording: true });

    const c = await connect(server.url, ws);
    const cy = await join(c, room, 'Cy');
    const listed = cy.peers.find((p) => p.id === ana.self.id);
    assert.deepEqual(listed.media, { audio: true, video: true, screen: false, recording: true }, 'a later joiner knows');

    const stopped = nextEvent(c, 'media-state');
    assertOk(await emitAck(a, 'media-state', { room, audio: true, video: true, screen: false, recording: false }));
    assert.deepEqual(await stopped, { room, from: ana.self.id, audio: true, video: true, screen: false }, 'absent once stopped');
    const d = await connect(server.url, ws);
    const di = await join(d, room, 'Di');
    assert.deepEqual(di.peers.find((p) => p.id === ana.self.id).media, { audio: true, video: true, screen: false });
  });

  it('a media-state without the field is unchanged, and a recording that is not a boolean is refused', async () => {
    const { room, a, ana, b } = await pair('rec-bad');
    const told = nextEvent(b, 'media-state');
    assertOk(await emitAck(a, 'media-state', { room, audio: false, video: true }));
    assert.deepEqual(await told, { room, from: ana.self.id, audio: false, video: true, screen: false });
    assertErr(await emitAck(a, 'media-state', { room, audio: true, video: true, recording: 'yes' }), 'bad_request');
  });
});

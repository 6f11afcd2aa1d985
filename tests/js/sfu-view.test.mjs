// `sfu-view` (docs/protocol-extensions.md): a subscriber tells the SFU how
// tall it shows a peer's camera, so that it gets the simulcast layer that
// fits. Here, with the official socket.io client, the event's contract: acked
// `ok` in an SFU room (before and after its SFU started), every bad input
// refused with its code, and the room unharmed. Which layer then flows is
// tested in the shard's own tests (sfu/tests/shard.rs) and in a browser.

import { describe, it, before, after } from 'node:test';
import { startNode } from './server.mjs';
import { OFFER } from './sdp.mjs';
import {
  connect, closeAll, emitAck, join, nextEvent, assertOk, assertErr, roomName,
} from './client.mjs';

const ws = { transports: ['websocket'] };

describe('sfu-view', () => {
  let server;
  before(async () => {
    server = await startNode(['--sfu', '--sfu-ports', '44640-44659']);
  });
  after(async () => { closeAll(); await server?.stop(); });

  it('is acked in an SFU room before and after its SFU started; bad input gets its error code', async () => {
    const room = roomName('view');
    const [a, b] = [await connect(server.url, ws), await connect(server.url, ws)];
    const ana = await join(a, room, 'Ana', { mode: 'sfu' });
    const ben = await join(b, room, 'Ben', { mode: 'sfu' });
    // Nobody offered yet: nothing to choose, still ok.
    assertOk(await emitAck(a, 'sfu-view', { room, peer: ben.self.id, height: 360 }));
    // Ben offers: the room's SFU starts and answers.
    assertOk(await emitAck(b, 'signal', { room, to: 'sfu', data: { type: 'offer', sdp: OFFER } }));
    await nextEvent(b, 'signal', 10_000, (s) => s.room === room && s.data?.type === 'answer');
    for (const height of [0, 120, 720, 65535]) {
      assertOk(await emitAck(a, 'sfu-view', { room, peer: ben.self.id, height }), `height ${height}`);
    }
    // Bad input.
    assertErr(await emitAck(a, 'sfu-view', { room, peer: ana.self.id, height: 240 }), 'bad_request', 'its own video');
    assertErr(await emitAck(a, 'sfu-view', { room, peer: ben.self.id, height: 65536 }), 'bad_request', 'too tall');
    assertErr(await emitAck(a, 'sfu-view', { room, peer: ben.self.id, height: -1 }), 'bad_request', 'negative');
    assertErr(await emitAck(a, 'sfu-view', { room, peer: ben.self.id, height: '240' }), 'bad_request', 'a string');
    assertErr(await emitAck(a, 'sfu-view', { room, peer: ben.self.id }), 'bad_request', 'no height');
    assertErr(await emitAck(a, 'sfu-view', {
      room, peer: '00000000-0000-4000-8000-000000000000', height: 240,
    }), 'unknown_peer');
    assertErr(await emitAck(a, 'sfu-view', { room: roomName('elsewhere'), peer: ben.self.id, height: 240 }), 'not_in_room');
    // The room goes on: chat still flows between the two.
    const got = nextEvent(b, 'chat', 5_000, (m) => m.room === room);
    assertOk(await emitAck(a, 'chat', { room, text: 'still here' }));
    await got;
    await server.assertHealthy();
  });

  it('is refused in a mesh room: there is no layer to choose', async () => {
    const room = roomName('view-mesh');
    const [a, b] = [await connect(server.url, ws), await connect(server.url, ws)];
    await join(a, room, 'Ana');
    const ben = await join(b, room, 'Ben');
    const ack = assertErr(await emitAck(a, 'sfu-view', { room, peer: ben.self.id, height: 240 }), 'bad_request');
    if (!/mesh room/.test(ack.error.message)) throw new Error(`message: ${ack.error.message}`);
  });
});

// Two Chromium browsers join through the one-click link /r/<room>?name=:
// media flows both ways, and chat works over the relay and over the data
// channel, with delivery ticks and the typing indicator.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitMediaFlowing, setTransport, sendChat,
  waitMessage, fillInput, typingText, waitFor, pageState, delay,
} from './harness.mjs';

e2e('two Chromium browsers see and hear each other, and chat over relay and p2p with ticks and typing', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('two');
  const alice = await ctx.joiner('chromium', server, room, 'alice');
  const bob = await ctx.joiner('chromium', server, room, 'bob');
  const aliceId = await selfId(alice);
  const bobId = await selfId(bob);
  assert.notEqual(aliceId, bobId, 'two different peer ids');

  // Exactly one remote tile each, carrying the other's peer id.
  await waitTiles(alice, [bobId]);
  await waitTiles(bob, [aliceId]);

  // Remote media is playing both ways.
  await waitMediaFlowing(alice, bobId);
  await waitMediaFlowing(bob, aliceId);

  // Typing: while alice types, bob's #typing says so (alice keeps typing until it shows).
  await alice.focus('#chat-input');
  let typed = 0;
  let stop = false;
  const typer = (async () => {
    while (!stop && typed < 60) {
      await alice.keyboard.type('x');
      typed += 1;
      await delay(250);
    }
  })();
  try {
    const shown = await waitFor('bob: #typing says alice is typing', async () => {
      const t = await typingText(bob);
      return { ok: !!t && /typing/i.test(t) && t.includes('alice'), value: t };
    }, { timeout: 15_000, explain: () => pageState(bob) });
    ctx.note(`typing indicator: ${JSON.stringify(shown)}`);
  } finally {
    stop = true;
    await typer;
  }
  await fillInput(alice, '#chat-input', '');

  // Relay chat: alice -> bob.
  await setTransport(alice, 'relay');
  const relayText = `hello over relay ${Date.now()}`;
  await sendChat(alice, relayText);
  const got = await waitMessage(bob, relayText, (m) => m.via === 'relay', { desc: 'with data-via=relay' });
  assert.equal(got.from, aliceId, 'bob sees the relay message from alice\'s peer id (data-from)');
  assert.equal(got.textChildren, 0, '.msg-text is plain text');
  // The sender's copy gets the second tick once bob has it.
  await waitMessage(alice, relayText, (m) => m.ticks === '2', { desc: 'own relay message with .msg-ticks[data-ticks=2]' });

  // Peer-to-peer chat: alice -> bob over the data channel.
  await setTransport(alice, 'p2p');
  const p2pText = `hello over the data channel ${Date.now()}`;
  await sendChat(alice, p2pText);
  const gotP2p = await waitMessage(bob, p2pText, (m) => m.via === 'p2p', { desc: 'with data-via=p2p' });
  assert.equal(gotP2p.from, aliceId, 'bob sees the p2p message from alice\'s peer id (data-from)');
  const own = await waitMessage(alice, p2pText, (m) => m.ticks === '2', { desc: 'own p2p message with .msg-ticks[data-ticks=2]' });
  assert.equal(own.via, 'p2p');

  // And the other way, bob -> alice over relay, to be sure both directions work.
  await setTransport(bob, 'relay');
  const back = `reply from bob ${Date.now()}`;
  await sendChat(bob, back);
  const gotBack = await waitMessage(alice, back, (m) => m.via === 'relay', { desc: 'with data-via=relay' });
  assert.equal(gotBack.from, bobId);
});

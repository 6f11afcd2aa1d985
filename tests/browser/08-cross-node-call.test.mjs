// Scale-out: two server processes (nodes) on one real Redis; alice's browser
// is connected to node A, bob's to node B. Signalling, presence and relay
// chat all cross nodes through Redis, and the mesh call must work as on one
// server: video playing both ways.

import assert from 'node:assert/strict';
import { startRedis } from '../js/redis.mjs';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitMediaFlowing, setTransport, sendChat, waitMessage,
} from './harness.mjs';

e2e('two Chromium browsers on different nodes of one Redis complete a mesh call and chat', async (ctx) => {
  const redis = await startRedis();
  try {
    const flags = ['--redis-url', redis.url, '--redis-prefix', `e2e${process.pid}`];
    const nodeA = await ctx.server(flags);
    const nodeB = await ctx.server(flags);
    assert.notEqual(nodeA.port, nodeB.port, 'two server processes');
    const room = uniqueRoom('nodes');
    const alice = await ctx.joiner('chromium', nodeA, room, 'alice');
    const bob = await ctx.joiner('chromium', nodeB, room, 'bob');
    const aliceId = await selfId(alice);
    const bobId = await selfId(bob);

    await waitTiles(alice, [bobId]);
    await waitTiles(bob, [aliceId]);
    await waitMediaFlowing(alice, bobId);
    await waitMediaFlowing(bob, aliceId);

    await setTransport(bob, 'relay');
    const text = `across nodes ${Date.now()}`;
    await sendChat(bob, text);
    const got = await waitMessage(alice, text, (m) => m.via === 'relay', { desc: 'with data-via=relay' });
    assert.equal(got.from, bobId);
    await waitMessage(bob, text, (m) => m.ticks === '2', { desc: 'own message with the second tick' });

    for (const n of [nodeA, nodeB]) {
      const metrics = await (await fetch(`${n.url}/metrics`)).text();
      assert.match(metrics, /^signal_redis_up 1$/m, 'each node is on Redis');
    }
  } finally {
    await redis.stop();
  }
});

// Three Chromium browsers in one room form a full mesh: each shows the other
// two as tiles with their video playing.

import assert from 'node:assert/strict';
import { e2e, uniqueRoom, selfId, waitTiles, waitVideoPlaying, waitFramesIncreasing } from './harness.mjs';

e2e('three Chromium browsers form a full mesh with every remote video playing', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('mesh');
  const pages = [];
  for (const name of ['ana', 'ben', 'cai']) {
    pages.push(await ctx.joiner('chromium', server, room, name));
  }
  const ids = [];
  for (const p of pages) ids.push(await selfId(p));
  assert.equal(new Set(ids).size, 3, 'three distinct peer ids');

  for (const [i, p] of pages.entries()) {
    await waitTiles(p, ids.filter((_, j) => j !== i), { timeout: 45_000 });
  }
  for (const [i, p] of pages.entries()) {
    for (const [j, id] of ids.entries()) {
      if (i === j) continue;
      await waitVideoPlaying(p, id, { timeout: 60_000 });
      await waitFramesIncreasing(p, id, { timeout: 60_000 });
    }
  }
}, { timeout: 240_000 });

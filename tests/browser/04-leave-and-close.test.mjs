// Leaving: a peer that clicks #leave-button vanishes from the others' grids
// at once; a peer whose browser is closed (or frozen) is a lost connection:
// its seat is held for the (shortened) grace period for a resume
// (docs/resume.md), then it vanishes too.

import assert from 'node:assert/strict';
import { e2e, uniqueRoom, selfId, waitTiles, waitFor, pageState, waitVideoPlaying } from './harness.mjs';

const PING_INTERVAL_MS = 1000;
const PING_TIMEOUT_MS = 1000;
const GRACE_MS = 2000;
const FLAGS = [
  '--ping-interval-ms', String(PING_INTERVAL_MS), '--ping-timeout-ms', String(PING_TIMEOUT_MS),
  '--resume-grace-secs', String(GRACE_MS / 1000),
];

e2e('a peer that clicks Leave and a peer whose browser closes both disappear from the others', async (ctx) => {
  const server = await ctx.server(FLAGS);
  const room = uniqueRoom('leave');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const cai = await ctx.joiner('chromium', server, room, 'cai');
  const [anaId, benId, caiId] = [await selfId(ana), await selfId(ben), await selfId(cai)];

  await waitTiles(ana, [benId, caiId], { timeout: 45_000 });
  await waitTiles(ben, [anaId, caiId], { timeout: 45_000 });
  await waitTiles(cai, [anaId, benId], { timeout: 45_000 });
  // Make sure the calls are really up before tearing them down.
  await waitVideoPlaying(ben, anaId, { timeout: 60_000 });
  await waitVideoPlaying(ben, caiId, { timeout: 60_000 });

  // 1. ana clicks Leave.
  await ana.waitForSelector('#leave-button');
  let t0 = Date.now();
  await ana.click('#leave-button');
  await waitTiles(ben, [caiId], { timeout: 15_000 });
  await waitTiles(cai, [benId], { timeout: 15_000 });
  ctx.note(`tile of the peer who left gone after ${Date.now() - t0} ms`);
  // The leaver's own page no longer shows remote tiles.
  await waitFor('ana: no remote tiles after leaving', async () => {
    const s = await pageState(ana);
    return { ok: s.tiles.length === 0, value: { state: s.room?.state, tiles: s.tiles.length } };
  }, { timeout: 15_000 });

  // 2. cai's browser is closed without leaving.
  t0 = Date.now();
  await ctx.closeBrowserOf(cai);
  const closedAt = Date.now();
  await waitTiles(ben, [], { timeout: PING_INTERVAL_MS + PING_TIMEOUT_MS + GRACE_MS + 8_000 });
  const gone = Date.now() - closedAt;
  ctx.note(`tile of the closed browser gone ${gone} ms after browser.close() returned (${closedAt - t0} ms to close; grace ${GRACE_MS} ms)`);
  assert.ok(gone <= PING_INTERVAL_MS + PING_TIMEOUT_MS + GRACE_MS + 8_000);

  // ben is still fine.
  const s = await pageState(ben);
  assert.equal(s.room?.state, 'joined', `ben still joined: ${JSON.stringify(s.room)}`);
}, { timeout: 240_000 });

// browser.close() closes the WebSocket, so the server learns at once (and
// holds the seat for the grace period: a close looks like a reload). A
// frozen browser (SIGSTOP: sockets open, no pongs) is only noticed by the
// Engine.IO ping: its tile must go within ping interval + timeout + grace
// (+ slack).
e2e('a frozen browser that stops answering pings disappears after the ping timeout', async (ctx) => {
  const server = await ctx.server(FLAGS);
  const room = uniqueRoom('frozen');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await waitTiles(ana, [benId]);
  await waitTiles(ben, [anaId]);
  await waitVideoPlaying(ana, benId, { timeout: 60_000 });

  ctx.freezeBrowserOf(ben);
  const frozenAt = Date.now();
  try {
    await waitTiles(ana, [], { timeout: PING_INTERVAL_MS + PING_TIMEOUT_MS + GRACE_MS + 8_000 });
    const gone = Date.now() - frozenAt;
    ctx.note(`tile of the frozen browser gone ${gone} ms after SIGSTOP (ping interval ${PING_INTERVAL_MS} + timeout ${PING_TIMEOUT_MS} + grace ${GRACE_MS})`);
  } finally {
    await ctx.killBrowserOf(ben);
  }
  const s = await pageState(ana);
  assert.equal(s.room?.state, 'joined', `ana still joined: ${JSON.stringify(s.room)}`);
}, { timeout: 180_000 });

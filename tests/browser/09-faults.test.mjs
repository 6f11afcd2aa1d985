// Faults a real call must survive, with the page never reloaded:
// - the server crashes and comes back on the same port mid-call: both
//   browsers show that they are reconnecting while their call goes on (the
//   media is between them), and rejoin by themselves; one node keeps no
//   seats across a restart, so they rejoin as new participants and say so;
// - one browser's network is cut for a few seconds (netcut.mjs), as a Wi-Fi
//   drop (the browser goes offline) and as a dead uplink (packets vanish,
//   nothing tells the browser): the call recovers on its own with the same
//   peer ids (the seat is taken back: docs/resume.md), the other side never
//   keeps a stale tile and never notices anything but the media.
// A browser killed outright, a reload, and a signaling-only cut: 13-resume.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitFor, pageState, waitMediaFlowing,
  waitJoinedState, joinRoom, sendChat, waitMessage,
} from './harness.mjs';
import { IsolatedHost } from './netcut.mjs';

/** Set a marker in the page's JS realm; `sameDocument` is true while it survives (no reload). */
async function markDocument(page) {
  await page.evaluate(() => { window.__faultMarker = 'still here'; });
}
async function sameDocument(page) {
  return page.evaluate(() => window.__faultMarker === 'still here');
}

async function waitRoomState(page, want, timeout) {
  return waitFor(`${page.__label}: #room[data-state=${want}]`, async () => {
    const s = await pageState(page);
    return { ok: s.room?.state === want, value: { room: s.room, status: s.status } };
  }, { timeout, interval: 100 });
}

async function callUp(a, b, aId, bId) {
  await waitTiles(a, [bId], { timeout: 45_000 });
  await waitTiles(b, [aId], { timeout: 45_000 });
  await waitMediaFlowing(a, bId, { timeout: 60_000 });
  await waitMediaFlowing(b, aId, { timeout: 60_000 });
}

e2e('server crash and restart mid-call: both browsers reconnect, rejoin and the call resumes without a reload', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('restart');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const [ana1, ben1] = [await selfId(ana), await selfId(ben)];
  await callUp(ana, ben, ana1, ben1);
  await markDocument(ana);
  await markDocument(ben);

  const crashedAt = Date.now();
  await ctx.crashServer(server);
  // The UI says what is happening; the call itself goes on meanwhile.
  for (const p of [ana, ben]) {
    const seen = await waitRoomState(p, 'reconnecting', 15_000);
    assert.equal(seen.status?.kind, 'reconnecting', `${p.__label}: status banner while the server is down: ${JSON.stringify(seen.status)}`);
    assert.equal((await pageState(p)).tiles.length, 1, `${p.__label}: the other's tile stays while the server is away`);
  }
  await waitMediaFlowing(ana, ben1, { timeout: 10_000 });
  await waitMediaFlowing(ben, ana1, { timeout: 10_000 });

  // Same address, new process: nothing of the old room survives on the server.
  const again = await ctx.server([], { port: server.port });
  const restartedAt = Date.now();
  await waitJoinedState(ana, { timeout: 30_000 });
  await waitJoinedState(ben, { timeout: 30_000 });
  const [ana2, ben2] = [await selfId(ana), await selfId(ben)];
  assert.notEqual(ana2, ana1, 'one node keeps no seats across a restart: a new membership with a new peer id');
  assert.notEqual(ben2, ben1);
  for (const p of [ana, ben]) {
    const notices = await p.evaluate(() => [...document.querySelectorAll('li.notice')].map((n) => n.textContent));
    assert.ok(notices.some((n) => /rejoined the call as a new participant/.test(n)), `${p.__label}: says it rejoined as new: ${JSON.stringify(notices)}`);
  }
  await callUp(ana, ben, ana2, ben2);
  ctx.note(`call resumed ${Date.now() - restartedAt} ms after the new server listened (${restartedAt - crashedAt} ms down)`);

  for (const p of [ana, ben]) {
    const s = await pageState(p);
    assert.equal(s.status, null, `${p.__label}: banner cleared after the rejoin: ${JSON.stringify(s.status)}`);
    assert.ok(await sameDocument(p), `${p.__label}: the page was not reloaded`);
  }
  // The relay works again, on the new server.
  await sendChat(ana, 'back after the restart');
  await waitMessage(ben, 'back after the restart', (m) => m.from === ana2);
  assert.ok(again.alive);
}, { timeout: 240_000 });

/**
 * One browser (ben) on an isolated host, one (ana) beside the server; ben's
 * network is cut for cutMs in `mode` (netcut.mjs), then restored.
 */
async function networkCut(ctx, mode, cutMs) {
  const host = await IsolatedHost.create();
  ctx.onClose(() => host.destroy());
  // 0.0.0.0: reachable from the isolated host through the veth link.
  const server = await ctx.server([], { host: '0.0.0.0' });
  const room = uniqueRoom(`cut-${mode}`);
  // Not server.url (http://0.0.0.0:…), which is no secure context for getUserMedia.
  const ana = await ctx.joiner('chromium', { url: `http://127.0.0.1:${server.port}` }, room, 'ana');
  const ben = await host.chromiumPage(ctx, server, 'ben');
  await joinRoom(ben, { url: host.urlOf(server) }, room, 'ben');
  const [ana1, ben1] = [await selfId(ana), await selfId(ben)];
  await callUp(ana, ben, ana1, ben1);
  await markDocument(ana);
  await markDocument(ben);

  await host.cut(mode);
  const cutAt = Date.now();
  // What each page shows during the cut.
  const seen = { ana: new Set(), ben: new Set() };
  while (Date.now() - cutAt < cutMs) {
    const [a, b] = await Promise.all([pageState(ana), pageState(ben)]);
    for (const [who, s] of [['ana', a], ['ben', b]]) {
      const at = `@${((Date.now() - cutAt) / 1000).toFixed(1)}s`;
      const add = (k) => { if (![...seen[who]].some((x) => x.startsWith(`${k}@`))) seen[who].add(`${k}${at}`); };
      add(`room:${s.room?.state}`);
      for (const t of s.tiles) add(`tile:${t.conn}:${t.quality}`);
      if (s.status) add(`status:${s.status.kind}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await host.restore();
  const restoredAt = Date.now();
  const during = `during the ${cutMs} ms ${mode} cut: ana saw ${[...seen.ana].join(', ')}; ben saw ${[...seen.ben].join(', ')}`;
  ctx.note(during);
  assert.ok([...seen.ana, ...seen.ben].some((s) => /disconnected|failed|reconnecting/.test(s)),
    `the cut shows in the UI (a tile leaves "connected", or the room is reconnecting); ${during}`);
  assert.ok(![...seen.ana].some((x) => x.startsWith('room:reconnecting')), `ana, whose network is fine, never loses the server; ${during}`);

  // Recovery: one tile each, the same ids (ben took his seat back), media both ways.
  await waitJoinedState(ben, { timeout: 30_000 });
  const ben2 = await selfId(ben);
  assert.equal(ben2, ben1, 'ben took his seat back: the same peer id');
  await waitTiles(ana, [ben2], { timeout: 30_000 });
  await waitTiles(ben, [ana1], { timeout: 30_000 });
  await waitMediaFlowing(ana, ben2, { timeout: 45_000 });
  await waitMediaFlowing(ben, ana1, { timeout: 45_000 });
  ctx.note(`recovered ${Date.now() - restoredAt} ms after the network came back; ben ${ben2 === ben1 ? 'kept his membership' : 'rejoined with a new id'}`);
  for (const p of [ana, ben]) assert.ok(await sameDocument(p), `${p.__label}: the page was not reloaded`);
  await sendChat(ben, `back after the ${mode} cut`);
  await waitMessage(ana, `back after the ${mode} cut`, (m) => m.from === ben2);
}

e2e('Wi-Fi drop: one browser goes offline for 6 s; the call recovers by itself, no stale tile, no reload', async (ctx) => {
  await networkCut(ctx, 'offline', 6_000);
}, { timeout: 240_000 });

// 12 s: Chromium calls ICE "disconnected" after about 7.5 s without an
// answer (so the tiles show it), and the Engine.IO ping (25 s + 20 s) still
// holds the signaling connection: the call must come back on its own.
e2e('dead uplink: one browser\'s packets vanish for 12 s; the call recovers by itself, no stale tile, no reload', async (ctx) => {
  await networkCut(ctx, 'blackhole', 12_000);
}, { timeout: 240_000 });

// Calls that survive a signaling drop (issue 16; PROTOCOL.md version 2,
// "Resume"; docs/resume.md): the seat is held, the browser takes it back
// with its token, and the media between browsers never depended on the
// server.
//
// - the signaling path of one browser is cut for 5 s (proxy.mjs: its
//   WebSocket is dropped and the server refuses it for 5 s, while the
//   browsers' own media path is untouched): same peer ids on both sides,
//   the remote video's frame count never stalls over 1 s, a chat written
//   during the cut arrives exactly once, no one leaves;
// - a page reload in a call: the same peer id, the other side sees
//   "reconnecting" and then the tile again (one tile), media flows again;
// - a browser killed outright: its tile says reconnecting, and goes after
//   the grace period;
// - scaled out, a 3-way call over two nodes: one node is stopped (SIGTERM)
//   and restarted; its peers resume with their ids (one on the other node,
//   through a failing-over proxy) and the video never stopped.

import assert from 'node:assert/strict';
import { startRedis } from '../js/redis.mjs';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitFor, pageState, waitMediaFlowing, waitJoinedState,
  joinRoom, sendChat, waitMessage, setTransport, remotePeerIds,
} from './harness.mjs';
import { TcpProxy } from './proxy.mjs';

// Short heartbeats, so that both ends see a dead signaling path within
// 2 s (the default 25 s + 20 s would outlast a 5 s cut).
const QUICK_PINGS = ['--ping-interval-ms', '1000', '--ping-timeout-ms', '1000'];

/** The tile of `peerId` on `page`: presence and whether it exists. */
async function tileOf(page, peerId) {
  return page.evaluate((id) => {
    const t = document.querySelector(`.tile[data-peer-id="${CSS.escape(id)}"]`);
    return t ? { presence: t.getAttribute('data-presence'), overlay: t.querySelector('.tile-overlay')?.textContent ?? null } : null;
  }, peerId);
}

/** How many `.msg` elements carry exactly `text`. */
async function countMessages(page, text) {
  return page.evaluate((want) => [...document.querySelectorAll('.msg .msg-text')]
    .filter((t) => t.textContent === want).length, text);
}

/** Notices in the chat log that say someone left. */
async function leftNotices(page) {
  return page.evaluate(() => [...document.querySelectorAll('li.notice')]
    .map((n) => n.textContent).filter((t) => / left$/.test(t ?? '')));
}

/**
 * Samples, every 100 ms, the decoded frame count of each remote video on
 * each page (getVideoPlaybackQuality, not the 1 s stats poll), and keeps the
 * longest time each went without a new frame. `stop()` ends it.
 */
function watchFrames(pages) {
  const stalls = new Map(); // `${page} <- ${peer}` -> {last, since, worst}
  let running = true;
  const loop = (async () => {
    while (running) {
      const now = Date.now();
      for (const page of pages) {
        const counts = await page.evaluate(() => Object.fromEntries(
          [...document.querySelectorAll('video[data-peer-id]')]
            .filter((v) => v.srcObject)
            .map((v) => [v.getAttribute('data-peer-id'), v.getVideoPlaybackQuality().totalVideoFrames]),
        )).catch(() => ({}));
        for (const [peer, frames] of Object.entries(counts)) {
          const key = `${page.__label} <- ${peer.slice(0, 8)}`;
          const s = stalls.get(key) ?? { last: -1, since: now, worst: 0 };
          if (frames > s.last) {
            s.last = frames;
            s.since = now;
          }
          s.worst = Math.max(s.worst, now - s.since);
          stalls.set(key, s);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return Object.fromEntries([...stalls].map(([k, s]) => [k, s.worst]));
    },
  };
}

/**
 * Samples `peerId`'s tile on `page` every 100 ms until stopped; returns what
 * it saw. Resolves once the first sample is in, so that a change made right
 * after it (a cut) is never the first thing seen.
 */
async function watchTile(page, peerId) {
  const seen = [];
  let running = true;
  const sample = async () => {
    const t = await tileOf(page, peerId).catch(() => 'gone');
    const v = t === null ? 'absent' : (t === 'gone' ? 'gone' : t.presence);
    if (seen.at(-1) !== v) seen.push(v);
  };
  await sample();
  const loop = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 100));
      await sample();
    }
  })();
  return { async stop() { running = false; await loop; return seen; } };
}

async function callUp(pages, ids) {
  for (const [i, p] of pages.entries()) {
    const others = ids.filter((_, j) => j !== i);
    await waitTiles(p, others, { timeout: 45_000 });
    for (const id of others) await waitMediaFlowing(p, id, { timeout: 60_000 });
  }
}

/**
 * ben's signaling path is cut for 5 s; `sfu`: in an SFU room (the media
 * goes through the server's SFU, which a cut of the WebSocket does not
 * touch either).
 */
async function signalingCut(ctx, sfu) {
  const server = await ctx.server(sfu ? [...QUICK_PINGS, '--sfu', '--sfu-ports', '42400-42500'] : QUICK_PINGS);
  const proxy = await TcpProxy.start([server.port]);
  ctx.onClose(() => proxy.stop());
  const room = uniqueRoom(sfu ? 'cut-sfu' : 'cut');
  const opts = sfu ? { extra: { mode: 'sfu' } } : {};
  const ana = await ctx.joiner('chromium', server, room, 'ana', opts);
  const ben = await ctx.joiner('chromium', { url: proxy.url }, room, 'ben', opts);
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await callUp([ana, ben], [anaId, benId]);
  await setTransport(ben, 'relay');

  const frames = watchFrames([ana, ben]);
  const benOnAna = await watchTile(ana, benId);
  proxy.cut();
  const cutAt = Date.now();
  await waitFor('ben: #room[data-state=reconnecting]', async () => {
    const s = await pageState(ben);
    return { ok: s.room?.state === 'reconnecting', value: s.room };
  }, { timeout: 5_000, interval: 50 });
  const text = `written during the cut ${Date.now()}`;
  await sendChat(ben, text);
  const queued = await waitMessage(ben, text);
  assert.equal(queued.ticks, '0', 'no tick before the server has it');
  await waitFor('ana: ben\'s tile says reconnecting', async () => {
    const t = await tileOf(ana, benId);
    return { ok: t?.presence === 'reconnecting', value: t };
  }, { timeout: 5_000, interval: 50 });
  const wait = 5_000 - (Date.now() - cutAt);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait)); // the cut lasts 5 s: the scenario, not a sync point
  proxy.restore();
  const restoredAt = Date.now();
  await waitJoinedState(ben, { timeout: 20_000 });
  const resumedMs = Date.now() - restoredAt;
  await waitMessage(ana, text, (m) => m.from === benId, { timeout: 10_000 });
  await waitMessage(ben, text, (m) => Number(m.ticks) >= 1, { timeout: 10_000, desc: 'ticked once the server has it' });
  await waitFor('ana: ben\'s tile present again', async () => {
    const t = await tileOf(ana, benId);
    return { ok: t?.presence === 'present', value: t };
  }, { timeout: 10_000, interval: 50 });
  const worst = await frames.stop();
  const tileSeen = await benOnAna.stop();
  ctx.note(`${sfu ? 'SFU room: ' : ''}network back -> resumed: ${resumedMs} ms; longest video stall during the cut (ms): ${JSON.stringify(worst)}; ben's tile on ana: ${tileSeen.join(' -> ')}`);

  assert.equal(await selfId(ben), benId, 'ben kept his peer id');
  assert.equal(await selfId(ana), anaId);
  assert.deepEqual(await remotePeerIds(ana), [benId]);
  assert.deepEqual(await remotePeerIds(ben), [anaId]);
  assert.deepEqual(tileSeen, ['present', 'reconnecting', 'present'], 'ben\'s tile on ana: never gone');
  assert.deepEqual(await leftNotices(ana), [], 'no peer-left on ana');
  assert.equal(await countMessages(ana, text), 1, 'the chat arrived exactly once');
  assert.equal(await countMessages(ben, text), 1, 'and is shown once to its author');
  assert.equal(Object.keys(worst).length, 2, `both remote videos watched: ${JSON.stringify(worst)}`);
  for (const [k, ms] of Object.entries(worst)) assert.ok(ms <= 1000, `${k}: video stalled ${ms} ms`);
  await waitMediaFlowing(ana, benId, { timeout: 10_000 });
  await waitMediaFlowing(ben, anaId, { timeout: 10_000 });
}

e2e('signaling cut for 5 s: same ids, video never stalls over 1 s, a chat written meanwhile arrives once, nobody leaves', async (ctx) => {
  await signalingCut(ctx, false);
}, { timeout: 240_000 });

e2e('the same cut in an SFU room: the media through the SFU never stalls either', async (ctx) => {
  await signalingCut(ctx, true);
}, { timeout: 240_000 });

e2e('a page reload in a call takes the seat back: same id, the other side sees reconnecting then the tile again, one tile', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('reload');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await callUp([ana, ben], [anaId, benId]);

  const benOnAna = await watchTile(ana, benId);
  const reloadedAt = Date.now();
  await ben.reload({ waitUntil: 'domcontentloaded' });
  await waitJoinedState(ben, { timeout: 30_000 });
  assert.equal(await selfId(ben), benId, 'the same peer id after the reload');
  await waitTiles(ben, [anaId], { timeout: 30_000 });
  await waitMediaFlowing(ben, anaId, { timeout: 30_000 });
  await waitMediaFlowing(ana, benId, { timeout: 30_000 });
  ctx.note(`media both ways again ${Date.now() - reloadedAt} ms after the reload`);
  const seen = await benOnAna.stop();
  ctx.note(`ben's tile on ana: ${seen.join(' -> ')}`);
  assert.ok(!seen.includes('absent'), `the tile never went away: ${seen.join(' -> ')}`);
  assert.equal(seen.at(-1), 'present');
  assert.deepEqual(await remotePeerIds(ana), [benId], 'one tile, no duplicate');
  assert.deepEqual(await leftNotices(ana), []);
}, { timeout: 180_000 });

e2e('a page reload in an SFU room takes the seat back: same id, the SFU drops the old connection, media flows again', async (ctx) => {
  const server = await ctx.server(['--sfu', '--sfu-ports', '42200-42300']);
  const room = uniqueRoom('reload-sfu');
  const sfu = { extra: { mode: 'sfu' } };
  const ana = await ctx.joiner('chromium', server, room, 'ana', sfu);
  const ben = await ctx.joiner('chromium', server, room, 'ben', sfu);
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await callUp([ana, ben], [anaId, benId]);
  const reloadedAt = Date.now();
  await ben.reload({ waitUntil: 'domcontentloaded' });
  await waitJoinedState(ben, { timeout: 30_000 });
  assert.equal(await selfId(ben), benId, 'the same peer id after the reload');
  await waitMediaFlowing(ben, anaId, { timeout: 30_000 });
  await waitMediaFlowing(ana, benId, { timeout: 30_000 });
  ctx.note(`SFU room: media both ways again ${Date.now() - reloadedAt} ms after the reload`);
  assert.deepEqual(await remotePeerIds(ana), [benId], 'one tile, no duplicate');
  // The SFU holds one connection per peer: the page before's is gone.
  const text = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(text, /^signal_sfu_peers 2$/m, 'two SFU peer connections, not three');
}, { timeout: 180_000 });

e2e('a browser killed outright: its tile says reconnecting, then goes after the grace period', async (ctx) => {
  const server = await ctx.server(['--resume-grace-secs', '3']);
  const room = uniqueRoom('killed');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const cai = await ctx.joiner('chromium', server, room, 'cai');
  const [anaId, benId, caiId] = [await selfId(ana), await selfId(ben), await selfId(cai)];
  await waitTiles(ana, [benId, caiId], { timeout: 45_000 });
  await waitMediaFlowing(ana, caiId, { timeout: 60_000 });

  const killedAt = Date.now();
  await ctx.killBrowserOf(cai);
  await waitFor('ana: cai\'s tile says reconnecting', async () => {
    const t = await tileOf(ana, caiId);
    return { ok: t?.presence === 'reconnecting', value: t };
  }, { timeout: 45_000, interval: 100 });
  const heldAt = Date.now();
  assert.match((await tileOf(ana, caiId)).overlay ?? '', /Reconnecting/);
  await waitTiles(ana, [benId], { timeout: 15_000 });
  await waitTiles(ben, [anaId], { timeout: 15_000 });
  ctx.note(`killed browser: reconnecting after ${heldAt - killedAt} ms, gone after ${Date.now() - killedAt} ms (grace 3 s)`);
  assert.ok(Date.now() - heldAt >= 2000, 'held for the grace period before it left');
  await waitMediaFlowing(ana, benId, { timeout: 30_000 });
}, { timeout: 180_000 });

e2e('scaled out: a node of a 3-way call is stopped (SIGTERM) and restarted; its peers resume with their ids, one on the other node, and the video never stops', async (ctx) => {
  const redis = await startRedis();
  ctx.onClose(() => redis.stop());
  const flags = ['--redis-url', redis.url, '--redis-prefix', `resume${process.pid}`, ...QUICK_PINGS];
  let nodeA = await ctx.server(flags);
  const nodeB = await ctx.server(flags);
  // ana reaches the deployment through a balancer that prefers node A.
  const lb = await TcpProxy.start([nodeA.port, nodeB.port]);
  ctx.onClose(() => lb.stop());
  const room = uniqueRoom('nodes');
  const ana = await ctx.joiner('chromium', { url: lb.url }, room, 'ana');
  const ben = await ctx.joiner('chromium', nodeB, room, 'ben');
  const cai = await ctx.joiner('chromium', nodeA, room, 'cai');
  const ids = [await selfId(ana), await selfId(ben), await selfId(cai)];
  await callUp([ana, ben, cai], ids);
  assert.ok(lb.routed.every((p) => p === nodeA.port), 'ana started on node A');

  const frames = watchFrames([ana, ben, cai]);
  const stoppedAt = Date.now();
  await ctx.stopServer(nodeA);
  // ana fails over to node B and takes her seat back there.
  await waitFor('ana resumed through node B', async () => {
    const s = await pageState(ana);
    return { ok: lb.routed.includes(nodeB.port) && s.room?.state === 'joined', value: { routed: lb.routed, room: s.room } };
  }, { timeout: 20_000, interval: 100 });
  const anaBackMs = Date.now() - stoppedAt;
  // Node A comes back on its port; cai, who only knows node A, resumes there.
  nodeA = await ctx.server(flags, { port: nodeA.port });
  await waitJoinedState(cai, { timeout: 30_000 });
  const caiBackMs = Date.now() - stoppedAt;
  await new Promise((r) => setTimeout(r, 1000)); // a second of the call after everyone is back, still watched
  const worst = await frames.stop();
  ctx.note(`node A stopped: ana resumed on node B after ${anaBackMs} ms, cai on the restarted node A after ${caiBackMs} ms; longest video stall (ms): ${JSON.stringify(worst)}`);

  assert.deepEqual([await selfId(ana), await selfId(ben), await selfId(cai)], ids, 'every peer kept its id');
  for (const [i, p] of [ana, ben, cai].entries()) {
    assert.deepEqual((await remotePeerIds(p)).sort(), ids.filter((_, j) => j !== i).sort(), `${p.__label}: the same tiles`);
    assert.deepEqual(await leftNotices(p), [], `${p.__label}: nobody left`);
  }
  assert.equal(Object.keys(worst).length, 6, `all six remote videos watched: ${JSON.stringify(worst)}`);
  for (const [k, ms] of Object.entries(worst)) assert.ok(ms <= 1000, `${k}: video stalled ${ms} ms`);
  await sendChat(cai, 'after the node came back');
  await waitMessage(ana, 'after the node came back', (m) => m.from === ids[2], { timeout: 10_000 });
}, { timeout: 240_000 });

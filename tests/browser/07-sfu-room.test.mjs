// SFU mode: three Chromium browsers join through /r/<room>?name=...&mode=sfu.
// Each has ONE peer connection (to the server) yet sees the two others'
// video playing, and the server's /metrics show the media went through the
// SFU: RTP received from publishers and forwarded to subscribers. /metrics
// names no room and no peer (docs/security.md): each test's server hosts one
// SFU room, so its totals are that room's.

import assert from 'node:assert/strict';
import { e2e, uniqueRoom, selfId, joinRoom, waitTiles, waitVideoPlaying, waitFramesIncreasing, waitFor, keepPeerConnections } from './harness.mjs';
import { IsolatedHost } from './netcut.mjs';

/** The SFU totals of `server` (one SFU room per test server). */
async function sfuCounters(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const read = (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.split(' ').pop()) : null;
  };
  return {
    rtpIn: read('signal_sfu_rtp_in_total') ?? 0,
    rtpOut: read('signal_sfu_rtp_out_total') ?? 0,
    read,
    text,
  };
}

e2e('three Chromium browsers in an SFU room see each other through the server', async (ctx) => {
  // A port range of our own, so this test cannot collide with anything else.
  const server = await ctx.server(['--sfu', '--sfu-ports', '42000-42100']);
  const room = uniqueRoom('sfu');
  const pages = [];
  for (const name of ['ana', 'ben', 'cai']) {
    pages.push(await ctx.joiner('chromium', server, room, name, { extra: { mode: 'sfu' } }));
  }
  const ids = [];
  for (const p of pages) ids.push(await selfId(p));
  assert.equal(new Set(ids).size, 3, 'three distinct peer ids');
  for (const p of pages) {
    assert.equal(await p.evaluate(() => document.querySelector('#room')?.dataset.state), 'joined');
  }

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

  // The media went through the SFU: it received from 3 publishers and
  // forwarded to 2 subscribers each, and it keeps doing so.
  const first = await sfuCounters(server);
  assert.ok(first.rtpIn > 0 && first.rtpOut > 0, `SFU counters:\n${first.text}`);
  const later = await waitFor('SFU forwarding keeps increasing', async () => {
    const now = await sfuCounters(server);
    return now.rtpOut > first.rtpOut && now.rtpIn > first.rtpIn ? now : null;
  }, { timeout: 20_000 });

  // Each browser publishes its microphone and camera once: 6 tracks, none
  // refused (a client that sent its camera on the SFU's forwarded-track
  // transceivers would publish in a loop); three peers in one room.
  assert.equal(later.read('signal_sfu_published_tracks'), 6, `published tracks:\n${later.text}`);
  assert.equal(later.read('signal_sfu_tracks_refused_total'), 0);
  assert.equal(later.read('signal_sfu_peers'), 3);
  assert.equal(later.read('signal_sfu_rooms'), 1);

  // Over the peers: media was published and sent, and no packet was dropped
  // for a slow subscriber. (Each page seeing the others' video already
  // shows that every peer published and was sent media.)
  assert.ok(later.read('signal_sfu_bytes_in_total') > 0 && later.read('signal_sfu_bytes_out_total') > 0, later.text);
  assert.equal(later.read('signal_sfu_rtp_dropped_total'), 0, later.text);
  assert.notEqual(later.read('signal_sfu_lost_out_total'), null, 'a lost_out series');
  // And /metrics names neither the room nor a peer.
  for (const secret of [room, ...ids]) assert.ok(!later.text.includes(secret), `/metrics names ${secret}`);
}, { timeout: 240_000 });

e2e('H.264 through the SFU: two Chromium ask for it with ?codec=h264 and receive H.264', async (ctx) => {
  const server = await ctx.server(['--sfu', '--sfu-ports', '42200-42300']);
  const room = uniqueRoom('sfu264');
  const pages = [];
  for (const name of ['hana', 'ivo']) {
    pages.push(await ctx.joiner('chromium', server, room, name, { extra: { mode: 'sfu', codec: 'h264' } }));
  }
  const ids = [];
  for (const p of pages) ids.push(await selfId(p));
  for (const [i, p] of pages.entries()) {
    const other = ids[1 - i];
    await waitTiles(p, [other], { timeout: 45_000 });
    await waitVideoPlaying(p, other, { timeout: 60_000 });
    await waitFramesIncreasing(p, other, { timeout: 60_000 });
    const codec = await waitFor(`${other}'s video codec on the tile`, () => p.evaluate((id) =>
      document.querySelector(`.tile[data-peer-id="${CSS.escape(id)}"]`)?.dataset.videoCodec || null, other),
    { timeout: 20_000 });
    assert.equal(codec.toLowerCase(), 'video/h264', `page ${i} receives ${codec}`);
  }
  const { rtpOut } = await sfuCounters(server);
  assert.ok(rtpOut > 0, 'forwarded by the SFU');
}, { timeout: 180_000 });

e2e('ICE-TCP through the SFU: a Chromium on a network that lets no UDP out joins over TCP, both see each other', async (ctx) => {
  // Ben's browser on a host of its own that may send no UDP to the server's
  // address; the SFU binds that address, and with `--sfu-tcp` also listens
  // for ICE over TCP on its port number.
  const host = await IsolatedHost.create();
  ctx.onClose(() => host.destroy());
  await host.blockUdp();
  const server = await ctx.server(['--sfu', '--sfu-tcp', '--sfu-ip', host.gateway, '--sfu-ports', '42200-42300'], { host: '0.0.0.0' });
  const room = uniqueRoom('sfu-tcp');
  const ana = await ctx.joiner('chromium', { url: `http://127.0.0.1:${server.port}` }, room, 'ana', { extra: { mode: 'sfu' } });
  const ben = await host.chromiumPage(ctx, server, 'ben');
  await ben.evaluateOnNewDocument(keepPeerConnections);
  await joinRoom(ben, { url: host.urlOf(server) }, room, 'ben', { extra: { mode: 'sfu' } });
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await waitVideoPlaying(ana, benId, { timeout: 60_000 });
  await waitVideoPlaying(ben, anaId, { timeout: 60_000 });
  await waitFramesIncreasing(ben, anaId, { timeout: 30_000 });
  await waitFramesIncreasing(ana, benId, { timeout: 30_000 });
  // Ben's connection to the SFU runs over TCP.
  const pair = await ben.evaluate(async () => {
    for (const pc of window.__pcs) {
      if (pc.connectionState !== 'connected') continue;
      const stats = await pc.getStats();
      let local = null;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) {
          const p = stats.get(s.selectedCandidatePairId);
          local = stats.get(p.localCandidateId);
        }
      });
      if (local) return { protocol: local.protocol, tcpType: local.tcpType ?? null };
    }
    return null;
  });
  ctx.note(`ben's selected local candidate: ${JSON.stringify(pair)}`);
  assert.equal(pair?.protocol, 'tcp', 'ben reaches the SFU over TCP');
  const { read } = await sfuCounters({ url: `http://127.0.0.1:${server.port}` });
  assert.equal(read('signal_sfu_peers'), 2);
  assert.equal(read('signal_sfu_tracks_refused_total'), 0);
});

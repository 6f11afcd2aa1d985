// SFU mode: three Chromium browsers join through /r/<room>?name=...&mode=sfu.
// Each has ONE peer connection (to the server) yet sees the two others'
// video playing, and the server's /metrics show the media went through the
// SFU: RTP received from publishers and forwarded to subscribers, per room
// and per peer.

import assert from 'node:assert/strict';
import { e2e, uniqueRoom, selfId, waitTiles, waitVideoPlaying, waitFramesIncreasing, waitFor } from './harness.mjs';

async function sfuCounters(server, room) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const read = (name) => {
    const line = text.split('\n').find((l) => l.startsWith(`signal_sfu_${name}_total{room="${room}"}`));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  return { rtpIn: read('rtp_in'), rtpOut: read('rtp_out'), text };
}

// signal_sfu_peer_<name>_total{room="R",peer="P"} for one peer.
function peerCounter(text, name, room, peer) {
  const line = text.split('\n').find((l) => l.startsWith(`signal_sfu_peer_${name}_total{room="${room}",peer="${peer}"}`));
  return line ? Number(line.split(' ').pop()) : null;
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
  const first = await sfuCounters(server, room);
  assert.ok(first.rtpIn > 0 && first.rtpOut > 0, `SFU counters for ${room}:\n${first.text}`);
  const later = await waitFor('SFU forwarding keeps increasing', async () => {
    const now = await sfuCounters(server, room);
    return now.rtpOut > first.rtpOut && now.rtpIn > first.rtpIn ? now : null;
  }, { timeout: 20_000 });

  // Each browser publishes its microphone and camera once: 6 tracks, none
  // refused (a client that sent its camera on the SFU's forwarded-track
  // transceivers would publish in a loop).
  const gauge = (l) => l.startsWith(`signal_sfu_published_tracks{room="${room}"}`);
  const tracks = Number(later.text.split('\n').find(gauge)?.split(' ').pop());
  assert.equal(tracks, 6, `published tracks:\n${later.text}`);
  assert.equal(Number(later.text.split('\n').find((l) => l.startsWith(`signal_sfu_tracks_refused_total{room="${room}"}`))?.split(' ').pop()), 0);

  // Per peer: each one published to the SFU and was sent the others' media,
  // and no packet was dropped for a slow subscriber.
  for (const id of ids) {
    const got = Object.fromEntries(['rtp_in', 'bytes_in', 'rtp_out', 'bytes_out', 'dropped_out', 'lost_out']
      .map((n) => [n, peerCounter(later.text, n, room, id)]));
    assert.ok(got.rtp_in > 0 && got.bytes_in > 0, `peer ${id} published: ${JSON.stringify(got)}`);
    assert.ok(got.rtp_out > 0 && got.bytes_out > 0, `peer ${id} was sent media: ${JSON.stringify(got)}`);
    assert.equal(got.dropped_out, 0, `peer ${id}: ${JSON.stringify(got)}`);
    assert.notEqual(got.lost_out, null, `peer ${id} has a lost_out series`);
  }
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
  const { rtpOut } = await sfuCounters(server, room);
  assert.ok(rtpOut > 0, 'forwarded by the SFU');
}, { timeout: 180_000 });

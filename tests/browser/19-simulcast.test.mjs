// Simulcast through the SFU (issue 19): three Chromium in an SFU room each
// publish their camera in two layers (half and full size; /api/config says
// the SFU takes simulcast). A subscriber tells the SFU how tall it shows
// each camera (`sfu-view`): when ana shrinks ben's tile she receives the
// half-size layer (a smaller decoded frame height), when it grows back the
// full one, and ben's video never freezes across the switches. cai, who
// never shrinks anything, keeps the full layer throughout.

import assert from 'node:assert/strict';
import { e2e, uniqueRoom, selfId, joinRoom, waitTiles, waitVideoPlaying, waitFor, keepPeerConnections } from './harness.mjs';
import { IsolatedHost } from './netcut.mjs';

/** What the page receives (RTP payload and headers, bits/s) over `ms`: all of it, and its video. */
async function inboundRate(page, ms = 2_000) {
  const read = () => page.evaluate(async () => {
    let all = 0;
    let video = 0;
    for (const pc of window.__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        const bytes = (s.bytesReceived ?? 0) + (s.headerBytesReceived ?? 0);
        all += bytes;
        if (s.kind === 'video') video += bytes;
      });
    }
    return { all, video, at: performance.now() };
  });
  const a = await read();
  await new Promise((r) => setTimeout(r, ms));
  const b = await read();
  const secs = (b.at - a.at) / 1000;
  return { all: ((b.all - a.all) * 8) / secs, video: ((b.video - a.video) * 8) / secs };
}

/** The page's video RTP streams as getStats says: what it encodes per rid, what it decodes. */
async function videoRtp(page) {
  return page.evaluate(async () => {
    const out = [];
    for (const pc of window.__pcs) {
      if (pc.connectionState === 'closed') continue;
      (await pc.getStats()).forEach((s) => {
        if (s.kind !== 'video') return;
        if (s.type === 'outbound-rtp') {
          out.push(`out ${s.rid ?? '-'} ${s.frameWidth ?? 0}x${s.frameHeight ?? 0} ${Math.round(s.framesPerSecond ?? 0)}fps ${Math.round((s.targetBitrate ?? 0) / 1000)}kbps limit=${s.qualityLimitationReason} active=${s.active} pli=${s.pliCount}`);
        } else if (s.type === 'inbound-rtp') {
          out.push(`in ${s.frameWidth ?? 0}x${s.frameHeight ?? 0} keyframes=${s.keyFramesDecoded} freezes=${s.freezeCount} nacks=${s.nackCount} plis=${s.pliCount} lost=${s.packetsLost}`);
        }
      });
    }
    return out;
  });
}

/** The decoded size of `peerId`'s camera on `page`, and its frame count. */
async function videoOf(page, peerId) {
  return page.evaluate((id) => {
    const v = document.querySelector(`video[data-peer-id="${id}"]`);
    return v ? { w: v.videoWidth, h: v.videoHeight, frames: v.getVideoPlaybackQuality().totalVideoFrames } : null;
  }, peerId);
}

/** Waits until `peerId`'s camera on `page` is decoded `test(height)` tall. */
async function waitHeight(page, peerId, desc, test, timeout = 45_000) {
  return waitFor(`${page.__label}: ${desc}`, async () => {
    const v = await videoOf(page, peerId);
    return { ok: !!v && test(v.h), value: v };
  }, { timeout, interval: 250 });
}

/** Shows `peerId`'s camera on `page` `px` CSS pixels tall (null: as laid out). */
async function setShownHeight(page, peerId, px) {
  await page.evaluate((id, h) => {
    const v = document.querySelector(`video[data-peer-id="${id}"]`);
    v.style.height = h === null ? '' : `${h}px`;
    v.style.maxHeight = h === null ? '' : `${h}px`;
  }, peerId, px);
}

/**
 * Measures, in each page of `pairs`, the longest time between two frames
 * of `peerId`'s camera that the page presented (requestVideoFrameCallback,
 * on whatever element shows that camera now); `stop()` gives them by pair.
 */
async function watchStalls(pairs) {
  for (const [page, id] of pairs) {
    await page.evaluate((peer) => {
      const gaps = (window.__gaps ??= {});
      const g = (gaps[peer] = { max: 0, last: 0, frames: 0, stop: false });
      const tick = (now) => {
        if (g.last) g.max = Math.max(g.max, now - g.last);
        g.last = now;
        g.frames += 1;
        if (!g.stop) watch();
      };
      const watch = () => {
        const v = document.querySelector(`video[data-peer-id="${peer}"]`);
        if (v) v.requestVideoFrameCallback(tick);
        else setTimeout(watch, 20);
      };
      watch();
    }, id);
  }
  return {
    async stop() {
      const out = {};
      for (const [page, id] of pairs) {
        const g = await page.evaluate((peer) => {
          const g = window.__gaps[peer];
          g.stop = true;
          // The time since the last frame counts too.
          return { max: Math.max(g.max, performance.now() - g.last), frames: g.frames };
        }, id);
        out[`${page.__label} <- ${id.slice(0, 8)}`] = { longestGapMs: Math.round(g.max), frames: g.frames };
      }
      return out;
    },
  };
}

e2e('simulcast: a subscriber that shrinks a tile gets the smaller layer, and the full one when it grows, video never frozen', async (ctx) => {
  const server = await ctx.server(['--sfu', '--sfu-ports', '42600-42700']);
  const config = await (await fetch(`${server.url}/api/config`)).json();
  assert.equal(config.simulcast, true, '/api/config says the SFU takes simulcast');
  const room = uniqueRoom('simulcast');
  const join = async (name) => {
    const page = await ctx.page(await ctx.chromium(), name);
    await page.evaluateOnNewDocument(keepPeerConnections);
    await joinRoom(page, server, room, name, { extra: { mode: 'sfu' } });
    return page;
  };
  const [ana, ben, cai] = [await join('ana'), await join('ben'), await join('cai')];
  const dumpRtp = async (when) => {
    for (const page of [ana, ben, cai]) ctx.note(`${when}: ${page.__label}: ${(await videoRtp(page).catch((e) => [e.message])).join(' | ')}`);
  };
  try {
    await simulcastRun(ctx, server, ana, ben, cai, dumpRtp);
  } catch (e) {
    await dumpRtp('at the failure');
    throw e;
  }
});

async function simulcastRun(ctx, server, ana, ben, cai, dumpRtp) {
  const [anaId, benId, caiId] = [await selfId(ana), await selfId(ben), await selfId(cai)];
  await waitTiles(ana, [benId, caiId], { timeout: 45_000 });
  await waitTiles(cai, [anaId, benId], { timeout: 45_000 });
  await waitVideoPlaying(ana, benId, { timeout: 60_000 });
  await waitVideoPlaying(cai, benId, { timeout: 60_000 });

  // Ben publishes two layers; once his link allows, ana gets the full one.
  const full = await waitHeight(ana, benId, 'ben\'s camera at full size', (h) => h >= 400);
  ctx.note(`ana receives ben at ${full.w}x${full.h}`);
  await dumpRtp('full size');

  const stalls = await watchStalls([[ana, benId], [cai, benId]]);
  let small, again, caiSees, worst;
  try {
    // Ana shows ben's camera 100 px tall: the half-size layer.
    await setShownHeight(ana, benId, 100);
    small = await waitHeight(ana, benId, 'ben\'s camera at half size once shown small', (h) => h > 0 && h <= full.h / 2);
    await dumpRtp('shown small');
    // /metrics counts the subscription by the layer it gets (tallied each second).
    const layers = await waitFor('/metrics: one video subscription on the lowest layer, five on the top one', async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const v = (re) => Number(text.match(re)?.[1]);
      const value = {
        low: v(/^signal_sfu_video_subscriptions\{layer="0"\} (\d+)$/m),
        top: v(/^signal_sfu_video_subscriptions\{layer="1"\} (\d+)$/m),
        sendBps: v(/^signal_sfu_subscriber_send_bps_sum (\d+)$/m),
        peers: v(/^signal_sfu_subscriber_send_bps_count (\d+)$/m),
      };
      return { ok: value.low === 1 && value.top === 5 && value.peers === 3 && value.sendBps > 0, value };
    }, { timeout: 15_000, interval: 500 });
    ctx.note(`/metrics with ben shown small on ana: ${JSON.stringify(layers)}`);
    // Grown back: the full layer again.
    await setShownHeight(ana, benId, null);
    again = await waitHeight(ana, benId, 'ben\'s camera at full size again', (h) => h >= full.h);
    caiSees = await videoOf(cai, benId);
  } finally {
    worst = await stalls.stop();
  }
  ctx.note(`ana: ben ${full.h} -> ${small.h} (shown 100 px) -> ${again.h} rows; cai meanwhile ${caiSees.h}; longest gap between frames: ${JSON.stringify(worst)}`);
  assert.ok(caiSees.h >= full.h, `cai, who shrank nothing, keeps the full layer: ${caiSees.h}`);
  for (const [k, { longestGapMs, frames }] of Object.entries(worst)) {
    assert.ok(frames >= 10, `${k}: frames kept coming (${frames})`);
    assert.ok(longestGapMs <= 1_000, `${k}: no frame for ${longestGapMs} ms across the switches`);
  }

  // The SFU counted the views and kept forwarding: nothing refused.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, /^signal_sfu_tracks_refused_total 0$/m);
}

e2e('simulcast: a subscriber whose downlink is throttled gets the lower layer, and the top one back once it is free', async (ctx) => {
  // Ana's browser on a host of its own, whose downlink can be throttled;
  // the SFU binds the address that host reaches (the others reach it too).
  const host = await IsolatedHost.create();
  ctx.onClose(() => host.destroy());
  const server = await ctx.server(['--sfu', '--sfu-ip', host.gateway, '--sfu-ports', '42800-42900'], { host: '0.0.0.0' });
  const room = uniqueRoom('throttled');
  const local = { url: `http://127.0.0.1:${server.port}` };
  const ana = await host.chromiumPage(ctx, server, 'ana');
  await ana.evaluateOnNewDocument(keepPeerConnections);
  await joinRoom(ana, { url: host.urlOf(server) }, room, 'ana', { extra: { mode: 'sfu' } });
  const ben = await ctx.joiner('chromium', local, room, 'ben', { extra: { mode: 'sfu' } });
  const cai = await ctx.joiner('chromium', local, room, 'cai', { extra: { mode: 'sfu' } });
  const [benId, caiId] = [await selfId(ben), await selfId(cai)];
  await waitTiles(ana, [benId, caiId], { timeout: 45_000 });
  await waitVideoPlaying(ana, benId, { timeout: 60_000 });
  await waitVideoPlaying(cai, benId, { timeout: 60_000 });
  const full = await waitHeight(ana, benId, 'ben\'s camera at full size', (h) => h >= 400);

  // Down to what the other streams take plus 70 % of the video ana gets
  // now: the two cameras' top layers do not fit, their lower ones (a
  // quarter of the pixels, Chrome gives them about a quarter of the bits)
  // do, with room for retransmissions.
  await waitHeight(cai, benId, 'cai: ben\'s camera at full size', (h) => h >= full.h);
  const rate = await inboundRate(ana);
  const kbit = Math.round((rate.all - rate.video * 0.3) / 1000);
  await host.throttle(`${kbit}kbit`);
  const throttledAt = Date.now();
  // When ana's browser first counts a packet lost (getStats), for the note.
  const lostAt = (async () => {
    const lost = () => ana.evaluate(async () => {
      let n = 0;
      for (const pc of window.__pcs) {
        if (pc.connectionState !== 'closed') (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp') n += s.packetsLost ?? 0; });
      }
      return n;
    }).catch(() => null);
    const before = await lost();
    for (;;) {
      const n = await lost();
      if (n === null || n > before || Date.now() - throttledAt > 60_000) return Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  let low;
  let downMs;
  try {
    low = await waitHeight(ana, benId, 'ben\'s camera at the lower layer on the throttled link', (h) => h > 0 && h <= full.h / 2, 45_000);
    downMs = Date.now() - throttledAt;
  } finally {
    await host.unthrottle();
  }
  const firstLossMs = (await lostAt) - throttledAt;
  const freedAt = Date.now();
  const back = await waitHeight(ana, benId, 'ben\'s camera at full size once the link is free', (h) => h >= full.h, 60_000);
  const upMs = Date.now() - freedAt;
  const caiSees = await videoOf(cai, benId);
  const metrics = await (await fetch(`${local.url}/metrics`)).text();
  ctx.note(`ana received ${Math.round(rate.all / 1000)} kbit/s (video ${Math.round(rate.video / 1000)}); throttled to ${kbit} kbit/s: first packet lost after ${firstLossMs} ms, ben ${full.h} -> ${low.h} rows after ${downMs} ms; link freed: ${back.h} rows after ${upMs} ms (8 s of calm asked); cai meanwhile ${caiSees.h}`);
  assert.ok(caiSees.h >= full.h, `cai's link was not throttled: ${caiSees.h}`);
  assert.match(metrics, /^signal_sfu_tracks_refused_total 0$/m);
}, { timeout: 240_000 });

// Measurement (not a test): N runs of a two-Chromium call.
//
// - join → first remote frame: the remote tile's `data-first-frame-ms`, which
//   the client computes from the join click (for a one-click link: the join
//   the page starts itself) to the first decoded frame of that peer. The
//   headline number is the second joiner's (it joins a room where someone is
//   already waiting); the first joiner's, which includes the gap until the
//   second arrives, is reported separately.
// - relay vs p2p round trip: `#rtt-panel tr[data-peer-id] .rtt-relay[data-ms]`
//   and `.rtt-p2p[data-ms]`, sampled once a second for RTT_SECONDS on both
//   pages; medians over all samples.
//
// Run inside the loopback-only namespace: `npm run measure` (RUNS=10,
// RTT_SECONDS=10 by default). Prints one line `RESULT {json}` at the end.

import {
  E2E, uniqueRoom, selfId, waitTiles, waitFramesIncreasing, waitFor, median, percentile, delay,
  checkPrerequisites,
} from './harness.mjs';

const RUNS = Number(process.env.RUNS || 10);
const RTT_SECONDS = Number(process.env.RTT_SECONDS || 10);

function summary(xs) {
  const s = xs.filter(Number.isFinite);
  return {
    n: s.length,
    median: round(median(s)),
    p90: round(percentile(s, 90)),
    min: round(Math.min(...s)),
    max: round(Math.max(...s)),
  };
}
const round = (x) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);

async function firstFrameMs(page, peerId) {
  return waitFor(`${page.__label}: data-first-frame-ms of ${peerId}`, () => page.evaluate((id) => {
    const t = [...document.querySelectorAll('.tile[data-peer-id]')].find((e) => e.getAttribute('data-peer-id') === id);
    const raw = t?.getAttribute('data-first-frame-ms') ?? '';
    const v = raw.trim() === '' ? NaN : Number(raw);
    return Number.isFinite(v) && v > 0 ? { ok: true, value: v } : { ok: false, value: raw };
  }, peerId), { timeout: 30_000 });
}

async function rttSample(page, peerId) {
  return page.evaluate((id) => {
    const r = [...document.querySelectorAll('#rtt-panel tr[data-peer-id]')].find((e) => e.getAttribute('data-peer-id') === id);
    const num = (sel) => {
      const c = r?.querySelector(sel);
      const v = c?.getAttribute('data-ms');
      if (v === null || v === undefined || v.trim() === '') return NaN;
      return Number(v);
    };
    return { relay: num('.rtt-relay'), p2p: num('.rtt-p2p') };
  }, peerId);
}

async function oneRun(i, server) {
  const ctx = new E2E(`measure-run-${i}`);
  ctx.servers = []; // the shared server is not this run's to stop
  try {
    const room = uniqueRoom('measure');
    const a = await ctx.joiner('chromium', server, room, 'first', { label: 'first' });
    const aId = await selfId(a);
    const b = await ctx.joiner('chromium', server, room, 'second', { label: 'second' });
    const bId = await selfId(b);
    await waitTiles(a, [bId]);
    await waitTiles(b, [aId]);
    await waitFramesIncreasing(b, aId, { timeout: 45_000 });
    const secondMs = await firstFrameMs(b, aId);
    const firstMs = await firstFrameMs(a, bId).catch(() => NaN);

    const relay = [];
    const p2p = [];
    for (let s = 0; s < RTT_SECONDS; s += 1) {
      await delay(1000);
      for (const [p, other] of [[a, bId], [b, aId]]) {
        const r = await rttSample(p, other);
        if (Number.isFinite(r.relay)) relay.push(r.relay);
        if (Number.isFinite(r.p2p)) p2p.push(r.p2p);
      }
    }
    return { ok: true, secondMs, firstMs, relay, p2p };
  } catch (e) {
    await ctx.saveArtifacts(e).catch(() => {});
    return { ok: false, error: String(e.message || e).split('\n')[0] };
  } finally {
    await ctx.closeAll();
  }
}

async function main() {
  const missing = checkPrerequisites();
  if (missing.length) {
    console.error(`cannot measure: ${missing.join('; ')}`);
    process.exit(2);
  }
  const holder = new E2E('measure');
  const server = await holder.server();
  const results = [];
  try {
    for (let i = 1; i <= RUNS; i += 1) {
      const t0 = Date.now();
      const r = await oneRun(i, server);
      results.push(r);
      const rttNote = r.ok ? ` relay median ${round(median(r.relay))} ms (${r.relay.length}), p2p median ${round(median(r.p2p))} ms (${r.p2p.length})` : '';
      console.error(`run ${i}/${RUNS}: ${r.ok ? `first frame ${r.secondMs} ms (first joiner ${r.firstMs} ms)${rttNote}` : `FAILED ${r.error}`} [${((Date.now() - t0) / 1000).toFixed(1)} s]`);
    }
  } finally {
    await holder.closeAll();
  }
  const ok = results.filter((r) => r.ok);
  const out = {
    runs: RUNS,
    ok: ok.length,
    failed: results.length - ok.length,
    errors: results.filter((r) => !r.ok).map((r) => r.error),
    join_to_first_frame_ms: { ...summary(ok.map((r) => r.secondMs)), samples: ok.map((r) => r.secondMs) },
    first_joiner_first_frame_ms: summary(ok.map((r) => r.firstMs)),
    rtt_ms: {
      seconds_sampled_per_run: RTT_SECONDS,
      relay: summary(ok.flatMap((r) => r.relay)),
      p2p: summary(ok.flatMap((r) => r.p2p)),
    },
  };
  console.log(`RESULT ${JSON.stringify(out)}`);
  process.exitCode = ok.length ? 0 : 1;
}

main().catch((e) => { console.error(e); process.exit(1); });

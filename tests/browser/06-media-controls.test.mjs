// Media controls and media-less peers:
// - a Chromium without camera or microphone joins receive-only (#media-notice),
//   sees and hears the others, and is shown to them as a tile with mic and
//   camera off — both when it offers (it joins after a peer) and when it
//   answers (a peer joins after it);
// - #mic-button / #camera-button change the sender's .mic-state / .cam-state
//   on the other page, and their aria-pressed; a later joiner sees them too;
// - #screen-button sends the screen beside the camera: the other page shows
//   it in a tile of its own (16:9) while the camera tile keeps the camera
//   (4:3); the first share renegotiates once (a second video sender), the
//   next ones swap its track with no offer/answer; a refused share says so
//   in #status; and a peer joining during a share gets both videos.
//
// Receive-only: the browser is launched WITHOUT --use-fake-device-for-media-stream
// but with --use-fake-ui-for-media-stream and --allow-loopback-in-peer-connection.
// It then has no capture device at all (getUserMedia → NotFoundError); the
// permission is still granted by the fake UI, and that is enough for Chromium
// to gather loopback ICE candidates, so the call really connects here.
//
// Screen sharing: with the standard flags (--use-fake-ui-for-media-stream +
// --use-fake-device-for-media-stream) headless Chromium's getDisplayMedia
// succeeds without any extra flag: the fake UI accepts the picker and the fake
// device supplies a 16:9 "screen" (800×450 here), where the fake camera is 4:3
// (640×480). No --auto-select-desktop-capture-source is needed.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitFor, pageState, joinRoom, waitMediaFlowing,
  waitFramesIncreasing, waitVideoPlaying,
} from './harness.mjs';

const FAKE_DEVICE = '--use-fake-device-for-media-stream';

const peerSel = (id) => `[data-peer-id="${String(id).replace(/["\\]/g, '\\$&')}"]`;

/** What a page shows of one remote peer's tile: mic/cam indicators and video shape. */
async function tileView(page, peerId) {
  return page.evaluate((s) => {
    const t = document.querySelector(`.tile${s}`);
    if (!t) return null;
    const mic = t.querySelector('.mic-state');
    const cam = t.querySelector('.cam-state');
    const v = document.querySelector(`video${s}`);
    return {
      micOn: mic?.getAttribute('data-on') ?? null,
      micText: mic?.getAttribute('aria-label') ?? null,
      camOn: cam?.getAttribute('data-on') ?? null,
      camText: cam?.getAttribute('aria-label') ?? null,
      frames: Number(t.getAttribute('data-frames-decoded')),
      conn: t.getAttribute('data-connection-state'),
      w: v?.videoWidth ?? 0,
      h: v?.videoHeight ?? 0,
    };
  }, peerSel(peerId));
}

/** Wait until `check(tileView)` holds for `peerId`'s tile on `page`. */
async function waitTileView(page, peerId, desc, check, { timeout = 15_000 } = {}) {
  return waitFor(`${page.__label}: tile of ${peerId}: ${desc}`, async () => {
    const v = await tileView(page, peerId);
    return { ok: !!v && !!check(v), value: v };
  }, { timeout, explain: () => pageState(page) });
}

/** Waits until `page` plays `peerId`'s shared screen in its own tile: a size of another shape than `cam`, time moving. */
async function waitScreenPlaying(page, peerId, cam) {
  let first = null;
  return waitFor(`${page.__label}: screen tile of ${peerId} playing`, async () => {
    const v = await page.evaluate((s) => {
      const e = document.querySelector(`.tile[data-screen-of=${s}] video`);
      return e ? { w: e.videoWidth, h: e.videoHeight, t: e.currentTime } : null;
    }, JSON.stringify(String(peerId)));
    if (!v || !(v.w > 0) || Math.abs(aspect(v) - aspect(cam)) <= 0.05) { first = null; return { ok: false, value: v }; }
    if (!first) { first = v; return { ok: false, value: v }; }
    return { ok: v.t > first.t, value: v };
  }, { timeout: 20_000, interval: 300, explain: () => pageState(page) });
}

async function buttonState(page, selector) {
  return page.evaluate((s) => {
    const b = document.querySelector(s);
    return b ? {
      pressed: b.getAttribute('aria-pressed'),
      label: b.getAttribute('aria-label'),
      disabled: b.disabled,
      text: b.textContent.trim(),
    } : null;
  }, selector);
}

async function waitButton(page, selector, pressed, { timeout = 10_000 } = {}) {
  return waitFor(`${page.__label}: ${selector}[aria-pressed=${pressed}]`, async () => {
    const b = await buttonState(page, selector);
    return { ok: b?.pressed === pressed, value: b };
  }, { timeout, explain: () => pageState(page) });
}

/** Click a control once it is there and enabled. */
async function clickControl(page, selector) {
  await waitFor(`${page.__label}: ${selector} present and enabled`, async () => {
    const b = await buttonState(page, selector);
    return { ok: !!b && !b.disabled, value: b };
  }, { timeout: 15_000, explain: () => pageState(page) });
  await page.click(selector);
}

/**
 * Counts, from before the page's own scripts run, every
 * setLocalDescription/setRemoteDescription call on any RTCPeerConnection:
 * each offer/answer exchange adds at least one of each on both sides.
 */
async function countNegotiations(page) {
  await page.evaluateOnNewDocument(() => {
    const counts = { setLocal: 0, setRemote: 0 };
    Object.defineProperty(window, '__e2eSdpCounts', { value: counts });
    const proto = window.RTCPeerConnection?.prototype;
    if (!proto) return;
    for (const [method, key] of [['setLocalDescription', 'setLocal'], ['setRemoteDescription', 'setRemote']]) {
      const orig = proto[method];
      proto[method] = function (...args) { counts[key] += 1; return orig.apply(this, args); };
    }
  });
}

const sdpCounts = (page) => page.evaluate(() => ({ ...(window.__e2eSdpCounts ?? {}) }));

async function joinCounted(ctx, server, room, name) {
  const browser = await ctx.chromium();
  const page = await ctx.page(browser, name);
  await countNegotiations(page);
  await joinRoom(page, server, room, name);
  return page;
}

const aspect = (v) => (v.h > 0 ? v.w / v.h : 0);

// ---------------------------------------------------------------------------

e2e('a Chromium without camera or microphone joins receive-only: notice shown, sees the others, and is a muted camera-off tile for them', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('recvonly');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const anaId = await selfId(ana);

  // No fake capture device: this browser has no camera and no microphone.
  const bare = await ctx.chromium({ dropArgs: [FAKE_DEVICE] });
  const spawnArgs = bare.process()?.spawnargs ?? [];
  assert.ok(!spawnArgs.includes(FAKE_DEVICE), `receive-only browser launched without ${FAKE_DEVICE}`);
  const rx = await ctx.page(bare, 'rx');
  await joinRoom(rx, server, room, 'rx');
  const rxId = await selfId(rx);

  const notice = await waitFor('rx: #media-notice mentions camera/microphone', async () => {
    const t = await rx.evaluate(() => {
      const n = document.querySelector('#media-notice');
      return n && n.offsetParent !== null ? n.textContent.trim() : null;
    });
    return { ok: !!t && /camera/i.test(t) && /microphone/i.test(t), value: t };
  }, { timeout: 20_000, explain: () => pageState(rx) });
  ctx.note(`rx #media-notice: ${JSON.stringify(notice)}`);
  assert.doesNotMatch(notice, /NotFoundError|NotAllowedError|Requested device/, 'the notice is in words, not the exception');
  const devices = await rx.evaluate(async () => (await navigator.mediaDevices.enumerateDevices())
    .filter((d) => d.kind === 'videoinput' || d.kind === 'audioinput').length);
  ctx.note(`rx: ${devices} capture device(s) listed; #mic-button ${JSON.stringify(await buttonState(rx, '#mic-button'))}`);

  // rx offered to ana (the newcomer offers): ana's camera and mic reach rx.
  await waitTiles(rx, [anaId]);
  await waitMediaFlowing(rx, anaId);
  // ana shows rx as a tile, with mic and camera off.
  await waitTiles(ana, [rxId]);
  const seen = await waitTileView(ana, rxId, 'mic and camera off, connected',
    (v) => v.micOn === 'false' && v.camOn === 'false' && v.conn === 'connected', { timeout: 30_000 });
  ctx.note(`ana sees rx as ${JSON.stringify(seen)}`);

  // A peer joining after rx offers to it, so rx now answers without media.
  const cai = await ctx.joiner('chromium', server, room, 'cai');
  const caiId = await selfId(cai);
  await waitTiles(rx, [anaId, caiId], { timeout: 45_000 });
  await waitMediaFlowing(rx, caiId);
  await waitTiles(cai, [anaId, rxId], { timeout: 45_000 });
  await waitTileView(cai, rxId, 'mic and camera off, connected',
    (v) => v.micOn === 'false' && v.camOn === 'false' && v.conn === 'connected', { timeout: 30_000 });

  const s = await pageState(rx);
  assert.equal(s.room?.state, 'joined', `rx still joined: ${JSON.stringify(s.room)}`);
}, { timeout: 240_000 });

e2e('muting the microphone and turning the camera off show on the other page, and back', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('mute');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await waitTiles(ana, [benId]);
  await waitTiles(ben, [anaId]);
  await waitVideoPlaying(ben, anaId, { timeout: 45_000 });
  await waitTileView(ben, anaId, 'mic and camera on', (v) => v.micOn === 'true' && v.camOn === 'true');
  assert.equal((await buttonState(ana, '#mic-button'))?.pressed, 'false', '#mic-button not pressed before muting');
  assert.equal((await buttonState(ana, '#camera-button'))?.pressed, 'false', '#camera-button not pressed before');

  // Microphone.
  await clickControl(ana, '#mic-button');
  await waitButton(ana, '#mic-button', 'true');
  let v = await waitTileView(ben, anaId, '.mic-state[data-on=false]', (x) => x.micOn === 'false');
  assert.equal(v.camOn, 'true', 'muting the mic leaves the camera indicator on');
  await clickControl(ana, '#mic-button');
  await waitButton(ana, '#mic-button', 'false');
  await waitTileView(ben, anaId, '.mic-state[data-on=true]', (x) => x.micOn === 'true');

  // Camera.
  await clickControl(ana, '#camera-button');
  await waitButton(ana, '#camera-button', 'true');
  v = await waitTileView(ben, anaId, '.cam-state[data-on=false]', (x) => x.camOn === 'false');
  assert.equal(v.micOn, 'true', 'turning the camera off leaves the mic indicator on');
  ctx.note(`camera off, ben sees ana as ${JSON.stringify(v)}`);
  await clickControl(ana, '#camera-button');
  await waitButton(ana, '#camera-button', 'false');
  await waitTileView(ben, anaId, '.cam-state[data-on=true]', (x) => x.camOn === 'true');
  // And the video is still alive after the round trip.
  await waitFramesIncreasing(ben, anaId);

  // A peer who joins while ana is muted with her camera off sees her so at once.
  await clickControl(ana, '#mic-button');
  await clickControl(ana, '#camera-button');
  await waitButton(ana, '#mic-button', 'true');
  await waitButton(ana, '#camera-button', 'true');
  await waitTileView(ben, anaId, 'mic and camera off again', (x) => x.micOn === 'false' && x.camOn === 'false');
  const cai = await ctx.joiner('chromium', server, room, 'cai');
  await waitTiles(cai, [anaId, benId], { timeout: 45_000 });
  v = await waitTileView(cai, anaId, 'late joiner sees mic and camera off',
    (x) => x.micOn === 'false' && x.camOn === 'false', { timeout: 20_000 });
  ctx.note(`cai, joining later, sees ana as ${JSON.stringify(v)}`);
}, { timeout: 240_000 });

e2e('a shared screen arrives as a second video beside the camera: one renegotiation the first time, none for the next share', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('screen');
  const ana = await joinCounted(ctx, server, room, 'ana');
  const ben = await joinCounted(ctx, server, room, 'ben');
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await waitTiles(ana, [benId]);
  await waitTiles(ben, [anaId]);
  await waitMediaFlowing(ben, anaId);
  const cam = await waitTileView(ben, anaId, 'camera: "cam", video has a size',
    (x) => x.camText === 'Camera on' && x.w > 0 && x.h > 0);
  const before = { ana: await sdpCounts(ana), ben: await sdpCounts(ben) };
  assert.ok(before.ana.setLocal >= 1 && before.ben.setRemote >= 1, `SDP counters are installed: ${JSON.stringify(before)}`);

  await clickControl(ana, '#screen-button');
  // Either sharing starts, or the page must say why not (never fail silently).
  const outcome = await waitFor('ana: #screen-button pressed or an error in #status', async () => {
    const s = await pageState(ana);
    const b = await buttonState(ana, '#screen-button');
    if (b?.pressed === 'true') return { ok: true, value: { sharing: true, button: b } };
    if (s.status?.kind === 'error') return { ok: true, value: { sharing: false, status: s.status, button: b } };
    return { ok: false, value: { button: b, status: s.status } };
  }, { timeout: 20_000, explain: () => pageState(ana) });
  // With the standard flags getDisplayMedia succeeds here (see the top of
  // this file); the refused case is the next test.
  assert.ok(outcome.sharing, `screen sharing did not start; the page showed ${JSON.stringify(outcome.status)}`);
  assert.match(outcome.button.label ?? '', /stop/i, '#screen-button aria-label offers to stop sharing');

  // Ben sees the screen in a tile of its own (16:9, time moving) while
  // ana's camera tile keeps its 4:3 picture and its frames.
  const shown = await waitScreenPlaying(ben, anaId, cam);
  const still = await waitTileView(ben, anaId, 'the camera tile keeps the camera',
    (x) => x.camText === 'Camera on' && x.w > 0 && Math.abs(aspect(x) - aspect(cam)) <= 0.05);
  await waitFramesIncreasing(ben, anaId);
  ctx.note(`camera ${still.w}x${still.h} and screen ${shown.w}x${shown.h} side by side on ben's page`);
  const firstShare = { ana: await sdpCounts(ana), ben: await sdpCounts(ben) };
  ctx.note(`SDP description calls before ${JSON.stringify(before)} after the first share ${JSON.stringify(firstShare)}`);
  assert.notDeepEqual(firstShare, before, 'the first share adds a video sender: one renegotiation');

  // Stop: the screen tile goes, the camera stays.
  await clickControl(ana, '#screen-button');
  await waitButton(ana, '#screen-button', 'false');
  await waitFor('ben: ana\'s screen tile gone', async () => {
    const n = await ben.evaluate(() => document.querySelectorAll('.tile[data-screen-of]').length);
    return { ok: n === 0, value: n };
  }, { timeout: 15_000, explain: () => pageState(ben) });
  await waitFramesIncreasing(ben, anaId);

  // Share again: the same sender takes the new screen, no negotiation.
  await clickControl(ana, '#screen-button');
  await waitButton(ana, '#screen-button', 'true', { timeout: 20_000 });
  await waitScreenPlaying(ben, anaId, cam);
  await clickControl(ana, '#screen-button');
  await waitButton(ana, '#screen-button', 'false');
  const after = { ana: await sdpCounts(ana), ben: await sdpCounts(ben) };
  ctx.note(`after a second share and stop ${JSON.stringify(after)}`);
  assert.deepEqual(after, firstShare, 'a second share on/off caused no setLocalDescription/setRemoteDescription');
  for (const p of [ana, ben]) {
    const s = await pageState(p);
    assert.equal(s.room?.state, 'joined', `${p.__label} still joined`);
    assert.notEqual(s.status?.kind, 'error', `${p.__label} shows no error: ${JSON.stringify(s.status)}`);
  }
});

// Without the fake capture device headless Chromium has no screen source
// either: getDisplayMedia rejects (NotReadableError "Could not start video
// source"). The page must say so rather than fail silently. (A CDP
// Browser.setPermission 'display-capture' = denied is no way to get there:
// --use-fake-ui-for-media-stream overrides it and sharing starts anyway.)
e2e('a screen share the browser refuses shows a #status error about screen sharing and leaves the call as it was', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('noscreen');
  const bare = await ctx.chromium({ dropArgs: [FAKE_DEVICE] });
  const rx = await ctx.page(bare, 'rx');
  await joinRoom(rx, server, room, 'rx');
  await selfId(rx);
  await clickControl(rx, '#screen-button');
  const status = await waitFor('rx: #status[data-kind=error] about screen sharing', async () => {
    const s = await pageState(rx);
    return { ok: s.status?.kind === 'error', value: s.status };
  }, { timeout: 20_000, explain: () => pageState(rx) });
  ctx.note(`rx #status: ${JSON.stringify(status)}`);
  assert.match(status.text, /screen shar/i, '#status text names screen sharing');
  const b = await buttonState(rx, '#screen-button');
  assert.equal(b?.pressed, 'false', `#screen-button not pressed: ${JSON.stringify(b)}`);
  assert.equal((await pageState(rx)).room?.state, 'joined', 'still joined');
});

e2e('a peer who joins during a screen share receives the screen and the camera', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('latescreen');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await waitTiles(ben, [anaId]);
  await waitVideoPlaying(ben, anaId, { timeout: 45_000 });
  const cam = await waitTileView(ben, anaId, 'camera video has a size', (x) => x.w > 0 && x.h > 0);

  await clickControl(ana, '#screen-button');
  await waitButton(ana, '#screen-button', 'true', { timeout: 20_000 });
  const screen = await waitScreenPlaying(ben, anaId, cam);

  const cai = await ctx.joiner('chromium', server, room, 'cai');
  await waitTiles(cai, [anaId, benId], { timeout: 45_000 });
  await waitVideoPlaying(cai, anaId, { timeout: 45_000 });
  const late = await waitScreenPlaying(cai, anaId, cam);
  const lateCam = await waitTileView(cai, anaId, 'ana\'s camera tile shows the camera',
    (x) => x.camText === 'Camera on' && x.w > 0 && Math.abs(aspect(x) - aspect(cam)) <= 0.05, { timeout: 10_000 });
  assert.ok(Math.abs(late.w / late.h - screen.w / screen.h) <= 0.05, `cai's screen has ben's shape: ${JSON.stringify({ late, screen })}`);
  ctx.note(`cai sees ana's camera ${lateCam.w}x${lateCam.h} and her screen ${late.w}x${late.h}`);
}, { timeout: 240_000 });

// Recording the call in the browser (issue 18): the visible layout drawn
// into a canvas with every voice mixed, saved as WebM by MediaRecorder, and
// everyone told while it runs (media-state "recording", latecomers too).
//
// - ana records for 10 s: ben's page shows `#recording-banner` and a REC
//   mark on ana's tile at once; cai, who joins during it, sees them too;
// - when ana stops, the banner goes on the others' pages and ana's chat log
//   has the recording with a Save link;
// - the saved file is WebM with a video track (VP8/VP9) and an audio track
//   (Opus), and loaded back into a <video> element it plays 1280×720 for
//   about the 10 s recorded, with audio decoded.

import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ARTIFACTS, e2e, uniqueRoom, selfId, waitTiles, waitFor, waitMediaFlowing, saveDownload } from './harness.mjs';

async function banner(page) {
  return page.evaluate(() => document.querySelector('#recording-banner')?.textContent ?? null);
}

async function recMark(page, id) {
  return page.evaluate((i) => document.querySelector(`.tile[data-peer-id="${i}"]`)?.dataset.recording, id);
}

e2e('a 10 s recording: everyone is told (latecomers too), and the WebM plays back with video and audio', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('rec');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await waitTiles(ana, [benId], { timeout: 45_000 });
  await waitMediaFlowing(ana, benId, { timeout: 60_000 });
  await waitMediaFlowing(ben, anaId, { timeout: 60_000 });

  await ana.click('#record-button');
  const startedAt = Date.now();
  assert.equal(await ana.$eval('#record-button', (b) => b.getAttribute('aria-pressed')), 'true');
  await waitFor('ana: her own banner', async () => ({ ok: (await banner(ana)) === 'You are recording this call', value: await banner(ana) }), { timeout: 5_000 });
  await waitFor('ben: told that ana records', async () => {
    const [text, mark] = [await banner(ben), await recMark(ben, anaId)];
    return { ok: text === 'ana is recording this call' && mark === 'true', value: { text, mark } };
  }, { timeout: 10_000 });
  await mkdir(path.join(ARTIFACTS, 'screens'), { recursive: true });
  await ben.screenshot({ path: path.join(ARTIFACTS, 'screens', 'recording-desktop.png') });
  await ben.setViewport({ width: 390, height: 844 });
  await ben.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await ben.screenshot({ path: path.join(ARTIFACTS, 'screens', 'recording-phone.png') });
  assert.equal(await ben.evaluate(() => document.documentElement.scrollWidth <= innerWidth), true, 'the banner fits a phone');
  await ben.setViewport({ width: 1280, height: 800 });
  const cai = await ctx.joiner('chromium', server, room, 'cai');
  await waitFor('cai (joined during it): told too', async () => {
    const [text, mark] = [await banner(cai), await recMark(cai, anaId)];
    return { ok: text === 'ana is recording this call' && mark === 'true', value: { text, mark } };
  }, { timeout: 15_000 });

  const left = 10_000 - (Date.now() - startedAt);
  if (left > 0) await new Promise((r) => setTimeout(r, left)); // the scenario: a 10 s recording
  await ana.click('#record-button');
  for (const p of [ben, cai]) {
    await waitFor(`${p.__label}: the banner goes`, async () => ({ ok: (await banner(p)) === null, value: await banner(p) }), { timeout: 10_000 });
  }
  const row = await waitFor('ana: the recording in the chat log', async () => {
    const r = await ana.evaluate(() => {
      const li = document.querySelector('#chat-log li.file[data-transfer-id^="rec-"]');
      return li && {
        id: li.dataset.transferId,
        state: li.dataset.state,
        head: li.querySelector('.file-head')?.textContent,
        name: li.querySelector('.file-name')?.textContent,
        href: li.querySelector('a.file-download')?.href,
        download: li.querySelector('a.file-download')?.getAttribute('download'),
      };
    });
    return { ok: !!r?.href, value: r };
  }, { timeout: 15_000 });
  assert.equal(row.state, 'done');
  assert.equal(row.head, 'Recording');
  assert.match(row.name, new RegExp(`^${room}-\\d{4}\\.webm$`));

  // Saved as a person would (the Save link), then read.
  const saved = await saveDownload(ctx, ana, `li.file[data-transfer-id="${row.id}"] a.file-download`, row.download);
  const bytes = await readFile(saved);
  assert.equal(bytes.subarray(0, 4).toString('hex'), '1a45dfa3', 'an EBML (WebM) file');
  const text = bytes.toString('latin1');
  assert.ok(/V_VP[89]/.test(text), 'a VP8 or VP9 video track');
  assert.ok(text.includes('A_OPUS'), 'an Opus audio track');

  // Loaded back into a <video> element: it plays, 1280×720, ~10 s, with sound.
  const played = await ana.evaluate(async (url) => {
    const v = document.createElement('video');
    v.muted = true;
    v.src = url;
    document.body.append(v);
    await new Promise((ok, ko) => { v.onloadedmetadata = ok; v.onerror = () => ko(new Error(`cannot load: ${v.error?.message}`)); });
    // MediaRecorder's WebM has no duration in its header: seeking far sets it.
    v.currentTime = 1e9;
    await new Promise((ok) => { v.onseeked = ok; });
    const duration = v.duration;
    v.currentTime = 0;
    await new Promise((ok) => { v.onseeked = ok; });
    await v.play();
    await new Promise((ok) => setTimeout(ok, 1500));
    const out = { w: v.videoWidth, h: v.videoHeight, duration, t: v.currentTime, audioBytes: v.webkitAudioDecodedByteCount, videoBytes: v.webkitVideoDecodedByteCount };
    v.remove();
    return out;
  }, row.href);
  ctx.note(`recording of 10 s: ${bytes.length} bytes; played back: ${JSON.stringify(played)}`);
  assert.equal(played.w, 1280);
  assert.equal(played.h, 720);
  assert.ok(played.duration >= 8 && played.duration <= 16, `about 10 s long (${played.duration})`);
  assert.ok(played.t > 0.5, 'it plays');
  assert.ok(played.videoBytes > 0, 'video decoded');
  assert.ok(played.audioBytes > 0, 'audio decoded');
}, { timeout: 240_000 });

e2e('leaving the call while recording: the browser saves the recording at once (the chat log goes away with the call)', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('rec-leave');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const anaId = await selfId(ana);
  await waitMediaFlowing(ben, anaId, { timeout: 60_000 });
  await ana.click('#record-button');
  await waitFor('ben: told that ana records', async () => ({ ok: (await banner(ben)) === 'ana is recording this call', value: await banner(ben) }), { timeout: 10_000 });
  const name = await ana.evaluate((r) => {
    const d = new Date();
    return `${r}-${String(d.getHours()).padStart(2, '0')}${String(d.getMinutes()).padStart(2, '0')}.webm`;
  }, room);
  await new Promise((r) => setTimeout(r, 3000)); // the scenario: 3 s of recording
  const saved = await saveDownload(ctx, ana, () => ana.click('#leave-button'), name);
  await ana.waitForSelector('#left-screen', { visible: true, timeout: 10_000 });
  const bytes = await readFile(saved);
  assert.equal(bytes.subarray(0, 4).toString('hex'), '1a45dfa3', 'a WebM file, saved without a click on Save');
  await waitFor('ben: the banner goes with ana', async () => ({ ok: (await banner(ben)) === null, value: await banner(ben) }), { timeout: 20_000 });
  ctx.note(`recording saved on leaving: ${bytes.length} bytes`);
}, { timeout: 180_000 });

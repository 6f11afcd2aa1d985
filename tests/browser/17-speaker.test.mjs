// Who speaks, and which tile is large (issue 18): the active speaker from
// the received audio levels, speaker view, pin, and a shared screen as
// the large tile for everyone. Screenshots in artifacts/screens/.
//
// - with Chromium's fake microphone, the speaking peer's tile gets
//   `data-speaking=true` on the others' pages; a muted peer's never does;
// - speaker view (`#layout-button`) makes the speaker's tile the large one;
// - pinning a tile makes it the large one (over the speaker), unpinning
//   goes back;
// - a screen share becomes the large tile on the other pages, in an SFU
//   room too, with the presenter's camera still playing in the strip (the
//   screen is a second video, not the camera's replacement).

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ARTIFACTS, e2e, uniqueRoom, selfId, waitTiles, waitFor, waitMediaFlowing } from './harness.mjs';

const DIR = path.join(ARTIFACTS, 'screens');

/** Each tile of `page`: peer id (`self` for ours, `screen:<id>` for a shared screen), speaking, big, area. */
async function tiles(page) {
  return page.evaluate(() => [...document.querySelectorAll('.grid > .tile')].map((t) => {
    const r = t.getBoundingClientRect();
    return {
      id: t.classList.contains('local') ? 'self' : t.dataset.screenOf ? `screen:${t.dataset.screenOf}` : t.dataset.peerId,
      speaking: t.dataset.speaking === 'true',
      big: t.dataset.big === 'true',
      area: Math.round(r.width * r.height),
      // The share of the video area's width it takes.
      widthShare: r.width / document.querySelector('.grid').getBoundingClientRect().width,
    };
  }));
}

/** Waits until `id`'s tile is the large one on `page`: the largest on screen, the video area's whole width. */
async function waitBig(page, id, desc) {
  return waitFor(`${page.__label}: ${desc}`, async () => {
    const ts = await tiles(page);
    const big = ts.filter((t) => t.big);
    const largest = [...ts].sort((a, b) => b.area - a.area)[0];
    const layout = await page.evaluate(() => document.querySelector('.grid')?.dataset.layout);
    return {
      ok: big.length === 1 && big[0].id === id && largest.id === id && layout === 'focus' && big[0].widthShare > 0.95,
      value: { layout, ts },
    };
  }, { timeout: 20_000, interval: 100 });
}

/** The size and play position of `id`'s camera and screen videos on `page`. */
async function presenterVideos(page, id) {
  return page.evaluate((id) => {
    const v = (sel) => {
      const e = document.querySelector(sel);
      return e ? { w: e.videoWidth, h: e.videoHeight, t: e.currentTime } : null;
    };
    return { camera: v(`video[data-peer-id="${id}"]`), screen: v(`.tile[data-screen-of="${id}"] video`) };
  }, id);
}

/** Waits until `id`'s camera and screen both play on `page` (sizes of their own shapes, time moving). */
async function waitBothPlaying(page, id) {
  let first = null;
  return waitFor(`${page.__label}: camera and screen of ${id} both playing`, async () => {
    const now = await presenterVideos(page, id);
    const sized = (x) => x && x.w > 0 && x.h > 0;
    const ok0 = sized(now.camera) && sized(now.screen)
      && Math.abs(now.camera.w / now.camera.h - now.screen.w / now.screen.h) > 0.05;
    if (!ok0) { first = null; return { ok: false, value: now }; }
    if (!first) { first = now; return { ok: false, value: now }; }
    const moving = now.camera.t > first.camera.t && now.screen.t > first.screen.t;
    return { ok: moving, value: now };
  }, { timeout: 20_000, interval: 300 });
}

/** `who` mutes its microphone; waits until `seer` shows it muted. */
async function mute(who, seer, whoId) {
  await who.click('#mic-button');
  await waitFor(`${seer.__label}: ${who.__label} shown muted`, async () => {
    const on = await seer.evaluate((id) => document.querySelector(`.tile[data-peer-id="${id}"] .mic-state`)?.dataset.on, whoId);
    return { ok: on === 'false', value: on };
  }, { timeout: 15_000 });
}

/** For `ms`, every 100 ms: in how many samples each of `ids`' tiles on `page` said speaking. */
async function countSpeaking(page, ids, ms) {
  const counts = ids.map(() => 0);
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ts = await tiles(page);
    ids.forEach((id, i) => { if (ts.find((t) => t.id === id)?.speaking) counts[i] += 1; });
    await new Promise((r) => setTimeout(r, 100));
  }
  return counts;
}

async function threeInARoom(ctx, sfu) {
  const server = await ctx.server(sfu ? ['--sfu', '--sfu-ports', '42800-42900'] : []);
  const room = uniqueRoom(sfu ? 'speaker-sfu' : 'speaker');
  const opts = sfu ? { extra: { mode: 'sfu' } } : {};
  const pages = [];
  for (const who of ['ana', 'ben', 'cai']) pages.push(await ctx.joiner('chromium', server, room, who, opts));
  const ids = [];
  for (const p of pages) ids.push(await selfId(p));
  for (const [i, p] of pages.entries()) {
    const others = ids.filter((_, j) => j !== i);
    await waitTiles(p, others, { timeout: 45_000 });
    for (const id of others) await waitMediaFlowing(p, id, { timeout: 60_000 });
  }
  return { pages, ids };
}

e2e('the speaking peer\'s tile lights up on the others\' pages, a muted one\'s never; speaker view and pin choose the large tile', async (ctx) => {
  await mkdir(DIR, { recursive: true });
  const { pages: [, ben, cai], ids: [anaId, benId] } = await threeInARoom(ctx, false);
  // ben mutes: his fake microphone's tone no longer goes out.
  await mute(ben, cai, benId);

  // For 8 s, every 100 ms: ana's tile speaks on cai's page, ben's never.
  const [anaSpoke, benSpoke] = await countSpeaking(cai, [anaId, benId], 8000);
  ctx.note(`on cai's page over 8 s (samples every 100 ms): ana speaking in ${anaSpoke}, muted ben in ${benSpoke}`);
  assert.ok(anaSpoke > 0, 'ana\'s tile showed data-speaking');
  assert.equal(benSpoke, 0, 'the muted peer\'s tile never did');
  await waitFor('ben: ana speaking too', async () => {
    const t = (await tiles(ben)).find((x) => x.id === anaId);
    return { ok: !!t?.speaking, value: t };
  }, { timeout: 15_000, interval: 100 });

  // Speaker view on cai: ana, the one who speaks, is large.
  await cai.click('#layout-button');
  await waitBig(cai, anaId, 'speaker view: ana large');
  await cai.screenshot({ path: path.join(DIR, 'speaker-view-desktop.png') });

  // Pin ben: large over the speaker; unpin: the speaker again.
  await cai.click(`.tile[data-peer-id="${benId}"] .pin`);
  await waitBig(cai, benId, 'ben pinned large');
  assert.equal(await cai.$eval(`.tile[data-peer-id="${benId}"] .pin`, (b) => b.getAttribute('aria-pressed')), 'true');
  await cai.screenshot({ path: path.join(DIR, 'pinned-desktop.png') });
  // Picture in picture of the large tile, where the browser allows it (the
  // button is not offered otherwise).
  const pip = await cai.evaluate(() => document.pictureInPictureEnabled === true);
  if (pip) {
    await cai.click('#pip-button');
    await waitFor('cai: the large tile in picture in picture', async () => {
      const v = await cai.evaluate(() => document.pictureInPictureElement?.getAttribute('data-peer-id') ?? null);
      return { ok: v === benId, value: v };
    }, { timeout: 10_000 });
    await cai.evaluate(() => document.exitPictureInPicture());
  } else {
    assert.equal(await cai.$('#pip-button'), null, 'no picture-in-picture button where the browser has none');
  }
  ctx.note(`picture in picture ${pip ? 'opened on the large tile' : 'not available in this browser: not offered'}`);
  await cai.setViewport({ width: 390, height: 844 });
  await waitBig(cai, benId, 'phone: ben still large');
  await cai.screenshot({ path: path.join(DIR, 'pinned-phone.png') });
  const overflow = await cai.evaluate(() => document.documentElement.scrollWidth > innerWidth);
  assert.equal(overflow, false, 'nothing wider than the phone');
  await cai.setViewport({ width: 1280, height: 800 });
  await cai.click(`.tile[data-peer-id="${benId}"] .pin`);
  await waitBig(cai, anaId, 'unpinned: the speaker again');
  // Back to the grid: no tile large.
  await cai.click('#layout-button');
  await waitFor('cai: the grid again', async () => {
    const layout = await cai.evaluate(() => document.querySelector('.grid')?.dataset.layout);
    const big = (await tiles(cai)).filter((t) => t.big);
    return { ok: layout === 'grid' && big.length === 0, value: { layout, big } };
  }, { timeout: 10_000 });

  // The keyboard, outside text fields: ? help, m microphone, p pin, s speaker view, c chat.
  await cai.keyboard.press('?');
  await cai.waitForSelector('#shortcuts-help:not(.hidden)', { visible: true, timeout: 5_000 });
  const listed = await cai.$$eval('#shortcuts-help kbd', (ks) => ks.map((k) => k.textContent));
  assert.deepEqual(listed, ['m', 'v', 'h', 'c', 'p', 's', '?']);
  await cai.screenshot({ path: path.join(DIR, 'shortcuts-desktop.png') });
  await cai.keyboard.press('Escape');
  await cai.waitForSelector('#shortcuts-help.hidden', { timeout: 5_000 });
  const micPressed = () => cai.$eval('#mic-button', (b) => b.getAttribute('aria-pressed'));
  const before = await micPressed();
  await cai.keyboard.press('m');
  await waitFor('cai: m toggles the microphone', async () => ({ ok: (await micPressed()) !== before, value: await micPressed() }), { timeout: 5_000 });
  await cai.keyboard.press('m');
  await cai.keyboard.press('p'); // ours first
  await waitBig(cai, 'self', 'p pins our own tile');
  await cai.keyboard.press('p'); // then the first member
  await waitFor('cai: p pins the next tile', async () => {
    const big = (await tiles(cai)).find((t) => t.big);
    return { ok: !!big && big.id !== 'self', value: big };
  }, { timeout: 5_000 });
  await cai.keyboard.press('p');
  await cai.keyboard.press('p'); // past the last: none
  await waitFor('cai: no pin after the last', async () => {
    const layout = await cai.evaluate(() => document.querySelector('.grid')?.dataset.layout);
    return { ok: layout === 'grid', value: layout };
  }, { timeout: 5_000 });
  await cai.keyboard.press('s');
  await waitBig(cai, anaId, 's: speaker view, ana large');
  await cai.keyboard.press('c');
  await waitFor('cai: c focuses the chat box', async () => {
    const id = await cai.evaluate(() => document.activeElement?.id);
    return { ok: id === 'chat-input', value: id };
  }, { timeout: 5_000 });
  // Typing in the box is text, not shortcuts.
  await cai.keyboard.type('mps');
  assert.equal(await cai.$eval('#chat-input', (i) => i.value), 'mps');
  assert.equal(await micPressed(), before, 'typing m in the chat box did not touch the microphone');
}, { timeout: 240_000 });

e2e('in an SFU room too, the speaking peer\'s tile lights up and a muted one\'s never', async (ctx) => {
  const { pages: [, ben, cai], ids: [anaId, benId] } = await threeInARoom(ctx, true);
  await mute(ben, cai, benId);
  const [anaSpoke, benSpoke] = await countSpeaking(cai, [anaId, benId], 6000);
  ctx.note(`SFU room, on cai's page over 6 s: ana speaking in ${anaSpoke} samples, muted ben in ${benSpoke}`);
  assert.ok(anaSpoke > 0, 'ana\'s tile showed data-speaking (through the SFU)');
  assert.equal(benSpoke, 0, 'the muted peer\'s tile never did');
}, { timeout: 240_000 });

for (const sfu of [false, true]) {
  e2e(`a shared screen becomes the large tile on the other pages${sfu ? ' (SFU room)' : ''}`, async (ctx) => {
    await mkdir(DIR, { recursive: true });
    const { pages: [ana, ben, cai], ids: [anaId] } = await threeInARoom(ctx, sfu);
    await ana.click('#screen-button');
    for (const p of [ben, cai]) await waitBig(p, `screen:${anaId}`, 'ana\'s screen large');
    // Both of ana's videos play on the others' pages: the screen (the fake
    // screen is 16:9) large, her camera (4:3) in the strip.
    for (const p of [ben, cai]) {
      const both = await waitBothPlaying(p, anaId);
      ctx.note(`${p.__label} sees ana's screen ${both.screen.w}x${both.screen.h} large and her camera ${both.camera.w}x${both.camera.h} in the strip`);
    }
    // On ana's own page: her screen in a tile of its own, her camera in hers.
    await waitFor('ana: her own screen tile', async () => {
      const label = await ana.evaluate((id) => document.querySelector(`.tile[data-screen-of="${id}"] .tile-name`)?.textContent, anaId);
      return { ok: label === 'Your screen', value: label };
    }, { timeout: 10_000 });
    await ben.screenshot({ path: path.join(DIR, `presentation${sfu ? '-sfu' : ''}-desktop.png`) });
    if (!sfu) {
      // On a phone: the screen large, the cameras in the strip below.
      await cai.setViewport({ width: 390, height: 844 });
      await waitBig(cai, `screen:${anaId}`, 'ana\'s screen large on a phone');
      await cai.screenshot({ path: path.join(DIR, 'presentation-phone.png') });
      await cai.setViewport({ width: 1280, height: 800 });
    }
    // Stopping the share: back to the grid.
    await ana.click('#screen-button');
    for (const p of [ben, cai]) {
      await waitFor(`${p.__label}: the grid again, no screen tile`, async () => {
        const v = await p.evaluate(() => ({ layout: document.querySelector('.grid')?.dataset.layout, screens: document.querySelectorAll('.tile[data-screen-of]').length }));
        return { ok: v.layout === 'grid' && v.screens === 0, value: v };
      }, { timeout: 15_000 });
    }
    // A second share shows again (the same sender, its track swapped).
    await ana.click('#screen-button');
    for (const p of [ben, cai]) await waitBothPlaying(p, anaId);
    await ana.click('#screen-button');
  }, { timeout: 240_000 });
}

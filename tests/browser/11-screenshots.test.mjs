// Screenshots of every screen, at 1280×800 and on a 390 px phone, saved in
// artifacts/screens/ (lobby; calls of 2, 3 and 6; chat; the comparison;
// each error screen; after leaving), with what a person would stumble on
// asserted on each: nothing wider than the phone, the Join button above
// the fold, one row of controls fixed at the bottom, and a 3-person grid
// that uses at least 60 % of the video area.

import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ARTIFACTS, e2e, uniqueRoom, selfId, joinRoom, waitJoinedState, waitFor, pageState, roomUrl, waitTileCount,
  waitMediaFlowing, sendChat, waitMessage,
} from './harness.mjs';

const DESKTOP = { width: 1280, height: 800 };
// Not `isMobile`: changing it reloads the page (and would leave the call).
const PHONE = { width: 390, height: 844 };
const DIR = path.join(ARTIFACTS, 'screens');

/** What could trip a person up on this screen, measured. */
const layout = (page) => page.evaluate(() => {
  const rect = (s) => {
    const el = document.querySelector(s);
    if (!el || el.offsetParent === null && getComputedStyle(el).position !== 'fixed') return null;
    const r = el.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, left: r.left, right: r.right, w: r.width, h: r.height };
  };
  const stage = rect('.stage');
  const tiles = [...document.querySelectorAll('.grid > .tile')].map((t) => t.getBoundingClientRect());
  const tileArea = tiles.reduce((a, r) => a + r.width * r.height, 0);
  return {
    innerWidth, innerHeight,
    scrollWidth: document.documentElement.scrollWidth,
    // Past the right edge by any fraction of a pixel: another machine's
    // fonts round it up to a scrollbar (scrollWidth is rounded).
    pastEdge: [...document.querySelectorAll('body *')].filter((e) => {
      const r = e.getBoundingClientRect();
      return r.width > 0 && r.right > innerWidth + 0.01 && getComputedStyle(e).position !== 'fixed';
    }).map((e) => `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}${e.className && typeof e.className === 'string' ? `.${e.className.trim().split(/\s+/).join('.')}` : ''}`),
    join: rect('#join-button'),
    mic: rect('#mic-button'),
    leave: rect('#leave-button'),
    controls: rect('.controls'),
    stage,
    tiles: tiles.length,
    tileShare: stage ? tileArea / (stage.w * stage.h) : null,
  };
});

/** Screenshot `name` at both sizes, checking each; returns both layouts. */
async function shoot(page, name, check = () => {}) {
  const out = {};
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewport(viewport);
    // Let the grid follow its new size (ResizeObserver, then a frame).
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await page.screenshot({ path: path.join(DIR, `${name}-${size}.png`) });
    const l = await layout(page);
    assert.ok(l.scrollWidth <= l.innerWidth, `${name} (${size}): nothing overflows horizontally (${l.scrollWidth} > ${l.innerWidth})`);
    assert.deepEqual(l.pastEdge, [], `${name} (${size}): nothing reaches past the right edge`);
    check(l, size);
    out[size] = l;
  }
  await page.setViewport(DESKTOP);
  return out;
}

/** A phone screenshot as the page stands (a panel open). */
async function phoneOnly(page, name) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await page.screenshot({ path: path.join(DIR, `${name}-phone.png`) });
  const l = await layout(page);
  assert.ok(l.scrollWidth <= l.innerWidth, `${name} (phone): nothing overflows horizontally`);
  assert.deepEqual(l.pastEdge, [], `${name} (phone): nothing reaches past the right edge`);
}

function phoneControls(l, size) {
  if (size !== 'phone') return;
  assert.ok(l.controls && Math.abs(l.controls.bottom - l.innerHeight) < 2, 'the control bar is fixed at the bottom');
  assert.ok(l.mic && l.leave && Math.abs((l.mic.top + l.mic.bottom) - (l.leave.top + l.leave.bottom)) / 2 < 4, 'Leave is on the same row as the other controls');
}

e2e('screenshots of every screen, desktop and phone, with the layout checked', async (ctx, t) => {
  await mkdir(DIR, { recursive: true });
  const server = await ctx.server(['--sfu', '--max-peers-per-room', '8']);
  const main = await ctx.page(await ctx.chromium(), 'main');

  // Lobby.
  await main.goto(`${server.url}/`, { waitUntil: 'domcontentloaded' });
  await main.waitForSelector('#lobby', { visible: true });
  await main.waitForSelector('#mode-select', { visible: true, timeout: 20_000 });
  await main.waitForSelector('video#preview:not(.hidden)', { visible: true, timeout: 20_000 });
  await main.type('#name-input', 'Ana Lima');
  await shoot(main, 'lobby', (l, size) => {
    assert.ok(l.join && l.join.bottom <= l.innerHeight, `lobby (${size}): the Join button is above the fold`);
  });

  // The link as a QR code, for a phone.
  await main.setViewport(PHONE);
  await main.click('#qr-button');
  await main.waitForFunction(() => document.querySelector('#qr-code')?.complete && document.querySelector('#qr-code').naturalWidth > 0, { timeout: 10_000 });
  await main.evaluate(() => document.querySelector('#qr-button').scrollIntoView({ block: 'end' }));
  await phoneOnly(main, 'lobby-qr');
  await main.setViewport(DESKTOP);

  // Calls of 2 and 3 (mesh), chat and the comparison.
  const room = uniqueRoom('shots');
  await joinRoom(main, server, room, 'Ana Lima');
  const others = await ctx.chromium();
  const bob = await ctx.page(others, 'bob');
  await joinRoom(bob, server, room, 'Bob');
  const [bobId] = await waitTileCount(main, 1);
  await waitMediaFlowing(main, bobId, { audio: false });
  await sendChat(bob, 'Hi! The notes are at https://example.com/notes');
  await waitMessage(main, 'Hi! The notes are at https://example.com/notes');
  await shoot(main, 'call-2', phoneControls);
  const cara = await ctx.page(others, 'cara');
  await joinRoom(cara, server, room, 'Cara');
  await waitTileCount(main, 2);
  // Cara's camera off: her tile shows her initial.
  await cara.click('#camera-button');
  await waitFor('main: a camera-off tile', () => main.evaluate(() => !!document.querySelector('.tile.video-off[data-peer-id]')), { timeout: 15_000 });
  const three = await shoot(main, 'call-3', (l, size) => {
    phoneControls(l, size);
    assert.ok(l.tileShare >= 0.6, `3-person grid (${size}) uses ${(l.tileShare * 100).toFixed(0)} % of the video area`);
  });
  t.diagnostic(`3-person grid share of the video area: desktop ${(three.desktop.tileShare * 100).toFixed(0)} %, phone ${(three.phone.tileShare * 100).toFixed(0)} %`);
  await main.click('#compare-toggle');
  await waitFor('main: a round trip on both paths', () => main.evaluate(() =>
    [...document.querySelectorAll('#rtt-panel tr[data-peer-id]')].some((r) =>
      r.querySelector('.rtt-relay')?.getAttribute('data-ms') && r.querySelector('.rtt-p2p')?.getAttribute('data-ms'))), { timeout: 20_000 });
  await shoot(main, 'compare');
  // On a phone the panels are overlays, closed until asked for.
  await main.setViewport(PHONE);
  // The phone's control bar has no Compare button (nine do not fit): the
  // comparison is a tab of the side panel.
  await main.click('#chat-toggle');
  await main.click('#tab-compare');
  await phoneOnly(main, 'compare-open');
  await main.click('#tab-people');
  await phoneOnly(main, 'people-open');
  await main.click('#tab-chat');
  await phoneOnly(main, 'chat-open');
  await main.setViewport(DESKTOP);

  // A call of 6, through the SFU.
  const big = uniqueRoom('six');
  await joinRoom(main, server, big, 'Ana Lima', { extra: { mode: 'sfu' } });
  for (const name of ['Bob', 'Cara', 'Dan', 'Eve', 'Finn']) {
    const p = await ctx.page(others, name.toLowerCase());
    await joinRoom(p, server, big, name, { extra: { mode: 'sfu' } });
  }
  await waitTileCount(main, 5, { timeout: 60_000 });
  await waitFor('main: five remote videos decoding', () => main.evaluate(() =>
    [...document.querySelectorAll('.tile[data-peer-id]')].filter((t) => Number(t.getAttribute('data-frames-decoded')) > 0).length >= 5), { timeout: 60_000 });
  await shoot(main, 'call-6', phoneControls);

  // The screens after a call.
  await main.click('#leave-button');
  await main.waitForSelector('#left-screen', { visible: true });
  await shoot(main, 'left');
  const pw = uniqueRoom('pw');
  const owner = await ctx.page(others, 'owner');
  await owner.goto(`${server.url}/r/${pw}`, { waitUntil: 'domcontentloaded' });
  await owner.waitForSelector('#password-input', { visible: true });
  await owner.type('#name-input', 'owner');
  await owner.type('#password-input', 'secret');
  await owner.click('#join-button');
  await waitJoinedState(owner);
  await selfId(owner);
  for (const [name, url] of [
    ['error-password', roomUrl(server, pw, 'Ana Lima')],
    ['error-invalid-room', `${server.url}/r/${encodeURIComponent('not a room!')}?name=Ana`],
  ]) {
    await main.goto(url, { waitUntil: 'domcontentloaded' });
    await main.waitForSelector('#error-screen', { visible: true, timeout: 20_000 });
    await shoot(main, name);
  }
  const plain = await ctx.server(['--max-peers-per-room', '1']);
  const solo = uniqueRoom('solo');
  await joinRoom(owner, plain, solo, 'owner');
  await main.goto(roomUrl(plain, solo, 'Ana'), { waitUntil: 'domcontentloaded' });
  await main.waitForSelector('#error-screen[data-kind=room_full]', { visible: true, timeout: 20_000 });
  await shoot(main, 'error-room-full');
  await main.goto(roomUrl(plain, uniqueRoom('nosfu'), 'Ana', { mode: 'sfu' }), { waitUntil: 'domcontentloaded' });
  await main.waitForSelector('#error-screen[data-kind=mode_unavailable]', { visible: true, timeout: 20_000 });
  await shoot(main, 'error-sfu-unavailable');
  ctx.note(`screenshots in ${DIR}; main page: ${JSON.stringify((await pageState(main)).status)}`);
}, { timeout: 300_000 });

// The smaller things a person notices in a call:
// - joining with the microphone off (lobby switch): the others see a muted tile;
// - two people with one name are told apart ("Ana (2)");
// - a message that arrives while the chat is closed shows an unread badge
//   and a count in the tab title, cleared when the chat opens;
// - a web address in a message is a link (new tab, no opener), the rest text;
// - a ?name= longer than 32 characters is not cut silently;
// - the QR code of the room link is served as an SVG of this origin.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, joinRoom, waitJoinedState, waitFor, pageState, fillInput, roomUrl, waitTiles,
  sendChat, waitMessage,
} from './harness.mjs';

e2e('mic off from the lobby, same names told apart, unread badge and title, links, long names, QR', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('details');

  // Ana joins from the lobby with her microphone off.
  const ana = await ctx.page(await ctx.chromium(), 'ana');
  await ana.goto(`${server.url}/r/${room}`, { waitUntil: 'domcontentloaded' });
  await ana.waitForSelector('#prejoin-mic:not([disabled])', { timeout: 20_000 });
  await ana.click('#prejoin-mic');
  assert.equal(await ana.$eval('#prejoin-mic', (b) => b.getAttribute('aria-pressed')), 'true');
  await fillInput(ana, '#name-input', 'Ana');
  await ana.click('#join-button');
  await waitJoinedState(ana);
  const anaId = await selfId(ana);
  assert.equal(await ana.$eval('#mic-button', (b) => b.getAttribute('aria-pressed')), 'true', 'joined muted');

  // A second "Ana" joins by link; the first sees "Ana (2)", the second sees
  // the first as plain "Ana" and her muted microphone.
  const ana2 = await ctx.joiner('chromium', server, room, 'Ana', { label: 'ana2' });
  const ana2Id = await selfId(ana2);
  await waitTiles(ana, [ana2Id]);
  const label = await waitFor('ana: the second Ana is "Ana (2)"', () => ana.evaluate((id) =>
    document.querySelector(`.tile[data-peer-id="${id}"] .tile-name`)?.textContent, ana2Id), { timeout: 10_000, explain: () => pageState(ana) });
  assert.equal(label, 'Ana (2)');
  await waitFor('ana2: ana\'s tile shows a muted microphone', () => ana2.evaluate((id) =>
    document.querySelector(`.tile[data-peer-id="${id}"] .mic-state`)?.getAttribute('data-on') === 'false', anaId), { timeout: 15_000 });

  // Chat closed on ana's page: a message from ana2 raises the badge and the title.
  await ana.click('#chat-toggle');
  await waitFor('ana: chat panel closed', () => ana.evaluate(() => document.querySelector('#room').getAttribute('data-panel') === 'closed'), { timeout: 5_000 });
  const text = 'agenda: https://example.com/agenda?x=1 (read it)';
  await sendChat(ana2, text);
  const badge = await waitFor('ana: #chat-unread shows 1', () => ana.evaluate(() => {
    const b = document.querySelector('#chat-unread');
    return { ok: !!b && !b.classList.contains('hidden') && b.textContent.trim() === '1', value: b?.textContent };
  }), { timeout: 15_000, explain: () => pageState(ana) });
  ctx.note(`badge ${JSON.stringify(badge)}`);
  assert.match(await ana.title(), /^\(1\) /, 'the tab title counts the unread message');
  await ana.click('#chat-toggle');
  await waitFor('ana: badge cleared when the chat opens', () => ana.evaluate(() =>
    document.querySelector('#chat-unread').classList.contains('hidden')), { timeout: 5_000 });
  assert.doesNotMatch(await ana.title(), /^\(/, 'the title count is gone');
  const msg = await waitMessage(ana, text);
  assert.equal(msg.from, ana2Id);
  const link = await ana.evaluate((t) => {
    const m = [...document.querySelectorAll('.msg')].find((e) => e.querySelector('.msg-text')?.textContent === t);
    const a = m?.querySelector('.msg-text a');
    return a ? { href: a.getAttribute('href'), target: a.target, rel: a.rel, links: m.querySelectorAll('.msg-text a').length } : null;
  }, text);
  assert.deepEqual(link, { href: 'https://example.com/agenda?x=1', target: '_blank', rel: 'noopener noreferrer nofollow', links: 1 });

  // A name longer than 32 characters: the lobby, shortened, and says so.
  const long = await ctx.page(await ctx.chromium(), 'long');
  await long.goto(roomUrl(server, room, 'A'.repeat(40)), { waitUntil: 'domcontentloaded' });
  await long.waitForSelector('#lobby', { visible: true, timeout: 20_000 });
  assert.equal(await long.$eval('#name-input', (e) => e.value), 'A'.repeat(32));
  const why = await long.$eval('#lobby .form-error', (e) => e.textContent);
  assert.match(why, /32 characters/);

  // The QR code of the link.
  const share = await ana.$eval('#share-link', (e) => e.value);
  const res = await fetch(`${server.url}/api/qr?text=${encodeURIComponent(share)}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^image\/svg\+xml/);
  const svg = await res.text();
  assert.ok(svg.includes('<svg') && !svg.includes(room), 'an SVG of squares, not the text');
  assert.equal((await fetch(`${server.url}/api/qr?text=${'x'.repeat(600)}`)).status, 400, 'too long: 400');
  assert.equal((await fetch(`${server.url}/api/qr`)).status, 400, 'missing: 400');
  const img = await ana.evaluate(() => {
    const i = document.querySelector('#qr-code');
    return i ? i.getAttribute('src') : null;
  });
  assert.equal(img, `/api/qr?text=${encodeURIComponent(share)}`, 'the page offers the QR of its link');
});

// Host controls from the host's own page (issue 17): three Chromium in a
// room, a fourth at the door. The host (the room's creator) asks one to
// mute (its microphone turns off, the others see it muted), locks the room
// (the fourth is refused with the message), unlocks it (the fourth gets
// in), removes another (its page says why, the others' tiles of it go); a
// raised hand and a reaction show on the other pages; when the host leaves,
// the member there longest gets the controls.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitFor, pageState, joinRoom, waitJoinedState,
} from './harness.mjs';

const row = (id) => `#people-list li[data-peer-id="${id}"]`;

async function openPeople(page) {
  await page.click('#people-button');
  await page.waitForSelector('#people-panel', { visible: true, timeout: 10_000 });
}

async function attr(page, selector, name) {
  return page.evaluate((s, n) => document.querySelector(s)?.getAttribute(n) ?? null, selector, name);
}

async function waitAttr(page, selector, name, want, timeout = 10_000) {
  return waitFor(`${page.__label}: ${selector}[${name}=${want}]`, async () => {
    const v = await attr(page, selector, name);
    return { ok: v === want, value: v };
  }, { timeout, interval: 100 });
}

async function visible(page, selector) {
  return page.evaluate((s) => {
    const el = document.querySelector(s);
    return !!el && !el.closest('.hidden') && el.getClientRects().length > 0;
  }, selector);
}

e2e('the host mutes, locks, unlocks and removes from its page; hands and reactions show; the next member inherits the controls', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('hosting');
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const cai = await ctx.joiner('chromium', server, room, 'cai');
  const [anaId, benId, caiId] = [await selfId(ana), await selfId(ben), await selfId(cai)];
  await waitTiles(ana, [benId, caiId], { timeout: 45_000 });
  await waitTiles(cai, [anaId, benId], { timeout: 45_000 });

  // The people panel: ana is host, with controls; ben sees none.
  await openPeople(ana);
  await waitAttr(ana, row(anaId), 'data-host', 'true');
  assert.ok(await visible(ana, '#lock-toggle'), 'the host has the lock switch');
  assert.ok(await visible(ana, `${row(benId)} .remove`), 'and a Remove per member');
  await openPeople(ben);
  await waitAttr(ben, row(anaId), 'data-host', 'true');
  assert.ok(!(await visible(ben, '#lock-toggle')), 'a member has no lock switch');
  assert.ok(!(await visible(ben, `${row(caiId)} .remove`)), 'nor Remove buttons');

  // Ask ben to mute: his microphone goes off; cai sees him muted.
  assert.equal(await attr(ben, '#mic-button', 'aria-pressed'), 'false');
  await ana.click(`${row(benId)} .ask-mute`);
  await waitAttr(ben, '#mic-button', 'aria-pressed', 'true');
  await waitAttr(cai, `.tile[data-peer-id="${benId}"] .mic-state`, 'data-on', 'false');

  // ben raises his hand (the h key); cai reacts: both show on the others.
  await ben.click('#chat-input').catch(() => {});
  await ben.click('#hand-button');
  await waitFor('ana: ben\'s hand on his tile', async () => ({
    ok: await visible(ana, `.tile[data-peer-id="${benId}"] .tile-hand`),
  }), { timeout: 10_000 });
  await waitAttr(ana, row(benId), 'data-hand', 'true');
  await cai.click('#react-button');
  await cai.click('#reaction-menu .react[data-emoji="👍"]');
  await waitFor('ana: cai\'s reaction over her tile', async () => {
    const r = await ana.evaluate((id) => document.querySelector(`.tile[data-peer-id="${id}"] .reaction`)?.textContent, caiId);
    return { ok: r === '👍', value: r };
  }, { timeout: 10_000, interval: 100 });
  await ben.keyboard.press('Escape');
  await ben.evaluate(() => document.activeElement?.blur());
  await ben.keyboard.press('h');
  await waitAttr(ben, '#hand-button', 'aria-pressed', 'false');
  await waitAttr(ana, row(benId), 'data-hand', 'false');

  // Lock: dan is refused with the message; unlocked, he gets in.
  await ana.click('#lock-toggle');
  const dan = await ctx.page(await ctx.chromium(), 'dan');
  await joinRoom(dan, server, room, 'dan', { waitJoined: false });
  await waitFor('dan: the locked screen', async () => {
    const s = await pageState(dan);
    return { ok: s.status?.kind === 'locked', value: s.status };
  }, { timeout: 20_000 });
  assert.match((await pageState(dan)).status.text, /locked by its host/);
  await ana.click('#lock-toggle');
  await waitFor('ben: told the room was unlocked', async () => {
    const n = await ben.evaluate(() => [...document.querySelectorAll('li.notice')].map((x) => x.textContent));
    return { ok: n.some((t) => /unlocked the room/.test(t)), value: n };
  }, { timeout: 10_000 });
  await dan.click('#retry-button');
  await waitJoinedState(dan, { timeout: 20_000 });
  const danId = await selfId(dan);

  // Remove cai: her page says why; the others' tiles of her go.
  await ana.click(`${row(caiId)} .remove`);
  await waitFor('cai: removed', async () => {
    const s = await pageState(cai);
    return { ok: s.status?.kind === 'kicked', value: s.status };
  }, { timeout: 10_000 });
  await waitTiles(ana, [benId, danId], { timeout: 15_000 });
  await waitTiles(ben, [anaId, danId], { timeout: 15_000 });
  const told = await ben.evaluate(() => [...document.querySelectorAll('li.notice')].map((x) => x.textContent));
  assert.ok(told.includes('The host removed cai from the call.'), `ben is told: ${JSON.stringify(told)}`);

  // The host leaves: ben, there longest, gets the controls.
  await ana.click('#leave-button');
  await waitFor('ben: host controls', async () => ({
    ok: await visible(ben, '#lock-toggle') && await visible(ben, `${row(danId)} .remove`),
  }), { timeout: 15_000 });
  await waitAttr(ben, row(benId), 'data-host', 'true');
}, { timeout: 240_000 });

// What a person meets around a call, each asserted as they would see it:
// - Leave releases the camera and microphone (every track the page got is
//   `ended`), the page says so and offers Rejoin, which joins in one click;
// - every refused join has a screen of its own with its way forward, and
//   the way forward works: password prompt → wrong → right → in the call;
//   a full room → Try again once there is space; an invalid room name →
//   back to the lobby; SFU on a server without it → join peer to peer;
// - the lobby offers only the modes /api/config lists, and its link keeps
//   the mode and is copied by one click;
// - an SFU room: relay chat reaches two ticks, peer-to-peer chat cannot be
//   picked, the comparison says why there is no peer-to-peer figure;
// - a long outage: the banner escalates, then offers to leave;
// - no console error or warning on a normal join, call and leave.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, joinRoom, waitJoinedState, waitFor, pageState, fillInput, roomUrl, waitTiles,
  waitTileCount, sendChat, waitMessage, waitMediaFlowing,
} from './harness.mjs';

/** Before the page's scripts: keep every stream getUserMedia hands out. */
async function recordStreams(page) {
  await page.evaluateOnNewDocument(() => {
    const streams = [];
    Object.defineProperty(window, '__e2eStreams', { value: streams });
    const md = navigator.mediaDevices;
    if (!md) return;
    const orig = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => { const s = await orig(c); streams.push(s); return s; };
  });
}

/** Every track the page was given: `live` or `ended`. */
const trackStates = (page) => page.evaluate(() =>
  window.__e2eStreams.flatMap((s) => s.getTracks().map((t) => `${t.kind}:${t.readyState}`)));

async function waitAllEnded(page) {
  return waitFor(`${page.__label}: every camera/microphone track ended`, async () => {
    const states = await trackStates(page);
    return { ok: states.length > 0 && states.every((s) => s.endsWith(':ended')), value: states };
  }, { timeout: 10_000, explain: () => pageState(page) });
}

async function waitScreen(page, selector, kind) {
  return waitFor(`${page.__label}: ${selector}${kind ? `[data-kind=${kind}]` : ''}`, () => page.evaluate((s, k) => {
    const el = document.querySelector(s);
    if (!el || el.offsetParent === null) return { ok: false, value: null };
    return { ok: !k || el.getAttribute('data-kind') === k, value: { kind: el.getAttribute('data-kind'), text: el.innerText.slice(0, 300) } };
  }, selector, kind), { timeout: 30_000, explain: () => pageState(page) });
}

const visible = (page, selector) => page.evaluate((s) => {
  const el = document.querySelector(s);
  return !!el && el.offsetParent !== null;
}, selector);

/** Console errors and warnings, minus what the browser says of itself. */
const consoleProblems = (page) => (page.__log ?? []).filter((l) =>
  /pageerror|console\.(error|warn)/.test(l) && !/favicon/.test(l));

e2e('Leave releases camera and microphone, shows its own screen, and Rejoin joins in one click', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('leave2');
  const bob = await ctx.joiner('chromium', server, room, 'bob');
  const browser = await ctx.chromium();
  const ana = await ctx.page(browser, 'ana');
  await recordStreams(ana);
  await joinRoom(ana, server, room, 'ana');
  const anaId = await selfId(ana);
  const [bobId] = await waitTileCount(ana, 1);
  await waitMediaFlowing(bob, anaId);
  assert.ok((await trackStates(ana)).some((s) => s.endsWith(':live')), 'ana has live tracks in the call');

  await ana.click('#leave-button');
  const left = await waitScreen(ana, '#left-screen');
  ctx.note(`left screen: ${JSON.stringify(left)}`);
  const ended = await waitAllEnded(ana);
  ctx.note(`ana's tracks after Leave: ${JSON.stringify(ended)}`);
  for (const gone of ['#chat-input', '#mic-button', '#leave-button', 'video#local-video']) {
    assert.equal(await visible(ana, gone), false, `${gone} is gone after Leave`);
  }
  await waitTiles(bob, []);

  // One click: back in the room, with a new peer id, seen by bob.
  await ana.click('#rejoin-button');
  await waitJoinedState(ana);
  const again = await selfId(ana);
  await waitTiles(ana, [bobId]);
  await waitTiles(bob, [again]);
  await waitMediaFlowing(bob, again);
  ctx.note(`rejoined as ${again} (was ${anaId})`);
  for (const p of [ana, bob]) {
    const bad = consoleProblems(p);
    assert.deepEqual(bad, [], `${p.__label}: no console errors or warnings in a join, call, leave and rejoin`);
  }
});

e2e('a password room: the guest gets a password prompt; a wrong password says so; the right one joins', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('pw');
  const owner = await ctx.page(await ctx.chromium(), 'owner');
  await owner.goto(`${server.url}/r/${room}`, { waitUntil: 'domcontentloaded' });
  await fillInput(owner, '#name-input', 'owner');
  await fillInput(owner, '#password-input', 'open sesame');
  await owner.click('#join-button');
  await waitJoinedState(owner);

  const guest = await ctx.page(await ctx.chromium(), 'guest');
  await recordStreams(guest);
  await guest.goto(roomUrl(server, room, 'guest'), { waitUntil: 'domcontentloaded' });
  const prompt = await waitScreen(guest, '#error-screen', 'unauthorized');
  ctx.note(`prompt: ${JSON.stringify(prompt)}`);
  assert.equal((await pageState(guest)).status?.kind, 'unauthorized');
  assert.ok(await visible(guest, '#retry-password'), 'a password field');
  assert.ok(await visible(guest, '#lobby-button'), 'a way back to the lobby');
  await waitAllEnded(guest);

  await fillInput(guest, '#retry-password', 'open says me');
  await guest.click('#retry-button');
  const wrong = await waitFor('guest: "not right" after a wrong password', async () => {
    const t = await guest.evaluate(() => document.querySelector('#error-screen #status')?.textContent ?? '');
    return { ok: /not right/i.test(t), value: t };
  }, { timeout: 20_000, explain: () => pageState(guest) });
  ctx.note(`wrong password: ${wrong}`);
  await fillInput(guest, '#retry-password', 'open sesame');
  await guest.click('#retry-button');
  await waitJoinedState(guest);
  const guestId = await selfId(guest);
  await waitTiles(owner, [guestId]);
  await waitMediaFlowing(owner, guestId);
});

e2e('a full room: its own screen; Back to the lobby keeps the room; Try again gets in once there is space', async (ctx) => {
  const server = await ctx.server(['--max-peers-per-room', '1']);
  const room = uniqueRoom('full2');
  const first = await ctx.joiner('chromium', server, room, 'first');
  const second = await ctx.page(await ctx.chromium(), 'second');
  await joinRoom(second, server, room, 'second', { waitJoined: false });
  await waitScreen(second, '#error-screen', 'room_full');
  assert.ok(await visible(second, '#retry-button'));

  await second.click('#lobby-button');
  await second.waitForSelector('#lobby', { visible: true });
  assert.equal(await second.$eval('#room-input', (e) => e.value), room, 'the lobby keeps the room');
  await second.click('#join-button');
  await waitScreen(second, '#error-screen', 'room_full');

  await first.click('#leave-button');
  await waitScreen(first, '#left-screen');
  await second.click('#retry-button');
  await waitJoinedState(second);
});

e2e('an invalid room name in the link, and SFU asked of a server without it: each screen leads on', async (ctx) => {
  const server = await ctx.server();
  const page = await ctx.page(await ctx.chromium(), 'visitor');
  await page.goto(`${server.url}/r/${encodeURIComponent('no spaces!')}?name=vi`, { waitUntil: 'domcontentloaded' });
  const invalid = await waitScreen(page, '#error-screen', 'invalid_room');
  ctx.note(`invalid: ${JSON.stringify(invalid)}`);
  await page.click('#lobby-button');
  await page.waitForSelector('#lobby', { visible: true });
  const fresh = await page.$eval('#room-input', (e) => e.value);
  assert.match(fresh, /^[A-Za-z0-9_-]{1,64}$/, 'the lobby offers a valid room');
  assert.equal(await visible(page, '#mode-select'), false, 'no mode choice on a server with one mode');

  const room = uniqueRoom('nosfu');
  await page.goto(roomUrl(server, room, 'vi', { mode: 'sfu' }), { waitUntil: 'domcontentloaded' });
  const refused = await waitScreen(page, '#error-screen', 'mode_unavailable');
  ctx.note(`sfu refused: ${JSON.stringify(refused)}`);
  assert.doesNotMatch(refused.text, /join with mode/i, 'no developer wording');
  await page.click('#mesh-button');
  await waitJoinedState(page);
});

e2e('the lobby offers SFU only when /api/config lists it; the link keeps the mode and copies in one click', async (ctx) => {
  const server = await ctx.server(['--sfu']);
  const browser = await ctx.chromium();
  const ctxt = browser.defaultBrowserContext();
  await ctxt.overridePermissions(server.url, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
  const page = await ctx.page(browser, 'host');
  await page.goto(`${server.url}/`, { waitUntil: 'domcontentloaded' });
  await page.waitForSelector('#mode-select', { visible: true, timeout: 20_000 });
  const options = await page.$$eval('#mode-select option', (os) => os.map((o) => o.value));
  assert.deepEqual(options.sort(), ['mesh', 'sfu']);
  await page.select('#mode-select', 'sfu');
  const link = await waitFor('host: #share-link with ?mode=sfu', async () => {
    const v = await page.$eval('#share-link', (e) => e.value);
    return { ok: v.endsWith('?mode=sfu'), value: v };
  }, { timeout: 5_000 });
  await page.click('#copy-link');
  await waitFor('host: #copy-link[data-copied=true]', () => page.$eval('#copy-link', (e) => e.getAttribute('data-copied') === 'true'), { timeout: 5_000 });
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(copied, link, 'the clipboard holds the link');

  // The copied link opens the SFU room; in it, relay chat reaches two ticks,
  // peer-to-peer chat cannot be picked, and the comparison says why.
  const room = new URL(link).pathname.split('/').pop();
  await fillInput(page, '#name-input', 'host');
  await page.click('#join-button');
  await waitJoinedState(page);
  const guest = await ctx.page(await ctx.chromium(), 'guest');
  await guest.goto(`${link}&name=guest`, { waitUntil: 'domcontentloaded' });
  await waitJoinedState(guest);
  const guestId = await selfId(guest);
  await waitTiles(page, [guestId]);
  assert.equal(await page.$eval('#chat-transport option[value=p2p]', (o) => o.disabled), true, 'p2p chat cannot be picked in an SFU room');
  const text = `through the SFU room ${Date.now()}`;
  await sendChat(page, text);
  await waitMessage(page, text, (m) => m.ticks === '2', { desc: 'two ticks in an SFU room' });
  await waitMessage(guest, text);
  await page.click('#compare-toggle');
  await page.waitForSelector('#rtt-sfu-note', { visible: true });
  const row = await waitFor('host: relay round trip to the guest, p2p n/a', () => page.evaluate((id) => {
    const r = document.querySelector(`#rtt-panel tr[data-peer-id="${id}"]`);
    const relay = r?.querySelector('.rtt-relay')?.getAttribute('data-ms');
    return { ok: !!relay && r.querySelector('.rtt-p2p').textContent === 'n/a', value: { relay, p2p: r?.querySelector('.rtt-p2p')?.textContent } };
  }, guestId), { timeout: 20_000 });
  ctx.note(`room ${room}: ${JSON.stringify(row)}`);
});

e2e('a long outage: the banner escalates, then offers to leave the call', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('outage');
  const page = await ctx.joiner('chromium', server, room, 'ana');
  await ctx.crashServer(server);
  const first = await waitFor('ana: reconnecting banner', async () => {
    const s = (await pageState(page)).status;
    return { ok: s?.kind === 'reconnecting', value: s };
  }, { timeout: 15_000 });
  assert.doesNotMatch(first.text, /transport close|websocket error/i, 'no raw transport words');
  const later = await waitFor('ana: "check your internet connection" after 10 s', async () => {
    const s = (await pageState(page)).status;
    return { ok: /check your internet connection/i.test(s?.text ?? ''), value: s };
  }, { timeout: 20_000 });
  ctx.note(`after 10 s: ${later.text}`);
  await page.waitForSelector('#give-up', { visible: true, timeout: 30_000 });
  await page.click('#give-up');
  await waitScreen(page, '#left-screen');
});

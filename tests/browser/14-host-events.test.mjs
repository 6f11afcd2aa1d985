// Host controls as the web client receives them (issue 17, in part: the
// host here is a socket.io-client in the test, since the client has no
// host controls of its own yet):
// - a mute request turns the browser's microphone off, says who asked, and
//   the other page sees it muted; the user can turn it back on;
// - a kicked browser shows its own screen (#error-screen[data-kind=kicked])
//   and does not rejoin; the other page's tile of it goes;
// - a locked room refuses a browser with a clear message; unlocked, it gets in;
// - lock, host changes, raised hands and reactions are told in the chat log.

import assert from 'node:assert/strict';
import { io } from '../js/node_modules/socket.io-client/build/esm/index.js';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitFor, pageState, joinRoom, waitJoinedState,
} from './harness.mjs';

/** The test's own member of the room, the host (it joins first). */
async function hostOf(server, room) {
  const s = io(server.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('connect_error', reject); });
  const ack = await s.timeout(5000).emitWithAck('join', { room, name: 'Host' });
  assert.equal(ack.self.host, true);
  return { s, id: ack.self.id, ack: (event, payload) => s.timeout(5000).emitWithAck(event, payload) };
}

async function notices(page) {
  return page.evaluate(() => [...document.querySelectorAll('li.notice')].map((n) => n.textContent));
}

async function waitNotice(page, re, timeout = 10_000) {
  return waitFor(`${page.__label}: a notice matching ${re}`, async () => {
    const all = await notices(page);
    return { ok: all.some((n) => re.test(n)), value: all };
  }, { timeout, interval: 100 });
}

async function micButton(page) {
  return page.evaluate(() => document.querySelector('#mic-button')?.getAttribute('aria-pressed'));
}

e2e('host events: mute request, kick, lock and unlock, host change, hand and reaction, as the browsers show them', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('host');
  const host = await hostOf(server, room);
  ctx.onClose(() => host.s.disconnect());
  const ana = await ctx.joiner('chromium', server, room, 'ana');
  const ben = await ctx.joiner('chromium', server, room, 'ben');
  const [anaId, benId] = [await selfId(ana), await selfId(ben)];
  await waitTiles(ana, [host.id, benId], { timeout: 45_000 });

  // Mute request: ana's microphone goes off, she is told who asked, ben sees it.
  assert.equal(await micButton(ana), 'false');
  assert.equal((await host.ack('mute-request', { room, peer: anaId, kind: 'audio' })).ok, true);
  await waitFor('ana: microphone off', async () => ({ ok: (await micButton(ana)) === 'true' }), { timeout: 10_000 });
  await waitNotice(ana, /Host, the host, asked you to turn your microphone off/);
  await waitFor('ben: ana shown muted', async () => {
    const on = await ben.evaluate((id) => document.querySelector(`.tile[data-peer-id="${id}"] .mic-state`)?.getAttribute('data-on'), anaId);
    return { ok: on === 'false', value: on };
  }, { timeout: 10_000 });
  await ana.click('#mic-button');
  await waitFor('ana: microphone back on, by her own choice', async () => ({ ok: (await micButton(ana)) === 'false' }), { timeout: 10_000 });

  // A hand and a reaction are told to the others.
  host.s.emit('hand', { room, raised: true });
  host.s.emit('reaction', { room, emoji: '👏' });
  await waitNotice(ben, /Host raised a hand/);
  await waitNotice(ben, /Host reacted 👏/);

  // Lock: a newcomer is refused with a clear message; unlocked, it gets in.
  assert.equal((await host.ack('lock', { room, locked: true })).ok, true);
  await waitNotice(ana, /Host locked the room/);
  const cai = await ctx.page(await ctx.chromium(), 'cai');
  await joinRoom(cai, server, room, 'cai', { waitJoined: false });
  await waitFor('cai: locked screen', async () => {
    const s = await pageState(cai);
    return { ok: s.status?.kind === 'locked', value: s.status };
  }, { timeout: 20_000 });
  assert.match((await pageState(cai)).status.text, /locked by its host/);
  assert.equal((await host.ack('lock', { room, locked: false })).ok, true);
  await waitNotice(ana, /Host unlocked the room/);
  await cai.click('#retry-button');
  await waitJoinedState(cai, { timeout: 20_000 });
  const caiId = await selfId(cai);

  // Kick: ben's page shows why, and does not come back; the others' tiles of him go.
  assert.equal((await host.ack('kick', { room, peer: benId })).ok, true);
  await waitFor('ben: kicked screen', async () => {
    const s = await pageState(ben);
    return { ok: s.status?.kind === 'kicked', value: s.status };
  }, { timeout: 10_000 });
  assert.match((await pageState(ben)).status.text, /Host, the host, removed you/);
  assert.equal(await ben.$('#retry-button'), null, 'no "Try again" straight back in');
  assert.ok(await ben.$('#lobby-button'), 'the way out: back to the lobby');
  await waitTiles(ana, [host.id, caiId], { timeout: 10_000 });
  // ben's page closed its connection (no reconnect logic left to rejoin):
  // the server counts the host, ana and cai only.
  await waitFor('server: 3 connections', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const n = Number(/^signal_connections (\d+)$/m.exec(text)?.[1]);
    return { ok: n === 3, value: n };
  }, { timeout: 10_000, interval: 100 });
  assert.equal((await pageState(ben)).status?.kind, 'kicked', 'ben stays out');
  assert.deepEqual((await pageState(ana)).tiles.map((t) => t.id).sort(), [host.id, caiId].sort());

  // The host leaves: the member there longest (ana) is host, and told so.
  host.s.emit('leave', { room });
  await waitNotice(ana, /You are now the host/);
  await waitNotice(cai, /ana is now the host/);
}, { timeout: 240_000 });

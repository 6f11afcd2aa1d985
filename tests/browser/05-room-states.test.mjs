// Refused joins are shown: a full room (room_full) and a password-protected
// room joined without its password (unauthorized). The password room is
// created through the lobby form.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, joinRoom, waitJoinedState, waitFor, pageState, fillInput, roomUrl, waitTiles,
} from './harness.mjs';

async function waitStatusKind(page, kind, timeout = 30_000) {
  return waitFor(`${page.__label}: #status[data-kind=${kind}]`, async () => {
    const s = await pageState(page);
    return { ok: s.status?.kind === kind, value: { status: s.status, room: s.room } };
  }, { timeout, explain: () => pageState(page) });
}

e2e('a join beyond --max-peers-per-room shows #status[data-kind=room_full]', async (ctx) => {
  const server = await ctx.server(['--max-peers-per-room', '1']);
  const room = uniqueRoom('full');
  const first = await ctx.joiner('chromium', server, room, 'first');
  await selfId(first);
  const browser = await ctx.chromium();
  const second = await ctx.page(browser, 'second');
  await joinRoom(second, server, room, 'second', { waitJoined: false });
  const seen = await waitStatusKind(second, 'room_full');
  ctx.note(`second page: ${JSON.stringify(seen)}`);
  assert.notEqual(seen.room?.state, 'joined', 'a refused page is not "joined"');
  // The first peer is undisturbed and sees nobody.
  await waitTiles(first, [], { timeout: 5_000 });
  assert.equal((await pageState(first)).room?.state, 'joined');
});

e2e('a password room created from the lobby form refuses a join without the password (unauthorized)', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('secret');
  const password = 'open sesame';

  // Owner: the join screen /r/<room> (room prefilled), name + password typed in, Join clicked.
  const browser = await ctx.chromium();
  const owner = await ctx.page(browser, 'owner');
  await owner.goto(`${server.url}/r/${room}`, { waitUntil: 'domcontentloaded' });
  await owner.waitForSelector('#lobby', { timeout: 30_000 });
  const prefilled = await owner.$eval('#room-input', (e) => e.value);
  assert.equal(prefilled, room, '#room-input is prefilled from /r/<room>');
  await fillInput(owner, '#name-input', 'owner');
  await fillInput(owner, '#password-input', password);
  await owner.click('#join-button');
  await waitJoinedState(owner);
  const ownerId = await selfId(owner);

  // Guest: the one-click link, no password.
  const guestBrowser = await ctx.chromium();
  const guest = await ctx.page(guestBrowser, 'guest');
  await guest.goto(roomUrl(server, room, 'guest'), { waitUntil: 'domcontentloaded' });
  const seen = await waitStatusKind(guest, 'unauthorized');
  ctx.note(`guest page: ${JSON.stringify(seen)}`);
  assert.notEqual(seen.room?.state, 'joined');
  await waitTiles(owner, [], { timeout: 5_000 });
  assert.ok(ownerId);
});

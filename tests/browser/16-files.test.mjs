// Files, peer to peer (issue 18): a file picked in the chat goes to every
// peer (or the one chosen) on an RTCDataChannel of its own, never through
// the server, and arrives with the sender's SHA-256.
//
// - a 3 MB file to two peers of a mesh room: both get it whole (the SHA-256
//   of what they can save equals the file's), and the server relayed none
//   of its bytes;
// - the same between two browsers of an SFU room (a data-only connection
//   made on demand through the `signal` relay);
// - to one chosen peer only;
// - cancelled mid-way, by the receiver and by the sender: both sides say
//   so, nothing is left to save, and the next file goes through;
// - the sender leaves mid-transfer: the receiver is told;
// - a file over the server's limit is refused before anything is sent;
// - five files at once from one peer: four come, the fifth is refused
//   (a peer cannot make another browser hold unbounded bytes);
// - 50 MB measured: the rate is noted (docs/benchmarks.md, "Files").
// Screenshots of the rows, desktop and phone, in artifacts/screens/.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, writeFile, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ARTIFACTS, e2e, uniqueRoom, selfId, waitTiles, waitFor, saveDownload } from './harness.mjs';

const SCREENS = path.join(ARTIFACTS, 'screens');

/** A file of `bytes` random bytes named `name` in a fresh directory; its SHA-256. */
async function makeFile(ctx, name, bytes) {
  const dir = await mkdtemp(path.join(tmpdir(), 'e2e-files-'));
  ctx.onClose(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, name);
  const data = randomBytes(bytes);
  await writeFile(file, data);
  return { file, sha256: createHash('sha256').update(data).digest('hex'), bytes };
}

/** Picks `file` in `page`'s chat, for `to` (a peer id) or everyone. */
async function sendFile(page, file, to = '') {
  await page.select('#file-to', to);
  const input = await page.$('#file-input');
  await input.uploadFile(file);
}

/** The file entries of `page`'s chat log. */
async function fileRows(page) {
  return page.evaluate(() => [...document.querySelectorAll('#chat-log li.file')].map((li) => ({
    id: li.dataset.transferId,
    peer: li.dataset.peerId,
    direction: li.dataset.direction,
    state: li.dataset.state,
    name: li.querySelector('.file-name')?.textContent,
    bytes: Number(li.querySelector('.file-progress')?.value ?? 0),
    note: li.querySelector('.file-note')?.textContent ?? '',
    cancel: !!li.querySelector('.file-cancel'),
    href: li.querySelector('a.file-download')?.href ?? null,
    download: li.querySelector('a.file-download')?.getAttribute('download') ?? null,
  })));
}

/** Waits until `page` has an entry matching `pred`; returns it. */
async function waitRow(page, desc, pred, { timeout = 60_000 } = {}) {
  return waitFor(`${page.__label}: ${desc}`, async () => {
    const rows = await fileRows(page);
    const row = rows.find(pred);
    return { ok: !!row, value: row ?? rows };
  }, { timeout, interval: 100 });
}

/** Saves the entry's file through its Save link, as a person would: its SHA-256 (hex). */
async function savedSha256(ctx, page, row) {
  const saved = await saveDownload(ctx, page, `li.file[data-transfer-id="${row.id}"] a.file-download`, row.download, row.bytes);
  return createHash('sha256').update(await readFile(saved)).digest('hex');
}

/** Chat and signal events the server has received, from /metrics. */
async function relayedEvents(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return text.split('\n').filter((l) => /^signal_events_total\{event="(chat|signal)"\}/.test(l))
    .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
}

async function room(ctx, n, { sfu = false, flags = [] } = {}) {
  const server = await ctx.server(sfu ? ['--sfu', '--sfu-ports', '42600-42700', ...flags] : flags);
  const name = uniqueRoom(sfu ? 'files-sfu' : 'files');
  const opts = sfu ? { extra: { mode: 'sfu' } } : {};
  const pages = [];
  for (const who of ['ana', 'ben', 'cai'].slice(0, n)) pages.push(await ctx.joiner('chromium', server, name, who, opts));
  const ids = [];
  for (const p of pages) ids.push(await selfId(p));
  for (const [i, p] of pages.entries()) await waitTiles(p, ids.filter((_, j) => j !== i), { timeout: 45_000 });
  return { server, pages, ids };
}

/** `page` got `f` from `fromId` whole: its state, name and SHA-256. */
async function receivedWhole(ctx, page, f, fromId) {
  const name = path.basename(f.file);
  const row = await waitRow(page, `${name} received`, (r) => r.direction === 'in' && r.peer === fromId && r.name === name && r.state !== 'moving' && r.state !== 'starting');
  assert.equal(row.state, 'done', `${page.__label}: ${row.note}`);
  assert.equal(row.name, path.basename(f.file));
  assert.equal(row.download, path.basename(f.file), 'saved under its own name');
  assert.equal(row.bytes, f.bytes);
  assert.match(row.note, /SHA-256 checked/);
  assert.match(row.href, /^blob:/);
  assert.equal(await savedSha256(ctx, page, row), f.sha256, `${page.__label}: the same SHA-256 as the file sent`);
  return row;
}

e2e('a 3 MB file to two peers of a mesh room arrives whole at both (same SHA-256), peer to peer', async (ctx) => {
  const { server, pages: [ana, ben, cai], ids: [anaId, benId, caiId] } = await room(ctx, 3);
  const f = await makeFile(ctx, 'notes 3MB.bin', 3 * 1024 * 1024);
  const before = await relayedEvents(server);
  // cai's chat is closed: a file coming counts as unread, like a message.
  await cai.click('#chat-toggle');
  await waitFor('cai: chat panel closed', () => cai.evaluate(() => document.querySelector('#room').getAttribute('data-panel') === 'closed'), { timeout: 5_000 });
  await sendFile(ana, f.file);
  await waitFor('cai: #chat-unread shows the incoming file', () => cai.evaluate(() => {
    const b = document.querySelector('#chat-unread');
    return { ok: !!b && !b.classList.contains('hidden') && b.textContent.trim() === '1', value: b?.textContent };
  }), { timeout: 15_000 });
  await cai.click('#chat-toggle');
  await receivedWhole(ctx, ben, f, anaId);
  await receivedWhole(ctx, cai, f, anaId);
  for (const to of [benId, caiId]) {
    const row = await waitRow(ana, `delivered to ${to}`, (r) => r.direction === 'out' && r.peer === to && r.state === 'done');
    assert.match(row.note, /Delivered to .*SHA-256 checked/);
    assert.equal(row.cancel, false, 'no Cancel once done');
  }
  // 2 × 3 MB through the relay would take over 3000 chat or signal events
  // of at most 2000 characters; peer to peer it takes none.
  // As a person sees it, sender and receiver, desktop and phone.
  await mkdir(SCREENS, { recursive: true });
  await ana.screenshot({ path: path.join(SCREENS, 'files-sent-desktop.png') });
  await ben.screenshot({ path: path.join(SCREENS, 'files-received-desktop.png') });
  await ben.setViewport({ width: 390, height: 844 });
  await ben.click('#chat-toggle');
  await ben.waitForSelector('.side:not(.hidden) li.file', { visible: true, timeout: 5_000 });
  await ben.screenshot({ path: path.join(SCREENS, 'files-received-phone.png') });
  assert.equal(await ben.evaluate(() => document.documentElement.scrollWidth <= innerWidth), true, 'nothing wider than the phone');
  const relayed = await relayedEvents(server) - before;
  ctx.note(`chat and signal events through the server while 2 × 3 MB went peer to peer: ${relayed}`);
  assert.ok(relayed < 50, `the file did not go through the server (${relayed} chat/signal events)`);
});

e2e('the same between two browsers of an SFU room: a data-only connection on demand, and a file to one chosen peer only', async (ctx) => {
  const { pages: [ana, ben, cai], ids: [anaId, benId] } = await room(ctx, 3, { sfu: true });
  const f = await makeFile(ctx, 'slides.pdf', 3 * 1024 * 1024);
  await sendFile(ana, f.file, benId);
  await receivedWhole(ctx, ben, f, anaId);
  await waitRow(ana, 'delivered to ben', (r) => r.peer === benId && r.state === 'done');
  assert.deepEqual(await fileRows(cai), [], 'cai was not sent it');
  assert.equal((await fileRows(ana)).length, 1, 'one entry: to ben only');
  // And back the other way, on the same connection.
  const g = await makeFile(ctx, 'reply.txt', 200_000);
  await sendFile(ben, g.file, anaId);
  await receivedWhole(ctx, ana, g, benId);
});

e2e('cancel mid-way, by the receiver and by the sender: both sides say so, nothing is left, the next file goes through', async (ctx) => {
  const { pages: [ana, ben], ids: [anaId, benId] } = await room(ctx, 2);
  const big = await makeFile(ctx, 'big.bin', 400 * 1024 * 1024);

  // The receiver cancels.
  await sendFile(ana, big.file);
  let row = await waitRow(ben, 'receiving', (r) => r.direction === 'in' && r.state === 'moving' && r.bytes > 1_000_000);
  await ben.click(`li.file[data-transfer-id="${row.id}"] .file-cancel`);
  row = await waitRow(ben, 'cancelled', (r) => r.id === row.id && r.state === 'cancelled');
  assert.equal(row.href, null, 'nothing to save');
  assert.equal(row.cancel, false);
  assert.match(row.note, /You cancelled it/);
  const out = await waitRow(ana, 'told', (r) => r.direction === 'out' && r.state !== 'moving' && r.state !== 'starting');
  assert.equal(out.state, 'cancelled');
  assert.match(out.note, /ben cancelled it/);
  assert.ok(out.bytes < big.bytes, 'it stopped before the end');

  // The sender cancels.
  await sendFile(ana, big.file);
  const sending = await waitRow(ana, 'sending', (r) => r.direction === 'out' && r.state === 'moving' && r.bytes > 1_000_000);
  await ana.click(`li.file[data-transfer-id="${sending.id}"] .file-cancel`);
  await waitRow(ana, 'cancelled', (r) => r.id === sending.id && r.state === 'cancelled');
  const inRow = await waitRow(ben, 'told', (r) => r.direction === 'in' && r.id !== row.id && r.state !== 'moving' && r.state !== 'starting');
  assert.equal(inRow.state, 'cancelled');
  assert.match(inRow.note, /ana cancelled it/);
  assert.equal(inRow.href, null);

  // Clean: the next file goes through both ways.
  const small = await makeFile(ctx, 'after.txt', 100_000);
  await sendFile(ana, small.file);
  await receivedWhole(ctx, ben, small, anaId);
  await sendFile(ben, small.file);
  await receivedWhole(ctx, ana, small, benId);
}, { timeout: 240_000 });

e2e('the sender leaves mid-transfer: the receiver is told, nothing is left to save', async (ctx) => {
  const { pages: [ana, ben] } = await room(ctx, 2);
  const big = await makeFile(ctx, 'big.bin', 400 * 1024 * 1024);
  await sendFile(ana, big.file);
  await waitRow(ben, 'receiving', (r) => r.direction === 'in' && r.state === 'moving' && r.bytes > 1_000_000);
  await ana.click('#leave-button');
  const row = await waitRow(ben, 'ended', (r) => r.direction === 'in' && r.state !== 'moving' && r.state !== 'starting', { timeout: 30_000 });
  assert.notEqual(row.state, 'done');
  assert.match(row.note, /ana left the call|closed before the end|ana cancelled it/);
  assert.equal(row.href, null);
}, { timeout: 240_000 });

e2e('a file over the server\'s limit is refused before anything is sent, with the limit in words', async (ctx) => {
  const { pages: [ana, ben] } = await room(ctx, 2, { flags: ['--file-max-bytes', '1000000'] });
  const f = await makeFile(ctx, 'too-big.bin', 2_000_000);
  await sendFile(ana, f.file);
  const err = await waitFor('ana: the error', async () => {
    const t = await ana.evaluate(() => document.querySelector('.chat .form-error:not(.hidden)')?.textContent ?? '');
    return { ok: t.length > 0, value: t };
  }, { timeout: 10_000 });
  assert.match(err, /too-big\.bin is 2\.0 MB: files up to 1\.0 MB can be sent here/);
  assert.deepEqual(await fileRows(ana), []);
  assert.deepEqual(await fileRows(ben), []);
});

e2e('50 MB between two browsers: the rate, measured', async (ctx) => {
  const { pages: [ana, ben], ids: [anaId] } = await room(ctx, 2);
  const f = await makeFile(ctx, 'fifty.bin', 50 * 1024 * 1024);
  const t0 = Date.now();
  await sendFile(ana, f.file);
  await receivedWhole(ctx, ben, f, anaId);
  const secs = (Date.now() - t0) / 1000;
  const shown = await ben.evaluate(() => document.querySelector('li.file .file-rate')?.textContent);
  ctx.note(`50 MiB peer to peer (mesh, Chromium to Chromium, loopback): ${secs.toFixed(1)} s from the pick to checked, ${(f.bytes / 1e6 / secs).toFixed(1)} MB/s; the receiver shows ${shown}`);
}, { timeout: 240_000 });

e2e('five files at once from one peer: four come, the fifth is refused with the reason on both sides', async (ctx) => {
  const { pages: [ana, ben] } = await room(ctx, 2);
  const files = [];
  for (let i = 1; i <= 5; i += 1) files.push(await makeFile(ctx, `part-${i}.bin`, 30 * 1024 * 1024));
  await ana.select('#file-to', '');
  const input = await ana.$('#file-input');
  await input.uploadFile(...files.map((f) => f.file));
  const refused = await waitRow(ben, 'one refused', (r) => r.direction === 'in' && r.state === 'failed');
  assert.match(refused.note, /Refused: at most 4 files at once/);
  const told = await waitRow(ana, 'told', (r) => r.direction === 'out' && r.state === 'failed');
  assert.match(told.note, /ben refused it: at most 4 files at once/);
  await waitFor('ben: the four others arrive whole', async () => {
    const done = (await fileRows(ben)).filter((r) => r.direction === 'in' && r.state === 'done');
    return { ok: done.length === 4, value: done.length };
  }, { timeout: 120_000, interval: 250 });
}, { timeout: 240_000 });

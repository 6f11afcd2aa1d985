// Cross-browser: Chromium and Firefox (VP8 + Opus) see each other's video and
// exchange chat both ways, over the relay and over the data channel.
// Firefox's getVideoPlaybackQuality stays 0 for remote streams when
// headless, so frames are judged by data-frames-decoded and currentTime.

import assert from 'node:assert/strict';
import {
  e2e, uniqueRoom, selfId, waitTiles, waitMediaFlowing, setTransport, sendChat, waitMessage,
} from './harness.mjs';

e2e('Chromium and Firefox call each other: video plays both ways and chat arrives both ways', async (ctx) => {
  const server = await ctx.server();
  const room = uniqueRoom('xbrowser');
  const chrome = await ctx.joiner('chromium', server, room, 'chromie', { label: 'chromium' });
  const fox = await ctx.joiner('firefox', server, room, 'foxy', { label: 'firefox' });
  const chromeId = await selfId(chrome);
  const foxId = await selfId(fox);

  await waitTiles(chrome, [foxId]);
  await waitTiles(fox, [chromeId]);

  await waitMediaFlowing(chrome, foxId, { timeout: 60_000 });
  await waitMediaFlowing(fox, chromeId, { timeout: 60_000 });

  for (const via of ['relay', 'p2p']) {
    await setTransport(chrome, via);
    await setTransport(fox, via);
    const c2f = `chromium to firefox via ${via} ${Date.now()}`;
    await sendChat(chrome, c2f);
    const a = await waitMessage(fox, c2f, (m) => m.via === via, { desc: `with data-via=${via}` });
    assert.equal(a.from, chromeId);
    const f2c = `firefox to chromium via ${via} ${Date.now()}`;
    await sendChat(fox, f2c);
    const b = await waitMessage(chrome, f2c, (m) => m.via === via, { desc: `with data-via=${via}` });
    assert.equal(b.from, foxId);
  }
}, { timeout: 240_000 });

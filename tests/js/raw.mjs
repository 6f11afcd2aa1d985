// A raw Engine.IO v4 / Socket.IO v5 WebSocket client (the `ws` package), for
// sending frames the official client never would.

import WebSocket from 'ws';

export class RawClient {
  /** @param {string} httpUrl e.g. http://127.0.0.1:1234 */
  constructor(httpUrl, query = 'EIO=4&transport=websocket') {
    this.url = httpUrl.replace(/^http/, 'ws') + '/socket.io/?' + query;
    this.frames = []; // text frames received, as strings
    this.waiters = new Set();
    this.closed = false;
    this.closeInfo = null;
  }

  /** Open the WebSocket (resolves on the Engine.IO open packet). */
  async open(timeoutMs = 5000) {
    this.ws = new WebSocket(this.url, { maxPayload: 16 * 1024 * 1024 });
    this.ws.on('message', (data, isBinary) => {
      const s = isBinary ? data : data.toString('utf8');
      if (s === '2') { this.trySend('3'); } // answer Engine.IO pings
      this.frames.push(s);
      for (const w of [...this.waiters]) w(s);
    });
    this.whenClosed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closed = true;
        this.closeInfo = { code, reason: reason.toString() };
        for (const w of [...this.waiters]) w(null);
        resolve(this.closeInfo);
      });
    });
    this.ws.on('error', () => { /* surfaced as close */ });
    const openPacket = await this.waitFor((f) => typeof f === 'string' && f.startsWith('0'), timeoutMs);
    this.handshake = JSON.parse(openPacket.slice(1));
    return this;
  }

  /** Open and connect to the default namespace (resolves on `40{...}`). */
  async connect(timeoutMs = 5000) {
    await this.open(timeoutMs);
    this.send('40');
    const pkt = await this.waitFor((f) => typeof f === 'string' && f.startsWith('40'), timeoutMs);
    this.sid = JSON.parse(pkt.slice(2)).sid;
    return this;
  }

  send(data, opts) { this.ws.send(data, opts); }

  trySend(data, opts) {
    if (!this.closed && this.ws.readyState === WebSocket.OPEN) {
      try { this.ws.send(data, opts); return true; } catch { return false; }
    }
    return false;
  }

  /** Resolve the first frame (already received or future) matching pred. */
  waitFor(pred, timeoutMs = 5000) {
    const found = this.frames.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.waiters.delete(w); reject(new Error(`raw client: no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5)).slice(0, 300)}`)); }, timeoutMs);
      const w = (f) => {
        if (f === null) {
          clearTimeout(timer); this.waiters.delete(w);
          reject(new Error(`raw client: connection closed (${JSON.stringify(this.closeInfo)}) while waiting`));
        } else if (pred(f)) {
          clearTimeout(timer); this.waiters.delete(w); resolve(f);
        }
      };
      this.waiters.add(w);
    });
  }

  /** Send `42<id>[event, payload]` and resolve the parsed `43<id>[ack]`. */
  async call(id, event, payload, timeoutMs = 5000) {
    this.send(`42${id}${JSON.stringify([event, payload])}`);
    const f = await this.waitFor((x) => typeof x === 'string' && x.startsWith(`43${id}[`), timeoutMs);
    return JSON.parse(f.slice(2 + String(id).length))[0];
  }

  /** Text frames that are acks with this id. */
  acksWithId(id) {
    return this.frames.filter((f) => typeof f === 'string' && f.startsWith(`43${id}[`));
  }

  close() {
    try { this.ws?.terminate(); } catch { /* gone */ }
  }
}

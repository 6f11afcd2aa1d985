// A TCP proxy in front of the signaling server(s), for faults of the
// signaling path alone: the browsers' media flows between them directly and
// never passes through it.
//
// - `cut()` drops every connection it carries (the browser's WebSocket and
//   the server's side of it end at once, as when a NAT or a proxy on the
//   way drops its state) and, until `restore()`, takes new connections and
//   closes them at once (the server is unreachable);
// - with several backends it forwards each new connection to the first
//   that accepts it, in order (a load balancer failing over when a node
//   stops).
//
// Everything is on 127.0.0.1.

import net from 'node:net';

export class TcpProxy {
  /** @param {number[]} ports backend ports on 127.0.0.1, in order of preference */
  static async start(ports) {
    const p = new TcpProxy(ports);
    await new Promise((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.server.address().port;
    p.url = `http://127.0.0.1:${p.port}`;
    return p;
  }

  constructor(ports) {
    this.ports = ports;
    this.down = false;
    this.pairs = new Set();
    /** Backend port of each connection made, in order (what the test reads). */
    this.routed = [];
    this.server = net.createServer((client) => this.#accept(client));
  }

  #accept(client) {
    client.on('error', () => {});
    if (this.down) {
      client.destroy();
      return;
    }
    const tryPort = (i) => {
      if (i >= this.ports.length || this.down) {
        client.destroy();
        return;
      }
      const upstream = net.connect(this.ports[i], '127.0.0.1');
      upstream.once('error', () => {
        upstream.destroy();
        if (!upstream.__connected) tryPort(i + 1);
        else client.destroy();
      });
      upstream.once('connect', () => {
        upstream.__connected = true;
        this.routed.push(this.ports[i]);
        const pair = { client, upstream };
        this.pairs.add(pair);
        const end = () => {
          this.pairs.delete(pair);
          client.destroy();
          upstream.destroy();
        };
        client.once('close', end);
        upstream.once('close', end);
        client.pipe(upstream);
        upstream.pipe(client);
      });
    };
    tryPort(0);
  }

  /** The signaling path is cut: every connection ends, new ones are refused. */
  cut() {
    this.down = true;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  restore() {
    this.down = false;
  }

  async stop() {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

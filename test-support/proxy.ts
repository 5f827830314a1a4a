/**
 * A loopback HTTP proxy for tests, never imported by `src/`: it forwards absolute-form requests
 * (`GET http://host:port/path`) and opens CONNECT tunnels, and records each one it handled, so a
 * test can see which requests went through a proxy and how many bytes came back.
 *
 * Names under `.clyde.test` do not resolve on this machine: the proxy sends them to 127.0.0.1,
 * so a client reaches such a host only through the proxy. (A loopback name would not do:
 * `@actions/http-client`, whose rules the action follows, never proxies `localhost`, `127.*` or
 * `[::1]`.) `0.0.0.0` is the other way round: it reaches the loopback service directly on Linux
 * and is not a loopback name, so NO_PROXY decides whether it is proxied.
 *
 *   const proxy = await startProxy();
 *   env = { ...proxy.env(), ACTIONS_RESULTS_URL: `http://cache.clyde.test:${port}/` };
 *   ...
 *   proxy.handled()   // [{ kind: 'connect', host: 'cache.clyde.test', port, bytesIn }, ...]
 *   await proxy.close();
 */
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

/** What the proxy does with a request. */
export type ProxyMode =
  /** Forward it (absolute-form) or open the tunnel (CONNECT). */
  | 'forward'
  /** Accept the connection, read the request, and close the socket without an answer. */
  | 'close';

export interface Forwarded {
  /** `connect` for a tunnel, `request` for an absolute-form request. */
  readonly kind: 'connect' | 'request';
  readonly host: string;
  readonly port: number;
  /** Bytes sent back to the client so far (the answer, or what came out of the tunnel). */
  bytesIn: number;
  /** False when the proxy closed it unanswered (mode 'close'). */
  readonly forwarded: boolean;
}

export interface LoopbackProxy {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** HTTP_PROXY and HTTPS_PROXY naming this proxy. */
  env(): Record<string, string>;
  setMode(mode: ProxyMode): void;
  /** Everything handled since start (or `clear`), in arrival order. */
  handled(): Forwarded[];
  /** Those handled for `host`. */
  handledFor(host: string): Forwarded[];
  clear(): void;
  close(): Promise<void>;
}

/** Where the proxy connects for `host`: `.clyde.test` names are this machine. */
function resolveTarget(host: string): string {
  return host === 'clyde.test' || host.endsWith('.clyde.test') ? '127.0.0.1' : host;
}

function splitHostPort(authority: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(authority);
  if (!m) return { host: authority, port: defaultPort };
  return { host: m[1] ?? authority, port: m[2] ? Number(m[2]) : defaultPort };
}

export async function startProxy(initial: ProxyMode = 'forward'): Promise<LoopbackProxy> {
  let mode = initial;
  let log: Forwarded[] = [];
  const sockets = new Set<Duplex>();
  const server = http.createServer();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  server.on('connect', (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    const { host, port } = splitHostPort(req.url ?? '', 443);
    const record: Forwarded = {
      kind: 'connect',
      host,
      port,
      bytesIn: 0,
      forwarded: mode === 'forward',
    };
    log.push(record);
    client.on('error', () => undefined);
    if (mode === 'close') {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, resolveTarget(host), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('data', (chunk: Buffer) => {
      record.bytesIn += chunk.length;
    });
    upstream.on('error', () => {
      if (!client.destroyed) client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      res.writeHead(400).end('absolute-form requests only');
      return;
    }
    const port = Number(target.port || 80);
    const host = target.hostname;
    const record: Forwarded = {
      kind: 'request',
      host,
      port,
      bytesIn: 0,
      forwarded: mode === 'forward',
    };
    log.push(record);
    if (mode === 'close') {
      req.socket.destroy();
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-connection'];
    delete headers['proxy-authorization'];
    const upstream = http.request(
      {
        host: resolveTarget(host),
        port,
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on('data', (chunk: Buffer) => {
          record.bytesIn += chunk.length;
        });
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    env: () => ({ HTTP_PROXY: url, HTTPS_PROXY: url }),
    setMode: (m) => {
      mode = m;
    },
    handled: () => log.map((r) => ({ ...r })),
    handledFor: (host) => log.filter((r) => r.host === host).map((r) => ({ ...r })),
    clear: () => {
      log = [];
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * The transport of every HTTP request the action makes itself (the runner cache's lookups in
 * twirp.ts, its downloads and uploads in transfer.ts, the gc sub-action's REST calls in
 * rest.ts). Node's own `fetch` ignores HTTPS_PROXY and NO_PROXY; behind a proxy every such
 * request would fail while `@actions/cache` (which reads them through `@actions/http-client`)
 * works. So the proxy of a request is chosen here by `@actions/http-client`'s own
 * `getProxyUrl`, the same function `@actions/cache` uses:
 *
 * - `https_proxy`/`HTTPS_PROXY` for https URLs, `http_proxy`/`HTTP_PROXY` for http ones (the
 *   lowercase name wins); a value without a scheme is taken as `http://` only where it does not
 *   parse as a URL of its own (`10.0.0.1:3128` is a proxy; `proxy.corp:3128`, a URL of scheme
 *   `proxy.corp:` without a host, is no proxy at all, as for `@actions/cache`);
 * - never for a loopback host (`localhost`, `127.*`, `[::1]`), whatever NO_PROXY says;
 * - not when `no_proxy`/`NO_PROXY` (lowercase wins) lists `*`, the host, `host:port` (the
 *   scheme's port when the URL has none), or a suffix of the host (`example.com` and
 *   `.example.com` both match `api.example.com`), compared without case.
 *
 * Requests go through undici (`fetch`, or `request` for transfers) with an explicit
 * dispatcher, a tunnel (CONNECT, as `@actions/http-client`'s ProxyAgent opens for http and https
 * alike) through the proxy or a direct agent, so Node's own proxy support (NODE_USE_ENV_PROXY),
 * which reads NO_PROXY by other rules, never decides for us.
 *
 * A proxy that refuses the connection, answers CONNECT with an error, or closes the tunnel fails
 * the request at once: undici would otherwise take a closed CONNECT for a recoverable socket
 * error and reconnect in a tight loop until a deadline ended it (`oneTunnelAttempt`).
 */
import { getProxyUrl } from '@actions/http-client/lib/proxy';
import { Readable } from 'node:stream';
import {
  Agent,
  fetch as undiciFetch,
  Pool,
  ProxyAgent,
  request as undiciRequest,
  type Dispatcher,
} from 'undici';

/**
 * The proxy `url` goes through, as `@actions/http-client` decides it from the environment at
 * the time of the call (see the module comment); undefined for a direct connection.
 */
export function proxyFor(url: string | URL): URL | undefined {
  const u = typeof url === 'string' ? new URL(url) : url;
  const proxy = getProxyUrl(u);
  return proxy?.hostname ? proxy : undefined;
}

/** A proxy URL without its credentials, for messages. */
export function describeProxy(proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`;
}

type Connect = (
  options: Record<string, unknown>,
  callback: (err: Error | null, socket: unknown) => void,
) => void;

/** The error a failed tunnel becomes: one undici does not retry (its code is not UND_ERR_SOCKET). */
class ProxyTunnelError extends Error {
  override readonly name = 'ProxyTunnelError';
  readonly code = 'ECONNRESET';
}

/**
 * Wraps the connect function undici's ProxyAgent gives each origin's pool (it opens the
 * CONNECT tunnel). When the proxy closes that connection, undici reports a socket error, which
 * its client treats as recoverable: it leaves the request queued and connects again at once,
 * thousands of times a second, until something aborts the request. Here that error becomes one
 * it gives to the request, so a closed tunnel fails the request the first time.
 */
function oneTunnelAttempt(connect: Connect, proxy: URL): Connect {
  return (options, callback) =>
    connect(options, (err, socket) => {
      if (err && (err as { code?: unknown }).code === 'UND_ERR_SOCKET') {
        const target = `${String(options['hostname'])}:${String(options['port'] ?? '')}`;
        callback(
          new ProxyTunnelError(
            `the proxy ${describeProxy(proxy)} closed the tunnel to ${target} (${err.message})`,
          ),
          null,
        );
        return;
      }
      callback(err, socket);
    });
}

function tunnelThrough(proxy: URL): ProxyAgent {
  const credentials =
    proxy.username || proxy.password
      ? { token: `Basic ${Buffer.from(`${proxy.username}:${proxy.password}`).toString('base64')}` }
      : {};
  return new ProxyAgent({
    // Without credentials: undici would take them from the URL a second time, undecoded.
    uri: describeProxy(proxy),
    ...credentials,
    factory: (origin: string | URL, opts: object): Dispatcher => {
      const o = opts as { connect: Connect };
      return new Pool(origin, { ...o, connect: oneTunnelAttempt(o.connect, proxy) } as object);
    },
  });
}

let direct: Agent | undefined;
const tunnels = new Map<string, ProxyAgent>();

/** The dispatcher for `url`: a tunnel through its proxy (one per proxy) or a direct agent. */
export function dispatcherFor(url: string | URL): Dispatcher {
  const proxy = proxyFor(url);
  if (!proxy) {
    direct ??= new Agent();
    return direct;
  }
  const id = proxy.href;
  let agent = tunnels.get(id);
  if (!agent) {
    agent = tunnelThrough(proxy);
    tunnels.set(id, agent);
  }
  return agent;
}

/** The part of the global `fetch` the callers use: a URL (not a Request) and its options. */
export type Fetch = (url: string | URL, init?: RequestInit) => Promise<Response>;

/**
 * `fetch` with the proxy settings honoured. A failure to connect says why and through which
 * proxy, rather than undici's bare "fetch failed".
 */
export const fetch: Fetch = async (input, init) => {
  const url = typeof input === 'string' ? input : input.href;
  try {
    return (await undiciFetch(url, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: dispatcherFor(url),
    })) as unknown as Response;
  } catch (err) {
    throw explained(err, url);
  }
};

/**
 * A request with a body, through undici's `request` rather than `fetch` (which copies every
 * piece of a body before sending it), with the proxy settings honoured. Returns the status and
 * the answer's text. A failure to connect says through which proxy.
 */
export async function send(
  url: string,
  init: {
    method: 'PUT' | 'POST';
    headers: Record<string, string>;
    body: string | Uint8Array | AsyncIterable<Uint8Array>;
    signal: AbortSignal;
  },
): Promise<{ status: number; text: string }> {
  const body =
    typeof init.body === 'string' || init.body instanceof Uint8Array
      ? init.body
      : Readable.from(init.body, { objectMode: false });
  const res = await requested(url, { ...init, body });
  const text = await res.body.text().catch(() => '');
  return { status: res.statusCode, text };
}

/** What `get` answers: the status, a header by name, and the body as it arrives. */
export interface GetAnswer {
  readonly status: number;
  header(name: string): string | undefined;
  readonly body: AsyncIterable<Uint8Array>;
  /** Drops the body unread. */
  discard(): Promise<void>;
}

/**
 * A GET through undici's `request`, the proxy honoured and redirects followed as `fetch`
 * follows them: the body comes as the socket gives it, where `fetch` passes every piece through
 * a web stream (a download of a hundred MB took a third more time and CPU).
 */
export async function get(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<GetAnswer> {
  const res = await requested(url, { method: 'GET', headers, signal, maxRedirections: 5 });
  // A body that fails before it is read (the connection closed) keeps its error for the
  // reader, and is not an unhandled 'error' event meanwhile.
  res.body.on('error', () => undefined);
  return {
    status: res.statusCode,
    header: (name) => {
      const v = res.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    },
    body: res.body,
    discard: () => res.body.dump().catch(() => undefined),
  };
}

/**
 * undici's `request` through the dispatcher `url` takes (its proxy, or direct); a failure to
 * connect says through which proxy.
 */
async function requested(
  url: string,
  options: Omit<Parameters<typeof undiciRequest>[1] & object, 'dispatcher'>,
): Promise<Dispatcher.ResponseData> {
  try {
    return await undiciRequest(url, { ...options, dispatcher: dispatcherFor(url) });
  } catch (err) {
    const proxy = proxyFor(url);
    if (!proxy || !(err instanceof Error) || err.name === 'AbortError') throw err;
    throw new Error(`${err.message} (through the proxy ${describeProxy(proxy)})`, { cause: err });
  }
}

/** undici's "fetch failed" with its cause, and the proxy the request went through. */
function explained(err: unknown, url: string): unknown {
  // By name: undici's errors may come from another realm (a test's VM context).
  const e = err as {
    name?: unknown;
    message?: unknown;
    cause?: { name?: unknown; message?: unknown };
  };
  const cause = e?.cause;
  if (e?.name !== 'TypeError' || typeof cause?.message !== 'string') return err;
  const proxy = proxyFor(url);
  const via = proxy ? ` through the proxy ${describeProxy(proxy)}` : '';
  const already = cause.name === 'ProxyTunnelError';
  const why = cause.message.replace(/\.$/, '');
  return new TypeError(`${String(e.message)}: ${why}${already ? '' : via}`, { cause });
}

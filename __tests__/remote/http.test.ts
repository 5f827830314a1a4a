/**
 * The action's own transport (src/remote/http.ts): which requests go through a proxy, read from
 * the environment as @actions/http-client reads it, and requests through a real loopback proxy,
 * including one that closes its tunnels or is not there at all.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch, get, proxyFor } from '../../src/remote/http.js';
import { startProxy, type LoopbackProxy } from '../../test-support/proxy.js';

const PROXY_VARS = [
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
];
const saved = Object.fromEntries(PROXY_VARS.map((n) => [n, process.env[n]]));

function setProxyEnv(vars: Record<string, string>): void {
  for (const n of PROXY_VARS) Reflect.deleteProperty(process.env, n);
  Object.assign(process.env, vars);
}

afterEach(() => {
  for (const n of PROXY_VARS) {
    if (saved[n] === undefined) Reflect.deleteProperty(process.env, n);
    else process.env[n] = saved[n];
  }
});

describe('proxyFor: the proxy a URL goes through, as @actions/http-client chooses it', () => {
  const P = 'http://proxy.corp:3128';
  const cases: [string, Record<string, string>, string, string | undefined][] = [
    ['no proxy variables', {}, 'https://results.example.com/', undefined],
    ['HTTPS_PROXY for https', { HTTPS_PROXY: P }, 'https://results.example.com/', P],
    ['not HTTPS_PROXY for http', { HTTPS_PROXY: P }, 'http://results.example.com/', undefined],
    ['HTTP_PROXY for http', { HTTP_PROXY: P }, 'http://results.example.com/', P],
    [
      'the lowercase name wins',
      { HTTPS_PROXY: 'http://upper:1', https_proxy: P },
      'https://a.example.com/',
      P,
    ],
    [
      'an address without a scheme is http',
      { HTTPS_PROXY: '10.1.2.3:3128' },
      'https://a.b/',
      'http://10.1.2.3:3128',
    ],
    // `proxy.corp:3128` parses as a URL of scheme `proxy.corp:` and no host: no proxy at all.
    [
      'a name without a scheme is no proxy',
      { HTTPS_PROXY: 'proxy.corp:3128' },
      'https://a.b/',
      undefined,
    ],
    ['never localhost', { HTTP_PROXY: P }, 'http://localhost:8080/', undefined],
    ['never 127.*', { HTTP_PROXY: P }, 'http://127.0.0.5:8080/', undefined],
    ['never [::1]', { HTTP_PROXY: P }, 'http://[::1]:8080/', undefined],
    ['0.0.0.0 is not loopback by name', { HTTP_PROXY: P }, 'http://0.0.0.0:8080/', P],
    ['NO_PROXY *', { HTTPS_PROXY: P, NO_PROXY: '*' }, 'https://a.example.com/', undefined],
    [
      'NO_PROXY host',
      { HTTPS_PROXY: P, NO_PROXY: 'a.example.com' },
      'https://a.example.com/',
      undefined,
    ],
    [
      'NO_PROXY suffix',
      { HTTPS_PROXY: P, NO_PROXY: 'example.com' },
      'https://a.example.com/',
      undefined,
    ],
    [
      'NO_PROXY .suffix',
      { HTTPS_PROXY: P, NO_PROXY: '.example.com' },
      'https://a.example.com/',
      undefined,
    ],
    [
      'NO_PROXY is no substring match',
      { HTTPS_PROXY: P, NO_PROXY: 'example.com' },
      'https://badexample.com/',
      P,
    ],
    [
      'NO_PROXY without case',
      { HTTPS_PROXY: P, NO_PROXY: 'A.Example.COM' },
      'https://a.example.com/',
      undefined,
    ],
    [
      'NO_PROXY list with spaces',
      { HTTPS_PROXY: P, NO_PROXY: 'x.org, a.example.com ' },
      'https://a.example.com/',
      undefined,
    ],
    [
      'NO_PROXY host:port',
      { HTTP_PROXY: P, NO_PROXY: 'a.example.com:8080' },
      'http://a.example.com:8080/',
      undefined,
    ],
    [
      'NO_PROXY other port',
      { HTTP_PROXY: P, NO_PROXY: 'a.example.com:8080' },
      'http://a.example.com:9090/',
      P,
    ],
    [
      'NO_PROXY scheme port',
      { HTTPS_PROXY: P, NO_PROXY: 'a.example.com:443' },
      'https://a.example.com/',
      undefined,
    ],
    [
      'no_proxy wins',
      { HTTPS_PROXY: P, NO_PROXY: 'a.example.com', no_proxy: 'x.org' },
      'https://a.example.com/',
      P,
    ],
  ];
  it.each(cases)('%s', (_name, env, url, expected) => {
    setProxyEnv(env);
    expect(proxyFor(url)?.origin).toBe(
      expected === undefined ? undefined : new URL(expected).origin,
    );
  });

  it('keeps credentials decoded', () => {
    setProxyEnv({ HTTPS_PROXY: 'http://us%40er:p%3Ass@proxy.corp:3128' });
    const p = proxyFor('https://a.example.com/');
    expect([p?.username, p?.password]).toEqual(['us@er', 'p:ss']);
  });
});

describe('fetch through a loopback proxy', () => {
  let server: http.Server;
  let port: number;
  let proxy: LoopbackProxy;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/moved') {
        res.writeHead(302, { location: '/a' }).end();
        return;
      }
      res.end(`hello ${req.url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    proxy = await startProxy();
  });
  afterAll(async () => {
    await proxy.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('reaches a host only the proxy can resolve', async () => {
    proxy.setMode('forward');
    proxy.clear();
    setProxyEnv(proxy.env());
    const res = await fetch(`http://svc.clyde.test:${port}/a`);
    expect(await res.text()).toBe('hello /a');
    expect(proxy.handledFor('svc.clyde.test')).toMatchObject([{ kind: 'connect', port }]);
  });

  it('goes direct where NO_PROXY says, and through the proxy otherwise', async () => {
    proxy.setMode('forward');
    proxy.clear();
    setProxyEnv({ ...proxy.env(), NO_PROXY: `example.com,0.0.0.0:${port}` });
    expect(await (await fetch(`http://0.0.0.0:${port}/direct`)).text()).toBe('hello /direct');
    expect(proxy.handled()).toEqual([]);
    setProxyEnv(proxy.env());
    expect(await (await fetch(`http://0.0.0.0:${port}/proxied`)).text()).toBe('hello /proxied');
    expect(proxy.handledFor('0.0.0.0')).toHaveLength(1);
  });

  it('fails at the first tunnel a proxy closes, naming the proxy', async () => {
    const closing = await startProxy('close');
    try {
      setProxyEnv(closing.env());
      await expect(
        fetch(`http://svc.clyde.test:${port}/`, { signal: AbortSignal.timeout(20_000) }),
      ).rejects.toThrow(`the proxy ${closing.url} closed the tunnel to svc.clyde.test:${port}`);
      // One attempt, not a reconnecting loop that only a deadline ends.
      expect(closing.handled()).toHaveLength(1);
    } finally {
      await closing.close();
    }
  });

  it('fails when the proxy refuses the connection, naming the proxy', async () => {
    const gone = http.createServer();
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    const dead = `http://127.0.0.1:${(gone.address() as AddressInfo).port}`;
    await new Promise((resolve) => gone.close(resolve));
    setProxyEnv({ HTTP_PROXY: dead, HTTPS_PROXY: dead });
    await expect(
      fetch(`http://svc.clyde.test:${port}/`, { signal: AbortSignal.timeout(60_000) }),
    ).rejects.toThrow(new RegExp(`ECONNREFUSED.*through the proxy ${dead}`));
  });

  it('downloads (get) through the proxy too, following a redirect as fetch does', async () => {
    proxy.setMode('forward');
    proxy.clear();
    setProxyEnv(proxy.env());
    const res = await get(`http://svc.clyde.test:${port}/moved`, {}, AbortSignal.timeout(20_000));
    expect(res.status).toBe(200);
    expect(res.header('Content-Length')).toBe(String('hello /a'.length));
    const chunks: Uint8Array[] = [];
    for await (const c of res.body) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('hello /a');
    expect(proxy.handledFor('svc.clyde.test').length).toBeGreaterThanOrEqual(1);
  });

  it('get fails at the first tunnel a proxy closes, naming the proxy', async () => {
    const closing = await startProxy('close');
    try {
      setProxyEnv(closing.env());
      await expect(
        get(`http://svc.clyde.test:${port}/`, {}, AbortSignal.timeout(20_000)),
      ).rejects.toThrow(`the proxy ${closing.url} closed the tunnel to svc.clyde.test:${port}`);
      expect(closing.handled()).toHaveLength(1);
    } finally {
      await closing.close();
    }
  });
});

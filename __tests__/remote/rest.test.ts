/** The REST client (src/remote/rest.ts) against the loopback service's REST endpoints. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { openCacheApi, retryDelayMs } from '../../src/remote/rest.js';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';
import { startProxy } from '../../test-support/proxy.js';

let service: CacheService;

beforeAll(async () => {
  service = await startCacheService();
});
afterAll(async () => {
  await service.close();
});
beforeEach(() => {
  service.reset();
});

function client(token = service.restToken()) {
  return openCacheApi({
    token,
    apiUrl: service.apiUrl,
    repository: 'octo/demo',
    baseDelayMs: 1,
    maxDelayMs: 50,
  });
}

function seed(n: number): void {
  for (let i = 0; i < n; i++) {
    service.seedEntry({
      key: `clyde-p-linux-release-${i}`,
      version: 'v',
      data: Buffer.alloc(10),
      createdAt: new Date(Date.UTC(2025, 0, 1) + i * 1000),
    });
  }
}

const cacheGets = (): number =>
  service.requests().filter((r) => r.method === 'GET' && r.path.includes('/actions/caches')).length;

describe('openCacheApi', () => {
  it('lists every cache across pages (more than 100)', async () => {
    seed(230);
    const all = await client().listCaches();
    expect(all).toHaveLength(230);
    expect(new Set(all.map((c) => c.id)).size).toBe(230);
    expect(all[0]).toMatchObject({ ref: 'refs/heads/main', sizeBytes: 10, version: 'v' });
    expect(cacheGets()).toBe(3);
  });

  it('retries a 429 with retry-after, a rate-limited 403 and a 5xx', async () => {
    seed(5);
    service.setRestFaults([
      { status: 429, count: 1, retryAfterSeconds: 0 },
      { status: 403, count: 1, rateLimitResetSeconds: 0 },
      { status: 502, count: 1 },
    ]);
    expect(await client().listCaches()).toHaveLength(5);
    expect(service.requests().map((r) => r.status)).toEqual([429, 403, 502, 200]);
  });

  it('gives up a request that gets no answer, within its timeout', async () => {
    seed(1);
    service.setRestFaults([{ status: 0, silent: true, count: 1 }]);
    const api = openCacheApi({
      token: service.restToken(),
      apiUrl: service.apiUrl,
      repository: 'octo/demo',
      requestTimeoutMs: 300,
    });
    const started = Date.now();
    const err = await api.listCaches().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'RemoteError' });
    expect(String(err)).toMatch(
      /Listing the caches of octo\/demo failed: GET http:.*actions\/caches.*: no answer within 1 s/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    // Not retried; the next call is answered.
    expect(service.requests().filter((r) => r.path.includes('/actions/caches'))).toHaveLength(1);
    expect(await api.listCaches()).toHaveLength(1);
  });

  it('gives up after a few tries', async () => {
    service.setRestFaults([{ status: 503 }]);
    await expect(client().listCaches()).rejects.toThrow(/Listing the caches of octo\/demo failed/);
    expect(service.requests()).toHaveLength(4);
  });

  it('a token that may not delete: a clear error naming the permission', async () => {
    seed(1);
    const id = service.entries()[0]!.id;
    const err = await client(service.restToken({ permission: 'read' }))
      .deleteCache(id)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InputError' });
    expect(String(err)).toMatch(
      /Deleting cache \d+ was refused \(403\).*permissions: actions: write/,
    );
    // Refused once, not retried: a permission 403 is not a rate limit.
    expect(service.requests().filter((r) => r.method === 'DELETE')).toHaveLength(1);
  });

  it('a token without actions access: 404 on list is the same clear error', async () => {
    await expect(client(service.restToken({ permission: 'none' })).listCaches()).rejects.toThrow(
      /refused \(404\).*permissions: actions: write/,
    );
  });

  it('deletes by id, reports usage and pull request states', async () => {
    seed(3);
    const api = client();
    const [first] = await api.listCaches();
    expect(await api.deleteCache(first!.id)).toBe(true);
    expect(await api.deleteCache(first!.id)).toBe(false);
    expect(await api.usage()).toEqual({ sizeBytes: 20, count: 2 });
    service.setPullRequests({ 7: 'open', 8: 'closed', 9: 'merged' });
    expect(await Promise.all([7, 8, 9, 10].map((n) => api.pullRequestState(n)))).toEqual([
      'open',
      'closed',
      'merged',
      undefined,
    ]);
  });
});

describe('behind a proxy', () => {
  it('reaches the API through HTTP_PROXY (a host only the proxy resolves)', async () => {
    const proxy = await startProxy();
    const before = { HTTP_PROXY: process.env['HTTP_PROXY'], NO_PROXY: process.env['NO_PROXY'] };
    try {
      Object.assign(process.env, { HTTP_PROXY: proxy.url, NO_PROXY: '' });
      seed(3);
      const api = openCacheApi({
        token: service.restToken(),
        apiUrl: service.apiUrl.replace('//127.0.0.1:', '//api.clyde.test:'),
        repository: 'octo/demo',
      });
      expect(await api.listCaches()).toHaveLength(3);
      expect(proxy.handledFor('api.clyde.test').length).toBeGreaterThan(0);
    } finally {
      for (const [k, v] of Object.entries(before)) {
        if (v === undefined) Reflect.deleteProperty(process.env, k);
        else process.env[k] = v;
      }
      await proxy.close();
    }
  });
});

describe('retryDelayMs', () => {
  const opts = { tries: 4, baseDelayMs: 1000, maxDelayMs: 60_000 };
  const err = (status: number, headers: Record<string, string> = {}) => ({
    status,
    response: { headers },
  });
  it.each([
    ['429 with retry-after', err(429, { 'retry-after': '3' }), 1, 3000],
    ['429 without headers: back-off', err(429), 2, 2000],
    [
      '403 rate limit: until the reset',
      err(403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '110' }),
      1,
      10_000,
    ],
    ['a long retry-after is capped', err(429, { 'retry-after': '3600' }), 1, 60_000],
    ['503: back-off', err(503), 3, 4000],
    ['403 permission: no retry', err(403, { 'x-ratelimit-remaining': '4999' }), 1, undefined],
    ['404: no retry', err(404), 1, undefined],
    ['last try: no retry', err(503), 4, undefined],
  ])('%s', (_name, e, attempt, wait) => {
    expect(retryDelayMs(e, attempt, opts, 100_000)).toBe(wait);
  });
});

/** The loopback service's GitHub REST endpoints, spoken to with plain fetch. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';

let service: CacheService;
let token: string;

beforeAll(async () => {
  service = await startCacheService();
  token = service.restToken();
});
afterAll(async () => {
  await service.close();
});
beforeEach(() => {
  service.reset();
});

const T0 = Date.UTC(2025, 0, 1);

function seed(n: number): void {
  for (let i = 0; i < n; i++) {
    service.seedEntry({
      key: `clyde-p${i % 3}-linux-release-${String(i).padStart(4, '0')}`,
      version: 'v1',
      scope: i % 2 === 0 ? 'refs/heads/main' : 'refs/pull/7/merge',
      data: Buffer.alloc(i + 1),
      createdAt: new Date(T0 + i * 1000),
      lastAccessedAt: new Date(T0 + (n - i) * 1000),
    });
  }
}

async function api(
  method: string,
  p: string,
  t: string | null = token,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(new URL(`${service.apiUrl}/repos/octo/demo${p}`), {
    method,
    headers: t === null ? {} : { authorization: `Bearer ${t}` },
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? undefined : JSON.parse(text),
    headers: res.headers,
  };
}

interface ListBody {
  total_count: number;
  actions_caches: { id: number; key: string; ref: string; size_in_bytes: number }[];
}

describe('GET /actions/caches', () => {
  it('pages with a Link header, at most 100 per page', async () => {
    seed(250);
    const first = await api('GET', '/actions/caches?per_page=500');
    const body = first.body as ListBody;
    expect(body.total_count).toBe(250);
    expect(body.actions_caches).toHaveLength(100);
    const link = first.headers.get('link') ?? '';
    expect(link).toMatch(/page=2[^>]*>; rel="next"/);
    expect(link).toMatch(/page=3[^>]*>; rel="last"/);
    const last = await api('GET', '/actions/caches?per_page=100&page=3');
    expect((last.body as ListBody).actions_caches).toHaveLength(50);
    expect(last.headers.get('link')).toMatch(/rel="prev"/);
    expect(last.headers.get('link')).not.toMatch(/rel="next"/);
  });

  it('filters by key prefix and ref, sorts by any field in either direction', async () => {
    seed(12);
    const r = await api(
      'GET',
      '/actions/caches?key=clyde-p1-&ref=refs/pull/7/merge&sort=size_in_bytes&direction=asc',
    );
    const items = (r.body as ListBody).actions_caches;
    expect(items.map((c) => c.key)).toEqual([
      'clyde-p1-linux-release-0001',
      'clyde-p1-linux-release-0007',
    ]);
    expect(items.every((c) => c.ref === 'refs/pull/7/merge')).toBe(true);
    // Default: last_accessed_at, newest first.
    const byAccess = (await api('GET', '/actions/caches')).body as ListBody;
    expect(byAccess.actions_caches[0]?.key).toBe('clyde-p0-linux-release-0000');
    expect((await api('GET', '/actions/caches?sort=name')).status).toBe(422);
  });
});

describe('deleting', () => {
  it('by id: 204, then 404', async () => {
    seed(3);
    const id = service.entries()[1]!.id;
    expect((await api('DELETE', `/actions/caches/${id}`)).status).toBe(204);
    expect(service.entries().map((e) => e.id)).not.toContain(id);
    expect((await api('DELETE', `/actions/caches/${id}`)).status).toBe(404);
  });

  it('by key and ref: 200 with the deleted entries; without ref, every ref', async () => {
    for (const scope of ['refs/heads/main', 'refs/heads/dev', 'refs/pull/3/merge']) {
      service.seedEntry({ key: 'k', version: 'v', scope, data: Buffer.from('x') });
    }
    const one = await api('DELETE', '/actions/caches?key=k&ref=refs/heads/dev');
    expect(one.status).toBe(200);
    expect((one.body as ListBody).actions_caches.map((c) => c.ref)).toEqual(['refs/heads/dev']);
    const rest = await api('DELETE', '/actions/caches?key=k');
    expect((rest.body as ListBody).total_count).toBe(2);
    expect(service.entries()).toEqual([]);
  });
});

describe('usage, pull requests, auth and faults', () => {
  it('reports usage', async () => {
    seed(4);
    expect((await api('GET', '/actions/cache/usage')).body).toEqual({
      full_name: 'octo/demo',
      active_caches_size_in_bytes: 1 + 2 + 3 + 4,
      active_caches_count: 4,
    });
  });

  it('answers pull request states from the table', async () => {
    service.setPullRequests({ 7: 'open', 8: 'closed', 9: 'merged' });
    expect((await api('GET', '/pulls/7')).body).toMatchObject({ state: 'open', merged: false });
    expect((await api('GET', '/pulls/8')).body).toMatchObject({ state: 'closed', merged: false });
    expect((await api('GET', '/pulls/9')).body).toMatchObject({ state: 'closed', merged: true });
    expect((await api('GET', '/pulls/10')).status).toBe(404);
  });

  it('needs a token; a read token may not delete; a token without actions access gets 404', async () => {
    seed(1);
    const id = service.entries()[0]!.id;
    expect((await api('GET', '/actions/caches', null)).status).toBe(401);
    const read = service.restToken({ permission: 'read' });
    expect((await api('GET', '/actions/caches', read)).status).toBe(200);
    const refused = await api('DELETE', `/actions/caches/${id}`, read);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-ratelimit-remaining')).not.toBe('0');
    expect(
      (await api('GET', '/actions/caches', service.restToken({ permission: 'none' }))).status,
    ).toBe(404);
    // `token <t>` works as well as `Bearer <t>`.
    const res = await fetch(`${service.apiUrl}/repos/octo/demo/actions/caches`, {
      headers: { authorization: `token ${token}` },
    });
    expect(res.status).toBe(200);
  });

  it('injects rate limits and server errors', async () => {
    service.setRestFaults([
      { status: 429, count: 1, retryAfterSeconds: 2 },
      { status: 403, count: 1, rateLimitResetSeconds: 5 },
      { status: 503, count: 1, method: 'GET' },
    ]);
    const a = await api('GET', '/actions/caches');
    expect([a.status, a.headers.get('retry-after')]).toEqual([429, '2']);
    const b = await api('GET', '/actions/caches');
    expect([b.status, b.headers.get('x-ratelimit-remaining')]).toEqual([403, '0']);
    expect((await api('GET', '/actions/caches')).status).toBe(503);
    expect((await api('GET', '/actions/caches')).status).toBe(200);
  });
});

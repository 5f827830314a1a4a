/**
 * The loopback cache service at the protocol level (raw HTTP, no client library): auth, the
 * matching ladder, scopes, blob PUT/GET shapes, faults and lifecycle.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  startCacheService,
  type CacheService,
  type Scope,
} from '../../test-support/cache-service/index.js';

const TWIRP = '/twirp/github.actions.results.api.v1.CacheService/';
const MAIN: Scope[] = [{ scope: 'refs/heads/main', permission: 3 }];
const PR: Scope[] = [
  { scope: 'refs/pull/7/merge', permission: 3 },
  { scope: 'refs/heads/main', permission: 1 },
];

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

interface Answer {
  status: number;
  text: string;
  json: Record<string, unknown>;
}

async function twirp(
  method: string,
  body: unknown,
  token: string | null = service.token(MAIN),
  svc: CacheService = service,
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== null) headers['authorization'] = `Bearer ${token}`;
  const res = await fetch(new URL(TWIRP + method, svc.url), {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON: leave json empty, callers look at text
  }
  return { status: res.status, text, json };
}

async function lookup(
  key: string,
  restoreKeys: string[] = [],
  scopes: Scope[] = MAIN,
  version = 'v1',
): Promise<string | undefined> {
  const a = await twirp(
    'GetCacheEntryDownloadURL',
    { key, restore_keys: restoreKeys, version },
    service.token(scopes),
  );
  expect(a.status).toBe(200);
  return a.json['matched_key'] as string | undefined;
}

/** Reserve an entry and return its signed upload URL. */
async function reserve(key: string, version = 'v1', scopes: Scope[] = MAIN): Promise<string> {
  const a = await twirp('CreateCacheEntry', { key, version }, service.token(scopes));
  expect(a.json).toMatchObject({ ok: true });
  return a.json['signed_upload_url'] as string;
}

async function putBlob(url: string, data: Buffer, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'PUT',
    headers: { 'x-ms-blob-type': 'BlockBlob', ...headers },
    body: data,
  });
}

/** Reserve, upload and finalize; returns the entry id. */
async function save(key: string, data: Buffer, version = 'v1'): Promise<number> {
  const url = await reserve(key, version);
  expect((await putBlob(url, data)).status).toBe(201);
  const f = await twirp('FinalizeCacheEntryUpload', {
    key,
    version,
    size_bytes: String(data.length),
  });
  expect(f.json['ok']).toBe(true);
  return Number(f.json['entry_id']);
}

async function downloadUrl(key: string, svc: CacheService = service): Promise<string> {
  const a = await twirp('GetCacheEntryDownloadURL', { key, version: 'v1' }, svc.token(MAIN), svc);
  const url = a.json['signed_download_url'];
  if (typeof url !== 'string') throw new Error(`no hit for ${key}: ${a.text}`);
  return url;
}

interface RawGet {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  complete: boolean;
  headersAfterMs: number;
  doneAfterMs: number;
}

/** A GET over node:http that reports what arrived even when the server cuts the connection. */
function rawGet(url: string, headers: Record<string, string> = {}): Promise<RawGet> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const headersAfterMs = Date.now() - t0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          complete: res.complete,
          headersAfterMs,
          doneAfterMs: Date.now() - t0,
        }),
      );
    });
    req.on('error', reject);
  });
}

describe('Twirp calls', () => {
  it('requires a runtime token minted by this service', async () => {
    const other = await startCacheService();
    try {
      const body = { key: 'k', version: 'v1' };
      for (const token of [null, 'not-a-jwt', other.token(MAIN)]) {
        const a = await twirp('GetCacheEntryDownloadURL', body, token);
        expect(a.status).toBe(401);
        expect(a.json['code']).toBe('unauthenticated');
      }
      expect((await twirp('GetCacheEntryDownloadURL', body)).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('answers unknown routes with bad_route', async () => {
    const a = await twirp('DeleteCacheEntry', {});
    expect([a.status, a.json['code']]).toEqual([404, 'bad_route']);
    const res = await fetch(new URL(`${TWIRP}CreateCacheEntry`, service.url));
    expect(res.status).toBe(404);
  });

  it('rejects a request without key or version', async () => {
    const a = await twirp('CreateCacheEntry', { key: 'k' });
    expect([a.status, a.json['code']]).toEqual([400, 'invalid_argument']);
  });

  it('returns an empty object on a miss', async () => {
    const a = await twirp('GetCacheEntryDownloadURL', { key: 'none', version: 'v1' });
    expect([a.status, a.text]).toEqual([200, '{}']);
  });

  it('matches: exact key, newest prefix, then each restore key; same version, finalized only', async () => {
    const t = (n: number) => new Date(Date.UTC(2025, 0, 1, 0, n));
    service.seedEntry({ key: 'k-1', version: 'v1', data: Buffer.from('1'), createdAt: t(1) });
    service.seedEntry({ key: 'k-10', version: 'v1', data: Buffer.from('10'), createdAt: t(2) });
    service.seedEntry({ key: 'k-2', version: 'v1', data: Buffer.from('2'), createdAt: t(3) });
    service.seedEntry({ key: 'k-3', version: 'v2', data: Buffer.from('3'), createdAt: t(4) });
    await reserve('k-4'); // newest of all, never finalized

    const cases: [string, string[], string, string | undefined][] = [
      ['k-1', [], 'v1', 'k-1'], // exact beats the newer 'k-10'
      ['k-', [], 'v1', 'k-2'], // newest prefix match of this version
      ['k-4', [], 'v1', undefined], // unfinalized entries never match
      ['x', ['k-1'], 'v1', 'k-1'],
      ['x', ['nope', 'k-'], 'v1', 'k-2'],
      ['x', ['k-10', 'k-'], 'v1', 'k-10'], // restore keys in order
      ['k-', [], 'v2', 'k-3'],
      ['k-1', [], 'v3', undefined],
    ];
    for (const [key, restoreKeys, version, expected] of cases) {
      expect([key, restoreKeys, version, await lookup(key, restoreKeys, MAIN, version)]).toEqual([
        key,
        restoreKeys,
        version,
        expected,
      ]);
    }
  });

  it("walks the token's scopes in order, and saves to the first writable one", async () => {
    const old = new Date(Date.UTC(2020, 0, 1));
    service.seedEntry({ key: 'pkg-pr', version: 'v1', scope: 'refs/pull/7/merge', data: Buffer.from('p'), createdAt: old }); // prettier-ignore
    service.seedEntry({ key: 'pkg-main', version: 'v1', data: Buffer.from('m') });

    expect(await lookup('pkg-', [], PR)).toBe('pkg-pr'); // own scope first, though older
    expect(await lookup('pkg-main', [], PR)).toBe('pkg-main');
    expect(await lookup('pkg-', [], MAIN)).toBe('pkg-main');
    expect(await lookup('pkg-pr', [], MAIN)).toBe(undefined);

    await reserve('new', 'v1', PR);
    expect(service.entries().find((e) => e.key === 'new')?.scope).toBe('refs/pull/7/merge');
  });

  it('updates the last-accessed time on a hit only', async () => {
    const then = new Date(Date.UTC(2024, 5, 1));
    const e = service.seedEntry({ key: 'a', version: 'v1', data: Buffer.from('a'), createdAt: then }); // prettier-ignore
    expect(e.lastAccessedAt).toEqual(then);
    await lookup('b');
    expect(service.entries()[0]?.lastAccessedAt).toEqual(then);
    const before = Date.now();
    await lookup('a');
    expect(service.entries()[0]?.lastAccessedAt.getTime()).toBeGreaterThanOrEqual(before);
  });

  it('denies writes to a read-only token with ok:false and reads to a write-only one with 403', async () => {
    const ro = service.token([{ scope: 'refs/heads/main', permission: 1 }]);
    const a = await twirp('CreateCacheEntry', { key: 'k', version: 'v1' }, ro);
    expect(a.status).toBe(200);
    expect(Object.keys(a.json)).toEqual(['message']);
    expect(String(a.json['message'])).toMatch(/^cache write denied: /);
    expect(service.entries()).toEqual([]);

    const wo = service.token([{ scope: 'refs/heads/main', permission: 2 }]);
    const b = await twirp('GetCacheEntryDownloadURL', { key: 'k', version: 'v1' }, wo);
    expect([b.status, b.json['code']]).toEqual([403, 'permission_denied']);
    expect(String(b.json['msg'])).toMatch(/^cache read denied: /);
  });

  it('answers a duplicate reservation with 409 already_exists, pending or finalized', async () => {
    await reserve('d');
    const pending = await twirp('CreateCacheEntry', { key: 'd', version: 'v1' });
    expect([pending.status, pending.json['code']]).toEqual([409, 'already_exists']);
    await save('e', Buffer.from('e'));
    const done = await twirp('CreateCacheEntry', { key: 'e', version: 'v1' });
    expect(done.status).toBe(409);
    // Another version or another scope is a different entry.
    expect((await twirp('CreateCacheEntry', { key: 'e', version: 'v2' })).status).toBe(200);
    await reserve('e', 'v1', PR);
  });

  it('finalizes only an uploaded blob of the declared size, once', async () => {
    const url = await reserve('f');
    const early = await twirp('FinalizeCacheEntryUpload', { key: 'f', version: 'v1', size_bytes: '3' }); // prettier-ignore
    expect(early.json).toEqual({ message: expect.stringMatching(/no blob/) });
    await putBlob(url, Buffer.from('abc'));
    const wrong = await twirp('FinalizeCacheEntryUpload', { key: 'f', version: 'v1', size_bytes: '4' }); // prettier-ignore
    expect(wrong.json).toEqual({ message: expect.stringMatching(/size mismatch/) });
    expect(await lookup('f')).toBe(undefined);

    const ok = await twirp('FinalizeCacheEntryUpload', { key: 'f', version: 'v1', size_bytes: '3' }); // prettier-ignore
    const id = service.entries()[0]?.id;
    expect(ok.json).toEqual({ ok: true, entry_id: String(id) });
    const again = await twirp('FinalizeCacheEntryUpload', { key: 'f', version: 'v1', size_bytes: '3' }); // prettier-ignore
    expect(again.status).toBe(409);
    const missing = await twirp('FinalizeCacheEntryUpload', { key: 'g', version: 'v1', size_bytes: '3' }); // prettier-ignore
    expect(missing.status).toBe(404);
  });
});

describe('blobs', () => {
  it('takes a single-shot PUT with 201 and the headers the Azure SDK reads', async () => {
    const data = randomBytes(1000);
    const url = await reserve('one');
    expect(new URL(url).pathname).toMatch(/^\/devstoreaccount1\/actions-cache\/\d+$/);
    const res = await putBlob(url, data, { 'x-ms-client-request-id': 'abc', 'x-ms-version': '2025-01-05' }); // prettier-ignore
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toMatch(/^"0x[0-9A-F]+"$/);
    expect(Number.isNaN(Date.parse(res.headers.get('last-modified') ?? ''))).toBe(false);
    expect(res.headers.get('content-md5')).toBe(createHash('md5').update(data).digest('base64'));
    expect(res.headers.get('x-ms-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get('x-ms-client-request-id')).toBe('abc');
    expect(res.headers.get('x-ms-version')).toBe('2025-01-05');
    expect(res.headers.get('x-ms-request-server-encrypted')).toBe('true');
    const id = service.entries()[0]?.id ?? -1;
    expect(service.readEntry(id).equals(data)).toBe(true);
  });

  it('refuses a PUT without x-ms-blob-type, a bad signature, a read URL, and a finalized blob', async () => {
    const url = await reserve('p');
    const noType = await fetch(url, { method: 'PUT', body: 'x' });
    expect([noType.status, noType.headers.get('x-ms-error-code')]).toEqual([400, 'InvalidHeaderValue']); // prettier-ignore
    const forged = new URL(url);
    forged.searchParams.set('sig', 'AAAA');
    expect((await putBlob(forged.href, Buffer.from('x'))).status).toBe(403);
    expect((await fetch(url)).status).toBe(403); // an upload URL cannot read

    await save('q', Buffer.from('q'));
    const readUrl = await downloadUrl('q');
    expect((await putBlob(readUrl, Buffer.from('x'))).status).toBe(403);
    const qUpload = url.replace(/\/\d+\?/, `/${service.entries()[1]?.id}?`);
    expect((await putBlob(qUpload, Buffer.from('x'))).status).toBe(403); // signed for another id
  });

  it('commits staged blocks in block-list order, not upload order', async () => {
    const url = await reserve('blocks');
    const ids = ['block-0', 'block-1', 'block-2'].map((s) => Buffer.from(s).toString('base64'));
    const parts = [randomBytes(100), randomBytes(200), randomBytes(300)];
    for (const i of [2, 0, 1]) {
      const u = `${url}&comp=block&blockid=${encodeURIComponent(ids[i] as string)}`;
      const res = await fetch(u, { method: 'PUT', body: parts[i] });
      expect(res.status).toBe(201);
      expect(res.headers.get('content-md5')).toBe(
        createHash('md5')
          .update(parts[i] as Buffer)
          .digest('base64'),
      );
    }
    const order = [1, 0, 2];
    const xml =
      '<?xml version="1.0" encoding="utf-8"?><BlockList>' +
      order.map((i) => `<Latest>${ids[i]}</Latest>`).join('') +
      '</BlockList>';
    const bad = await fetch(`${url}&comp=blocklist`, {
      method: 'PUT',
      body: xml.replace('</BlockList>', '<Latest>bm9wZQ==</Latest></BlockList>'),
    });
    expect([bad.status, bad.headers.get('x-ms-error-code')]).toEqual([400, 'InvalidBlockList']);

    const res = await fetch(`${url}&comp=blocklist`, { method: 'PUT', body: xml });
    expect(res.status).toBe(201);
    expect(res.headers.get('etag')).toBeTruthy();
    const id = service.entries()[0]?.id ?? -1;
    expect(service.readEntry(id).equals(Buffer.concat(order.map((i) => parts[i] as Buffer)))).toBe(
      true,
    );
    expect(service.entries()[0]?.sizeBytes).toBe(600);
  });

  it('serves whole blobs, ranges with 206, unsatisfiable ranges with 416, and HEAD', async () => {
    const data = Buffer.from('0123456789');
    await save('r', data);
    const url = await downloadUrl('r');

    const whole = await rawGet(url);
    expect([whole.status, whole.headers['content-length'], whole.body.toString()]).toEqual([200, '10', '0123456789']); // prettier-ignore
    const cases: [Record<string, string>, string, string][] = [
      [{ 'x-ms-range': 'bytes=2-5' }, '2345', 'bytes 2-5/10'],
      [{ range: 'bytes=7-' }, '789', 'bytes 7-9/10'],
      [{ range: 'bytes=-3' }, '789', 'bytes 7-9/10'],
      [{ 'x-ms-range': 'bytes=8-100' }, '89', 'bytes 8-9/10'],
      [{ 'x-ms-range': 'bytes=0-0', range: 'bytes=5-5' }, '0', 'bytes 0-0/10'],
    ];
    for (const [headers, body, contentRange] of cases) {
      const r = await rawGet(url, headers);
      expect([r.status, r.body.toString(), r.headers['content-range']]).toEqual([206, body, contentRange]); // prettier-ignore
    }
    const unsat = await rawGet(url, { range: 'bytes=10-' });
    expect([unsat.status, unsat.headers['content-range']]).toEqual([416, 'bytes */10']);

    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), head.headers.get('x-ms-blob-type')]).toEqual([200, '10', 'BlockBlob']); // prettier-ignore
  });
});

describe('faults', () => {
  it("prefers a method's own Twirp fault over '*', and counts each down", async () => {
    service.setFaults({
      twirp: { '*': { status: 503, count: 2 }, CreateCacheEntry: { status: 429, count: 1 } },
    });
    const statuses: number[] = [];
    statuses.push((await twirp('CreateCacheEntry', { key: 'a', version: 'v1' })).status);
    statuses.push((await twirp('CreateCacheEntry', { key: 'a', version: 'v1' })).status);
    statuses.push((await twirp('GetCacheEntryDownloadURL', { key: 'a', version: 'v1' })).status);
    statuses.push((await twirp('GetCacheEntryDownloadURL', { key: 'a', version: 'v1' })).status);
    expect(statuses).toEqual([429, 503, 503, 200]);
  });

  it('sends a Twirp error body by default, or the raw body given', async () => {
    service.setFaults({ twirp: { FinalizeCacheEntryUpload: { status: 429 } } });
    const a = await twirp('FinalizeCacheEntryUpload', { key: 'a', version: 'v1' });
    expect([a.status, a.json['code']]).toEqual([429, 'resource_exhausted']);
    service.setFaults({ twirp: { '*': { status: 502, body: '<html>bad gateway</html>' } } });
    const b = await twirp('CreateCacheEntry', { key: 'a', version: 'v1' });
    expect([b.status, b.text]).toEqual([502, '<html>bad gateway</html>']);
    service.setFaults({});
    expect((await twirp('CreateCacheEntry', { key: 'a', version: 'v1' })).status).toBe(200);
  });

  it('fails blob PUTs while the blobPut fault lasts', async () => {
    const url = await reserve('p');
    service.setFaults({ blobPut: { status: 500, count: 1 } });
    const failed = await putBlob(url, Buffer.from('x'));
    expect([failed.status, failed.headers.get('x-ms-error-code')]).toEqual([500, 'InjectedFault']);
    expect((await putBlob(url, Buffer.from('x'))).status).toBe(201);
  });

  it('fails, truncates, delays and stalls downloads', async () => {
    const data = randomBytes(64 * 1024);
    await save('d', data);
    const url = await downloadUrl('d');

    service.setFaults({ download: { status: 503, count: 1 } });
    expect((await rawGet(url)).status).toBe(503);
    expect((await rawGet(url)).status).toBe(200);

    service.setFaults({ download: { truncateAt: 1000 } });
    const cut = await rawGet(url);
    expect([cut.status, cut.headers['content-length'], cut.body.length, cut.complete]).toEqual([200, String(data.length), 1000, false]); // prettier-ignore
    expect(cut.body.equals(data.subarray(0, 1000))).toBe(true);
    const cutRange = await rawGet(url, { 'x-ms-range': 'bytes=100-' });
    expect(cutRange.body.equals(data.subarray(100, 1100))).toBe(true);
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200); // HEAD is never faulted

    service.setFaults({ download: { delayMs: 300, count: 1 } });
    const delayed = await rawGet(url);
    expect(delayed.headersAfterMs).toBeGreaterThanOrEqual(250);
    expect(delayed.body.equals(data)).toBe(true);

    service.setFaults({ download: { stallMs: 400, count: 1 } });
    const stalled = await rawGet(url);
    expect(stalled.headersAfterMs).toBeLessThan(200);
    expect(stalled.doneAfterMs).toBeGreaterThanOrEqual(350);
    expect([stalled.complete, stalled.body.equals(data)]).toEqual([true, true]);
  });
});

describe('service lifecycle', () => {
  it('gives the v2 environment and a token whose ac claim lists the scopes', () => {
    const env = service.env(PR);
    expect(Object.keys(env).sort()).toEqual([
      'ACTIONS_CACHE_SERVICE_V2',
      'ACTIONS_RESULTS_URL',
      'ACTIONS_RUNTIME_TOKEN',
    ]);
    expect(env['ACTIONS_RESULTS_URL']).toBe(service.url);
    expect(service.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const payload = (env['ACTIONS_RUNTIME_TOKEN'] ?? '').split('.')[1] ?? '';
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { ac: string };
    expect(JSON.parse(claims.ac)).toEqual([
      { Scope: 'refs/pull/7/merge', Permission: 3 },
      { Scope: 'refs/heads/main', Permission: 1 },
    ]);
  });

  it('logs requests without signatures, and reset() drops entries, faults and log', async () => {
    const id = await save('l', Buffer.from('l'));
    const log = service.requests();
    expect(log.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
      `POST ${TWIRP}CreateCacheEntry 200`,
      `PUT /devstoreaccount1/actions-cache/${id} 201`,
      `POST ${TWIRP}FinalizeCacheEntryUpload 200`,
    ]);
    service.setFaults({ twirp: { '*': { status: 500 } } });
    service.reset();
    expect([service.entries(), service.requests()]).toEqual([[], []]);
    expect(await save('l', Buffer.from('l'))).toBeGreaterThan(id); // ids are never reused
  });

  it('seeds entries and refuses a duplicate seed or an unknown id', () => {
    const e = service.seedEntry({ key: 's', version: 'v1', data: Buffer.from('raw') });
    expect(e).toMatchObject({ key: 's', scope: 'refs/heads/main', sizeBytes: 3, finalized: true });
    expect(fs.readFileSync(e.file, 'utf8')).toBe('raw');
    expect(service.readEntry(e.id).toString()).toBe('raw');
    expect(() => service.seedEntry({ key: 's', version: 'v1', data: Buffer.from('x') })).toThrow(
      /already exists/,
    );
    expect(() => service.readEntry(9999)).toThrow(/9999/);
  });

  it('closes promptly with keep-alive and stalled connections open, and removes its own data', async () => {
    const own = await startCacheService();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-service-data-'));
    const kept = await startCacheService({ dataDir });
    const agents: http.Agent[] = [];
    try {
      for (const s of [own, kept]) {
        const agent = new http.Agent({ keepAlive: true });
        agents.push(agent);
        const res = await new Promise<http.IncomingMessage>((resolve) =>
          http.get(new URL('/nothing', s.url), { agent }, resolve),
        );
        res.resume();
        s.seedEntry({ key: 'k', version: 'v1', data: Buffer.from('k') });
      }
      const ownFile = own.entries()[0]?.file ?? '';
      own.setFaults({ download: { stallMs: 60_000 } });
      const stalled = rawGet(await downloadUrl('k', own));
      await new Promise((r) => setTimeout(r, 100));

      const t0 = Date.now();
      await Promise.all([own.close(), kept.close()]);
      expect(Date.now() - t0).toBeLessThan(2000);
      expect((await stalled).complete).toBe(false);
      expect(fs.existsSync(ownFile)).toBe(false);
      expect(fs.existsSync(kept.entries()[0]?.file ?? '')).toBe(true);
    } finally {
      for (const agent of agents) agent.destroy();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

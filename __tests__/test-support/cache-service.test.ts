/**
 * The loopback cache service against the real `@actions/cache` client, in-process: whatever the
 * client does on a runner (tar + zstd, Twirp calls, Azure SDK upload, plain GET download) it does
 * here against 127.0.0.1.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import * as cache from '@actions/cache';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import {
  startCacheService,
  type CacheService,
  type Scope,
} from '../../test-support/cache-service/index.js';

const PATHS = ['dist'];
const MAIN: Scope[] = [{ scope: 'refs/heads/main', permission: 3 }];
const PR: Scope[] = [
  { scope: 'refs/pull/7/merge', permission: 3 },
  { scope: 'refs/heads/main', permission: 1 },
];
const TWIRP = '/twirp/github.actions.results.api.v1.CacheService/';

let service: CacheService;
let root: string;
let workspace: string;
const savedCwd = process.cwd();
const savedEnv = { ...process.env };

beforeAll(async () => {
  service = await startCacheService();
});

afterAll(async () => {
  await service.close();
});

beforeEach(() => {
  service.reset();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cache-service-test-'));
  workspace = path.join(root, 'workspace');
  const runnerTemp = path.join(root, 'runner-temp');
  fs.mkdirSync(workspace);
  fs.mkdirSync(runnerTemp);
  for (const name of ['GITHUB_SERVER_URL', 'ACTIONS_CACHE_MODE', 'ACTIONS_CACHE_URL']) {
    Reflect.deleteProperty(process.env, name);
  }
  Object.assign(process.env, service.env(), {
    RUNNER_TEMP: runnerTemp,
    GITHUB_WORKSPACE: workspace,
  });
  process.chdir(workspace);
});

afterEach(() => {
  process.chdir(savedCwd);
  for (const name of Object.keys(process.env)) {
    if (!(name in savedEnv)) Reflect.deleteProperty(process.env, name);
  }
  Object.assign(process.env, savedEnv);
  fs.rmSync(root, { recursive: true, force: true });
});

function useToken(scopes: Scope[]): void {
  process.env['ACTIONS_RUNTIME_TOKEN'] = service.token(scopes);
}

/** Replace `dist/` with these files. */
function writeDist(files: Record<string, string | Buffer>): void {
  const dist = path.join(workspace, 'dist');
  fs.rmSync(dist, { recursive: true, force: true });
  for (const [rel, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dist, rel)), { recursive: true });
    fs.writeFileSync(path.join(dist, rel), data);
  }
}

function removeDist(): void {
  fs.rmSync(path.join(workspace, 'dist'), { recursive: true, force: true });
}

/** Every file under `dist/` by relative path, with its sha256. */
function readDist(): Record<string, string> {
  const dist = path.join(workspace, 'dist');
  const out: Record<string, string> = {};
  if (!fs.existsSync(dist)) return out;
  for (const rel of fs.readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
    const full = path.join(dist, rel);
    if (fs.statSync(full).isFile()) out[rel] = sha256File(full);
  }
  return out;
}

function sha256File(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 * 1024 * 1024);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function digestsOf(files: Record<string, string | Buffer>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rel, data] of Object.entries(files)) {
    out[rel] = createHash('sha256').update(data).digest('hex');
  }
  return out;
}

function twirpCalls(method: string): number[] {
  return service
    .requests()
    .filter((r) => r.path === `${TWIRP}${method}`)
    .map((r) => r.status);
}

describe('loopback cache service with the real @actions/cache client', () => {
  it('saves and restores an exact key, byte-identical', async () => {
    const files = { 'a.txt': 'hello\n', 'sub/b.bin': randomBytes(50_000), 'sub/empty': '' };
    writeDist(files);

    const id = await cache.saveCache(PATHS, 'exact-1');
    expect(id).toBeGreaterThan(0);
    const [entry] = service.entries();
    expect(entry).toMatchObject({ id, key: 'exact-1', scope: 'refs/heads/main', finalized: true });
    expect(service.readEntry(id).length).toBe(entry?.sizeBytes);

    removeDist();
    expect(await cache.restoreCache(PATHS, 'exact-1')).toBe('exact-1');
    expect(readDist()).toEqual(digestsOf(files));

    const blobCalls = service.requests().filter((r) => !r.path.startsWith('/twirp/'));
    expect(blobCalls.map((r) => [r.method, r.path, r.status])).toEqual([
      ['PUT', `/devstoreaccount1/actions-cache/${id}`, 201],
      ['GET', `/devstoreaccount1/actions-cache/${id}`, 200],
    ]);
  });

  it('falls back to the newest entry with a matching prefix, restore keys in order', async () => {
    writeDist({ 'v.txt': 'old' });
    expect(await cache.saveCache(PATHS, 'build-linux-aaa')).toBeGreaterThan(0);
    writeDist({ 'v.txt': 'new' });
    expect(await cache.saveCache(PATHS, 'build-linux-bbb')).toBeGreaterThan(0);

    removeDist();
    expect(await cache.restoreCache(PATHS, 'build-linux-zzz', ['build-linux-'])).toBe(
      'build-linux-bbb',
    );
    expect(readDist()).toEqual(digestsOf({ 'v.txt': 'new' }));

    // The primary key itself is used as a prefix too.
    expect(await cache.restoreCache(PATHS, 'build-linux-', [], { lookupOnly: true })).toBe(
      'build-linux-bbb',
    );
    // Restore keys are tried in order; an exact restore key wins over a newer prefix match.
    removeDist();
    expect(
      await cache.restoreCache(PATHS, 'build-mac-zzz', ['build-mac-', 'build-linux-aaa']),
    ).toBe('build-linux-aaa');
    expect(readDist()).toEqual(digestsOf({ 'v.txt': 'old' }));
    // Different paths give a different version: no match at all.
    expect(await cache.restoreCache(['other'], 'build-linux-', [], { lookupOnly: true })).toBe(
      undefined,
    );
  });

  it('answers a duplicate save with 409: the client returns -1 and the first entry stays', async () => {
    writeDist({ 'v.txt': 'first' });
    const first = await cache.saveCache(PATHS, 'dup');
    expect(first).toBeGreaterThan(0);
    writeDist({ 'v.txt': 'second' });
    await expect(cache.saveCache(PATHS, 'dup')).resolves.toBe(-1);

    expect(twirpCalls('CreateCacheEntry')).toEqual([200, 409]);
    expect(service.entries().map((e) => e.id)).toEqual([first]);
    removeDist();
    expect(await cache.restoreCache(PATHS, 'dup')).toBe('dup');
    expect(readDist()).toEqual(digestsOf({ 'v.txt': 'first' }));
  });

  it("scopes entries by branch: a PR reads main's entries, main cannot read the PR's", async () => {
    useToken(MAIN);
    writeDist({ 'v.txt': 'main' });
    expect(await cache.saveCache(PATHS, 'scoped-main')).toBeGreaterThan(0);

    useToken(PR);
    removeDist();
    expect(await cache.restoreCache(PATHS, 'scoped-main')).toBe('scoped-main');
    expect(readDist()).toEqual(digestsOf({ 'v.txt': 'main' }));
    writeDist({ 'v.txt': 'pr' });
    expect(await cache.saveCache(PATHS, 'scoped-pr')).toBeGreaterThan(0);
    // The PR's own scope is searched first, even though main has a matching entry too.
    expect(await cache.restoreCache(PATHS, 'scoped-', [], { lookupOnly: true })).toBe('scoped-pr');

    useToken(MAIN);
    expect(await cache.restoreCache(PATHS, 'scoped-pr', [], { lookupOnly: true })).toBe(undefined);
    expect(await cache.restoreCache(PATHS, 'scoped-', [], { lookupOnly: true })).toBe(
      'scoped-main',
    );

    const scopes = Object.fromEntries(service.entries().map((e) => [e.key, e.scope]));
    expect(scopes).toEqual({ 'scoped-main': 'refs/heads/main', 'scoped-pr': 'refs/pull/7/merge' });
  });

  it('takes an archive over 128 MiB as staged blocks plus a block list and restores it', async () => {
    // Random data so the zstd archive stays over the SDK's 128 MiB single-shot limit.
    const dist = path.join(workspace, 'dist');
    fs.mkdirSync(dist);
    const fd = fs.openSync(path.join(dist, 'big.bin'), 'w');
    const chunk = Buffer.allocUnsafe(8 * 1024 * 1024);
    for (let i = 0; i < 17; i++) fs.writeSync(fd, randomFillSync(chunk));
    fs.closeSync(fd);
    const before = readDist();

    const id = await cache.saveCache(PATHS, 'big');
    expect(id).toBeGreaterThan(0);
    const puts = service.requests().filter((r) => r.method === 'PUT');
    const blocks = puts.filter((r) => r.path.includes('comp=block&'));
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.every((r) => r.status === 201)).toBe(true);
    expect(puts.filter((r) => r.path.endsWith('comp=blocklist'))).toHaveLength(1);
    expect(puts).toHaveLength(blocks.length + 1);
    expect(service.entries()[0]?.sizeBytes).toBeGreaterThan(128 * 1024 * 1024);

    removeDist();
    expect(await cache.restoreCache(PATHS, 'big')).toBe('big');
    expect(readDist()).toEqual(before);
  });

  it('treats a 429 on lookup as a miss, without retrying or throwing', async () => {
    writeDist({ 'v.txt': 'x' });
    expect(await cache.saveCache(PATHS, 'limited')).toBeGreaterThan(0);

    service.setFaults({ twirp: { GetCacheEntryDownloadURL: { status: 429, count: 1 } } });
    await expect(cache.restoreCache(PATHS, 'limited')).resolves.toBe(undefined);
    expect(twirpCalls('GetCacheEntryDownloadURL')).toEqual([429]);
    // The fault was used up: the next lookup hits.
    expect(await cache.restoreCache(PATHS, 'limited', [], { lookupOnly: true })).toBe('limited');
  });

  it('recovers from one 503 on CreateCacheEntry through the client retry', async () => {
    service.setFaults({ twirp: { '*': { status: 503, count: 1 } } });
    writeDist({ 'v.txt': 'x' });
    expect(await cache.saveCache(PATHS, 'retried')).toBeGreaterThan(0);
    expect(twirpCalls('CreateCacheEntry')).toEqual([503, 200]);
    expect(twirpCalls('FinalizeCacheEntryUpload')).toEqual([200]);
  });

  it('stores nothing when every blob PUT fails with 500 (save returns -1)', async () => {
    service.setFaults({ blobPut: { status: 500 } });
    writeDist({ 'v.txt': 'x' });
    await expect(cache.saveCache(PATHS, 'put-fails')).resolves.toBe(-1);
    expect(service.entries().filter((e) => e.finalized)).toEqual([]);
    expect(twirpCalls('FinalizeCacheEntryUpload')).toEqual([]);
    const puts = service.requests().filter((r) => r.method === 'PUT');
    expect(puts.length).toBeGreaterThan(1); // the SDK retried
    expect(puts.every((r) => r.status === 500)).toBe(true);
    service.setFaults({});
    expect(await cache.restoreCache(PATHS, 'put-fails', [], { lookupOnly: true })).toBe(undefined);
  });

  it('does not report a hit when the download is truncated', async () => {
    writeDist({ 'v.txt': randomBytes(20_000) });
    expect(await cache.saveCache(PATHS, 'cut')).toBeGreaterThan(0);
    removeDist();

    service.setFaults({ download: { truncateAt: 1000, count: 1 } });
    await expect(cache.restoreCache(PATHS, 'cut')).resolves.toBe(undefined);
    expect(readDist()).toEqual({});
    const gets = service.requests().filter((r) => r.method === 'GET');
    expect(gets).toHaveLength(1);
  });

  it('creates no entry for a read-only token (cache write denied)', async () => {
    useToken([{ scope: 'refs/heads/main', permission: 1 }]);
    writeDist({ 'v.txt': 'x' });
    await expect(cache.saveCache(PATHS, 'read-only')).resolves.toBe(-1);
    expect(service.entries()).toEqual([]);
    expect(twirpCalls('CreateCacheEntry')).toEqual([200]);
    expect(service.requests().filter((r) => r.method === 'PUT')).toEqual([]);
  });
});

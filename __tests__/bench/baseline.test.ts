/**
 * The baseline of `npm run bench -- action` (bench/baseline/): run as the runner runs an action
 * (test-support/runner), it really saves and restores through the loopback cache service, on
 * both download paths `@actions/cache` has: a plain GET, and the Azure SDK's ranged GETs for
 * `*.blob.core.windows.net` URLs (reached through the service acting as the proxy).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';
import { Job } from '../../test-support/runner.js';
import { REPO } from '../../test-support/world.js';

const BASELINE = path.join(REPO, 'bench', 'baseline');

describe('the actions/cache baseline action', () => {
  let root: string;
  let service: CacheService;
  const files: Record<string, Buffer> = {
    'out/a.txt': Buffer.from('hello\n'),
    'out/sub/b.bin': randomBytes(9 * 1024 * 1024), // incompressible: three 4 MiB Azure ranges
  };

  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-baseline-'));
    service = await startCacheService({ dataDir: path.join(root, 'service') });
  });
  afterAll(async () => {
    await service.close();
    await fs.rm(root, { recursive: true, force: true });
  });

  async function workspace(name: string, withFiles: boolean): Promise<string> {
    const ws = path.join(root, name);
    await fs.mkdir(ws, { recursive: true });
    if (withFiles) {
      for (const [rel, data] of Object.entries(files)) {
        await fs.mkdir(path.dirname(path.join(ws, rel)), { recursive: true });
        await fs.writeFile(path.join(ws, rel), data);
      }
    }
    return ws;
  }

  async function job(ws: string, inputs: Record<string, string>, env: Record<string, string> = {}) {
    const j = new Job({ workspace: ws, env: { ...service.env(), ...env } });
    const main = await j.uses(BASELINE, inputs, 'cache');
    const [post] = await j.finish();
    return { main, post };
  }

  it('misses, then saves in post', async () => {
    const ws = await workspace('cold', true);
    const { main, post } = await job(ws, { key: 'deps-1', path: 'out' });
    expect(main.exitCode).toBe(0);
    expect(main.outputs['cache-hit']).toBe('false');
    expect(post?.exitCode).toBe(0);
    expect(post?.annotations).toEqual([]);
    const saved = service.entries().filter((e) => e.finalized);
    expect(saved.map((e) => e.key)).toEqual(['deps-1']);
    expect(saved[0]?.sizeBytes).toBeGreaterThan(0);
  });

  it('restores on an exact hit with a plain GET and does not save again', async () => {
    const ws = await workspace('plain', false);
    const requestsBefore = service.requests().length;
    const { main, post } = await job(ws, { key: 'deps-1', path: 'out' });
    expect(main.outputs['cache-hit']).toBe('true');
    for (const [rel, data] of Object.entries(files)) {
      expect((await fs.readFile(path.join(ws, rel))).equals(data)).toBe(true);
    }
    expect(post?.stdout).toContain('not saving cache');
    expect(service.entries().filter((e) => e.finalized)).toHaveLength(1);
    const blobCalls = service
      .requests()
      .slice(requestsBefore)
      .filter((r) => r.path.startsWith('/devstoreaccount1/'));
    expect(blobCalls.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200']);
  });

  it('restores through a restore key on the Azure SDK path, then saves the new key', async () => {
    const ws = await workspace('azure', false);
    service.setDownloadOrigin('http://clydebench.blob.core.windows.net');
    const requestsBefore = service.requests().length;
    try {
      const { main, post } = await job(
        ws,
        { key: 'deps-2', path: 'out', 'restore-keys': 'deps-' },
        service.proxyEnv(),
      );
      expect(main.exitCode).toBe(0);
      expect(main.outputs['cache-hit']).toBe('false');
      for (const [rel, data] of Object.entries(files)) {
        expect((await fs.readFile(path.join(ws, rel))).equals(data)).toBe(true);
      }
      const blobCalls = service
        .requests()
        .slice(requestsBefore)
        .filter((r) => r.path.startsWith('/devstoreaccount1/') && r.method !== 'PUT');
      expect(blobCalls[0]?.method).toBe('HEAD');
      expect(blobCalls.slice(1).every((r) => r.method === 'GET' && r.status === 206)).toBe(true);
      expect(post?.exitCode).toBe(0);
      expect(
        service
          .entries()
          .filter((e) => e.finalized)
          .map((e) => e.key),
      ).toEqual(['deps-1', 'deps-2']);
    } finally {
      service.setDownloadOrigin(undefined);
    }
  });
});

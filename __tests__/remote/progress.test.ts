/**
 * Progress lines of a long transfer (src/remote/progress.ts), and the download's own lines
 * (twirp.download) against a loopback service that sends slowly.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Progress } from '../../src/remote/progress.js';
import { download } from '../../src/remote/transfer.js';
import { cacheVersion, lookup } from '../../src/remote/twirp.js';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';

/** Resolves once `cond` holds (checked every 5 ms). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
}

describe('Progress', () => {
  it('logs bytes, total, share and rate every interval, then a last line', async () => {
    const lines: string[] = [];
    const p = new Progress('Downloading k', 4 * 1024 * 1024, (l) => lines.push(l), 10);
    p.add(1024 * 1024);
    await until(() => lines.length >= 1);
    p.add(3 * 1024 * 1024);
    p.done();
    p.done();
    expect(lines[0]).toMatch(
      /^Downloading k: 1\.0 MiB of 4\.0 MiB \(25\.0%\), [\d.]+ [KMG]?i?B\/s$/,
    );
    expect(lines.at(-1)).toMatch(/^Downloading k: 4\.0 MiB of 4\.0 MiB \(100\.0%\), /);
    const count = lines.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(lines).toHaveLength(count); // stopped
  });

  it('without a total: bytes and rate', async () => {
    const lines: string[] = [];
    const p = new Progress('Uploading k', undefined, (l) => lines.push(l), 10);
    p.add(2048);
    await until(() => lines.length >= 1);
    p.done();
    expect(lines[0]).toMatch(/^Uploading k: 2\.0 KiB, [\d.]+ [KMG]?i?B\/s$/);
  });

  it('a transfer that ends before the first interval prints nothing', () => {
    const lines: string[] = [];
    const p = new Progress('Downloading k', 10, (l) => lines.push(l), 60_000);
    p.add(10);
    p.done();
    expect(lines).toEqual([]);
  });
});

describe('download progress', () => {
  const KEY = 'clyde-demo-linux-x64-default-progress';
  const DATA = randomBytes(8 * 1024);
  let service: CacheService;
  let dir: string;
  beforeAll(async () => {
    service = await startCacheService();
    service.seedEntry({ key: KEY, version: cacheVersion(), data: DATA });
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-progress-'));
  });
  afterAll(async () => {
    await service.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a slow download logs its progress while it lasts', async () => {
    const e = service.env();
    const env = {
      baseUrl: e['ACTIONS_RESULTS_URL'] ?? '',
      token: e['ACTIONS_RUNTIME_TOKEN'] ?? '',
    };
    const hit = await lookup(env, KEY, []);
    // 1 KiB every 40 ms: eight pieces, several intervals of 25 ms.
    service.setFaults({ download: { trickle: { bytes: 1024, everyMs: 40 } } });
    const lines: string[] = [];
    const bytes = await download(
      hit!.url,
      path.join(dir, 'a'),
      { bytes: 1024 ** 2, reason: 'a test budget' },
      {
        progress: {
          label: `Downloading ${KEY}`,
          intervalMs: 25,
          log: (l: string) => lines.push(l),
        },
      },
    );
    expect(bytes).toBe(DATA.length);
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) {
      expect(l).toMatch(new RegExp(`^Downloading ${KEY}: .* of 8\\.0 KiB \\([\\d.]+%\\), .*/s$`));
    }
    expect(lines.at(-1)).toMatch(/8\.0 KiB of 8\.0 KiB \(100\.0%\)/);
  });
});

/**
 * The lookup and download half of the protocol against the loopback cache service: error bodies
 * that are not Twirp's keep their message; a download is bounded by its low-speed limit and by
 * its overall deadline, and leaves no partial file behind.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deadline } from '../../src/remote/deadline.js';
import { cacheVersion, download, lookup, type ServiceEnv } from '../../src/remote/twirp.js';
import { startCacheService, type CacheService } from '../../test-support/cache-service/index.js';

const KEY = 'clyde-demo-linux-x64-default-abc';
const DATA = randomBytes(8 * 1024);

let service: CacheService;
let env: ServiceEnv;
let dir: string;

beforeAll(async () => {
  service = await startCacheService();
  const e = service.env();
  env = { baseUrl: e['ACTIONS_RESULTS_URL'] ?? '', token: e['ACTIONS_RUNTIME_TOKEN'] ?? '' };
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'clyde-twirp-'));
});
afterAll(async () => {
  await service.close();
  await fs.rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  service.reset();
  service.seedEntry({ key: KEY, version: cacheVersion('gzip'), data: DATA });
});

async function url(): Promise<string> {
  const hit = await lookup(env, KEY, [], 'gzip');
  if (!hit) throw new Error('the seeded entry was not found');
  return hit.url;
}

describe('service errors', () => {
  it('keep the message of a JSON body that is not Twirp’s, and Twirp’s own', async () => {
    service.setFaults({
      twirp: {
        GetCacheEntryDownloadURL: { status: 401, body: '{"message":"Bad credentials"}' },
      },
    });
    await expect(lookup(env, KEY, [], 'gzip')).rejects.toThrow(
      'GetCacheEntryDownloadURL answered HTTP 401: Bad credentials',
    );
    service.setFaults({ twirp: { GetCacheEntryDownloadURL: { status: 403 } } });
    await expect(lookup(env, KEY, [], 'gzip')).rejects.toThrow(
      /HTTP 403: permission_denied injected fault: 403/,
    );
  });
});

describe('download limits', () => {
  const speed = { bytesPerSecond: 4096, windowMs: 400 };

  it('a download faster than the low-speed limit completes', async () => {
    const dest = path.join(dir, 'fast');
    await expect(download(await url(), dest, { speed })).resolves.toBe(DATA.length);
    expect(await fs.readFile(dest)).toEqual(DATA);
  });

  it('a trickle below the low-speed limit is cut, leaving no file', async () => {
    const u = await url();
    service.setFaults({ download: { trickle: { bytes: 16, everyMs: 25 } } });
    const dest = path.join(dir, 'trickle');
    await expect(download(u, dest, { speed })).rejects.toThrow(
      /the download went slower than 4096 bytes\/s/,
    );
    await expect(fs.stat(dest)).rejects.toThrow();
  });

  it('a trickle fast enough for the speed limit is cut by the overall deadline', async () => {
    const u = await url();
    service.setFaults({ download: { trickle: { bytes: 512, everyMs: 50 } } });
    const dest = path.join(dir, 'slow');
    const limit = deadline(300, 'the download');
    await expect(
      download(u, dest, { signal: limit.signal, speed: { bytesPerSecond: 1, windowMs: 60_000 } }),
    ).rejects.toThrow(/the download did not finish within 0.3 s/);
    await expect(fs.stat(dest)).rejects.toThrow();
  });
});

describe('cacheVersion across OSes (the cross-os input)', () => {
  it('Windows entries have a version of their own unless cross-os is set', () => {
    for (const c of ['zstd-without-long', 'gzip'] as const) {
      const linux = cacheVersion(c, 'linux');
      expect(cacheVersion(c, 'darwin')).toBe(linux);
      expect(cacheVersion(c, 'win32')).not.toBe(linux);
      expect(cacheVersion(c, 'win32', true)).toBe(linux);
      expect(cacheVersion(c, 'linux', true)).toBe(linux);
    }
  });
});

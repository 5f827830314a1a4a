/**
 * The protocol against the loopback cache service: error bodies that are not Twirp's keep their
 * message; a download comes in parallel ranges, is bounded by its low-speed limit, its overall
 * deadline and its size budget, and leaves no partial file behind; an upload goes as one PUT or
 * as blocks and a block list, and reserving an existing key is not a failure.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deadline } from '../../src/remote/deadline.js';
import { DOWNLOAD_STREAMS, download, RANGE_BYTES, upload } from '../../src/remote/transfer.js';
import {
  cacheVersion,
  finalize,
  layerKey,
  lookup,
  MAX_KEY_LENGTH,
  parseRemoteKey,
  reserve,
  type ServiceEnv,
} from '../../src/remote/twirp.js';
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
  service.seedEntry({ key: KEY, version: cacheVersion(), data: DATA });
});

async function url(): Promise<string> {
  const hit = await lookup(env, KEY, []);
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
    await expect(lookup(env, KEY, [])).rejects.toThrow(
      'GetCacheEntryDownloadURL answered HTTP 401: Bad credentials',
    );
    service.setFaults({ twirp: { GetCacheEntryDownloadURL: { status: 403 } } });
    await expect(lookup(env, KEY, [])).rejects.toThrow(
      /HTTP 403: permission_denied injected fault: 403/,
    );
  });
});

const BUDGET = { bytes: 1024 ** 3, reason: 'the test budget' };

describe('download', () => {
  const speed = { bytesPerSecond: 4096, windowMs: 400 };

  it('comes in parallel ranges, byte-identical', async () => {
    const data = randomBytes(RANGE_BYTES * 2 + 12345);
    service.seedEntry({ key: 'big', version: cacheVersion(), data });
    const hit = await lookup(env, 'big', []);
    const dest = path.join(dir, 'ranges');
    const before = service.requests().length;
    await expect(download(hit?.url ?? '', dest, BUDGET)).resolves.toBe(data.length);
    expect((await fs.readFile(dest)).equals(data)).toBe(true);
    const gets = service
      .requests()
      .slice(before)
      .filter((r) => r.method === 'GET');
    expect(gets).toHaveLength(Math.min(3, DOWNLOAD_STREAMS));
  });

  it('refuses an entry larger than its budget before writing anything', async () => {
    const dest = path.join(dir, 'budget');
    await expect(
      download(await url(), dest, { bytes: DATA.length - 1, reason: 'a small budget' }),
    ).rejects.toThrow(/more than a small budget; not downloading it/);
    await expect(fs.stat(dest)).rejects.toThrow();
  });

  it('a range cut short is fetched again; one cut short every time fails, leaving no file', async () => {
    const data = randomBytes(RANGE_BYTES + 1000);
    service.seedEntry({ key: 'cut', version: cacheVersion(), data });
    const u = (await lookup(env, 'cut', []))?.url ?? '';
    service.setFaults({ download: { truncateAt: 100, count: 1 } });
    const dest = path.join(dir, 'cut');
    await expect(download(u, dest, BUDGET)).resolves.toBe(data.length);
    expect((await fs.readFile(dest)).equals(data)).toBe(true);
    service.setFaults({ download: { truncateAt: 100 } });
    await expect(download(u, dest, BUDGET)).rejects.toThrow(/download/);
    await expect(fs.stat(dest)).rejects.toThrow();
  });

  it('a download faster than the low-speed limit completes', async () => {
    const dest = path.join(dir, 'fast');
    await expect(download(await url(), dest, BUDGET, { speed })).resolves.toBe(DATA.length);
    expect(await fs.readFile(dest)).toEqual(DATA);
  });

  it('a trickle below the low-speed limit is cut, leaving no file', async () => {
    const u = await url();
    service.setFaults({ download: { trickle: { bytes: 16, everyMs: 25 } } });
    const dest = path.join(dir, 'trickle');
    await expect(download(u, dest, BUDGET, { speed })).rejects.toThrow(
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
      download(u, dest, BUDGET, {
        signal: limit.signal,
        speed: { bytesPerSecond: 1, windowMs: 60_000 },
      }),
    ).rejects.toThrow(/the download did not finish within 0.3 s/);
    await expect(fs.stat(dest)).rejects.toThrow();
  });
});

describe('upload', () => {
  // Small thresholds: 1 MiB in one PUT, above it blocks of 256 KiB.
  const sizes = { singlePut: 1024 * 1024, block: 256 * 1024 };
  /** The file as an upload's source. */
  const fileSource = (file: string, bytes: number) => ({
    bytes,
    pieces: () => createReadStream(file, { highWaterMark: 100 * 1024 }),
  });
  for (const [label, size] of [
    ['one PUT', 1000],
    ['blocks and a block list', sizes.singlePut + 300 * 1024],
  ] as const) {
    it(`${label}: the entry reads back byte-identical`, async () => {
      const data = randomBytes(size);
      const file = path.join(dir, `up-${size}`);
      await fs.writeFile(file, data);
      const r = await reserve(env, `up-${size}`);
      if (!r) throw new Error('not reserved');
      const before = service.requests().length;
      await expect(upload(r.uploadUrl, fileSource(file, size), {}, sizes)).resolves.toBe(size);
      const puts = service
        .requests()
        .slice(before)
        .filter((q) => q.method === 'PUT');
      expect(puts).toHaveLength(size > sizes.singlePut ? 6 + 1 : 1);
      await finalize(env, `up-${size}`, r, size);
      const entry = service.entries().find((e) => e.key === `up-${size}`);
      expect(entry?.version).toBe(cacheVersion());
      expect(service.readEntry(entry?.id ?? -1).equals(data)).toBe(true);
    });
  }

  it('reserving a key saved already answers undefined, not an error', async () => {
    await expect(reserve(env, KEY)).resolves.toBeUndefined();
  });

  it('a block refused once (a 500) is sent again, and the entry is whole', async () => {
    const data = randomBytes(700 * 1024);
    const file = path.join(dir, 'retried');
    await fs.writeFile(file, data);
    const r = await reserve(env, 'retried');
    service.setFaults({ blobPut: { status: 500, count: 1 } });
    await upload(
      r?.uploadUrl ?? '',
      fileSource(file, data.length),
      {},
      {
        singlePut: 100 * 1024,
        block: 256 * 1024,
      },
    );
    await finalize(env, 'retried', r!, data.length);
    const entry = service.entries().find((e) => e.key === 'retried');
    expect(service.readEntry(entry?.id ?? -1).equals(data)).toBe(true);
  });

  it('a PUT refused every time fails with the status', async () => {
    const file = path.join(dir, 'refused');
    await fs.writeFile(file, 'x');
    const r = await reserve(env, 'refused');
    service.setFaults({ blobPut: { status: 403 } });
    await expect(upload(r?.uploadUrl ?? '', fileSource(file, 1))).rejects.toThrow(/HTTP 403/);
  });

  for (const [how, singlePut] of [
    ['one PUT', 1024 * 1024],
    ['blocks', 100 * 1024],
  ] as const) {
    it(`a source that fails midway commits nothing (${how})`, async () => {
      const key = `torn-${how}`;
      const r = await reserve(env, key);
      const before = service.requests().length;
      async function* torn(): AsyncGenerator<Buffer> {
        for (let i = 0; i < 5; i++) yield randomBytes(100 * 1024);
        throw new Error('blob 1234 is corrupt');
      }
      const source = { bytes: 600 * 1024, pieces: torn };
      await expect(
        upload(r?.uploadUrl ?? '', source, {}, { singlePut, block: 128 * 1024 }),
      ).rejects.toThrow(/blob 1234 is corrupt/);
      const puts = service
        .requests()
        .slice(before)
        .filter((q) => q.method === 'PUT');
      expect(puts.some((q) => q.path.includes('comp=blocklist'))).toBe(false);
      await expect(finalize(env, key, r!, source.bytes)).rejects.toThrow();
    });

    it(`a source shorter than it said commits nothing (${how})`, async () => {
      const key = `short-${how}`;
      const r = await reserve(env, key);
      const source = {
        bytes: 600 * 1024,
        pieces: async function* () {
          yield randomBytes(500 * 1024);
        },
      };
      await expect(
        upload(r?.uploadUrl ?? '', source, {}, { singlePut, block: 128 * 1024 }),
      ).rejects.toThrow(/ended at 512000 of its 614400 bytes/);
      await expect(finalize(env, key, r!, source.bytes)).rejects.toThrow();
    });
  }
});

describe('cacheVersion across OSes (the cross-os input)', () => {
  it('Windows entries have a version of their own unless cross-os is set', () => {
    const linux = cacheVersion('linux');
    expect(cacheVersion('darwin')).toBe(linux);
    expect(cacheVersion('win32')).not.toBe(linux);
    expect(cacheVersion('win32', true)).toBe(linux);
    expect(cacheVersion('linux', true)).toBe(linux);
  });
});

describe('layer keys', () => {
  const k = `clyde-app-linux_x64-default-${'a'.repeat(64)}`;
  const b = `clyde-app-linux_x64-default-${'b'.repeat(64)}`;

  it('name the base, and read back as the entry and its base', () => {
    const layer = layerKey(k, b) ?? '';
    expect(layer.startsWith(k)).toBe(true);
    expect(parseRemoteKey(layer)).toEqual({ key: k, base: b });
    expect(parseRemoteKey(k)).toEqual({ key: k });
  });

  it('are not made when too long for the service, or over a layer', () => {
    expect(layerKey(k, 'x'.repeat(MAX_KEY_LENGTH))).toBeUndefined();
    expect(layerKey(k, layerKey(b, k) ?? '')).toBeUndefined();
  });

  it('a lookup of the key finds its layer, as the entry itself with its base', async () => {
    service.seedEntry({ key: layerKey(k, b) ?? '', version: cacheVersion(), data: DATA });
    const hit = await lookup(env, k, []);
    expect(hit).toMatchObject({ matchedKey: k, base: b, remoteKey: layerKey(k, b) });
  });
});

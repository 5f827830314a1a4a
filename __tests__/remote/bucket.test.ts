/**
 * The bucket tier against a real S3-compatible server (test-support/bucket: s3rver) with the
 * real SDK and a real local store: what the bucket hands back is untrusted. The pack a restore
 * fetches is taken as main takes it (restorePack, then adoptPacks): a tampered blob, a blob
 * longer than its entry lists, an entry holding another key's header and an entry that declares
 * more bytes than any restore takes are refused before anything reaches the store or the
 * workspace, the fetched pack removed; the bucket inputs are parsed into one form or refused naming the input.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { InputError } from '../../src/errors.js';
import { parseBucket } from '../../src/inputs.js';
import { openBucketClient, type BucketClient } from '../../src/remote/bucket-client.js';
import {
  BucketTier,
  decodeEntry,
  encodeEntry,
  MULTIPART_PART_BYTES,
  MULTIPART_THRESHOLD,
  type BucketConfig,
} from '../../src/remote/bucket.js';
import { LocalStore, type OutputRoot } from '../../src/store/index.js';
import { sha256 } from '../../src/util/bytes.js';
import {
  startBucketServer,
  TEST_BUCKET,
  type BucketServer,
} from '../../test-support/bucket/index.js';
import { restoreAndAdopt } from '../../test-support/store/take-pack.js';
import { sandbox, type Sandbox } from '../store/helpers.js';

let server: BucketServer;
let config: BucketConfig;
let client: BucketClient;
let sb: Sandbox;
let prefixes = 0;

beforeAll(async () => {
  server = await startBucketServer();
  Object.assign(process.env, server.env());
});

afterAll(async () => {
  await server?.close();
});

beforeEach(async () => {
  server.reset();
  sb = await sandbox();
  config = {
    name: TEST_BUCKET,
    prefix: `unit-${++prefixes}/`,
    endpoint: server.endpoint,
    region: 'us-east-1',
    pathStyle: true,
  };
  client = openBucketClient(config);
  return async () => sb.cleanup();
});

const env = { GITHUB_REF: 'refs/heads/main' };
const signal = (): AbortSignal => AbortSignal.timeout(30_000);

/** Saves `files` as the entry `key` in a store of its own and uploads it; returns the tier. */
async function uploaded(key: string, files: Record<string, Buffer>): Promise<BucketTier> {
  const src = path.join(sb.base, `src-${key}`);
  await fs.mkdir(path.join(src, 'out'), { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    await fs.writeFile(path.join(src, 'out', name), data);
  }
  const store = await LocalStore.open(path.join(sb.base, `store-${key}`));
  await store.save({
    key,
    package: 'p',
    version: '1',
    hash: sha256(key),
    platform: 'linux',
    variant: 'default',
    roots: [{ name: 'out', absPath: path.join(src, 'out') }],
  });
  const tier = new BucketTier(config, 30_000, client, env);
  const r = await tier.save(store, key, undefined, sb.base);
  expect(r.status).toBe('saved');
  return tier;
}

async function entryObject(key: string): Promise<string> {
  return `${config.prefix}entries/${encodeURIComponent('refs/heads/main')}/${encodeURIComponent(key)}`;
}

async function readObject(key: string): Promise<Buffer> {
  const got = await client.get(key, signal());
  const chunks: Buffer[] = [];
  for await (const c of got?.body ?? []) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

/**
 * The pack of `key` fetched as main fetches it (a fresh store's copy where it has one), then
 * restored and adopted as main takes a download; its file is removed at the end, as main's.
 */
async function take(
  tier: BucketTier,
  store: LocalStore,
  key: string,
  roots: readonly OutputRoot[],
): Promise<number> {
  const { packs, bytes } = await tier.fetchPack(
    { matchedKey: key, scope: 'refs/heads/main' },
    store,
    sb.base,
  );
  try {
    expect(packs.map((p) => p.key)).toEqual([key]);
    await restoreAndAdopt(store, packs[0]!.file, key, { roots });
    return bytes;
  } finally {
    for (const p of packs) await fs.rm(p.file, { force: true });
  }
}

/** The files of sb.base a fetch left behind (its pack files). */
async function leftPacks(): Promise<string[]> {
  return (await fs.readdir(sb.base)).filter((n) => n.includes('bucket-pack'));
}

/**
 * Restoring `key` into a fresh store fails with `message`: the store holds no entry, nothing
 * was written to the workspace, and no pack file is left.
 */
async function refused(tier: BucketTier, key: string, message: RegExp): Promise<void> {
  const store = await LocalStore.open(
    path.join(sb.base, `fresh-${randomBytes(4).toString('hex')}`),
  );
  const out = path.join(sb.ws, 'out');
  await fs.mkdir(out, { recursive: true });
  await fs.writeFile(path.join(out, 'keep.txt'), 'keep');
  await expect(take(tier, store, key, [{ name: 'out', absPath: out }])).rejects.toThrow(message);
  expect(await store.list()).toEqual([]);
  expect(await fs.readdir(sb.ws)).toEqual(['out']);
  expect(await fs.readdir(out)).toEqual(['keep.txt']);
  expect(await leftPacks()).toEqual([]);
}

describe('bucket entries are untrusted', () => {
  it('restores a whole entry into a fresh store, verified', async () => {
    const files = { 'a.o': randomBytes(100_000), 'b.txt': Buffer.from('hello\n'.repeat(5000)) };
    const tier = await uploaded('k-ok', files);
    const store = await LocalStore.open(path.join(sb.base, 'fresh'));
    const restored = path.join(sb.ws, 'restored');
    const downloaded = await take(tier, store, 'k-ok', [{ name: 'out', absPath: restored }]);
    expect(downloaded).toBeGreaterThan(0);
    expect(await leftPacks()).toEqual([]);
    // restored from the pack, and written through: the store restores it too
    const dest = path.join(sb.ws, 'out');
    await store.restore('k-ok', [{ name: 'out', absPath: dest }]);
    for (const [name, data] of Object.entries(files)) {
      expect((await fs.readFile(path.join(restored, name))).equals(data)).toBe(true);
      expect((await fs.readFile(path.join(dest, name))).equals(data)).toBe(true);
    }
    // A second restore copies every blob from the store instead: nothing is downloaded.
    const again = path.join(sb.ws, 'again');
    expect(await take(tier, store, 'k-ok', [{ name: 'out', absPath: again }])).toBe(0);
  });

  it('a blob whose bytes were changed in the bucket is refused', async () => {
    const tier = await uploaded('k-tampered', { 'a.o': randomBytes(100_000) });
    const entry = decodeEntry(await readObject(await entryObject('k-tampered')));
    const blob = entry.blobs[0]!;
    const blobKey = `${config.prefix}blobs/${blob.digest.slice(0, 2)}/${blob.digest}`;
    const bytes = await readObject(blobKey);
    const at = bytes.length - 10;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 0xff, at);
    await client.put(blobKey, bytes, signal());
    await refused(tier, 'k-tampered', /corrupt|digest|checksum|frame/i);
  });

  it('a blob longer than its entry lists is refused while it downloads', async () => {
    const tier = await uploaded('k-long', { 'a.o': randomBytes(100_000) });
    const entry = decodeEntry(await readObject(await entryObject('k-long')));
    const blob = entry.blobs[0]!;
    const blobKey = `${config.prefix}blobs/${blob.digest.slice(0, 2)}/${blob.digest}`;
    await client.put(
      blobKey,
      Buffer.concat([await readObject(blobKey), randomBytes(5000)]),
      signal(),
    );
    await refused(tier, 'k-long', /longer than listed/);
  });

  it("an entry holding another key's header is refused", async () => {
    const tier = await uploaded('k-real', { 'a.o': randomBytes(80_000) });
    const body = await readObject(await entryObject('k-real'));
    await client.put(await entryObject('k-other'), body, signal());
    await refused(tier, 'k-other', /holds 'k-real', not 'k-other'/);
  });

  it('an entry declaring more than any restore takes is refused before a blob is fetched', async () => {
    const tier = await uploaded('k-huge', { 'a.o': randomBytes(80_000) });
    const entry = decodeEntry(await readObject(await entryObject('k-huge')));
    const lies = [1, 2, 3].map((i) => ({ digest: `${i}`.repeat(64), bytes: 4 * 1024 ** 3 }));
    await client.put(await entryObject('k-huge'), encodeEntry(lies, entry.header), signal());
    server.setFaults([{ match: /\/blobs\//, status: 500 }]); // a blob fetch would fail otherwise
    await refused(tier, 'k-huge', /declares .* of blobs/);
    server.reset();
  });

  it('a large blob goes up in parts; a connection dropped mid-part is retried', async () => {
    const big = randomBytes(MULTIPART_THRESHOLD + MULTIPART_PART_BYTES + 12345);
    const drop = { match: /^PUT .*partNumber=2/, count: 1, dropAfterBytes: 64 * 1024 };
    server.setFaults([drop]);
    const tier = await uploaded('k-big', { 'big.bin': big });
    expect(drop.count).toBe(0);
    const parts = server.requests().filter((l) => /^PUT .*partNumber=\d+/.test(l));
    expect(new Set(parts.map((l) => /partNumber=(\d+)/.exec(l)?.[1])).size).toBe(
      Math.ceil(big.length / MULTIPART_PART_BYTES),
    );
    const store = await LocalStore.open(path.join(sb.base, 'fresh-big'));
    const dest = path.join(sb.ws, 'out');
    await take(tier, store, 'k-big', [{ name: 'out', absPath: dest }]);
    expect((await fs.readFile(path.join(dest, 'big.bin'))).equals(big)).toBe(true);
    expect((await store.get('k-big'))?.files).toBe(1);
  });

  it('malformed entry objects are refused by their structure', () => {
    expect(() => decodeEntry(Buffer.from('not an entry'))).toThrow(/bad magic/);
    const ok = encodeEntry([{ digest: 'ab'.repeat(32), bytes: 10 }], Buffer.from('CLYDEPK\n'));
    expect(decodeEntry(ok).blobs).toHaveLength(1);
    const truncated = ok.subarray(0, ok.length - 20);
    expect(() => decodeEntry(truncated)).toThrow(/cannot hold them|no pack header/);
  });
});

describe('bucket inputs', () => {
  const read = (inputs: Record<string, string>) => (name: string) => inputs[name] ?? '';

  it.each([
    [
      { bucket: 's3://my-cache' },
      { name: 'my-cache', prefix: '', endpoint: '', region: '', pathStyle: false },
    ],
    [
      {
        bucket: 's3://my.cache/ci//linux/',
        'bucket-endpoint': 'http://minio:9000/',
        'bucket-path-style': 'true',
        'bucket-region': 'auto',
      },
      {
        name: 'my.cache',
        prefix: 'ci/linux/',
        endpoint: 'http://minio:9000',
        region: 'auto',
        pathStyle: true,
      },
    ],
  ])('%j is read as one configuration', (inputs, expected) => {
    expect(parseBucket(read(inputs))).toEqual(expected);
  });

  it('no bucket: no tier', () => {
    expect(parseBucket(read({}))).toBeUndefined();
  });

  it.each([
    [{ bucket: 'my-cache' }, 'bucket', /s3:\/\/name\/prefix/],
    [{ bucket: 's3://My_Cache' }, 'bucket', /lower-case/],
    [{ bucket: 's3://ok-name/../x' }, 'bucket', /'\.\.'/],
    [
      { bucket: 's3://ok-name', 'bucket-endpoint': 'minio:9000' },
      'bucket-endpoint',
      /http\(s\) URL/,
    ],
    [{ bucket: 's3://ok-name', 'bucket-region': 'US East' }, 'bucket-region', /us-east-1/],
    [{ 'bucket-endpoint': 'http://x' }, 'bucket', /is empty/],
    [{ bucket: 's3://ok-name', 'bucket-path-style': 'yes please' }, 'bucket-path-style', /true/],
  ])('%j is refused naming %s', (inputs, input, message) => {
    let err: unknown;
    try {
      parseBucket(read(inputs));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    expect((err as Error).message).toContain(`'${input}'`);
    expect((err as Error).message).toMatch(message);
  });
});

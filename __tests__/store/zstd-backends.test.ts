/**
 * The store workers' zstd backends (zstd-napi, node:zlib): each reads the other's frames,
 * whole and streamed, and refuses what does not hold exactly the content it must, without
 * producing more of it than that. Through the workers' own operations (worker-decode.ts).
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import {
  BACKEND_ENV,
  nativeBindingPath,
  STREAM_AT,
  storeWorkerPath,
  WorkerPool,
  type Backend,
} from '../../src/store/pool.js';
import type { StoreReply, StoreWorkerData } from '../../src/store/worker-protocol.js';
import { sha256 } from '../../src/util/bytes.js';
import { zerosFrame } from '../../test-support/sizes.js';
import { zstdFrame } from '../../test-support/store/zstd.js';
import { withSandbox, type Sandbox } from './helpers.js';

const pools = new Map<Backend, WorkerPool>();
function poolOf(backend: Backend): WorkerPool {
  let p = pools.get(backend);
  if (p === undefined) pools.set(backend, (p = new WorkerPool(1, backend)));
  return p;
}
afterAll(async () => {
  for (const p of pools.values()) await p.close();
});

const BACKENDS = ['native', 'node'] as const;

/** Plants `frame` as blob `name` in the sandbox's store directories and verifies it. */
async function verify(
  sb: Sandbox,
  backend: Backend,
  frame: Buffer,
  size: number,
  name = 'a'.repeat(64),
  members: { digest: string; offset: number; size: number }[] = [],
): Promise<null> {
  const dirs = { blobDir: path.join(sb.store, 'blobs'), tmpDir: path.join(sb.store, 'tmp') };
  const file = path.join(dirs.blobDir, name.slice(0, 2), name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, frame);
  return poolOf(backend).run('verifyBlobs', { dirs, blobs: [{ name, size, members }] });
}

describe("the workers' zstd backends", () => {
  it('report their names', async () => {
    expect(await poolOf('native').backend()).toBe('zstd-napi');
    expect(await poolOf('node').backend()).toBe('node:zlib');
  });

  it('each verifies the frames of either, and a group’s members', () =>
    withSandbox(async (sb) => {
      const samples = [Buffer.alloc(0), Buffer.from('hello, clyde'), randomBytes(200_000)];
      samples.push(Buffer.alloc(1_000_000, 'abc'));
      for (const backend of BACKENDS) {
        for (const writer of BACKENDS) {
          for (const s of samples) {
            await expect(
              verify(sb, backend, zstdFrame(s, writer), s.length, sha256(s)),
            ).resolves.toBe(null);
          }
        }
        const group = Buffer.from('aaaabbbb');
        const members = [
          { digest: sha256('bbbb'), offset: 4, size: 4 },
          { digest: sha256('aaaa'), offset: 0, size: 4 },
        ];
        const frame = zstdFrame(group);
        await expect(verify(sb, backend, frame, 8, sha256(group), members)).resolves.toBe(null);
        const wrong = [{ digest: sha256('aaaa'), offset: 4, size: 4 }];
        await expect(verify(sb, backend, frame, 8, sha256(group), wrong)).rejects.toThrow(
          /grouped file .* does not match its digest/,
        );
        await expect(verify(sb, backend, frame, 8, sha256('other'))).rejects.toThrow(
          /content does not match its digest/,
        );
      }
    }));

  it('each streams frames back to back (a chunked blob), with a checksum and a skippable frame', () =>
    withSandbox(async (sb) => {
      const content = Buffer.concat([randomBytes(300_000), Buffer.alloc(STREAM_AT, 'xyz')]);
      const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
      const frames = Buffer.concat([
        zstdFrame(content.subarray(0, 1_000_000), 'native'),
        skippable,
        zlib.zstdCompressSync(content.subarray(1_000_000), {
          params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 },
        }),
      ]);
      const name = sha256(content);
      for (const backend of BACKENDS) {
        await expect(verify(sb, backend, frames, content.length, name)).resolves.toBe(null);
        // cut short, or a byte changed
        const cut = frames.subarray(0, frames.length - 5);
        await expect(verify(sb, backend, cut, content.length, name)).rejects.toMatchObject({
          kind: 'corrupt',
        });
        const bad = Buffer.from(frames);
        bad[bad.length - 2] = (bad[bad.length - 2] as number) ^ 0xff;
        await expect(verify(sb, backend, bad, content.length, name)).rejects.toMatchObject({
          kind: 'corrupt',
        });
      }
    }));

  it('refuse a frame that holds more (a zstd bomb), or less, than its size, whole and streamed', () =>
    withSandbox(async (sb) => {
      // 1 GiB of zeros in 32 KiB of frame.
      const bomb = zerosFrame(1024 ** 3);
      const small = zstdFrame(Buffer.alloc(100_000, 7));
      for (const backend of BACKENDS) {
        for (const size of [1024 * 1024, STREAM_AT]) {
          await expect(verify(sb, backend, bomb, size)).rejects.toMatchObject({
            kind: 'size',
            message: expect.stringMatching(new RegExp(`holds more than ${size} bytes`)),
          });
          await expect(verify(sb, backend, small, size)).rejects.toMatchObject({
            kind: 'size',
            message: expect.stringMatching(/holds 100000 bytes, expected/),
          });
          await expect(
            verify(sb, backend, Buffer.from('not zstd at all'), size),
          ).rejects.toMatchObject({ kind: 'corrupt' });
          await expect(verify(sb, backend, Buffer.alloc(0), size)).rejects.toThrow(/blob a+/);
        }
      }
    }));

  it('compress redundant content', async () => {
    for (const backend of BACKENDS) {
      const data = new Uint8Array(Buffer.alloc(1_000_000, 'abc'));
      const r = await poolOf(backend).run('compressChunk', {
        dirs: { blobDir: '', tmpDir: '' },
        data,
        out: new Uint8Array(1_100_000),
        length: data.length,
        name: '',
      });
      expect(r.raw).toBe(false);
      expect(r.length).toBeLessThan(10_000);
    }
  });

  it('a worker whose binary will not load uses node:zlib; CLYDE_ZSTD_BACKEND=node finds none', async () => {
    const workerData: StoreWorkerData = { binding: '/nonexistent/binding.node' };
    const worker = new Worker(storeWorkerPath(), { workerData });
    try {
      const first = await new Promise<StoreReply>((resolve) => worker.once('message', resolve));
      expect(first).toEqual({ type: 'ready', backend: 'node:zlib' });
    } finally {
      await worker.terminate();
    }
    const before = process.env[BACKEND_ENV];
    try {
      delete process.env.CLYDE_ZSTD_BACKEND;
      expect(nativeBindingPath()).toBeDefined();
      process.env[BACKEND_ENV] = 'node';
      expect(nativeBindingPath()).toBeUndefined();
      expect(nativeBindingPath('native')).toBeDefined();
    } finally {
      if (before === undefined) delete process.env.CLYDE_ZSTD_BACKEND;
      else process.env[BACKEND_ENV] = before;
    }
  });
});

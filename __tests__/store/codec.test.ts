import { describe, it, expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import {
  BACKEND_ENV,
  createCodec,
  loadCodec,
  PIECE_BYTES,
  type Codec,
} from '../../src/store/codec.js';
import { zerosFrame } from '../../test-support/sizes.js';

/** `buf` in pieces of `n` bytes, as a file read would give it. */
async function* piecesOf(buf: Buffer, n: number): AsyncGenerator<Buffer> {
  for (let o = 0; o < buf.length; o += n) yield buf.subarray(o, o + n);
}

/** What decompressStream hands out: the content and the largest piece. */
async function streamed(
  c: Codec,
  frame: Buffer,
  size: number,
): Promise<{ content: Buffer; largest: number }> {
  const parts: Buffer[] = [];
  let largest = 0;
  await c.decompressStream(piecesOf(frame, 1000), size, (p) => {
    parts.push(Buffer.from(p));
    largest = Math.max(largest, p.length);
  });
  return { content: Buffer.concat(parts), largest };
}

const samples: Buffer[] = [
  Buffer.alloc(0),
  Buffer.from('hello, clyde'),
  randomBytes(200_000),
  Buffer.alloc(1_000_000, 'abc'),
];

describe('codec', () => {
  it('the two backends read each other’s frames', async () => {
    const native = await createCodec('native');
    const node = await createCodec('node');
    expect(native.name).toBe('zstd-napi');
    expect(node.name).toBe('node:zlib');
    for (const s of samples) {
      expect(node.decompress(native.compress(s), s.length).equals(s)).toBe(true);
      expect(native.decompress(node.compress(s), s.length).equals(s)).toBe(true);
    }
  });

  it('compresses redundant content', async () => {
    for (const c of [await createCodec('native'), await createCodec('node')]) {
      expect(c.compress(Buffer.alloc(1_000_000, 'abc')).length).toBeLessThan(10_000);
    }
  });

  it('refuses a frame that holds more or less than the expected size', async () => {
    for (const c of [await createCodec('native'), await createCodec('node')]) {
      const frame = c.compress(Buffer.alloc(100_000, 7));
      expect(() => c.decompress(frame, 10)).toThrow(/bytes/);
      expect(() => c.decompress(frame, 200_000)).toThrow(/bytes/);
      expect(() => c.decompress(Buffer.from('not zstd at all'), 5)).toThrow();
    }
  });

  it('decompresses a stream of frames in bounded pieces, with either backend', async () => {
    const native = await createCodec('native');
    const node = await createCodec('node');
    const content = Buffer.concat([randomBytes(300_000), Buffer.alloc(3_000_000, 'xyz')]);
    // Frames back to back, as a chunked blob is: one with a checksum, a skippable frame.
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
    const frames = Buffer.concat([
      native.compress(content.subarray(0, 1_000_000)),
      skippable,
      zlib.zstdCompressSync(content.subarray(1_000_000), {
        params: { [zlib.constants.ZSTD_c_checksumFlag]: 1 },
      }),
    ]);
    for (const c of [native, node]) {
      const { content: got, largest } = await streamed(c, frames, content.length);
      expect(got.equals(content)).toBe(true);
      expect(largest).toBeLessThanOrEqual(PIECE_BYTES);
      const empty = await streamed(c, c.compress(Buffer.alloc(0)), 0);
      expect(empty.content.length).toBe(0);
    }
  });

  it('stops a stream as soon as it holds more than the expected size (a zstd bomb)', async () => {
    // 1 GiB of zeros in 32 KiB of frame, expected to hold 1 MiB.
    const bomb = zerosFrame(1024 ** 3);
    for (const c of [await createCodec('native'), await createCodec('node')]) {
      let handed = 0;
      await expect(
        c.decompressStream(piecesOf(bomb, 4096), 1024 * 1024, (p) => {
          handed += p.length;
        }),
      ).rejects.toThrow(/more than 1048576 bytes/);
      expect(handed).toBeLessThanOrEqual(1024 * 1024);
      // Short, truncated, or not zstd at all.
      const frame = c.compress(Buffer.alloc(100_000, 7));
      await expect(streamed(c, frame, 200_000)).rejects.toThrow(/bytes/);
      await expect(streamed(c, frame.subarray(0, frame.length - 5), 100_000)).rejects.toThrow();
      await expect(streamed(c, Buffer.from('not zstd at all'), 5)).rejects.toThrow();
    }
  });

  it('CLYDE_ZSTD_BACKEND=node forces the fallback, memoised', async () => {
    const before = process.env[BACKEND_ENV];
    process.env[BACKEND_ENV] = 'node';
    try {
      const a = await loadCodec();
      expect(a.name).toBe('node:zlib');
      process.env[BACKEND_ENV] = 'native';
      expect(await loadCodec()).toBe(a);
    } finally {
      if (before === undefined) delete process.env.CLYDE_ZSTD_BACKEND;
      else process.env[BACKEND_ENV] = before;
    }
  });
});

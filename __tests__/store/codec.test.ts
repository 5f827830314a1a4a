import { describe, it, expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { BACKEND_ENV, createCodec, loadCodec } from '../../src/store/codec.js';

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

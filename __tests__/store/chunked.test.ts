/**
 * Large files are stored as several independent zstd frames in one blob (chunked.ts). Every
 * decoder must read such a blob through: both libraries one-shot, node:zlib's stream, the
 * workers' restore and verification with either backend (each streams it: zstd-napi's decoder
 * reads frame after frame, node:zlib's gets a decoder per frame) and the zstd CLI where it is
 * installed.
 */
import { describe, it, expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { createZstdDecompress } from 'node:zlib';
import { CHUNK_BYTES } from '../../src/store/chunked.js';
import { LocalStore } from '../../src/store/index.js';
import { STREAM_AT } from '../../src/store/pool.js';
import { requestFor } from '../../test-support/store/fixtures.js';
import { zstdContent } from '../../test-support/store/zstd.js';
import { withSandbox } from './helpers.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Compressible text with one incompressible chunk in the middle (a raw frame among others). */
function content(): Buffer {
  const lines: string[] = [];
  for (let i = 0; lines.length * 40 < STREAM_AT + 2 * CHUNK_BYTES; i++) {
    lines.push(`line ${i} of a large build output ${i % 97}\n`);
  }
  const text = Buffer.from(lines.join(''));
  const noise = randomBytes(CHUNK_BYTES);
  return Buffer.concat([text.subarray(0, 2 * CHUNK_BYTES), noise, text.subarray(2 * CHUNK_BYTES)]);
}

async function streamDecode(file: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(
    createReadStream(file),
    createZstdDecompress(),
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        parts.push(chunk);
        cb();
      },
    }),
  );
  return Buffer.concat(parts);
}

describe('a large file stored as independent frames', () => {
  it('every decoder reads the multi-frame blob, and the store restores it', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await fs.mkdir(out, { recursive: true });
      const data = content();
      expect(data.length).toBeGreaterThanOrEqual(STREAM_AT);
      await fs.writeFile(path.join(out, 'large.log'), data);
      const digest = sha(data);
      const store = await LocalStore.open(sb.store);
      await store.save(requestFor('k', out));
      const blob = path.join(sb.store, 'blobs', digest.slice(0, 2), digest);
      const frames = await fs.readFile(blob);
      expect(frames.length).toBeLessThan(data.length / 2);

      for (const backend of ['native', 'node'] as const) {
        expect(sha(zstdContent(frames, backend))).toBe(digest);
      }
      expect(sha(await streamDecode(blob))).toBe(digest);
      const cli = spawnSync('zstd', ['-lv', blob], { encoding: 'utf8' });
      if (cli.status === 0) {
        const n = /# Zstandard Frames\s*:\s*(\d+)/.exec(cli.stdout)?.[1];
        expect(Number(n)).toBe(Math.ceil(data.length / CHUNK_BYTES));
        const dec = spawnSync('zstd', ['-d', '-c', blob], { maxBuffer: 2 * data.length });
        expect(sha(dec.stdout)).toBe(digest);
      }

      // The workers of either backend restore it (streamed, frame after frame) and verify it.
      for (const backend of ['native', 'node'] as const) {
        const reader = await LocalStore.open(sb.store, { backend });
        const dest = path.join(sb.base, backend, 'out');
        await reader.restore('k', [{ name: 'out', absPath: dest }]);
        expect(sha(await fs.readFile(path.join(dest, 'large.log')))).toBe(digest);
        expect((await reader.verify({ deep: true })).ok).toBe(true);
      }
    }));

  it('a file that grows while it is saved is reported, never stored under a wrong name', () =>
    withSandbox(async (sb) => {
      const out = path.join(sb.ws, 'out');
      await fs.mkdir(out, { recursive: true });
      const file = path.join(out, 'large.log');
      await fs.writeFile(file, content());
      const { putChunked } = await import('../../src/store/chunked.js');
      const { sharedPool } = await import('../../src/store/pool.js');
      const st = await fs.stat(file);
      await fs.mkdir(path.join(sb.store, 'tmp'), { recursive: true });
      await fs.mkdir(path.join(sb.store, 'blobs'), { recursive: true });
      const dirs = { blobDir: path.join(sb.store, 'blobs'), tmpDir: path.join(sb.store, 'tmp') };
      // The walk saw a smaller file than the one read.
      await expect(putChunked(sharedPool(), dirs, file, st.size - 10)).rejects.toThrow(/changed/);
      expect(await fs.readdir(dirs.tmpDir)).toEqual([]);
      expect(await fs.readdir(dirs.blobDir)).toEqual([]);
    }));
});

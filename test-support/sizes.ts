/**
 * Entries that declare sizes they should not be trusted with, built cheaply: zstd frames of
 * zeros made of RLE blocks (4 GiB of content in 128 KiB of frame) and tar archives whose one
 * member declares gigabytes. Nothing here holds the declared content in memory.
 */
import { once } from 'node:events';
import { createWriteStream, promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import tarStream from 'tar-stream';
import type { Compression } from '../src/remote/twirp.js';
import { packOf as packBytes } from './store/tables.js';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
/** Frame header: no content size, no checksum, single segment off, a 128 KiB window. */
const FRAME_HEADER = Buffer.concat([ZSTD_MAGIC, Buffer.from([0x00, 0x38])]);
const BLOCK = 128 * 1024;

function blockHeader(size: number, type: 0 | 1, last: boolean): Buffer {
  const v = size * 8 + type * 2 + (last ? 1 : 0);
  return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}

/**
 * One zstd frame: `prefix` as a raw block (at most 128 KiB), then `zeros` zero bytes as RLE
 * blocks of 128 KiB (4 bytes each).
 */
export function zerosFrame(zeros: number, prefix: Buffer = Buffer.alloc(0)): Buffer {
  const parts: Buffer[] = [FRAME_HEADER];
  if (prefix.length > BLOCK) throw new Error('zerosFrame: prefix too long');
  if (prefix.length > 0 || zeros === 0) {
    parts.push(blockHeader(prefix.length, 0, zeros === 0), prefix);
  }
  const rle = Buffer.concat([blockHeader(BLOCK, 1, false), Buffer.from([0])]);
  for (let left = zeros; left > 0; left -= BLOCK) {
    if (left > BLOCK) parts.push(rle);
    else parts.push(blockHeader(left, 1, true), Buffer.from([0]));
  }
  return Buffer.concat(parts);
}

/** A ustar header for a regular file `name` of `size` bytes (below 8 GiB). */
export function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (off: number, len: number, s: string): void => {
    h.write(s, off, len, 'latin1');
  };
  const octal = (n: number, len: number): string => `${n.toString(8).padStart(len - 1, '0')}\0`;
  put(0, 100, name);
  put(100, 8, octal(0o644, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(size, 12));
  put(136, 12, octal(1_600_000_000, 12));
  put(148, 8, '        ');
  put(156, 1, '0');
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/**
 * A tar bomb: an archive (compressed as the runner cache would) whose one member, `name`,
 * declares `size` bytes, all zeros. With zstd it is built from RLE blocks (about 32 KiB per
 * GiB); with gzip, streamed through the compressor.
 */
export async function tarBomb(
  compression: Compression,
  name: string,
  size: number,
  dest: string,
): Promise<void> {
  // The member, its padding to 512 bytes, and the two zero blocks that end a tar.
  const zeros = Math.ceil(size / 512) * 512 + 1024;
  const header = tarHeader(name, size);
  if (compression !== 'gzip') {
    await fs.writeFile(dest, zerosFrame(zeros, header));
    return;
  }
  const chunk = Buffer.alloc(1024 * 1024);
  async function* body(): AsyncGenerator<Buffer> {
    yield header;
    for (let left = zeros; left > 0; left -= chunk.length) {
      yield left >= chunk.length ? chunk : chunk.subarray(0, left);
    }
  }
  await pipeline(Readable.from(body()), zlib.createGzip({ level: 9 }), createWriteStream(dest));
}

/** The archive (compressed as the runner cache would) holding `pack` as its one member. */
export async function archiveOf(compression: Compression, pack: Buffer): Promise<Buffer> {
  const tar = tarStream.pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c) => chunks.push(c as Buffer));
  const done = once(tar, 'end');
  tar.entry({ name: 'clyde.pack', mode: 0o644 }, pack);
  tar.finalize();
  await done;
  const raw = Buffer.concat(chunks);
  return compression === 'gzip' ? zlib.gzipSync(raw) : zlib.zstdCompressSync(raw);
}

/** The pack inside a (small) archive that the runner cache holds. */
export async function packOf(compression: Compression, archive: Buffer): Promise<Buffer> {
  const raw = compression === 'gzip' ? zlib.gunzipSync(archive) : zlib.zstdDecompressSync(archive);
  const extract = tarStream.extract();
  let pack: Buffer | undefined;
  extract.on('entry', (_header, stream, next) => {
    const parts: Buffer[] = [];
    stream.on('data', (c) => parts.push(c as Buffer));
    stream.on('end', () => {
      pack = Buffer.concat(parts);
      next();
    });
  });
  const done = once(extract, 'finish');
  extract.end(raw);
  await done;
  if (pack === undefined) throw new Error('packOf: the archive holds no member');
  return pack;
}

/** A pack's meta and table (pack.ts), and the manifest the table describes. */
export { packHeader } from './store/tables.js';

/** A pack of `header` (its manifest made into a table) and the frames given (name -> frame). */
export function buildPack(
  header: { meta: unknown; manifest: unknown },
  blobs: readonly [string, Buffer][],
): Buffer {
  return packBytes(header, blobs);
}

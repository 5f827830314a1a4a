/**
 * Entries that declare sizes they should not be trusted with, built cheaply: zstd frames of
 * zeros made of RLE blocks (4 GiB of content in 128 KiB of frame). Nothing here holds the
 * declared content in memory.
 */
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

/** A pack's meta and table (pack.ts), and the manifest the table describes. */
export { packHeader } from './store/tables.js';

/** A pack of `header` (its manifest made into a table) and the frames given (name -> frame). */
export function buildPack(
  header: { meta: unknown; manifest: unknown },
  blobs: readonly [string, Buffer][],
): Buffer {
  return packBytes(header, blobs);
}

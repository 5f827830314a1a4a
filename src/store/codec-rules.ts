/**
 * The compression rules every writer of blobs follows: the store's workers (store-worker.ts),
 * which do all compressing and decoding, and the tests that build frames by hand. Pure: no
 * backend is loaded here.
 */

export const LEVEL = 3;
/**
 * Level 3 with smaller match tables than its own (hash 2^17, chain 2^16): these fit a core's L2
 * cache, which makes compression about 7% faster for about 1% more bytes on the store
 * benchmark's tree (measured with zstd-napi, both backends use the same library).
 */
export const HASH_LOG = 16;
export const CHAIN_LOG = 15;

/** A compressed blob must save at least this fraction, or the content is stored as it is. */
export const MIN_SAVING = 0.03;
/** Content shorter than this is stored as it is: a frame header costs more than it saves. */
export const MIN_COMPRESS_BYTES = 64;
/** Names whose content is compressed already: stored as it is, without trying. */
export const STORED_AS_IS =
  /\.(gz|tgz|zip|jar|whl|zst|xz|txz|bz2|br|7z|rar|png|jpe?g|gif|webp|avif|woff2?|mp[34]|mkv|webm|ogg)$/i;

/** Whether content of `length` bytes named `name` ('' for none) is worth compressing at all. */
export function worthCompressing(length: number, name: string): boolean {
  return length >= MIN_COMPRESS_BYTES && !STORED_AS_IS.test(name);
}

/**
 * Room for the frame of `length` bytes of content, compressed (zstd's bound) or in raw blocks,
 * with margin: the output buffer `compressChunk` writes into.
 */
export function frameRoom(length: number): number {
  return length + (length >> 7) + 1024;
}

/** Whether a compressed frame of `frameLength` bytes saves enough over `length` bytes of content. */
export function keepsFrame(frameLength: number, length: number): boolean {
  return frameLength <= length * (1 - MIN_SAVING);
}

/**
 * Incompressible content is stored "as it is" inside a zstd frame made of raw blocks: every
 * zstd decoder reads it (so blobs stay plain zstd frames, and pack export, import and
 * verification need no marker), and decoding it is a memory copy. Header: magic, a frame
 * descriptor with no content size, no checksum and no dictionary, and a 128 KiB window.
 */
export const RAW_FRAME_HEADER = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]);
export const RAW_BLOCK_MAX = 128 * 1024;

function rawBlockHeader(size: number, last: boolean): Buffer {
  const v = (size << 3) | (last ? 1 : 0); // block type 0 (raw) in bits 1-2
  return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}

/** `content` as the pieces of a zstd frame of raw (uncompressed) blocks, in order. */
export function rawFrameParts(content: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [RAW_FRAME_HEADER];
  if (content.length === 0) parts.push(rawBlockHeader(0, true));
  for (let off = 0; off < content.length; off += RAW_BLOCK_MAX) {
    const end = Math.min(content.length, off + RAW_BLOCK_MAX);
    parts.push(rawBlockHeader(end - off, end === content.length), content.subarray(off, end));
  }
  return parts;
}

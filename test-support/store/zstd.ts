/**
 * zstd frames for tests, made with either backend the store's workers use (zstd-napi or Node's
 * node:zlib) at the store's level and match tables: blobs planted in a store, frames of a pack
 * built by hand. The store itself compresses only in its workers (pool.ts).
 */
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import {
  CHAIN_LOG,
  HASH_LOG,
  LEVEL,
  RAW_FRAME_HEADER,
  rawFrameParts,
} from '../../src/store/codec-rules.js';

export type FrameBackend = 'native' | 'node';

interface Napi {
  compress(
    data: Uint8Array,
    p: { compressionLevel: number; hashLog: number; chainLog: number },
  ): Buffer;
  decompress(data: Uint8Array): Buffer;
}

let napi: Napi | undefined;

function loadNapi(): Napi {
  napi ??= createRequire(import.meta.url)('zstd-napi') as Napi;
  return napi;
}

/** The content of `frames` (one or more zstd frames) as `backend`'s one-shot decoder reads it. */
export function zstdContent(frames: Uint8Array, backend: FrameBackend = 'native'): Buffer {
  return backend === 'node' ? zlib.zstdDecompressSync(frames) : loadNapi().decompress(frames);
}

/** `content` as one zstd frame written by `backend` (zstd-napi by default). */
export function zstdFrame(content: string | Uint8Array, backend: FrameBackend = 'native'): Buffer {
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  if (backend === 'node') {
    return zlib.zstdCompressSync(buf, {
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: LEVEL,
        [zlib.constants.ZSTD_c_hashLog]: HASH_LOG,
        [zlib.constants.ZSTD_c_chainLog]: CHAIN_LOG,
      },
    });
  }
  return loadNapi().compress(buf, {
    compressionLevel: LEVEL,
    hashLog: HASH_LOG,
    chainLog: CHAIN_LOG,
  });
}

/** `content` as a zstd frame of raw (uncompressed) blocks, as the store writes incompressible content. */
export function rawFrame(content: Uint8Array): Buffer {
  return Buffer.concat(rawFrameParts(content));
}

/** True when `frame` is a raw-block frame (content stored as it is). */
export function isRawFrame(frame: Uint8Array): boolean {
  return frame.length >= 6 && RAW_FRAME_HEADER.equals(frame.subarray(0, 6));
}

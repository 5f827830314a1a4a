/**
 * What the store worker's operations share (store-worker.ts, worker-write.ts, worker-decode.ts): the zstd
 * binding or node:zlib's parameters, the failure kinds the main thread tells apart, the current
 * job's directories and transfers, scratch buffers, and small I/O helpers. Imported only by the
 * worker thread's modules.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { threadId, workerData } from 'node:worker_threads';
import * as zlib from 'node:zlib';
import type * as Binding from 'zstd-napi/binding.js';
import { CHAIN_LOG, HASH_LOG, LEVEL } from './codec-rules.js';
import { blobPath as blobPathIn } from './blob-layout.js';
import type { PoolDirs, StoreWorkerData, WorkerFailureKind } from './worker-protocol.js';

export const CHUNK = 4 * 1024 * 1024;

/** A failure the main thread tells apart by kind (pool.ts WorkerOpError). */
export class OpFailure extends Error {
  constructor(
    readonly kind: WorkerFailureKind,
    message: string,
  ) {
    super(message);
  }
}

export function fail(kind: WorkerFailureKind, message: string): never {
  throw new OpFailure(kind, message);
}

export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export type Napi = typeof Binding;

/**
 * The native binary, loaded by its path as `require` would (process.dlopen): the bundler
 * leaves this alone, so the worker bundle carries no copy of zstd-napi of its own.
 */
function loadBinding(file: string | undefined): Napi | null {
  if (file === undefined) return null;
  try {
    const mod = { exports: {} as Napi };
    process.dlopen(mod, file);
    return mod.exports;
  } catch {
    return null;
  }
}

const data = workerData as StoreWorkerData;
export const napi = loadBinding(data.binding);
export interface NativeContexts {
  readonly cctx: Binding.CCtx;
  readonly dctx: Binding.DCtx;
}
export const native: NativeContexts | null =
  napi === null
    ? null
    : (() => {
        const cctx = new napi.CCtx();
        cctx.setParameter(napi.CParameter.compressionLevel, LEVEL);
        cctx.setParameter(napi.CParameter.hashLog, HASH_LOG);
        cctx.setParameter(napi.CParameter.chainLog, CHAIN_LOG);
        return { cctx, dctx: new napi.DCtx() };
      })();
export const zparams = {
  [zlib.constants.ZSTD_c_compressionLevel]: LEVEL,
  [zlib.constants.ZSTD_c_hashLog]: HASH_LOG,
  [zlib.constants.ZSTD_c_chainLog]: CHAIN_LOG,
};

/**
 * Restored content is written at most this much per write(): on the machines measured, writes
 * of 2 MiB and more filled the page cache ~10x slower than writes of 1 MiB or less (126 MB in
 * ~300 ms against ~30 ms; the kernel gives large writes large folios, and fresh memory is slow
 * to touch there), and small writes cost nothing measurable.
 */
const WRITE_PIECE = 512 * 1024;

/** Writes all of buf to fd in pieces of at most WRITE_PIECE. */
export function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.length) {
    off += fs.writeSync(fd, buf, off, Math.min(WRITE_PIECE, buf.length - off));
  }
}

/** The current job's directories and the buffers its reply hands back (moved, not copied). */
export const job: { dirs: PoolDirs; transfers: ArrayBuffer[] } = {
  dirs: { blobDir: '', tmpDir: '' },
  transfers: [],
};
let tmpSeq = 0;
export function tmpName(hint: string): string {
  return path.join(job.dirs.tmpDir, `${hint}-${process.pid}-${threadId}-${tmpSeq++}`);
}
export function blobPath(digest: string): string {
  return blobPathIn(job.dirs.blobDir, digest);
}
export function storedSize(digest: string): number {
  try {
    const st = fs.statSync(blobPath(digest));
    return st.isFile() ? st.size : -1;
  } catch {
    return -1;
  }
}

export function sha256Hex(data: Uint8Array): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

// Scratch buffers, reused: fresh memory is slow to touch on these machines.
let scratch = Buffer.allocUnsafe(0);
export function scratchOf(n: number): Buffer {
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2, 1 << 20));
  return scratch;
}

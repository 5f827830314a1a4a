/**
 * Large files (at least STREAM_AT) on the save side: the file is read here in order, in chunks,
 * and hashed as it is read (the blob's name is the sha256 of the whole file); each chunk goes to
 * the worker pool, where any idle worker compresses it into a zstd frame of its own; the frames
 * are written to one blob in order. Concatenated zstd frames are one valid zstd stream, which
 * every decoder we use (zstd-napi, node:zlib, the zstd CLI) reads through, so restore, packs and
 * verification read such a blob as they read any other.
 *
 * The bytes a worker compresses are the very bytes hashed here (the chunk buffer moves to the
 * worker and back, never re-read), so a file that changes meanwhile can never give a blob whose
 * content differs from its name; a size that differs from the walk's is reported as 'changed'.
 * A few buffer pairs circulate, so memory stays bounded whatever the file's size.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tempName } from '../util/fsx.js';
import { blobPath, fileSizeSync, injectedFault, renameInto } from './blob-layout.js';
import { frameRoom } from './codec-rules.js';
import { WorkerOpError, type PoolDirs, type WorkerPool } from './pool.js';
import type { ChunkResult } from './worker-protocol.js';

/** Content per frame. */
export const CHUNK_BYTES = 4 * 1024 * 1024;
/** Chunks out at once (two per worker keeps both busy while this thread reads and writes). */
const IN_FLIGHT = 4;

/** What storing one file did (the same shape as the workers' putFiles answers). */
export interface ChunkedPut {
  readonly digest: string;
  readonly size: number;
  readonly stored: number;
  readonly written: boolean;
  readonly raw: boolean;
}

interface Buffers {
  data: Uint8Array;
  out: Uint8Array;
}

/** A chunk's buffers: its content, and room for its frame. */
function newBuffers(): Buffers {
  return {
    data: new Uint8Array(CHUNK_BYTES),
    out: new Uint8Array(frameRoom(CHUNK_BYTES)),
  };
}

/** Stores the file `abs` (`size` bytes when walked) as a blob of independent frames. */
export async function putChunked(
  pool: WorkerPool,
  dirs: PoolDirs,
  abs: string,
  size: number,
): Promise<ChunkedPut> {
  injectedFault(dirs);
  const tmp = tempName(dirs.tmpDir, 'blob');
  const hash = createHash('sha256');
  const free: Buffers[] = [];
  const inflight: Promise<ChunkResult>[] = [];
  let pos = 0;
  let stored = 0;
  let raw = true;
  const src = await fs.open(abs, 'r');
  let out: fs.FileHandle | undefined;
  try {
    out = await fs.open(tmp, 'wx', 0o444);
    const sink = out;
    const drainOne = async (): Promise<void> => {
      const r = await (inflight.shift() as Promise<ChunkResult>);
      await sink.write(r.out, 0, r.length);
      stored += r.length;
      raw &&= r.raw;
      free.push({ data: r.data, out: r.out });
    };
    for (;;) {
      if (free.length === 0 && inflight.length >= IN_FLIGHT) await drainOne();
      const bufs = free.pop() ?? newBuffers();
      let n = 0;
      // A short read before the end of the file is possible: fill the chunk.
      while (n < CHUNK_BYTES) {
        const { bytesRead } = await src.read(bufs.data, n, CHUNK_BYTES - n, pos + n);
        if (bytesRead === 0) break;
        n += bytesRead;
      }
      if (n === 0) break;
      hash.update(bufs.data.subarray(0, n));
      pos += n;
      const job = pool.run(
        'compressChunk',
        { dirs, data: bufs.data, out: bufs.out, length: n, name: abs },
        CHUNK_BYTES,
        [bufs.data.buffer as ArrayBuffer, bufs.out.buffer as ArrayBuffer],
      );
      job.catch(() => {}); // awaited in order below, or settled in finally
      inflight.push(job);
      if (n < CHUNK_BYTES || pos > size) break;
    }
    while (inflight.length > 0) await drainOne();
  } catch (err) {
    await Promise.allSettled(inflight);
    await out?.close();
    out = undefined;
    await fs.rm(tmp, { force: true });
    throw err;
  } finally {
    await src.close();
    await out?.close();
  }
  if (pos !== size) {
    await fs.rm(tmp, { force: true });
    throw new WorkerOpError(`${abs} changed while it was being saved`, 'changed');
  }
  const digest = hash.digest('hex');
  // blob-layout.ts writeOrAdopt, steps 1 and 3, for a blob streamed to tmp/ first.
  const dest = blobPath(dirs.blobDir, digest);
  const existing = fileSizeSync(dest);
  if (existing !== undefined) {
    await fs.rm(tmp, { force: true });
    return { digest, size, stored: existing, written: false, raw };
  }
  try {
    renameInto(tmp, dest);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  return { digest, size, stored, written: true, raw };
}

/**
 * The blob layout, in one place: where a blob lives, and how it gets there. Every reader and
 * writer of blobs (blobs.ts, chunked.ts, the store's rooms, snapshot.ts, restore.ts and the
 * store worker) builds its paths here.
 *
 *   <root>/blobs/<aa>/<sha256>           a blob: one or more zstd frames (blobs.ts)
 *
 * `<aa>` is the digest's first two hex digits (256 shards keep directories small). This module
 * runs on the main thread and in the workers alike: it imports nothing of the store.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A blob's name: the sha256 of its content, in lower-case hex. */
export const BLOB_NAME = /^[0-9a-f]{64}$/;

/** Where blobs are written: their directory and the store's tmp/ (the same filesystem). */
export interface BlobDirs {
  readonly blobDir: string;
  readonly tmpDir: string;
  /**
   * Fault injection (tests only, from LocalStoreOptions.faults): blob writes of this thread
   * after this many fail with ENOSPC, as on a full disk.
   */
  readonly enospcAfter?: number;
}

/** The file of blob `digest` (not checked: callers hold a digest they computed or checked). */
export function blobPath(blobDir: string, digest: string): string {
  return path.join(blobDir, digest.slice(0, 2), digest);
}

/** The size of the blob file at `file`, or undefined when there is none. */
export function fileSizeSync(file: string): number | undefined {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/** Blob writes this thread has made (for `BlobDirs.enospcAfter`). */
let writes = 0;

/**
 * Writes blob `digest` from the frame `parts`, or adopts the one already there. This is the one
 * way a blob comes to be, and content addressing keeps it simple: a blob's name is the sha256 of
 * its content, so any complete file at its path holds what this write would.
 *
 * 1. Adopt: a blob already at the path (another save, process or worker wrote it first) is kept
 *    as it is and its size returned; nothing is written. Callers that compress check this first
 *    (`fileSizeSync`), so stored content costs no compression either.
 * 2. Write: the frame goes to a temp file of this writer's own in tmp/ (`tmp`: same filesystem
 *    as the blobs, so the rename below is atomic), created exclusively and read-only.
 * 3. Place (`renameInto`): the temp file is renamed over the blob's path, so a reader sees no blob
 *    or a whole one, never a part. Two writers racing both rename: the second replaces the
 *    first's file with the same bytes, which no reader can tell apart.
 *
 * On any failure (a full disk) the temp file is removed and the error thrown; nothing is left
 * half-written.
 */
export function writeOrAdopt(
  dirs: BlobDirs,
  digest: string,
  parts: readonly Uint8Array[],
  tmp: string,
): { stored: number; written: boolean } {
  const dest = blobPath(dirs.blobDir, digest);
  const existing = fileSizeSync(dest);
  if (existing !== undefined) return { stored: existing, written: false };
  injectedFault(dirs);
  let stored = 0;
  try {
    const fd = fs.openSync(tmp, 'wx', 0o444);
    try {
      for (const p of parts) stored += writeAll(fd, p);
    } finally {
      fs.closeSync(fd);
    }
    renameInto(tmp, dest);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { stored, written: true };
}

/**
 * Fault injection (tests): throws ENOSPC, as a full disk would, once this thread has written
 * `dirs.enospcAfter` blobs. Called where every blob write starts (here, and in chunked.ts).
 */
export function injectedFault(dirs: BlobDirs): void {
  if (dirs.enospcAfter !== undefined && writes++ >= dirs.enospcAfter) {
    throw Object.assign(new Error('ENOSPC: no space left on device, write (injected)'), {
      code: 'ENOSPC',
    });
  }
}

/**
 * Renames a finished temp file to `dest`, making dest's directory only when the rename finds it
 * missing: step 3 of `writeOrAdopt`, and of a blob streamed to tmp/ elsewhere (chunked.ts).
 */
export function renameInto(tmp: string, dest: string): void {
  try {
    renameRetrying(tmp, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    renameRetrying(tmp, dest);
  }
}

/**
 * Large writes go in pieces: one write of a large buffer costs far more than the same bytes in
 * pieces here (the kernel gives large writes large folios, slow to touch on these machines).
 */
const WRITE_PIECE = 512 * 1024;

function writeAll(fd: number, buf: Uint8Array): number {
  let off = 0;
  while (off < buf.length) {
    off += fs.writeSync(fd, buf, off, Math.min(WRITE_PIECE, buf.length - off));
  }
  return off;
}

/** util/fsx.ts's rename, synchronous: on Windows EPERM/EACCES/EBUSY retried for up to 60 s. */
export function renameRetrying(tmp: string, dest: string): void {
  const start = Date.now();
  let pause = 0;
  for (;;) {
    try {
      fs.renameSync(tmp, dest);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const busy = code === 'EPERM' || code === 'EACCES' || code === 'EBUSY';
      if (process.platform !== 'win32' || !busy || Date.now() - start >= 60000) throw err;
      pause = Math.min(pause + 10, 100);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pause);
    }
  }
}

/** [shard, name] of every name one level below the shards of `dir` (none when it is missing). */
export async function shardedNames(dir: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  let shards: string[];
  try {
    shards = await fs.promises.readdir(dir);
  } catch {
    return out;
  }
  for (const shard of shards) {
    try {
      for (const name of await fs.promises.readdir(path.join(dir, shard))) out.push([shard, name]);
    } catch {
      // not a directory, or gone meanwhile
    }
  }
  return out;
}

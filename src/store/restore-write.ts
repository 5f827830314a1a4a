/**
 * Writing restored files (restore.ts stages them): the workers write each file from its blob,
 * verifying its content as they go (`writeFromBlobs`: one job per group blob, batches of
 * standalone blobs, large blobs streamed). The blobs come from the store, or from downloaded
 * packs (`FrameSource`).
 */
import { StoreError } from '../errors.js';
import type { BlobStore } from './blobs.js';
import type { ManifestEntry, ManifestRoot } from './manifest.js';
import { STREAM_AT, WorkerOpError } from './pool.js';
import type { FilesWire, WriteWire } from './worker-protocol.js';
import type { RestoreOptions } from './types.js';

export interface FileJob {
  readonly e: ManifestEntry;
  readonly digest: string;
  /** The staged root (`Staged.item`); the file goes to its `e.path` ('' for a file root). */
  readonly item: string;
}

/** What a written file looks like: [inode, mtimeMs] (renames into place keep both). */
export type Written = readonly [number, number];

/** A file for a worker to write: its content, and where and how it goes. */
interface WriteMember {
  /** Index into the caller's list, for the answer. */
  readonly id: number;
  /** The staged root it goes under... */
  readonly item: string;
  /** ...and its path there ('' for a file root). */
  readonly rel: string;
  readonly digest: string;
  readonly size: number;
  readonly mode: number;
  /** The mtime to give it; null leaves the write's. */
  readonly mtimeMs: number | null;
}

function filesWire(files: readonly WriteMember[]): FilesWire {
  const bases: string[] = [];
  const baseIndex = new Map<string, number>();
  const n = files.length;
  const base = new Uint32Array(n);
  const sizes = new Float64Array(n);
  const modes = new Uint16Array(n);
  const mtimes = new Float64Array(n);
  const rels: string[] = [];
  const digests: string[] = [];
  files.forEach((f, i) => {
    let b = baseIndex.get(f.item);
    if (b === undefined) {
      b = bases.push(f.item) - 1;
      baseIndex.set(f.item, b);
    }
    base[i] = b;
    rels.push(f.rel);
    digests.push(f.digest);
    sizes[i] = f.size;
    modes[i] = f.mode;
    mtimes[i] = f.mtimeMs ?? NaN;
  });
  return { bases, base, rels: rels.join('\0'), digests: digests.join(''), sizes, modes, mtimes };
}

interface WriteJob {
  blob: string;
  blobSize: number;
  stream: boolean;
  members: WriteMember[];
  /** Where each member sits in the blob's content. */
  offsets: number[];
}

/**
 * Where a restore reads its blobs when not from the store: a downloaded pack, each blob's frame
 * at a place the pack's own index gave (pack.ts `scanPack`). The workers verify every file's
 * content against its digest as they write it, as they do for store blobs.
 */
export interface FrameSource {
  readonly frames: ReadonlyMap<
    string,
    { readonly file: string; readonly offset: number; readonly length: number }
  >;
}

function writeWire(jobs: readonly WriteJob[], source?: FrameSource): WriteWire {
  const members = jobs.flatMap((j) => j.members);
  const starts = new Uint32Array(jobs.length + 1);
  const offsets = new Float64Array(members.length);
  let at = 0;
  jobs.forEach((j, k) => {
    starts[k] = at;
    for (const o of j.offsets) offsets[at++] = o;
  });
  starts[jobs.length] = at;
  return {
    ...filesWire(members),
    blobs: jobs.map((j) => j.blob).join(''),
    blobSizes: Float64Array.from(jobs, (j) => j.blobSize),
    streams: Uint8Array.from(jobs, (j) => (j.stream ? 1 : 0)),
    starts,
    ids: Uint32Array.from(members, (m) => m.id),
    offsets,
    ...(source ? { pack: framesOf(jobs, source) } : {}),
  };
}

function framesOf(
  jobs: readonly WriteJob[],
  source: FrameSource,
): { files: string[]; frames: Float64Array } {
  const files: string[] = [];
  const out = new Float64Array(jobs.length * 3);
  jobs.forEach((j, k) => {
    const f = source.frames.get(j.blob);
    if (f === undefined) throw new StoreError(`the pack lacks blob ${j.blob}`);
    let i = files.indexOf(f.file);
    if (i < 0) i = files.push(f.file) - 1;
    out[3 * k] = i;
    out[3 * k + 1] = f.offset;
    out[3 * k + 2] = f.length;
  });
  return { files, frames: out };
}
/** Content per message to a worker. */
const BATCH_BYTES = 4 * 1024 * 1024;

/**
 * Writes files from their blobs in the worker pool: one job per group blob (decompressed once,
 * every member verified) and batches of standalone blobs; large blobs stream. Returns what
 * each file looks like, by member id.
 */
async function writeFromBlobs(
  blobs: BlobStore,
  files: readonly WriteMember[],
  source?: FrameSource,
): Promise<Map<number, Written>> {
  const byBlob = new Map<string, WriteJob>();
  for (const m of files) {
    // Grouped content is found through the entry's table (read by the caller), in memory.
    const loc = blobs.located(m.digest);
    const blob = loc?.group ?? m.digest;
    let job = byBlob.get(blob);
    if (job === undefined) {
      job = {
        blob,
        blobSize: loc?.groupSize ?? m.size,
        stream: loc === undefined && m.size >= STREAM_AT,
        members: [],
        offsets: [],
      };
      byBlob.set(blob, job);
    }
    job.members.push(m);
    job.offsets.push(loc?.offset ?? 0);
  }
  // A streamed blob is decoded once per member; members beyond the first are separate jobs.
  const jobs: WriteJob[] = [];
  for (const j of byBlob.values()) {
    if (j.stream) for (const m of j.members) jobs.push({ ...j, members: [m], offsets: [0] });
    else jobs.push(j);
  }
  jobs.sort((a, b) => b.blobSize - a.blobSize);
  const batches: { jobs: WriteJob[]; bytes: number }[] = [];
  let cur: WriteJob[] = [];
  let bytes = 0;
  for (const j of jobs) {
    if (cur.length > 0 && bytes + j.blobSize > BATCH_BYTES) {
      batches.push({ jobs: cur, bytes });
      cur = [];
      bytes = 0;
    }
    cur.push(j);
    bytes += j.blobSize;
  }
  if (cur.length > 0) batches.push({ jobs: cur, bytes });
  const pool = blobs.pool();
  const dirs = blobs.dirs;
  const out = new Map<number, Written>();
  try {
    // Every batch settles before a failure is thrown: the caller then removes the staging
    // directory, which a batch still writing would fill again (ENOTEMPTY, and a leftover).
    const settled = await Promise.allSettled(
      batches.map(async (b) => {
        const wire = writeWire(b.jobs, source);
        const done = await pool.run('writeBatch', { dirs, ...wire }, b.bytes);
        for (let i = 0; i + 2 < done.length; i += 3) {
          out.set(done[i] as number, [done[i + 1] as number, done[i + 2] as number]);
        }
      }),
    );
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
  } catch (err) {
    if (err instanceof WorkerOpError && err.kind === 'corrupt' && source === undefined) {
      // A blob that decodes wrongly can never become valid: drop it (its entries become misses).
      const bad = /blob ([0-9a-f]{64})/.exec(err.message)?.[1];
      if (bad !== undefined) await blobs.remove(bad);
    }
    throw err instanceof StoreError ? err : new StoreError(String(err));
  }
  return out;
}

/** The mtime `opts` asks for a restored file or directory: null leaves the write's. */
export function mtimeFor(e: ManifestEntry | ManifestRoot, opts: RestoreOptions): number | null {
  if (opts.mtimeMs !== undefined) return opts.mtimeMs;
  return opts.mtimes === true && e.mtimeMs !== undefined ? e.mtimeMs : null;
}

/** Writes the files of all staged roots from their blobs; what each looks like. */
export async function materialize(
  blobs: BlobStore,
  files: readonly FileJob[],
  opts: RestoreOptions,
  source?: FrameSource,
): Promise<Written[]> {
  const written = await writeFromBlobs(
    blobs,
    files.map(({ e, digest, item }, id) => ({
      id,
      digest,
      size: e.size,
      item,
      rel: e.path,
      mode: e.mode,
      mtimeMs: mtimeFor(e, opts),
    })),
    source,
  );
  return files.map((f, i) => {
    const w = written.get(i);
    if (w === undefined) throw new StoreError(`file ${f.e.path} was not written`);
    return w;
  });
}

export function fileJob(e: ManifestEntry, item: string): FileJob {
  if (e.digest === undefined) throw new StoreError(`file ${e.path} has no digest`);
  return { e, digest: e.digest, item };
}

/**
 * The save side: walk each output root (walk.ts), hash and store the files' content as blobs
 * (in worker threads, pool.ts), and describe everything in the entry's table.
 *
 * The walk and the workers overlap: jobs go out while the walk goes on (small files in groups
 * of about 1 MiB as they fill, larger files in batches, files of STREAM_AT or more in chunks
 * that every worker compresses, chunked.ts), and the pool hands the largest queued job to the
 * next idle worker, so the two workers finish together.
 */
import * as path from 'node:path';
import { StoreError } from '../errors.js';
import type { BlobStore, Location } from './blobs.js';
import { putChunked } from './chunked.js';
import { STREAM_AT, type PoolDirs, type WorkerPool } from './pool.js';
import { claimKey, claimSlot } from './worker-protocol.js';
import { CLOCK_LAG_MS, type StatLookup } from './statcache.js';
import {
  AT,
  DirRows,
  GroupList,
  NUMS,
  ROW,
  digestAt,
  digestBytes,
  encodeTable,
  groupAt,
  type Table,
} from './table.js';
import { walkRoot, Warnings, type ListDirs, type OnFile, type WalkedRoot } from './walk.js';
import type { LinkOptions, OutputRoot, SaveStats } from './types.js';

/** Files below this size are grouped with others of the same save (they compress far better). */
export const SMALL_FILE = 64 * 1024;
/** Content per group blob. */
export const GROUP_BYTES = 1024 * 1024;
/** Slots of a save's content-claim table (8 bytes each; a fuller table only dedups less). */
const CLAIM_SLOTS = 1 << 17;
/** Content per job of standalone files sent to one worker. */
const JOB_BYTES = 4 * 1024 * 1024;

export interface SnapshotResult {
  /** The new entry's table (table.ts): its artifact, and the stat cache of the roots saved. */
  readonly table: Buffer;
  /** Regular files, and their bytes. */
  readonly files: number;
  readonly sizeBytes: number;
  /** Names of the roots that exist. */
  readonly roots: string[];
  readonly newBlobs: number;
  readonly newBytes: number;
  /** Every blob the entry references (groups once, under the group) -> its stored size. */
  readonly stored: Map<string, number>;
  /** What the save did, but for the entry's own bytes (`entryBytes`, known at commit). */
  readonly stats: Omit<SaveStats, 'entryBytes'>;
  /** What was left out and why (SaveResult.warnings). */
  readonly warnings: string[];
}

/**
 * A save's claim table (see `claim` in store-worker.ts; both use worker-protocol.ts `claimKey`):
 * 64-bit slots, open addressing on the first 64 bits of a digest; `taken` are claimed from the
 * start.
 */
function newClaims(taken: readonly string[]): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(8 * CLAIM_SLOTS);
  const tab = new BigInt64Array(sab);
  for (const d of taken) {
    const key = claimKey(d);
    let i = claimSlot(key, CLAIM_SLOTS - 1);
    while (tab[i] !== 0n && tab[i] !== key) i = (i + 1) & (CLAIM_SLOTS - 1);
    tab[i] = key;
  }
  return sab;
}

/** What the previous entry of the package tells this save. */
export interface Basis {
  /** Its stat cache for these roots (unusable when there is none). */
  readonly stat: StatLookup;
  /** Grouped content of that entry: digest -> where (a hint: checked when read). */
  readonly locations: () => ReadonlyMap<string, Location>;
}

/** A file to read: row j of `rows`, its digest set once stored. */
interface PendingFile {
  readonly absPath: string;
  readonly size: number;
  readonly rows: DirRows;
  readonly j: number;
  digest?: string;
}

/**
 * Decides, file by file as the walk finds them, what each needs (nothing when the stat cache
 * vouches for it; a place in a group; a blob of its own), and sends the work to the pool.
 */
class Planner {
  /** Every blob the rows reference -> its stored size. */
  readonly stored = new Map<string, number>();
  /** The group blobs the rows point into. */
  readonly groups = new GroupList();
  newBlobs = 0;
  newBytes = 0;
  reused = 0;
  read = 0;
  bytesRead = 0;
  groupsWritten = 0;
  rawBlobs = 0;
  /** Files sent to be read. */
  readonly pending: PendingFile[] = [];
  private readonly counted = new Set<string>();
  private readonly groupSeen = new Map<string, number | undefined>();
  /** Where this save put content it read into a group (its duplicates go there too). */
  private readonly placed = new Map<string, Location>();
  /** The stat cache's table, and per group of it: 0 not looked at, -1 gone, else new index + 1. */
  private readonly cache: Table | undefined;
  private readonly groupMap: Int32Array;
  /** Grouped content already in the store, 32 bytes per digest (worked out when first needed). */
  private knownDigests: Uint8Array | undefined;
  /**
   * Content claims of this save, shared by the workers (one 64-bit slot each): a file whose
   * content another file of the save claimed is neither compressed nor written again.
   */
  private readonly claims: SharedArrayBuffer;
  /** Files whose content another file of this save holds, paired up in finish(). */
  private readonly dups: PendingFile[] = [];
  private readonly running: Promise<void>[] = [];
  private small: PendingFile[] = [];
  private smallBytes = 0;
  private large: PendingFile[] = [];
  private largeBytes = 0;
  private readonly pool: WorkerPool;
  private readonly dirs: PoolDirs;

  constructor(
    private readonly blobs: BlobStore,
    private readonly basis: Basis | undefined,
    private readonly groupSmall: boolean,
    preclaimed: readonly string[],
  ) {
    this.claims = newClaims(preclaimed);
    this.pool = blobs.pool();
    this.dirs = blobs.dirs;
    this.cache = basis?.stat.table;
    this.groupMap = new Int32Array(this.cache?.header.groups.length ?? 0);
  }

  /** Stored size of a group blob (undefined when it is gone), one stat per group. */
  private groupSize(group: string): number | undefined {
    if (!this.groupSeen.has(group)) this.groupSeen.set(group, this.blobs.ownSizeSync(group));
    return this.groupSeen.get(group);
  }

  /** A file of the walk: row j of `rows`; `cached` the stat cache row that vouches for it. */
  readonly file: OnFile = (rows, j, dirAbs, name, cached) => {
    if (cached >= 0 && this.reuse(rows, j, cached)) return;
    const size = rows.get(j, AT.size);
    const e: PendingFile = {
      absPath: name === '' ? dirAbs : `${dirAbs}${path.sep}${name}`,
      size,
      rows,
      j,
    };
    this.pending.push(e);
    if (this.groupSmall && size < SMALL_FILE) {
      this.small.push(e);
      this.smallBytes += size;
      if (this.smallBytes >= GROUP_BYTES) this.flushSmall();
    } else if (size >= STREAM_AT) {
      this.runChunked(e);
    } else {
      this.large.push(e);
      this.largeBytes += size;
      if (this.largeBytes >= JOB_BYTES) this.flushLarge();
    }
  };

  /** Sends what is still gathered, then waits for every job. */
  async finish(): Promise<void> {
    this.flushSmall();
    this.flushLarge();
    await Promise.all(this.running);
    // Each duplicate shares its claimer's blob; one whose claimer differs beyond the first 64
    // bits of digest (never seen, but possible) is stored after all, unclaimed.
    const unmatched = this.dups.filter((f) => !this.pairDup(f));
    if (unmatched.length > 0) {
      this.running.length = 0;
      this.runFiles(unmatched, 0, false);
      await Promise.all(this.running);
    }
  }

  /** Points a duplicate at the blob its claimer stored; false when there is none. */
  private pairDup(f: PendingFile): boolean {
    const d = f.digest as string;
    const loc = this.placed.get(d);
    if (loc !== undefined) this.place(f.rows, f.j, loc);
    return loc !== undefined || this.stored.has(d);
  }

  /** Waits for the jobs already sent, whatever their outcome (after a failed walk). */
  async settle(): Promise<void> {
    await Promise.allSettled(this.running);
  }

  private track(job: Promise<void>): void {
    job.catch(() => {}); // handled: finish() or settle() reports it
    this.running.push(job);
  }

  /**
   * A file the stat cache vouches for (its row i): true when its content is still in the
   * store, its digest and place then copied from the cache (no string made for it).
   */
  private reuse(rows: DirRows, j: number, i: number): boolean {
    const t = this.cache as Table;
    if ((t.nums[i * NUMS + AT.group] as number) >= 0) {
      // (groupAt: a group the table lists, the slice inside it)
      const gi = groupAt(t, i);
      const g = gi < 0 ? -1 : this.mapGroup(gi);
      if (g < 0) return false;
      rows.set(j, AT.group, g);
      rows.set(j, AT.offset, t.nums[i * NUMS + AT.offset] as number);
    } else {
      const d = digestAt(t, i);
      const size = this.blobs.ownSizeSync(d);
      if (size === undefined) return false;
      this.stored.set(d, size);
    }
    digestBytes(t, i).copy(rows.digests, j * 32);
    this.reused++;
    return true;
  }

  /** Group gi (listed) of the stat cache in this save's numbering; -1 when it is not in the store. */
  private mapGroup(gi: number): number {
    let m = this.groupMap[gi] as number;
    if (m === 0) {
      const [group, uncompressed] = (this.cache as Table).header.groups[gi] as [string, number];
      const size = this.groupSize(group);
      if (size === undefined) {
        m = -1;
      } else {
        m = this.groups.add(group, uncompressed) + 1;
        this.stored.set(group, size);
      }
      this.groupMap[gi] = m;
    }
    return m < 0 ? -1 : m - 1;
  }

  /** Row j's content lives at `loc`. */
  private place(rows: DirRows, j: number, loc: Location): void {
    rows.set(j, AT.group, this.groups.add(loc.group, loc.groupSize));
    rows.set(j, AT.offset, loc.offset);
  }

  /** A file was read: its digest, and the size that digest is of. */
  private readDone(f: PendingFile, digest: string, size: number): void {
    f.digest = digest;
    f.rows.setDigest(f.j, digest);
    f.rows.set(f.j, AT.size, size);
  }

  /**
   * Grouped content already in the store (the basis's groups that are still there): workers
   * leave it out of new groups. 32 bytes per digest; worked out once, when a job first needs it.
   */
  private known(): Uint8Array {
    if (this.knownDigests !== undefined) return this.knownDigests;
    const t = this.cache;
    let out: Buffer;
    if (t !== undefined) {
      out = Buffer.allocUnsafe(t.rows * 32);
      let n = 0;
      for (let i = 0; i < t.rows; i++) {
        if (t.nums[i * NUMS] !== ROW.file) continue;
        const gi = groupAt(t, i);
        if (gi < 0 || this.groupSize((t.header.groups[gi] as [string, number])[0]) === undefined) {
          continue;
        }
        digestBytes(t, i).copy(out, n * 32);
        n++;
      }
      out = out.subarray(0, n * 32);
    } else {
      const hex: string[] = [];
      for (const [d, loc] of this.basis?.locations() ?? []) {
        if (this.groupSize(loc.group) !== undefined) hex.push(d);
      }
      out = Buffer.from(hex.join(''), 'hex');
    }
    this.knownDigests = out;
    return out;
  }

  private note(name: string, size: number, written: boolean): void {
    this.stored.set(name, size);
    if (written && !this.counted.has(name)) {
      this.counted.add(name);
      this.newBlobs++;
      this.newBytes += size;
    }
  }

  private flushSmall(): void {
    if (this.small.length === 0) return;
    const members = this.small;
    const bytes = this.smallBytes;
    this.small = [];
    this.smallBytes = 0;
    this.track(this.runGroup(members, bytes));
  }

  private flushLarge(): void {
    if (this.large.length === 0) return;
    const batch = this.large;
    const bytes = this.largeBytes;
    this.large = [];
    this.largeBytes = 0;
    this.runFiles(batch, bytes);
  }

  private async runGroup(members: PendingFile[], bytes: number): Promise<void> {
    const r = await this.pool.run(
      'putGroup',
      {
        dirs: this.dirs,
        files: members.map((f) => ({ abs: f.absPath, size: f.size })),
        known: this.known(),
        claims: this.claims,
      },
      bytes,
    );
    if (r.group !== null) {
      this.note(r.group, r.stored, r.written);
      if (r.written) this.groupsWritten++;
    }
    r.members.forEach((m, k) => {
      const f = members[k] as PendingFile;
      this.read++;
      this.bytesRead += m.size;
      this.readDone(f, m.digest, m.size);
      if (m.dup === true) {
        this.dups.push(f);
        return;
      }
      const loc =
        m.offset >= 0 && r.group !== null
          ? { group: r.group, groupSize: r.size, offset: m.offset, size: m.size }
          : this.basis?.locations().get(m.digest);
      if (loc === undefined) throw new StoreError(`no location for ${f.absPath}`);
      if (!this.placed.has(m.digest)) this.placed.set(m.digest, loc);
      this.place(f.rows, f.j, loc);
      if (m.offset < 0) this.stored.set(loc.group, this.groupSeen.get(loc.group) ?? 0);
    });
  }

  /** A large file: read and hashed here, its chunks compressed on every worker (chunked.ts). */
  private runChunked(f: PendingFile): void {
    const job = async (): Promise<void> => {
      const r = await putChunked(this.pool, this.dirs, f.absPath, f.size);
      this.read++;
      this.bytesRead += r.size;
      this.readDone(f, r.digest, r.size);
      this.note(r.digest, r.stored, r.written);
      if (r.written && r.raw) this.rawBlobs++;
    };
    this.track(job());
  }

  /** Directory listings in the workers, ahead of every queued compression job. */
  readonly list: ListDirs = (dirs, budget) =>
    this.pool.run('listDirs', { dirs: this.dirs, paths: dirs, budget }, Number.MAX_SAFE_INTEGER);

  /** Standalone blobs for `batch` (claiming content for this save unless `claim` is false). */
  private runFiles(batch: PendingFile[], bytes: number, claim = true): void {
    const job = async (): Promise<void> => {
      const rs = await this.pool.run(
        'putFiles',
        {
          dirs: this.dirs,
          files: batch.map((f) => ({ abs: f.absPath, size: f.size })),
          ...(claim ? { claims: this.claims } : {}),
        },
        bytes,
      );
      rs.forEach((r, k) => {
        const f = batch[k] as PendingFile;
        this.readDone(f, r.digest, r.size);
        if (claim) {
          // (The unclaimed run stores duplicates already counted.)
          this.read++;
          this.bytesRead += r.size;
        }
        if (r.dup === true) {
          this.dups.push(f);
          return;
        }
        this.note(r.digest, r.stored, r.written);
        if (r.written && r.raw) this.rawBlobs++;
      });
    };
    this.track(job());
  }
}

/** How `snapshotRoots` goes about a save. */
export interface SnapshotOptions {
  /** The previous entry of the package (basis.ts): its unchanged files are not read. */
  readonly basis?: Basis | undefined;
  /** Group small files into shared blobs (default true). */
  readonly groupSmall?: boolean;
  /** Which symlinks leaving their root are kept (`sortLinks`). */
  readonly links?: LinkOptions;
  /** Fault injection (StoreFaults.preclaimed): digests claimed before the save starts. */
  readonly preclaimed?: readonly string[] | undefined;
}

/**
 * Walks the roots and stores their files: unchanged files (stat cache) are not read; the rest
 * are hashed and compressed by the worker pool, small files grouped into shared blobs (unless
 * `groupSmall` is false), large ones streamed. The result's table is the entry's artifact
 * (and, with `key` in it, the stat cache of these roots).
 */
export async function snapshotRoots(
  key: string,
  roots: readonly OutputRoot[],
  blobs: BlobStore,
  opts: SnapshotOptions = {},
): Promise<SnapshotResult> {
  const { basis, links = {} } = opts;
  // A change after our lstat gets an mtime of at least this (statcache.ts).
  const recordedAt = Date.now() - CLOCK_LAG_MS;
  const warnings = new Warnings();
  const plan = new Planner(blobs, basis, opts.groupSmall !== false, opts.preclaimed ?? []);
  const walked: WalkedRoot[] = [];
  try {
    for (const root of roots) {
      walked.push(await walkRoot(root, plan.file, plan.list, basis?.stat, links, warnings));
    }
  } catch (err) {
    await plan.settle(); // never leave jobs running behind a failed walk
    throw err;
  }
  await plan.finish();
  for (const f of plan.pending) {
    if (f.digest === undefined) throw new StoreError(`file ${f.absPath} was not stored`);
  }
  let files = 0;
  let sizeBytes = 0;
  for (const w of walked) {
    for (const [, rows] of w.dirs) {
      for (let j = 0; j < rows.count; j++) {
        if (rows.get(j, AT.kind) !== ROW.file) continue;
        files++;
        sizeBytes += rows.get(j, AT.size);
      }
    }
  }
  const table = encodeTable(
    { key, recordedAt, groups: plan.groups.list },
    walked.map((w) => ({
      name: w.root.name,
      kind: w.kind,
      ...(w.kind === 'dir' ? { mode: w.mode, mtimeMs: w.mtimeMs } : {}),
      abs: path.resolve(w.root.absPath),
      dirs: w.dirs,
    })),
  );
  return {
    table,
    files,
    sizeBytes,
    roots: walked.filter((w) => w.kind !== 'absent').map((w) => w.root.name),
    newBlobs: plan.newBlobs,
    newBytes: plan.newBytes,
    stored: plan.stored,
    stats: {
      files,
      reused: plan.reused,
      read: plan.read,
      bytesRead: plan.bytesRead,
      blobsWritten: plan.newBlobs,
      bytesWritten: plan.newBytes,
      groups: plan.groupsWritten,
      rawBlobs: plan.rawBlobs,
    },
    warnings: warnings.list(),
  };
}
